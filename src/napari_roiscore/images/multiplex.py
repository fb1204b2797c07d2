"""Multiplex images: lazy pyramids with channel names and pixel size.

Three TIFF flavours are read with tifffile:

* **OME-TIFF** (pyramid levels in SubIFDs): channel names and pixel size
  from the OME-XML;
* **QPTIFF** (Akoya PhenoImager / Vectra / PhenoCycler, PerkinElmer-QPI):
  one page per channel, each with an XML ImageDescription naming its stain
  (``<Biomarker>``, else ``<Name>``); reduced-resolution pages form the
  pyramid; pixel size from ``<ScanProfile>`` (``PixelSizeMicrons``) or the
  TIFF resolution tags (pixels per centimetre);
* **plain multi-page TIFF** (one page per channel, maybe no pyramid):
  channel names from each page's ``PageName`` tag or ImageDescription (see
  :mod:`napari_roiscore.images.tiff_pages`), else ``channel 0``,
  ``channel 1``...; pixel size from the
  resolution tags when their unit is centimetre (or ImageJ's micron).

Every level is a dask array over tifffile's zarr store, chunked like the
file's tiles, so nothing is read until napari draws a tile.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_roiscore.images.channels import ROLE_COLOURMAPS, guess_roles
from napari_roiscore.errors import RoiScoreError

__all__ = ["MultiplexImage", "read_multiplex_tiff", "spots_on_image", "tiff_flavour"]

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
        Role per channel (see :mod:`napari_roiscore.images.channels`).
    provenance : dict
    """

    levels: list
    channel_names: list[str]
    pixel_size_um: float | None = None
    roles: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.roles:
            self.roles = guess_roles(self.channel_names)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def shape_yx(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.levels[0].shape[-2:])  # type: ignore[return-value]

    def channel_levels(self, c: int) -> list:
        """The pyramid of channel ``c`` (list of 2-D arrays)."""
        return [lvl[c] for lvl in self.levels]

    def set_pixel_size(self, pixel_size_um: float) -> None:
        """Give the pixel size (µm) the files did not hold; sessions keep it as a reader option."""
        from napari_roiscore.readers.channel_folder import _check_pixel_size

        self.pixel_size_um = _check_pixel_size(pixel_size_um)
        self.provenance.update(pixel_size_source="given", reader_options={"pixel_size_um": self.pixel_size_um})

    def colormap(self, c: int) -> str:
        return ROLE_COLOURMAPS.get(self.roles[c], "gray")

    def set_role(self, channel: str | int, role: str) -> None:
        """Change a channel's role (by name or index); the colour follows."""
        if role not in ROLE_COLOURMAPS:
            raise RoiScoreError(f"Unknown channel role {role!r}.",
                                f"Use one of {', '.join(ROLE_COLOURMAPS)}.")
        c = channel if isinstance(channel, int) else self.channel_names.index(channel) \
            if channel in self.channel_names else None
        if c is None or not 0 <= c < self.n_channels:
            raise RoiScoreError(f"Image has no channel {channel!r}.",
                                f"Use one of {self.channel_names}.")
        self.roles[c] = role


#: micrometres per unit of the OME PhysicalSizeXUnit
_OME_UNIT_UM = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}

#: axes that can hold the channels when there is no "C" axis, in order of preference
_CHANNEL_AXES = "CSIQ"


def _ome_channels_and_pixel_size(ome_xml: str | None) -> tuple[list[str], float | None]:
    """Channel names and level-0 pixel size (µm) of the **first** OME Image.

    The first Image is the series that is read (``tif.series[0]``); further
    Images (a label or macro picture, other scenes) have channels of their own
    that must not be appended to its channel names.
    """
    if not ome_xml:
        return [], None
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return [], None

    def local(el: ET.Element) -> str:
        return el.tag.rsplit("}", 1)[-1]

    pixels = next((el for el in root.iter() if local(el) == "Pixels"), None)  # document order: first Image
    if pixels is None:
        return [], None
    px = None
    val = pixels.get("PhysicalSizeX")
    if val is not None:
        try:
            px = float(val) * _OME_UNIT_UM.get(pixels.get("PhysicalSizeXUnit", "µm"), 1.0)
        except ValueError:
            px = float("nan")  # refused by the caller, naming the file
    names: list[str] = []
    for el in pixels:
        if local(el) == "Channel":
            names.append(el.get("Name") or el.get("ID") or f"channel {len(names)}")
    return names, px


def _xml_text(root: ET.Element, *tags: str) -> str | None:
    """Text of the first non-empty descendant element among ``tags`` (in that order)."""
    for tag in tags:
        for el in root.iter(tag):
            if el.text and el.text.strip():
                return el.text.strip()
    return None


def _qptiff_page_info(description: str) -> tuple[str | None, float | None]:
    """Stain name and pixel size (µm) from one QPTIFF page's ImageDescription XML.

    The biomarker (``<Biomarker>``, written by newer PhenoImager software)
    is preferred over the fluorophore/filter ``<Name>`` ("Opal 570") because
    it is what the channel shows.  The pixel size is taken from
    ``<ScanProfile>`` (``PixelSizeMicrons``), which may hold nested XML or
    escaped XML/JSON text.
    """
    try:
        root = ET.fromstring(description.replace('encoding="utf-16"', 'encoding="utf-8"').encode())
    except ET.ParseError:
        return None, None
    name = _xml_text(root, "Biomarker", "BioMarker", "Name")
    px = None
    profile = root.find(".//ScanProfile")
    if profile is not None:
        text = ET.tostring(profile, encoding="unicode")
        m = re.search(r"PixelSizeMicrons\W{0,4}?([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)", html.unescape(text))
        if m:
            val = float(m.group(1))
            px = val if val > 0 else None
    return name, px


def _resolution_pixel_size(page, imagej_unit: str | None = None) -> float | None:
    """Pixel size (µm) from the TIFF XResolution tag, when its unit is meaningful.

    ResolutionUnit centimetre → 10,000 / pixels-per-cm; ImageJ files store
    pixels per ``unit`` (micron) with no TIFF unit.  Inch is ignored: most
    software writes a meaningless 72/96/300 dpi default there.
    """
    tags = getattr(page, "tags", None)
    if tags is None or "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    if not num or not den:
        return None
    per_unit = num / den
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    if unit == 3:  # centimetre
        return 1e4 / per_unit
    if unit == 1 and imagej_unit and imagej_unit.strip().lower() in ("micron", "um", "µm", "\\u00b5m", "microns"):
        return 1.0 / per_unit
    return None


def _channel_axis(axes: str, shape: tuple[int, ...]) -> str | None:
    """The axis holding channels: C, else samples (RGB), pages (I) or Q with size > 1."""
    sizes = dict(zip(axes, shape))
    for a in _CHANNEL_AXES:
        if sizes.get(a, 1) > 1:
            return a
    return "C" if "C" in sizes else None


def _lazy_level(series, level: int, channel_axis: str | None):
    """One pyramid level as a dask array (C, Y, X), chunked like the file's tiles."""
    import dask.array as da
    import zarr

    lvl = series.levels[level]
    z = zarr.open(series.aszarr(level=level), mode="r")
    arr = da.from_zarr(z)
    axes = lvl.axes
    idx = tuple(slice(None) if a in "YX" or a == channel_axis else 0 for a in axes)
    arr = arr[idx]
    kept = [a for a in axes if a in "YX" or a == channel_axis]
    if channel_axis is None:
        arr = arr[None]
        kept = ["C", *kept]
        channel_axis = "C"
    return arr.transpose([kept.index(channel_axis), kept.index("Y"), kept.index("X")])


def _open_tiff(path: Path):
    import tifffile

    from napari_roiscore.outputs import require_regular_file

    require_regular_file(path, "Image")  # a FIFO or device would block forever
    try:
        return tifffile.TiffFile(path)
    except Exception as err:
        raise RoiScoreError(
            f"Image {str(path)!r} is not a readable TIFF ({type(err).__name__}: {err}).",
            "Re-export it as OME-TIFF, or check that the file is complete.",
        ) from None


def tiff_flavour(tif) -> str:
    """``"qptiff"``, ``"ome"``, ``"imagej"`` or ``"tiff"`` for an open :class:`tifffile.TiffFile`."""
    if tif.is_qpi:
        return "qptiff"
    if tif.is_ome:
        return "ome"
    if tif.is_imagej:
        return "imagej"
    return "tiff"


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
    :func:`napari_roiscore.images.spot_footprints.footprint_fractions`) and are still scored.

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


def read_multiplex_tiff(path: str | Path, pixel_size_um: float | None = None) -> MultiplexImage:
    """Open an OME-TIFF, QPTIFF or plain multi-page TIFF lazily as a pyramid.

    ``pixel_size_um`` (µm per level-0 pixel), when given, replaces what the
    file says (or does not say); it is recorded in
    ``provenance["reader_options"]`` so sessions reopen the image alike.

    Nothing but the TIFF headers is read here; pixels are read tile by tile
    when a level is sliced and computed (as napari does for the visible area).

    Returns
    -------
    MultiplexImage
        Levels shaped (C, Y, X), largest first; channel names from the
        metadata (``channel 0``... when the file names none); pixel size in µm
        or None; roles guessed from the names.

    Raises
    ------
    RoiScoreError
        Missing/corrupt file, unsupported axes, or absurd declared size.
    """
    from napari_roiscore.outputs import protect_input

    path = Path(path)
    protect_input(path)
    tif = _open_tiff(path)
    try:
        flavour = tiff_flavour(tif)
        if not tif.series:
            raise RoiScoreError(f"Image {str(path)!r} holds no image.",
                                "Re-export it as OME-TIFF, or check that the file is complete.")
        if flavour == "tiff" and len(tif.series) > 1:  # 2-D pages written one by one
            from napari_roiscore.readers.channel_folder import read_tiff_planes

            planes = read_tiff_planes(tif, path, pixel_size_um)
            if planes is not None:
                return planes
        series = tif.series[0]
        axes, shape = series.axes, series.shape
        sizes = dict(zip(axes, shape))
        if not set("YX") <= set(axes):
            raise RoiScoreError(
                f"Image {str(path)!r} has axes {axes!r}; expected Y and X.",
                "Save the image with Y and X axes (and C for channels).",
            )
        if float(sizes["Y"]) * float(sizes["X"]) > MAX_PIXELS:
            raise RoiScoreError(
                f"Image {str(path)!r} declares {shape} pixels, more than this tool opens.",
                "Check the file; it is probably corrupt.",
            )
        stacks = {a: int(sizes[a]) for a in "ZT" if int(sizes.get(a, 1)) > 1}
        if stacks:  # never silently reduced to the first plane
            what = ", ".join(f"{n} {'z-planes' if a == 'Z' else 'time points'}" for a, n in stacks.items())
            raise RoiScoreError(f"Image {str(path)!r} has {what} (axes {axes!r}); spots are placed on one 2-D plane.",
                                "Save the plane to score (or a maximum projection) as its own OME-TIFF.")
        if any(int(s) == 0 for s in shape):
            raise RoiScoreError(f"Image {str(path)!r} has an empty dimension (shape {shape}).",
                                "Re-export the image; it holds no pixels.")
        _check_pixel_data_in_file(series, path)
        ch_axis = _channel_axis(axes, shape)
        levels = [_lazy_level(series, i, ch_axis) for i in range(len(series.levels))]
        n_c = int(levels[0].shape[0])
        page0 = series.keyframe
        names: list[str] = []
        px = None
        if flavour == "ome":
            names, px = _ome_channels_and_pixel_size(tif.ome_metadata)
        elif flavour == "qptiff":
            infos = [_qptiff_page_info(getattr(pg, "description", "") or "") for pg in series.pages]
            names = [n or f"channel {i}" for i, (n, _) in enumerate(infos)]
            px = next((p for _, p in infos if p), None)
        elif flavour == "imagej":
            labels = (tif.imagej_metadata or {}).get("Labels")
            if isinstance(labels, (list, tuple)) and len(labels) == n_c:
                names = [str(v) for v in labels]
        if len(names) != n_c and flavour in ("tiff", "imagej") and ch_axis in ("C", "I", "Q"):
            from napari_roiscore.images.tiff_pages import page_channel_names

            names = page_channel_names(list(series.pages)) or names
        if px is None and page0 is not None:
            unit = (tif.imagej_metadata or {}).get("unit") if flavour == "imagej" else None
            px = _resolution_pixel_size(page0, unit)
        if ch_axis == "S" and n_c in (3, 4) and int(getattr(page0, "photometric", 0) or 0) == 2:
            names = ["red", "green", "blue", "alpha"][:n_c]
    except RoiScoreError:
        tif.close()
        raise
    except Exception as err:
        tif.close()
        raise RoiScoreError(
            f"Image {str(path)!r} could not be read ({type(err).__name__}: {err}).",
            "Check that the file is a complete OME-TIFF, QPTIFF or multi-page TIFF.",
        ) from None
    if len(names) != n_c:
        names = [f"channel {i}" for i in range(n_c)]
    if px is not None and not (np.isfinite(px) and 0 < px <= 1e4):
        raise RoiScoreError(f"Image {str(path)!r}: the pixel size in its metadata is {px!r} µm "
                            "(OME PhysicalSizeX / resolution); it must be a positive number.",
                            "Fix the pixel size in the metadata (e.g. bfconvert, QuPath) or re-export the image.")
    provenance = {"reader": "tifffile", "path": str(path), "format": flavour,
                  "axes": axes, "n_levels": len(levels), "pixel_size_source": "files" if px else "unknown"}
    if pixel_size_um is not None:
        from napari_roiscore.readers.channel_folder import _check_pixel_size

        px = _check_pixel_size(pixel_size_um)
        provenance.update(pixel_size_source="given", reader_options={"pixel_size_um": px})
    return MultiplexImage(levels=levels, channel_names=names, pixel_size_um=px, provenance=provenance)
