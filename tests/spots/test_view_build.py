"""Totals summed in blocks equal the plain sum; the step-wise build (preview, full raster)
gives what the one-shot SpotView gives; the preview is the exact mean per tile."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_roiscore.scoring.normalise import library_sizes
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.spots.view import SpotView, total_count_blocks, total_counts
from napari_roiscore.spots.view_build import build_steps, n_build_steps, placeholder_raster, preview_raster


def _table(X, xy=None, shape="circle"):
    n = X.shape[0]
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"s{i}" for i in range(n)]),
                   var=pd.DataFrame(index=[f"g{j}" for j in range(X.shape[1])]))
    a.obsm["spatial"] = np.random.default_rng(1).uniform(0, 3000, (n, 2)) if xy is None else xy
    return SpotTable(a, diameter_px=10.0, shape=shape, pixel_size_um=0.5)


def _counts(n=10_007, genes=9, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.7, (n, genes)).astype(np.int32)
    dense[rng.random(n) < 0.05] = 0  # empty spots
    return dense


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense", "float_csr"])
@pytest.mark.parametrize("block", [1, 999, 250_000])
def test_block_summed_totals_equal_the_plain_sum(fmt, block):
    dense = _counts()
    X = {"csr": sp.csr_matrix(dense), "csc": sp.csc_matrix(dense), "dense": dense,
         "float_csr": sp.csr_matrix(dense * 0.37)}[fmt]
    plain = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    got = total_counts(_table(X), block_rows=block)
    np.testing.assert_allclose(got, plain, rtol=1e-12)
    if fmt != "dense":  # the library sizes the scores use, to the last bit
        np.testing.assert_array_equal(got, library_sizes(sp.csr_matrix(X)))
    blocks = list(total_count_blocks(X, block))
    assert len(blocks) == -(-X.shape[0] // block)
    assert all(rows.stop - rows.start <= block for rows, _ in blocks)


def test_block_totals_of_a_backed_h5ad(tmp_path):
    dense = _counts(n=3001)
    _table(sp.csr_matrix(dense)).adata.write_h5ad(tmp_path / "t.h5ad")
    backed = ad.read_h5ad(tmp_path / "t.h5ad", backed="r")
    got = np.concatenate([s for _, s in total_count_blocks(backed.X, 700)])
    np.testing.assert_array_equal(got, dense.sum(axis=1).astype(float))
    backed.file.close()


def test_build_steps_give_what_the_one_shot_view_gives():
    spots = _table(sp.csr_matrix(_counts()))
    view = SpotView.pending(spots, marker_limit=100)
    assert not view.built and view.markers_in_view((0, 0), (10, 10)) is None
    assert "building the raster" in view.mode_text(0, None)
    steps = build_steps(view, block_rows=2000)
    kinds = []
    try:
        while True:
            kinds.append(next(steps)[0])
    except StopIteration as stop:
        built = stop.value
    assert len(kinds) == n_build_steps(view, block_rows=2000)
    assert kinds.count("preview") == 1 and kinds.index("preview") == 6  # after the 6 blocks of totals
    assert view.binning is None  # the GUI thread applies the result
    core = SpotView.of(spots, marker_limit=100)
    np.testing.assert_array_equal(built.values, core.values)
    np.testing.assert_array_equal(built.binning.rows, core.binning.rows)
    for got, want in zip(built.image.levels, core.pyramid(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert built.image.contrast_limits == pytest.approx(core.contrast_limits())


def test_build_with_values_skips_the_totals():
    spots = _table(sp.csr_matrix(_counts(n=500)))
    view = SpotView.pending(spots)
    view.set_values(np.linspace(0, 1, 500), "score")
    steps = list(build_steps(view))
    assert [k for k, _ in steps] == ["preview", "step", "step", "step"] and n_build_steps(view) == 4


def test_preview_is_the_exact_mean_per_tile_and_the_placeholder_covers_the_spots():
    rng = np.random.default_rng(5)
    xy = rng.uniform([100, 40], [2100, 1040], (20_000, 2))
    values = rng.normal(size=len(xy))
    values[::17] = np.nan  # not drawn, not counted
    prev = preview_raster(xy, values, max_side=32)
    assert max(prev.levels[0].shape) <= 32
    # every finite value lands in the tile whose centre is nearest along each axis
    rc = prev.placement.to_rowcol(xy[:, ::-1])
    r, c = np.floor(rc[:, 0] + 0.5).astype(int), np.floor(rc[:, 1] + 0.5).astype(int)
    r = np.minimum(r, prev.levels[0].shape[0] - 1)
    c = np.minimum(c, prev.levels[0].shape[1] - 1)
    ok = np.isfinite(values)
    want = pd.Series(values[ok]).groupby([r[ok], c[ok]]).mean()
    got = prev.levels[0][want.index.get_level_values(0), want.index.get_level_values(1)]
    np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-5, atol=1e-6)
    holder = placeholder_raster(_table(np.ones((len(xy), 1)), xy=xy))
    np.testing.assert_allclose(holder.placement.to_yx([-0.5, 1.5], [-0.5, 1.5]),
                               [[40, 100], [1040, 2100]], atol=0.1)
    assert np.isnan(holder.levels[0]).all()


def test_reader_layers_whole_points_up_to_the_points_limit_then_a_pending_view():
    from napari_roiscore._layer_data import VIEW_KEY, spots_layers
    from napari_roiscore.spots.view import MARKER_LIMIT, POINTS_LAYER_LIMIT

    small = _table(sp.csr_matrix(_counts(n=POINTS_LAYER_LIMIT)))
    assert [kind for _, _, kind in spots_layers(small)] == ["points"]
    large = _table(sp.csr_matrix(_counts(n=POINTS_LAYER_LIMIT + 1)))
    layers = spots_layers(large, name="cells")
    assert [kind for _, _, kind in layers] == ["image", "points"]
    view = layers[1][1]["metadata"][VIEW_KEY]
    assert view.marker_limit == MARKER_LIMIT and not view.built  # built later, in a worker
    assert layers[0][1]["name"] == "cells (building raster…)"
    built = spots_layers(large, name="cells", build_now=True)  # no napari: built here
    assert built[0][1]["name"] == "cells (tile means)" and built[1][1]["metadata"][VIEW_KEY].built
