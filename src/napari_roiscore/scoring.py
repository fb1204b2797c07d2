"""Per-spot signature scores and their aggregation into ROI scores.

Per-spot scores are computed once per (data, signature, method) and cached in
:class:`SpotScores`; an ROI score is then an aggregate over the spots inside
the ROI (see :func:`aggregate`), which is cheap enough to redo on every edit.

Methods
-------
``mean_z``
    Mean z-score: counts per 10,000 per spot, ``log1p``; each signature gene is
    z-scored over all spots (population SD); the spot score is the (weighted)
    mean of the up genes' z-scores minus that of the down genes.  A gene with
    the same value in every spot carries no information: its z-score is 0 and
    it is reported in ``constant``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .errors import RoiScoreError
from .signature import GeneMatch, Signature, match_genes
from .spot import SpotTable

__all__ = [
    "METHODS",
    "RoiAggregate",
    "SpotScores",
    "aggregate",
    "normalize_log1p_cp10k",
    "score_spots",
]


@dataclass(frozen=True)
class SpotScores:
    """Scores of every spot for one signature and method.

    Attributes
    ----------
    values : ndarray of float, shape (n_spots,)
    method : str
    signature : Signature
    match : GeneMatch
        Which genes were used and which are missing.
    constant : tuple of str
        Matched genes without variation over the slide (z-score 0).
    params : dict
        Method parameters (for reports and sessions).
    """

    values: np.ndarray
    method: str
    signature: Signature
    match: GeneMatch
    constant: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)


def normalize_log1p_cp10k(counts: sp.spmatrix | np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """``log1p`` of counts per 10,000 per spot, for the selected gene columns.

    Library sizes are computed over all genes; spots with zero counts get 0.

    Returns
    -------
    ndarray, shape (n_spots, n_columns), dense float64
    """
    X = sp.csr_matrix(counts) if not sp.issparse(counts) else counts.tocsr()
    totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    sub = X[:, columns] if columns is not None else X
    dense = np.asarray(sub.toarray(), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(totals > 0, 1e4 / totals, 0.0)
    return np.log1p(dense * factor[:, None])


def _zscore_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    sd = values.std(axis=0)
    constant = sd == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(constant, 0.0, (values - mean) / np.where(constant, 1.0, sd))
    return z, constant


def _mean_z(spots: SpotTable, match: GeneMatch, **_: object) -> tuple[np.ndarray, tuple[str, ...], dict]:
    cols = np.concatenate([match.up_index, match.down_index])
    expr = normalize_log1p_cp10k(spots.counts, cols)
    z, const = _zscore_columns(expr)
    n_up = len(match.up_index)
    score = np.zeros(spots.n_spots)
    if n_up:
        w = match.weights_up
        score += z[:, :n_up] @ w / w.sum() if w.sum() != 0 else z[:, :n_up].mean(axis=1)
    if len(match.down_index):
        w = match.weights_down
        zd = z[:, n_up:]
        score -= zd @ w / w.sum() if w.sum() != 0 else zd.mean(axis=1)
    used = match.up_used + match.down_used
    constant = tuple(g for g, c in zip(used, const) if c)
    return score, constant, {"normalisation": "log1p(counts per 10k)", "zscore": "population SD over all spots"}


#: name -> (label, function(spots, match, **params) -> (values, constant, params))
METHODS: dict[str, tuple[str, Callable[..., tuple[np.ndarray, tuple[str, ...], dict]]]] = {
    "mean_z": ("Mean z-score", _mean_z),
}


def score_spots(spots: SpotTable, signature: Signature, method: str = "mean_z", **params: object) -> SpotScores:
    """Score every spot for ``signature`` with ``method``.

    Raises
    ------
    RoiScoreError
        Unknown method, or no signature gene in the data.
    """
    if method not in METHODS:
        raise RoiScoreError(
            f"Unknown scoring method {method!r}.", f"Use one of {sorted(METHODS)}."
        )
    match = match_genes(signature, spots.gene_names, spots.gene_id_columns())
    values, constant, used_params = METHODS[method][1](spots, match, **params)
    return SpotScores(
        values=np.asarray(values, dtype=np.float64),
        method=method,
        signature=signature,
        match=match,
        constant=constant,
        params={**used_params, **params},
    )


@dataclass(frozen=True)
class RoiAggregate:
    """Score of one ROI from the spots inside it.

    ``score`` is ``None`` when the ROI holds no spot (shown as "no spots").
    """

    n_spots: int
    score: float | None
    median: float | None

    @property
    def display(self) -> str:
        return "no spots" if self.score is None else f"{self.score:.3f}"


def aggregate(spot_values: np.ndarray, members: np.ndarray) -> RoiAggregate:
    """Mean and median of the spot scores at ``members`` (indices)."""
    members = np.asarray(members, dtype=np.int64)
    if members.size == 0:
        return RoiAggregate(0, None, None)
    vals = spot_values[members]
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return RoiAggregate(int(members.size), None, None)
    return RoiAggregate(int(members.size), float(vals.mean()), float(np.median(vals)))
