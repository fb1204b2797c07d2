"""Compare two ROI classes (e.g. tumour vs stroma) on their spot scores.

What is compared
----------------
Each class is the set of spots inside *any* ROI of that class (a spot inside
two tumour ROIs counts once).  The comparison is made on **spot scores**:

* per class: number of ROIs, number of spots, mean and median spot score, and
  the mean of the ROI scores (from the ROI score table);
* the difference ``mean(class A spots) − mean(class B spots)`` (tumour −
  stroma by default);
* a bootstrap 95 % confidence interval of that difference: spots are
  resampled **with replacement within each class** (class sizes kept fixed),
  the difference of means is recomputed for every resample, and the 2.5 % and
  97.5 % percentiles are reported (``scipy.stats.bootstrap``,
  ``method="percentile"``, seeded so the same data give the same interval);
* the two-sided Mann–Whitney U p-value of spot scores A vs B
  (``scipy.stats.mannwhitneyu``).

Caveat, stated in :attr:`ClassComparison.note`: neighbouring spots are not
independent samples (they share tissue and are often from one slide), so the
CI and p-value describe *these spots* and overstate certainty about patients.

An optional responder call compares one number with a user threshold
(:mod:`napari_roiscore.analysis.responder`).  It is a research aid only; its
label always says "research use only".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from napari_roiscore.analysis.responder import RESEARCH_ONLY, ResponderCall, responder_call
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi

if TYPE_CHECKING:
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.methods import SpotScores

__all__ = [
    "RESEARCH_ONLY",
    "ClassComparison",
    "ClassSummary",
    "ResponderCall",
    "compare_classes",
    "compare_rois",
    "responder_call",
    "spots_by_class",
]


NOTE = (
    "Spots are treated as independent samples; neighbouring spots share tissue, so the "
    "CI and p-value describe these spots, not a population of patients."
)


@dataclass(frozen=True)
class ClassSummary:
    """Summary of one ROI class.

    Attributes
    ----------
    roi_class : str
    n_rois : int
        ROIs of this class in the score table.
    n_spots : int
        Distinct spots (with a finite score) inside any ROI of the class.
    mean, median : float
        Of the spot scores (NaN without spots).
    mean_roi_score : float
        Mean of the ROI scores in the table (NaN without scored ROIs).
    """

    roi_class: str
    n_rois: int
    n_spots: int
    mean: float
    median: float
    mean_roi_score: float


@dataclass(frozen=True)
class ClassComparison:
    """Result of :func:`compare_classes`.

    Attributes
    ----------
    class_a, class_b : str
        Compared classes; the difference is A − B.
    summaries : dict of str -> ClassSummary
        For ``class_a`` and ``class_b`` (and any other class given).
    difference : float
        Mean spot score of A minus that of B (NaN if a class has no spots).
    ci_low, ci_high : float
        Bootstrap confidence interval of the difference (NaN when either class
        has fewer than 2 spots).
    confidence : float
    p_value : float
        Two-sided Mann–Whitney U p-value (NaN when either class has < 2 spots).
    u_statistic : float
    n_boot : int
    seed : int
    resampling : str
        The resampling scheme in words (for reports).
    message : str
        Empty when everything could be computed; else why something is NaN.
    note : str
        Statistical caveat to show next to the numbers.
    responder : ResponderCall or None
    """

    class_a: str
    class_b: str
    summaries: dict[str, ClassSummary]
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    u_statistic: float
    n_boot: int
    seed: int
    resampling: str
    message: str = ""
    note: str = NOTE
    responder: ResponderCall | None = None

    def summary_table(self) -> pd.DataFrame:
        """One row per class: class, ROIs, spots, mean, median, mean ROI score."""
        rows = [
            [s.roi_class, s.n_rois, s.n_spots, s.mean, s.median, s.mean_roi_score]
            for s in self.summaries.values()
        ]
        return pd.DataFrame(
            rows, columns=["class", "rois", "spots", "mean", "median", "mean_roi_score"]
        )

    @property
    def text(self) -> str:
        """One line for the comparison panel."""
        pct = round(self.confidence * 100)
        if not np.isfinite(self.difference):
            out = f"{self.class_a} − {self.class_b}: not available"
        else:
            out = f"{self.class_a} − {self.class_b}: {self.difference:+.3f}"
            if np.isfinite(self.ci_low):
                out += f" ({pct} % CI {self.ci_low:+.3f} to {self.ci_high:+.3f})"
            if np.isfinite(self.p_value):
                out += f", Mann–Whitney p = {self.p_value:.2g}"
        if self.message:
            out += f" — {self.message}"
        return out


def spots_by_class(
    rois: Sequence[Roi],
    members: Callable[[Roi], np.ndarray] | Sequence[np.ndarray],
    spot_mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Distinct spot indices per ROI class.

    Parameters
    ----------
    rois : sequence of Roi
    members : callable or sequence of index arrays
        ``members(roi)`` (e.g. :meth:`RoiScorer.members`) or one index array per ROI.
    spot_mask : bool array, optional
        Keep only spots where it is True (e.g. marker-positive spots).

    Returns
    -------
    dict
        class -> sorted unique spot indices (classes in order of first appearance).
    """
    if not callable(members) and len(members) != len(rois):
        raise RoiScoreError(
            f"spots_by_class: {len(rois)} ROIs but {len(members)} member arrays.",
            "Pass one index array per ROI, or a function roi -> indices.",
        )
    parts: dict[str, list[np.ndarray]] = {}
    for i, roi in enumerate(rois):
        idx = members(roi) if callable(members) else members[i]
        idx = np.asarray(idx, dtype=np.int64)
        if spot_mask is not None:
            idx = idx[np.asarray(spot_mask, dtype=bool)[idx]]
        parts.setdefault(roi.roi_class, []).append(idx)
    return {
        cls: np.unique(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64)
        for cls, p in parts.items()
    }


def _summary(cls: str, table: pd.DataFrame | None, values: np.ndarray) -> ClassSummary:
    if table is not None and len(table):
        rows = table[table["class"] == cls]
        n_rois = int(len(rows))
        roi_scores = pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype=float)
        roi_scores = roi_scores[np.isfinite(roi_scores)]
        mean_roi = float(roi_scores.mean()) if roi_scores.size else float("nan")
    else:
        n_rois, mean_roi = 0, float("nan")
    if values.size:
        return ClassSummary(cls, n_rois, int(values.size), float(values.mean()),
                            float(np.median(values)), mean_roi)
    return ClassSummary(cls, n_rois, 0, float("nan"), float("nan"), mean_roi)


def compare_classes(
    spot_values: np.ndarray,
    class_spots: dict[str, np.ndarray],
    table: pd.DataFrame | None = None,
    class_a: str = "tumour",
    class_b: str = "stroma",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    responder_threshold: float | None = None,
    responder_direction: str = "above",
    responder_statistic: str = "difference",
) -> ClassComparison:
    """Compare the spot scores of ``class_a`` with those of ``class_b``.

    Parameters
    ----------
    spot_values : ndarray, shape (n_spots,)
        Per-spot scores (``SpotScores.values``); non-finite scores are ignored.
    class_spots : dict
        class -> spot indices (see :func:`spots_by_class`).
    table : DataFrame, optional
        ROI score table (``RoiScorer.table``) for ROI counts and mean ROI score.
    class_a, class_b : str
        Difference is A − B.
    n_boot : int
        Bootstrap resamples (≥ 100).
    confidence : float
        Confidence level of the interval, in (0, 1).
    seed : int
        Seed of the bootstrap (same seed, same data -> same CI).
    responder_threshold : float, optional
        If given, make a responder call (see :func:`responder_call`).
    responder_direction : {"above", "below"}
    responder_statistic : str
        "difference", or "mean" (mean spot score of ``class_a``).

    Returns
    -------
    ClassComparison
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise RoiScoreError(f"Confidence {confidence!r} is not between 0 and 1.", "Use e.g. 0.95.")
    if int(n_boot) < 100:
        raise RoiScoreError(f"n_boot = {n_boot} bootstrap resamples is too few.", "Use at least 1000.")
    if responder_statistic not in ("difference", "mean"):
        raise RoiScoreError(
            f"Responder statistic {responder_statistic!r} is unknown.", "Use 'difference' or 'mean'."
        )
    if class_a == class_b:
        raise RoiScoreError(f"Both classes are {class_a!r}.", "Pick two different classes.")
    spot_values = np.asarray(spot_values, dtype=np.float64)

    def vals(cls: str) -> np.ndarray:
        idx = np.asarray(class_spots.get(cls, np.zeros(0, dtype=np.int64)), dtype=np.int64)
        v = spot_values[np.unique(idx)]
        return v[np.isfinite(v)]

    a, b = vals(class_a), vals(class_b)
    classes = [class_a, class_b] + [c for c in class_spots if c not in (class_a, class_b)]
    summaries = {c: _summary(c, table, vals(c)) for c in classes}

    nan = float("nan")
    messages = []
    for cls, v in ((class_a, a), (class_b, b)):
        if v.size == 0:
            messages.append(f"no {cls} spots")
        elif v.size == 1:
            messages.append(f"only 1 {cls} spot")
    diff = float(a.mean() - b.mean()) if a.size and b.size else nan
    lo = hi = p = u = nan
    if a.size >= 2 and b.size >= 2:
        res = stats.bootstrap(
            (a, b),
            lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
            n_resamples=int(n_boot),
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            paired=False,
            batch=max(1, 20_000_000 // (a.size + b.size)),
            rng=np.random.default_rng(seed),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.ptp(np.concatenate([a, b])) > 0:
            mw = stats.mannwhitneyu(a, b, alternative="two-sided")
            u, p = float(mw.statistic), float(mw.pvalue)
        else:
            u, p = float(a.size * b.size / 2), 1.0
    elif messages:
        messages.append("CI and p-value need at least 2 spots in each class")
    overlap = np.intersect1d(class_spots.get(class_a, []), class_spots.get(class_b, [])).size
    if overlap:
        messages.append(f"{overlap} spot(s) lie in both a {class_a} and a {class_b} ROI")

    call = None
    if responder_threshold is not None:
        if responder_statistic == "difference":
            value, name = diff, f"{class_a} − {class_b} difference"
        else:
            value, name = summaries[class_a].mean, f"mean {class_a} spot score"
        call = responder_call(value, responder_threshold, responder_direction, name)

    return ClassComparison(
        class_a=class_a,
        class_b=class_b,
        summaries=summaries,
        difference=diff,
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        p_value=p,
        u_statistic=u,
        n_boot=int(n_boot),
        seed=int(seed),
        resampling=(f"spots resampled with replacement within each class ({int(n_boot)} "
                    f"resamples, seed {int(seed)}); percentile interval"),
        message="; ".join(messages),
        responder=call,
    )


def compare_rois(
    scorer: RoiScorer,
    rois: Sequence[Roi],
    scores: SpotScores,
    spot_mask: np.ndarray | None = None,
    **options: object,
) -> ClassComparison:
    """:func:`compare_classes` on the ROIs scored by ``scorer``.

    Builds the ROI table and the per-class spot sets (optionally restricted by
    ``spot_mask``) and passes ``options`` on to :func:`compare_classes`.
    """
    table = scorer.table(list(rois), scores, spot_mask=spot_mask)
    valid = [r for r in rois if r.problem is None]
    class_spots = spots_by_class(valid, scorer.members, spot_mask)
    return compare_classes(scores.values, class_spots, table, **options)  # type: ignore[arg-type]
