"""SpotTable and the .h5ad reader: raw counts are whole numbers."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.spots.table import is_whole_numbers, read_h5ad_spots


def _adata(n: int = 30, g: int = 12, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    a = ad.AnnData(X=sp.csr_matrix(rng.poisson(3, (n, g)).astype(np.float32)))
    a.obs_names = [f"s{i}" for i in range(n)]
    a.var_names = [f"G{j}" for j in range(g)]
    a.obsm["spatial"] = rng.uniform(0, 1000, (n, 2))
    a.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 50.0}}}
    return a


def _lognorm(a: ad.AnnData) -> None:
    x = a.X.toarray()
    a.X = sp.csr_matrix(np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1) * 1e4))


def test_is_whole_numbers_dense_sparse_and_ints():
    assert is_whole_numbers(np.arange(6).reshape(2, 3))
    assert is_whole_numbers(np.array([[1.0, 2.0], [np.nan, 0.0]]))  # NaN is validate's business
    assert not is_whole_numbers(np.array([[1.0, 2.5]]))
    assert is_whole_numbers(sp.csr_matrix(np.array([[0, 3.0]])))
    assert not is_whole_numbers(sp.csc_matrix(np.array([[0, 0.1]])))


def test_log_normalised_x_without_raw_counts_is_refused(tmp_path):
    a = _adata()
    _lognorm(a)
    a.write_h5ad(tmp_path / "lognorm.h5ad")
    with pytest.raises(RoiScoreError, match=r"lognorm\.h5ad.*log-normalised") as err:
        read_h5ad_spots(tmp_path / "lognorm.h5ad")
    assert "layers['counts']" in err.value.fix and "adata.raw" in err.value.fix


def test_log_normalised_x_falls_back_on_integer_raw(tmp_path):
    a = _adata()
    counts = a.X.toarray()
    a.raw = a.copy()
    _lognorm(a)
    a = a[:, 2:].copy()  # X holds fewer genes than .raw (e.g. highly variable genes)
    a.write_h5ad(tmp_path / "raw.h5ad")
    s = read_h5ad_spots(tmp_path / "raw.h5ad")
    assert s.provenance["counts"] == "raw.X"
    assert s.gene_names == [f"G{j}" for j in range(12)]
    np.testing.assert_array_equal(s.counts.toarray(), counts)
    np.testing.assert_allclose(s.xy, a.obsm["spatial"])


def test_counts_layer_wins_and_must_be_whole(tmp_path):
    a = _adata()
    counts = a.X.copy()
    _lognorm(a)
    a.layers["counts"] = counts
    a.write_h5ad(tmp_path / "layer.h5ad")
    s = read_h5ad_spots(tmp_path / "layer.h5ad")
    assert s.provenance["counts"] == "layers['counts']"
    np.testing.assert_array_equal(s.counts.toarray(), counts.toarray())
    a.layers["counts"] = a.X.copy()
    a.write_h5ad(tmp_path / "badlayer.h5ad")
    with pytest.raises(RoiScoreError, match=r"layers\['counts'\] is not whole numbers"):
        read_h5ad_spots(tmp_path / "badlayer.h5ad")


def test_declared_normalised_values_are_kept(tmp_path):
    a = _adata()
    _lognorm(a)
    a.uns["roiscore"] = {"counts_kind": "q3"}
    a.write_h5ad(tmp_path / "q3.h5ad")
    assert read_h5ad_spots(tmp_path / "q3.h5ad").provenance["counts"] == "X"


def test_dense_integer_valued_floats_are_counts(tmp_path):
    a = _adata()
    a.X = a.X.toarray()
    a.write_h5ad(tmp_path / "dense.h5ad")
    assert read_h5ad_spots(tmp_path / "dense.h5ad").provenance["counts"] == "X"


def test_a_normalised_counts_layer_falls_back_on_raw_x(tmp_path):
    """layers['counts'] holding log values blocked a file whose X held good raw counts."""
    a = _adata()
    raw = a.X.copy()
    _lognorm(a)
    a.layers["counts"] = a.X.copy()
    a.X = raw
    a.write_h5ad(tmp_path / "swapped.h5ad")
    with pytest.warns(UserWarning, match="using X"):
        s = read_h5ad_spots(tmp_path / "swapped.h5ad")
    assert s.provenance["counts"] == "X"
    np.testing.assert_array_equal(s.counts.toarray(), raw.toarray())


def test_almost_whole_counts_are_shown_in_full_in_the_message(tmp_path):
    a = _adata()
    a.X = a.X.astype(np.float64) * (1 + 1e-12)
    a.write_h5ad(tmp_path / "noise.h5ad")
    with pytest.raises(RoiScoreError, match=r"e\.g\. \d+\.\d{6,}"):
        read_h5ad_spots(tmp_path / "noise.h5ad")
