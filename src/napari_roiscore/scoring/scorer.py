"""One object that turns ROIs into a score table: spots -> index -> scores.

:class:`RoiScorer` is what the widget, the demo and the command line share,
so that they give identical numbers.  It caches the spot index (built once per
spot table) and per-spot scores (once per signature and method); scoring an
edited ROI is then a membership query plus an aggregate, cached per outline.

For the ``pseudobulk`` method the ROI score is not an aggregate of spot
scores: :meth:`RoiScorer.table` sums each ROI's raw counts (cached per
outline) and scores the ROIs as samples with
:func:`~napari_roiscore.scoring.pseudobulk.score_bulk_profiles`; ``median`` is NaN.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.analysis.roi_measurements import measure_rois
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import library_sizes
from napari_roiscore.scoring.pseudobulk import pseudobulk_counts, score_bulk_profiles
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.methods import METHODS, SpotScores, aggregate, score_spots
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.spots.index import PrefixSums, RoiSum, SpotIndex

__all__ = ["ANNOTATION_COLUMNS", "TABLE_COLUMNS", "RoiScorer", "annotated_table", "score_columns", "score_rois"]

TABLE_COLUMNS = ["roi", "class", "spots", "score", "median", "status"]

#: What the exported table adds to :data:`TABLE_COLUMNS` (CLI output, widget CSV export).
ANNOTATION_COLUMNS = ["method", "signature", "genes_used", "genes_missing", "marker_restriction"]


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
        self._members: OrderedDict[tuple[bytes, bool], np.ndarray] = OrderedDict()
        self._prefix: OrderedDict[int, tuple[SpotScores, PrefixSums]] = OrderedDict()
        self._bulk: OrderedDict[tuple[bytes, bytes | None], np.ndarray] = OrderedDict()
        self._library_sizes: np.ndarray | None = None

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

    def members(self, roi: Roi, sort: bool = True) -> np.ndarray:
        """Indices of the spots inside ``roi`` (ascending unless ``sort=False``), cached by outline.

        Equal to ``np.flatnonzero(shapely.contains_xy(roi.geometry, x, y))``.
        """
        key = (roi.geometry.wkb, sort)
        hit = self._members.get(key)
        if hit is None:
            hit = self.index.query(roi.geometry, sort=sort)
            hit.flags.writeable = False  # shared through the cache
            self._members[key] = hit
            if len(self._members) > 512:
                self._members.popitem(last=False)
        else:
            self._members.move_to_end(key)
        return hit

    def mean_score(self, roi: Roi, scores: SpotScores) -> RoiSum:
        """Spots inside ``roi`` and the sum/mean of their finite scores.

        The fast path for live editing: the same membership as
        :meth:`members`, but inside cells are summed from running sums
        (:meth:`SpotIndex.aggregate`) instead of listing their spots.
        """
        if roi.problem:
            return RoiSum(0, 0, 0.0)
        return self.index.aggregate(roi.geometry, self._prefix_sums(scores))

    def _prefix_sums(self, scores: SpotScores) -> PrefixSums:
        key = id(scores)
        hit = self._prefix.get(key)
        if hit is None or hit[0] is not scores:
            hit = (scores, self.index.prefix_sums(scores.values))
            self._prefix[key] = hit
            if len(self._prefix) > 8:
                self._prefix.popitem(last=False)
        else:
            self._prefix.move_to_end(key)
        return hit[1]

    def pseudobulk(self, roi: Roi, spot_mask: np.ndarray | None = None) -> np.ndarray:
        """Summed raw counts of the spots inside ``roi`` (cached by outline and mask)."""
        key = (roi.geometry.wkb, None if spot_mask is None else np.packbits(spot_mask).tobytes())
        hit = self._bulk.get(key)
        if hit is None:
            hit = pseudobulk_counts(self.spots.counts, self._masked_members(roi, spot_mask))
            self._bulk[key] = hit
            if len(self._bulk) > 128:
                self._bulk.popitem(last=False)
        else:
            self._bulk.move_to_end(key)
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
            marker-positive, see :mod:`napari_roiscore.images.markers`).  ``None``
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
        if scores.method == "pseudobulk":
            return self._pseudobulk_table(rois, scores, spot_mask)
        rows = []
        for roi in rois:
            problem = roi.problem
            if problem:
                rows.append([roi.name, roi.roi_class, 0, np.nan, np.nan, problem])
                continue
            members = self.members(roi, sort=False)  # aggregates need no order: faster live
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

    def measurements(self, rois: list[Roi], spot_mask: np.ndarray | None = None) -> pd.DataFrame:
        """Per-ROI area, total UMIs, mean UMIs per spot and genes detected.

        Rows follow ``rois``; the spots counted are those :meth:`table` counts
        (inside the ROI, passing ``spot_mask``).  See
        :func:`napari_roiscore.analysis.roi_measurements.measure_rois`.
        """
        if self._library_sizes is None:
            self._library_sizes = library_sizes(self.spots.counts)
        members = [np.empty(0, np.int64) if roi.problem else self._masked_members(roi, spot_mask)
                   for roi in rois]
        return measure_rois(self.spots, rois, members, self._library_sizes)

    def _masked_members(self, roi: Roi, spot_mask: np.ndarray | None) -> np.ndarray:
        m = self.members(roi, sort=False)
        return m if spot_mask is None else m[spot_mask[m]]

    def _pseudobulk_table(self, rois: list[Roi], scores: SpotScores,
                          spot_mask: np.ndarray | None = None) -> pd.DataFrame:
        rows: list[list] = []
        valid: list[int] = []
        for roi in rois:
            problem = roi.problem
            rows.append([roi.name, roi.roi_class, 0, np.nan, np.nan, problem or "ok"])
            if not problem:
                valid.append(len(rows) - 1)
        if valid:
            bulk = np.vstack([self.pseudobulk(rois[i], spot_mask) for i in valid])
            n_spots = [len(self._masked_members(rois[i], spot_mask)) for i in valid]
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


def score_columns(scores: SpotScores) -> dict[str, str]:
    """Method, signature and the genes used / missing, as written next to every ROI row."""
    return {"method": scores.method, "signature": scores.signature.label,
            "genes_used": ";".join(scores.match.used), "genes_missing": ";".join(scores.match.missing)}


def annotated_table(table: pd.DataFrame, scores: SpotScores, marker_label: str = "") -> pd.DataFrame:
    """``table`` plus the :data:`ANNOTATION_COLUMNS` (the table ``roiscore score`` writes)."""
    out = table.copy()
    for column, value in {**score_columns(scores), "marker_restriction": marker_label}.items():
        out[column] = value
    return out


def score_rois(spots: SpotTable | str | Path, rois: Sequence[Roi] | str | Path,
               signature: Signature | Sequence[str], method: str = "mean_z", **params) -> pd.DataFrame:
    """Score ROIs in one call: the same table ``roiscore score`` writes.

    Parameters
    ----------
    spots : SpotTable or path
        Spots, or any spot file or instrument folder
        (:func:`~napari_roiscore.spots.reading.read_spots`).
    rois : list of Roi, or path
        ROIs, or a QuPath GeoJSON file; ROIs sharing a name are scored as one
        (their union), as everywhere else.
    signature : Signature or list of gene symbols
    method : str
        A key of :data:`~napari_roiscore.scoring.methods.METHODS`, e.g. ``"mean_z"``, ``"ucell"``.
    **params
        Method parameters (checked: an unknown name is refused with the valid ones listed).

    Returns
    -------
    DataFrame
        One row per ROI: :data:`TABLE_COLUMNS` then :data:`ANNOTATION_COLUMNS`.

    Raises
    ------
    RoiScoreError
        Unreadable input, unknown method or parameter, no signature gene in the data.
    """
    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.rois.roi import merge_same_named
    from napari_roiscore.spots.reading import read_spots

    table = read_spots(spots) if isinstance(spots, (str, Path)) else spots
    roi_list = read_geojson(rois) if isinstance(rois, (str, Path)) else merge_same_named(list(rois))
    if not isinstance(signature, Signature):
        signature = Signature(name="custom signature", up=tuple(signature))
    scorer = RoiScorer(table)
    scores = scorer.spot_scores(signature, method, **params)
    return annotated_table(scorer.table(roi_list, scores), scores)
