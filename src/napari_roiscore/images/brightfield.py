"""Brightfield stains as channels: colour deconvolution of H&E and IHC images.

An RGB H&E or IHC image has no marker channel to threshold.  Colour
deconvolution (Ruifrok & Johnston; :func:`skimage.color.rgb2hed`) separates
it into haematoxylin (nuclei), eosin (cytoplasm, stroma) and DAB (the brown
chromogen of an IHC stain, e.g. CD68 for macrophages), which then serve the
Markers tab and compartment proposals like fluorescence channels.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2hed

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage

__all__ = ["STAIN_NAMES", "is_rgb", "stain_image", "stain_channels"]

#: channel names, in rgb2hed order
STAIN_NAMES = ("haematoxylin", "eosin", "DAB")
#: roles the stains take (haematoxylin stains nuclei; DAB is whatever the IHC targets)
STAIN_ROLES = ("nuclei", "other", "other")


def is_rgb(data: np.ndarray) -> bool:
    """Whether ``data`` is a (Y, X, 3|4) colour image."""
    return getattr(data, "ndim", 0) == 3 and data.shape[-1] in (3, 4)


def stain_channels(rgb: np.ndarray) -> np.ndarray:
    """Stain amounts per pixel, shape (3, Y, X), float32, each scaled to 0..1.

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3|4)
        8-bit or float RGB(A); alpha is ignored.

    Raises
    ------
    RoiScoreError
        When ``rgb`` is not a colour image.
    """
    rgb = np.asarray(rgb)
    if not is_rgb(rgb):
        raise RoiScoreError(
            f"Colour deconvolution needs an RGB image (Y, X, 3); this image has shape {rgb.shape}.",
            "Use the marker channels of a fluorescence image directly.",
        )
    hed = rgb2hed(rgb[..., :3])
    hed = np.clip(hed, 0.0, None)
    out = np.empty((3, *hed.shape[:2]), dtype=np.float32)
    for c in range(3):
        ch = hed[..., c]
        top = float(np.percentile(ch, 99.9)) if ch.size else 0.0
        out[c] = np.clip(ch / top, 0.0, 1.0) if top > 0 else 0.0
    return out


def stain_image(rgb: np.ndarray, pixel_size_um: float | None, dab_role: str = "other",
                provenance: dict | None = None) -> MultiplexImage:
    """A :class:`MultiplexImage` with haematoxylin, eosin and DAB channels.

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3|4)
    pixel_size_um : float or None
        µm per pixel of ``rgb``.
    dab_role : str
        Role of the DAB channel (e.g. ``"macrophages"`` for a CD68 IHC).
    """
    stains = stain_channels(rgb)
    roles = [STAIN_ROLES[0], STAIN_ROLES[1], dab_role]
    return MultiplexImage(levels=[stains], channel_names=list(STAIN_NAMES),
                          pixel_size_um=pixel_size_um, roles=roles,
                          provenance={"derived": "colour deconvolution (skimage rgb2hed)",
                                      **(provenance or {})})
