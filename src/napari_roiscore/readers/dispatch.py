"""Which kind of spot data a path holds, and the reader for it (pure core).

The napari reader contribution (``_reader.py``), the command line and
sessions all go through :func:`spots_kind` and :func:`read_spots_of_kind`, so a
path is recognised — and read — the same way everywhere.

Kinds
-----
``"visium"``        Space Ranger ``outs`` (or run) folder;
``"visium_hd"``     Visium HD ``outs`` / ``binned_outputs`` / ``square_XXXum`` folder;
``"xenium"``        Xenium output folder;
``"cosmx"``         CosMx flat-file export (``*_exprMat_file.csv``, ``*_metadata_file.csv``);
``"geomx"``         GeoMx NGS folder (DCC files, PKC, annotation sheet);
``"spatialdata"``   SpatialData ``.zarr`` store;
``"geomx_export"``  GeoMx DSP export (``.xlsx`` workbook, or a folder holding
                    it or the two tables as text files);
``"h5ad"``          an ``.h5ad`` file.

Images go through :func:`image_kind` and :func:`read_image` in the same way:
``"tiff"`` (OME-TIFF, QPTIFF, multi-page TIFF) or ``"channel_folder"`` (a
folder of one TIFF per marker, see :mod:`napari_roiscore.readers.channel_folder`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import require_regular_file

if TYPE_CHECKING:  # the readers (pandas, anndata) are imported when a file is read, not to recognise one
    from napari_roiscore.spots.table import SpotTable

__all__ = ["FOLDER_KINDS", "IMAGE_SUFFIXES", "SPOTS_KINDS", "enclosing_instrument_folder", "folder_kind",
           "image_kind", "is_geomx_export_workbook", "is_tiff", "read_image", "read_spots_of_kind", "spots_kind"]

#: kinds :func:`folder_kind` returns
FOLDER_KINDS = ("visium", "visium_hd", "xenium", "cosmx", "geomx", "spatialdata", "geomx_export")
#: kinds :func:`spots_kind` returns
SPOTS_KINDS = FOLDER_KINDS + ("h5ad",)
#: file endings opened as multiplex images
IMAGE_SUFFIXES = (".ome.tif", ".ome.tiff", ".qptiff", ".tif", ".tiff")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _looks_like_spaceranger(outs: Path) -> bool:
    """Space Ranger ``outs``: its scale factors, tissue positions or count matrix.

    Any one suffices, so that a folder missing one of them is still read as
    Visium and the Visium reader names the missing file.
    """
    spatial = outs / "spatial"
    if (spatial / "scalefactors_json.json").is_file():
        return True
    if spatial.is_dir() and any(spatial.glob("tissue_positions*.csv")):
        return True
    return spatial.is_dir() and any(
        (outs / n).exists() for n in ("filtered_feature_bc_matrix.h5", "filtered_feature_bc_matrix"))


def folder_kind(path: str | Path) -> str | None:
    """Which instrument output a folder is: ``"visium"``, ``"visium_hd"``,
    ``"xenium"``, ``"cosmx"``, ``"geomx"``, ``"spatialdata"``, ``"geomx_export"``, or ``None``."""
    p = Path(path)
    if not p.is_dir():
        return None
    kind = _instrument_kind(p)
    if kind is not None:
        return kind
    if any(p.glob("*.dcc")) or any((p / "dcc").glob("*.dcc")):
        return "geomx"
    from napari_roiscore.readers.spatialdata_store import is_spatialdata_store

    if is_spatialdata_store(p):
        return "spatialdata"
    if not any(f.suffix.lower() in (".xlsx", ".csv", ".tsv", ".txt") for f in p.iterdir() if f.is_file()):
        return None  # no table for a DSP export (and pandas is not imported to look)
    from napari_roiscore.readers.geomx_export import is_geomx_export

    if is_geomx_export(p):
        return "geomx_export"
    return None


def _instrument_kind(p: Path) -> str | None:
    """Space Ranger, Visium HD, Xenium or CosMx output, from file names alone (cheap)."""
    outs = p / "outs" if (p / "outs").is_dir() else p
    if (outs / "binned_outputs").is_dir() or (p / "spatial" / "tissue_positions.parquet").is_file() or any(
            p.glob("square_*um")):
        return "visium_hd"
    if _looks_like_spaceranger(outs):
        return "visium"
    if ((p / "cell_feature_matrix.h5").is_file() or (p / "cell_feature_matrix").is_dir()) and any(
            (p / n).is_file() for n in ("cells.parquet", "cells.csv.gz", "cells.csv")):
        return "xenium"
    from napari_roiscore.readers._files import is_cosmx_folder

    if is_cosmx_folder(p):
        return "cosmx"
    return None


def enclosing_instrument_folder(path: str | Path) -> Path | None:
    """The Space Ranger / Visium HD / Xenium folder that ``path`` is a part of, if any.

    A user often drops one file of an instrument output (``filtered_feature_bc_matrix.h5``,
    ``cell_feature_matrix.h5``, the ``spatial/`` folder): spots need the whole output, so
    the folder one or two levels up is what to read.
    """
    p = Path(path)
    for parent in (p.parent, p.parent.parent):
        if parent != p and parent.is_dir() and _instrument_kind(parent) is not None:
            return parent
    return None


def is_geomx_export_workbook(path: str | Path) -> bool:
    """True for an ``.xlsx`` file holding a GeoMx DSP export (segment properties + counts)."""
    p = Path(path)
    if p.suffix.lower() != ".xlsx" or not p.is_file():
        return False
    from napari_roiscore.readers.geomx_export import is_geomx_export

    return is_geomx_export(p)


def spots_kind(path: str | Path) -> str | None:
    """Kind of spot data at ``path`` (one of :data:`SPOTS_KINDS`), or ``None``.

    Folders as :func:`folder_kind`; an ``.h5ad`` file is ``"h5ad"``; an ``.xlsx``
    GeoMx DSP export workbook is ``"geomx_export"``.
    """
    p = Path(path)
    kind = folder_kind(p)
    if kind is not None:
        return kind
    if p.suffix.lower() == ".h5ad" and not p.is_dir():  # a missing file: the reader says so
        return "h5ad"
    if is_geomx_export_workbook(p):
        return "geomx_export"
    return None


def read_spots_of_kind(path: str | Path, kind: str, *, load_images: bool = True,
                       progress: Callable[[int, int], None] | None = None, **options: Any) -> SpotTable:
    """Read the spots at ``path`` with the reader for ``kind``.

    Parameters
    ----------
    path : str or Path
    kind : str
        One of :data:`SPOTS_KINDS` (usually from :func:`spots_kind`).
    load_images : bool
        Load the tissue images of Space Ranger / Visium HD runs (the CLI does
        not need them).
    progress : callable, optional
        ``progress(done, total)``, passed to the GeoMx NGS reader.
    **options
        Passed to the reader (e.g. ``counts_layer`` for h5ad, ``bin_size_um``
        for Visium HD).

    Raises
    ------
    RoiScoreError
        Unknown kind, an option the reader does not take, or the reader's own error.
    """
    from napari_roiscore.readers import (read_cosmx, read_geomx_export, read_geomx_ngs, read_spaceranger,
                                         read_spatialdata, read_visium_hd, read_xenium)

    p = Path(path)
    readers: dict[str, Callable[..., SpotTable]] = {
        "visium": lambda: read_spaceranger(p, load_images=load_images, **options),
        "visium_hd": lambda: read_visium_hd(p, load_images=load_images, **options),
        "xenium": lambda: read_xenium(p, **options),
        "cosmx": lambda: read_cosmx(p, **options),
        "geomx": lambda: read_geomx_ngs(p, progress=progress, **options),
        "spatialdata": lambda: read_spatialdata(p, **options),
        "geomx_export": lambda: read_geomx_export(p, **options),
        "h5ad": lambda: _read_h5ad(p, **options),
    }
    if kind not in readers:
        raise RoiScoreError(f"Spots {str(p)!r}: unknown kind {kind!r}.",
                            f"Use one of {', '.join(SPOTS_KINDS)}.")
    from napari_roiscore.outputs import protect_input

    protect_input(p)
    if p.exists() and not p.is_dir():
        require_regular_file(p, "Spots")  # a FIFO or device would block forever
    from napari_roiscore.spots.checks import barcodes_checked_here, reader_errors

    with reader_errors(f"Spots {str(p)!r}", "Check the files of this output; copy them again from the run."), \
            barcodes_checked_here():
        try:
            return readers[kind]()
        except TypeError as err:  # an option the reader does not take
            if not options:
                raise
            raise RoiScoreError(f"Spots {str(p)!r}: bad reader option ({err}).",
                                "Remove the option or check its name.") from None


def _read_h5ad(path: Path, **options: Any) -> SpotTable:
    from napari_roiscore.spots.table import read_h5ad_spots

    return read_h5ad_spots(path, **options)


def is_tiff(path: str | Path) -> bool:
    """True for an existing file with an image ending that starts like a (Big)TIFF."""
    p = Path(path)
    if not str(p).lower().endswith(IMAGE_SUFFIXES) or not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            return fh.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def image_kind(path: str | Path) -> str | None:
    """``"tiff"`` for a TIFF image file, ``"channel_folder"`` for a folder of
    per-marker TIFFs that is no instrument output, else ``None``."""
    p = Path(path)
    if is_tiff(p):
        return "tiff"
    if p.is_dir() and folder_kind(p) is None:
        from napari_roiscore.readers.channel_folder import is_channel_folder

        if is_channel_folder(p):
            return "channel_folder"
    return None


def read_image(path: str | Path, pixel_size_um: float | None = None, **options: Any):
    """Open the multiplex image at ``path`` (TIFF file or channel folder) lazily.

    Parameters
    ----------
    path : str or Path
    pixel_size_um : float, optional
        µm per pixel, for images that do not store it (kept in sessions as the
        image's reader option).
    **options
        Ignored reader options of other versions are refused.

    Returns
    -------
    MultiplexImage

    Raises
    ------
    RoiScoreError
        Not an image, an unknown option, or the reader's own error.
    """
    p = Path(path)
    if options:
        raise RoiScoreError(f"Image {str(p)!r}: unknown reader option(s) {sorted(options)}.",
                            "Only 'pixel_size_um' is understood; remove the others.")
    kind = image_kind(p)
    if kind == "channel_folder":
        from napari_roiscore.readers.channel_folder import read_channel_folder

        return read_channel_folder(p, pixel_size_um=pixel_size_um)
    if kind is None and p.is_dir():
        from napari_roiscore.readers.channel_folder import read_channel_folder

        return read_channel_folder(p, pixel_size_um=pixel_size_um)  # says what the folder lacks
    from napari_roiscore.images.multiplex import read_multiplex_tiff

    return read_multiplex_tiff(p, pixel_size_um=pixel_size_um)
