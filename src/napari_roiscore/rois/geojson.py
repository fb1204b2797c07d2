"""ROI exchange with QuPath: GeoJSON in and out.

QuPath exports annotations as a GeoJSON FeatureCollection (or a bare list of
Features) whose geometries are Polygon or MultiPolygon in (x, y) level-0 pixel
coordinates, with ``properties.objectType = "annotation"``, an optional
``properties.name`` and ``properties.classification = {"name", "color"}``.
Holes (interior rings) are preserved in both directions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.classes import class_colour, normalise_class, qupath_class_name

__all__ = ["read_geojson", "rois_to_geojson", "write_geojson"]

MAX_COORD = 1e8  # pixels; anything larger is a broken file
MAX_FILE_BYTES = 512 * 1024 * 1024


#: longest ROI name or class accepted (names are never cut: cut names could collide)
MAX_NAME = 1000


def _colour_int(cls: str) -> list[int]:
    rgb = class_colour(cls)  # the colour the class has in napari (user classes too)
    return [int(round(255 * c)) for c in rgb]


def rois_to_geojson(rois: list[Roi]) -> dict:
    """QuPath-compatible FeatureCollection of ``rois``."""
    feats = []
    for roi in rois:
        if roi.geometry.is_empty:
            continue
        props: dict = {"objectType": "annotation", "name": roi.name}
        if roi.roi_class != "other":  # "other" is our unclassified: QuPath writes no classification
            props["classification"] = {"name": qupath_class_name(roi.roi_class), "color": _colour_int(roi.roi_class)}
        feats.append({"type": "Feature", "id": roi.name, "geometry": mapping(roi.geometry), "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def write_geojson(rois: list[Roi], path: str | Path, inputs: Sequence[str | Path | None] = ()) -> Path:
    """Write ``rois`` as QuPath-compatible GeoJSON (atomically; never over one of ``inputs``)."""
    return atomic_write_text(path, json.dumps(rois_to_geojson(rois), indent=1), inputs)


def read_geojson(path: str | Path, merge: bool = True) -> list[Roi]:
    """Read ROIs from a (QuPath) GeoJSON file.

    Features that share a name are one ROI (their union, see
    :func:`~napari_roiscore.rois.roi.merge_same_named`), as in the widget;
    ``merge=False`` gives one ROI per feature.

    Raises
    ------
    RoiScoreError
        Unreadable file, malformed JSON, unsupported or broken geometry.
    """
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise RoiScoreError(f"ROI file {src!r} does not exist.", "Check the path.")
    from napari_roiscore.outputs import require_regular_file

    require_regular_file(path, "ROI file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RoiScoreError(f"ROI file {src!r} is larger than 512 MB.", "Split it.")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # QuPath on Windows may write a BOM
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise RoiScoreError(
            f"ROI file {src!r} is not valid GeoJSON ({type(err).__name__}: {err}).",
            "Export the annotations again from QuPath (File > Export objects as GeoJSON).",
        ) from None
    rois = parse_geojson(data, src)
    if not merge:
        return rois
    from napari_roiscore.rois.roi import merge_same_named

    return merge_same_named(rois)


def parse_geojson(data: object, src: str = "GeoJSON") -> list[Roi]:
    """ROIs from already-parsed GeoJSON data (see :func:`read_geojson`)."""
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        feats = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        feats = [data]
    elif isinstance(data, dict) and data.get("type") in ("Polygon", "MultiPolygon"):
        feats = [{"type": "Feature", "geometry": data, "properties": {}}]
    elif isinstance(data, list):
        feats = data
    else:
        raise RoiScoreError(
            f"{src}: expected a FeatureCollection, a Feature or a list of Features.",
            "Export the annotations as GeoJSON from QuPath.",
        )
    if not isinstance(feats, list):
        raise RoiScoreError(f"{src}: 'features' must be a list.",
                            "Write 'features' as a list of Feature objects (QuPath: Export objects as GeoJSON).")
    rois: list[Roi] = []
    for i, feat in enumerate(feats):
        where = f"{src}, feature {i}"
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise RoiScoreError(f"{where}: no 'geometry' object.", "Each feature needs a geometry.")
        geom = feat["geometry"]
        gtype = geom.get("type")
        if gtype not in ("Polygon", "MultiPolygon"):
            raise RoiScoreError(
                f"{where}: geometry type {_short(gtype)} is not an area.",
                "Use Polygon or MultiPolygon annotations (lines and points have no area).",
            )
        coords = geom.get("coordinates")
        _check_coords(coords, 3 if gtype == "Polygon" else 4, where)
        try:
            g = shape(geom)
        except Exception as err:
            raise RoiScoreError(f"{where}: broken geometry ({err}).", "Fix or redraw it.") from None
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            props = {}
        cls = props.get("classification") or {}
        cls_name = cls.get("name") if isinstance(cls, dict) else (cls if isinstance(cls, str) else None)
        # names and classes must be text (or a number); anything else falls back to the default
        name = _text(props.get("name")) or _text(feat.get("id")) or ""  # unnamed: numbered below
        for what, text in (("name", name), ("class", _text(cls_name) or "")):
            if len(text) > MAX_NAME:
                raise RoiScoreError(f"{where}: the {what} is {len(text):,} characters long "
                                    f"({text[:40]!r}…); at most {MAX_NAME:,}.", f"Give the ROI a shorter {what}.")
        roi = Roi(name, normalise_class(_text(cls_name)), g)  # QuPath "Tumor" is our "tumour"
        if isinstance(g, (Polygon, MultiPolygon)):
            rois.append(roi)
    return _number_unnamed(rois)


def _number_unnamed(rois: list[Roi]) -> list[Roi]:
    """Unnamed features get the next free "001", "002", … (never a name another feature has:
    same-named ROIs are merged)."""
    taken = {r.name for r in rois if r.name}
    out, k = [], 0
    for r in rois:
        if not r.name:
            k += 1
            while f"{k:03d}" in taken:
                k += 1
            taken.add(f"{k:03d}")
            r = Roi(f"{k:03d}", r.roi_class, r.geometry)
        out.append(r)
    return out


def _text(value: object) -> str | None:
    """``value`` as a short string when it is text or a number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip() if not isinstance(value, int) or abs(value) < 10**30 else None
    return text or None  # never cut: two long names cut alike would merge two ROIs


def _check_coords(coords: object, depth: int, where: str) -> None:
    """Validate nesting depth and numbers without recursion blow-ups."""
    stack = [(coords, depth)]
    while stack:
        node, d = stack.pop()
        if d == 1:
            if not (isinstance(node, (list, tuple)) and len(node) >= 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in node)):
                raise RoiScoreError(
                    f"{where}: a position is {_short(node)!r}, not [x, y] numbers.",
                    "Write each position as [x, y].",
                )
            try:
                arr = np.asarray(node[:2], dtype=float)
            except OverflowError:  # an integer beyond float range
                arr = np.array([np.inf, np.inf])
            if not np.all(np.isfinite(arr)) or np.any(np.abs(arr) > MAX_COORD):
                raise RoiScoreError(
                    f"{where}: coordinate {_short(node[:2])} is not finite or beyond {MAX_COORD:.0e} px.",
                    "Check the export: coordinates must be pixels of the slide.",
                )
            continue
        if not isinstance(node, (list, tuple)) or not node:
            raise RoiScoreError(
                f"{where}: 'coordinates' are nested wrongly or empty.",
                "Polygon coordinates are [[[x, y], ...]] (rings of positions).",
            )
        stack.extend((child, d - 1) for child in node)


def _short(node: object, limit: int = 40) -> str:
    """A bounded preview of ``node`` (no recursion, no huge numbers)."""
    if isinstance(node, (list, tuple)):
        parts = []
        for v in list(node)[:4]:
            if isinstance(v, (list, tuple, dict)):
                parts.append("[...]" if not isinstance(v, dict) else "{...}")
            elif isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**15:
                parts.append("<huge integer>")
            else:
                parts.append(repr(v)[:12])
        text = "[" + ", ".join(parts) + (", ...]" if len(node) > 4 else "]")
    elif isinstance(node, dict):
        text = "{...}"
    elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 10**15:
        text = "<huge integer>"
    else:
        text = repr(node)
    return text[:limit]
