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
file's tiles, so nothing is read until napari draws a tile.  Reading channel
names and pixel size out of the TIFF metadata lives in
:mod:`napari_roiscore.images.tiff_metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_roiscore.images.channels import ROLE_COLOURMAPS, guess_roles
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.tiff_metadata import _resolution_pixel_size  # noqa: F401  (old import path)
from napari_roiscore.images.tiff_metadata import channel_names_and_pixel_size

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


#: axes that can hold the channels when there is no "C" axis, in order of preference
_CHANNEL_AXES = "CSIQ"


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
        names, px = channel_names_and_pixel_size(tif, series, flavour, n_c, ch_axis)
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
