"""npe2 reader: spots from ``.h5ad``, ROIs from (QuPath) GeoJSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._layer_data import roi_layer, spots_layer
from .errors import RoiScoreError
from .roi_io import read_geojson
from .spot import read_h5ad_spots


def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for ``.h5ad`` spots or ``.geojson`` ROIs, else ``None``."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(str(p).lower().endswith((".h5ad", ".geojson")) for p in paths):
        return None
    return read_paths


def read_paths(path: str | list[str]) -> list[tuple]:
    """Read each path into layer data; bad files raise :class:`RoiScoreError`."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers = []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() == ".h5ad":
            spots = read_h5ad_spots(p)
            layers.append(spots_layer(spots, name=p.stem))
        elif p.suffix.lower() == ".geojson":
            layers.append(roi_layer(read_geojson(p), name=p.stem))
        else:  # pragma: no cover - get_reader filters these
            raise RoiScoreError(f"{str(p)!r}: unsupported file type.", "Open .h5ad or .geojson.")
    return layers
