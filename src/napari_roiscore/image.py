"""Multiplex images: lazy pyramids with channel names and pixel size.

OME-TIFF pyramids (SubIFDs) are opened with tifffile's zarr store, one dask
array per pyramid level, so nothing is read until napari draws a tile.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .channel import ROLE_COLOURMAPS, role_for_name
from .errors import RoiScoreError

__all__ = ["MultiplexImage", "read_multiplex_tiff", "spots_on_image"]

#: Refuse to open images whose level 0 declares more pixels than this per channel.
MAX_PIXELS = 200_000 * 200_000


@dataclass
class MultiplexImage:
    """A multichannel image pyramid.

    Parameters
    ----------
    levels : list of array-like
        Pyramid levels, each shaped (C, Y, X), level 0 first (lazy dask arrays).
    channel_names : list of str
    pixel_size_um : float or None
        Level-0 pixel size in micrometres.
    roles : list of str
        Role per channel (see :mod:`napari_roiscore.channel`).
    provenance : dict
    """

    levels: list
    channel_names: list[str]
    pixel_size_um: float | None = None
    roles: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.roles:
            self.roles = [role_for_name(n) for n in self.channel_names]

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def shape_yx(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.levels[0].shape[-2:])  # type: ignore[return-value]

    def channel_levels(self, c: int) -> list:
        """The pyramid of channel ``c`` (list of 2-D arrays)."""
        return [lvl[c] for lvl in self.levels]

    def colormap(self, c: int) -> str:
        return ROLE_COLOURMAPS.get(self.roles[c], "gray")


def _ome_channels_and_pixel_size(ome_xml: str | None) -> tuple[list[str], float | None]:
    if not ome_xml:
        return [], None
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return [], None
    names: list[str] = []
    px = None
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "Pixels" and px is None:
            val = el.get("PhysicalSizeX")
            unit = el.get("PhysicalSizeXUnit", "µm")
            if val is not None:
                px = float(val) * {"nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}.get(unit, 1.0)
        elif tag == "Channel":
            names.append(el.get("Name") or el.get("ID") or f"channel {len(names)}")
    return names, px


def _check_pixel_data_in_file(series, path: Path) -> None:
    """Refuse a truncated file: every tile/strip must end inside the file (reads no pixels)."""
    size = path.stat().st_size
    for level in series.levels:
        for page in level.pages:
            if page is None:
                continue
            offsets = np.asarray(getattr(page, "dataoffsets", ()), dtype=np.float64)
            counts = np.asarray(getattr(page, "databytecounts", ()), dtype=np.float64)
            if offsets.size and counts.size == offsets.size and float((offsets + counts).max()) > size:
                raise RoiScoreError(
                    f"Image {str(path)!r} is truncated: its pixel data end after the end of the file "
                    f"({size} bytes).",
                    "Copy or download the file again; it is incomplete.",
                )


def spots_on_image(image: MultiplexImage, spots) -> np.ndarray:
    """Which spot centres lie on ``image`` (level-0 pixels); raise when none does.

    Spots partly off the image are legitimate (tissue at the edge): they are
    flagged ``False`` here, get no marker fraction (NaN, see
    :func:`napari_roiscore.marker.footprint_fractions`) and are still scored.

    Parameters
    ----------
    image : MultiplexImage
    spots : SpotTable

    Returns
    -------
    ndarray of bool, shape (n_spots,)

    Raises
    ------
    RoiScoreError
        Not a single spot lies on the image: spots and image are from
        different slides, or in different coordinate frames.
    """
    h, w = image.shape_yx
    xy = spots.xy
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < h - 0.5)
    if xy.size and not inside.any():
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        raise RoiScoreError(
            f"None of the {len(xy)} spots of {spots.provenance.get('path', 'the spot table')!r} lies on the image "
            f"{image.provenance.get('path', '')!r} ({w} x {h} px): spot x runs {lo[0]:.0f}..{hi[0]:.0f}, "
            f"y {lo[1]:.0f}..{hi[1]:.0f}.",
            "Open the image and spots of the same slide; spot centres must be full-resolution "
            "(level-0) pixels of this image (obsm['spatial'] as x, y).",
        )
    return inside


def read_multiplex_tiff(path: str | Path) -> MultiplexImage:
    """Open an OME-TIFF (or plain multi-page TIFF) lazily as a pyramid.

    Raises
    ------
    RoiScoreError
        Missing/corrupt file, unsupported axes, or absurd declared size.
    """
    import dask.array as da
    import tifffile
    import zarr

    path = Path(path)
    if not path.is_file():
        raise RoiScoreError(f"Image {str(path)!r} does not exist.", "Check the path.")
    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:
        raise RoiScoreError(
            f"Image {str(path)!r} is not a readable TIFF ({type(err).__name__}: {err}).",
            "Re-export it as OME-TIFF, or check that the file is complete.",
        ) from None
    try:
        if not tif.series:
            raise RoiScoreError(f"Image {str(path)!r} holds no image.",
                                "Re-export it as OME-TIFF, or check that the file is complete.")
        series = tif.series[0]
        axes = series.axes
        shape = series.shape
        if shape and float(np.prod([s for a, s in zip(axes, shape) if a in "YX"], dtype=np.float64)) > MAX_PIXELS:
            raise RoiScoreError(
                f"Image {str(path)!r} declares {shape} pixels, more than this tool opens.",
                "Check the file; it is probably corrupt.",
            )
        keep = set("CYX")
        if not set("YX") <= set(axes):
            raise RoiScoreError(
                f"Image {str(path)!r} has axes {axes!r}; expected Y and X.",
                "Save the image with Y and X axes (and C for channels).",
            )
        if any(int(s) == 0 for s in shape):
            raise RoiScoreError(f"Image {str(path)!r} has an empty dimension (shape {shape}).",
                                "Re-export the image; it holds no pixels.")
        _check_pixel_data_in_file(series, path)
        levels = []
        for i, _lvl in enumerate(series.levels):
            store = series.aszarr(level=i)
            arr = da.from_zarr(zarr.open(store, mode="r"))
            # reduce to C, Y, X: take the first index of any other axis (Z, T, S)
            idx = tuple(slice(None) if a in keep else 0 for a in axes)
            arr = arr[idx]
            if "C" not in axes:
                arr = arr[None]
            levels.append(arr)
        names, px = _ome_channels_and_pixel_size(tif.ome_metadata)
    except RoiScoreError:
        tif.close()
        raise
    except Exception as err:
        tif.close()
        raise RoiScoreError(
            f"Image {str(path)!r} could not be read ({type(err).__name__}: {err}).",
            "Check that the file is a complete OME-TIFF.",
        ) from None
    n_c = int(levels[0].shape[0])
    if len(names) != n_c:
        names = [f"channel {i}" for i in range(n_c)]
    return MultiplexImage(
        levels=levels,
        channel_names=names,
        pixel_size_um=px,
        provenance={"reader": "tifffile", "path": str(path)},
    )
