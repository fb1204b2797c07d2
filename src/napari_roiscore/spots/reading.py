"""Spots from any supported file or instrument folder: the one entry point
the command line, sessions and scripts use.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.spots.table import SpotTable

__all__ = ["read_spots"]


def read_spots(path: str | Path, **options: Any) -> SpotTable:
    """Spots from an ``.h5ad`` file, an ``.xlsx`` GeoMx DSP export or an instrument folder.

    Paths are recognised as by the napari reader (both use
    :func:`~napari_roiscore.readers.dispatch.spots_kind`): Space Ranger
    (Visium), Visium HD, Xenium, GeoMx NGS, GeoMx DSP export or SpatialData
    ``.zarr``.  ``options`` go to the reader (e.g. ``counts_layer`` for h5ad,
    ``bin_size_um`` for Visium HD).  Tissue images are not loaded.

    Raises
    ------
    RoiScoreError
        Missing path, unknown kind of folder or file, or a reader's error.
    """
    from napari_roiscore.readers.dispatch import read_spots_of_kind, spots_kind

    p = Path(path)
    if not p.exists():
        raise RoiScoreError(f"Spots {str(p)!r} do not exist.", "Check the path.")
    kind = spots_kind(p)
    if kind is None:
        raise RoiScoreError(
            f"Spots {str(p)!r}: not an .h5ad file, a GeoMx DSP export nor a Space Ranger, Visium HD, "
            "Xenium, GeoMx NGS or SpatialData (.zarr) folder.",
            "Give the .h5ad file, the export workbook or the instrument's output folder.",
        )
    return read_spots_of_kind(p, kind, load_images=False, **options)
