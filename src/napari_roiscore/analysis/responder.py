"""The responder call: one number compared with a user threshold.

A research aid only: every label says "research use only, not a diagnostic".
:func:`~napari_roiscore.analysis.statistics.compare_classes` makes the call
on the tumour − stroma difference or on the mean tumour spot score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_roiscore.errors import RoiScoreError

__all__ = ["RESEARCH_ONLY", "ResponderCall", "responder_call"]

RESEARCH_ONLY = "research use only, not a diagnostic"


@dataclass(frozen=True)
class ResponderCall:
    """A threshold call on one statistic; a research aid, never a diagnosis.

    Attributes
    ----------
    statistic : str
        Which number was compared, e.g. "tumour − stroma difference".
    value, threshold : float
    direction : {"above", "below"}
        "above": responder when ``value >= threshold``; "below": when ``value <= threshold``.
    responder : bool or None
        ``None`` when the value is not available (NaN).
    label : str
        Text for the user; always ends with "research use only ...".
    """

    statistic: str
    value: float
    threshold: float
    direction: str
    responder: bool | None
    label: str


def responder_call(
    value: float,
    threshold: float,
    direction: str = "above",
    statistic: str = "score",
) -> ResponderCall:
    """Call "likely responder" when ``value`` is at/above (or at/below) ``threshold``.

    The label always says "research use only".
    """
    if direction not in ("above", "below"):
        raise RoiScoreError(
            f"Responder direction {direction!r} is not 'above' or 'below'.",
            "Choose 'above' (high score = responder) or 'below'.",
        )
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise RoiScoreError(
            f"Responder threshold {threshold!r} is not a number.", "Type a number, e.g. 0.2."
        )
    value = float(value)
    sign = "≥" if direction == "above" else "≤"
    if not np.isfinite(value):
        return ResponderCall(statistic, value, threshold, direction, None,
                             f"Responder call not available: {statistic} could not be computed "
                             f"({RESEARCH_ONLY}).")
    hit = value >= threshold if direction == "above" else value <= threshold
    verdict = "likely responder" if hit else "likely non-responder"
    rel = sign if hit else ("<" if direction == "above" else ">")
    label = (f"{verdict.capitalize()}: {statistic} {value:+.3f} {rel} threshold {threshold:+.3f} "
             f"({RESEARCH_ONLY}).")
    return ResponderCall(statistic, value, threshold, direction, bool(hit), label)
