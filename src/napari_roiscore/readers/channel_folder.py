"""A folder of single-channel TIFFs (one per marker) as one multiplex image.

MIBI-TOF, IMC, CODEX/PhenoCycler and CyCIF pipelines often export one TIFF
per marker, named by the marker (``Nuc.tif``, ``PanKRT.tif``, ``CD31.tif``…),
holding sparse ion counts or 16-bit intensities.  :func:`read_channel_folder`
stacks them lazily into the same :class:`~napari_roiscore.images.multiplex.MultiplexImage`
an OME-TIFF opens as:

* every file is opened with tifffile and read through its zarr store as a
  dask array, so no pixel is read before napari draws it (or a mask needs it);
* a file with one page is one channel, named after the file (``CD31.tif`` →
  ``CD31``); a multi-page file contributes one channel per page, named by
  the pages (``PageName`` tag or ImageDescription, see
  :mod:`napari_roiscore.images.tiff_pages`), else ``<file> 0``, ``<file> 1``…;
* channels are ordered by file name (case-insensitive), then page;
* all channels must have the same height and width; when every file holds
  the same pyramid (tiled TIFFs with SubIFDs) its levels are kept;
* the pixel size comes from the files' resolution tags when they hold one
  (centimetre unit, as MIBItiff writes); otherwise it is unknown (``None``)
  unless given as ``pixel_size_um`` — which is then recorded in
  ``provenance["reader_options"]`` so a session can reopen the image the same way.

:func:`read_tiff_planes` does the same for one TIFF file made of several
2-D series (tifffile's default when pages are written one by one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import (
    MAX_PIXELS,
    MultiplexImage,
    _lazy_level,
    _open_tiff,
)
from napari_roiscore.images.tiff_metadata import _resolution_pixel_size
from napari_roiscore.images.tiff_pages import page_channel_names

__all__ = ["channel_files", "is_channel_folder", "read_channel_folder", "read_tiff_planes"]

#: more files than this in one folder is not a marker panel
MAX_CHANNELS = 512
#: planes up to this many pixels are read whole (one dask chunk per channel)
SMALL_PLANE = 4096 * 4096


def _is_tiff_file(p: Path) -> bool:
    from napari_roiscore.readers.dispatch import is_tiff

    return not p.name.startswith(".") and is_tiff(p)


def channel_files(folder: str | Path) -> list[Path]:
    """The TIFF files directly in ``folder`` (by content, not only ending), by name."""
    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted((f for f in p.iterdir() if _is_tiff_file(f)), key=lambda f: (f.name.lower(), f.name))


def is_channel_folder(path: str | Path) -> bool:
    """True for a folder holding at least two TIFF files, not all of them OME-TIFF.

    A folder of OME-TIFFs is one multi-file OME image (e.g. Xenium's
    ``morphology_focus``), not a marker panel.  Cheap: reads 4 bytes per file.
    """
    files = channel_files(path)
    return len(files) >= 2 and not all(f.name.lower().endswith((".ome.tif", ".ome.tiff")) for f in files)


def _stem(p: Path) -> str:
    name = p.name
    for suf in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return p.stem


def _check_pixel_size(pixel_size_um: float | None) -> float | None:
    if pixel_size_um is None:
        return None
    try:
        px = float(pixel_size_um)
    except (TypeError, ValueError):
        px = float("nan")
    if not (np.isfinite(px) and 0 < px < 1000):
        raise RoiScoreError(f"Pixel size {pixel_size_um!r} µm is not a positive number.",
                            "Give the pixel size in micrometres, e.g. 0.5.")
    return px


def _read_plane(path: str, series: int, page: int | None):
    import tifffile

    if page is None:
        return tifffile.imread(path, series=series)
    with tifffile.TiffFile(path) as tif:
        return tif.series[series].pages[page].asarray()


def _whole_planes(path: Path, shape: tuple[int, int], dtype, which: list[tuple[int, int | None]]):
    """(C, Y, X) dask array with one task per plane: a small graph for small planes.

    (Tifffile's zarr store makes one chunk per strip: thousands of tasks for a
    40-marker panel, which costs more to schedule than to read.)
    """
    import dask
    import dask.array as da

    read = dask.delayed(_read_plane, pure=True)
    return da.stack([da.from_delayed(read(str(path), s, k), shape=shape, dtype=dtype) for s, k in which])


def _planes(tif, path: Path) -> tuple[list, list[str]]:
    """Lazy pyramid levels (C, Y, X) of one file and its channel names."""
    flat = [s for s in tif.series if s.ndim >= 2]
    if not flat:
        raise RoiScoreError(f"Image {str(path)!r} holds no image.", "Check that the file is complete.")
    series = flat[0]
    axes = series.axes
    extra = [a for a in axes if a not in "YX"]
    sizes = dict(zip(axes, series.shape))
    yx = (int(sizes["Y"]), int(sizes["X"]))
    small = float(yx[0]) * float(yx[1]) <= SMALL_PLANE
    if len(flat) > 1 and all(s.ndim == 2 and s.shape == series.shape for s in flat):
        # several 2-D series (pages written one by one): one channel each
        if small:
            index = [tif.series.index(s) for s in flat]
            levels = [_whole_planes(path, yx, series.dtype, [(i, None) for i in index])]
        else:
            levels = [_concat([_lazy_level(s, 0, None) for s in flat])]
        names = page_channel_names([s.pages[0] for s in flat]) or [f"{_stem(path)} {i}" for i in range(len(flat))]
        return levels, names
    if any(sizes[a] > 1 for a in extra if a not in "CIQS") or sum(sizes[a] > 1 for a in extra) > 1:
        raise RoiScoreError(
            f"Image {str(path)!r} has axes {axes!r} (shape {series.shape}); a channel file holds one plane "
            "or one plane per channel.",
            "Export one 2-D image per marker (or one page per marker).",
        )
    ch_axis = next((a for a in extra if sizes[a] > 1), None)
    page_per_plane = ch_axis is None or (ch_axis in "CIQ" and len(series.pages) == int(sizes[ch_axis]))
    if small and len(series.levels) == 1 and page_per_plane:
        index = tif.series.index(series)
        pages = [None] if ch_axis is None else list(range(int(sizes[ch_axis])))
        levels = [_whole_planes(path, yx, series.dtype, [(index, k) for k in pages])]
    else:
        levels = [_lazy_level(series, k, ch_axis) for k in range(len(series.levels))]
    n_c = int(levels[0].shape[0])
    if n_c == 1:
        names = [_stem(path)]
    else:
        names = page_channel_names(list(series.pages)) or [f"{_stem(path)} {i}" for i in range(n_c)]
    return levels, names


def _concat(arrays: list):
    import dask.array as da

    return da.concatenate(arrays, axis=0)


def _assemble(parts: list[tuple[Path, list, list[str]]], pixel_size_um: float | None, px_files: float | None,
              provenance: dict) -> MultiplexImage:
    """Stack files' channels; keep pyramid levels only when every file has the same ones."""
    shape0 = tuple(parts[0][1][0].shape[-2:])
    for path, levels, _ in parts:
        if tuple(levels[0].shape[-2:]) != shape0:
            raise RoiScoreError(
                f"Channel file {path.name!r} is {levels[0].shape[-1]} x {levels[0].shape[-2]} px, but "
                f"{parts[0][0].name!r} is {shape0[1]} x {shape0[0]} px; all channels of one image must "
                "have the same size.",
                "Move files of other images or fields of view out of the folder.",
            )
    if float(shape0[0]) * float(shape0[1]) > MAX_PIXELS:
        raise RoiScoreError(f"Channel images of {shape0} pixels are larger than this tool opens.",
                            "Check the files; they are probably corrupt.")
    n_levels = min(len(levels) for _, levels, _ in parts)
    same = all(tuple(lv[k].shape[-2:]) == tuple(parts[0][1][k].shape[-2:])
               for _, lv, _ in parts for k in range(n_levels))
    n_levels = n_levels if same else 1
    levels = [_concat([lv[k] for _, lv, _ in parts]) for k in range(n_levels)]
    names = [n for _, _, ns in parts for n in ns]
    if len(set(names)) != len(names):  # e.g. "CD3.tif" and "CD3.tiff": keep both, visibly
        seen: dict[str, int] = {}
        unique = []
        for n in names:
            seen[n] = seen.get(n, 0) + 1
            unique.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
        names = unique
    px = pixel_size_um if pixel_size_um is not None else px_files
    provenance = dict(provenance)
    provenance.update({
        "n_levels": n_levels,
        "pixel_size_source": "given" if pixel_size_um is not None else ("files" if px_files else "unknown"),
    })
    if pixel_size_um is not None:
        provenance["reader_options"] = {"pixel_size_um": float(pixel_size_um)}
    return MultiplexImage(levels=levels, channel_names=names, pixel_size_um=px, provenance=provenance)


def read_channel_folder(path: str | Path, pixel_size_um: float | None = None) -> MultiplexImage:
    """Open a folder of per-marker TIFFs lazily as one multiplex image (see module docstring).

    Parameters
    ----------
    path : str or Path
        The folder.
    pixel_size_um : float, optional
        Micrometres per pixel; overrides the files' resolution tags.  Without
        it and without tags, ``pixel_size_um`` is ``None`` (the GUI asks).

    Raises
    ------
    RoiScoreError
        Not a folder, fewer than two TIFFs, unreadable files, channels of
        different sizes, or a bad pixel size.
    """
    folder = Path(path)
    px_given = _check_pixel_size(pixel_size_um)
    if not folder.is_dir():
        raise RoiScoreError(f"Channel folder {str(folder)!r} does not exist or is not a folder.", "Check the path.")
    files = channel_files(folder)
    if len(files) < 2:
        raise RoiScoreError(
            f"Folder {str(folder)!r} holds {len(files)} TIFF file(s); a channel folder holds one TIFF per marker.",
            "Open the folder of one field of view (e.g. Nuc.tif, PanKRT.tif, CD31.tif…), or open the TIFF itself.",
        )
    if len(files) > MAX_CHANNELS:
        raise RoiScoreError(f"Folder {str(folder)!r} holds {len(files)} TIFF files, more than {MAX_CHANNELS}.",
                            "Open the folder of one field of view.")
    parts = []
    px_files = None
    for f in files:
        tif = _open_tiff(f)
        try:
            levels, names = _planes(tif, f)
            if px_files is None:
                px_files = _resolution_pixel_size(tif.pages[0], (tif.imagej_metadata or {}).get("unit")
                                                  if tif.is_imagej else None)
        except RoiScoreError:
            tif.close()
            raise
        except Exception as err:
            tif.close()
            raise RoiScoreError(f"Channel file {str(f)!r} could not be read ({type(err).__name__}: {err}).",
                                "Check that the file is a complete TIFF.") from None
        parts.append((f, levels, names))
    return _assemble(parts, px_given, px_files,
                     {"reader": "tifffile", "path": str(folder), "format": "channel folder",
                      "files": [f.name for f in files]})


def read_tiff_planes(tif, path: str | Path, pixel_size_um: float | None = None) -> MultiplexImage | None:
    """One TIFF made of several same-sized 2-D series, as channels; ``None`` if it is not one.

    ``tif`` is an open :class:`tifffile.TiffFile` (kept open: the levels read from it).
    """
    flat = [s for s in tif.series if s.ndim >= 2]
    if len(flat) < 2 or not all(s.ndim == 2 and s.shape == flat[0].shape for s in flat):
        return None
    path = Path(path)
    levels, names = _planes(tif, path)
    px = _resolution_pixel_size(tif.pages[0])
    return _assemble([(path, levels, names)], _check_pixel_size(pixel_size_um), px,
                     {"reader": "tifffile", "path": str(path), "format": "tiff", "axes": "IYX"})

