"""Scoring the ROIs of one slide: what ``roiscore score``, every batch task and the Cohort tab run.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi, merge_same_named
from napari_roiscore.scoring.methods import METHODS, SpotScores
from napari_roiscore.scoring.scorer import RoiScorer, annotated_table
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.spots.table import SpotTable


@dataclass
class Findings:
    """Problems (make the input unusable) and warnings (worth a look)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Findings, prefix: str = "") -> None:
        self.problems += [prefix + p for p in other.problems]
        self.warnings += [prefix + w for w in other.warnings]


def check_method(method: str) -> None:
    if method not in METHODS:
        raise RoiScoreError(f"Unknown scoring method {method!r}.", f"Use one of {sorted(METHODS)}.")



@dataclass
class SlideResult:
    """The ROI table of one slide and what went into it."""

    table: pd.DataFrame
    scores: SpotScores
    n_spots: int
    warnings: list[str] = field(default_factory=list)
    marker: dict | None = None
    n_marker_positive: int | None = None
    rois: list[Roi] = field(default_factory=list)


def image_checks(img: Any, image_path: str | Path | None, spots_xy: np.ndarray | None,
                 rois: list[Roi] | None) -> Findings:
    """Do the spots and ROIs fall on the image?  (Problems: all spots or an
    ROI outside; warning: some spots outside.)"""
    f = Findings()
    h, w = img.shape_yx
    where = f"the image {str(image_path)!r} ({w} x {h} px)"
    if spots_xy is not None and len(spots_xy):
        x, y = spots_xy[:, 0], spots_xy[:, 1]
        outside = (x < 0) | (y < 0) | (x > w) | (y > h)
        if outside.all():
            f.problems.append(f"All {len(outside)} spots lie outside {where}. Fix: pair the spots with their "
                              "own image; spot coordinates must be its full-resolution pixels.")
        elif outside.any():
            f.warnings.append(f"{int(outside.sum())} of {len(outside)} spots lie outside {where}")
    for roi in rois or []:
        if roi.problem:
            continue
        x0, y0, x1, y1 = roi.geometry.bounds
        if x1 < 0 or y1 < 0 or x0 > w or y0 > h:
            f.problems.append(f"ROI {roi.name!r} lies entirely outside {where}. Fix: export the ROIs "
                              "from this slide, in full-resolution pixels.")
    return f


def image_warnings(image_path: str | Path, spots_xy: np.ndarray, rois: list[Roi]) -> list[str]:
    """Open the image (lazily); what does not fall on it is worth a warning when scoring."""
    from napari_roiscore.readers.dispatch import read_image

    f = image_checks(read_image(image_path), image_path, spots_xy, rois)
    return f.problems + f.warnings


def _bounds_text(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f} px"


def placement_warnings(scorer: RoiScorer, rois: Sequence[Roi]) -> list[str]:
    """Warnings about where the spots are: placed on a made-up grid (no
    coordinates, e.g. GeoMx NGS without ROI coordinates), or in another frame
    than the ROIs (no ROI holds a spot centre)."""
    spots = scorer.spots
    out = []
    obs = spots.adata.obs
    if "has_coordinates" in obs and not np.asarray(obs["has_coordinates"], dtype=bool).all():
        out.append(f"spots {spots.provenance.get('path', '')!r} have no coordinates: they are placed on a "
                   "made-up grid (obs['has_coordinates'] is False), so ROIs drawn on an image do not select "
                   "real tissue positions")
    drawn = [r for r in rois if r.problem is None]
    if drawn and spots.n_spots and all(scorer.members(r, sort=False).size == 0 for r in drawn):
        xy = spots.xy
        b = np.array([r.geometry.bounds for r in drawn])
        out.append(f"no ROI holds any spot centre — probably not the same coordinate frame: spots span "
                   f"{_bounds_text(*xy.min(axis=0), *xy.max(axis=0))}, the ROIs "
                   f"{_bounds_text(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())} "
                   "(both must be full-resolution image pixels)")
    return out


def score_slide(spots: str | Path | SpotTable, rois: str | Path | list[Roi], signature: Signature,
                method: str = "mean_z", params: dict | None = None,
                image: str | Path | None = None, marker: dict | None = None) -> SlideResult:
    """Score the ROIs of one slide (what ``roiscore score`` and each batch task run).

    Parameters
    ----------
    spots : path or SpotTable
        ``.h5ad`` spot file or instrument folder (see :func:`~napari_roiscore.spots.reading.read_spots`),
        or spots already read.
    rois : path or list of Roi
        GeoJSON (QuPath) file, or ROIs already read.
    signature : Signature
    method : str
    params : dict, optional
        Method parameters.
    image : path, optional
        Multiplex image; opened lazily to check that spots and ROIs fall on it.
    marker : dict, optional
        Restrict scoring to marker-positive spots: ``channel`` (name or index),
        ``threshold`` (None: Otsu), ``min_fraction`` (0.1 = 10 % of the spot
        area); needs ``image``.  See :func:`~napari_roiscore.images.spot_footprints.marker_restriction`.

    Raises
    ------
    RoiScoreError
        Any unreadable or invalid input.
    """
    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.images.spot_footprints import marker_restriction
    from napari_roiscore.spots.reading import read_spots

    check_method(method)
    if marker and image is None:
        raise RoiScoreError("The marker restriction needs the image (--image, or an image column).",
                            "Give the multiplex image the marker channel is in.")
    table_spots = spots if isinstance(spots, SpotTable) else read_spots(spots)
    roi_list = read_geojson(rois) if isinstance(rois, (str, Path)) else merge_same_named(rois)
    scorer = RoiScorer(table_spots)
    scores = scorer.spot_scores(signature, method, **(params or {}))
    spot_mask = settings = None
    if marker:
        spot_mask, settings = marker_restriction(image, table_spots, marker["channel"], marker.get("threshold"),
                                                 marker.get("min_fraction", 0.1), marker.get("level"))
    table = annotated_table(scorer.table(roi_list, scores, spot_mask=spot_mask), scores,
                            settings["label"] if settings else "")
    warnings = placement_warnings(scorer, roi_list)
    if scores.match.missing:
        warnings.append(f"genes not in the data: {', '.join(scores.match.missing)} "
                        f"(scored with the {scores.match.n_used} present)")
    if scores.constant:
        warnings.append(f"genes without variation over the slide: {', '.join(scores.constant)}")
    if image is not None:
        warnings.extend(image_warnings(image, table_spots.xy, roi_list))
    return SlideResult(table=table, scores=scores, n_spots=table_spots.n_spots, warnings=warnings,
                       marker=settings, n_marker_positive=None if spot_mask is None else int(spot_mask.sum()),
                       rois=roi_list)
