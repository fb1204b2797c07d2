"""Readers for instrument outputs (pure core: no napari, no Qt).

Each reader returns a :class:`~napari_roiscore.spots.table.SpotTable` — spot centres
in full-resolution image pixels, spot size, raw counts, gene names and ids,
an in-tissue flag and the provenance of every file read.
"""

from __future__ import annotations

from napari_roiscore._lazy import lazy_exports

# imported on first use (see napari_roiscore._lazy)
__getattr__, __dir__ = lazy_exports(__name__, {
    "CountMatrix": "napari_roiscore.readers.tenx",
    "TissueImage": "napari_roiscore.readers.tissue_image",
    "combine_probes": "napari_roiscore.readers.geomx",
    "detect_counts_kind": "napari_roiscore.readers.geomx_export",
    "find_morphology_image": "napari_roiscore.readers.xenium",
    "folder_kind": "napari_roiscore.readers.dispatch",
    "is_cosmx_folder": "napari_roiscore.readers._files",
    "is_geomx_export": "napari_roiscore.readers.geomx_export",
    "is_geomx_export_workbook": "napari_roiscore.readers.dispatch",
    "is_spatialdata_store": "napari_roiscore.readers.spatialdata_store",
    "read_10x_h5": "napari_roiscore.readers.tenx",
    "read_10x_mtx": "napari_roiscore.readers.tenx",
    "read_cosmx": "napari_roiscore.readers.cosmx",
    "read_dcc": "napari_roiscore.readers.geomx",
    "read_geomx_export": "napari_roiscore.readers.geomx_export",
    "read_geomx_ngs": "napari_roiscore.readers.geomx",
    "read_pkc": "napari_roiscore.readers.geomx",
    "read_spaceranger": "napari_roiscore.readers.visium",
    "read_spatialdata": "napari_roiscore.readers.spatialdata_store",
    "read_spots_of_kind": "napari_roiscore.readers.dispatch",
    "read_tissue_positions": "napari_roiscore.readers.visium",
    "read_visium_hd": "napari_roiscore.readers.visium",
    "read_xenium": "napari_roiscore.readers.xenium",
    "spots_kind": "napari_roiscore.readers.dispatch",
    "tissue_image_layer": "napari_roiscore.readers.tissue_image",
    "tissue_images_from_uns": "napari_roiscore.readers.tissue_image",
})

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
