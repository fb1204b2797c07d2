"""Readers for instrument outputs (pure core: no napari, no Qt).

Each reader returns a :class:`~napari_roiscore.spots.table.SpotTable` — spot centres
in full-resolution image pixels, spot size, raw counts, gene names and ids,
an in-tissue flag and the provenance of every file read.
"""

from __future__ import annotations

from napari_roiscore.readers.cosmx import is_cosmx_folder, read_cosmx
from napari_roiscore.readers.dispatch import folder_kind, is_geomx_export_workbook, read_spots_of_kind, spots_kind
from napari_roiscore.readers.geomx import combine_probes, read_dcc, read_geomx_ngs, read_pkc
from napari_roiscore.readers.geomx_export import detect_counts_kind, is_geomx_export, read_geomx_export
from napari_roiscore.readers.spatialdata_store import is_spatialdata_store, read_spatialdata
from napari_roiscore.readers.tenx import CountMatrix, read_10x_h5, read_10x_mtx
from napari_roiscore.readers.tissue_image import TissueImage, tissue_image_layer, tissue_images_from_uns
from napari_roiscore.readers.visium import read_spaceranger, read_tissue_positions, read_visium_hd
from napari_roiscore.readers.xenium import find_morphology_image, read_xenium

__all__ = [
    "CountMatrix",
    "TissueImage",
    "combine_probes",
    "detect_counts_kind",
    "find_morphology_image",
    "folder_kind",
    "is_cosmx_folder",
    "is_geomx_export",
    "is_geomx_export_workbook",
    "is_spatialdata_store",
    "read_10x_h5",
    "read_10x_mtx",
    "read_cosmx",
    "read_dcc",
    "read_geomx_export",
    "read_geomx_ngs",
    "read_pkc",
    "read_spaceranger",
    "read_spatialdata",
    "read_spots_of_kind",
    "read_tissue_positions",
    "read_visium_hd",
    "read_xenium",
    "spots_kind",
    "tissue_image_layer",
    "tissue_images_from_uns",
]
