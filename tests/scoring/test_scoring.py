"""Scoring methods against their references.

* ``scanpy``: equal to ``scanpy.tl.score_genes`` (to 1e-6; in practice ~1e-16)
  on a real Space Ranger output and on ``scanpy.datasets.pbmc68k_reduced()``.
  scanpy is given the same float64 ``normalize_total(1e4)`` + ``log1p``
  expression the package computes from raw counts.
* ``mean_z``: against an independent dense numpy computation.
* UCell / singscore: small fixtures worked out by hand from the definitions
  (arithmetic in the comments), and a brute-force dense ranking.
* pseudobulk: CPM and Q3 worked out by hand.
"""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata

from napari_roiscore.scoring.control_genes import choose_control_genes, control_gene_score
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import gene_means, library_sizes
from napari_roiscore.scoring.pseudobulk import (
    normalise_pseudobulk,
    pseudobulk_counts,
    score_bulk_profiles,
    score_pseudobulk,
)
from napari_roiscore.scoring.rank_scores import singscore_profiles, singscore_spots, ucell_spots
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.scorer import TABLE_COLUMNS, RoiScorer
from napari_roiscore.scoring.methods import METHODS, aggregate, score_spots
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature, match_genes
from napari_roiscore.spots.table import SpotTable
from real_data import SHARED_DATA, real_data

VISIUM_H5 = SHARED_DATA / "visium_cytassist_mouse" / "filtered_feature_bc_matrix.h5"


# --------------------------------------------------------------------------- helpers
def make_spots(X, genes=None, xy=None, var=None) -> SpotTable:
    X = sp.csr_matrix(X)
    n, g = X.shape
    genes = genes or [f"G{i}" for i in range(g)]
    a = ad.AnnData(X=X, var=var if var is not None else pd.DataFrame(index=genes))
    a.obs_names = [f"s{i}" for i in range(n)]
    a.obsm["spatial"] = np.zeros((n, 2)) if xy is None else np.asarray(xy, dtype=float)
    return SpotTable(a, diameter_px=10.0)


def random_counts(n_spots: int, n_genes: int, density: float, seed: int) -> sp.csr_matrix:
    """Sparse integer counts with gene-dependent detection and levels (seeded)."""
    rng = np.random.default_rng(seed)
    gene_rate = rng.lognormal(0, 1.2, n_genes)
    p = np.clip(density * gene_rate / gene_rate.mean(), 0, 0.95)
    mask = rng.random((n_spots, n_genes)) < p
    vals = rng.geometric(0.5, size=mask.sum()).astype(np.float32)  # 1, 2, 3...
    X = np.zeros((n_spots, n_genes), dtype=np.float32)
    X[mask] = vals
    return sp.csr_matrix(X)


def scanpy_log_normalised(X, var_names) -> ad.AnnData:
    """What scanpy users do: normalize_total(1e4) + log1p, here on float64 data."""
    sc = pytest.importorskip("scanpy")
    a = ad.AnnData(X=sp.csr_matrix(X, dtype=np.float64), var=pd.DataFrame(index=list(var_names)))
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    return a


def scanpy_score(a: ad.AnnData, genes, **kw) -> np.ndarray:
    sc = pytest.importorskip("scanpy")
    b = a.copy()
    sc.tl.score_genes(b, list(genes), **kw)
    return b.obs["score"].to_numpy()


@pytest.fixture(scope="module")
def visium() -> ad.AnnData:
    real_data("visium_cytassist_mouse", "filtered_feature_bc_matrix.h5")
    sc = pytest.importorskip("scanpy")
    a = sc.read_10x_h5(VISIUM_H5)
    a.var_names_make_unique()  # scanpy's score_genes needs unique names
    a.obsm["spatial"] = np.zeros((a.n_obs, 2))
    return a


@pytest.fixture(scope="module")
def visium_scanpy(visium) -> ad.AnnData:
    return scanpy_log_normalised(visium.X, visium.var_names)


# --------------------------------------------------------------------------- scanpy
def test_scanpy_equal_on_real_visium_example_panel(visium, visium_scanpy):
    spots = SpotTable(visium.copy(), diameter_px=10.0)
    res = score_spots(spots, EXAMPLE_PANEL, "scanpy")
    # mouse symbols (Cd68, Stab1...) matched case-insensitively
    assert res.match.up_used == ("Cd68", "Cd163", "Stab1", "Mrc1", "Msr1")
    assert res.match.missing == ()
    ref = scanpy_score(visium_scanpy, res.match.up_used)
    assert np.abs(res.values - ref).max() < 1e-6
    assert np.count_nonzero(res.values) > 50  # not a trivially constant score
    ctrl = res.params["control_genes"]
    assert 50 <= len(ctrl) <= 5 * 50 and not set(ctrl) & set(res.match.up_used)
    assert res.params["ctrl_size"] == 50 and res.params["n_bins"] == 25


@pytest.mark.parametrize("seed", [0, 1])
def test_scanpy_equal_on_real_visium_random_signatures(visium, visium_scanpy, seed):
    rng = np.random.default_rng(seed)
    genes = list(rng.choice(np.asarray(visium.var_names), 40, replace=False))
    spots = SpotTable(visium.copy(), diameter_px=10.0)
    res = score_spots(spots, Signature("random", up=tuple(genes)), "scanpy")
    ref = scanpy_score(visium_scanpy, res.match.up_used)
    assert np.abs(res.values - ref).max() < 1e-6


def test_scanpy_nondefault_parameters_equal(visium, visium_scanpy):
    spots = SpotTable(visium.copy(), diameter_px=10.0)
    sig = Signature("s", up=("Hbb-bs", "Hba-a1", "Prl8a2", "Tpbpa", "Cd68"))
    res = score_spots(spots, sig, "scanpy", ctrl_size=20, n_bins=10, random_state=7)
    ref = scanpy_score(visium_scanpy, res.match.up_used, ctrl_size=20, n_bins=10, random_state=7)
    assert np.abs(res.values - ref).max() < 1e-6


def test_scanpy_down_set_is_up_minus_down(visium, visium_scanpy):
    spots = SpotTable(visium.copy(), diameter_px=10.0)
    sig = Signature("updown", up=("Cd68", "Mrc1", "Lyz2"), down=("Hbb-bs", "Prl8a2"))
    res = score_spots(spots, sig, "scanpy")
    ref = scanpy_score(visium_scanpy, res.match.up_used) - scanpy_score(
        visium_scanpy, res.match.down_used
    )
    assert np.abs(res.values - ref).max() < 1e-6
    assert res.params["control_genes_down"]


def test_scanpy_equal_on_pbmc68k_reduced():
    """pbmc68k_reduced ships no raw counts: its ``.raw.X`` is already
    log-normalised (its ``X`` is scaled), so the algorithm is run on ``.raw.X``
    without normalisation (``log_normalise=False``), as float64 for both."""
    sc = pytest.importorskip("scanpy")
    pb = sc.datasets.pbmc68k_reduced()
    X = sp.csr_matrix(pb.raw.X, dtype=np.float64)
    a = ad.AnnData(X=X, var=pd.DataFrame(index=pb.raw.var_names))
    names = list(pb.raw.var_names)
    rng = np.random.default_rng(3)
    gene_sets = [
        ["CD79A", "MS4A1", "CD3E", "NKG7", "LYZ", "CST3", "FCGR3A"],
        list(rng.choice(names, 25, replace=False)),
    ]
    for genes in gene_sets:
        genes = [g for g in genes if g in names]
        idx = np.array([names.index(g) for g in genes])
        ours = control_gene_score(X, idx, log_normalise=False).values
        ref = scanpy_score(a, genes, use_raw=False)
        assert np.abs(ours - ref).max() < 1e-6


def test_scanpy_weighted_equals_weighted_mean_minus_controls():
    X = random_counts(300, 400, 0.1, seed=4)
    genes = [f"G{i}" for i in range(400)]
    spots = make_spots(X, genes)
    sig = Signature("w", up=("G1", "G5", "G9"), weights={"G1": 2.0, "G5": 1.0, "G9": 1.0})
    res = score_spots(spots, sig, "scanpy")
    # independent: dense log1p(CP10k), weighted mean (2,1,1)/4 minus control mean
    D = X.toarray().astype(np.float64)
    E = np.log1p(D / (D.sum(axis=1, keepdims=True) / 1e4))
    ctrl = [genes.index(g) for g in res.params["control_genes"]]
    expect = (2 * E[:, 1] + E[:, 5] + E[:, 9]) / 4 - E[:, ctrl].mean(axis=1)
    assert np.allclose(res.values, expect, atol=1e-12)


def test_scanpy_controls_are_frozen_on_the_whole_slide():
    """Controls depend on the whole slide's gene means; ROI scores are plain
    aggregates of the per-spot scores, i.e. computed with those frozen controls."""
    X = random_counts(200, 300, 0.1, seed=5)
    spots = make_spots(X)
    res = score_spots(spots, Signature("s", up=("G3", "G4")), "scanpy")
    members = np.arange(0, 200, 3)
    assert aggregate(res.values, members).score == pytest.approx(res.values[members].mean())
    # drawing controls on a subset of spots would give another control set
    sub = choose_control_genes(gene_means(X[members]), np.array([3, 4]))
    full = [int(g[1:]) for g in res.params["control_genes"]]
    assert sorted(full) != sorted(sub.tolist())


def test_choose_control_genes_by_hand():
    # 12 genes with distinct means 0..11; n_bins=4 -> n_items = round(12/3) = 4;
    # rank (1..12) // 4 -> bins: ranks 1-3 -> 0, 4-7 -> 1, 8-11 -> 2, 12 -> 3.
    means = np.arange(12, dtype=float)
    # signature gene 5 (rank 6, bin 1): bin 1 = genes 3,4,5,6; ctrl_size 10 > 4 so
    # no draw; drop the signature gene -> controls 3, 4, 6
    assert choose_control_genes(means, np.array([5]), ctrl_size=10, n_bins=4).tolist() == [3, 4, 6]
    # ties take the lowest rank: genes 0..3 all mean 0 -> rank 1 -> bin 0,
    # gene 4 rank 5 -> bin 1 (ranks 5,6,7 -> genes 4,5,6), so with signature gene 0
    # the controls are 1, 2, 3
    tied = np.array([0, 0, 0, 0, 4, 5, 6, 7, 8, 9, 10, 11], dtype=float)
    assert choose_control_genes(tied, np.array([0]), ctrl_size=10, n_bins=4).tolist() == [1, 2, 3]
    # a draw: RandomState(0).choice(4, 2, replace=False) picks positions [2, 3]
    # of bin 1 (genes 3,4,5,6) -> genes 5 and 6; gene 5 is the signature -> [6]
    assert np.random.RandomState(0).choice(4, 2, replace=False).tolist() == [2, 3]
    assert choose_control_genes(means, np.array([5]), ctrl_size=2, n_bins=4).tolist() == [6]


def test_scanpy_without_possible_controls_raises():
    X = sp.csr_matrix(np.array([[1, 2], [3, 4]], dtype=float))
    spots = make_spots(X, ["A", "B"])
    with pytest.raises(RoiScoreError, match="control genes"):
        score_spots(spots, Signature("s", up=("A", "B")), "scanpy")


def test_package_does_not_import_scanpy():
    code = (
        "import sys, napari_roiscore.scoring.methods, napari_roiscore.scoring.scorer, "
        "napari_roiscore.scoring.control_genes, napari_roiscore.scoring.pseudobulk\n"
        "print('scanpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- mean_z
def test_mean_z_against_numpy():
    X = random_counts(150, 60, 0.3, seed=6)
    X[7] = 0  # an empty spot: all values 0
    spots = make_spots(X)
    sig = Signature("s", up=("G2", "G3", "G10"), down=("G11",), weights={"G2": 3.0})
    res = score_spots(spots, sig, "mean_z")
    D = X.toarray().astype(np.float64)
    tot = D.sum(axis=1, keepdims=True)
    E = np.log1p(np.divide(D * 1e4, tot, out=np.zeros_like(D), where=tot > 0))
    sd = E.std(axis=0)
    Z = (E - E.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    assert (sd[[2, 3, 10, 11]] > 0).sum() >= 2
    # a gene without variation has no z-score and is left out of its side's average
    w_up = {2: 3.0, 3: 1.0, 10: 1.0}
    kept = {g: w for g, w in w_up.items() if sd[g] > 0}
    expect = sum(w * Z[:, g] for g, w in kept.items()) / sum(kept.values()) - Z[:, 11]
    assert np.allclose(res.values, expect, atol=1e-10)
    assert res.constant == tuple(f"G{g}" for g in (2, 3, 10, 11) if sd[g] == 0)


def test_mean_z_reports_constant_gene():
    X = random_counts(50, 20, 0.3, seed=7).toarray()
    X[:, 4] = 0
    res = score_spots(make_spots(X), Signature("s", up=("G1", "G4")), "mean_z")
    assert res.constant == ("G4",)


# --------------------------------------------------------------------------- UCell
# Fixture: 6 genes A..F, 4 spots.
HAND = np.array(
    [
        [5, 3, 3, 0, 0, 1],  # spot 1
        [0, 0, 0, 0, 2, 0],  # spot 2
        [1, 0, 1, 0, 1, 1],  # spot 3
        [0, 0, 0, 0, 0, 0],  # spot 4 (empty)
    ],
    dtype=float,
)
ABC = ["A", "B", "C", "D", "E", "F"]


def test_ucell_by_hand():
    spots = make_spots(HAND, ABC)
    sig = Signature("s", up=("A", "C", "D"))
    # UCell >= 2.8: ranks > maxRank count as maxRank; score = 1 - U / (n*maxRank - n(n+1)/2).
    # maxRank = 3, n = 3: denominator 9 - 6 = 3.  Descending ranks, ties averaged:
    # spot 1: A=5 ->1; B,C=3 -> (2+3)/2=2.5; F=1 -> 4; D,E=0 -> (5+6)/2=5.5
    #   A 1, C 2.5, D 5.5 -> 3;  U = 6.5 - 6 = 0.5;  1 - 0.5/3 = 5/6
    # spot 2: E=2 -> 1; five zeros -> (2+...+6)/5 = 4 -> 3:  U = 9 - 6 = 3 -> 0
    # spot 3: A,C,E,F=1 -> (1+2+3+4)/4 = 2.5; B,D=0 -> 5.5
    #   A 2.5, C 2.5, D 3;  U = 8 - 6 = 2;  1 - 2/3 = 1/3
    # spot 4: six zeros -> 3.5 -> 3 -> 0
    got = score_spots(spots, sig, "ucell", max_rank=3).values
    assert np.allclose(got, [5 / 6, 0.0, 1 / 3, 0.0])
    # maxRank 1500 -> min(1500, 6) = 6: nothing is capped; denominator 18 - 6 = 12.
    # spot 1: 1 + 2.5 + 5.5 = 9, U = 3, 1 - 3/12 = 3/4
    # spot 2: zeros rank 4 (<= 6): 4+4+4 = 12, U = 6, 1 - 6/12 = 1/2
    # spot 3: 2.5 + 2.5 + 5.5 = 10.5, U = 4.5, 1 - 4.5/12 = 5/8
    # spot 4: 3.5 * 3 = 10.5 -> 5/8
    got = score_spots(spots, sig, "ucell").values
    assert np.allclose(got, [3 / 4, 1 / 2, 5 / 8, 5 / 8])


def test_ucell_2021_variant_by_hand():
    spots = make_spots(HAND, ABC)
    sig = Signature("s", up=("A", "C", "D"))
    # UCell < 2.8: ranks > maxRank become maxRank + 1; score = 1 - U / (n*maxRank); all beyond -> 0.
    # spot 1: A 1, C 2.5, D -> 4;  U = 7.5 - 6 = 1.5;  1 - 1.5/9 = 5/6
    # spot 3: A 2.5, C 2.5, D 4;  U = 9 - 6 = 3;  1 - 3/9 = 2/3
    got = score_spots(spots, sig, "ucell", max_rank=3, variant="2021").values
    assert np.allclose(got, [5 / 6, 0.0, 2 / 3, 0.0])
    with pytest.raises(RoiScoreError, match="variant"):
        score_spots(spots, sig, "ucell", variant="2019")


def test_ucell_missing_gene_counts_as_unexpressed_by_hand():
    spots = make_spots(HAND, ABC)
    # up = A, C and a gene not in the data ("ZZZ"): n = 3, ZZZ has rank maxRank = 3 (UCell's impute)
    # spot 1: A 1, C 2.5, ZZZ 3: U = 6.5 - 6 = 0.5 -> 5/6 (as with D above, which is unexpressed)
    got = score_spots(spots, Signature("s", up=("A", "C", "ZZZ")), "ucell", max_rank=3)
    assert np.allclose(got.values, score_spots(spots, Signature("s", up=("A", "C", "D")), "ucell",
                                               max_rank=3).values)
    assert got.params["missing_genes"].startswith("imputed")
    # the 2021 variant leaves ZZZ out: n = 2, spot 1: A 1, C 2.5: U = 3.5 - 3 = 0.5 -> 1 - 0.5/6
    old = score_spots(spots, Signature("s", up=("A", "C", "ZZZ")), "ucell", max_rank=3, variant="2021")
    assert old.values[0] == pytest.approx(1 - 0.5 / 6)


def test_ucell_down_set_by_hand():
    spots = make_spots(HAND, ABC)
    # up {A}, down {E}, maxRank 3:
    # spot 1: up A rank 1 -> U=0 -> 1;  down E rank 5.5 -> insignificant -> 0;  max(0, 1-0) = 1
    # spot 2: up A rank 4 -> 0;  down E rank 1 -> 1;  max(0, 0-1) = 0
    # spot 3: up A 2.5 -> U=1.5 -> 1-1.5/3 = 0.5;  down E 2.5 -> 0.5;  0
    got = score_spots(spots, Signature("s", up=("A",), down=("E",)), "ucell", max_rank=3).values
    assert np.allclose(got[:3], [1.0, 0.0, 0.0])


def ucell_dense(D: np.ndarray, up, max_rank: int) -> np.ndarray:
    """Brute force from the definition (UCell >= 2.8): rank every gene of every spot."""
    m = min(max_rank, D.shape[1])
    n = len(up)
    out = []
    for row in D:
        r = np.minimum(rankdata(-row, method="average")[up], m)
        out.append(1 - (r.sum() - n * (n + 1) / 2) / (n * m - n * (n + 1) / 2))
    return np.array(out)


def ucell_dense_2021(D: np.ndarray, up, max_rank: int) -> np.ndarray:
    """Brute force of UCell before 2.8."""
    m = min(max_rank, D.shape[1])
    n = len(up)
    out = []
    for row in D:
        r = rankdata(-row, method="average")[up]
        if np.all(r > m):
            out.append(0.0)
            continue
        r = np.where(r > m, m + 1, r)
        out.append(1 - (r.sum() - n * (n + 1) / 2) / (n * m))
    return np.array(out)


@pytest.mark.parametrize("max_rank", [20, 150, 1500])
def test_ucell_sparse_equals_dense_bruteforce(max_rank):
    # 300 genes, ~2-60 % detected per spot: some spots have more than max_rank
    # expressed genes, some fewer, and for max_rank=150/1500 zeros can rank <= max_rank
    X = random_counts(120, 300, 0.15, seed=8)
    X = sp.vstack([X, random_counts(30, 300, 0.6, seed=9)]).tocsr()
    D = X.toarray()
    up = [0, 1, 2, 50, 120, 299]
    got = ucell_spots(X, np.array(up), max_rank=max_rank)
    assert np.allclose(got, ucell_dense(D, up, max_rank))
    old = ucell_spots(X, np.array(up), max_rank=max_rank, variant="2021")
    assert np.allclose(old, ucell_dense_2021(D, up, max_rank))


def test_rank_methods_with_large_counts_explicit_zeros_and_floats():
    """Large counts (>= 32, counted apart from the per-spot histograms), explicitly
    stored zeros, and non-integer values all rank like the dense brute force."""
    rng = np.random.default_rng(17)
    X = random_counts(80, 120, 0.4, seed=18)
    X.data *= rng.choice([1, 1, 1, 7, 40, 300], X.nnz)  # many values >= 32, many ties
    D = X.toarray()
    Xz = X.copy()
    Xz.data[::5] = 0  # explicit zeros stay stored
    Dz = Xz.toarray()
    up = [0, 3, 5, 60, 119]
    for M, Dm in ((X, D), (Xz, Dz), (sp.csr_matrix(np.sqrt(D) / 3.0), np.sqrt(D) / 3.0)):
        assert np.allclose(ucell_spots(M, np.array(up), max_rank=40), ucell_dense(Dm, up, 40))
        assert np.allclose(singscore_spots(M, np.array(up)), singscore_profiles(Dm, np.array(up)))


def test_ucell_invariant_to_normalisation():
    X = random_counts(40, 80, 0.3, seed=10)
    D = X.toarray().astype(np.float64)
    norm = np.log1p(D / np.maximum(D.sum(axis=1, keepdims=True), 1) * 1e4)
    up = np.array([1, 2, 3])
    assert np.allclose(ucell_spots(X, up, max_rank=30), ucell_spots(sp.csr_matrix(norm), up, max_rank=30))


def test_ucell_signature_longer_than_max_rank_raises():
    with pytest.raises(RoiScoreError, match="max_rank"):
        score_spots(make_spots(HAND, ABC), Signature("s", up=("A", "B", "C")), "ucell", max_rank=2)


# --------------------------------------------------------------------------- singscore
def test_singscore_by_hand():
    spots = make_spots(HAND, ABC)
    # G = 6.  Ascending ranks, ties "min":
    # spot 1: D,E=0 -> 1; F=1 -> 3; B,C=3 -> 4; A=5 -> 6
    #   up {A,C,D}: 6,4,1 -> mean 11/3; n=3: min (3+1)/2 = 2, max (12-3+1)/2 = 5
    #   (11/3 - 2)/(5 - 2) = 5/9;  centred 5/9 - 1/2 = 1/18
    # spot 3: B,D=0 -> 1; A,C,E,F=1 -> 3
    #   up: 3,3,1 -> 7/3;  (7/3 - 2)/3 = 1/9;  centred -7/18
    # spot 4: all 0 -> ranks 1: (1 - 2)/3 = -1/3 ("min" ties go below the bound); centred -5/6
    sig = Signature("s", up=("A", "C", "D"))
    got = score_spots(spots, sig, "singscore").values
    assert np.allclose(got[[0, 2, 3]], [1 / 18, -7 / 18, -5 / 6])
    got = score_spots(spots, sig, "singscore", center=False).values
    assert np.allclose(got[[0, 2]], [5 / 9, 1 / 9])


def test_singscore_down_set_by_hand():
    # spot 1, down {E,F}: ranks 1, 3 -> mean 2; n=2: min 1.5, max (12-2+1)/2 = 5.5
    #   (2 - 1.5)/4 = 1/8 -> enters as 1 - 1/8 = 7/8
    #   centred total: (5/9 - 1/2) + (7/8 - 1/2) = 1/18 + 3/8 = 31/72
    #   uncentred total: 5/9 + 7/8 = 103/72
    spots = make_spots(HAND, ABC)
    sig = Signature("s", up=("A", "C", "D"), down=("E", "F"))
    assert score_spots(spots, sig, "singscore").values[0] == pytest.approx(31 / 72)
    assert score_spots(spots, sig, "singscore", center=False).values[0] == pytest.approx(103 / 72)


def test_singscore_sparse_equals_dense_ranks():
    X = random_counts(100, 200, 0.2, seed=11)
    D = X.toarray()
    up, down = np.array([3, 7, 100]), np.array([0, 150])
    got = singscore_spots(X, up, down)
    dense = singscore_profiles(D, up, down)  # scipy rankdata(method="min") on dense rows
    assert np.allclose(got, dense)
    # and explicitly from the definition for the up set alone
    r = np.apply_along_axis(rankdata, 1, D, method="min")[:, up]
    n, G = len(up), D.shape[1]
    expect = (r.mean(axis=1) - (n + 1) / 2) / ((2 * G - n + 1) / 2 - (n + 1) / 2) - 0.5
    assert np.allclose(singscore_spots(X, up), expect)


def test_rank_methods_ignore_weights_and_say_so():
    spots = make_spots(HAND, ABC)
    plain = score_spots(spots, Signature("s", up=("A", "C")), "ucell")
    weighted = score_spots(spots, Signature("s", up=("A", "C"), weights={"A": 5.0}), "ucell")
    assert np.allclose(plain.values, weighted.values)
    assert "ignored" in weighted.params["weights"]


# --------------------------------------------------------------------------- pseudobulk
# Three ROIs x four genes, chosen so that Q3s are 2, 4, 8 (geometric mean 4):
BULK = np.array(
    [
        [0, 1, 1, 5],  # sorted 0,1,1,5: position 0.75*(4-1) = 2.25 -> 1 + 0.25*(5-1) = 2
        [0, 2, 4, 4],  # sorted 0,2,4,4: 4 + 0.25*(4-4) = 4
        [8, 8, 8, 0],  # sorted 0,8,8,8: 8
    ],
    dtype=float,
)


def test_q3_by_hand():
    norm, factors, ok = normalise_pseudobulk(BULK, "q3")
    # geometric mean (2*4*8)^(1/3) = 4 -> factors 2/4, 4/4, 8/4
    assert ok.all()
    assert np.allclose(factors, [0.5, 1.0, 2.0])
    assert np.allclose(norm, [[0, 2, 2, 10], [0, 2, 4, 4], [4, 4, 4, 0]])


def test_cpm_by_hand():
    norm, factors, ok = normalise_pseudobulk(BULK, "cpm")
    # totals 7, 10, 24 -> divisors 7e-6, 1e-5, 2.4e-5
    assert np.allclose(factors, [7e-6, 1e-5, 2.4e-5])
    assert np.allclose(norm[1], [0, 2e5, 4e5, 4e5])


def test_q3_zero_roi_is_left_out():
    # ROI 4 counts (0, 0, 0, 3): Q3 = 0 + 0.25*(3-0) = 0.75 > 0, can be normalised;
    # an ROI with (0, 0, 0, 0) has Q3 = 0: left out, and of the geometric mean too
    assert normalise_pseudobulk(np.vstack([BULK, [0, 0, 0, 3]]), "q3")[2].all()
    norm, factors, ok = normalise_pseudobulk(np.vstack([BULK, [0, 0, 0, 0]]), "q3")
    assert ok.tolist() == [True, True, True, False]
    assert np.allclose(factors[:3], [0.5, 1.0, 2.0])
    assert np.isnan(norm[3]).all()


def test_pseudobulk_mean_z_by_hand():
    match = match_genes(Signature("s", up=("g2",)), ["g0", "g1", "g2", "g3"])
    res = score_bulk_profiles(BULK, match, norm="q3", score="mean_z", n_spots=[3, 3, 3])
    # gene g2 after Q3: 2, 4, 4 -> log2(x+1) = log2 3, log2 5, log2 5
    e = np.log2([3.0, 5.0, 5.0])
    z = (e - e.mean()) / e.std(ddof=1)
    assert np.allclose(res.values, z)
    assert res.status == ("ok", "ok", "ok")
    # one ROI only: no z-score
    one = score_bulk_profiles(BULK[:1], match, norm="cpm", n_spots=[3])
    assert np.isnan(one.values[0]) and "2 ROIs" in one.status[0]


def test_pseudobulk_singscore_is_per_roi_and_norm_free():
    match = match_genes(Signature("s", up=("g3",)), ["g0", "g1", "g2", "g3"])
    cpm = score_bulk_profiles(BULK, match, norm="cpm", score="singscore").values
    q3 = score_bulk_profiles(BULK, match, norm="q3", score="singscore").values
    # ROI 1: ascending min ranks of (0,1,1,5): g3 -> 4; n=1: min 1, max (8-1+1)/2 = 4
    #   (4-1)/(4-1) = 1 -> centred 0.5.  ROI 3 (8,8,8,0): g3 -> 1 -> 0 - 0.5 = -0.5
    assert np.allclose(cpm, q3)
    assert cpm[0] == pytest.approx(0.5) and cpm[2] == pytest.approx(-0.5)


def test_score_pseudobulk_sums_spot_counts():
    X = random_counts(60, 30, 0.4, seed=12)
    spots = make_spots(X)
    groups = [np.arange(0, 20), np.arange(20, 45), np.arange(45, 60), np.array([], dtype=int)]
    res = score_pseudobulk(spots, groups, Signature("s", up=("G1", "G2")), norm="cpm")
    assert np.allclose(pseudobulk_counts(X, groups[1]), X[20:45].toarray().sum(axis=0))
    assert res.status[3] == "no spots" and np.isnan(res.values[3])
    assert np.isfinite(res.values[:3]).all()
    with pytest.raises(RoiScoreError, match="normalisation"):
        score_pseudobulk(spots, groups, Signature("s", up=("G1",)), norm="tpm")


def test_scorer_table_uses_pseudobulk():
    rng = np.random.default_rng(13)
    xy = rng.uniform(0, 100, (400, 2))
    X = random_counts(400, 50, 0.3, seed=14)
    spots = make_spots(X, xy=xy)
    scorer = RoiScorer(spots)
    rois = [
        Roi.from_xy("left", "tumour", np.array([[0, 0], [50, 0], [50, 100], [0, 100]])),
        Roi.from_xy("right", "stroma", np.array([[50, 0], [100, 0], [100, 100], [50, 100]])),
        Roi.from_xy("line", "other", np.array([[0, 0], [10, 10]])),
    ]
    sig = Signature("s", up=("G1", "G2", "G3"))
    scores = scorer.spot_scores(sig, "pseudobulk", norm="q3")
    table = scorer.table(rois, scores)
    assert list(table.columns) == TABLE_COLUMNS
    members = [scorer.members(r) for r in rois[:2]]
    expect = score_pseudobulk(spots, members, sig, norm="q3")
    assert np.allclose(table["score"].to_numpy()[:2], expect.values)
    assert table["spots"].tolist()[:2] == [len(m) for m in members]
    assert table["median"].isna().all()
    assert table["status"].tolist()[:2] == ["ok", "ok"] and table["status"][2] != "ok"
    # the per-spot method still aggregates
    t2 = scorer.table(rois[:2], scorer.spot_scores(sig, "mean_z"))
    assert t2["median"].notna().all()


# --------------------------------------------------------------------------- all methods
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_reports_missing_and_scores_present(method):
    X = random_counts(80, 300, 0.2, seed=15)
    spots = make_spots(X)
    sig = Signature("s", up=("G1", "G2", "NOPE1"), down=("G7", "NOPE2"))
    res = score_spots(spots, sig, method)
    assert res.match.missing == ("NOPE1", "NOPE2")
    assert res.match.n_used == 3
    assert res.values.shape == (80,) and np.isfinite(res.values).all()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_raises_when_no_gene_matches(method):
    spots = make_spots(random_counts(10, 20, 0.3, seed=16))
    with pytest.raises(RoiScoreError, match="None of the signature genes"):
        score_spots(spots, Signature("s", up=("X1", "X2")), method)


def test_unknown_method_raises():
    with pytest.raises(RoiScoreError, match="Unknown scoring method"):
        score_spots(make_spots(HAND, ABC), Signature("s", up=("A",)), "gsva")


# --------------------------------------------------------------------------- method parameters
def test_unknown_parameter_names_are_refused_with_the_valid_ones():
    from napari_roiscore.scoring.methods import method_params

    spots = make_spots(random_counts(30, 60, 0.3, seed=3))
    sig = Signature("s", up=("G1", "G2"))
    with pytest.raises(RoiScoreError, match="no parameter 'max_rnk'") as err:
        score_spots(spots, sig, "ucell", max_rnk=100)
    assert "max_rank (default 1500)" in err.value.fix and "w_neg" in err.value.fix
    with pytest.raises(RoiScoreError, match="no parameter 'center'"):
        score_spots(spots, sig, "mean_z", center=False)
    assert method_params("singscore") == {"center": True}


@pytest.mark.parametrize("text,value", [("False", False), ("no", False), ("0", False), ("TRUE", True),
                                        ("Yes", True), ("1", True), (False, False), (1, True)])
def test_boolean_parameters_accept_true_false_yes_no_1_0(text, value):
    spots = make_spots(random_counts(30, 60, 0.3, seed=4))
    sig = Signature("s", up=("G1", "G2"), down=("G5",))
    got = score_spots(spots, sig, "singscore", center=text)
    assert got.params["center"] is value
    np.testing.assert_array_equal(got.values, score_spots(spots, sig, "singscore", center=value).values)


@pytest.mark.parametrize("params,words", [({"center": "maybe"}, "not true or false"),
                                          ({"center": 2}, "not true or false"),
                                          ({"max_rank": "many"}, "not a whole number"),
                                          ({"max_rank": 1.5}, "not a whole number"),
                                          ({"w_neg": "x"}, "not a number"),
                                          ({"norm": 3}, "not text")])
def test_ill_typed_parameters_are_refused(params, words):
    method = "singscore" if "center" in params else "pseudobulk" if "norm" in params else "ucell"
    spots = make_spots(random_counts(30, 60, 0.3, seed=5))
    with pytest.raises(RoiScoreError, match=words):
        score_spots(spots, Signature("s", up=("G1", "G2")), method, **params)


@pytest.mark.parametrize("params,words", [({"ctrl_size": 0}, "ctrl_size is 0"),
                                          ({"n_bins": 1}, "n_bins is 1"),
                                          ({"n_bins": 0}, "n_bins is 0"),
                                          ({"random_state": -1}, "random_state is -1"),
                                          ({"random_state": "seed"}, "not a whole number")])
def test_scanpy_settings_out_of_range_are_roiscore_errors(params, words):
    spots = make_spots(random_counts(30, 200, 0.3, seed=6))
    with pytest.raises(RoiScoreError, match=words):
        score_spots(spots, Signature("s", up=("G1", "G2")), "scanpy", **params)
    if not any(isinstance(v, str) for v in params.values()):  # the core function checks them too
        with pytest.raises(RoiScoreError, match=words):
            control_gene_score(spots.counts, np.array([1, 2]), **params)
    assert score_spots(spots, Signature("s", up=("G1", "G2")), "scanpy", random_state=None).params[
        "random_state"] is None


def test_library_sizes_exact_and_empty_rows():
    X = sp.csr_matrix(np.array([[0, 0], [2, 3], [0, 0], [1, 0]], dtype=np.float32))
    assert library_sizes(X).tolist() == [0.0, 5.0, 0.0, 1.0]


def test_q3_zero_status_says_why_and_what_to_do():
    """'too few spots' was said of a 326-spot ROI whose pseudobulk had 75 % zero genes."""
    bulk = np.array([[0, 0, 0, 0, 0, 0, 0, 40], [1, 2, 3, 4, 5, 6, 7, 8]], float)
    genes = [f"g{i}" for i in range(8)]
    match = match_genes(Signature("s", up=("g6", "g7")), genes)
    res = score_bulk_profiles(bulk, match, norm="q3", score="mean_z", n_spots=[326, 411])
    assert res.status[0].startswith("Q3 of counts is 0: 88% of genes have no counts") and "use CPM" in res.status[0]
    assert res.status[1] == "mean z-score needs at least 2 ROIs with a Q3 above 0; use CPM"


def test_log1p_cp10k_equals_scanpy_normalize_total_and_log1p():
    """normalise.py says 'exactly as scanpy.pp.normalize_total(target_sum=1e4) + log1p': compare."""
    sc = pytest.importorskip("scanpy")
    from napari_roiscore.scoring.normalise import log1p_cp10k_divisor, selected_columns

    X = random_counts(60, 150, 0.3, seed=21).astype(np.float64)
    X = sp.vstack([X, sp.csr_matrix((1, 150))]).tocsr()  # an empty spot stays 0
    a = ad.AnnData(X=X.copy())
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    cols = np.arange(150)
    ours = selected_columns(X, cols, log1p_cp10k_divisor(library_sizes(X))).toarray()
    np.testing.assert_allclose(ours, a.X.toarray(), rtol=1e-15, atol=0)


def test_two_roi_pseudobulk_gene_z_is_0707_but_the_score_is_their_mean():
    """With two ROIs each gene's z is ±1/√2 (SD with n - 1); the ROI score, their mean,
    is 0.707 × (genes higher in this ROI − genes lower) / genes — not ±0.707."""
    genes = [f"g{i}" for i in range(6)]
    bulk = np.array([[10, 20, 30, 5, 50, 100], [20, 10, 60, 1, 80, 100]], dtype=float)
    match = match_genes(Signature("s", up=tuple(genes[:5])), genes)
    res = score_bulk_profiles(bulk, match, norm="cpm", score="mean_z", n_spots=[4, 4])
    e = np.log2(bulk / (bulk.sum(axis=1, keepdims=True) / 1e6) + 1)[:, :5]
    z = (e - e.mean(axis=0)) / e.std(axis=0, ddof=1)
    assert np.allclose(np.abs(z), 1 / np.sqrt(2))
    higher = (z[0] > 0).sum()  # genes higher in ROI 1 (after CPM)
    assert np.allclose(res.values, [(2 * higher - 5) / 5 / np.sqrt(2), -(2 * higher - 5) / 5 / np.sqrt(2)])
    assert abs(res.values[0]) < 0.5  # not ±0.707
