"""Regressions found by QA in the pure core."""

from __future__ import annotations

from shapely.geometry import box

from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.classes import class_colour
from napari_roiscore.rois.geojson import read_geojson, rois_to_geojson, write_geojson


def test_geojson_export_uses_the_class_colour_shown_in_napari(tmp_path):
    """A user class (e.g. necrosis) was exported white; QuPath should show the widget's colour."""
    rois = [Roi("T1", "tumour", box(0, 0, 10, 10)), Roi("N1", "necrosis", box(20, 0, 30, 10)),
            Roi("I1", "immune", box(40, 0, 50, 10))]
    feats = rois_to_geojson(rois)["features"]
    for roi, feat in zip(rois, feats):
        want = [int(round(255 * c)) for c in class_colour(roi.roi_class)]
        assert feat["properties"]["classification"]["color"] == want
    assert feats[1]["properties"]["classification"]["color"] != [255, 255, 255]
    back = read_geojson(write_geojson(rois, tmp_path / "r.geojson"))
    assert [r.roi_class for r in back] == ["tumour", "necrosis", "immune"]


def test_qupath_class_names_survive_a_round_trip(tmp_path):
    """QuPath's "Tumor" was stored as "tumor" (canvas and table disagreed) and exported as "tumour"."""
    import json

    from napari_roiscore.rois.geojson import parse_geojson

    sq = [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]
    feats = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": sq},
              "properties": {"objectType": "annotation", "name": f"R{i}", "classification": {"name": c}}}
             for i, c in enumerate(["Tumor", "Stroma", "Immune cells", "CD8 high", None])]
    rois = parse_geojson({"type": "FeatureCollection", "features": feats})
    assert [r.roi_class for r in rois] == ["tumour", "stroma", "immune cells", "cd8 high", "other"]
    out = json.loads(write_geojson(rois, tmp_path / "back.geojson").read_text())
    names = [f["properties"]["classification"]["name"] for f in out["features"] if "classification" in f["properties"]]
    assert names == ["Tumor", "Stroma", "Immune cells", "cd8 high"]  # "other" = unclassified: no classification
    assert [r.roi_class for r in read_geojson(tmp_path / "back.geojson")] == [r.roi_class for r in rois]


def test_same_name_different_classes_are_not_merged_and_unnamed_features_get_free_names():
    """Stroma spots were scored as tumour when a stroma feature shared the tumour ROI's name;
    an unnamed feature could take a named feature's number and merge into it."""
    from napari_roiscore.rois.roi import merge_same_named
    from napari_roiscore.rois.geojson import parse_geojson

    def feat(name, cls, x0):
        props = {"classification": {"name": cls}}
        if name is not None:
            props["name"] = name
        ring = [[x0, 0], [x0 + 10, 0], [x0 + 10, 10], [x0, 10], [x0, 0]]
        return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props}

    rois = merge_same_named(parse_geojson([feat("004", "Tumor", 0), feat("004", "Stroma", 20), feat("004", "Tumor", 40)]))
    assert [(r.name, r.roi_class, r.geometry.geom_type) for r in rois] == [
        ("004", "tumour", "MultiPolygon"), ("004 (stroma)", "stroma", "Polygon")]
    rois = parse_geojson([feat("002", "Stroma", 0), feat(None, "Tumor", 20), feat(None, "Tumor", 40)])
    assert [(r.name, r.roi_class) for r in rois] == [("002", "stroma"), ("001", "tumour"), ("003", "tumour")]
