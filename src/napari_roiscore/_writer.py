"""npe2 writer: a Shapes layer of ROIs as QuPath-compatible GeoJSON."""

from __future__ import annotations

from pathlib import Path

from .roi import roi_from_napari
from .roi_io import write_geojson


def rois_from_layer_data(data: list, meta: dict) -> list:
    """ROIs from a Shapes layer's data and attributes (pure: no napari)."""
    feats = meta.get("features")
    n = len(data)
    names = list(feats["name"]) if feats is not None and "name" in feats else [f"{i + 1:03d}" for i in range(n)]
    classes = list(feats["class"]) if feats is not None and "class" in feats else ["other"] * n
    types = meta.get("shape_type", ["polygon"] * n)
    if isinstance(types, str):
        types = [types] * n
    return [roi_from_napari(str(names[i]), str(classes[i]), types[i], data[i]) for i in range(n)]


def write_rois(path: str, data: list, meta: dict) -> list[str]:
    """Write the ROI layer at ``path`` (GeoJSON, atomic)."""
    rois = rois_from_layer_data(data, meta)
    out = write_geojson(rois, Path(path))
    return [str(out)]
