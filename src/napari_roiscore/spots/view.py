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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from napari_roiscore.spots.raster import SpotBinning, detect_square_grid, tile_binning
from napari_roiscore.spots.table import SpotTable

__all__ = ["MARKER_LIMIT", "SpotView", "spot_binning", "total_counts"]

#: most markers drawn at once; above it a raster is drawn instead. Measured with
#: benchmarks/viewer_scale.py (software OpenGL): a Points redraw costs ~3 µs per
#: marker, so 30,000 markers keep a redraw near 100 ms.
MARKER_LIMIT = 30_000


def total_counts(spots: SpotTable) -> np.ndarray:
    """Total counts (UMIs or transcripts) per spot, the default value drawn."""
    X = spots.adata.X
    s = X.sum(axis=1) if sp.issparse(X) else np.asarray(X).sum(axis=1)
    return np.asarray(s, dtype=np.float64).ravel()


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


@dataclass
class SpotView:
    """A large spot table drawn as a raster pyramid plus markers of the spots in view.

    Parameters
    ----------
    spots : SpotTable
    binning : SpotBinning
    values : numpy.ndarray
        Value per spot drawn (colour); NaN = not drawn in the raster.
    label : str
        What the value is ("total counts", a signature name...).
    marker_limit : int
        Most spots in view drawn as markers.
    pixel_size_um : float or None
        Micrometres per spot pixel (for the mode text).
    """

    spots: SpotTable
    binning: SpotBinning
    values: np.ndarray
    label: str = "total counts"
    marker_limit: int = MARKER_LIMIT
    pixel_size_um: float | None = None
    _listeners: list = field(default_factory=list, repr=False)
    _limits: tuple | None = field(default=None, repr=False)

    @classmethod
    def of(cls, spots: SpotTable, marker_limit: int = MARKER_LIMIT,
           pixel_size_um: float | None = None) -> SpotView:
        """The view of ``spots`` coloured by total counts."""
        return cls(spots, spot_binning(spots).build_index(), total_counts(spots), "total counts", marker_limit,
                   pixel_size_um or spots.pixel_size_um)

    @property
    def is_grid(self) -> bool:
        return self.binning.exact

    def pyramid(self) -> list:
        """Multiscale raster of :attr:`values` (float32 levels, finest first)."""
        return self.binning.pyramid(self.values)

    def pyramid_of(self, values: np.ndarray) -> list:
        """Multiscale raster of other values for the same spots (e.g. in a worker thread)."""
        return self.binning.pyramid(values)

    def contrast_limits(self) -> tuple[float, float]:
        """2nd and 98th percentiles of the finite values (a flat range widened); cached per values."""
        if self._limits is None or self._limits[0] is not self.values:
            self._limits = (self.values, self.contrast_limits_of(self.values))
        return self._limits[1]

    @staticmethod
    def contrast_limits_of(values: np.ndarray) -> tuple[float, float]:
        """2nd and 98th percentiles of the finite ``values`` (a flat range widened)."""
        v = values[np.isfinite(values)]
        if not v.size:
            return 0.0, 1.0
        lo, hi = np.percentile(v, [2, 98]) if v.size > 50 else (v.min(), v.max())
        return (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(lo) + 0.5)

    def set_values(self, values: np.ndarray, label: str) -> None:
        """Colour by new values (e.g. a signature score): listeners rebuild only the raster."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.spots.n_spots,):
            raise ValueError(f"{values.size} values for {self.spots.n_spots} spots")
        self.values, self.label = values, label
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
        limit = self.marker_limit // 10 if self.is_grid else self.marker_limit  # bin outlines: only when large
        if self.binning.count_in_view(yx_min, yx_max) > limit:
            return None
        return self.binning.spots_in_view(yx_min, yx_max)

    def _um(self, px: float) -> str:
        if self.pixel_size_um:
            v = px * self.pixel_size_um
            return f"{v:.3g} µm"
        return f"{px:.3g} px"

    def mode_text(self, level: int, n_markers: int | None, sampled: bool = False) -> str:
        """What is on screen, for a text overlay (short: it sits on the canvas)."""
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
