"""spots/in_steps.py: the same results as the one-call numpy/pandas/anndata way, a step at a time."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_roiscore.readers.visium_hd_grid import hd_grid_indices
from napari_roiscore.spots import in_steps

from thread_helpers import longest_wait_of_this_thread


@pytest.fixture
def small_steps(monkeypatch):
    monkeypatch.setattr(in_steps, "STRING_STEP", 7)
    import napari_roiscore.readers.visium_hd_grid as grid

    monkeypatch.setattr(grid, "STRING_STEP", 7)


@pytest.mark.parametrize("values", [
    np.array([f"s_002um_{i:05d}-1".encode() for i in range(50)]),  # 10x h5: fixed-width bytes
    np.array([v.encode() for v in ["é-bin", "b", "ç"] * 10]),  # UTF-8 bytes (numpy's astype: ASCII only)
    np.array([f"AAAC{i}" for i in range(30)]),  # numpy unicode
    np.array([b"x", "y", 3] * 9, dtype=object),  # mixed objects
])
def test_strings_in_steps_are_the_strings_of_a_one_call_conversion(small_steps, values):
    out = in_steps.strings_in_steps(values)
    expected = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
    assert out.dtype == object and out.tolist() == expected and all(type(v) is str for v in out)


def test_empty_objects_are_none_and_numpy_keeps_its_huge_page_advice():
    from numpy._core.multiarray import _set_madvise_hugepage

    before = _set_madvise_hugepage(True)
    try:
        out = in_steps.empty_objects((5_000_000,))
        assert out.dtype == object and out[0] is None and out[-1] is None
        assert _set_madvise_hugepage(True) is True  # switched back on
    finally:
        _set_madvise_hugepage(before)


def test_make_anndata_equals_anndata_and_keeps_the_names(small_steps):
    n = 40
    obs = pd.DataFrame({"array_row": np.arange(n)}, index=pd.Index([f"bc{i}" for i in range(n)], dtype=object))
    x = sp.random(n, 3, density=0.5, format="csr", random_state=0)
    ours, theirs = in_steps.make_anndata(X=x, obs=obs), ad.AnnData(X=x, obs=obs)
    pd.testing.assert_frame_equal(ours.obs, theirs.obs)
    assert ours.obs_names.dtype == object and ours.obs_names.is_unique
    assert (ours.X != theirs.X).nnz == 0
    assert ad.settings.check_uniqueness  # anndata's own setting back


def test_grid_indices_in_steps_equal_and_one_bad_barcode_late_is_still_seen(small_steps):
    rows, cols = np.arange(60) % 17, np.arange(60) * 3
    barcodes = np.array([f"s_002um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols)], dtype=object)
    found = hd_grid_indices(barcodes)
    assert found is not None
    np.testing.assert_array_equal(found[0], rows)
    np.testing.assert_array_equal(found[1], cols)
    barcodes[55] = "AAACCCAAGGAT-1"  # a Visium (not HD) barcode in the last step
    assert hd_grid_indices(barcodes) is None


def test_making_millions_of_strings_leaves_other_threads_their_turns():
    raw = np.char.add("s_002um_", np.arange(2_000_000).astype(str)).astype("S")
    ours = longest_wait_of_this_thread(lambda: in_steps.strings_in_steps(raw))
    numpy = longest_wait_of_this_thread(lambda: raw.astype(str).astype(object))  # one call each
    assert ours < numpy / 3, (ours, numpy)
