"""The first look at a large .h5ad (``spots/first_look.py``): the coarse preview of every
spot's total counts, read before the barcodes — the same image the full read draws, or
nothing when that cannot be promised."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from napari_roiscore.spots.first_look import first_look_h5ad
from napari_roiscore.spots.table import read_h5ad_spots
from napari_roiscore.spots.view import total_counts
from napari_roiscore.spots.view_build import preview_raster

N = 3000


def _slide(tmp_path, name="slide", X=None, pixel_size=0.5, **extra):
    rng = np.random.default_rng(7)
    if X is None:
        X = sp.random(N, 8, density=0.4, format="csr", random_state=7, dtype=np.float32) * 30
        X.data = np.round(X.data)
    a = ad.AnnData(X)
    a.var_names = [f"G{i}" for i in range(a.n_vars)]
    a.obs_names = [f"b{i}" for i in range(N)]
    a.obsm["spatial"] = rng.uniform(0, 5000, (N, 2))
    a.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 10.0}}}
    if pixel_size is not None:
        a.uns["roiscore"] = {"pixel_size_um": pixel_size}
    for key, value in extra.items():
        if key == "layers":
            a.layers.update(value)
        elif key == "obs":
            for col, v in value.items():
                a.obs[col] = v
        elif key == "raw":
            a.raw = a.copy()
    path = tmp_path / f"{name}.h5ad"
    a.write_h5ad(path)
    return path


def _same_as_full_read(path):
    look = first_look_h5ad(path, min_spots=1)
    assert look is not None
    spots = read_h5ad_spots(path)
    totals = total_counts(spots)
    own = preview_raster(spots.xy, totals)
    assert look.n_spots == spots.n_spots
    np.testing.assert_array_equal(look.totals, totals)
    assert len(look.image.levels) == len(own.levels)
    for a, b in zip(look.image.levels, own.levels):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(look.image.placement.matrix, own.placement.matrix)
    assert look.image.contrast_limits == own.contrast_limits
    assert look.pixel_size_um == spots.pixel_size_um
    return look


def test_the_first_look_is_the_preview_the_full_read_draws(tmp_path):
    look = _same_as_full_read(_slide(tmp_path))
    assert look.pixel_size_um == 0.5 and np.nanmax(look.image.levels[0]) > 0


@pytest.mark.parametrize("matrix", ["dense int", "csr int64", "dense whole floats"])
def test_dense_and_integer_matrices_give_the_same_preview(tmp_path, matrix):
    counts = np.random.default_rng(3).poisson(2.0, (N, 5))
    X = {"dense int": counts.astype(np.int32), "csr int64": sp.csr_matrix(counts.astype(np.int64)),
         "dense whole floats": counts.astype(np.float64)}[matrix]
    _same_as_full_read(_slide(tmp_path, X=X))


def test_no_pixel_size_means_pixels(tmp_path):
    assert _same_as_full_read(_slide(tmp_path, pixel_size=None)).pixel_size_um is None


def test_small_slides_get_no_first_look(tmp_path):
    path = _slide(tmp_path)
    assert first_look_h5ad(path, min_spots=N + 1) is None
    assert first_look_h5ad(path) is None  # the default: two million spots and more


@pytest.mark.parametrize("case", ["counts layer", "raw", "log-normalised X", "negative", "space ranger grid",
                                  "csc", "nan centre", "no centres"])
def test_no_first_look_where_the_full_read_might_draw_something_else(tmp_path, case):
    counts = sp.csr_matrix(np.random.default_rng(5).poisson(2.0, (N, 5)).astype(np.float32))
    if case == "counts layer":
        path = _slide(tmp_path, X=counts, layers={"counts": counts.copy()})
    elif case == "raw":
        path = _slide(tmp_path, X=counts, raw=True)
    elif case == "log-normalised X":
        path = _slide(tmp_path, X=sp.csr_matrix(np.log1p(counts.toarray())))
    elif case == "negative":
        bad = counts.copy()
        bad.data[5] = -1
        path = _slide(tmp_path, X=bad)
    elif case == "space ranger grid":  # its scale comes from the array grid (spots.lattice), not uns
        path = _slide(tmp_path, X=counts, pixel_size=None, obs={"array_row": np.arange(N), "array_col": np.arange(N)})
    elif case == "csc":
        path = _slide(tmp_path, X=sp.csc_matrix(counts))
    else:
        path = _slide(tmp_path, X=counts)
        import h5py

        with h5py.File(path, "r+") as f:
            if case == "nan centre":
                f["obsm/spatial"][3, 0] = np.nan
            else:
                del f["obsm/spatial"]
    assert first_look_h5ad(path, min_spots=1) is None


def test_a_broken_file_gets_no_first_look_and_no_error(tmp_path):
    path = tmp_path / "broken.h5ad"
    path.write_bytes(b"not hdf5 at all" * 100)
    assert first_look_h5ad(path, min_spots=1) is None
    assert first_look_h5ad(tmp_path / "missing.h5ad", min_spots=1) is None


def test_read_in_steps_across_rows_longer_than_a_step(tmp_path, monkeypatch):
    """Rows are summed whole even when one row holds more entries than a step reads."""
    import napari_roiscore.spots.in_steps as in_steps

    monkeypatch.setattr(in_steps, "STEP_BYTES", 12)  # 3 float32 entries per step; rows hold up to 8
    _same_as_full_read(_slide(tmp_path))
