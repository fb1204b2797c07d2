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

__all__ = ["MultiplexImage", "read_multiplex_tiff"]

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
        series = tif.series[0]
        axes = series.axes
        shape = series.shape
        if shape and int(np.prod([s for a, s in zip(axes, shape) if a in "YX"], dtype=np.float64)) > MAX_PIXELS:
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
