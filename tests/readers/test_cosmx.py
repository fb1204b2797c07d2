"""CosMx flat files: counts, positions and controls as written; dispatch finds the folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers import cosmx as cosmx_module
from napari_roiscore.readers.cosmx import COSMX_PIXEL_SIZE_UM, read_cosmx
from napari_roiscore.readers.dispatch import enclosing_instrument_folder, folder_kind, read_spots_of_kind

GENES = ["CD68", "CD163", "EPCAM", "KRT8", "PTPRC"]
CONTROLS = ["NegPrb1", "NegPrb2", "SystemControl3"]


def write_cosmx(folder, n_per_fov=(30, 25), seed=0, run="Run5_S1"):
    """A small CosMx export: two FOVs, a background row per FOV (cell_ID 0), shuffled metadata."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    expr, meta = [], []
    fov_pos = {1: (1000.0, 2000.0), 2: (5256.0, 2000.0)}
    for fov, n in zip((1, 2), n_per_fov):
        expr.append({"fov": fov, "cell_ID": 0, **{g: 50 for g in GENES + CONTROLS}})
        for cell in range(1, n + 1):
            expr.append({"fov": fov, "cell_ID": cell,
                         **{g: int(rng.poisson(3)) for g in GENES + CONTROLS}})
            lx, ly = rng.uniform(0, 4256, 2)
            meta.append({"fov": fov, "cell_ID": cell, "Area": float(rng.uniform(4000, 9000)),
                         "AspectRatio": 1.1, "CenterX_local_px": lx, "CenterY_local_px": ly,
                         "CenterX_global_px": fov_pos[fov][0] + lx, "CenterY_global_px": fov_pos[fov][1] + ly,
                         "Mean.DAPI": 100.0})
    e = pd.DataFrame(expr)
    m = pd.DataFrame(meta).sample(frac=1.0, random_state=1)  # another order than the matrix
    e.to_csv(folder / f"{run}_exprMat_file.csv", index=False)
    m.to_csv(folder / f"{run}_metadata_file.csv", index=False)
    pd.DataFrame({"fov": [1, 2], "x_global_px": [p[0] for p in fov_pos.values()],
                  "y_global_px": [p[1] for p in fov_pos.values()]}).to_csv(
        folder / f"{run}_fov_positions_file.csv", index=False)
    return e, m


@pytest.mark.parametrize("chunk_rows", [7, 50_000])
def test_counts_positions_and_controls_as_written(tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(cosmx_module, "_CHUNK_ROWS", chunk_rows)  # chunked reading gives the same table
    e, m = write_cosmx(tmp_path / "cosmx")
    spots = read_cosmx(tmp_path / "cosmx")
    cells = e[e["cell_ID"] != 0].reset_index(drop=True)
    assert spots.n_spots == len(cells) == 55
    assert spots.gene_names == GENES
    np.testing.assert_array_equal(spots.counts.toarray(), cells[GENES].to_numpy())
    np.testing.assert_array_equal(spots.adata.obs["control_counts"], cells[CONTROLS].sum(axis=1))
    assert list(spots.adata.obs_names[:2]) == ["c_1_1", "c_1_2"]
    mi = m.set_index(["fov", "cell_ID"]).loc[list(zip(cells["fov"], cells["cell_ID"]))]
    np.testing.assert_allclose(spots.xy, mi[["CenterX_global_px", "CenterY_global_px"]].to_numpy())
    assert spots.pixel_size_um == COSMX_PIXEL_SIZE_UM
    assert spots.diameter_px == pytest.approx(2 * np.sqrt(np.median(m["Area"]) / np.pi))


def test_dispatch_finds_the_export_and_one_of_its_files(tmp_path):
    write_cosmx(tmp_path / "cosmx")
    assert folder_kind(tmp_path / "cosmx") == "cosmx"
    assert enclosing_instrument_folder(tmp_path / "cosmx" / "Run5_S1_exprMat_file.csv") == tmp_path / "cosmx"
    spots = read_spots_of_kind(tmp_path / "cosmx", "cosmx", pixel_size_um=0.18)
    assert spots.pixel_size_um == 0.18


def test_missing_metadata_and_unmatched_cells_are_named(tmp_path):
    write_cosmx(tmp_path / "a")
    (tmp_path / "a" / "Run5_S1_metadata_file.csv").unlink()
    with pytest.raises(RoiScoreError, match="metadata_file.csv' is missing"):
        read_cosmx(tmp_path / "a")
    _, m = write_cosmx(tmp_path / "b")
    m.iloc[3:].to_csv(tmp_path / "b" / "Run5_S1_metadata_file.csv", index=False)
    with pytest.raises(RoiScoreError, match="3 cell\\(s\\) of the expression file have no metadata"):
        read_cosmx(tmp_path / "b")
