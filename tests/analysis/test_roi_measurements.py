"""Per-ROI area, UMIs and genes detected, against numpy/shapely on the same spots."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import box

from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.scorer import RoiScorer
from test_scoring import make_spots, random_counts


def _slide(pixel_size_um=0.5):
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, size=(400, 2))
    X = random_counts(400, 30, 0.2, seed=2)
    spots = make_spots(X, xy=xy)
    spots.pixel_size_um = pixel_size_um
    return spots, X.toarray(), xy


def test_measurements_equal_direct_computation():
    spots, D, xy = _slide()
    rois = [Roi("a", "tumour", box(10, 10, 60, 50)), Roi("b", "stroma", box(70, 70, 71, 71))]
    table = RoiScorer(spots).measurements(rois)
    for row, roi in zip(table.itertuples(index=False), rois):
        inside = shapely.contains_xy(roi.geometry, xy[:, 0], xy[:, 1])
        assert row.area_um2 == roi.geometry.area * 0.25
        assert row.total_umis == D[inside].sum()
        if inside.any():
            assert np.isclose(row.mean_umis_per_spot, D[inside].sum() / inside.sum())
        else:
            assert np.isnan(row.mean_umis_per_spot)
        assert row.genes_detected == int((D[inside] > 0).any(axis=0).sum())
    assert table["genes_detected"].iloc[0] > 0


def test_marker_restriction_applies_and_unknown_scale_gives_px():
    spots, D, xy = _slide(pixel_size_um=None)
    roi = Roi("a", "tumour", box(0, 0, 100, 100))
    mask = np.zeros(spots.n_spots, bool)
    mask[:10] = True
    table = RoiScorer(spots).measurements([roi], spot_mask=mask)
    assert "area_px2" in table.columns
    assert table["total_umis"].iloc[0] == D[:10].sum()
