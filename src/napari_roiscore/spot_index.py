"""Fast "which spots are inside this ROI" for live editing.

:class:`SpotIndex` sorts spot centres into a regular grid of cells.  For an
ROI it

1. finds the cells its outline passes through (exactly: every edge is cut at
   the grid lines, and each piece lies in one cell);
2. classifies all other cells of the ROI's bounding box by one
   point-in-polygon test of the cell centre — a cell the outline does not touch
   is wholly inside or wholly outside;
3. accepts the spots of inside cells wholesale (contiguous runs in the sorted
   order) and tests only the spots of boundary cells with
   ``shapely.contains_xy``.

The answer therefore equals ``shapely.contains_xy(geometry, x, y)`` over all
spots (see ``tests/test_spot_index.py``), while the work grows with the ROI's
perimeter and the number of cells, not with the number of spots on the slide.
``benchmarks/roi_rescore.py`` measures it against that naive baseline.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

__all__ = ["SpotIndex"]


class SpotIndex:
    """Grid index over spot centres.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Spot centres (x, y).
    spots_per_cell : float
        Target mean occupancy of a non-empty region; sets the cell size.
    """

    def __init__(self, xy: np.ndarray, spots_per_cell: float = 8.0) -> None:
        xy = np.ascontiguousarray(xy, dtype=np.float64)[:, :2]
        self.n = len(xy)
        if self.n == 0:
            self.origin = np.zeros(2)
            self.cell = 1.0
            self.shape = (1, 1)
        else:
            lo = xy.min(axis=0)
            hi = xy.max(axis=0)
            extent = np.maximum(hi - lo, 1e-9)
            area = float(extent[0] * extent[1])
            cell = np.sqrt(area * spots_per_cell / self.n) if area > 0 else float(extent.max())
            cell = max(cell, float(extent.max()) / 4096.0, 1e-9)  # at most ~4096 cells per side
            self.origin = lo
            self.cell = float(cell)
            self.shape = (
                int(np.floor(extent[1] / cell)) + 1,  # rows (y)
                int(np.floor(extent[0] / cell)) + 1,  # cols (x)
            )
        ncells = self.shape[0] * self.shape[1]
        cid = self._cell_ids(xy) if self.n else np.zeros(0, dtype=np.int64)
        self.order = np.argsort(cid, kind="stable")
        self.xy_sorted = xy[self.order]
        counts = np.bincount(cid, minlength=ncells)
        self.starts = np.zeros(ncells + 1, dtype=np.int64)
        np.cumsum(counts, out=self.starts[1:])

    # ------------------------------------------------------------------
    def _cell_ids(self, xy: np.ndarray) -> np.ndarray:
        g = np.floor((xy - self.origin) / self.cell).astype(np.int64)
        np.clip(g[:, 0], 0, self.shape[1] - 1, out=g[:, 0])
        np.clip(g[:, 1], 0, self.shape[0] - 1, out=g[:, 1])
        return g[:, 1] * self.shape[1] + g[:, 0]

    def _boundary_cells(self, geometry: Polygon | MultiPolygon) -> np.ndarray:
        """Grid cells (row, col) crossed by any ring of ``geometry``."""
        rings = []
        polys = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
        for p in polys:
            rings.append(np.asarray(p.exterior.coords))
            rings.extend(np.asarray(r.coords) for r in p.interiors)
        pts = np.concatenate(rings)
        # segment i goes from a[i] to b[i]; drop the joins between rings
        a = np.concatenate([r[:-1] for r in rings])
        b = np.concatenate([r[1:] for r in rings])
        del pts
        ga = (a - self.origin) / self.cell
        gb = (b - self.origin) / self.cell
        d = gb - ga
        pieces_t = [np.zeros(len(a)), np.ones(len(a))]
        pieces_e = [np.arange(len(a)), np.arange(len(a))]
        for axis in (0, 1):
            lo = np.minimum(ga[:, axis], gb[:, axis])
            hi = np.maximum(ga[:, axis], gb[:, axis])
            first = np.floor(lo) + 1
            n_cross = np.maximum(np.ceil(hi) - first, 0).astype(np.int64)
            total = int(n_cross.sum())
            if total == 0:
                continue
            edge = np.repeat(np.arange(len(a)), n_cross)
            offs = np.arange(total) - np.repeat(np.cumsum(n_cross) - n_cross, n_cross)
            k = first[edge] + offs
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (k - ga[edge, axis]) / d[edge, axis]
            pieces_t.append(t)
            pieces_e.append(edge)
        t = np.concatenate(pieces_t)
        e = np.concatenate(pieces_e)
        o = np.lexsort((t, e))
        t, e = t[o], e[o]
        same = e[1:] == e[:-1]
        tm = 0.5 * (t[1:] + t[:-1])[same]
        em = e[1:][same]
        mid = ga[em] + tm[:, None] * d[em]
        # vertices themselves too (covers zero-length pieces)
        mid = np.concatenate([mid, ga, gb])
        cells = np.floor(mid).astype(np.int64)
        return cells

    def query(self, geometry: Polygon | MultiPolygon) -> np.ndarray:
        """Indices (into the original spot order, ascending) of spots strictly inside."""
        if self.n == 0 or geometry.is_empty or geometry.area <= 0:
            return np.zeros(0, dtype=np.int64)
        nrow, ncol = self.shape
        x0, y0, x1, y1 = geometry.bounds
        c0 = int(np.floor((x0 - self.origin[0]) / self.cell))
        c1 = int(np.floor((x1 - self.origin[0]) / self.cell))
        r0 = int(np.floor((y0 - self.origin[1]) / self.cell))
        r1 = int(np.floor((y1 - self.origin[1]) / self.cell))
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, ncol - 1), min(r1, nrow - 1)
        if c0 > c1 or r0 > r1:
            return np.zeros(0, dtype=np.int64)
        h, w = r1 - r0 + 1, c1 - c0 + 1
        state = np.zeros((h, w), dtype=np.int8)  # 0 outside, 1 inside, 2 boundary
        bc = self._boundary_cells(geometry)
        # Cells clipped at the grid edge hold spots outside the grid extent too;
        # treat any out-of-range boundary cell as the clipped edge cell.
        bc[:, 0] = np.clip(bc[:, 0], 0, ncol - 1) - c0
        bc[:, 1] = np.clip(bc[:, 1], 0, nrow - 1) - r0
        ok = (bc[:, 0] >= 0) & (bc[:, 0] < w) & (bc[:, 1] >= 0) & (bc[:, 1] < h)
        bc = bc[ok]
        state[bc[:, 1], bc[:, 0]] = 2
        # edge-of-grid cells also hold clipped spots: treat the outer ring of the
        # grid as boundary so they are tested exactly
        if r0 == 0:
            state[0, :] = 2
        if c0 == 0:
            state[:, 0] = 2
        if r1 == nrow - 1:
            state[-1, :] = 2
        if c1 == ncol - 1:
            state[:, -1] = 2
        rr, cc = np.nonzero(state == 0)
        if rr.size:
            cx = self.origin[0] + (cc + c0 + 0.5) * self.cell
            cy = self.origin[1] + (rr + r0 + 0.5) * self.cell
            inside = shapely.contains_xy(geometry, cx, cy)
            state[rr[inside], cc[inside]] = 1
        out = []
        # inside cells: whole runs of spots in sorted order
        ir, ic = np.nonzero(state == 1)
        if ir.size:
            cid = (ir + r0) * ncol + (ic + c0)
            s = self.starts[cid]
            n = self.starts[cid + 1] - s
            keep = n > 0
            s, n = s[keep], n[keep]
            if n.size:
                total = int(n.sum())
                pos = np.repeat(s - np.cumsum(n) + n, n) + np.arange(total)
                out.append(pos)
        br, bcc = np.nonzero(state == 2)
        if br.size:
            cid = (br + r0) * ncol + (bcc + c0)
            s = self.starts[cid]
            n = self.starts[cid + 1] - s
            keep = n > 0
            s, n = s[keep], n[keep]
            if n.size:
                total = int(n.sum())
                pos = np.repeat(s - np.cumsum(n) + n, n) + np.arange(total)
                pts = self.xy_sorted[pos]
                hit = shapely.contains_xy(geometry, pts[:, 0], pts[:, 1])
                out.append(pos[hit])
        if not out:
            return np.zeros(0, dtype=np.int64)
        idx = self.order[np.concatenate(out)]
        idx.sort()
        return idx
