"""Slide images that come with spot data (Space Ranger hires/lowres H&E).

Space Ranger writes down-sampled copies of the full-resolution slide image;
``scalefactors_json.json`` says how many image pixels one full-resolution
pixel is (``tissue_hires_scalef``, ``tissue_lowres_scalef``).  Spot centres
are stored in full-resolution pixels, so an image of scale factor ``s`` is
drawn with a napari scale of ``1 / s`` (times the pixel size when the layers
are in micrometres) to land under its spots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_roiscore.errors import RoiScoreError

__all__ = ["TissueImage", "read_png", "tissue_image_layer", "tissue_images_from_uns"]


@dataclass
class TissueImage:
    """A down-sampled slide image and where it sits on the full-resolution frame.

    Parameters
    ----------
    data : numpy.ndarray
        (Y, X, 3|4) RGB(A) or (Y, X) grey pixels.
    scale_factor : float
        Image pixels per full-resolution pixel (e.g. ``tissue_lowres_scalef``).
    name : str
        ``"hires"``, ``"lowres"``...
    provenance : dict
        Path of the file it came from.
    """

    data: np.ndarray
    scale_factor: float
    name: str = "image"
    provenance: dict = field(default_factory=dict)

    @property
    def fullres_px_per_pixel(self) -> float:
        """Full-resolution pixels covered by one pixel of this image."""
        return 1.0 / self.scale_factor

    def fullres_to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """Map full-resolution (x, y) to this image's (x, y) pixel coordinates."""
        return np.asarray(xy, dtype=float) * self.scale_factor

    def values_at(self, xy: np.ndarray) -> np.ndarray:
        """Pixel values under full-resolution (x, y) points (nearest pixel; NaN outside)."""
        p = np.rint(self.fullres_to_pixel(xy)).astype(np.int64)
        h, w = self.data.shape[:2]
        inside = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
        out = np.full((len(p),) + self.data.shape[2:], np.nan)
        out[inside] = self.data[p[inside, 1], p[inside, 0]]
        return out


#: tissue images above this many pixels are refused before decoding (Space Ranger hires: 2000² or 4000²)
MAX_IMAGE_PIXELS = 20000 * 20000


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG slide image into a numpy array.

    Refused (RoiScoreError naming the file): not a regular file, damaged, or
    declaring more than :data:`MAX_IMAGE_PIXELS` pixels (a decompression bomb
    is refused from its header, before any pixel is decoded).
    """
    from PIL import Image

    from napari_roiscore.outputs import require_regular_file
    from napari_roiscore.spots.checks import reader_errors

    path = Path(path)
    require_regular_file(path, "Tissue image")
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":  # size from the header, before PIL
        _check_size(path, int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
    with reader_errors(repr(str(path)), "Copy the image again from the Space Ranger run."):
        with Image.open(path) as im:
            _check_size(path, *im.size)
            im.load()
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):  # as skimage.io.imread gives them
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            return np.asarray(im)


def _check_size(path: Path, w: int, h: int) -> None:
    if w * h > MAX_IMAGE_PIXELS:
        raise RoiScoreError(
            f"{str(path)!r} declares {w:,} x {h:,} pixels; decoding it would need about "
            f"{w * h * 4 / 1024**3:.1f} GB (at most {MAX_IMAGE_PIXELS:,} pixels are read).",
            "Use the lowres/hires PNG Space Ranger writes, or downscale the image.")


def tissue_image_layer(image: TissueImage, pixel_size_um: float | None = None) -> tuple:
    """napari layer-data tuple drawing ``image`` under spots in full-res pixels.

    ``pixel_size_um`` must be the one the spots layer uses (its scale), so
    both end up in the same world units.
    """
    s = image.fullres_px_per_pixel * (pixel_size_um or 1.0)
    rgb = image.data.ndim == 3 and image.data.shape[-1] in (3, 4)
    # scanpy/squidpy convention: image pixel i is centred on full-res i / s
    return (
        image.data,
        {
            "name": f"tissue {image.name}",
            "rgb": rgb,
            "scale": (s, s),
            # same units as the spots layer (µm when the pixel size is known): keeps the scale bar
            **({"units": ("um", "um")} if pixel_size_um else {}),
            "metadata": {"roiscore_tissue_image": image.name,
                         "roiscore_scale_factor": image.scale_factor},
        },
        "image",
    )


def tissue_images_from_uns(adata) -> list[TissueImage]:
    """Images stored the scanpy/squidpy way in ``uns["spatial"][library]``.

    Returns hires before lowres; an empty list when there are none.
    """
    out = []
    spatial = adata.uns.get("spatial", {})
    if not isinstance(spatial, dict):
        return out
    for lib, entry in spatial.items():
        if not isinstance(entry, dict):
            continue
        images = entry.get("images", {}) or {}
        sf = entry.get("scalefactors", {}) or {}
        for name in ("hires", "lowres"):
            key = f"tissue_{name}_scalef"
            if name in images and key in sf:
                out.append(TissueImage(np.asarray(images[name]), float(sf[key]), name,
                                       {"library_id": str(lib)}))
    return out
