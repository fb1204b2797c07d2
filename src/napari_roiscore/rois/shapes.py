"""ROIs <-> napari Shapes data (plain arrays; no napari import).

Rules
-----
* Shapes that share a **name** form one ROI (their union) — this is how a
  QuPath MultiPolygon annotation comes into napari, and how it goes back out.
* napari cannot draw holes.  An ROI's interior rings are kept in the layer's
  ``holes`` feature (JSON list of rings of (x, y) level-0 pixels) and
  subtracted from the shape's outline when scoring and exporting.  Moving a
  shape with holes moves its outline only; the holes stay in place.
* Vertices are napari (row, col); ROIs are (x, y) — see :mod:`roi`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from napari_roiscore.rois.roi import Roi, merge_same_named, roi_from_napari
from napari_roiscore.rois.classes import normalise_class

__all__ = ["next_roi_name", "rois_from_shapes", "shapes_from_rois"]


def _holes_of(text: object) -> list[np.ndarray]:
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        rings = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return []
    out = []
    for ring in rings if isinstance(rings, list) else []:
        try:
            arr = np.asarray(ring, dtype=float)
        except (TypeError, ValueError, OverflowError, RecursionError):  # not a ring of numbers: skip it
            continue
        if arr.ndim == 2 and arr.shape[0] >= 3 and arr.shape[1] == 2 and np.all(np.isfinite(arr)):
            out.append(arr)
    return out


def rois_from_shapes(
    data_rc: Sequence[np.ndarray],
    shape_types: Sequence[str],
    names: Sequence[object] | None = None,
    classes: Sequence[object] | None = None,
    holes: Sequence[object] | None = None,
) -> list[Roi]:
    """ROIs from napari Shapes data, in order of first appearance of each name.

    Unnamed shapes get their 1-based position as name ("001", ...); shapes
    sharing a name are merged by :func:`~napari_roiscore.rois.roi.merge_same_named`.
    """
    n = len(data_rc)
    roi_names = []
    for i in range(n):
        raw = names[i] if names is not None and i < len(names) else ""
        name = str(raw).strip() if raw is not None else ""
        if name in ("", "nan", "None"):
            name = f"{i + 1:03d}"
        roi_names.append(name)
    per_shape = []
    for i, name in enumerate(roi_names):
        cls = normalise_class(classes[i] if classes is not None and i < len(classes) else "other")
        roi = roi_from_napari(name, cls, str(shape_types[i]), data_rc[i])
        hole_rings = _holes_of(holes[i] if holes is not None and i < len(holes) else None)
        if hole_rings and roi.problem is None:
            roi = Roi(name, cls, roi.geometry.difference(shapely.union_all([Polygon(h) for h in hole_rings])))
        per_shape.append(roi)
    return merge_same_named(per_shape)


def shapes_from_rois(rois: Sequence[Roi]) -> dict[str, list]:
    """napari Shapes data for ``rois``: one polygon per part; holes as JSON.

    Returns
    -------
    dict with keys ``data`` (list of (k, 2) row/col arrays), ``shape_type``,
    ``name``, ``class``, ``holes``.
    """
    out: dict[str, list] = {"data": [], "shape_type": [], "name": [], "class": [], "holes": []}
    for roi in rois:
        geom = roi.geometry
        polys = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
        for p in polys:
            if p.is_empty:
                continue
            xy = np.asarray(p.exterior.coords)[:-1]
            out["data"].append(xy[:, ::-1].copy())
            out["shape_type"].append("polygon")
            out["name"].append(roi.name)
            out["class"].append(roi.roi_class)
            rings = [np.round(np.asarray(r.coords)[:-1], 3).tolist() for r in p.interiors]
            out["holes"].append(json.dumps(rings) if rings else "")
    return out


def next_roi_name(existing: Sequence[object]) -> str:
    """Smallest free 3-digit name ("001", "002", ...)."""
    taken = {str(e) for e in existing}
    i = 1
    while f"{i:03d}" in taken:
        i += 1
    return f"{i:03d}"
