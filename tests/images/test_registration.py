"""Registration: transforms from scale factors, user affines and landmark pairs."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.registration import (
    Transform,
    apply_transform,
    fit_landmarks,
    spots_to_image_pixels,
    transform_of,
)
from napari_roiscore.spots.table import SpotTable


def make_spots(n: int = 50, seed: int = 0, pixel_size_um: float | None = 1.0) -> SpotTable:
    rng = np.random.default_rng(seed)
    adata = ad.AnnData(X=sp.csr_matrix(rng.poisson(2.0, (n, 6)).astype(np.float32)))
    adata.obs_names = [f"s{i}" for i in range(n)]
    adata.var_names = [f"g{j}" for j in range(6)]
    adata.obsm["spatial"] = rng.uniform(0, 2000, (n, 2))
    return SpotTable(adata, diameter_px=55.0, pixel_size_um=pixel_size_um, provenance={"path": "test.h5ad"})


@pytest.mark.parametrize("scale, angle, shift", [(1.0, 0.0, (40.0, -25.0)), (0.37, 31.0, (1200.5, -80.0)),
                                                 (2.5, -170.0, (0.0, 0.0))])
def test_similarity_from_two_landmarks_recovers_rotation_scale_shift(scale, angle, shift):
    truth = Transform.similarity(scale, angle, shift)
    moving = np.array([[100.0, 200.0], [1700.0, 1500.0]])
    al = fit_landmarks(moving, truth.apply(moving))
    assert al.transform.kind == "similarity"
    np.testing.assert_allclose(al.transform.matrix, truth.matrix, atol=1e-9, rtol=0)
    assert al.transform.scale == pytest.approx(scale, abs=1e-9)
    assert al.transform.rotation_deg == pytest.approx(angle, abs=1e-9)
    assert al.max_residual < 1e-9


def test_affine_from_three_landmarks_recovers_shear_and_flip():
    truth = Transform.from_matrix([[0.9, 0.2, 15.0], [-0.1, -1.1, 3000.0]])  # includes a flip
    moving = np.array([[0.0, 0.0], [1000.0, 100.0], [300.0, 900.0]])
    al = fit_landmarks(moving, truth.apply(moving))
    assert al.transform.kind == "affine"
    np.testing.assert_allclose(al.transform.matrix, truth.matrix, atol=1e-9, rtol=0)


def test_residuals_report_a_misclicked_landmark():
    truth = Transform.similarity(1.2, 10.0, (5.0, 7.0))
    moving = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0], [1000.0, 1000.0]])
    fixed = truth.apply(moving)
    fixed[3] += (30.0, 0.0)  # one pair clicked 30 px off
    al = fit_landmarks(moving, fixed, kind="similarity")
    assert al.residuals.shape == (4,)
    assert int(np.argmax(al.residuals)) == 3
    assert 5.0 < al.max_residual < 30.0
    assert al.rms_residual < al.max_residual


def test_bad_landmarks_are_refused_with_a_fix():
    with pytest.raises(RoiScoreError, match="do not pair up"):
        fit_landmarks([[0, 0], [1, 1]], [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(RoiScoreError, match="at least 2"):
        fit_landmarks([[0, 0]], [[1, 1]])
    with pytest.raises(RoiScoreError, match="same spot"):
        fit_landmarks([[5, 5], [5, 5]], [[0, 0], [1, 1]])
    with pytest.raises(RoiScoreError, match="one line"):
        fit_landmarks([[0, 0], [1, 1], [2, 2]], [[0, 0], [1, 0], [0, 1]])
    with pytest.raises(RoiScoreError, match="at least 3"):
        fit_landmarks([[0, 0], [1, 1]], [[0, 0], [1, 0]], kind="affine")


def test_user_affine_and_scale_factors():
    with pytest.raises(RoiScoreError, match="singular"):
        Transform.from_matrix([[1, 2, 0], [2, 4, 0]])
    with pytest.raises(RoiScoreError, match="perspective"):
        Transform.from_matrix([[1, 0, 0], [0, 1, 0], [0.1, 0, 1]])
    t = Transform.scaling(0.25)  # e.g. Space Ranger tissue_hires_scalef
    np.testing.assert_allclose(t.apply([[400.0, 800.0]]), [[100.0, 200.0]])
    np.testing.assert_allclose(Transform.from_pixel_sizes(0.5, 0.25).matrix, np.diag([2.0, 2.0, 1.0]))
    round_trip = Transform.from_dict(json.loads(json.dumps(t.then(Transform.similarity(1, 90, (1, 2))).to_dict())))
    np.testing.assert_allclose(round_trip.apply([[1.0, 0.0]]), [[1.0, 2.25]], atol=1e-12)
    np.testing.assert_allclose(t.inverse().apply(t.apply([[3.0, 4.0]])), [[3.0, 4.0]])


def test_apply_transform_moves_spots_keeps_counts_and_records_the_transform():
    spots = make_spots()
    X_before = spots.counts.toarray().copy()
    shift = Transform.from_matrix([[1, 0, 40.0], [0, 1, -25.0]])
    moved = apply_transform(spots, shift)
    np.testing.assert_allclose(moved.xy, spots.xy + (40.0, -25.0))
    np.testing.assert_array_equal(moved.counts.toarray(), X_before)
    np.testing.assert_array_equal(spots.counts.toarray(), X_before)
    assert list(moved.adata.obs_names) == list(spots.adata.obs_names)
    assert moved.diameter_px == 55.0 and moved.pixel_size_um == 1.0
    assert "transform" not in spots.provenance  # the input is not changed
    np.testing.assert_allclose(spots.xy + (40.0, -25.0), moved.xy)

    # a second step composes: provenance holds the total and each step
    half = Transform.scaling(0.5)
    twice = apply_transform(moved, half)
    np.testing.assert_allclose(transform_of(twice).apply(spots.xy), twice.xy)
    assert len(twice.provenance["transform_steps"]) == 2
    assert twice.diameter_px == pytest.approx(27.5) and twice.pixel_size_um == pytest.approx(2.0)
    json.dumps(twice.provenance["transform"])  # storable as plain data


def test_landmark_alignment_undoes_a_known_misplacement():
    spots = make_spots(200, seed=3)
    truth = Transform.similarity(1.05, 4.0, (-60.0, 35.0))
    misplaced = apply_transform(spots, truth.inverse())
    idx = [0, 57, 133]
    al = fit_landmarks(misplaced.xy[idx], spots.xy[idx])
    back = apply_transform(misplaced, al)
    np.testing.assert_allclose(back.xy, spots.xy, atol=1e-8)
    assert back.provenance["transform_steps"][-1]["residuals_px"] == pytest.approx([0, 0, 0], abs=1e-8)


def test_spots_to_image_pixels_uses_pixel_sizes():
    spots = make_spots(pixel_size_um=0.5)
    on_image = spots_to_image_pixels(spots, image_pixel_size_um=0.25)
    np.testing.assert_allclose(on_image.xy, spots.xy * 2)
    assert on_image.pixel_size_um == 0.25 and on_image.diameter_px == pytest.approx(110.0)
    with pytest.raises(RoiScoreError, match="pixel size is unknown"):
        spots_to_image_pixels(make_spots(pixel_size_um=None), 0.25)


def test_nearly_collinear_landmarks_are_refused_not_fitted_wildly():
    """0.5 px off a line gave 'scale 63', moving the spots by 10^7 px, with no warning."""
    moving = np.array([[100.0, 100.0], [600.0, 100.0], [1100.0, 100.5]])
    fixed = moving + [20.0, -10.0]
    with pytest.raises(RoiScoreError, match="lie on one line"):
        fit_landmarks(moving, fixed)
    # pairs clicked in a different order on the two layers: a distortion no slide has
    good = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0]])
    swapped = np.array([[0.0, 0.0], [0.0, 200.0], [1000.0, 0.0]])
    with pytest.raises(RoiScoreError, match="same order"):
        fit_landmarks(good, swapped + [[0, 0], [0, 0], [5, 0]])


def test_a_mirrored_fit_is_described_as_mirrored():
    moving = np.array([[0.0, 0.0], [1000.0, 100.0], [300.0, 900.0]])
    flipped = moving * [1.0, -1.0] + [0.0, 4000.0]
    al = fit_landmarks(moving, flipped)
    assert al.transform.mirrored
    assert al.transform.describe().startswith("mirrored, ")
    assert not fit_landmarks(moving, moving + 5).transform.mirrored


def test_landmarks_that_are_not_numbers_are_a_roiscore_error():
    with pytest.raises(RoiScoreError, match="not \\(x, y\\) numbers"):
        fit_landmarks([["a", "b"]] * 3, [[0, 0], [1, 0], [0, 1]])
