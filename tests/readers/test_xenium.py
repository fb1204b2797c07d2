"""Xenium reader on generated fixtures in the real formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers import read_xenium
from tenx_fixtures import write_10x_h5

CELLS = ["aaabbbcc-1", "aaabbbdd-1", "aaabbbee-1", "aaabbbff-1"]
GENES = ["CD68", "CD163", "EPCAM", "NegControlProbe_00001", "BLANK_0001"]
TYPES = ["Gene Expression"] * 3 + ["Negative Control Probe", "Blank Codeword"]


def _write_xenium(folder: Path, cells_format: str = "parquet", experiment: bool = True) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    counts = np.array([[3, 0, 1, 1, 0], [0, 5, 0, 0, 2], [1, 1, 9, 0, 0], [2, 0, 0, 1, 1]])
    write_10x_h5(folder / "cell_feature_matrix.h5", counts, CELLS, [f"ENSG{i}" for i in range(5)], GENES, TYPES)
    cells = pd.DataFrame({
        "cell_id": CELLS[::-1],  # another order than the matrix
        "x_centroid": [850.0, 42.5, 21.25, 0.2125],
        "y_centroid": [425.0, 85.0, 2.125, 10.625],
        "transcript_counts": [4, 11, 7, 5],
        "cell_area": [78.54, 78.54, 50.0, 120.0],
        "nucleus_area": [30.0, 30.0, 20.0, 40.0],
    })
    if cells_format == "parquet":
        cells.to_parquet(folder / "cells.parquet")
    else:
        cells.to_csv(folder / "cells.csv.gz", index=False)
    if experiment:
        (folder / "experiment.xenium").write_text(json.dumps({"pixel_size": 0.2125, "run_name": "t"}))
    return counts


@pytest.mark.parametrize("cells_format", ["parquet", "csv.gz"])
def test_xenium_cells_in_image_pixels(tmp_path, cells_format):
    counts = _write_xenium(tmp_path / "xe", cells_format)
    s = read_xenium(tmp_path / "xe")
    assert list(s.adata.var_names) == ["CD68", "CD163", "EPCAM"]  # controls are not genes
    np.testing.assert_array_equal(s.counts.toarray(), counts[:, :3])
    np.testing.assert_array_equal(s.adata.obs["control_counts"], counts[:, 3:].sum(axis=1))
    assert list(s.adata.obs_names) == CELLS
    # µm / 0.2125 = morphology pixels; matrix order, not cells-table order
    np.testing.assert_allclose(s.xy, [[1.0, 50.0], [100.0, 10.0], [200.0, 400.0], [4000.0, 2000.0]])
    assert s.pixel_size_um == pytest.approx(0.2125)
    assert s.diameter_px == pytest.approx(2 * np.sqrt(78.54 / np.pi) / 0.2125)  # median cell, ~10 µm
    assert s.provenance["cells"].endswith("cells." + cells_format)


def test_xenium_pixel_size_default_and_override(tmp_path):
    _write_xenium(tmp_path / "xe", experiment=False)
    s = read_xenium(tmp_path / "xe")
    assert s.provenance["pixel_size_source"].startswith("Xenium default")
    s2 = read_xenium(tmp_path / "xe", pixel_size_um=0.425)
    np.testing.assert_allclose(s2.xy * 2, s.xy)


def test_xenium_missing_files_are_named(tmp_path):
    folder = tmp_path / "xe"
    _write_xenium(folder)
    (folder / "cells.parquet").unlink()
    with pytest.raises(RoiScoreError, match="cells.parquet"):
        read_xenium(folder)
    (folder / "cell_feature_matrix.h5").unlink()
    with pytest.raises(RoiScoreError, match="cell_feature_matrix.h5"):
        read_xenium(folder)


def test_xenium_cells_table_of_another_run(tmp_path):
    folder = tmp_path / "xe"
    _write_xenium(folder)
    pd.DataFrame({"cell_id": ["x-1"], "x_centroid": [1.0], "y_centroid": [1.0]}).to_parquet(
        folder / "cells.parquet")
    with pytest.raises(RoiScoreError, match="not in the cells table"):
        read_xenium(folder)
