"""Marker-positive masks and how much of each spot they cover.

GeoMx segments an area of illumination by a marker (e.g. the CD68+ macrophage
area).  Here the same idea restricts scoring to spots whose footprint is
mostly marker-positive:

1. :func:`marker_mask` thresholds one channel (Otsu by default, or a number
   the user types) at one pyramid level.  The mask stays a lazy dask array;
   only the tiles that are shown or that hold spots are ever computed.
2. :func:`footprint_fractions` gives, per spot, the fraction of its footprint
   (a disc of the spot diameter, or a square of that side for Visium HD bins)
   that is marker-positive.
   Sparse ion counts (MIBI-TOF, IMC: integer pixels, most of them zero) are
   smoothed first (Gaussian, :data:`COUNT_SMOOTH_UM`): a cell is a cloud of
   isolated counts, and Otsu on raw counts would call every pixel with one
   ion positive and the pixels between them negative.
3. :func:`restrict_spots` turns "at least X % positive" into a True/False
   mask per spot, to pass as ``spot_mask`` to :meth:`RoiScorer.table`.

:func:`footprint_fractions`, :func:`restrict_spots` and :func:`marker_restriction`
(the three steps for one slide, CLI and sessions) live in
:mod:`napari_roiscore.images.spot_footprints`.

Which level
-----------
:func:`choose_level` picks the coarsest level whose pixel is at most a
quarter of the spot radius, so a footprint still covers ≥ ~50 mask pixels
while the mask is 4**k times smaller than at full resolution.

Coordinates
-----------
Pixel centres sit at integer coordinates in every level (napari's
convention).  A level with downsample factor ``d`` averages ``d × d`` blocks
of level-0 pixels, so level pixel ``i`` has its centre at level-0
coordinate ``d·i + (d − 1)/2``.  :func:`level0_to_level` and
:func:`level_to_level0` convert (x, y) points; :attr:`MarkerMask.scale` and
:attr:`MarkerMask.translate` place the mask over the level-0 image in napari.
A footprint pixel counts when its centre lies inside the footprint; pixels
outside the image are left out of the fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage

__all__ = [
    "COUNT_SMOOTH_UM",
    "MarkerMask",
    "choose_level",
    "find_channel",
    "is_sparse_counts",
    "level0_to_level",
    "level_downsample",
    "level_to_level0",
    "looks_like_counts",
    "marker_mask",
    "otsu_threshold",
]

#: A footprint should span at least this many mask pixels per spot radius.
PIXELS_PER_RADIUS = 4.0

#: Spots are processed in square tiles of this many mask pixels (bounded memory).
TILE = 1024

#: Gaussian σ (µm) applied to sparse-count channels before thresholding (about a cell radius / 3)
COUNT_SMOOTH_UM = 1.5
#: ... and in level-0 pixels when the image has no pixel size
COUNT_SMOOTH_PX = 3.0
#: A channel whose coarsest level holds more pixels than this is not checked for sparse counts
_SPARSE_CHECK_PIXELS = 4_000_000


#: sparse counts: at least this fraction of pixels is zero ...
SPARSE_ZERO_FRACTION = 0.5
#: ... and the non-zero pixels hold a handful of ions (median at most this)
SPARSE_MEDIAN_COUNT = 10


def looks_like_counts(arrays: list[np.ndarray]) -> bool:
    """True for integer pixels that are mostly zero, the others small counts (MIBI, IMC).

    A fluorescence image that is black on half its area (e.g. outside the
    tissue) is not counts: its non-zero pixels are bright.
    """
    if not arrays or not all(np.issubdtype(np.asarray(a).dtype, np.integer) for a in arrays):
        return False
    # every 4th row and column is plenty for two summary numbers (and 16 x faster on 40 channels)
    values = np.concatenate([np.asarray(a)[..., ::4, ::4].ravel() if np.ndim(a) >= 2 else np.ravel(a)
                             for a in arrays])
    nonzero = values[values != 0]
    return (values.size > 0 and values.size - nonzero.size >= SPARSE_ZERO_FRACTION * values.size
            and (nonzero.size == 0 or float(np.median(nonzero)) <= SPARSE_MEDIAN_COUNT))


def is_sparse_counts(image: MultiplexImage, channel: int | str) -> bool:
    """True when a channel holds sparse ion counts (:func:`looks_like_counts`).

    Checked on the coarsest pyramid level (read when it is small enough).
    """
    c = find_channel(image, channel)
    arr = image.levels[-1][c]
    if not np.issubdtype(np.dtype(arr.dtype), np.integer) or int(np.prod(arr.shape)) > _SPARSE_CHECK_PIXELS:
        return False
    return looks_like_counts([np.asarray(arr)])


def _smoothed(arr, sigma_px: float):
    """Gaussian-smoothed float32 copy of a lazy 2-D array (tile by tile, with overlap)."""
    from scipy import ndimage as ndi

    depth = int(np.ceil(4 * sigma_px)) + 1
    return _lazy(arr).astype(np.float32).map_overlap(
        ndi.gaussian_filter, depth=depth, boundary="nearest", sigma=sigma_px, dtype=np.float32)


def level_downsample(image: MultiplexImage, level: int) -> tuple[float, float]:
    """Level-0 pixels per pixel of ``level``, as (rows, columns).

    Pyramids halve with floor or ceil; a ratio within one pixel of an integer
    factor is taken as that integer.
    """
    if not 0 <= level < len(image.levels):
        raise RoiScoreError(
            f"Pyramid level {level} does not exist; the image has {len(image.levels)} level(s).",
            f"Choose a level from 0 to {len(image.levels) - 1}.",
        )
    h0, w0 = image.levels[0].shape[-2:]
    h, w = image.levels[level].shape[-2:]
    out = []
    for full, part in ((h0, h), (w0, w)):
        ratio = full / part
        k = max(int(round(ratio)), 1)
        out.append(float(k) if abs(full / k - part) <= 1 else float(ratio))
    return out[0], out[1]


def level0_to_level(xy: np.ndarray, downsample: tuple[float, float]) -> np.ndarray:
    """Convert (x, y) level-0 pixel coordinates to (x, y) coordinates of a level."""
    dy, dx = downsample
    xy = np.asarray(xy, dtype=np.float64)
    return np.c_[(xy[:, 0] - (dx - 1) / 2) / dx, (xy[:, 1] - (dy - 1) / 2) / dy]


def level_to_level0(xy: np.ndarray, downsample: tuple[float, float]) -> np.ndarray:
    """Inverse of :func:`level0_to_level`."""
    dy, dx = downsample
    xy = np.asarray(xy, dtype=np.float64)
    return np.c_[xy[:, 0] * dx + (dx - 1) / 2, xy[:, 1] * dy + (dy - 1) / 2]


def choose_level(image: MultiplexImage, spot_diameter_px: float,
                 pixels_per_radius: float = PIXELS_PER_RADIUS) -> int:
    """Coarsest level whose pixel is ≤ spot radius / ``pixels_per_radius`` (level 0 at worst)."""
    if not (np.isfinite(spot_diameter_px) and spot_diameter_px > 0):
        raise RoiScoreError(
            f"Spot diameter {spot_diameter_px!r} px is not a positive number.",
            "Check the spot table's diameter (scalefactors 'spot_diameter_fullres').",
        )
    limit = spot_diameter_px / 2 / pixels_per_radius
    best = 0
    for k in range(len(image.levels)):
        if max(level_downsample(image, k)) <= limit:
            best = k
    return best


def find_channel(image: MultiplexImage, channel: int | str) -> int:
    """Index of ``channel`` given as index, name (e.g. "CD68") or role (e.g. "macrophages")."""
    if isinstance(channel, (int, np.integer)):
        if 0 <= int(channel) < image.n_channels:
            return int(channel)
    else:
        key = str(channel).strip().lower()
        for i, name in enumerate(image.channel_names):
            if name.strip().lower() == key:
                return i
        for i, role in enumerate(image.roles):
            if role == key:
                return i
    raise RoiScoreError(
        f"Channel {channel!r} is not in the image (channels: {', '.join(image.channel_names)}).",
        "Pick one of the image's channels by name or number.",
    )


def _lazy(array) -> object:
    import dask.array as da

    return array if isinstance(array, da.Array) else da.asarray(array)


def otsu_threshold(array) -> float:
    """Otsu threshold of a (lazy) array, from its histogram; positive means ``> threshold``.

    Integer images with at most 4,096 distinct levels use one bin per value
    (exact); others use 1,024 bins between the minimum and maximum.
    """
    import dask
    import dask.array as da
    from skimage.filters import threshold_otsu

    arr = _lazy(array)
    lo, hi = (float(v) for v in dask.compute(arr.min(), arr.max()))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RoiScoreError("The channel holds NaN or infinite values.", "Check the image file.")
    if hi <= lo:
        return lo
    if np.issubdtype(arr.dtype, np.integer) and hi - lo < 4096:
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
    else:
        edges = np.linspace(lo, hi, 1025)
    counts, _ = da.histogram(arr.ravel(), bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    return float(threshold_otsu(hist=(np.asarray(counts.compute()), centres)))


@dataclass(frozen=True)
class MarkerMask:
    """Marker-positive pixels of one channel at one pyramid level.

    Attributes
    ----------
    channel : int
    channel_name : str
    level : int
        Pyramid level the mask lives on.
    downsample : (float, float)
        Level-0 pixels per mask pixel (rows, columns).
    threshold : float
        A pixel is positive when its intensity (smoothed, when ``smooth_px``
        > 0) is ``> threshold``.
    method : {"otsu", "user"}
    data : dask array of bool, shape (rows, columns) of the level
        Lazy: computed tile by tile when shown or used.
    smooth_px : float
        Gaussian σ (pixels of the mask's level) applied before thresholding.
    """

    channel: int
    channel_name: str
    level: int
    downsample: tuple[float, float]
    threshold: float
    method: str
    data: object
    smooth_px: float = 0.0

    @property
    def scale(self) -> tuple[float, float]:
        """napari ``scale`` that lays the mask over the level-0 image."""
        return self.downsample

    @property
    def translate(self) -> tuple[float, float]:
        """napari ``translate`` (see the module's coordinate rule)."""
        return ((self.downsample[0] - 1) / 2, (self.downsample[1] - 1) / 2)

    @property
    def label(self) -> str:
        how = "Otsu" if self.method == "otsu" else "user"
        smooth = f", smoothed σ {self.smooth_px:.2g} px" if self.smooth_px > 0 else ""
        return f"{self.channel_name}+ (> {self.threshold:g}, {how}, level {self.level}{smooth})"

    def layer_kwargs(self) -> dict:
        """Keyword arguments for a napari Labels/Image layer (pure data)."""
        return {"name": f"{self.channel_name}+ mask", "scale": self.scale,
                "translate": self.translate, "metadata": {"roiscore_marker": self.label}}


def marker_mask(
    image: MultiplexImage,
    channel: int | str,
    threshold: float | None = None,
    level: int | None = None,
    spot_diameter_px: float | None = None,
    smooth_um: float | None = None,
) -> MarkerMask:
    """Threshold ``channel`` at a pyramid level (lazily).

    Parameters
    ----------
    image : MultiplexImage
    channel : int or str
        Index, name (e.g. "CD68") or role (e.g. "macrophages").
    threshold : float, optional
        Intensity above which a pixel is positive; default: Otsu at that level.
    level : int, optional
        Pyramid level; default :func:`choose_level` for ``spot_diameter_px``
        (level 0 if neither is given).
    spot_diameter_px : float, optional
        Level-0 spot diameter, used to pick the level.
    smooth_um : float, optional
        Gaussian σ (µm) applied before thresholding (0: none).  Default:
        :data:`COUNT_SMOOTH_UM` for sparse ion counts (:func:`is_sparse_counts`;
        :data:`COUNT_SMOOTH_PX` level-0 pixels when the pixel size is unknown),
        none otherwise.  ``threshold`` then applies to the smoothed values.
    """
    c = find_channel(image, channel)
    if level is None:
        level = choose_level(image, spot_diameter_px) if spot_diameter_px is not None else 0
    ds = level_downsample(image, level)
    arr = _lazy(image.levels[level][c])
    if smooth_um is None:
        sigma0 = 0.0
        if is_sparse_counts(image, c):
            sigma0 = COUNT_SMOOTH_UM / image.pixel_size_um if image.pixel_size_um else COUNT_SMOOTH_PX
    else:
        if not (np.isfinite(smooth_um) and smooth_um >= 0):
            raise RoiScoreError(f"Smoothing {smooth_um!r} µm is not a number ≥ 0.", "Give σ in µm, or 0 for none.")
        sigma0 = smooth_um / image.pixel_size_um if image.pixel_size_um else smooth_um
    sigma = sigma0 / max(ds)
    if sigma >= 0.3:  # below a third of a pixel a Gaussian changes nothing
        arr = _smoothed(arr, sigma)
    else:
        sigma = 0.0
    if threshold is None:
        thr, method = otsu_threshold(arr), "otsu"
    else:
        thr, method = float(threshold), "user"
        if not np.isfinite(thr):
            raise RoiScoreError(f"Threshold {threshold!r} is not a number.", "Type a number.")
        dtype = np.dtype(arr.dtype)
        if dtype.kind in "ui" and thr >= np.iinfo(dtype).max:  # no pixel can be positive
            raise RoiScoreError(
                f"Threshold {thr:g} is at or above the largest value a {dtype.name} pixel of channel "
                f"{image.channel_names[c]!r} can hold ({np.iinfo(dtype).max}): no pixel would be positive.",
                f"Give a threshold below {np.iinfo(dtype).max}, or leave it empty for Otsu.")
    return MarkerMask(c, image.channel_names[c], int(level), ds, thr, method, arr > thr, float(sigma))
