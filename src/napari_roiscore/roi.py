"""Regions of interest: a named, classed outline on the slide.

ROI geometry is kept as a shapely (Multi)Polygon in **(x, y) level-0 image
pixels**, the frame of spot centres and of QuPath GeoJSON.  napari shapes use
``(row, col)`` vertices; :func:`roi_from_napari` converts them.

Rule for self-intersecting outlines
-----------------------------------
An outline that crosses itself (a "bow-tie") is repaired with GEOS
``make_valid`` (shapely's default "linework" method): the ROI is the union of
the areas the outline encloses, split where it crosses itself; any line or
point pieces are dropped.  Membership is then exactly
``shapely.contains_xy(valid_geometry, x, y)`` — a spot centre lying exactly on
the outline is *outside*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["CLASS_COLOURS", "DEFAULT_CLASSES", "Roi", "polygonal", "roi_from_napari"]

#: Built-in ROI classes and their colours (RGB 0..1).
DEFAULT_CLASSES = ("tumour", "stroma")
CLASS_COLOURS: dict[str, tuple[float, float, float]] = {
    "tumour": (1.0, 0.25, 0.25),
    "stroma": (0.3, 1.0, 0.3),
    "other": (1.0, 1.0, 1.0),
}

ELLIPSE_SEGMENTS = 64


def polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """Make ``geom`` valid and keep only its polygonal part (possibly empty)."""
    if geom.is_empty:
        return Polygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    polys: list[Polygon] = []
    for p in parts:
        polys.extend(p.geoms if isinstance(p, MultiPolygon) else [p])
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


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
    """

    name: str
    roi_class: str
    geometry: Polygon | MultiPolygon

    def __post_init__(self) -> None:
        object.__setattr__(self, "geometry", polygonal(self.geometry))

    @property
    def area_px(self) -> float:
        return float(self.geometry.area)

    @property
    def problem(self) -> str | None:
        """Why this ROI cannot hold spots, or ``None``."""
        if self.geometry.is_empty or self.geometry.area <= 0:
            return "zero area: draw a closed outline with at least 3 distinct points"
        return None

    @classmethod
    def from_xy(cls, name: str, roi_class: str, xy: np.ndarray) -> Roi:
        """ROI from one outline given as (x, y) vertices."""
        xy = np.asarray(xy, dtype=float)
        if len(xy) < 3 or not np.all(np.isfinite(xy)):
            return cls(name, roi_class, Polygon())
        return cls(name, roi_class, Polygon(xy))


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

    Polygons, rectangles and paths are closed outlines; ellipses are
    approximated by a 64-gon; lines have no area (the ROI reports a problem).
    """
    v = np.asarray(vertices_rc, dtype=float)[:, -2:]
    if shape_type == "ellipse" and len(v) == 4:
        v = ellipse_vertices(v)
    if shape_type == "line":
        v = v[:0]
    return Roi.from_xy(name, roi_class, v[:, ::-1])
