"""npe2 writer: a Shapes layer of ROIs as QuPath-compatible GeoJSON."""

from __future__ import annotations

from pathlib import Path

from napari_roiscore.rois.shapes import rois_from_shapes
from napari_roiscore.rois.geojson import write_geojson


def rois_from_layer_data(data: list, meta: dict) -> list:
    """ROIs from a Shapes layer's data and attributes (pure: no napari)."""
    feats = meta.get("features")
    n = len(data)

    def col(key):
        return list(feats[key]) if feats is not None and key in feats else None

    types = meta.get("shape_type", ["polygon"] * n)
    if isinstance(types, str):
        types = [types] * n
    return rois_from_shapes(data, types, col("name"), col("class"), col("holes"))


def write_rois(path: str, data: list, meta: dict) -> list[str]:
    """Write the ROI layer at ``path`` (GeoJSON, atomic)."""
    rois = rois_from_layer_data(data, meta)
    out = write_geojson(rois, Path(path))
    return [str(out)]
