"""spots/checks.py: the barcode uniqueness check a reader's worker runs on millions of names."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from napari_roiscore.spots import checks

from thread_helpers import longest_wait_of_this_thread


def test_first_duplicates_finds_what_pandas_finds_within_and_across_steps(monkeypatch):
    monkeypatch.setattr(checks, "UNIQUE_STEP", 7)  # many steps: repeats across step borders
    rng = np.random.default_rng(0)
    for _ in range(50):
        names = pd.Index([f"b{v}" for v in rng.integers(0, 60, rng.integers(1, 40))])
        expected = list(dict.fromkeys(names[names.duplicated()].tolist()))[:3]
        assert checks.first_duplicates(names) == expected
    assert checks.first_duplicates(pd.Index([f"s{i}" for i in range(100)])) == []


def test_checking_a_million_barcodes_leaves_other_threads_their_turns():
    names = pd.Index(np.char.add("s_002um_", np.arange(1_000_000).astype(str)).astype(object))
    ours = longest_wait_of_this_thread(lambda: checks.first_duplicates(names))
    pandas = longest_wait_of_this_thread(lambda: pd.Index(names.to_numpy()).is_unique)  # a fresh index: no cache
    assert ours < pandas / 3, (ours, pandas)


def test_anndata_skips_its_barcode_check_only_while_we_read_and_gets_its_setting_back():
    import anndata as ad
    import pytest

    assert ad.settings.check_uniqueness
    entered, leave = threading.Event(), threading.Event()

    def other_read():
        with checks.barcodes_checked_here():
            entered.set()
            assert leave.wait(10)

    th = threading.Thread(target=other_read)
    th.start()
    assert entered.wait(10)
    with pytest.raises(RuntimeError), checks.barcodes_checked_here():  # a read failing meanwhile
        assert not ad.settings.check_uniqueness
        raise RuntimeError
    assert not ad.settings.check_uniqueness  # the other read is still going
    leave.set()
    th.join()
    assert ad.settings.check_uniqueness  # the last one out restores it


def test_duplicate_barcodes_in_an_h5ad_are_still_refused(tmp_path):
    import anndata as ad
    import pytest
    import scipy.sparse as sp

    from napari_roiscore.errors import RoiScoreError
    from napari_roiscore.readers.dispatch import read_spots_of_kind

    a = ad.AnnData(sp.csr_matrix(np.ones((4, 2), np.float32)))
    a.obs_names = ["A", "B", "A", "C"]
    a.var_names = ["CD68", "STAB1"]
    a.obsm["spatial"] = np.arange(8.0).reshape(4, 2)
    a.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 10.0}}}
    a.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(RoiScoreError, match=r"duplicate spot barcodes, e\.g\. \['A'\]"):
        read_spots_of_kind(tmp_path / "dup.h5ad", "h5ad")
    assert ad.settings.check_uniqueness
