"""Property-based tests: parsers and ROI geometry on arbitrary input.

GeoJSON and signature parsing may only ever raise :class:`RoiScoreError`;
turning napari shapes into ROIs never raises at all.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from shapely.geometry import MultiPolygon, Polygon

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.geojson import parse_geojson
from napari_roiscore.rois.shapes import rois_from_shapes
from napari_roiscore.scoring.signature import Signature, parse_gene_list
from napari_roiscore.scoring.signature_files import load_signatures

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_like = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=6), st.dictionaries(st.text(max_size=12), kids, max_size=6)),
    max_leaves=40,
)

# GeoJSON-shaped data with broken parts, to reach deeper than random JSON does
position = st.one_of(st.lists(numbers, min_size=0, max_size=3), scalars, json_like)
ring = st.one_of(st.lists(position, max_size=8), json_like)
geometry = st.fixed_dictionaries(
    {"type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", "GeometryCollection", 3]),
     "coordinates": st.one_of(st.lists(ring, max_size=3), st.lists(st.lists(ring, max_size=2), max_size=2),
                              json_like)},
)
properties = st.one_of(
    json_like,
    st.fixed_dictionaries({"name": json_like, "classification": st.one_of(
        json_like, st.fixed_dictionaries({"name": json_like}))}),
)
feature = st.one_of(
    st.fixed_dictionaries({"type": st.just("Feature"), "geometry": geometry, "properties": properties}),
    json_like,
)
geojson_like = st.one_of(
    json_like,
    st.lists(feature, max_size=4),
    st.fixed_dictionaries({"type": st.just("FeatureCollection"), "features": st.lists(feature, max_size=4)}),
    geometry,
)

# valid polygons: the parser must accept them
coord = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
valid_ring = st.lists(st.tuples(coord, coord), min_size=3, max_size=20).map(
    lambda pts: [list(p) for p in pts] + [list(pts[0])])


def _check_rois(rois: object) -> None:
    assert isinstance(rois, list)
    for r in rois:
        assert isinstance(r, Roi)
        assert isinstance(r.geometry, (Polygon, MultiPolygon))
        assert r.geometry.is_empty or r.geometry.is_valid
        assert isinstance(r.name, str) and isinstance(r.roi_class, str)


@SETTINGS
@given(geojson_like)
def test_parse_geojson_only_raises_roiscore_error(data):
    try:
        rois = parse_geojson(data, "prop.geojson")
    except RoiScoreError as err:
        assert "prop.geojson" in str(err) and err.fix
    else:
        _check_rois(rois)


@SETTINGS
@given(st.lists(valid_ring, min_size=1, max_size=3))
def test_parse_geojson_accepts_any_finite_polygon(rings):
    feats = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [r]}, "properties": {}}
             for r in rings]
    rois = parse_geojson({"type": "FeatureCollection", "features": feats}, "ok.geojson")
    assert len(rois) == len(rings)
    _check_rois(rois)


@SETTINGS
@given(st.text())
def test_parse_gene_list_gives_clean_symbols(text):
    genes = parse_gene_list(text)
    for g in genes:
        assert g and g == g.strip() and not any(c in g for c in ",; \t\n")


@SETTINGS
@given(json_like)
def test_signature_from_dict_only_raises_roiscore_error(data):
    try:
        sig = Signature.from_dict(data, source="sig.yaml")
    except RoiScoreError as err:
        assert "sig.yaml" in str(err) or "Signature" in str(err)
    else:
        assert sig.up or sig.down


@SETTINGS
@given(st.dictionaries(st.sampled_from(["name", "up", "down", "genes", "weights", "description"]),
                       json_like, max_size=6))
def test_signature_from_mapping_only_raises_roiscore_error(data):
    try:
        Signature.from_dict(data, source="sig.yaml")
    except RoiScoreError as err:
        assert err.fix


@SETTINGS
@given(st.one_of(st.text(max_size=300), json_like.map(lambda d: json.dumps(d, allow_nan=True, default=str))),
       st.sampled_from([".yaml", ".json", ".gmt"]))
def test_load_signatures_on_arbitrary_text(text, suffix):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"sig{suffix}"
        p.write_text(text, encoding="utf-8")
        try:
            sigs = load_signatures(p)
        except RoiScoreError as err:
            assert p.name in str(err) or "Signature" in str(err), str(err)
        else:
            assert sigs and all(isinstance(s, Signature) and (s.up or s.down) for s in sigs)


def _vertex_arrays():
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    plain = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
    return st.one_of(
        arrays(np.float64, st.tuples(st.integers(0, 12), st.integers(0, 4)), elements=floats),
        arrays(np.float64, st.tuples(st.integers(0, 30), st.just(2)), elements=plain),
        arrays(np.float64, st.integers(0, 5), elements=plain),
        st.lists(st.lists(st.one_of(st.text(max_size=3), plain), max_size=3), max_size=5),
    )


@SETTINGS
@given(st.lists(st.tuples(_vertex_arrays(),
                          st.sampled_from(["polygon", "rectangle", "ellipse", "path", "line", "blob"]),
                          st.one_of(st.none(), st.sampled_from(["a", "b", "", "nan"]), st.integers(0, 3)),
                          st.one_of(st.none(), st.sampled_from(["tumour", "Stroma", "", "x y"])),
                          st.one_of(st.none(), st.text(max_size=30),
                                    st.sampled_from(["[[[0,0],[1,0],[1,1]]]", "[[[0,0],[1]]]", '[["a"]]',
                                                     "[[[1e999,0],[1,0],[1,1]]]", "{}", "[[[0,0],[1,0],[1,1]]"]),
                                    json_like.map(lambda d: json.dumps(d, default=str)))),
                max_size=5))
def test_rois_from_shapes_never_raises(shapes):
    data = [s[0] for s in shapes]
    rois = rois_from_shapes(data, [s[1] for s in shapes], [s[2] for s in shapes], [s[3] for s in shapes],
                            [s[4] for s in shapes])
    _check_rois(rois)
    for r in rois:
        assert (r.problem is None) == (not r.geometry.is_empty and r.geometry.area > 0)
