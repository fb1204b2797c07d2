"""The shipped synthetic sample: formats, sizes, and scores that make sense."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp
import tifffile

from independent import geojson_polygons, inside, mean_z_scores, spots_xy
from napari_roiscore.spots.sample import open_sample
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import EXAMPLE_PANEL


def test_sample_total_size_below_25_mb(sample_paths):
    total = sum(p.stat().st_size for p in sample_paths["image"].parent.iterdir() if p.is_file())
    assert total <= 25e6, f"sample_images/ holds {total / 1e6:.1f} MB"


def test_ome_tiff_pyramid_metadata(sample_paths):
    with tifffile.TiffFile(sample_paths["image"]) as tif:
        assert tif.is_ome
        s = tif.series[0]
        assert s.axes == "CYX"
        assert len(s.levels) >= 3
        assert s.levels[0].shape[1] >= 4096 and s.levels[0].shape[2] >= 4096
        ome = tif.ome_metadata
    for name in ("DAPI", "panCK", "CD31", "CD68"):
        assert f'Name="{name}"' in ome
    assert 'PhysicalSizeX="1.0"' in ome


def test_spots_h5ad(sample_paths):
    a = ad.read_h5ad(sample_paths["spots"])
    assert a.n_vars >= 2000
    assert sp.issparse(a.X) and np.issubdtype(a.X.dtype, np.integer)
    sf = next(iter(a.uns["spatial"].values()))["scalefactors"]
    px = a.uns["roiscore"]["pixel_size_um"]
    assert abs(sf["spot_diameter_fullres"] * px - 55) < 1e-6
    xy = a.obsm["spatial"]
    assert xy.min() >= 0 and xy.max() <= 4096
    # hexagonal 100 µm pitch: nearest-neighbour distance is 100 µm
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    assert np.allclose(np.median(d[:, 1]) * px, 100, atol=0.5)
    for g in EXAMPLE_PANEL.up:
        assert g in a.var_names


def test_open_sample_layers_of_core(sample_paths):
    s = open_sample(sample_paths["image"].parent)
    assert s.image.channel_names == ["DAPI", "panCK", "CD31", "CD68"]
    assert s.image.roles == ["nuclei", "cancer cells", "vessels", "macrophages"]
    assert s.image.pixel_size_um == 1.0
    assert [(r.name, r.roi_class) for r in s.rois] == [("004", "tumour"), ("007", "stroma")]


def test_roi_scores_equal_independent_computation(sample_paths):
    s = open_sample(sample_paths["image"].parent)
    scorer = RoiScorer(s.spots)
    table = scorer.table(s.rois, scorer.spot_scores(EXAMPLE_PANEL, "mean_z"))
    ref_spot = mean_z_scores(sample_paths["spots"], list(EXAMPLE_PANEL.up))
    xy = spots_xy(sample_paths["spots"])
    polys = geojson_polygons(sample_paths["rois"])
    for row in table.itertuples(index=False):
        cls, poly = polys[row.roi]
        m = inside(xy, poly)
        assert row.spots == m.sum() > 10
        np.testing.assert_allclose(row.score, ref_spot[m].mean(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(row.median, np.median(ref_spot[m]), rtol=0, atol=1e-9)


def test_tumour_scores_below_stroma_because_fewer_macrophages(sample_paths):
    """The example macrophage panel follows the CD68+ area under the spots."""
    s = open_sample(sample_paths["image"].parent)
    scorer = RoiScorer(s.spots)
    scores = scorer.spot_scores(EXAMPLE_PANEL, "mean_z")
    table = scorer.table(s.rois, scores).set_index("class")
    assert table.loc["tumour", "score"] < table.loc["stroma", "score"]
    frac = s.spots.adata.obs["frac_macrophage"].to_numpy()
    r = np.corrcoef(frac, scores.values)[0, 1]
    assert r > 0.5, f"spot scores should follow the CD68+ footprint (r={r:.2f})"
    for roi in s.rois:
        m = scorer.members(roi)
        mean_frac = frac[m].mean()
        if roi.roi_class == "tumour":
            tum = mean_frac
        else:
            stro = mean_frac
    assert tum < stro
