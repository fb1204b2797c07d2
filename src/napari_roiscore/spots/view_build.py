"""Building a large table's raster in steps, so that none of it runs on the GUI thread.

Opening millions of spots shows, in order (``_qt/spot_view.py`` runs
:func:`build_steps` in a napari worker and swaps each result in):

1. a placeholder: an empty (transparent) raster over the spots' bounding box,
   from :func:`placeholder_raster` (four column minima/maxima: instant);
2. a **preview**: the exact mean of *every* spot's value per coarse tile
   (:func:`preview_raster`, at most :data:`PREVIEW_SIDE` tiles across; no
   sampling), shown as soon as the totals are summed;
3. the full raster: one pixel per bin (grids) or per spot-sized tile, its
   pyramid and contrast limits, with the spot index used for markers.

Everything here is pure numpy (no napari); the generator yields between
steps so a worker can report progress and stop early.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from napari_roiscore.spots.raster import Placement, SpotBinning, mean_pyramid
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.spots.view import TOTALS_BLOCK_ROWS, SpotView, spot_binning, total_count_blocks

__all__ = ["PREVIEW_SIDE", "BuiltView", "RasterImage", "build_steps", "n_build_steps",
           "placeholder_raster", "preview_raster"]

#: most tiles across the preview raster (each the mean of every spot in it)
PREVIEW_SIDE = 256
#: spots binned per step by :func:`preview_raster`
PREVIEW_STEP = 1_000_000


@dataclass
class RasterImage:
    """Pyramid levels of a raster and where they lie on the spots.

    Attributes
    ----------
    levels : list of numpy.ndarray
        float32 levels, finest first (NaN = no spot).
    placement : Placement
        Level-0 pixel -> spot ``(y, x)`` pixels.
    contrast_limits : (float, float)
    side : float
        Level-0 pixel side in spot pixels.
    """

    levels: list
    placement: Placement
    contrast_limits: tuple[float, float]
    side: float


@dataclass
class BuiltView:
    """What :func:`build_steps` returns: everything :class:`SpotView` needs, and the full raster."""

    binning: SpotBinning
    values: np.ndarray
    totals: np.ndarray | None
    image: RasterImage


def _bounds(xy: np.ndarray) -> tuple[float, float, float, float]:
    """(y0, x0, y1, x1) of the spot centres; per column (much faster than ``min(axis=0)``)."""
    x, y = xy[:, 0], xy[:, 1]
    return float(y.min()), float(x.min()), float(y.max()), float(x.max())


def placeholder_raster(spots: SpotTable) -> RasterImage:
    """An empty 2 x 2 raster (plus a 1 x 1 level) covering the spots' bounding box."""
    y0, x0, y1, x1 = _bounds(spots.xy)
    sy, sx = max((y1 - y0) / 2, 1e-6), max((x1 - x0) / 2, 1e-6)
    matrix = np.array([[sy, 0, y0 + sy / 2], [0, sx, x0 + sx / 2], [0, 0, 1.0]])
    levels = [np.full((2, 2), np.nan, np.float32), np.full((1, 1), np.nan, np.float32)]
    return RasterImage(levels, Placement(matrix), (0.0, 1.0), float(max(sy, sx)))


def preview_raster(xy: np.ndarray, values: np.ndarray, max_side: int = PREVIEW_SIDE) -> RasterImage:
    """Mean of every spot's finite value per square tile, at most ``max_side`` tiles across.

    Exact for what it shows (all spots, sums and counts pooled), only coarse. Summed
    :data:`PREVIEW_STEP` spots at a time (small temporaries, reused: 12M spots in 0.6 s
    instead of 1.2-1.4 s with temporaries the size of the table).
    """
    values = np.asarray(values, dtype=np.float64)
    y0, x0, y1, x1 = _bounds(xy)
    side = max(y1 - y0, x1 - x0, 1e-9) / (max_side - 1)
    shape = (int((y1 - y0) / side) + 1, int((x1 - x0) / side) + 1)
    n = shape[0] * shape[1]
    sums, counts = np.zeros(n), np.zeros(n)
    for a in range(0, len(values), PREVIEW_STEP):
        part, where = values[a:a + PREVIEW_STEP], xy[a:a + PREVIEW_STEP]
        flat = np.minimum(((where[:, 1] - y0) / side).astype(np.int64), shape[0] - 1)
        flat *= shape[1]
        flat += np.minimum(((where[:, 0] - x0) / side).astype(np.int64), shape[1] - 1)
        ok = np.isfinite(part)
        if not ok.all():
            flat, part = flat[ok], part[ok]
        sums += np.bincount(flat, weights=part, minlength=n)
        counts += np.bincount(flat, minlength=n)
    levels = mean_pyramid(sums.reshape(shape), counts.reshape(shape), coarsest_side=64)
    matrix = np.array([[side, 0, y0 + side / 2], [0, side, x0 + side / 2], [0, 0, 1.0]])
    return RasterImage(levels, Placement(matrix), SpotView.contrast_limits_of(values), float(side))


def n_build_steps(view: SpotView, block_rows: int = TOTALS_BLOCK_ROWS) -> int:
    """How many times :func:`build_steps` yields for ``view`` (for a progress bar)."""
    n_blocks = -(-view.spots.n_spots // block_rows) if view.values is None else 0
    return n_blocks + 4


def build_steps(view: SpotView, block_rows: int = TOTALS_BLOCK_ROWS,
                preview_side: int = PREVIEW_SIDE) -> Generator[tuple, None, BuiltView]:
    """Build ``view``'s raster; meant to run in a worker thread.

    ``view`` itself is not changed (the GUI thread applies the result).

    Yields
    ------
    ("step", str)
        A step done (totals of one block of rows, binning, index, pyramid).
    ("preview", RasterImage)
        The coarse exact preview.

    Returns
    -------
    BuiltView
        The binning (index built), the values drawn, the totals (None when the
        view already had values) and the full raster with its contrast limits.
    """
    spots = view.spots
    values, totals = view.values, None
    if values is None:
        totals = np.zeros(spots.n_spots, dtype=np.float64)
        for rows, sums in total_count_blocks(spots.adata.X, block_rows):
            totals[rows] = sums
            yield "step", f"summing counts: {rows.stop:,} of {spots.n_spots:,} spots"
        values = totals
    xy = spots.xy
    ready = view.ready_preview if values is view.totals and preview_side == PREVIEW_SIDE else None
    yield "preview", ready if ready is not None else preview_raster(xy, values, preview_side)
    binning = spot_binning(spots)
    yield "step", "raster grid found"
    binning.build_index()
    yield "step", "spot index built"
    levels = binning.pyramid(values)
    yield "step", "raster pyramid built"
    image = RasterImage(levels, binning.placement, SpotView.contrast_limits_of(values), binning.side)
    return BuiltView(binning, values, totals, image)
