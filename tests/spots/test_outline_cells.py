"""Grid cells of an ROI outline: boundary cells hold every crossing, the others are classified exactly."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from napari_roiscore.rois.roi import polygonal
from napari_roiscore.spots.outline_cells import boundary_cells, inside_cells, outline_edges

H, W = 24, 30  # window of cells; one grid unit = one cell


def classify(geometry) -> tuple[np.ndarray, np.ndarray]:
    a, b = outline_edges(geometry)
    boundary = boundary_cells(a, b, H, W, 1e-7)
    inside = inside_cells(a, b, H, W) & ~boundary
    return boundary, inside


def cell_boxes_touched(geometry) -> np.ndarray:
    """Cells whose closed square meets the outline (the naive answer)."""
    rows, cols = np.mgrid[0:H, 0:W]
    cells = shapely.box(cols.ravel(), rows.ravel(), cols.ravel() + 1, rows.ravel() + 1)
    return shapely.intersects(cells, geometry.boundary).reshape(H, W)


def centres_inside(geometry) -> np.ndarray:
    rows, cols = np.mgrid[0:H, 0:W]
    return shapely.contains_xy(geometry, cols.ravel() + 0.5, rows.ravel() + 0.5).reshape(H, W)


def test_square_with_a_hole():
    roi = box(3.5, 2.5, 20.5, 18.5).difference(box(8.2, 6.2, 12.8, 10.8))
    boundary, inside = classify(roi)
    touched = cell_boxes_touched(roi)
    assert (boundary >= touched).all()  # every cell the outline touches is a boundary cell
    free = ~boundary
    np.testing.assert_array_equal(inside[free], centres_inside(roi)[free])
    assert not inside[8, 10]  # the hole's cells are not inside
    assert inside[15, 5]


def test_edges_of_every_ring():
    roi = box(0, 0, 10, 10).difference(box(3, 3, 6, 6))
    a, b = outline_edges(roi)
    assert len(a) == len(b) == 8  # 4 exterior + 4 hole edges, no edge joining the two rings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(-3, W + 3), st.floats(-3, H + 3)), min_size=3, max_size=12))
def test_random_outlines_classify_exactly_off_the_boundary(points):
    roi = polygonal(Polygon(points).buffer(0))
    if roi is None or roi.is_empty or roi.area <= 0:
        return
    boundary, inside = classify(roi)
    assert (boundary >= cell_boxes_touched(roi)).all()
    free = ~boundary
    np.testing.assert_array_equal(inside[free], centres_inside(roi)[free])
