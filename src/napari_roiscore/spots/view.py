"""What the viewer draws for a large spot table: a raster, or markers of the spots in view.

:class:`SpotView` is pure data (no napari): the napari side
(``napari_roiscore._qt.spot_view``) asks it, for the current view, whether to
draw every spot in view as a marker (:meth:`SpotView.markers_in_view`) and
what to tell the user (:meth:`SpotView.mode_text`).

Rules (never a random subset):

* square grids (Visium HD): the raster *is* the bins (one pixel per bin), at
  every zoom; coarser pyramid levels show the mean of the bins they cover;
* irregular spots/cells: a raster of the mean value per tile while more than
  ``marker_limit`` spots are in view; every spot in view as a marker below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from napari_roiscore.scoring.normalise import _chunk_row_sums
from napari_roiscore.spots.raster import SpotBinning, detect_square_grid, tile_binning
from napari_roiscore.spots.table import SpotTable

__all__ = ["MARKER_LIMIT", "POINTS_LAYER_LIMIT", "TOTALS_BLOCK_ROWS", "SpotView", "spot_binning",
           "length_text", "total_count_blocks", "total_counts"]

#: most markers drawn at once; above it a raster is drawn instead. Measured with
#: benchmarks/marker_limit.py (1M cells, software OpenGL, load ~4 on 2 cores): a
#: pan/zoom step costs 190 / 259 / 362 / 645 ms with 5k / 10k / 30k / 62k markers in
#: view, 45-65 ms with the raster alone (markers fill the tissue whatever their number,
#: so even a few cost ~150 ms of fill). 10,000 saves ~100 ms per step against 30,000
#: while markers still appear once cells are ~10 screen pixels wide.
MARKER_LIMIT = 10_000
#: tables up to this many spots open as one Points layer of every spot (no raster);
#: they keep colour by ROI and the ROI column, at the cost measured above for 30k markers
POINTS_LAYER_LIMIT = 30_000


#: rows summed at a time for the totals per spot (a block of a dense or backed matrix stays small)
TOTALS_BLOCK_ROWS = 250_000


def total_count_blocks(X, block_rows: int = TOTALS_BLOCK_ROWS) -> Iterator[tuple[slice, np.ndarray]]:
    """Totals per spot of a counts matrix, one block of rows at a time.

    Parameters
    ----------
    X : scipy.sparse matrix, numpy.ndarray or a backed (h5py / anndata) matrix
        Spots x genes counts; only ``block_rows`` rows are read or densified at once.
    block_rows : int

    Yields
    ------
    (slice, numpy.ndarray)
        The rows of the block and their totals (float64, summed in storage
        order as :func:`~napari_roiscore.scoring.normalise.library_sizes` does).
    """
    n = int(X.shape[0])
    block_rows = max(int(block_rows), 1)
    csr = X if sp.issparse(X) and X.format == "csr" else None
    for a in range(0, n, block_rows):
        b = min(a + block_rows, n)
        if csr is not None:  # no copy: sums straight from the stored entries
            lo, hi = int(csr.indptr[a]), int(csr.indptr[b])
            sums = _chunk_row_sums(csr.data[lo:hi], csr.indptr[a:b + 1] - lo)
        else:
            block = X[a:b]
            if sp.issparse(block):
                block = sp.csr_matrix(block)
                sums = _chunk_row_sums(block.data, block.indptr)
            else:
                sums = np.asarray(block, dtype=np.float64).sum(axis=1)
        yield slice(a, b), np.asarray(sums, dtype=np.float64).ravel()


def total_counts(spots: SpotTable, block_rows: int = TOTALS_BLOCK_ROWS) -> np.ndarray:
    """Total counts (UMIs or transcripts) per spot, the default value drawn (summed in blocks)."""
    out = np.zeros(spots.n_spots, dtype=np.float64)
    for rows, sums in total_count_blocks(spots.adata.X, block_rows):
        out[rows] = sums
    return out


def spot_binning(spots: SpotTable) -> SpotBinning:
    """The square grid of the spots (one pixel per bin), else tiles of one spot diameter."""
    obs = spots.adata.obs
    grid = None
    if spots.shape == "square":
        rows = obs["array_row"].to_numpy() if "array_row" in obs else None
        cols = obs["array_col"].to_numpy() if "array_col" in obs else None
        grid = detect_square_grid(spots.xy, rows, cols)
        if grid is None:
            grid = detect_square_grid(spots.xy, side=spots.diameter_px)
    if grid is None:
        grid = detect_square_grid(spots.xy)
    return grid if grid is not None else tile_binning(spots.xy, side=spots.diameter_px)


def length_text(px: float, pixel_size_um: float | None) -> str:
    """A length of ``px`` spot pixels for the canvas text: in µm when the pixel size is known."""
    return f"{px * pixel_size_um:.3g} µm" if pixel_size_um else f"{px:.3g} px"


@dataclass
class SpotView:
    """A large spot table drawn as a raster pyramid plus markers of the spots in view.

    Parameters
    ----------
    spots : SpotTable
    binning : SpotBinning or None
        None while the raster is being built (:meth:`pending`,
        :mod:`~napari_roiscore.spots.view_build`).
    values : numpy.ndarray or None
        Value per spot drawn (colour); NaN = not drawn in the raster; None
        until the totals are summed.
    label : str
        What the value is ("total counts", a signature name...).
    marker_limit : int
        Most spots in view drawn as markers.
    pixel_size_um : float or None
        Micrometres per spot pixel (for the mode text).
    name : str
        The spots' layer name (the raster layer is named after it).
    totals : numpy.ndarray or None
        Total counts per spot once summed (reused for gene colours).
    colormap : str
        napari colour map of the raster and the markers: the dock's map for the
        quantity (e.g. diverging for a z-like score), viridis for total counts.
    fixed_limits : (float, float) or None
        Colour limits set by the dock (the ones its colour bar and "colour
        from / to" show); None = 2nd-98th percentiles of the values.
    filled : bool
        Markers drawn filled (the dock's "spots drawn: filled") or as outlines.
    ready_preview : RasterImage or None
        The coarse preview of :attr:`totals`, already computed (a slide's first look,
        :mod:`~napari_roiscore.spots.first_look`): the build shows it instead of computing it again.
    """

    spots: SpotTable
    binning: SpotBinning | None
    values: np.ndarray | None
    label: str = "total counts"
    marker_limit: int = MARKER_LIMIT
    pixel_size_um: float | None = None
    name: str = "spots"
    totals: np.ndarray | None = field(default=None, repr=False)
    colormap: str = "viridis"
    fixed_limits: tuple[float, float] | None = None
    filled: bool = True
    ready_preview: Any = field(default=None, repr=False)
    _listeners: list = field(default_factory=list, repr=False)
    _limits: tuple | None = field(default=None, repr=False)

    @classmethod
    def of(cls, spots: SpotTable, marker_limit: int = MARKER_LIMIT,
           pixel_size_um: float | None = None, name: str = "spots") -> SpotView:
        """The view of ``spots`` coloured by total counts, built now."""
        totals = total_counts(spots)
        return cls(spots, spot_binning(spots).build_index(), totals, "total counts", marker_limit,
                   pixel_size_um or spots.pixel_size_um, name, totals)

    @classmethod
    def pending(cls, spots: SpotTable, marker_limit: int = MARKER_LIMIT,
                pixel_size_um: float | None = None, name: str = "spots") -> SpotView:
        """The view of ``spots`` before anything is computed (built later, off the GUI thread)."""
        return cls(spots, None, None, "total counts", marker_limit, pixel_size_um or spots.pixel_size_um, name)

    @property
    def built(self) -> bool:
        """True once the binning (and so the full raster) exists."""
        return self.binning is not None

    @property
    def is_grid(self) -> bool:
        return self.binning.exact if self.binning is not None else self.spots.shape == "square"

    def pyramid(self) -> list:
        """Multiscale raster of :attr:`values` (float32 levels, finest first)."""
        return self.binning.pyramid(self.values)

    def pyramid_of(self, values: np.ndarray) -> list:
        """Multiscale raster of other values for the same spots (e.g. in a worker thread)."""
        return self.binning.pyramid(values)

    def contrast_limits(self) -> tuple[float, float]:
        """The dock's limits, else the 2nd and 98th percentiles of the finite values (cached per values)."""
        if self.fixed_limits is not None:
            return self.fixed_limits
        if self.values is None:
            return 0.0, 1.0
        if self._limits is None or self._limits[0] is not self.values:
            self._limits = (self.values, self.contrast_limits_of(self.values))
        return self._limits[1]

    def remember_limits(self, values: np.ndarray, limits: tuple[float, float]) -> None:
        """Limits of ``values`` computed elsewhere (a worker), so they are not computed again."""
        self._limits = (values, (float(limits[0]), float(limits[1])))

    @staticmethod
    def contrast_limits_of(values: np.ndarray) -> tuple[float, float]:
        """2nd and 98th percentiles of the finite ``values`` (a flat range widened)."""
        v = values[np.isfinite(values)]
        if not v.size:
            return 0.0, 1.0
        lo, hi = np.percentile(v, [2, 98]) if v.size > 50 else (v.min(), v.max())
        return (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(lo) + 0.5)

    def limits_for(self, values: np.ndarray) -> tuple[float, float]:
        """Colour limits for ``values``: the dock's when set, else their percentiles (any thread)."""
        return self.fixed_limits if self.fixed_limits is not None else self.contrast_limits_of(values)

    def set_values(self, values: np.ndarray, label: str, colormap: str | None = None,
                   limits: tuple[float, float] | None = None) -> None:
        """Colour by new values (e.g. a signature score): listeners rebuild only the raster.

        ``colormap`` and ``limits`` are the dock's colour scale for the quantity, so
        the raster, the markers and the colour bar read the same as the dock;
        without them: viridis and the values' percentiles.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.spots.n_spots,):
            raise ValueError(f"{values.size} values for {self.spots.n_spots} spots")
        self.values, self.label = values, label
        self.colormap = colormap or "viridis"
        self.fixed_limits = (float(limits[0]), float(limits[1])) if limits is not None else None
        for fn in list(self._listeners):
            fn(self)

    def on_values(self, fn: Callable[[SpotView], None]) -> None:
        """Call ``fn(view)`` after :meth:`set_values`."""
        self._listeners.append(fn)

    def markers_in_view(self, yx_min, yx_max) -> np.ndarray | None:
        """Indices of every spot in the box when at most ``marker_limit``, else ``None``.

        A grid's raster already shows every bin, so its bin outlines are only
        added when a tenth of that many are in view (bins large on screen).
        """
        if self.binning is None or self.values is None:
            return None  # still building: the placeholder or preview raster is shown
        limit = self.marker_limit // 10 if self.is_grid else self.marker_limit  # bin outlines: only when large
        if self.binning.count_in_view(yx_min, yx_max) > limit:
            return None
        return self.binning.spots_in_view(yx_min, yx_max)

    def _um(self, px: float) -> str:
        return length_text(px, self.pixel_size_um)

    def mode_text(self, level: int, n_markers: int | None, sampled: bool = False,
                  preview_side: float | None = None) -> str:
        """What is on screen, for a text overlay (short: it sits on the canvas).

        While the raster is built: the placeholder, or the preview of tiles of
        ``preview_side`` spot pixels.
        """
        what = "bins" if self.is_grid else "spots"
        if self.binning is None:
            n = f"{self.spots.n_spots:,} {what}"
            if preview_side:
                side = self._um(preview_side * 2 ** level)
                return f"{what}: PREVIEW, mean per {side} tile · {self.label} · {n} · building the full raster…"
            return f"{what}: building the raster… · {n}"
        if n_markers is not None and not self.is_grid:
            return f"spots: every spot ({n_markers:,} in view) · {self.label}"
        f = 2 ** level
        side = self._um(self.binning.side * f)
        if self.is_grid:
            body = f"1 pixel per {side} bin" if level == 0 else f"mean of {f}×{f} bins per {side} pixel"
            if n_markers is not None:
                body += f" + {n_markers:,} outlines"
            what = "bins"
        else:
            body = f"mean per {side} tile"
            what = "spots"
        text = f"{what}: {body} · {self.label} · {self.spots.n_spots:,} {what}"
        return text + " (sampled: zoom in)" if sampled else text
