"""SpotIndex membership must equal shapely.contains_xy on the (made-valid) ROI."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from napari_roiscore.rois.roi import ellipse_vertices, polygonal
from napari_roiscore.spots.index import SpotIndex

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected(geometry, xy: np.ndarray) -> np.ndarray:
    return np.flatnonzero(shapely.contains_xy(geometry, xy[:, 0], xy[:, 1]))


def check(index: SpotIndex, geometry, xy: np.ndarray, values: np.ndarray | None = None) -> None:
    """query (sorted and unsorted) and aggregate agree with the naive answer."""
    want = expected(geometry, xy)
    got = index.query(geometry)
    np.testing.assert_array_equal(got, want)
    unsorted = index.query(geometry, sort=False)
    np.testing.assert_array_equal(np.sort(unsorted), want)
    if values is None:
        values = np.arange(len(xy), dtype=float) % 7 - 3.0
    agg = index.aggregate(geometry, index.prefix_sums(values))
    v = values[want]
    v = v[np.isfinite(v)]
    assert agg.n_spots == want.size
    assert agg.n_finite == v.size
    if v.size:
        assert agg.mean == pytest.approx(v.mean(), rel=1e-12, abs=1e-12)
    else:
        assert agg.mean is None


# ---------------------------------------------------------------- strategies
coord = st.floats(-20, 120, allow_nan=False, allow_infinity=False)
lattice = st.integers(-5, 25).map(float)


@st.composite
def point_clouds(draw) -> np.ndarray:
    """Uniform, clustered or integer-lattice (duplicates, on grid lines) clouds."""
    kind = draw(st.sampled_from(["uniform", "clustered", "lattice"]))
    n = draw(st.integers(1, 1500))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        xy = rng.uniform(0, 100, (n, 2))
    elif kind == "clustered":
        k = draw(st.integers(1, 5))
        centres = rng.uniform(0, 100, (k, 2))
        xy = centres[rng.integers(0, k, n)] + rng.normal(0, draw(st.sampled_from([0.01, 1, 5])), (n, 2))
    else:
        xy = rng.integers(0, 21, (n, 2)).astype(float)
    return xy


@st.composite
def outlines(draw) -> np.ndarray:
    """Random (often self-intersecting) outlines, possibly on lattice points."""
    k = draw(st.integers(3, 25))
    pts = draw(st.lists(st.tuples(lattice, lattice) if draw(st.booleans())
                        else st.tuples(coord, coord), min_size=k, max_size=k))
    return np.array(pts, dtype=float)


def with_outline_points(xy: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Add spots exactly on the outline's vertices and on its edges."""
    a, b = ring, np.roll(ring, -1, axis=0)
    return np.concatenate([xy, ring, 0.5 * (a + b), 0.25 * a + 0.75 * b])


@st.composite
def transforms(draw):
    """Scale and shift: tiny, ordinary, huge, beyond the slide."""
    scale = draw(st.sampled_from([1e-6, 0.05, 1.0, 1.0, 30.0, 1e6]))
    shift = draw(st.sampled_from([0.0, 0.0, 50.0, -300.0, 5000.0]))
    return scale, shift


# ---------------------------------------------------------------- hypothesis
@SETTINGS
@given(xy=point_clouds(), ring=outlines(), spc=st.sampled_from([0.3, 1.0, 4.0, 16.0]))
def test_random_polygon_equals_shapely(xy, ring, spc):
    geometry = polygonal(Polygon(ring))
    assume(not geometry.is_empty)
    xy = with_outline_points(xy, ring)
    check(SpotIndex(xy, spots_per_cell=spc), geometry, xy)


@SETTINGS
@given(xy=point_clouds(), ring=outlines(), tf=transforms())
def test_scaled_and_shifted_polygon_equals_shapely(xy, ring, tf):
    """Tiny, huge and off-slide ROIs (spots stay where they are)."""
    scale, shift = tf
    centre = ring.mean(axis=0)
    ring = (ring - centre) * scale + centre + shift
    geometry = polygonal(Polygon(ring))
    assume(not geometry.is_empty)
    check(SpotIndex(xy), geometry, with_outline_points(xy, ring)[: len(xy)])


@SETTINGS
@given(xy=point_clouds(), ring=outlines(), tf=transforms())
def test_polygon_and_spots_scaled_together(xy, ring, tf):
    """Same picture at any magnification / offset (rounding at extreme scales)."""
    scale, shift = tf
    xy = with_outline_points(xy, ring) * scale + shift
    ring = ring * scale + shift
    geometry = polygonal(Polygon(ring))
    assume(not geometry.is_empty)
    check(SpotIndex(xy), geometry, xy)


@SETTINGS
@given(
    xy=point_clouds(),
    outer=st.tuples(st.floats(0, 60), st.floats(0, 60), st.floats(1, 60), st.floats(1, 60)),
    holes=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 0.5)), max_size=3),
)
def test_rectangle_with_holes_equals_shapely(xy, outer, holes):
    x, y, w, h = outer
    shell = box(x, y, x + w, y + h)
    geometry = shell
    for fx, fy, r in holes:
        hole = shapely.Point(x + fx * w, y + fy * h).buffer(r * min(w, h), quad_segs=4)
        geometry = geometry.difference(hole)
    geometry = polygonal(geometry)
    assume(not geometry.is_empty)
    ring = np.asarray(shell.exterior.coords)[:-1]
    xy = with_outline_points(xy, ring)
    check(SpotIndex(xy, spots_per_cell=2.0), geometry, xy)


@SETTINGS
@given(xy=point_clouds(), corners=st.tuples(coord, coord, st.floats(0.01, 80), st.floats(0.01, 80)))
def test_ellipse_equals_shapely(xy, corners):
    r, c, h, w = corners
    rc = np.array([[r, c], [r, c + w], [r + h, c + w], [r + h, c]])
    ring = ellipse_vertices(rc)[:, ::-1]
    geometry = polygonal(Polygon(ring))
    xy = with_outline_points(xy, ring)
    check(SpotIndex(xy), geometry, xy)


@SETTINGS
@given(xy=point_clouds(), rings=st.lists(outlines(), min_size=2, max_size=4))
def test_multipolygon_equals_shapely(xy, rings):
    parts = [polygonal(Polygon(r)) for r in rings]
    geometry = polygonal(shapely.union_all(parts))
    assume(isinstance(geometry, MultiPolygon) or not geometry.is_empty)
    xy = with_outline_points(xy, np.concatenate(rings))
    check(SpotIndex(xy, spots_per_cell=1.0), geometry, xy)


@SETTINGS
@given(ring=outlines(), cell=st.sampled_from([1.0, 2.0, 0.5, 5.0]))
def test_spots_on_grid_lines_and_cell_corners(ring, cell):
    """Spots and vertices exactly on the grid lines of an explicit cell size."""
    g = np.arange(-5.0, 26.0, 0.5)
    xx, yy = np.meshgrid(g, g)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    geometry = polygonal(Polygon(ring))
    assume(not geometry.is_empty)
    check(SpotIndex(xy, cell_size=cell), geometry, xy)


# ---------------------------------------------------------------- edge cases
def test_values_with_nan_are_left_out_of_the_mean_but_counted():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (5000, 2))
    values = rng.normal(size=5000)
    values[::7] = np.nan
    values[::11] = np.inf
    check(SpotIndex(xy), box(10, 10, 70, 60), xy, values)


def test_star_polygon_on_many_spots():
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 1000, (200_000, 2))
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    r = 150 * (1 + 0.3 * np.sin(7 * t))
    star = Polygon(np.column_stack([500 + r * np.cos(t), 500 + r * np.sin(t)]))
    index = SpotIndex(xy)
    check(index, star, xy, rng.normal(size=len(xy)))
    plan = index._plan(star)
    # most members come from whole inside cells, not from exact tests
    assert (plan.run_hi - plan.run_lo).sum() > 5 * plan.boundary.size


def test_roi_covering_the_whole_slide_and_beyond():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 100, (3000, 2))
    index = SpotIndex(xy)
    check(index, box(-1e9, -1e9, 1e9, 1e9), xy)
    check(index, box(-5, -5, 105, 105).difference(box(20, 20, 40, 40)), xy)


def test_roi_away_from_all_spots_is_empty():
    xy = np.random.default_rng(6).uniform(0, 100, (1000, 2))
    index = SpotIndex(xy)
    assert index.query(box(200, 200, 300, 300)).size == 0
    assert index.aggregate(box(200, 200, 300, 300), index.prefix_sums(np.ones(1000))).mean is None


@pytest.mark.parametrize(
    "geometry",
    [Polygon(), shapely.LineString([(0, 0), (10, 10)]), shapely.Point(5, 5), None],
    ids=["empty", "line", "point", "none"],
)
def test_geometry_without_area_has_no_spots(geometry):
    xy = np.random.default_rng(7).uniform(0, 10, (100, 2))
    assert SpotIndex(xy).query(geometry).size == 0


def test_empty_index_and_single_spot_and_identical_spots():
    assert SpotIndex(np.zeros((0, 2))).query(box(0, 0, 1, 1)).size == 0
    one = np.array([[5.0, 5.0]])
    check(SpotIndex(one), box(0, 0, 10, 10), one)
    same = np.full((50, 2), 3.0)
    check(SpotIndex(same), box(0, 0, 10, 10), same)
    check(SpotIndex(same), box(3, 3, 10, 10), same)  # on the outline: outside
    far = np.full((20, 2), 1e9)
    check(SpotIndex(far), box(1e9 - 1, 1e9 - 1, 1e9 + 1, 1e9 + 1), far)


def test_spots_with_non_finite_coordinates_are_never_inside():
    xy = np.array([[1.0, 1.0], [np.nan, 2.0], [2.0, np.inf], [3.0, 3.0]])
    index = SpotIndex(xy)
    np.testing.assert_array_equal(index.query(box(0, 0, 10, 10)), [0, 3])


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError):
        SpotIndex(np.zeros(5))
    index = SpotIndex(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        index.prefix_sums(np.zeros(3))


def test_subnormal_sliver_found_by_hypothesis():
    """A ring with a 1e-45 coordinate: make_valid left slivers thinner than any float
    spacing near 1, and the index and shapely disagreed on spots along them."""
    ring = np.array([[0, 1.40129846e-45], [1, 29], [0, 0], [1, 2], [4, 0], [0, 0], [0, -1], [3, 0]])
    g = np.arange(-5.0, 26.0, 0.5)
    xx, yy = np.meshgrid(g, g)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    geometry = polygonal(Polygon(ring))
    assert geometry.is_valid
    check(SpotIndex(xy, cell_size=1.0), geometry, xy)
