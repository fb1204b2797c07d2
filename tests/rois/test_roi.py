"""ROIs from napari shapes: geometry, the self-intersection rule, degenerate shapes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon

from napari_roiscore.rois.roi import NAPARI_SHAPE_TYPES, Roi, polygonal, roi_from_napari
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.methods import aggregate
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.spots.index import SpotIndex

SQUARE_RC = np.array([[10.0, 20.0], [10.0, 60.0], [40.0, 60.0], [40.0, 20.0]])  # (row, col)


# ---------------------------------------------------------------- shape types
@pytest.mark.parametrize("shape_type", ["polygon", "rectangle", "path"])
def test_closed_shapes_become_the_polygon_in_xy(shape_type):
    roi = roi_from_napari("004", "tumour", shape_type, SQUARE_RC)
    assert roi.problem is None
    assert roi.area_px == pytest.approx(30 * 40)
    assert roi.geometry.bounds == (20.0, 10.0, 60.0, 40.0)  # x = col, y = row
    assert (roi.name, roi.roi_class) == ("004", "tumour")


def test_ellipse_is_a_64_gon_inside_its_bounding_box():
    roi = roi_from_napari("e", "stroma", "ellipse", SQUARE_RC)
    assert roi.problem is None
    assert len(roi.geometry.exterior.coords) == 65
    x0, y0, x1, y1 = roi.geometry.bounds
    assert (x0, y0, x1, y1) == pytest.approx((20, 10, 60, 40))
    # a 64-gon inscribed in the ellipse: area a bit below pi * a * b
    true_area = np.pi * 20 * 15
    assert 0.99 * true_area < roi.area_px < true_area


def test_rotated_ellipse_keeps_its_axes():
    c = np.array([50.0, 50.0])
    u = np.array([1.0, 1.0]) / np.sqrt(2) * 20  # half axis along the diagonal
    v = np.array([1.0, -1.0]) / np.sqrt(2) * 5
    corners = np.array([c - u - v, c + u - v, c + u + v, c - u + v])
    roi = roi_from_napari("e", "stroma", "ellipse", corners)
    assert roi.area_px == pytest.approx(np.pi * 20 * 5, rel=0.01)
    assert roi.geometry.contains(shapely.Point(50 + 13, 50 + 13))
    assert not roi.geometry.contains(shapely.Point(50 + 13, 50 - 13))


def test_extra_leading_dimensions_are_ignored():
    rc3 = np.column_stack([np.full(4, 7.0), SQUARE_RC])  # (z, row, col)
    assert roi_from_napari("a", "tumour", "polygon", rc3).geometry.equals(
        roi_from_napari("a", "tumour", "polygon", SQUARE_RC).geometry
    )


def test_every_napari_shape_type_is_handled():
    for shape_type, has_area in NAPARI_SHAPE_TYPES.items():
        roi = roi_from_napari("a", "tumour", shape_type, SQUARE_RC)
        assert (roi.problem is None) == has_area, shape_type


# ---------------------------------------------------------------- degenerate ROIs
@pytest.mark.parametrize(
    ("shape_type", "vertices", "words"),
    [
        ("line", [[0, 0], [10, 10]], "line has no area"),
        ("polygon", [[0, 0], [10, 10]], "fewer than 3"),
        ("polygon", [[0, 0], [10, 10], [0, 0], [10, 10]], "fewer than 3"),
        ("polygon", [[0, 0]], "fewer than 3"),
        ("polygon", np.zeros((0, 2)), "fewer than 3"),
        ("polygon", [[0, 0], [5, 5], [10, 10]], "zero area"),
        ("rectangle", [[0, 0], [0, 10], [0, 10], [0, 0]], "fewer than 3"),
        ("path", [[0, 0], [0, 10], [0, 20], [0, 5]], "zero area"),
        ("ellipse", [[0, 0], [0, 10], [0, 10], [0, 0]], "zero area"),
        ("ellipse", [[0, 0], [0, 10], [5, 10]], "4 corners"),
        ("path", [[0, 0], [3, 3]], "fewer than 3"),
        ("polygon", [[0, 0], [np.nan, 1], [5, 5]], "finite"),
        ("polygon", [[0, 0], [np.inf, 1], [5, 5]], "finite"),
        ("polygon", [1.0, 2.0, 3.0], "pairs"),
        ("polygon", [["a", "b"], ["c", "d"], ["e", "f"]], "not numbers"),
        ("freehand", SQUARE_RC, "unknown shape type"),
    ],
)
def test_degenerate_shapes_report_a_problem_and_hold_no_spots(shape_type, vertices, words):
    roi = roi_from_napari("x", "tumour", shape_type, vertices)
    assert roi.problem is not None and words in roi.problem
    assert roi.geometry.is_empty
    xy = np.random.default_rng(0).uniform(-5, 15, (200, 2))
    assert SpotIndex(xy).query(roi.geometry).size == 0


def test_zero_area_roi_scores_as_a_problem_row():
    scorer = RoiScorer(_spots())
    scores = scorer.spot_scores(Signature("s", ("g0", "g1", "g2", "g3", "g4")))
    roi = roi_from_napari("x", "tumour", "line", [[0, 0], [9, 9]])
    table = scorer.table([roi], scores)
    assert table.loc[0, "status"] == roi.problem
    assert table.loc[0, "spots"] == 0
    assert scorer.mean_score(roi, scores).mean is None


# ---------------------------------------------------------------- self-intersection rule
def test_bow_tie_is_its_two_triangles():
    roi = Roi.from_xy("b", "tumour", np.array([[0, 0], [2, 2], [2, 0], [0, 2]]))
    assert isinstance(roi.geometry, MultiPolygon)
    assert len(roi.geometry.geoms) == 2
    assert roi.area_px == pytest.approx(2.0)
    assert roi.problem is None


def test_pentagram_centre_is_outside_even_odd_rule():
    t = np.arange(5) * 4 * np.pi / 5
    roi = Roi.from_xy("p", "tumour", np.column_stack([np.cos(t), np.sin(t)]) * 10)
    assert roi.geometry.is_valid
    assert not shapely.contains_xy(roi.geometry, 0.0, 0.0)  # enclosed twice
    assert shapely.contains_xy(roi.geometry, 0.0, 8.0) or shapely.contains_xy(roi.geometry, 8.0, 0.0)


def test_spike_is_dropped():
    roi = Roi.from_xy("s", "tumour", np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0], [-5, -5]]))
    assert isinstance(roi.geometry, Polygon)
    assert roi.area_px == pytest.approx(100.0)


def test_overlapping_parts_are_merged():
    gc = shapely.GeometryCollection([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)])
    g = polygonal(gc)
    assert g.is_valid and g.area == pytest.approx(7.0)
    assert shapely.contains_xy(g, 1.5, 1.5)


def test_rois_sharing_a_name_become_their_union():
    from napari_roiscore.rois.roi import merge_same_named

    rois = [Roi("a", "tumour", shapely.box(0, 0, 2, 2)), Roi("b", "stroma", shapely.box(5, 5, 6, 6)),
            Roi("a", "stroma", shapely.box(10, 10, 12, 12)), Roi("a", "other", Polygon()),
            Roi("z", "other", Polygon(), "no area here")]
    out = merge_same_named(rois)
    # a part of another class is never merged into "a" (it would make stroma spots tumour)
    assert [(r.name, r.roi_class) for r in out] == [("a", "tumour"), ("b", "stroma"), ("a (stroma)", "stroma"),
                                                    ("z", "other")]
    assert out[0].area_px == pytest.approx(4.0) and out[2].area_px == pytest.approx(4.0)
    assert out[1] is rois[1] and out[3].problem == "no area here"
    two = merge_same_named([Roi("a", "tumour", shapely.box(0, 0, 2, 2)), Roi("a", "tumour", shapely.box(5, 5, 6, 6))])
    assert len(two) == 1 and isinstance(two[0].geometry, MultiPolygon) and two[0].area_px == pytest.approx(5.0)


def test_geojson_and_napari_shapes_merge_same_names_alike(tmp_path):
    import json

    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.rois.shapes import rois_from_shapes, shapes_from_rois

    sq = [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]]
    sq2 = [[[10, 0], [14, 0], [14, 4], [10, 4], [10, 0]]]
    feats = [{"type": "Feature", "properties": {"name": "x"}, "geometry": {"type": "Polygon", "coordinates": c}}
             for c in (sq, sq2)]
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    assert len(read_geojson(path, merge=False)) == 2
    (merged,) = read_geojson(path)
    sh = shapes_from_rois(read_geojson(path, merge=False))
    (widget,) = rois_from_shapes(sh["data"], sh["shape_type"], sh["name"], sh["class"], sh["holes"])
    assert merged.geometry.equals(widget.geometry) and merged.area_px == pytest.approx(32.0)


# ---------------------------------------------------------------- membership of napari shapes
rc = st.floats(-50, 150, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape_type=st.sampled_from(sorted(NAPARI_SHAPE_TYPES)),
    vertices=st.lists(st.tuples(rc, rc), min_size=0, max_size=20),
    seed=st.integers(0, 2**32 - 1),
)
def test_napari_shape_membership_equals_shapely_and_never_raises(shape_type, vertices, seed):
    v = np.array(vertices, dtype=float).reshape(-1, 2)
    if shape_type in ("rectangle", "ellipse") and len(v) >= 2:
        (r0, c0), (r1, c1) = v[0], v[1]
        v = np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]])
    roi = roi_from_napari("h", "tumour", shape_type, v)
    rng = np.random.default_rng(seed)
    xy = np.concatenate([rng.uniform(0, 100, (800, 2)), v[:, ::-1], np.round(rng.uniform(0, 100, (200, 2)))])
    got = SpotIndex(xy).query(roi.geometry)
    if roi.problem:
        assert got.size == 0
    else:
        want = np.flatnonzero(shapely.contains_xy(roi.geometry, xy[:, 0], xy[:, 1]))
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- scorer uses the index
def _spots(n: int = 3000, seed: int = 1) -> SpotTable:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, (n, 20)).astype(np.float32)
    adata = ad.AnnData(counts)
    adata.var_names = [f"g{i}" for i in range(20)]
    adata.obsm["spatial"] = rng.uniform(0, 1000, (n, 2))
    return SpotTable(adata, diameter_px=10.0)


def test_scorer_members_and_mean_score_equal_the_naive_answer():
    spots = _spots()
    scorer = RoiScorer(spots)
    scores = scorer.spot_scores(Signature("five", ("g0", "g1", "g2", "g3", "g4")))
    xy = spots.xy
    for k, shape_type in enumerate(["polygon", "rectangle", "ellipse", "path"]):
        rc_ = np.array([[100, 150], [120 + 50 * k, 800], [700, 760], [650, 90 + 30 * k]], dtype=float)
        if shape_type in ("rectangle", "ellipse"):
            rc_ = np.array([[100, 150], [100, 800], [700, 800], [700, 150]], dtype=float)
        roi = roi_from_napari(str(k), "tumour", shape_type, rc_)
        inside = shapely.contains_xy(roi.geometry, xy[:, 0], xy[:, 1])
        np.testing.assert_array_equal(scorer.members(roi), np.flatnonzero(inside))
        fast = scorer.mean_score(roi, scores)
        slow = aggregate(scores.values, np.flatnonzero(inside))
        assert fast.n_spots == slow.n_spots == inside.sum()
        assert fast.mean == pytest.approx(np.mean(scores.values[inside]), rel=1e-12)
        assert fast.mean == pytest.approx(slow.score, rel=1e-12)


def test_outline_geos_cannot_linework_repair_still_gives_a_roi():
    """make_valid raises "Overlay input is mixed-dimension" here (found by hypothesis)."""
    ring = np.array([[1, -1.7e-262], [0, 0], [0, -1], [4.6e-65, 0], [0, 0],
                     [1, 0], [0, -1], [1, 1], [0, 0], [-1, 0]])
    roi = Roi.from_xy("d", "tumour", ring)
    assert roi.geometry.is_valid
    assert roi.problem is None and roi.area_px > 0


def test_subnormal_noise_outline_is_valid_or_empty():
    """Found by hypothesis: coordinates of 1e-271 defeat GEOS make_valid."""
    from napari_roiscore.rois.geojson import parse_geojson

    ring = [[0.25, 1.0], [2.879717902184153e-271, 0.0], [0.0, 0.0], [0.25, 1.0],
            [2.879717902184153e-271, 8.459575406411657e-271], [-1.0, 0.0], [0.25, 1.0]]
    rois = parse_geojson({"type": "Polygon", "coordinates": [ring]})
    g = rois[0].geometry
    assert g.is_empty or g.is_valid
