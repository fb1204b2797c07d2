"""Spot rasters: every value lands on its bin, pyramid levels are honest block means,
and the raster sits on the spots."""

from __future__ import annotations

import numpy as np
import pytest

from napari_roiscore.spots.raster import detect_square_grid, tile_binning


def _grid(n_rows=37, n_cols=53, pitch=7.5, origin=(120.25, 33.5), keep=0.6, seed=0):
    """A square grid with holes (bins off tissue), centres as (x, y), shuffled."""
    rng = np.random.default_rng(seed)
    r, c = np.nonzero(rng.random((n_rows, n_cols)) < keep)
    order = rng.permutation(r.size)
    r, c = r[order], c[order]
    xy = np.column_stack([origin[1] + c * pitch, origin[0] + r * pitch])
    return xy, r, c


def test_grid_raster_holds_each_bin_value_at_its_bin():
    xy, r, c = _grid()
    values = np.random.default_rng(1).normal(size=len(xy))
    grid = detect_square_grid(xy)
    assert grid is not None and grid.exact
    assert grid.side == pytest.approx(7.5)
    raster = grid.raster(values)
    np.testing.assert_allclose(raster[grid.rows, grid.cols], values.astype(np.float32))
    empty = np.ones(raster.shape, bool)
    empty[grid.rows, grid.cols] = False
    assert np.isnan(raster[empty]).all()


def test_placement_maps_bin_centres_to_spot_coordinates():
    xy, _, _ = _grid()
    grid = detect_square_grid(xy)
    np.testing.assert_allclose(grid.placement.to_yx(grid.rows, grid.cols), xy[:, ::-1], atol=1e-9)
    assert grid.placement.is_axis_aligned
    assert grid.placement.scale == pytest.approx((7.5, 7.5))
    np.testing.assert_allclose(grid.placement.to_rowcol(xy[:, ::-1]), np.column_stack([grid.rows, grid.cols]),
                               atol=1e-9)


def test_rotated_grid_from_array_indices():
    xy, r, c = _grid(pitch=4.0)
    theta = np.deg2rad(1.7)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    xy = xy @ rot.T + 5.0
    grid = detect_square_grid(xy, array_rows=r + 10, array_cols=c + 3)
    assert grid is not None and not grid.placement.is_axis_aligned
    np.testing.assert_allclose(grid.placement.to_yx(grid.rows, grid.cols), xy[:, ::-1], atol=1e-6)
    assert detect_square_grid(xy) is None  # rotated: the axis-aligned test refuses it


def test_hexagonal_visium_array_and_cells_are_not_square_grids():
    rng = np.random.default_rng(2)
    rows, cols = np.meshgrid(np.arange(20), np.arange(0, 40, 2), indexing="ij")
    cols = cols + (rows % 2)  # Visium: odd rows shifted by one column index
    rows, cols = rows.ravel(), cols.ravel()
    xy = np.column_stack([cols * 50.0, rows * 86.6])
    assert detect_square_grid(xy, array_rows=rows, array_cols=cols) is None
    assert detect_square_grid(rng.uniform(0, 1000, (5000, 2))) is None


def test_two_spots_in_one_bin_are_not_a_grid():
    xy, _, _ = _grid()
    xy = np.vstack([xy, xy[:1] + 0.1])
    assert detect_square_grid(xy) is None


@pytest.mark.parametrize("exact", [True, False])
def test_pyramid_levels_are_block_means_of_all_spots(exact):
    rng = np.random.default_rng(3)
    if exact:
        xy, _, _ = _grid(n_rows=300, n_cols=700)
        binning = detect_square_grid(xy)
    else:
        xy = rng.uniform(0, 3000, (40_000, 2))
        binning = tile_binning(xy, side=5.0)
    values = rng.normal(size=len(xy))
    values[::17] = np.nan  # unscored spots are left out of the means
    levels = binning.pyramid(values, coarsest_side=64)
    assert len(levels) >= 3
    sums = np.zeros(binning.shape)
    counts = np.zeros(binning.shape)
    ok = np.isfinite(values)
    np.add.at(sums, (binning.rows[ok], binning.cols[ok]), values[ok])
    np.add.at(counts, (binning.rows[ok], binning.cols[ok]), 1)
    for k, level in enumerate(levels):
        f = 2 ** k
        level = np.asarray(level)
        h, w = level.shape
        ps = np.zeros((h * f, w * f))
        pc = np.zeros((h * f, w * f))
        ps[:sums.shape[0], :sums.shape[1]] = sums
        pc[:counts.shape[0], :counts.shape[1]] = counts
        bs = ps.reshape(h, f, w, f).sum(axis=(1, 3))
        bc = pc.reshape(h, f, w, f).sum(axis=(1, 3))
        with np.errstate(invalid="ignore"):
            want = bs / bc
        np.testing.assert_allclose(level, want, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_tile_means_and_placement_of_irregular_spots():
    rng = np.random.default_rng(4)
    xy = rng.uniform([100, 200], [900, 700], (20_000, 2))
    values = rng.random(len(xy))
    tiles = tile_binning(xy, side=25.0)
    assert not tiles.exact
    raster = tiles.raster(values)
    r, c = 3, 5
    centre = tiles.placement.to_yx([r], [c])[0]
    inside = (np.abs(xy[:, 1] - centre[0]) < 12.5) & (np.abs(xy[:, 0] - centre[1]) < 12.5)
    assert raster[r, c] == pytest.approx(values[inside].mean(), rel=1e-6)


def test_spots_in_view_cover_the_box_and_count_matches():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, (50_000, 2))
    tiles = tile_binning(xy, side=10.0)
    lo, hi = (200.0, 300.0), (260.0, 450.0)  # (y, x)
    got = tiles.spots_in_view(lo, hi)
    inside = np.flatnonzero((xy[:, 1] >= lo[0]) & (xy[:, 1] <= hi[0]) & (xy[:, 0] >= lo[1]) & (xy[:, 0] <= hi[1]))
    assert set(inside) <= set(got)
    assert len(got) < 1.6 * len(inside)  # only a margin of one tile more
    assert tiles.count_in_view(lo, hi) == len(got)
    assert np.all(np.diff(got) > 0)
    assert tiles.count_in_view((5000, 5000), (6000, 6000)) == 0
