"""Rank-based single-sample scores: UCell and singscore.

Both rank the genes *within one spot* (or one ROI pseudobulk), so a spot's
score depends on that spot only.  Ranking is invariant to per-spot scaling
and to ``log1p``, so ranks are taken directly on raw counts: ranking
``log1p(counts per 10k)`` gives the same ranks.

Sparse data are never densified.  In a spot with ``k`` expressed genes (count
> 0) out of ``G``, the ``G - k`` zeros form one tie group at the bottom.  For
a signature gene with value ``v`` in that spot let

* ``n_greater`` = number of genes with a value > ``v``,
* ``n_equal``   = number of genes with a value == ``v`` (itself included);

for ``v == 0``: ``n_greater = k`` and ``n_equal = G - k``.  Only the stored
entries of a spot count: small counts through a per-spot histogram, large
ones by a binary search among that spot's large entries, so the cost is
O(stored entries) whatever the signature size.

UCell (Andreatta & Carmona 2021), as UCell computes it since version 2.8 (R/Bioconductor, 2024; pyucell 0.8)
    Genes ranked by decreasing expression, ties averaged::

        rank = n_greater + (n_equal + 1) / 2

    ``maxRank = min(max_rank, G)``; ranks above ``maxRank`` count as
    ``maxRank``; a signature gene absent from the data counts as a gene with
    zero expression (rank ``maxRank``) and stays in ``n`` (UCell's default
    ``missing_genes="impute"``).  ``U = sum(rank) - n(n+1)/2`` and::

        score = 1 - U / (n * maxRank - n(n+1)/2)

    so a signature whose genes are all beyond ``maxRank`` scores 0 and one whose
    genes are the top ``n`` scores 1.  With a down set:
    ``max(0, up - w_neg * down)``.  Zeros tie at the bottom with rank
    ``k + (G - k + 1)/2``, which exceeds ``maxRank`` whenever ``k >= maxRank``
    (and, with 18k genes, always), so unexpressed genes count as "not in the
    top maxRank".  ``tests/scoring/test_ucell_pyucell.py`` compares every spot with
    pyucell on real Visium data.

    ``variant="2021"`` keeps the formula of UCell before 2.8 (the one this
    package used until then): ranks above ``maxRank`` become ``maxRank + 1``,
    ``score = 1 - U / (n * maxRank)``, 0 when every gene is beyond ``maxRank``,
    and missing genes are left out of ``n``.

singscore (the definition of Foroutan et al. 2018, R package singscore's ``simpleScore``;
tested by hand and against a dense brute force, not against the R package)
    Genes ranked by increasing expression, ties "min"::

        rank = G - n_greater - n_equal + 1        (zeros: rank 1)

    ``score = (mean rank - (n+1)/2) / ((2G - n + 1)/2 - (n+1)/2)``, minus 0.5
    when centred (default).  A down set is scored the same way and enters as
    ``1 - down`` (also centred), so ``total = up + (1 - down)``.  With ties
    "min" a score can fall below the theoretical minimum (e.g. all genes 0).

singscore leaves missing genes out (``n`` counts the genes present); UCell
imputes them (see above).  Per-gene
weights are not part of either method and are ignored.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import _row_chunks, as_csr

__all__ = [
    "gene_tie_counts",
    "singscore_from_ranks",
    "singscore_profiles",
    "singscore_spots",
    "UCELL_VARIANTS",
    "ucell_from_ranks",
    "ucell_spots",
]

#: UCell formulas: "current" = UCell >= 2.8 / pyucell 0.8, "2021" = UCell before 2.8.
UCELL_VARIANTS = ("current", "2021")

#: Stored entries per chunk.
_CHUNK_NNZ = 1_000_000
#: Values (counts) below this are counted with per-spot histograms; larger
#: ones (rare in raw counts) with a sort of just those entries.
_SMALL = 32


def _count_above_and_equal(
    codes: np.ndarray, qcodes: np.ndarray, indptr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per spot and query: stored entries with a code > / == the query code.

    ``codes`` are integer codes (order-preserving) of a chunk's stored entries,
    ``indptr`` its local row pointer, ``qcodes`` (spots x queries) the codes
    of the values asked about.  Small codes (< _SMALL) are counted with a
    per-spot histogram; queries with larger codes are answered exactly by a
    binary search among the (few) large entries of their spot.
    """
    nr = len(indptr) - 1
    row_nnz = np.diff(indptr)
    rows = np.repeat(np.arange(nr, dtype=np.int64), row_nnz)
    K = _SMALL
    hist = np.bincount(rows * (K + 1) + np.minimum(codes, K), minlength=nr * (K + 1))
    hist = hist.reshape(nr, K + 1)
    at_least = np.zeros((nr, K + 2), dtype=np.int64)  # at_least[:, t]: entries with min(code, K) >= t
    at_least[:, : K + 1] = hist[:, ::-1].cumsum(axis=1)[:, ::-1]
    r = np.arange(nr)[:, None]
    q = np.minimum(qcodes, K)
    eq = hist[r, q].astype(np.int64)
    gt = at_least[r, q + 1]
    big = qcodes >= K
    if big.any():
        width = int(max(codes.max(initial=0), qcodes.max())) + 2
        sel = np.flatnonzero(codes >= K)
        keys = np.sort(rows[sel] * width + codes[sel])
        qrow = np.broadcast_to(r, qcodes.shape)[big]
        qkeys = qrow * width + qcodes[big]
        left = np.searchsorted(keys, qkeys, side="left")
        right = np.searchsorted(keys, qkeys, side="right")
        row_end = np.searchsorted(keys, (qrow + 1) * width, side="left")
        eq[big] = right - left
        gt[big] = row_end - right
    return gt, eq


def gene_tie_counts(counts: sp.spmatrix | np.ndarray, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n_greater`` and ``n_equal`` (see module docstring) for each spot and gene.

    Returns
    -------
    n_greater, n_equal : ndarray of int64, shape (n_spots, len(genes))
    """
    X = as_csr(counts)
    genes = np.asarray(genes, dtype=np.int64)
    n_spots, n_genes = X.shape
    s = len(genes)
    sig = X[:, genes].toarray().astype(np.float64)  # (n_spots, s): small
    expressed = np.empty(n_spots, dtype=np.int64)  # k per spot
    n_greater = np.empty((n_spots, s), dtype=np.int64)
    n_equal = np.empty((n_spots, s), dtype=np.int64)
    for a, b in _row_chunks(X.indptr, _CHUNK_NNZ):
        lo, hi = int(X.indptr[a]), int(X.indptr[b])
        indptr = X.indptr[a : b + 1] - lo
        data = X.data[lo:hi].astype(np.float64)
        if data.size and data.min() < 0:
            raise RoiScoreError(
                "Rank scores need non-negative expression values (raw counts).",
                "Provide raw counts.",
            )
        zeros = np.flatnonzero(data == 0)  # explicitly stored zeros (usually none)
        expressed[a:b] = np.diff(indptr) - np.bincount(
            np.searchsorted(indptr, zeros, side="right") - 1, minlength=b - a
        )
        queries = sig[a:b]
        # Integer codes that preserve order: the counts themselves when they are
        # whole numbers (raw counts), else their rank among the chunk's values.
        if np.array_equal(data, np.floor(data)) and (data.size == 0 or data.max() < 2**40):
            codes, qcodes = data.astype(np.int64), queries.astype(np.int64)
        else:
            uniq, codes = np.unique(data, return_inverse=True)
            qcodes = np.searchsorted(uniq, queries)  # exact: stored values are in uniq
        gt, eq = _count_above_and_equal(codes, qcodes, indptr)
        n_greater[a:b] = gt
        n_equal[a:b] = eq
    zero = sig == 0
    k = np.broadcast_to(expressed[:, None], zero.shape)
    n_greater[zero] = k[zero]
    n_equal[zero] = n_genes - k[zero]
    return n_greater, n_equal


def ucell_from_ranks(ranks: np.ndarray, max_rank: int, n_missing: int = 0,
                     variant: str = "current") -> np.ndarray:
    """UCell score from descending average ranks, shape (n_samples, n_genes_in_set).

    ``n_missing`` signature genes absent from the data count as unexpressed genes
    (rank ``max_rank``) in the current variant and are ignored in ``"2021"``.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if variant == "2021":
        n = ranks.shape[1]
        if n == 0:
            return np.zeros(ranks.shape[0])
        insig = ranks > max_rank
        capped = np.where(insig, max_rank + 1.0, ranks)
        u = capped.sum(axis=1) - n * (n + 1) / 2.0
        return np.where(insig.all(axis=1), 0.0, 1.0 - u / (n * max_rank))
    if variant != "current":
        raise RoiScoreError(f"Unknown UCell variant {variant!r}.", f"Use one of {list(UCELL_VARIANTS)}.")
    n = ranks.shape[1] + int(n_missing)
    s_min, s_max = n * (n + 1) / 2.0, float(n) * max_rank
    if n == 0 or s_max == s_min:
        return np.zeros(ranks.shape[0])
    rank_sum = np.minimum(ranks, max_rank).sum(axis=1) + n_missing * float(max_rank)
    return 1.0 - (rank_sum - s_min) / (s_max - s_min)


def _check_max_rank(max_rank: int, n_genes: int, sizes: tuple[int, ...]) -> int:
    if not (isinstance(max_rank, (int, np.integer)) and max_rank >= 1):
        raise RoiScoreError(
            f"UCell max_rank must be a positive integer, got {max_rank!r}.", "Use e.g. 1500."
        )
    m = min(int(max_rank), n_genes)
    if any(size > m for size in sizes):
        raise RoiScoreError(
            f"The signature has more genes ({max(sizes)}) than UCell's max_rank ({m}).",
            "Increase max_rank or use a shorter signature.",
        )
    return m


def ucell_spots(
    counts: sp.spmatrix | np.ndarray,
    up: np.ndarray,
    down: np.ndarray | None = None,
    *,
    max_rank: int = 1500,
    w_neg: float = 1.0,
    n_missing_up: int = 0,
    n_missing_down: int = 0,
    variant: str = "current",
) -> np.ndarray:
    """UCell score of every spot (see module docstring).

    ``up``/``down`` are the column indices of the signature genes found in the
    data; ``n_missing_up``/``n_missing_down`` count those that are not.
    """
    if variant not in UCELL_VARIANTS:
        raise RoiScoreError(f"Unknown UCell variant {variant!r}.", f"Use one of {list(UCELL_VARIANTS)}.")
    X = as_csr(counts)
    up = np.asarray(up, dtype=np.int64)
    down = np.zeros(0, dtype=np.int64) if down is None else np.asarray(down, dtype=np.int64)
    if variant == "2021":
        n_missing_up = n_missing_down = 0
    m = _check_max_rank(max_rank, X.shape[1], (len(up) + n_missing_up, len(down) + n_missing_down))
    genes = np.concatenate([up, down])
    gt, eq = gene_tie_counts(X, genes)
    ranks = gt + (eq + 1) / 2.0
    score = ucell_from_ranks(ranks[:, : len(up)], m, n_missing_up, variant)
    if len(down) + n_missing_down:
        down_score = ucell_from_ranks(ranks[:, len(up) :], m, n_missing_down, variant)
        score = np.maximum(score - w_neg * down_score, 0.0)
    return score


def singscore_from_ranks(
    up_ranks: np.ndarray,
    down_ranks: np.ndarray | None,
    n_genes: int,
    *,
    center: bool = True,
) -> np.ndarray:
    """singscore from ascending "min" ranks (samples x genes of each set)."""

    def one(ranks: np.ndarray) -> np.ndarray:
        n = ranks.shape[1]
        low = (n + 1) / 2.0
        high = (2 * n_genes - n + 1) / 2.0
        return (ranks.mean(axis=1) - low) / (high - low)

    offset = -0.5 if center else 0.0
    has_up = up_ranks is not None and up_ranks.shape[1] > 0
    has_down = down_ranks is not None and down_ranks.shape[1] > 0
    score = one(up_ranks) + offset if has_up else 0.0
    if has_down:
        score = score + (1.0 - one(down_ranks)) + offset
    return np.asarray(score, dtype=np.float64)


def singscore_spots(
    counts: sp.spmatrix | np.ndarray,
    up: np.ndarray,
    down: np.ndarray | None = None,
    *,
    center: bool = True,
) -> np.ndarray:
    """singscore of every spot (see module docstring)."""
    X = as_csr(counts)
    up = np.asarray(up, dtype=np.int64)
    down = np.zeros(0, dtype=np.int64) if down is None else np.asarray(down, dtype=np.int64)
    G = X.shape[1]
    if len(up) + len(down) == 0:
        return np.zeros(X.shape[0])
    gt, eq = gene_tie_counts(X, np.concatenate([up, down]))
    ranks = (G - gt - eq + 1).astype(np.float64)
    return singscore_from_ranks(ranks[:, : len(up)], ranks[:, len(up) :], G, center=center)


def singscore_profiles(
    profiles: np.ndarray,
    up: np.ndarray,
    down: np.ndarray | None = None,
    *,
    center: bool = True,
) -> np.ndarray:
    """singscore of dense expression profiles (samples x genes), e.g. ROI pseudobulks."""
    P = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    up = np.asarray(up, dtype=np.int64)
    down = np.zeros(0, dtype=np.int64) if down is None else np.asarray(down, dtype=np.int64)
    from scipy.stats import rankdata  # scipy.stats takes ~0.4 s to import: only when used

    ranks = rankdata(P, method="min", axis=1).astype(np.float64)
    return singscore_from_ranks(ranks[:, up], ranks[:, down], P.shape[1], center=center)
