"""The synthetic sample shipped with the plugin: where it is and how to open it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from napari_roiscore.images.multiplex import MultiplexImage, read_multiplex_tiff
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.spots.table import SpotTable, read_h5ad_spots

__all__ = ["SAMPLE_DIR", "SpatialSample", "open_sample"]

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_images"


@dataclass
class SpatialSample:
    """A slide: image channels, spots with counts, and ROIs."""

    image: MultiplexImage | None
    spots: SpotTable | None
    rois: list[Roi]
    name: str = "sample"


def open_sample(folder: str | Path = SAMPLE_DIR, stem: str = "sample") -> SpatialSample:
    """Open ``{stem}_slide.ome.tif``, ``{stem}_spots.h5ad`` and ``{stem}_rois.geojson``."""
    folder = Path(folder)
    return SpatialSample(
        image=read_multiplex_tiff(folder / f"{stem}_slide.ome.tif"),
        spots=read_h5ad_spots(folder / f"{stem}_spots.h5ad"),
        rois=read_geojson(folder / f"{stem}_rois.geojson"),
        name=stem,
    )
