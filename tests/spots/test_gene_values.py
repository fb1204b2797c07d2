"""One gene's values per spot: found by name or id, normalised as scanpy does."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.spots.gene_values import gene_choices, gene_index, gene_values
from napari_roiscore.spots.table import SpotTable


def _spots():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix(rng.poisson(2.0, (50, 4)).astype(np.int32))
    var = pd.DataFrame({"gene_ids": ["ENS1", "ENS2", "ENS3", "ENS4"]}, index=["Cd68", "Epcam", "Actb", "Gapdh"])
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"b{i}" for i in range(50)]), var=var)
    a.obsm["spatial"] = rng.uniform(0, 100, (50, 2))
    return SpotTable(a, diameter_px=5.0), a


def test_gene_found_by_name_or_id_and_normalised_like_scanpy():
    spots, a = _spots()
    assert gene_choices(spots) == ["Cd68", "Epcam", "Actb", "Gapdh", "ENS1", "ENS2", "ENS3", "ENS4"]
    assert gene_index(spots, "CD68") == 0 and gene_index(spots, "ens3") == 2
    ref = a.copy()
    ref.X = ref.X.astype(np.float64)
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    np.testing.assert_allclose(gene_values(spots, 1), ref[:, "Epcam"].X.toarray().ravel(), rtol=1e-10)
    np.testing.assert_array_equal(gene_values(spots, 1, normalised=False), a[:, "Epcam"].X.toarray().ravel())
    with pytest.raises(RoiScoreError, match="No gene called 'Foo'"):
        gene_index(spots, "Foo")
