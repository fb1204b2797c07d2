"""One object that turns ROIs into a score table: spots -> index -> scores.

:class:`RoiScorer` is what the widget, the demo and the command line share,
so that they give identical numbers.  It caches the spot index (built once per
spot table) and per-spot scores (once per signature and method); scoring an
edited ROI is then a membership query plus an aggregate, cached per outline.

For the ``pseudobulk`` method the ROI score is not an aggregate of spot
scores: :meth:`RoiScorer.table` sums each ROI's raw counts (cached per
outline) and scores the ROIs as samples with
:func:`~napari_roiscore.pseudobulk.score_bulk_profiles`; ``median`` is NaN.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd

from .pseudobulk import pseudobulk_counts, score_bulk_profiles
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
        self._bulk: OrderedDict[bytes, np.ndarray] = OrderedDict()

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

    def pseudobulk(self, roi: Roi) -> np.ndarray:
        """Summed raw counts of the spots inside ``roi`` (cached by outline)."""
        key = roi.geometry.wkb
        hit = self._bulk.get(key)
        if hit is None:
            hit = pseudobulk_counts(self.spots.counts, self.members(roi))
            self._bulk[key] = hit
            if len(self._bulk) > 128:
                self._bulk.popitem(last=False)
        else:
            self._bulk.move_to_end(key)
        return hit

    def table(self, rois: list[Roi], scores: SpotScores) -> pd.DataFrame:
        """One row per ROI: name, class, spots, mean score, median, status."""
        if scores.method == "pseudobulk":
            return self._pseudobulk_table(rois, scores)
        rows = []
        for roi in rois:
            problem = roi.problem
            if problem:
                rows.append([roi.name, roi.roi_class, 0, np.nan, np.nan, problem])
                continue
            agg = aggregate(scores.values, self.members(roi))
            status = "ok" if agg.score is not None else "no spots"
            rows.append([
                roi.name, roi.roi_class, agg.n_spots,
                np.nan if agg.score is None else agg.score,
                np.nan if agg.median is None else agg.median,
                status,
            ])
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def _pseudobulk_table(self, rois: list[Roi], scores: SpotScores) -> pd.DataFrame:
        rows: list[list] = []
        valid: list[int] = []
        for roi in rois:
            problem = roi.problem
            rows.append([roi.name, roi.roi_class, 0, np.nan, np.nan, problem or "ok"])
            if not problem:
                valid.append(len(rows) - 1)
        if valid:
            bulk = np.vstack([self.pseudobulk(rois[i]) for i in valid])
            n_spots = [len(self.members(rois[i])) for i in valid]
            res = score_bulk_profiles(
                bulk,
                scores.match,
                norm=scores.params.get("norm", "cpm"),
                score=scores.params.get("score", "mean_z"),
                n_spots=n_spots,
            )
            for j, i in enumerate(valid):
                rows[i][2] = int(res.n_spots[j])
                rows[i][3] = float(res.values[j])
                rows[i][5] = res.status[j]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    @staticmethod
    def method_label(method: str) -> str:
        return METHODS[method][0]
