"""Scoring a saved session again, and comparing ROI tables number by number."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.spot_footprints import marker_restriction
from napari_roiscore.rois.classes import normalise_class
from napari_roiscore.session.contents import Session
from napari_roiscore.spots.reading import read_spots

__all__ = ["read_session_spots", "same_numbers", "score_session", "session_scorer"]


def read_session_spots(session: Session):
    """The session's spot table (read with its recorded reader options)."""
    return read_spots(session.spots.path, **session.spots.options)


def session_scorer(session: Session):
    """What scoring ``session`` needs: scorer, per-spot scores and spot mask.

    Returns
    -------
    scorer : RoiScorer
    scores : SpotScores
    spot_mask : ndarray of bool or None
        The marker restriction, when the session has one.
    """
    from napari_roiscore.scoring.scorer import RoiScorer

    scorer = RoiScorer(read_session_spots(session))
    scores = scorer.spot_scores(session.signature, session.method, **session.params)
    spot_mask = None
    if session.marker:
        m = session.marker
        if session.image is None:
            raise RoiScoreError("The session's marker restriction has no image.", "Save the session again.")
        spot_mask, _ = marker_restriction(session.image.path, scorer.spots, m["channel"], m.get("threshold"),
                                          m.get("min_fraction", 0.1), m.get("level"))
    return scorer, scores, spot_mask


def score_session(session: Session) -> pd.DataFrame:
    """Recompute the ROI table of ``session`` (same code as the widget and CLI).

    Returns
    -------
    DataFrame
        Columns of :data:`napari_roiscore.scoring.scorer.TABLE_COLUMNS`.
    """
    scorer, scores, spot_mask = session_scorer(session)
    return scorer.table(session.rois, scores, spot_mask=spot_mask)


def same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when two ROI tables agree exactly (names, classes, spots, scores, status)."""
    from napari_roiscore.scoring.scorer import TABLE_COLUMNS

    if len(a) != len(b) or not all(c in a.columns and c in b.columns for c in TABLE_COLUMNS):
        return False
    for c in TABLE_COLUMNS:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if c in ("score", "median"):
            if not np.array_equal(x.astype(float), y.astype(float), equal_nan=True):
                return False
        elif c == "class":  # sessions saved before class names were normalised ("tumor")
            if [normalise_class(v) for v in x] != [normalise_class(v) for v in y]:
                return False
        elif [str(v) for v in x] != [str(v) for v in y]:
            return False
    return True
