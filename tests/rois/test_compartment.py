from __future__ import annotations

import numpy as np
import pytest
import shapely

from napari_roiscore.rois.compartments import mask_to_polygons, propose_compartments
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage, read_multiplex_tiff
from napari_roiscore.rois.roi import Roi
from napari_roiscore.spots.sample import open_sample
from napari_roiscore.spots.synthetic import make_slide, write_slide


def _raster(geoms, shape) -> np.ndarray:
    """Pixels (level 0) whose centre lies inside the union of ``geoms``."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    g = shapely.union_all(list(geoms))
    return shapely.contains_xy(g, xx.ravel(), yy.ravel()).reshape(shape)


def _iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_mask_to_polygons_square_hole_island():
    m = np.zeros((64, 64), bool)
    m[8:40, 4:36] = True      # 32 x 32 square: rows 8..39, columns 4..35
    m[16:32, 12:28] = False   # 16 x 16 hole
    m[20:28, 16:24] = True    # 8 x 8 island in the hole
    m[50:52, 50:60] = True    # a separate bar
    polys = mask_to_polygons(m, downsample=(2.0, 2.0))
    assert len(polys) == 3
    big, island, bar = polys[0], polys[1], polys[2]
    assert len(big.interiors) == 1 and len(island.interiors) == 0
    # level pixel j covers level-0 [2j - 0.5 + 0.5 ... ]: edges of columns 4..35 -> x 7.5..71.5
    assert big.bounds == pytest.approx((2 * 4 - 0.5, 2 * 8 - 0.5, 2 * 36 - 0.5, 2 * 40 - 0.5), abs=1e-9)
    # areas in level-0 px (x4); contours cut each corner by a half-pixel triangle
    assert big.area == pytest.approx(4 * (32 * 32 - 16 * 16), rel=0.01)
    assert island.area == pytest.approx(4 * 64, rel=0.03)
    assert bar.bounds == pytest.approx((99.5, 99.5, 119.5, 103.5))
    # round trip: rasterised polygons reproduce the level-0 upsampled mask
    up = np.kron(m, np.ones((2, 2), bool))
    back = _raster(polys, up.shape)
    assert (back ^ up).sum() <= 4 * 12  # at most the chamfered corner pixels differ
    # y/x are not swapped
    assert big.contains(shapely.Point(10, 75)) and not big.contains(shapely.Point(75, 10))


def test_mask_to_polygons_edges_and_simplify():
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []
    full = mask_to_polygons(np.ones((5, 5), bool))
    assert len(full) == 1 and full[0].bounds == (-0.5, -0.5, 4.5, 4.5)
    yy, xx = np.mgrid[0:400, 0:400]
    disc = (yy - 200) ** 2 + (xx - 200) ** 2 < 150**2
    raw = mask_to_polygons(disc)[0]
    simple = mask_to_polygons(disc, simplify_px=1.0)[0]
    assert len(simple.exterior.coords) < len(raw.exterior.coords) / 5
    assert simple.area == pytest.approx(np.pi * 150**2, rel=0.01)


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory):
    slide = make_slide(size=1024, n_genes=120, seed=7)
    paths = write_slide(slide, tmp_path_factory.mktemp("small"), stem="small", levels=3)
    return slide, read_multiplex_tiff(paths["image"])


def test_proposal_matches_generator_masks(small_slide):
    slide, image = small_slide
    comp = propose_compartments(image)
    tumour = comp.of_class("tumour")
    stroma = comp.of_class("stroma")
    assert tumour and stroma and all(isinstance(r, Roi) for r in comp.rois)
    assert [r.name for r in tumour][:2] == ["T01", "T02"]
    shape = slide.masks["tumour"].shape
    t = _raster([r.geometry for r in tumour], shape)
    s = _raster([r.geometry for r in stroma], shape)
    truth_t, truth_tissue = slide.masks["tumour"], slide.masks["tissue"]
    iou_t = _iou(t, truth_t)
    iou_tissue = _iou(t | s, truth_tissue)
    iou_s = _iou(s, truth_tissue & ~truth_t)
    print(f"\nlevel {comp.level} ({comp.settings['working_pixel_um']} µm px): IoU tumour {iou_t:.3f}, "
          f"tissue {iou_tissue:.3f}, stroma {iou_s:.3f}; vertices "
          f"{[len(r.geometry.exterior.coords) for r in comp.rois if r.geometry.geom_type == 'Polygon']}")
    assert iou_t > 0.8 and iou_tissue > 0.8 and iou_s > 0.75
    # tumour and stroma never overlap, and together they tile the tissue
    tu = shapely.union_all([r.geometry for r in tumour])
    su = shapely.union_all([r.geometry for r in stroma])
    assert tu.intersection(su).area < 1e-6 * tu.area
    # stroma wraps around tumour nests: some stroma polygon has holes
    assert any(len(p.interiors) for r in stroma for p in getattr(r.geometry, "geoms", [r.geometry]))
    # reasonable vertex counts
    assert max(len(p.exterior.coords) for r in comp.rois
               for p in getattr(r.geometry, "geoms", [r.geometry])) < 400


def test_settings_change_the_proposal(small_slide):
    _, image = small_slide
    base = propose_compartments(image)
    strict = propose_compartments(image, tumour_threshold=base.tumour_threshold * 1.6)
    area = lambda c: sum(r.area_px for r in c.of_class("tumour"))  # noqa: E731
    assert area(strict) < area(base)
    big_min = propose_compartments(image, min_area_um2=20_000)
    assert len(big_min.of_class("tumour")) < len(base.of_class("tumour"))
    assert min(r.area_px for r in big_min.of_class("tumour")) >= 20_000
    dapi_only = propose_compartments(image, tissue_channels=["DAPI"])
    assert dapi_only.settings["tissue_channels"] == ["DAPI"]


def test_bad_input(small_slide):
    _, image = small_slide
    no_px = MultiplexImage(image.levels, image.channel_names, pixel_size_um=None)
    with pytest.raises(RoiScoreError, match="pixel size"):
        propose_compartments(no_px)
    assert propose_compartments(no_px, pixel_size_um=1.0).rois
    with pytest.raises(RoiScoreError, match="CK19"):
        propose_compartments(image, tumour_channel="CK19")
    with pytest.raises(RoiScoreError, match="sigma_um"):
        propose_compartments(image, sigma_um=float("nan"))


def test_shipped_sample_rois_fall_in_proposed_compartments():
    sample = open_sample()
    comp = propose_compartments(sample.image)
    tu = shapely.union_all([r.geometry for r in comp.of_class("tumour")])
    su = shapely.union_all([r.geometry for r in comp.of_class("stroma")])
    rois = {r.name: r.geometry for r in sample.rois}
    assert rois["004"].intersection(tu).area > 0.8 * rois["004"].area
    assert rois["007"].intersection(su).area > 0.8 * rois["007"].area
