"""Visium HD at full size: bins matched to positions through their grid indices
(no string join) give exactly what the general barcode join gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tenx_fixtures import write_10x_h5, write_json

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.visium import (hd_grid_indices, hd_positions_of_matrix, read_tissue_positions,
                                            read_visium_hd)


def _write_square_002um(folder, n_rows=40, n_cols=30, seed=0):
    rng = np.random.default_rng(seed)
    (folder / "spatial").mkdir(parents=True)
    r, c = np.divmod(np.arange(n_rows * n_cols), n_cols)
    all_bcs = [f"s_002um_{a:05d}_{b:05d}-1" for a, b in zip(r, c)]
    under = rng.random(len(all_bcs)) < 0.6  # the filtered matrix: bins under tissue only
    bcs = [b for b, u in zip(all_bcs, under) if u]
    rng.shuffle(bcs)
    counts = rng.poisson(0.4, (len(bcs), 6))
    write_10x_h5(folder / "filtered_feature_bc_matrix.h5", counts, bcs,
                 [f"ENSG{i}" for i in range(6)], ["CD68", "CD163", "STAB1", "EPCAM", "PECAM1", "MRC1"])
    side = 2 / 0.2737
    theta = np.deg2rad(0.8)  # the slide is a little rotated on the image
    y = 900 + side * (np.cos(theta) * r - np.sin(theta) * c)
    x = 1500 + side * (np.sin(theta) * r + np.cos(theta) * c)
    pos = pd.DataFrame({"barcode": all_bcs, "in_tissue": under.astype(int), "array_row": r, "array_col": c,
                        "pxl_row_in_fullres": y, "pxl_col_in_fullres": x}).sample(frac=1.0, random_state=2)
    pos.to_parquet(folder / "spatial" / "tissue_positions.parquet")
    write_json(folder / "spatial" / "scalefactors_json.json",
               {"spot_diameter_fullres": side, "bin_size_um": 2.0, "microns_per_pixel": 0.2737})
    return bcs, counts


def test_grid_indices_read_from_barcodes():
    rows, cols = hd_grid_indices(np.array([b"s_002um_00012_03456-1", b"s_002um_99999_00000-1"]))
    assert list(rows) == [12, 99999] and list(cols) == [3456, 0]
    assert hd_grid_indices(np.array(["AAACGT-1", "s_002um_00012_03456-1"])) is None
    assert hd_grid_indices(np.array(["s_002um_0001x_03456-1"])) is None


def test_fast_match_equals_the_barcode_join(tmp_path):
    folder = tmp_path / "square_002um"
    bcs, counts = _write_square_002um(folder)
    pos_path = folder / "spatial" / "tissue_positions.parquet"
    fast = hd_positions_of_matrix(pos_path, np.array(bcs))
    joined = read_tissue_positions(pos_path).loc[bcs]
    for col in ("in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"):
        np.testing.assert_array_equal(fast[col].to_numpy(), joined[col].to_numpy())
    spots = read_visium_hd(folder)
    assert list(spots.adata.obs_names) == bcs
    np.testing.assert_array_equal(spots.counts.toarray(), counts)
    np.testing.assert_array_equal(spots.xy, joined[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy())


def test_the_rotated_2um_grid_is_drawn_one_pixel_per_bin(tmp_path):
    from napari_roiscore.spots.view import spot_binning

    bcs, _ = _write_square_002um(tmp_path / "square_002um")
    spots = read_visium_hd(tmp_path / "square_002um")
    grid = spot_binning(spots)
    assert grid.exact and not grid.placement.is_axis_aligned
    np.testing.assert_allclose(grid.placement.to_yx(grid.rows, grid.cols), spots.yx, atol=1e-6)


def test_a_bin_without_position_is_named(tmp_path):
    folder = tmp_path / "square_002um"
    bcs, _ = _write_square_002um(folder)
    pos_path = folder / "spatial" / "tissue_positions.parquet"
    pos = pd.read_parquet(pos_path)
    pos[pos["barcode"] != bcs[0]].to_parquet(pos_path)
    with pytest.raises(RoiScoreError, match=f"1 barcode.*{bcs[0]}"):
        read_visium_hd(folder)


@pytest.mark.parametrize("wrong_group", ["first", "middle", "last"])
def test_barcodes_that_do_not_name_their_grid_bins_fall_back_to_the_join(tmp_path, wrong_group):
    """The sample check reads the first, middle and last row groups of the positions file:
    stored barcodes that disagree with the grid indices in any of them send the reader to
    the general barcode join, which then matches by name."""
    folder = tmp_path / "square_002um"
    bcs, _ = _write_square_002um(folder)
    pos_path = folder / "spatial" / "tissue_positions.parquet"
    pos = pd.read_parquet(pos_path).sort_values(["array_row", "array_col"]).reset_index(drop=True)
    n_groups = -(-len(pos) // 100)
    group = {"first": 0, "middle": n_groups // 2, "last": n_groups - 1}[wrong_group]
    rows = slice(group * 100, min((group + 1) * 100, len(pos)))
    pos.loc[rows, ["array_row", "array_col"]] = pos.loc[rows, ["array_row", "array_col"]].to_numpy()[::-1]
    pos.to_parquet(pos_path, row_group_size=100)  # 12 row groups
    assert hd_positions_of_matrix(pos_path, np.array(bcs)) is None
    pos.sort_values("array_col").to_parquet(pos_path, row_group_size=100)
    spots = read_visium_hd(folder)  # by the general join: the positions of each barcode
    joined = read_tissue_positions(pos_path).loc[bcs]
    np.testing.assert_array_equal(spots.xy, joined[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy())


def test_the_sample_check_reads_several_row_groups_and_accepts_a_true_match(tmp_path):
    folder = tmp_path / "square_002um"
    bcs, _ = _write_square_002um(folder)
    pos_path = folder / "spatial" / "tissue_positions.parquet"
    pd.read_parquet(pos_path).to_parquet(pos_path, row_group_size=97)
    fast = hd_positions_of_matrix(pos_path, np.array(bcs))
    assert fast is not None
    joined = read_tissue_positions(pos_path).loc[bcs]
    np.testing.assert_array_equal(fast["pxl_row_in_fullres"].to_numpy(), joined["pxl_row_in_fullres"].to_numpy())
