"""How much of each spot a marker mask covers, and which spots pass.

Steps 2 and 3 of :mod:`napari_roiscore.images.markers`:
:func:`footprint_fractions` gives, per spot, the fraction of its footprint (a
disc of the spot diameter, or a square of that side for Visium HD bins) that
is marker-positive; :func:`restrict_spots` turns "at least X % positive" into
a True/False mask per spot (``spot_mask`` of :meth:`RoiScorer.table`);
:func:`marker_restriction` runs threshold → footprints → restriction for one
slide (CLI, sessions).  Memory is estimated before any footprint is
allocated, and a mask stored in few big strips is decoded once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.markers import (
    MarkerMask,
    TILE,
    level0_to_level,
    marker_mask,
)

__all__ = ["footprint_fractions", "marker_restriction", "restrict_spots"]


#: memory per footprint pixel while measuring (offsets, distances, masks), bytes
FOOTPRINT_BYTES_PER_PIXEL = 64
#: one spot's footprint may need at most this much; more is a broken diameter, refused with the estimate
MAX_FOOTPRINT_BYTES = 2 * 1024**3
#: spots of a tile are measured in batches needing about this much memory
FOOTPRINT_CHUNK_BYTES = 256 * 1024**2


#: a mask whose file chunks (strips) are larger than this many pixels is decoded once, not per tile
_BIG_CHUNK_PIXELS = 2 * TILE * TILE
#: ... when the whole mask fits in this many bytes
_MAX_DECODED_MASK_BYTES = 1024**3


def _decoded_once(data):
    """``data`` itself, or — for a lazy mask read in few big chunks (a single-strip TIFF) —
    the mask computed once: slicing such a mask per tile of spots decodes the whole strip again
    each time (minutes for a 16k² image)."""
    chunks = getattr(data, "chunks", None)
    if not chunks or len(chunks) != 2:
        return data
    biggest = max(chunks[0]) * max(chunks[1])
    if biggest > _BIG_CHUNK_PIXELS and data.size <= _MAX_DECODED_MASK_BYTES:
        return np.asarray(data)
    return data


def footprint_fractions(
    mask: MarkerMask,
    spots_xy: np.ndarray,
    diameter_px: float,
    shape: str = "circle",
) -> np.ndarray:
    """Fraction of each spot's footprint that is marker-positive.

    Parameters
    ----------
    mask : MarkerMask
    spots_xy : ndarray, shape (n, 2)
        Spot centres (x, y) in level-0 pixels (``SpotTable.xy``).
    diameter_px : float
        Spot diameter (circle) or bin side (square), level-0 pixels.
    shape : {"circle", "square"}

    Returns
    -------
    ndarray of float, shape (n,)
        In [0, 1]; NaN for spots whose footprint lies outside the image.
        A footprint smaller than one mask pixel uses the pixel under its centre.

    Raises
    ------
    RoiScoreError
        Bad shape or diameter, or no spot at all lies on the image.
    """
    if shape not in ("circle", "square"):
        raise RoiScoreError(f"Unknown spot shape {shape!r}.", "Use 'circle' or 'square'.")
    if not (np.isfinite(diameter_px) and diameter_px > 0):
        raise RoiScoreError(f"Spot diameter {diameter_px!r} px is not positive.",
                            "Check the spot table's diameter.")
    xy = np.asarray(spots_xy, dtype=np.float64).reshape(-1, 2)
    n = len(xy)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    dsy, dsx = mask.downsample
    radius = diameter_px / 2
    lvl = level0_to_level(xy, mask.downsample)
    cx, cy = lvl[:, 0], lvl[:, 1]
    ci, cj = np.round(cy).astype(np.int64), np.round(cx).astype(np.int64)
    hy, hx = int(np.ceil(radius / dsy)) + 1, int(np.ceil(radius / dsx)) + 1
    per_spot = (2 * hy + 1) * (2 * hx + 1) * FOOTPRINT_BYTES_PER_PIXEL
    if per_spot > MAX_FOOTPRINT_BYTES:  # estimated before anything is allocated
        raise RoiScoreError(
            f"Spot diameter {diameter_px:g} px covers {(2 * hy + 1) * (2 * hx + 1):,} mask pixels per spot; "
            f"measuring one footprint would need about {per_spot / 1024**3:.1f} GB "
            f"(limit {MAX_FOOTPRINT_BYTES / 1024**3:.0f} GB).",
            "Check the spot diameter (scale factors) — a Visium spot is ~100-200 px.")
    oy, ox = np.mgrid[-hy:hy + 1, -hx:hx + 1]
    oy, ox = oy.ravel(), ox.ravel()
    height, width = (int(s) for s in mask.data.shape)
    tile_id = (np.clip(ci, 0, height - 1) // TILE) * (width // TILE + 1) + np.clip(cj, 0, width - 1) // TILE
    order = np.argsort(tile_id, kind="stable")
    bounds = np.flatnonzero(np.diff(tile_id[order])) + 1
    data = _decoded_once(mask.data)
    chunk = max(1, int(FOOTPRINT_CHUNK_BYTES // per_spot))  # spots measured at once: bounded memory
    groups = [g[i:i + chunk] for g in np.split(order, bounds) for i in range(0, len(g), chunk)]
    for group in groups:
        r0 = max(int(ci[group].min()) - hy, 0)
        r1 = min(int(ci[group].max()) + hy + 1, height)
        c0 = max(int(cj[group].min()) - hx, 0)
        c1 = min(int(cj[group].max()) + hx + 1, width)
        if r0 >= r1 or c0 >= c1:
            continue
        window = np.asarray(data[r0:r1, c0:c1])
        rr = ci[group, None] + oy[None, :]
        cc = cj[group, None] + ox[None, :]
        dy0 = (rr - cy[group, None]) * dsy
        dx0 = (cc - cx[group, None]) * dsx
        if shape == "circle":
            inside = dy0**2 + dx0**2 <= radius**2
        else:
            inside = (np.abs(dy0) <= radius) & (np.abs(dx0) <= radius)
        valid = (rr >= r0) & (rr < r1) & (cc >= c0) & (cc < c1)
        # footprints smaller than a mask pixel: use the pixel under the centre
        centre = (oy == 0) & (ox == 0)
        tiny = ~(inside & valid).any(axis=1)
        inside[tiny] = centre
        use = inside & valid
        pos = np.zeros(use.shape, dtype=bool)
        pos[use] = window[rr[use] - r0, cc[use] - c0]
        n_use = use.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[group] = np.where(n_use > 0, pos.sum(axis=1) / n_use, np.nan)
    if not np.isfinite(out).any():
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        raise RoiScoreError(
            f"None of the {n} spots lies on the image of marker {mask.channel_name!r} "
            f"(spot x {lo[0]:.0f}..{hi[0]:.0f}, y {lo[1]:.0f}..{hi[1]:.0f} level-0 px; "
            f"image {width * dsx:.0f} x {height * dsy:.0f} px).",
            "Use the image and the spots of the same slide; spot centres must be level-0 pixels "
            "of this image.",
        )
    return out


def restrict_spots(fractions: np.ndarray, min_fraction: float) -> np.ndarray:
    """Spots whose footprint is at least ``min_fraction`` positive (0.2 = 20 %).

    Spots without a fraction (NaN, outside the image) are excluded.
    """
    min_fraction = float(min_fraction)
    if not 0 <= min_fraction <= 1:
        raise RoiScoreError(
            f"Minimum positive fraction {min_fraction!r} is not between 0 and 1.",
            "Give a fraction, e.g. 0.2 for 20 % of the spot area.",
        )
    f = np.asarray(fractions, dtype=np.float64)
    return np.isfinite(f) & (f >= min_fraction)


def marker_restriction(image: Any, spots: Any, channel: int | str, threshold: float | None = None,
                       min_fraction: float = 0.1, level: int | None = None) -> tuple[np.ndarray, dict]:
    """Spots whose footprint is at least ``min_fraction`` marker-positive.

    The same steps as the widget's *Markers* tab: threshold one channel
    (Otsu when ``threshold`` is None) at the pyramid level chosen for the
    spot size, measure the positive fraction of each spot's footprint, keep
    spots at or above ``min_fraction``.

    Parameters
    ----------
    image : MultiplexImage or path
        Opened lazily when a path.
    spots : SpotTable
    channel : int or str
        Index, name (e.g. "CD68") or role of the channel.
    threshold : float, optional
    min_fraction : float
        0.1 = 10 % of the spot area (the widget's default).
    level : int, optional
        Pyramid level (default: chosen from the spot size).

    Returns
    -------
    spot_mask : ndarray of bool, shape (n_spots,)
    settings : dict
        ``channel`` (name), ``threshold`` (resolved number), ``threshold_method``,
        ``level``, ``min_fraction`` and ``label`` (as the widget writes it).
    """
    if isinstance(image, (str, Path)):
        from napari_roiscore.readers.dispatch import read_image

        img = read_image(image)
    else:
        img = image
    mask = marker_mask(img, channel, threshold=threshold, level=level, spot_diameter_px=spots.diameter_px)
    frac = footprint_fractions(mask, spots.xy, spots.diameter_px, shape=spots.shape)
    keep = restrict_spots(frac, min_fraction)
    settings = {
        "channel": mask.channel_name,
        "threshold": float(mask.threshold),
        "threshold_method": mask.method,
        "level": int(mask.level),
        "min_fraction": float(min_fraction),
        "label": f"{mask.label}, ≥ {float(min_fraction):.0%} of spot area",
    }
    return keep, settings
