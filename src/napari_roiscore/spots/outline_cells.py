"""Which cells of a spot grid an ROI outline touches, and which lie inside it.

Step 1 and 2 of :class:`~napari_roiscore.spots.index.SpotIndex` (see its
module docstring): the outline's edges, in grid coordinates of a window of
``h`` rows by ``w`` columns (one unit = one cell, origin at the window's
corner), are

* rasterised conservatively — :func:`boundary_cells` marks every cell any
  edge passes through or touches, with a small safety margin for rounding;
* swept row by row — :func:`inside_cells` classifies the centre of every
  cell by the even-odd rule, which is exact for the cells the outline does
  not touch.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["boundary_cells", "inside_cells", "outline_edges"]

_STEPS3 = np.array([0.0, 1.0, 2.0])
_SIGNS_R = np.array([-1.0, -1.0, 1.0, 1.0])
_SIGNS_C = np.array([-1.0, 1.0, -1.0, 1.0])


def outline_edges(geometry: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points (x, y) of every edge of every ring of ``geometry``."""
    if geometry.geom_type == "Polygon" and shapely.get_num_interior_rings(geometry) == 0:
        coords = shapely.get_coordinates(geometry)  # the exterior ring only
        return coords[:-1], coords[1:]
    rings = shapely.get_rings(shapely.get_parts(geometry))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    return coords[:-1][same], coords[1:][same]


def boundary_cells(ga: np.ndarray, gb: np.ndarray, h: int, w: int, margin: float) -> np.ndarray:
    """Cells (h, w window) touched by any edge, with a small safety margin.

    Each edge is walked along its major axis u (x for shallow edges, y for
    steep ones): cut at every integer of u, each piece lies in one cell
    along u and spans at most one cell plus the margin (< 0.25) along the
    minor axis v, i.e. at most 3 cells.  The minor coordinate at the cuts
    is well conditioned (|dv/du| <= 1).  Vertices mark the up to 4 cells
    within the margin of them.
    """
    d = gb - ga
    steep = np.abs(d[:, 1]) > np.abs(d[:, 0])
    ua = np.where(steep, ga[:, 1], ga[:, 0])
    ub = np.where(steep, gb[:, 1], gb[:, 0])
    va = np.where(steep, ga[:, 0], ga[:, 1])
    vb = np.where(steep, gb[:, 0], gb[:, 1])
    du = ub - ua
    slope = (vb - va) / np.where(du == 0, 1.0, du)
    ulo = np.minimum(ua, ub)
    uhi = np.maximum(ua, ub)
    vlo = np.minimum(va, vb)
    vhi = np.maximum(va, vb)
    # pieces outside the window hold none of its cells: clamp the u range
    u_from = np.maximum(np.floor(ulo), -1.0)
    u_to = np.minimum(np.floor(uhi), np.where(steep, float(h), float(w)))
    npiece = np.maximum(u_to - u_from + 1, 0).astype(np.int64)
    total = int(npiece.sum())
    e = np.repeat(np.arange(len(ua)), npiece)
    ends = np.cumsum(npiece)
    k = u_from[e] + (np.arange(total) - (ends - npiece)[e])
    # piece = edge within [k, k + 1] along u (never empty: floor(ulo) <= k <= uhi)
    ua_e, va_e, s_e = ua[e], va[e], slope[e]
    vs = va_e + (np.maximum(k, ulo[e]) - ua_e) * s_e
    ve = va_e + (np.minimum(k + 1.0, uhi[e]) - ua_e) * s_e
    v_first = np.floor(np.maximum(np.minimum(vs, ve), vlo[e]) - margin)
    v_last = np.floor(np.minimum(np.maximum(vs, ve), vhi[e]) + margin)
    v = (v_first[:, None] + _STEPS3).ravel()
    use = v <= v_last.repeat(3)
    st = steep[e].repeat(3)[use]
    kk = k.repeat(3)[use]
    v = v[use]
    # vertices: the cells within the margin of each vertex (4 corners)
    vr = np.floor(ga[:, 1, None] + margin * _SIGNS_R).ravel()
    vc = np.floor(ga[:, 0, None] + margin * _SIGNS_C).ravel()
    rows = np.concatenate([np.where(st, kk, v), vr])
    cols = np.concatenate([np.where(st, v, kk), vc])
    inw = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = (rows[inw] * w + cols[inw]).astype(np.int64)
    mark = np.zeros(h * w, dtype=bool)
    mark[flat] = True
    return mark.reshape(h, w)


def inside_cells(ga: np.ndarray, gb: np.ndarray, h: int, w: int) -> np.ndarray:
    """Even-odd classification of cell centres, one sweep per row.

    Valid only for cells the outline does not touch (the caller masks the
    :func:`boundary_cells`): for those, a crossing of the row's centre line lies
    in a boundary cell, so "left of the centre" is "in a column to the left".
    """
    ya, yb = ga[:, 1], gb[:, 1]
    ylo = np.minimum(ya, yb)
    yhi = np.maximum(ya, yb)
    # rows j whose centre line y = j + 0.5 satisfies ylo <= y < yhi
    j_from = np.maximum(np.ceil(ylo - 0.5), 0)
    j_to = np.minimum(np.ceil(yhi - 0.5), h)  # exclusive
    n = np.maximum(j_to - j_from, 0).astype(np.int64)
    total = int(n.sum())
    if total == 0:
        return np.zeros((h, w), dtype=bool)
    e = np.repeat(np.arange(len(ya)), n)
    j = np.repeat(j_from, n) + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))
    xa, xb = ga[e, 0], gb[e, 0]
    t = (j + 0.5 - ya[e]) / (yb[e] - ya[e])
    xc = np.clip(xa + t * (xb - xa), np.minimum(xa, xb), np.maximum(xa, xb))
    # a crossing in column k counts for the centres of columns > k
    col = np.clip(np.floor(xc) + 1, 0, w).astype(np.int64)
    flat = j.astype(np.int64) * (w + 1) + col
    counts = np.bincount(flat, minlength=h * (w + 1)).reshape(h, w + 1)
    parity = np.cumsum(counts[:, :w], axis=1) & 1
    return parity.astype(bool)
