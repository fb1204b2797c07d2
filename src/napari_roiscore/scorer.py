"""One object that turns ROIs into a score table: spots -> index -> scores.

:class:`RoiScorer` is what the widget, the demo and the command line share,
so that they give identical numbers.  It caches the spot index (built once per
spot table) and per-spot scores (once per signature and method); scoring an
edited ROI is then a membership query plus an aggregate, cached per outline.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd

from .errors import RoiScoreError
from .roi import Roi
from .scoring import METHODS, SpotScores, aggregate, score_spots
from .signature import Signature
from .spot import SpotTable
from .spot_index import SpotIndex

__all__ = ["TABLE_COLUMNS", "RoiScorer"]

TABLE_COLUMNS = ["roi", "class", "spots", "score", "median", "status"]


class RoiScorer:
    """Score ROIs on one spot table.

    Parameters
    ----------
    spots : SpotTable
    """

    def __init__(self, spots: SpotTable) -> None:
        self.spots = spots
        self._index: SpotIndex | None = None
        self._scores: dict[tuple, SpotScores] = {}
        self._members: OrderedDict[bytes, np.ndarray] = OrderedDict()

    @property
    def index(self) -> SpotIndex:
        if self._index is None:
            self._index = SpotIndex(self.spots.xy)
        return self._index

    def spot_scores(self, signature: Signature, method: str = "mean_z", **params) -> SpotScores:
        """Per-spot scores, computed once per (signature, method, params)."""
        key = (signature.name, signature.up, signature.down,
               tuple(sorted(signature.weights.items())), method, tuple(sorted(params.items())))
        if key not in self._scores:
            self._scores[key] = score_spots(self.spots, signature, method, **params)
        return self._scores[key]

    def members(self, roi: Roi) -> np.ndarray:
        """Indices of the spots inside ``roi`` (cached by outline)."""
        key = roi.geometry.wkb
        hit = self._members.get(key)
        if hit is None:
            hit = self.index.query(roi.geometry)
            self._members[key] = hit
            if len(self._members) > 512:
                self._members.popitem(last=False)
        else:
            self._members.move_to_end(key)
        return hit

    def table(self, rois: list[Roi], scores: SpotScores,
              spot_mask: np.ndarray | None = None) -> pd.DataFrame:
        """One row per ROI: name, class, spots, mean score, median, status.

        Parameters
        ----------
        rois : list of Roi
        scores : SpotScores
        spot_mask : bool array of shape (n_spots,), optional
            Count only spots where it is True (e.g. spots whose footprint is
            marker-positive, see :mod:`napari_roiscore.marker`).  ``None``
            keeps every spot inside the ROI.
        """
        if spot_mask is not None:
            spot_mask = np.asarray(spot_mask)
            if spot_mask.dtype != bool or spot_mask.shape != (self.spots.n_spots,):
                raise RoiScoreError(
                    f"Spot mask has shape {spot_mask.shape} and type {spot_mask.dtype}; "
                    f"expected {self.spots.n_spots} True/False values (one per spot).",
                    "Build it from the same spot table (marker.restrict_spots).",
                )
        rows = []
        for roi in rois:
            problem = roi.problem
            if problem:
                rows.append([roi.name, roi.roi_class, 0, np.nan, np.nan, problem])
                continue
            members = self.members(roi)
            status_empty = "no spots"
            if spot_mask is not None:
                if members.size and not spot_mask[members].any():
                    status_empty = "no spots pass the marker filter"
                members = members[spot_mask[members]]
            agg = aggregate(scores.values, members)
            status = "ok" if agg.score is not None else status_empty
            rows.append([
                roi.name, roi.roi_class, agg.n_spots,
                np.nan if agg.score is None else agg.score,
                np.nan if agg.median is None else agg.median,
                status,
            ])
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    @staticmethod
    def method_label(method: str) -> str:
        return METHODS[method][0]
