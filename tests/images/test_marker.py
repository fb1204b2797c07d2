from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy.stats import pearsonr
from skimage.filters import threshold_otsu

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage
from napari_roiscore.images.markers import (
    choose_level,
    find_channel,
    level0_to_level,
    level_downsample,
    level_to_level0,
    marker_mask,
    otsu_threshold,
)
from napari_roiscore.images.spot_footprints import footprint_fractions, restrict_spots
from napari_roiscore.spots.sample import open_sample
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import Signature

EDGE = 199.5  # positive pixels are columns >= 200, i.e. x >= 199.5 in continuous coordinates


def _pyramid(level0: np.ndarray, n_levels: int) -> list:
    levels = [level0]
    for _ in range(n_levels - 1):
        a = levels[-1]
        c, h, w = a.shape
        levels.append(a.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4)).astype(a.dtype))
    return [da.from_array(lv, chunks=(1, 64, 64)) for lv in levels]


@pytest.fixture(scope="module")
def half_plane() -> MultiplexImage:
    """400 x 400 px, 2 channels; channel "CD68" is 200 where x >= 200, else 0."""
    img = np.zeros((2, 400, 400), dtype=np.uint8)
    img[0] = 50
    img[1, :, 200:] = 200
    return MultiplexImage(_pyramid(img, 3), ["DAPI", "CD68"], pixel_size_um=1.0)


def _segment_fraction(d: float, r: float) -> float:
    """Fraction of a disc of radius r lying beyond a line at signed distance d from its centre."""
    d = np.clip(d, -r, r)
    seg = r * r * np.arccos(d / r) - d * np.sqrt(r * r - d * d)
    return float(seg / (np.pi * r * r))


def test_coordinate_round_trip_and_pixel_centres():
    xy = np.array([[0.0, 0.0], [1.5, 3.5], [123.0, 7.0]])
    for ds in ((1.0, 1.0), (2.0, 2.0), (4.0, 8.0)):
        np.testing.assert_allclose(level_to_level0(level0_to_level(xy, ds), ds), xy)
    # level-1 pixel 0 is the mean of level-0 pixels 0 and 1: its centre is at 0.5
    np.testing.assert_allclose(level_to_level0(np.zeros((1, 2)), (2.0, 2.0)), [[0.5, 0.5]])
    np.testing.assert_allclose(level_to_level0(np.zeros((1, 2)), (4.0, 2.0)), [[0.5, 1.5]])


def test_levels_and_choice(half_plane):
    assert [level_downsample(half_plane, k) for k in range(3)] == [(1, 1), (2, 2), (4, 4)]
    assert choose_level(half_plane, 40) == 2  # radius 20 / 4 = 5 >= 4
    assert choose_level(half_plane, 20) == 1  # 2.5 -> level with 2 px
    assert choose_level(half_plane, 4) == 0
    with pytest.raises(RoiScoreError, match="level 5"):
        level_downsample(half_plane, 5)
    with pytest.raises(RoiScoreError, match="diameter"):
        choose_level(half_plane, 0)
    # odd sizes: a 1001-px level 0 over a 500-px level 1 is still a factor 2
    odd = MultiplexImage([np.zeros((1, 1001, 1001)), np.zeros((1, 500, 500))], ["x"])
    assert level_downsample(odd, 1) == (2.0, 2.0)


def test_channel_lookup(half_plane):
    assert find_channel(half_plane, "cd68") == 1
    assert find_channel(half_plane, "macrophages") == 1
    assert find_channel(half_plane, 0) == 0
    with pytest.raises(RoiScoreError, match="DAPI, CD68"):
        find_channel(half_plane, "panCK")
    with pytest.raises(RoiScoreError):
        find_channel(half_plane, 2)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_half_plane_fractions_at_every_level(half_plane, level):
    m = marker_mask(half_plane, "CD68", level=level)
    assert m.method == "otsu" and 0 <= m.threshold < 200
    assert m.scale == (2.0**level, 2.0**level)
    # spots left of, on and right of the edge; y differs from x so that a swap would show
    xs = np.array([150.0, 185.0, 190.0, 199.5, 205.0, 260.0])
    xy = np.c_[xs, np.full_like(xs, 97.0)]
    f = footprint_fractions(m, xy, diameter_px=40.0)
    expected = [_segment_fraction(EDGE - x, 20.0) for x in xs]
    # 4x coarser pixels sample a 5-px-radius disc: allow the sampling error, not a shift
    np.testing.assert_allclose(f, expected, atol=0.035)
    # swapped (y, x) centres would be all-negative
    assert footprint_fractions(m, xy[:, ::-1], 40.0).max() == 0.0


def test_half_plane_square_bins(half_plane):
    m = marker_mask(half_plane, 1, level=1)
    xs = np.array([170.0, 190.0, 199.5, 215.0])
    f = footprint_fractions(m, np.c_[xs, np.full_like(xs, 300.0)], diameter_px=40.0, shape="square")
    expected = np.clip((xs + 20 - EDGE) / 40, 0, 1)
    np.testing.assert_allclose(f, expected, atol=0.03)


def test_shift_error_would_be_detected(half_plane):
    """Ignoring the (d-1)/2 pixel-centre offset shifts the edge by 1.5 px at level 2."""
    m = marker_mask(half_plane, 1, level=2)
    f = footprint_fractions(m, np.array([[190.0, 97.0]]), 40.0)[0]
    right = _segment_fraction(EDGE - 190.0, 20.0)
    wrong = _segment_fraction(EDGE - 1.5 - 190.0, 20.0)
    assert abs(f - right) < abs(f - wrong)
    assert abs(right - wrong) > 0.035


def test_small_block_and_edges():
    img = np.zeros((1, 128, 128), dtype=np.uint16)
    img[0, 40:60, 80:100] = 1000  # rows 40..59 (y), columns 80..99 (x)
    image = MultiplexImage(_pyramid(img, 2), ["CD68"])
    m = marker_mask(image, "CD68", threshold=500, level=1)
    assert m.method == "user" and m.threshold == 500
    xy = np.array([[89.5, 49.5], [89.5, 20.0], [-500.0, -500.0], [0.0, 0.0], [89.5, 49.5]])
    f = footprint_fractions(m, xy, diameter_px=12.0)
    assert f[0] == 1.0 and f[1] == 0.0 and np.isnan(f[2]) and f[3] == 0.0 and f[4] == 1.0
    # a footprint far smaller than a mask pixel uses the pixel under its centre
    assert footprint_fractions(m, xy[:2], diameter_px=0.5).tolist() == [1.0, 0.0]
    assert footprint_fractions(m, np.zeros((0, 2)), 10.0).shape == (0,)
    with pytest.raises(RoiScoreError, match="shape"):
        footprint_fractions(m, xy, 10.0, shape="hexagon")
    with pytest.raises(RoiScoreError, match="Threshold"):
        marker_mask(image, 0, threshold=float("nan"))


def test_mask_is_lazy_and_otsu_matches_skimage(half_plane):
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(40, 8, 5000), rng.normal(150, 20, 2000)]).clip(0, 255).astype(np.uint8)
    assert otsu_threshold(da.from_array(a, chunks=1000)) == pytest.approx(threshold_otsu(a), abs=1)
    f = rng.normal(0, 1, 4000)
    assert otsu_threshold(f) == pytest.approx(threshold_otsu(f, nbins=1024), abs=0.01)
    assert otsu_threshold(np.full(10, 3, np.uint8)) == 3.0
    m = marker_mask(half_plane, "CD68", level=0)
    assert isinstance(m.data, da.Array) and m.data.dtype == bool
    assert m.layer_kwargs()["translate"] == (0.0, 0.0)


def test_restrict_spots():
    f = np.array([0.0, 0.1999, 0.2, 0.9, np.nan])
    assert restrict_spots(f, 0.2).tolist() == [False, False, True, True, False]
    assert restrict_spots(f, 0).tolist() == [True, True, True, True, False]
    with pytest.raises(RoiScoreError, match="0.2 for 20 %"):
        restrict_spots(f, 20)


@pytest.fixture(scope="module")
def sample():
    return open_sample()


def test_sample_cd68_fraction_tracks_generator(sample):
    spots = sample.spots
    m = marker_mask(sample.image, "CD68", spot_diameter_px=spots.diameter_px)
    assert m.level == 2 and m.downsample == (4.0, 4.0)
    f = footprint_fractions(m, spots.xy, spots.diameter_px, spots.shape)
    truth = spots.adata.obs["frac_macrophage"].to_numpy()
    r = pearsonr(f, truth)[0]
    print(f"\nCD68 Otsu threshold {m.threshold:g} at level {m.level}; r(fraction, frac_macrophage) = {r:.3f}")
    assert r > 0.9
    # a shuffled assignment of fractions to spots does not correlate
    assert abs(pearsonr(np.random.default_rng(0).permutation(f), truth)[0]) < 0.2


def test_sample_cd68_restricted_scores_differ(sample):
    spots = sample.spots
    scorer = RoiScorer(spots)
    scores = scorer.spot_scores(Signature("macrophage", ("CD68", "CD163", "STAB1", "MRC1", "MSR1")))
    m = marker_mask(sample.image, "CD68", spot_diameter_px=spots.diameter_px)
    frac = footprint_fractions(m, spots.xy, spots.diameter_px)
    keep = restrict_spots(frac, 0.1)
    full = scorer.table(sample.rois, scores).set_index("roi")
    cd68 = scorer.table(sample.rois, scores, spot_mask=keep).set_index("roi")
    unchanged = scorer.table(sample.rois, scores, spot_mask=None).set_index("roi")
    assert unchanged.equals(full)
    print("\n" + full.join(cd68, rsuffix="_cd68")[["class", "spots", "score", "spots_cd68", "score_cd68"]]
          .to_string())
    # Restricted to spots >= 10 % CD68+: the tumour ROI keeps only its spots that hold
    # macrophages, so its macrophage-gene score rises (the explainable reason); the stroma
    # ROI is macrophage-rich everywhere and keeps (nearly) all its spots.
    tumour = scorer.members(next(r for r in sample.rois if r.name == "004"))
    assert 0 < cd68.loc["004", "spots"] < full.loc["004", "spots"]
    assert cd68.loc["004", "score"] > full.loc["004", "score"] + 0.2
    assert frac[tumour][keep[tumour]].min() >= 0.1 > frac[tumour][~keep[tumour]].max()
    assert cd68.loc["007", "spots"] <= full.loc["007", "spots"]
    # a mask that keeps nothing
    none = scorer.table(sample.rois, scores, spot_mask=np.zeros(spots.n_spots, bool))
    assert (none["status"] == "no spots pass the marker filter").all()
    assert none["score"].isna().all()
    with pytest.raises(RoiScoreError, match="one per spot"):
        scorer.table(sample.rois, scores, spot_mask=keep[:-1])
    with pytest.raises(RoiScoreError, match="one per spot"):
        scorer.table(sample.rois, scores, spot_mask=keep.astype(int))


def test_threshold_above_the_pixel_range_says_so():
    """A threshold of 1000 on a uint8 channel passed no spot, with no word on why."""
    image = open_sample().image
    with pytest.raises(RoiScoreError, match=r"uint8 pixel of channel 'CD68' can hold \(255\)"):
        marker_mask(image, "CD68", threshold=1000, level=3)
    assert marker_mask(image, "CD68", threshold=254, level=3).threshold == 254
