"""GeoMx-style ROI pseudobulk scores: each ROI is scored as one sample.

A GeoMx AOI is one sequenced library, i.e. the pooled counts of its area.
Here an ROI's pseudobulk is the **sum of the raw counts of the spots inside
it**.  The exact transform, per ROI ``r`` and gene ``g``:

``norm="cpm"`` (default; used live because an ROI's value does not depend on
the other ROIs)::

    x_rg = counts_rg / (sum_g counts_rg / 1e6)

``norm="q3"`` (the rule GeomxTools documents for ``normalize(norm_method="quant",
desiredQuantile=0.75)``, across all scored ROIs; tested by hand, not against the
R package)::

    q_r   = 75th percentile of ROI r's counts over all genes
            (linear interpolation = R's quantile type 7 = numpy's default)
    f_r   = q_r / geometric_mean(q over ROIs)
    x_rg  = counts_rg / f_r

An ROI with ``q_r == 0`` (more than a quarter of the genes unseen, typical
for a handful of spots) cannot be Q3-normalised: it is left out of the
geometric mean and gets no score (status says why).

Then ``e_rg = log2(x_rg + 1)`` and the ROI score is either

``score="mean_z"`` (default)
    the (weighted) mean over up genes of ``z_rg = (e_rg - mean_r e_rg) /
    sd_r(e_rg)`` across the scored ROIs (``sd`` with ``n - 1``, like R's
    ``scale()``), minus the same for the down genes.  Needs at least two ROIs
    with counts; a gene with the same value in every ROI has ``z = 0``.
``score="singscore"``
    singscore of the ROI's profile over all genes (see
    :mod:`napari_roiscore.scoring.rank_scores`); depends on that ROI only, and is the
    same for CPM and Q3 (ranks do not change under per-ROI scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import as_csr, weighted_mean
from napari_roiscore.scoring.rank_scores import singscore_profiles
from napari_roiscore.scoring.signature import GeneMatch, Signature, match_genes
from napari_roiscore.spots.table import SpotTable

__all__ = [
    "NORMS",
    "PSEUDOBULK_SCORES",
    "PseudobulkScores",
    "log2_normalised",
    "normalise_pseudobulk",
    "pseudobulk_counts",
    "score_bulk_profiles",
    "score_pseudobulk",
]

NORMS = ("cpm", "q3")
PSEUDOBULK_SCORES = ("mean_z", "singscore")


@dataclass(frozen=True)
class PseudobulkScores:
    """One score per ROI.

    Attributes
    ----------
    values : ndarray, shape (n_rois,)
        NaN where the ROI could not be scored (see ``status``).
    n_spots : ndarray of int
    status : tuple of str
        "ok" or why there is no score.
    norm_factors : ndarray
        Divisor applied to each ROI's counts (CPM: total / 1e6; Q3: f_r).
    match : GeneMatch
    constant : tuple of str
        Signature genes with the same value in every scored ROI (z = 0).
    params : dict
    """

    values: np.ndarray
    n_spots: np.ndarray
    status: tuple[str, ...]
    norm_factors: np.ndarray
    match: GeneMatch
    constant: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)


def pseudobulk_counts(counts: sp.spmatrix | np.ndarray, members: np.ndarray) -> np.ndarray:
    """Sum of the raw counts of the spots ``members``, shape (n_genes,), float64."""
    X = as_csr(counts)
    members = np.asarray(members, dtype=np.int64)
    if members.size == 0:
        return np.zeros(X.shape[1])
    sub = X[members]
    sub = sp.csr_matrix((sub.data.astype(np.float64), sub.indices, sub.indptr), shape=sub.shape)
    return np.asarray(sub.sum(axis=0)).ravel()  # float64 accumulation


def _check_choice(value: str, options: tuple[str, ...], what: str) -> str:
    if value not in options:
        raise RoiScoreError(f"Unknown pseudobulk {what} {value!r}.", f"Use one of {list(options)}.")
    return value


def normalise_pseudobulk(bulk: np.ndarray, norm: str = "cpm") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise pseudobulk counts (ROIs x genes) with CPM or Q3.

    Returns
    -------
    normalised : ndarray, same shape (NaN rows for ROIs that cannot be normalised)
    factors : ndarray, shape (n_rois,)
        What each ROI's counts were divided by.
    ok : ndarray of bool
        ROIs that could be normalised (total > 0; for Q3 also q_r > 0).
    """
    _check_choice(norm, NORMS, "normalisation")
    B = np.atleast_2d(np.asarray(bulk, dtype=np.float64))
    if norm == "cpm":
        factors = B.sum(axis=1) / 1e6
        ok = factors > 0
    else:
        q = np.quantile(B, 0.75, axis=1) if B.shape[1] else np.zeros(len(B))
        ok = q > 0
        geo = np.exp(np.mean(np.log(q[ok]))) if ok.any() else np.nan
        factors = q / geo
    out = np.full_like(B, np.nan)
    out[ok] = B[ok] / factors[ok, None]
    return out, factors, ok


def log2_normalised(normalised: np.ndarray) -> np.ndarray:
    """``log2(x + 1)`` of normalised pseudobulk values."""
    return np.log2(np.asarray(normalised, dtype=np.float64) + 1.0)


def score_bulk_profiles(
    bulk: np.ndarray,
    match: GeneMatch,
    *,
    norm: str = "cpm",
    score: str = "mean_z",
    n_spots: Sequence[int] | None = None,
) -> PseudobulkScores:
    """Score pseudobulk count profiles (ROIs x all genes) for a matched signature."""
    _check_choice(norm, NORMS, "normalisation")
    _check_choice(score, PSEUDOBULK_SCORES, "score")
    B = np.atleast_2d(np.asarray(bulk, dtype=np.float64))
    n_rois = B.shape[0]
    n_spots = np.zeros(n_rois, dtype=np.int64) if n_spots is None else np.asarray(n_spots, dtype=np.int64)
    status = ["ok"] * n_rois
    for i in range(n_rois):
        if n_spots[i] == 0 and B[i].sum() == 0:
            status[i] = "no spots"
        elif B[i].sum() == 0:
            status[i] = "no counts"
    normalised, factors, ok = normalise_pseudobulk(B, norm)
    for i in np.flatnonzero(~ok):
        if status[i] == "ok":
            zero = float(np.mean(B[i] == 0))
            status[i] = (f"Q3 of counts is 0: {zero:.0%} of genes have no counts in this ROI "
                         "(Q3 suits targeted panels); use CPM")
    values = np.full(n_rois, np.nan)
    constant: tuple[str, ...] = ()
    up, down = match.up_index, match.down_index
    rows = np.flatnonzero(ok)
    if score == "singscore":
        if len(rows):
            values[rows] = singscore_profiles(normalised[rows], up, down)
    else:
        cols = np.concatenate([up, down])
        expr = log2_normalised(normalised[np.ix_(rows, cols)])
        if len(rows) < 2:
            for i in rows:
                status[i] = ("mean z-score needs at least 2 ROIs with counts" if norm != "q3" else
                             "mean z-score needs at least 2 ROIs with a Q3 above 0; use CPM")
        else:
            mean = expr.mean(axis=0)
            sd = expr.std(axis=0, ddof=1)
            const = sd == 0
            z = np.where(const, 0.0, (expr - mean) / np.where(const, 1.0, sd))
            n_up = len(up)
            s = np.zeros(len(rows))
            if n_up:
                s += weighted_mean(z[:, :n_up], match.weights_up)
            if len(down):
                s -= weighted_mean(z[:, n_up:], match.weights_down)
            values[rows] = s
            constant = tuple(g for g, c in zip(match.used, const) if c)
    return PseudobulkScores(
        values=values,
        n_spots=n_spots,
        status=tuple(status),
        norm_factors=factors,
        match=match,
        constant=constant,
        params={
            "norm": norm,
            "score": score,
            "transform": "log2(normalised + 1)",
            "zscore": "across scored ROIs, sd with n-1" if score == "mean_z" else None,
        },
    )


def score_pseudobulk(
    spots: SpotTable,
    members_per_roi: Sequence[np.ndarray],
    signature: Signature,
    *,
    norm: str = "cpm",
    score: str = "mean_z",
) -> PseudobulkScores:
    """Score each ROI's pseudobulk (sum of its spots' raw counts) as one sample.

    Parameters
    ----------
    spots : SpotTable
    members_per_roi : sequence of int arrays
        Indices of the spots inside each ROI.
    signature : Signature
    norm : {"cpm", "q3"}
    score : {"mean_z", "singscore"}

    Raises
    ------
    RoiScoreError
        No signature gene in the data, or an unknown ``norm`` / ``score``.
    """
    _check_choice(norm, NORMS, "normalisation")
    _check_choice(score, PSEUDOBULK_SCORES, "score")
    match = match_genes(signature, spots.gene_names, spots.gene_id_columns())
    X = spots.counts
    bulk = np.zeros((len(members_per_roi), X.shape[1]))
    for i, members in enumerate(members_per_roi):
        bulk[i] = pseudobulk_counts(X, members)
    n = [len(m) for m in members_per_roi]
    return score_bulk_profiles(bulk, match, norm=norm, score=score, n_spots=n)
