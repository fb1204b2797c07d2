from __future__ import annotations

import numpy as np

from napari_roiscore.images.multiplex import read_multiplex_tiff
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.spots.table import read_h5ad_spots
from napari_roiscore.spots.synthetic import make_slide, write_slide


def test_generator_is_seeded_and_reproducible():
    a = make_slide(size=512, n_genes=120, seed=3)
    b = make_slide(size=512, n_genes=120, seed=3)
    c = make_slide(size=512, n_genes=120, seed=4)
    assert np.array_equal(a.image, b.image)
    assert (a.counts != b.counts).nnz == 0
    assert not np.array_equal(a.image, c.image)


def test_write_and_read_back_small_slide(tmp_path):
    slide = make_slide(size=768, n_genes=150, seed=1)
    paths = write_slide(slide, tmp_path, stem="s", levels=3)
    img = read_multiplex_tiff(paths["image"])
    assert img.channel_names == ["DAPI", "panCK", "CD31", "CD68"]
    assert [lvl.shape for lvl in img.levels] == [(4, 768, 768), (4, 384, 384), (4, 192, 192)]
    np.testing.assert_array_equal(np.asarray(img.levels[0][:, :64, :64]), slide.image[:, :64, :64])
    spots = read_h5ad_spots(paths["spots"])
    assert spots.n_spots == len(slide.spots_xy)
    assert spots.diameter_px == 55.0
    rois = read_geojson(paths["rois"])
    assert {r.roi_class for r in rois} == {"tumour", "stroma"}


def test_macrophage_genes_follow_cd68_area():
    slide = make_slide(size=1024, n_genes=200, seed=5)
    X = slide.counts.toarray().astype(float)
    lib = X.sum(1, keepdims=True)
    cd68 = np.log1p(X[:, slide.genes.index("CD68")] / lib[:, 0] * 1e4)
    r = np.corrcoef(cd68, slide.composition["macrophage"])[0, 1]
    assert r > 0.3
