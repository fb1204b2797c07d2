"""Fast "which spots are inside this ROI" for live editing.

:class:`SpotIndex` sorts spot centres into a regular grid of square cells, so
that the spots of one cell — and of a run of neighbouring cells in one grid
row — are one contiguous block of the sorted order.  For an ROI it

1. rasterises the ROI's outline conservatively: every cell that any edge of
   any ring passes through or touches (with a tiny safety margin for rounding)
   is a *boundary* cell;
2. classifies every other cell of the ROI's bounding box in one sweep per
   grid row (even-odd crossing count along the row's centre line) — a cell
   the outline does not touch is wholly inside or wholly outside;
3. accepts the spots of inside cells wholesale, as runs of the sorted order,
   and tests only the spots of boundary cells with ``shapely.contains_xy``.

Steps 1 and 2 are :mod:`napari_roiscore.spots.outline_cells`.

The answer therefore equals ``shapely.contains_xy(geometry, x, y)`` over all
spots for any valid (Multi)Polygon, holes included (see
``tests/spots/test_spot_index.py``); a spot exactly on the outline is outside.
The work grows with the ROI's perimeter and the number of cells in its
bounding box, not with the number of spots on the slide.

For the live score only the mean over the ROI is needed, and for that the
index never lists the inside spots at all: :meth:`SpotIndex.prefix_sums`
stores running sums of the per-spot values in sorted order once, and
:meth:`SpotIndex.aggregate` adds the sums of the inside runs (two look-ups
per run) to the values of the boundary spots that pass the exact test.

``benchmarks/roi_rescore.py`` measures both paths against the naive baseline
(``shapely.contains_xy`` over every spot, then ``numpy.mean``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from napari_roiscore.spots.outline_cells import boundary_cells, inside_cells, outline_edges

__all__ = ["PrefixSums", "RoiSum", "SpotIndex"]

#: Smallest safety margin (in cell widths) around the outline when marking
#: boundary cells.  Grid coordinates are at most a few thousand, so rounding
#: is ~1e-12 cell; the margin grows when coordinates are huge compared with
#: the cell (see ``SpotIndex.margin``).
_MARGIN = 1e-7

#: Upper bound on the number of grid cells (keeps the index small).
_MAX_CELLS = 1 << 22


@dataclass(frozen=True)
class PrefixSums:
    """Per-spot values prepared for fast ROI sums (see :meth:`SpotIndex.prefix_sums`).

    Attributes
    ----------
    values_sorted : ndarray
        The values in the index's sorted order (non-finite values kept as NaN).
    cumsum : ndarray
        ``cumsum[i]`` is the sum of the finite values among the first ``i``
        sorted spots (extended precision, so that differences stay exact to
        ~1e-15 of the values).
    cumcount : ndarray
        ``cumcount[i]`` is the number of finite values among the first ``i``.
    """

    values_sorted: np.ndarray
    cumsum: np.ndarray
    cumcount: np.ndarray


@dataclass(frozen=True)
class RoiSum:
    """Result of :meth:`SpotIndex.aggregate`.

    Attributes
    ----------
    n_spots : int
        Spots inside the ROI.
    n_finite : int
        Of these, spots with a finite value.
    total : float
        Sum of the finite values.
    """

    n_spots: int
    n_finite: int
    total: float

    @property
    def mean(self) -> float | None:
        """Mean of the finite values, or ``None`` when there are none."""
        return self.total / self.n_finite if self.n_finite else None


@dataclass
class _Plan:
    """Sorted positions answering one query (internal)."""

    run_lo: np.ndarray  # inside runs [lo, hi) in sorted order
    run_hi: np.ndarray
    boundary: np.ndarray  # sorted positions of boundary spots that are inside

    @staticmethod
    def empty() -> _Plan:
        z = np.zeros(0, dtype=np.int64)
        return _Plan(z, z, z)


def _expand_runs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(lo[i], hi[i])`` for all i (vectorised)."""
    n = hi - lo
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(n)
    return np.repeat(lo - (ends - n), n) + np.arange(total, dtype=np.int64)


class SpotIndex:
    """Grid index over spot centres.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Spot centres (x, y) in the ROI's frame (level-0 pixels).
    spots_per_cell : float
        Target mean number of spots per cell over the spots' bounding box;
        sets the cell size.  Smaller cells mean fewer spots to test exactly
        along the outline but more cells to sweep; 2 suits 10^5-10^6 spots
        (``benchmarks/roi_rescore.py``).
    cell_size : float, optional
        Cell width in the units of ``xy``; overrides ``spots_per_cell``
        (still capped at ~4M cells and 4096 per side).  The grid starts at
        the lowest spot coordinates.

    Notes
    -----
    Non-finite spot coordinates are never inside any ROI (as with shapely).
    """

    def __init__(
        self, xy: np.ndarray, spots_per_cell: float = 2.0, cell_size: float | None = None
    ) -> None:
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise ValueError("xy must have shape (n, 2)")
        xy = xy[:, :2]
        self.n = len(xy)
        finite = np.isfinite(xy).all(axis=1)
        good = xy[finite]
        if len(good) == 0:
            self.origin = np.zeros(2)
            self.cell = 1.0
            self.shape = (1, 1)
        else:
            lo = good.min(axis=0)
            hi = good.max(axis=0)
            extent = np.maximum(hi - lo, 0.0)
            span = float(extent.max())
            if span <= 0:
                span = 1.0
            area = float(max(extent[0], span * 1e-6) * max(extent[1], span * 1e-6))
            if cell_size is not None and cell_size > 0:
                cell = float(cell_size)
            else:
                cell = float(np.sqrt(area * spots_per_cell / len(good)))
            # cap the number of cells (memory) and cells per side
            cell = max(cell, np.sqrt(area / _MAX_CELLS), span / 4096.0)
            self.origin = lo.copy()
            self.cell = cell
            self.shape = (
                int(np.floor(extent[1] / cell)) + 1,  # rows (y)
                int(np.floor(extent[0] / cell)) + 1,  # cols (x)
            )
        nrow, ncol = self.shape
        ncells = nrow * ncol
        # rounding of (coordinate - origin) / cell is ~2e-16 * |coordinate| / cell;
        # mark cells this close to the outline as boundary, with a wide safety factor
        scale = float(np.abs(self.origin).max()) + max(nrow, ncol) * self.cell
        self.margin = max(_MARGIN, 1e-12 * scale / self.cell)
        cid = np.full(self.n, ncells, dtype=np.int64)  # non-finite: past the last cell
        if len(good):
            cid[finite] = self._cell_ids(good)
        self.order = np.argsort(cid, kind="stable")
        xy_sorted = xy[self.order]
        self.x_sorted = np.ascontiguousarray(xy_sorted[:, 0])
        self.y_sorted = np.ascontiguousarray(xy_sorted[:, 1])
        counts = np.bincount(cid, minlength=ncells + 1)[:ncells]
        self.starts = np.zeros(ncells + 1, dtype=np.int64)
        np.cumsum(counts, out=self.starts[1:])

    # ------------------------------------------------------------------
    @property
    def xy_sorted(self) -> np.ndarray:
        """Spot centres in the index's sorted order."""
        return np.column_stack([self.x_sorted, self.y_sorted])

    def _cell_ids(self, xy: np.ndarray) -> np.ndarray:
        g = np.floor((xy - self.origin) / self.cell).astype(np.int64)
        np.clip(g[:, 0], 0, self.shape[1] - 1, out=g[:, 0])
        np.clip(g[:, 1], 0, self.shape[0] - 1, out=g[:, 1])
        return g[:, 1] * self.shape[1] + g[:, 0]

    # ------------------------------------------------------------------
    def _plan(self, geometry: BaseGeometry) -> _Plan:
        """Inside runs and exactly-tested boundary spots for ``geometry``."""
        if self.n == 0 or geometry is None or geometry.is_empty:
            return _Plan.empty()
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or geometry.area <= 0:
            return _Plan.empty()
        nrow, ncol = self.shape
        ox, oy = self.origin
        cell = self.cell
        x0, y0, x1, y1 = geometry.bounds
        if not (math.isfinite(x0) and math.isfinite(y0) and math.isfinite(x1) and math.isfinite(y1)):
            return _Plan.empty()
        # window of cells covering the ROI's bounding box (plus the margin)
        # an ROI with huge coordinates is clipped below; the new vertices carry
        # rounding relative to those coordinates, so widen the margin to match
        margin = max(self.margin, 1e-12 * max(abs(x0), abs(y0), abs(x1), abs(y1)) / cell)
        c0 = max(int(np.floor((x0 - ox) / cell - 1 - margin)), 0)
        r0 = max(int(np.floor((y0 - oy) / cell - 1 - margin)), 0)
        c1 = min(int(np.floor((x1 - ox) / cell + 1 + margin)), ncol - 1)
        r1 = min(int(np.floor((y1 - oy) / cell + 1 + margin)), nrow - 1)
        if c0 > c1 or r0 > r1:
            return _Plan.empty()
        h, w = r1 - r0 + 1, c1 - c0 + 1

        outline = geometry
        gx0, gy0 = ox + (c0 - 2) * cell, oy + (r0 - 2) * cell
        gx1, gy1 = ox + (c1 + 3) * cell, oy + (r1 + 3) * cell
        if x0 < gx0 or y0 < gy0 or x1 > gx1 or y1 > gy1:
            # ROI reaches far beyond the spots: only its part over the window
            # matters for finding cells (spots are still tested on the full ROI).
            outline = shapely.intersection(geometry, shapely.box(gx0, gy0, gx1, gy1))
            if outline.is_empty:
                return _Plan.empty()
        a, b = outline_edges(outline)
        # window-relative grid coordinates
        shift = np.array([ox + c0 * cell, oy + r0 * cell])
        ga = (a - shift) / cell
        gb = (b - shift) / cell

        if margin < 0.25:
            boundary = boundary_cells(ga, gb, h, w, margin)
            inside = inside_cells(ga, gb, h, w)
            inside &= ~boundary
        else:  # coordinates too coarse for the cells: test every spot of the window
            boundary = np.ones((h, w), dtype=bool)
            inside = np.zeros((h, w), dtype=bool)

        row_base = (np.arange(h, dtype=np.int64) + r0) * ncol + c0
        run_lo, run_hi = self._runs(inside, row_base)
        b_lo, b_hi = self._runs(boundary, row_base)
        pos = _expand_runs(b_lo, b_hi)
        if pos.size:
            hit = shapely.contains_xy(geometry, self.x_sorted[pos], self.y_sorted[pos])
            pos = pos[hit]
        return _Plan(run_lo, run_hi, pos)

    def _runs(self, mask: np.ndarray, row_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted-order ranges [lo, hi) of the spots in runs of True cells per row."""
        h, w = mask.shape
        padded = np.zeros((h, w + 2), dtype=np.int8)
        padded[:, 1:-1] = mask
        step = np.diff(padded, axis=1).ravel()  # (h, w + 1)
        f_start = np.flatnonzero(step == 1)  # run starts at column f % (w + 1)
        f_end = np.flatnonzero(step == -1)  # run ends before column f % (w + 1)
        lo = self.starts[row_base[f_start // (w + 1)] + f_start % (w + 1)]
        hi = self.starts[row_base[f_end // (w + 1)] + f_end % (w + 1)]
        keep = hi > lo
        return lo[keep], hi[keep]

    # ------------------------------------------------------------------
    def query(self, geometry: BaseGeometry, sort: bool = True) -> np.ndarray:
        """Indices of the spots strictly inside ``geometry``.

        Parameters
        ----------
        geometry : shapely Polygon or MultiPolygon
            A valid polygonal ROI (see :func:`napari_roiscore.rois.roi.polygonal`);
            anything without area gives no spots.
        sort : bool
            Return the indices ascending (default).  Aggregates do not need
            the order; ``sort=False`` skips one sort.

        Returns
        -------
        ndarray of int64
            Equal (as a set) to ``np.flatnonzero(shapely.contains_xy(geometry, x, y))``.
        """
        plan = self._plan(geometry)
        pos = np.concatenate([_expand_runs(plan.run_lo, plan.run_hi), plan.boundary])
        idx = self.order[pos]
        if sort and idx.size > 1:
            m = idx.size
            if m * np.log2(m) > self.n / 4:
                # many members: a mask over all spots is cheaper than sorting
                mask = np.zeros(self.n, dtype=bool)
                mask[idx] = True
                idx = np.flatnonzero(mask)
            else:
                idx.sort()
        return idx

    def prefix_sums(self, values: np.ndarray) -> PrefixSums:
        """Prepare per-spot ``values`` (original order) for :meth:`aggregate`."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n,):
            raise ValueError(f"values must have shape ({self.n},), got {values.shape}")
        vs = values[self.order]
        finite = np.isfinite(vs)
        cumsum = np.zeros(self.n + 1, dtype=np.longdouble)
        np.cumsum(np.where(finite, vs, 0.0).astype(np.longdouble), out=cumsum[1:])
        cumcount = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(finite, out=cumcount[1:])
        return PrefixSums(vs, cumsum, cumcount)

    def aggregate(self, geometry: BaseGeometry, sums: PrefixSums) -> RoiSum:
        """Number of spots inside ``geometry`` and the sum of their values.

        Uses the same membership as :meth:`query` but never lists the inside
        spots: each run of inside cells costs two look-ups in ``sums``.
        """
        plan = self._plan(geometry)
        n_in = int((plan.run_hi - plan.run_lo).sum())
        total = (sums.cumsum[plan.run_hi] - sums.cumsum[plan.run_lo]).sum()
        n_fin = int((sums.cumcount[plan.run_hi] - sums.cumcount[plan.run_lo]).sum())
        bv = sums.values_sorted[plan.boundary]
        bfin = np.isfinite(bv)
        total = float(total + bv[bfin].sum())
        return RoiSum(n_in + int(plan.boundary.size), n_fin + int(bfin.sum()), total)
