"""Regions of interest: a named, classed outline on the slide.

ROI geometry is kept as a shapely (Multi)Polygon in **(x, y) level-0 image
pixels**, the frame of spot centres and of QuPath GeoJSON.  napari shapes use
``(row, col)`` vertices; :func:`roi_from_napari` converts them.

Rule for self-intersecting outlines
-----------------------------------
An outline that crosses itself (a "bow-tie", a figure eight, a pentagram) is
repaired with GEOS ``make_valid`` (shapely's default "linework" method): the
outline is cut wherever it crosses itself and the ROI is made of the pieces
of area it encloses an **odd** number of times (the even-odd rule: a bow-tie
is its two triangles, the centre of a pentagram is *not* in the ROI).  Line or
point pieces (spikes, a doubled-back edge) are dropped.  Polygons with holes
(e.g. from GeoJSON) keep their holes.  Membership is then exactly
``shapely.contains_xy(valid_geometry, x, y)``: a spot centre lying exactly on
the outline is *outside*.  In the rare case GEOS cannot repair an outline
this way (numerically degenerate vertices), the "structure" method is used,
then ``buffer(0)``; an outline nothing can repair becomes an empty ROI.

Degenerate shapes
-----------------
A napari line, an outline with fewer than 3 points, non-finite vertices or an
outline without area (all points on one line) never raise: they become an
empty ROI whose :attr:`Roi.problem` says what is wrong and how to fix it, and
which holds no spots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CLASS_COLOURS",
    "DEFAULT_CLASSES",
    "NAPARI_SHAPE_TYPES",
    "Roi",
    "merge_same_named",
    "polygonal",
    "roi_from_napari",
]

#: Built-in ROI classes and their colours (RGB 0..1).
DEFAULT_CLASSES = ("tumour", "stroma")
CLASS_COLOURS: dict[str, tuple[float, float, float]] = {
    "tumour": (1.0, 0.25, 0.25),
    "stroma": (0.3, 1.0, 0.3),
    "other": (1.0, 1.0, 1.0),
}

ELLIPSE_SEGMENTS = 64

#: napari ``Shapes`` types and whether they enclose an area.
NAPARI_SHAPE_TYPES = {"polygon": True, "rectangle": True, "ellipse": True, "path": True, "line": False}

_NO_AREA = "zero area: draw a closed outline with at least 3 distinct points"


def _make_valid(geom: BaseGeometry) -> BaseGeometry:
    """GEOS make_valid ("linework"); rare numerical failures fall back gracefully."""
    try:
        return shapely.make_valid(geom)
    except shapely.errors.GEOSException:
        pass
    try:  # e.g. "Overlay input is mixed-dimension" on near-degenerate outlines
        return shapely.make_valid(geom, method="structure")
    except (shapely.errors.GEOSException, TypeError, ValueError):
        pass
    try:
        return geom.buffer(0)
    except shapely.errors.GEOSException:
        return Polygon()


def polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """Make ``geom`` valid and keep only its polygonal part (possibly empty).

    The result is always valid: if numerical noise (e.g. subnormal
    coordinates) defeats the repair, ``buffer(0)`` is tried and, failing
    that, the ROI becomes empty (it then reports a problem instead of
    scoring a broken outline).
    """
    out = _polygonal(_flush_tiny(geom))
    if out.is_empty or out.is_valid:
        return out
    try:
        fixed = out.buffer(0)
    except shapely.errors.GEOSException:
        return Polygon()
    return fixed if isinstance(fixed, (Polygon, MultiPolygon)) and fixed.is_valid else Polygon()


def _flush_tiny(geom: BaseGeometry) -> BaseGeometry:
    """Coordinates that are numerical noise (e.g. subnormal 1e-45 beside values of order 1)
    become exactly 0, so slivers thinner than any pixel cannot survive the repair.

    Ordinary outlines are returned unchanged (bit for bit).
    """
    xy = shapely.get_coordinates(geom)
    finite = np.abs(xy[np.isfinite(xy)])
    if finite.size == 0:
        return geom
    limit = max(float(finite.max()), 1.0) * 1e-12
    if not ((xy != 0) & (np.abs(xy) < limit)).any():
        return geom
    return shapely.transform(geom, lambda c: np.where(np.abs(c) < limit, 0.0, c))


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    if geom.is_empty:
        return Polygon()
    if not geom.is_valid:
        geom = _make_valid(geom)
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    polys: list[Polygon] = []
    for p in parts:
        polys.extend(p.geoms if isinstance(p, MultiPolygon) else [p])
    if not polys:
        return Polygon()
    if len(polys) == 1:
        return polys[0]
    merged = shapely.union_all(polys)  # parts may touch or overlap
    return merged if isinstance(merged, (Polygon, MultiPolygon)) else _polygonal(merged)


@dataclass(frozen=True)
class Roi:
    """A region of interest.

    Parameters
    ----------
    name : str
        Name shown to the pathologist (e.g. "004").
    roi_class : str
        Class, e.g. "tumour" or "stroma".
    geometry : shapely Polygon or MultiPolygon
        Outline in (x, y) level-0 pixels; repaired with :func:`polygonal`.
    reason : str, optional
        Why the outline was rejected (shown as :attr:`problem` when the
        geometry is empty); set by :meth:`from_xy` and :func:`roi_from_napari`.
    """

    name: str
    roi_class: str
    geometry: Polygon | MultiPolygon
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "geometry", polygonal(self.geometry))

    @property
    def area_px(self) -> float:
        return float(self.geometry.area)

    @property
    def key(self) -> tuple[str, bytes]:
        """Name and exact outline: the same ROI, not only the same name (autosave bin, offers)."""
        return self.name, self.geometry.wkb

    @property
    def problem(self) -> str | None:
        """Why this ROI cannot hold spots, or ``None``."""
        area = self.geometry.area
        if self.geometry.is_empty or not area > 0:  # also NaN: an area that overflows
            return self.reason or (_NO_AREA if area == 0 or self.geometry.is_empty else
                                   "coordinates too large to measure: check the ROI's coordinate frame")
        return None

    @classmethod
    def from_xy(cls, name: str, roi_class: str, xy: np.ndarray) -> Roi:
        """ROI from one outline given as (x, y) vertices; never raises on bad outlines."""
        try:
            xy = np.asarray(xy, dtype=float)
        except (TypeError, ValueError, OverflowError, RecursionError):
            return cls(name, roi_class, Polygon(), "vertices are not numbers: redraw the shape")
        if xy.ndim != 2 or xy.shape[1] != 2:
            return cls(name, roi_class, Polygon(), "vertices must be (x, y) pairs: redraw the shape")
        if not np.all(np.isfinite(xy)):
            return cls(name, roi_class, Polygon(), "a vertex is not a finite number: redraw the shape")
        if len(np.unique(xy, axis=0)) < 3:
            return cls(name, roi_class, Polygon(), "fewer than 3 distinct points: draw a closed outline with at least 3")
        return cls(name, roi_class, Polygon(xy))


def merge_same_named(rois: Iterable[Roi]) -> list[Roi]:
    """One ROI per name: ROIs that share a name become one ROI, their union.

    This is how a QuPath MultiPolygon annotation (or one drawn as several
    napari shapes) is scored everywhere — the widget, the command line and
    sessions — so one name is always one row of the ROI table.

    Parameters
    ----------
    rois : iterable of Roi

    Returns
    -------
    list of Roi
        In order of first appearance of each name.  Parts without area are
        dropped from the union; a name none of whose parts has area keeps its
        first ROI (and so its :attr:`Roi.problem`).  Parts of one name with
        different classes are never merged across classes (a tumour part must
        not make stroma spots "tumour"): the first class keeps the name, the
        others become ``"<name> (<class>)"``.
    """
    rois = list(rois)
    taken = {r.name for r in rois}
    first_class: dict[str, str] = {}
    groups: dict[str, list[Roi]] = {}
    split: dict[tuple[str, str], str] = {}  # (name, class) -> the new name of that class's parts
    for roi in rois:
        cls = first_class.setdefault(roi.name, roi.roi_class)
        name = roi.name
        if roi.roi_class != cls and roi.problem is None:  # parts without area just drop out below
            name = split.get((roi.name, roi.roi_class), "")
            if not name:  # a name no ROI has and no other split took: never merged into another ROI
                name = f"{roi.name} ({roi.roi_class})"
                while name in taken or name in groups:
                    name += "'"
                split[(roi.name, roi.roi_class)] = name
                taken.add(name)
            roi = Roi(name, roi.roi_class, roi.geometry)
        groups.setdefault(name, []).append(roi)
    out = []
    for name, members in groups.items():
        if len(members) == 1:
            out.append(members[0])
            continue
        parts = [r.geometry for r in members if r.problem is None]
        if not parts:
            out.append(members[0])
            continue
        geom = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        out.append(Roi(name, members[0].roi_class, geom))
    return out


def ellipse_vertices(corners: np.ndarray, segments: int = ELLIPSE_SEGMENTS) -> np.ndarray:
    """Polygon approximating napari's ellipse given by its 4 bounding-box corners."""
    corners = np.asarray(corners, dtype=float)
    centre = corners.mean(axis=0)
    a = (corners[1] - corners[0]) / 2.0
    b = (corners[3] - corners[0]) / 2.0
    t = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    return centre + np.cos(t)[:, None] * a + np.sin(t)[:, None] * b


def roi_from_napari(name: str, roi_class: str, shape_type: str, vertices_rc: np.ndarray) -> Roi:
    """Convert one napari shape (row, col vertices) into a :class:`Roi`.

    Polygons, rectangles and paths are closed outlines; ellipses (given by
    the 4 corners of their bounding box) are approximated by a 64-gon; lines
    have no area.  Extra leading dimensions (e.g. a z plane) are ignored.
    Never raises: a shape that cannot hold spots gives an empty ROI whose
    :attr:`Roi.problem` explains why.
    """
    try:
        v = np.asarray(vertices_rc, dtype=float)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return Roi(name, roi_class, Polygon(), "vertices are not numbers: redraw the shape")
    if v.ndim != 2 or v.shape[1] < 2:
        return Roi(name, roi_class, Polygon(), "vertices must be (row, col) pairs: redraw the shape")
    v = v[:, -2:]
    kind = str(shape_type).lower()
    if kind not in NAPARI_SHAPE_TYPES:
        known = ", ".join(NAPARI_SHAPE_TYPES)
        return Roi(name, roi_class, Polygon(), f"unknown shape type {shape_type!r}: use one of {known}")
    if not NAPARI_SHAPE_TYPES[kind]:
        return Roi(name, roi_class, Polygon(),
                   "a line has no area: draw a polygon, rectangle, ellipse or closed path")
    if kind == "ellipse":
        if len(v) != 4 or not np.all(np.isfinite(v)):
            return Roi(name, roi_class, Polygon(),
                       "an ellipse needs the 4 corners of its bounding box: redraw it")
        v = ellipse_vertices(v)
    return Roi.from_xy(name, roi_class, v[:, ::-1])
