"""Micrometres per pixel from the spot lattice itself.

A Visium slide has its spots on a hexagonal lattice with a 100 µm centre-to-centre
pitch; each spot is 55 µm across.  Space Ranger's ``spot_diameter_fullres`` is *not*
the 55 µm spot: it is the number of full-resolution pixels spanning a theoretical
65 µm spot.  Taking 55 µm / ``spot_diameter_fullres`` as the pixel size therefore
reads every distance 65/55 ≈ 18 % short (the product did this until 0.1).

The rule used by every reader that infers micrometres from Visium spots:

* pixel size = 100 µm / median nearest-neighbour distance of the spot centres;
* cross-check against 65 µm / ``spot_diameter_fullres`` and warn when the two
  disagree by more than 10 %;
* spots drawn 55 µm wide.

Visium HD bins are squares of a known size (``bin_size_um``) and Space Ranger
writes ``microns_per_pixel``; the bin pitch is checked against them the same way.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "SCALE_DISAGREEMENT",
    "SPACERANGER_SPOT_DIAMETER_UM",
    "VISIUM_PITCH_UM",
    "VISIUM_SPOT_DIAMETER_UM",
    "check_bin_pitch",
    "median_pitch_px",
    "visium_pixel_size_um",
]

#: Centre-to-centre distance of neighbouring Visium (standard definition) spots.
VISIUM_PITCH_UM = 100.0
#: Diameter of a Visium spot: what is drawn.
VISIUM_SPOT_DIAMETER_UM = 55.0
#: The theoretical spot that Space Ranger's ``spot_diameter_fullres`` spans.
SPACERANGER_SPOT_DIAMETER_UM = 65.0
#: Relative disagreement between two scale estimates that triggers a warning.
SCALE_DISAGREEMENT = 0.10


def median_pitch_px(xy: np.ndarray, max_spots: int = 200_000) -> float | None:
    """Median distance from each spot centre to its nearest neighbour (pixels).

    Above ``max_spots`` centres (Visium HD 2 µm bins: millions) only the
    ``max_spots`` centres in a square window around the middle of the slide are
    used, so that neighbours stay neighbours.  ``None`` with fewer than two
    distinct centres.
    """
    xy = np.asarray(xy, dtype=float)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return None
    if len(xy) > max_spots:
        window = np.abs(xy - np.median(xy, axis=0)).max(axis=1)
        xy = xy[np.argpartition(window, max_spots)[:max_spots]]
    dist, _ = cKDTree(xy).query(xy, k=2)
    nearest = dist[:, 1]
    nearest = nearest[nearest > 0]
    return float(np.median(nearest)) if len(nearest) else None


def _disagreement(a: float, b: float) -> float:
    return abs(a - b) / min(a, b)


def visium_pixel_size_um(xy: np.ndarray, spot_diameter_fullres: float | None,
                         source: str = "Visium spots") -> tuple[float | None, str]:
    """Micrometres per full-resolution pixel of a Visium (standard definition) slide.

    Parameters
    ----------
    xy : (n, 2) array
        Spot centres in full-resolution pixels; give all spots of the slide
        (the tissue positions file), not only those under tissue.
    spot_diameter_fullres : float or None
        Space Ranger's pixels across a theoretical 65 µm spot (cross-check).
    source : str
        Named in the warning.

    Returns
    -------
    pixel_size_um, how : float or None, str
        The pixel size and a sentence saying how it was found.

    Warns
    -----
    UserWarning
        When the spot pitch and ``spot_diameter_fullres`` disagree by more than 10 %
        (the pitch is used), or when there are too few spots for a pitch.
    """
    pitch = median_pitch_px(xy)
    by_diameter = (SPACERANGER_SPOT_DIAMETER_UM / spot_diameter_fullres
                   if spot_diameter_fullres and spot_diameter_fullres > 0 else None)
    if pitch is None:
        if by_diameter is None:
            return None, "unknown: fewer than two spots and no spot_diameter_fullres"
        warnings.warn(f"{source}: fewer than two spots, so the µm scale comes from "
                      f"spot_diameter_fullres (65 µm) alone ({by_diameter:.4g} µm/pixel).", stacklevel=2)
        return by_diameter, "65 µm / spot_diameter_fullres (too few spots for a pitch)"
    px = VISIUM_PITCH_UM / pitch
    if by_diameter is not None and _disagreement(px, by_diameter) > SCALE_DISAGREEMENT:
        warnings.warn(
            f"{source}: the spot pitch gives {px:.4g} µm/pixel (100 µm / {pitch:.4g} px) but "
            f"spot_diameter_fullres gives {by_diameter:.4g} µm/pixel (65 µm / "
            f"{spot_diameter_fullres:.4g} px), {_disagreement(px, by_diameter):.0%} apart; "
            "using the pitch. Check that the positions and scalefactors come from the same run.",
            stacklevel=2)
    return px, (f"100 µm Visium pitch / median nearest-neighbour spot distance ({pitch:.4g} px)")


def check_bin_pitch(xy: np.ndarray, side_px: float, source: str = "Visium HD bins") -> float | None:
    """Warn when the bin pitch differs from the bin side by more than 10 %; return the pitch."""
    pitch = median_pitch_px(xy)
    if pitch is not None and _disagreement(pitch, side_px) > SCALE_DISAGREEMENT:
        warnings.warn(
            f"{source}: neighbouring bins are {pitch:.4g} px apart but the bin size and "
            f"microns_per_pixel give {side_px:.4g} px; check the scalefactors of this bin folder.",
            stacklevel=2)
    return pitch


def space_ranger_scale(xy: np.ndarray, scalefactors: dict,
                       source: str = "spots") -> tuple[float, float, str] | None:
    """Spot diameter (pixels), pixel size (µm) and how, for spots read from a file that
    kept Space Ranger's scalefactors (e.g. an ``.h5ad`` written by ``scanpy.read_visium``).

    Visium HD (``bin_size_um`` and ``microns_per_pixel`` in the scalefactors): bins of
    ``bin_size_um``.  Standard Visium: the rule of :func:`visium_pixel_size_um`, 55 µm
    spots.  ``None`` when neither applies.
    """
    bin_um, um_per_px = scalefactors.get("bin_size_um"), scalefactors.get("microns_per_pixel")
    if bin_um and um_per_px:
        side_px = float(bin_um) / float(um_per_px)
        check_bin_pitch(xy, side_px, source=source)
        return side_px, float(um_per_px), "bin_size_um / microns_per_pixel (scalefactors)"
    px, how = visium_pixel_size_um(xy, scalefactors.get("spot_diameter_fullres"), source=source)
    if px is None:
        return None
    return VISIUM_SPOT_DIAMETER_UM / px, px, how
