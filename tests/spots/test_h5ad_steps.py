"""spots/h5ad_steps.py: an .h5ad read in steps equals anndata.read_h5ad, and leaves other
threads their turns where anndata's one-call reads hold the interpreter."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_roiscore.spots import in_steps
from napari_roiscore.spots.h5ad_steps import read_h5ad_in_steps

from real_data import real_data
from thread_helpers import longest_wait_of_this_thread

ad = pytest.importorskip("anndata")


def assert_equal(ours, theirs) -> None:
    """Every element of two AnnData objects equal: values, dtypes, types, names."""
    def same_array(x, y, what):
        assert type(x) is type(y), what
        if sp.issparse(x):
            assert x.format == y.format and x.dtype == y.dtype and (x != y).nnz == 0, what
            np.testing.assert_array_equal(x.indptr, y.indptr)
        else:
            np.testing.assert_array_equal(x, y, err_msg=what)
            assert x.dtype == y.dtype, what

    def same_mapping(x, y, what):
        assert list(x.keys()) == list(y.keys()), what
        for k in x:
            if isinstance(x[k], pd.DataFrame):
                pd.testing.assert_frame_equal(x[k], y[k])
            elif isinstance(x[k], dict) or hasattr(x[k], "keys"):
                same_mapping(x[k], y[k], f"{what}[{k!r}]")
            else:
                same_array(np.asarray(x[k]) if np.isscalar(x[k]) else x[k],
                           np.asarray(y[k]) if np.isscalar(y[k]) else y[k], f"{what}[{k!r}]")

    assert ours.shape == theirs.shape
    same_array(ours.X, theirs.X, "X")
    pd.testing.assert_frame_equal(ours.obs, theirs.obs, check_exact=True)
    pd.testing.assert_frame_equal(ours.var, theirs.var, check_exact=True)
    for name in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
        same_mapping(getattr(ours, name), getattr(theirs, name), name)
    assert (ours.raw is None) == (theirs.raw is None)
    if ours.raw is not None:
        same_array(ours.raw.X, theirs.raw.X, "raw.X")
        pd.testing.assert_frame_equal(ours.raw.var, theirs.raw.var)


@pytest.fixture
def small_steps(monkeypatch):
    """Steps of a few rows, so test-sized files are read in many steps (borders included)."""
    monkeypatch.setattr(in_steps, "STRING_STEP", 7)
    monkeypatch.setattr(in_steps, "STEP_BYTES", 64)


def _rich_anndata(n: int = 500, x_format: str = "csr") -> ad.AnnData:
    """Every kind of column and element an h5ad of spots may hold."""
    rng = np.random.default_rng(3)
    counts = sp.random(n, 12, density=0.3, format="csr", random_state=3, dtype=np.float32)
    counts.data = np.round(counts.data * 30)
    x = {"csr": counts, "csc": counts.tocsc(), "dense": counts.toarray()}[x_format]
    obs = pd.DataFrame({
        "cell_type": pd.Categorical(rng.choice(["tumour", "stroma", "macrophage"], n)),
        "region": pd.Categorical(rng.choice(["a", "b"], n), categories=["b", "a"], ordered=True),
        "array_row": rng.integers(0, 100, n).astype(np.int32),
        "area_um2": rng.uniform(10, 90, n),
        "in_tissue": rng.integers(0, 2, n).astype(bool),
        "note": [f"é-note {i}" for i in range(n)],  # non-ASCII strings
        "umis": pd.array(rng.integers(0, 9, n), dtype="Int64"),
        "qc_pass": pd.array(rng.integers(0, 2, n).astype(bool), dtype="boolean"),
    }, index=[f"s_002um_{i:05d}-1" for i in range(n)])
    obs.loc[obs.index[3], "umis"] = pd.NA
    var = pd.DataFrame({"gene_ids": [f"ENSG{i:05d}" for i in range(12)]},
                       index=["CD68", "CD163", "STAB1", "MRC1", "EPCAM", "KRT8", "PTPRC", "CD3E", "MS4A1",
                              "PECAM1", "VWF", "ACTA2"])
    a = ad.AnnData(x, obs=obs, var=var)
    a.obsm["spatial"] = rng.uniform(0, 5000, (n, 2))
    a.obsm["pca"] = rng.normal(size=(n, 3)).astype(np.float32)
    a.obsm["qc"] = pd.DataFrame({"genes": rng.integers(0, 50, n)}, index=a.obs_names)  # indexed by the names
    a.layers["counts"] = counts.copy()
    a.obsp["neighbours"] = sp.random(n, n, density=0.01, format="csr", random_state=4)
    a.varm["loadings"] = rng.normal(size=(12, 3))
    a.uns["spatial"] = {"slide": {"scalefactors": {"spot_diameter_fullres": 8.0}}}
    a.uns["roiscore"] = {"pixel_size_um": 0.5, "spot_shape": "square"}
    a.uns["colours"] = np.array(["#ff0000", "#00ff00"], dtype=object)
    a.raw = a.copy()
    return a


@pytest.mark.parametrize("x_format", ["csr", "csc", "dense"])
def test_a_rich_file_read_in_steps_equals_anndatas_read(tmp_path, small_steps, x_format):
    path = tmp_path / f"rich_{x_format}.h5ad"
    _rich_anndata(x_format=x_format).write_h5ad(path)
    ours, theirs = read_h5ad_in_steps(path), ad.read_h5ad(path)
    assert_equal(ours, theirs)
    assert type(ours.X) is type(theirs.X)
    assert ours.obs_names.dtype == object and list(ours.obs_names) == list(theirs.obs_names)
    assert ours.obs["umis"].dtype == theirs.obs["umis"].dtype and ours.obs["umis"].isna().sum() == 1
    assert ours.obs["region"].cat.ordered and list(ours.obs["region"].cat.categories) == ["b", "a"]
    assert ours.obs.index.is_unique  # the real names, not the placeholders anndata was built with


def test_real_visium_read_in_steps_equals_anndatas_read(tmp_path, small_steps):
    from napari_roiscore.readers import read_spaceranger

    spots = read_spaceranger(real_data("visium_cytassist_mouse"), load_images=False)
    path = tmp_path / "visium.h5ad"
    spots.adata.write_h5ad(path)
    ours = read_h5ad_in_steps(path)
    assert_equal(ours, ad.read_h5ad(path))
    assert ours.n_obs == spots.n_spots and list(ours.obs_names) == list(spots.adata.obs_names)


def test_an_index_column_with_its_own_name_keeps_it(tmp_path, small_steps):
    a = _rich_anndata(n=40)
    a.obs.index.name = "barcode"
    path = tmp_path / "named.h5ad"
    a.write_h5ad(path)
    ours = read_h5ad_in_steps(path)
    assert ours.obs.index.name == "barcode"
    assert_equal(ours, ad.read_h5ad(path))


def test_a_file_in_an_older_layout_is_read_by_anndata_itself(tmp_path):
    path = tmp_path / "old.h5ad"
    _rich_anndata(n=30).write_h5ad(path)
    with h5py.File(path, "r+") as f:  # raw as anndata < 0.7 wrote it: "raw.X", "raw.var" at the top
        del f["raw"]
        f.copy(f["X"], "raw.X")
        f.copy(f["var"], "raw.var")
    ours = read_h5ad_in_steps(path)
    assert ours.raw is not None and ours.raw.shape == ours.shape
    assert_equal(ours, ad.read_h5ad(path))


def test_reading_millions_of_barcodes_leaves_other_threads_their_turns(tmp_path):
    n = 1_500_000
    names = np.char.add("s_002um_", np.arange(n).astype(str)).astype(object)
    a = ad.AnnData(sp.csr_matrix((n, 3), dtype=np.float32), obs=pd.DataFrame(index=names))
    a.obsm["spatial"] = np.zeros((n, 2))
    path = tmp_path / "many.h5ad"
    a.write_h5ad(path)
    ours = longest_wait_of_this_thread(lambda: read_h5ad_in_steps(path))
    theirs = longest_wait_of_this_thread(lambda: ad.read_h5ad(path))  # one h5py call for all names
    assert ours < theirs / 3, (ours, theirs)
