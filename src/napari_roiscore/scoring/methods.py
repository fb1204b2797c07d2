"""Per-spot signature scores and their aggregation into ROI scores.

Per-spot scores are computed once per (data, signature, method) and cached in
:class:`SpotScores`; an ROI score is then an aggregate over the spots inside
the ROI (see :func:`aggregate`), which is cheap enough to redo on every edit.

Methods (keys of :data:`METHODS`)
---------------------------------
``mean_z``
    Mean z-score: counts per 10,000 per spot, ``log1p``; each signature gene is
    z-scored over all spots (population SD); the spot score is the (weighted)
    mean of the up genes' z-scores minus that of the down genes.  A gene with
    the same value in every spot carries no information: its z-score is 0 and
    it is reported in ``constant`` and left out of the average (it has no
    z-score); when no signature gene varies, the score is NaN.
``scanpy``
    Control-gene score identical to ``scanpy.tl.score_genes`` (ctrl_size=50,
    n_bins=25, random_state=0, gene pool = all genes) applied to
    ``log1p(normalize_total(target_sum=1e4))`` expression in float64.  Control
    genes are drawn once on the whole slide and recorded in ``params``.
    See :mod:`napari_roiscore.scoring.control_genes`.
``ucell``
    UCell (max_rank=1500) as UCell >= 2.8 and pyucell 0.8 compute it, per spot;
    ``variant="2021"`` for the formula of UCell before 2.8.  See
    :mod:`napari_roiscore.scoring.rank_scores`.
``singscore``
    singscore (ties "min", centred), per spot.
``pseudobulk``
    GeoMx-style: ROI scores come from the summed raw counts of the ROI's
    spots (:func:`napari_roiscore.scoring.pseudobulk.score_pseudobulk`; params
    ``norm="cpm"|"q3"``, ``score="mean_z"|"singscore"``).  The per-spot values
    stored here (for colouring spots) score each spot as its own pseudobulk
    with CPM (Q3 of one spot is almost always 0).

Weights apply to ``mean_z``, ``scanpy`` and pseudobulk ``mean_z`` (weighted
mean, weights divided by the sum of their absolute values); the rank methods
ignore them (``params["weights"]`` says so).  Down sets apply to every method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from napari_roiscore.scoring.control_genes import control_gene_score
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import log1p_cp10k_divisor, library_sizes, selected_columns, weighted_mean
from napari_roiscore.scoring.gene_notes import genes_without_counts
from napari_roiscore.scoring.pseudobulk import NORMS, PSEUDOBULK_SCORES
from napari_roiscore.scoring.rank_scores import singscore_spots, ucell_spots
from napari_roiscore.scoring.signature import GeneMatch, Signature, match_genes
from napari_roiscore.spots.table import SpotTable

__all__ = [
    "METHODS",
    "ROI_LEVEL_METHODS",
    "RoiAggregate",
    "SpotScores",
    "aggregate",
    "check_params",
    "method_params",
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
        Matched genes without variation over the slide (no z-score; the
        mean-z methods leave them out of the average).
    no_counts : tuple of str
        Matched genes with no count in any spot (see
        :func:`napari_roiscore.scoring.gene_notes.gene_notice`).
    params : dict
        Method parameters (for reports and sessions).
    """

    values: np.ndarray
    method: str
    signature: Signature
    match: GeneMatch
    constant: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    no_counts: tuple[str, ...] = ()


def normalize_log1p_cp10k(counts: sp.spmatrix | np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """``log1p`` of counts per 10,000 per spot, for the selected gene columns.

    Library sizes are computed over all genes; spots with zero counts get 0.
    Same arithmetic as ``scanpy.pp.normalize_total(target_sum=1e4)`` +
    ``scanpy.pp.log1p`` on float64 data.

    Returns
    -------
    ndarray, shape (n_spots, n_columns), dense float64
    """
    X = sp.csr_matrix(counts) if not sp.issparse(counts) else counts.tocsr()
    divisor = log1p_cp10k_divisor(library_sizes(X))
    cols = np.arange(X.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
    return selected_columns(X, cols, divisor).toarray()


def _zscore_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    sd = values.std(axis=0)
    constant = sd == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(constant, 0.0, (values - mean) / np.where(constant, 1.0, sd))
    return z, constant


def _signature_score(z: np.ndarray, match: GeneMatch, constant: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of the up columns minus that of the down columns of ``z``.

    Columns flagged in ``constant`` have no z-score and are left out of their
    side's average; when no column of the signature varies, every score is NaN.
    """
    n_up = len(match.up_index)
    keep = np.ones(z.shape[1], dtype=bool) if constant is None else ~np.asarray(constant, dtype=bool)
    score = np.zeros(z.shape[0])
    sides = [(slice(0, n_up), match.weights_up, 1.0),
             (slice(n_up, z.shape[1]), match.weights_down, -1.0)]
    informative = False
    for cols, weights, sign in sides:
        k = keep[cols]
        if not k.any():
            continue
        informative = True
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[k]
        score += sign * weighted_mean(z[:, cols][:, k], w)
    return score if informative else np.full(z.shape[0], np.nan)


def _mean_z(spots: SpotTable, match: GeneMatch) -> tuple[np.ndarray, tuple[str, ...], dict]:
    cols = np.concatenate([match.up_index, match.down_index])
    expr = normalize_log1p_cp10k(spots.counts, cols)
    z, const = _zscore_columns(expr)
    constant = tuple(g for g, c in zip(match.used, const) if c)
    return _signature_score(z, match, const), constant, {
        "normalisation": "log1p(counts per 10k)",
        "zscore": "population SD over all spots",
    }


def _scanpy(
    spots: SpotTable,
    match: GeneMatch,
    *,
    ctrl_size: int = 50,
    n_bins: int = 25,
    random_state: int | None = 0,
) -> tuple[np.ndarray, tuple[str, ...], dict]:
    res = control_gene_score(
        spots.counts,
        match.up_index,
        match.down_index,
        weights_up=match.weights_up,
        weights_down=match.weights_down,
        ctrl_size=ctrl_size,
        n_bins=n_bins,
        random_state=random_state,
        log_normalise=True,
    )
    names = spots.gene_names
    zero = set(int(i) for i in res.zero_genes)
    sig = np.concatenate([match.up_index, match.down_index])
    constant = tuple(g for g, i in zip(match.used, sig) if int(i) in zero)
    return res.values, constant, {
        "normalisation": "log1p(counts / (total / 1e4)), float64 (scanpy normalize_total + log1p)",
        "ctrl_size": ctrl_size,
        "n_bins": n_bins,
        "random_state": random_state,
        "gene_pool": "all genes",
        "control_genes": [names[i] for i in res.control_up],
        "control_genes_down": [names[i] for i in res.control_down],
        "controls_frozen_on": f"whole slide ({spots.n_spots} spots)",
    }


def _ucell(
    spots: SpotTable, match: GeneMatch, *, max_rank: int = 1500, w_neg: float = 1.0,
    variant: str = "current",
) -> tuple[np.ndarray, tuple[str, ...], dict]:
    values = ucell_spots(spots.counts, match.up_index, match.down_index, max_rank=max_rank, w_neg=w_neg,
                         n_missing_up=len(match.missing_up), n_missing_down=len(match.missing_down),
                         variant=variant)
    return values, (), {
        "max_rank": max_rank,
        "w_neg": w_neg,
        "variant": variant,
        "formula": ("UCell >= 2.8 / pyucell 0.8: 1 - U / (n*maxRank - n(n+1)/2)" if variant == "current"
                    else "UCell 2021 (< 2.8): 1 - U / (n*maxRank)"),
        "missing_genes": ("imputed as unexpressed, kept in n (UCell default)" if variant == "current"
                          else "left out"),
        "ties": "average (UCell)",
        "weights": "ignored (rank method)",
    }


def _singscore(
    spots: SpotTable, match: GeneMatch, *, center: bool = True
) -> tuple[np.ndarray, tuple[str, ...], dict]:
    values = singscore_spots(spots.counts, match.up_index, match.down_index, center=center)
    return values, (), {"center": center, "ties": "min", "weights": "ignored (rank method)"}


def _pseudobulk(
    spots: SpotTable, match: GeneMatch, *, norm: str = "cpm", score: str = "mean_z"
) -> tuple[np.ndarray, tuple[str, ...], dict]:
    if norm not in NORMS or score not in PSEUDOBULK_SCORES:
        raise RoiScoreError(
            f"Unknown pseudobulk option norm={norm!r}, score={score!r}.",
            f"Use norm in {list(NORMS)} and score in {list(PSEUDOBULK_SCORES)}.",
        )
    X = spots.counts
    if score == "singscore":
        values = singscore_spots(X, match.up_index, match.down_index)
        constant: tuple[str, ...] = ()
    else:  # each spot as its own CPM pseudobulk, log2(x + 1), z over spots
        cols = np.concatenate([match.up_index, match.down_index])
        cpm_divisor = log1p_cp10k_divisor(library_sizes(X), target_sum=1e6)
        expr = selected_columns(X, cols, cpm_divisor).toarray() / np.log(2.0)
        z, const = _zscore_columns(expr)
        values = _signature_score(z, match, const)
        constant = tuple(g for g, c in zip(match.used, const) if c)
    return values, constant, {
        "norm": norm,
        "score": score,
        "roi_scores": "pseudobulk of each ROI (score_pseudobulk)",
        "spot_values": "each spot as its own CPM pseudobulk",
    }


#: name -> (label, function(spots, match, **params) -> (values, constant, params))
METHODS: dict[str, tuple[str, Callable[..., tuple[np.ndarray, tuple[str, ...], dict]]]] = {
    "mean_z": ("Mean z-score", _mean_z),
    "scanpy": ("Control-gene score (scanpy score_genes)", _scanpy),
    "ucell": ("UCell (rank, maxRank 1500)", _ucell),
    "singscore": ("singscore (rank)", _singscore),
    "pseudobulk": ("GeoMx-style pseudobulk per ROI", _pseudobulk),
}

#: Methods whose ROI score is not an aggregate of spot scores.
ROI_LEVEL_METHODS = frozenset({"pseudobulk"})


#: parameters that may also be None (scanpy: a fresh random draw)
_NULLABLE_PARAMS = frozenset({"random_state"})
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def method_params(method: str) -> dict[str, object]:
    """The parameters ``method`` takes, with their defaults.

    Raises
    ------
    RoiScoreError
        Unknown method.
    """
    if method not in METHODS:
        raise RoiScoreError(f"Unknown scoring method {method!r}.", f"Use one of {sorted(METHODS)}.")
    sig = inspect.signature(METHODS[method][1])
    return {n: p.default for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _param_value(method: str, name: str, value: object, default: object) -> object:
    """``value`` converted to the type of ``default`` (text from a command line
    or the widget included); a :class:`RoiScoreError` when it does not fit."""
    where = f"Parameter {name!r} of method {method!r}"
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if name in _NULLABLE_PARAMS:
            return None
        raise RoiScoreError(f"{where} cannot be empty (None).", f"Give a value (default {default!r}).")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise RoiScoreError(f"{where} is {value!r}, not true or false.",
                            f"Write {name}=true or {name}=false (also yes/no, 1/0).")
    if isinstance(default, int):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if not isinstance(value, int) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        except (TypeError, ValueError, OverflowError):
            raise RoiScoreError(f"{where} is {value!r}, not a whole number.",
                                f"Write e.g. {name}={default}.") from None
    if isinstance(default, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise RoiScoreError(f"{where} is {value!r}, not a number.", f"Write e.g. {name}={default}.") from None
        if not np.isfinite(number):
            raise RoiScoreError(f"{where} is {value!r}, not a finite number.", f"Write e.g. {name}={default}.")
        return number
    if isinstance(default, str) and not isinstance(value, str):
        raise RoiScoreError(f"{where} is {value!r}, not text.", f"Write e.g. {name}={default}.")
    return value


def check_params(method: str, params: dict[str, object]) -> dict[str, object]:
    """Check the names and values of ``method``'s parameters.

    Names must be parameters of the method (see :func:`method_params`); values
    are converted to the type of the default: booleans accept
    true/false/yes/no/1/0 in any case, numbers accept their text.

    Returns
    -------
    dict
        The parameters with converted values.

    Raises
    ------
    RoiScoreError
        Unknown method, unknown parameter name (the valid ones are listed) or
        a value of the wrong kind.
    """
    valid = method_params(method)
    unknown = [k for k in params if k not in valid]
    if unknown:
        listing = ", ".join(f"{k} (default {v!r})" for k, v in valid.items()) or "none"
        raise RoiScoreError(f"Method {method!r} has no parameter {', '.join(map(repr, unknown))}.",
                            f"Its parameters are: {listing}.")
    return {k: _param_value(method, k, v, valid[k]) for k, v in params.items()}


def score_spots(spots: SpotTable, signature: Signature, method: str = "mean_z", **params: object) -> SpotScores:
    """Score every spot for ``signature`` with ``method``.

    Raises
    ------
    RoiScoreError
        Unknown method, unknown or ill-typed parameter (see :func:`check_params`),
        or no signature gene in the data.
    """
    params = check_params(method, params)
    match = match_genes(signature, spots.gene_names, spots.gene_id_columns())
    values, constant, used_params = METHODS[method][1](spots, match, **params)
    return SpotScores(
        values=np.asarray(values, dtype=np.float64),
        method=method,
        signature=signature,
        match=match,
        constant=constant,
        params={**used_params, **params},
        no_counts=genes_without_counts(spots.counts, match),
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
