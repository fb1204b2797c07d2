"""SpatialData both ways: a store written by spatialdata-io from the real Visium run, ROIs
and scores written into it, read back by spatialdata itself and by the plugin.

Needs the optional extra (``pip install "napari-roiscore[spatialdata]" spatialdata-io``);
skipped when spatialdata or spatialdata-io is not importable.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi

HAS_SPATIALDATA = importlib.util.find_spec("spatialdata") is not None


@pytest.mark.skipif(HAS_SPATIALDATA, reason="spatialdata is installed: the missing-package message cannot show")
def test_writing_without_spatialdata_says_how_to_install_it(tmp_path):
    from napari_roiscore.readers.spatialdata_rois import write_rois_to_spatialdata

    with pytest.raises(RoiScoreError, match=r"napari-roiscore\[spatialdata\]"):
        write_rois_to_spatialdata(tmp_path / "x.zarr", [Roi("T1", "tumour", box(0, 0, 5, 5))])


def _rois(xy: np.ndarray) -> list[Roi]:
    """Four ROIs over the spots: halves, one with a hole, one of two parts."""
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = x1 - x0, y1 - y0
    ring = Polygon(box(xm - w / 4, ym - h / 4, xm + w / 4, ym + h / 4).exterior.coords,
                   [box(xm - w / 10, ym - h / 10, xm + w / 10, ym + h / 10).exterior.coords[::-1]])
    parts = MultiPolygon([box(x0, y0, x0 + w / 6, y0 + h / 6), box(x1 - w / 6, y1 - h / 6, x1, y1)])
    return [Roi("004", "tumour", box(x0, y0, xm, y1)), Roi("007", "stroma", box(xm, y0, x1, y1)),
            Roi("ring", "tumour", ring), Roi("corners", "stroma", parts)]


def test_roundtrip_with_a_store_written_by_spatialdata_io(shared_data, tmp_path):
    sd = pytest.importorskip("spatialdata")
    sdio = pytest.importorskip("spatialdata_io")
    from spatialdata.transformations import get_transformation

    from napari_roiscore.readers.spatialdata_rois import read_rois_from_spatialdata, write_rois_to_spatialdata
    from napari_roiscore.readers.spatialdata_store import read_spatialdata, read_spatialdata_image, store_elements
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.signature import Signature

    store = tmp_path / "placenta.zarr"
    sdio.visium(shared_data / "visium_cytassist_mouse", dataset_id="Placenta_S3").write(store)
    spots = read_spatialdata(store)
    assert spots.n_spots == 2898
    rois = _rois(spots.xy)
    scorer = RoiScorer(spots)
    table = scorer.table(rois, scorer.spot_scores(Signature("macrophage", ["Cd68", "Cd163", "Mrc1", "Stab1"]),
                                                  "mean_z"))
    assert table["score"].notna().all()
    write_rois_to_spatialdata(store, rois, table)

    # spatialdata itself sees a shapes element annotated by a table (what napari-spatialdata shows)
    sdata = sd.read_zarr(store)
    shapes = sdata.shapes["roiscore_rois"]
    t = sdata.tables["roiscore_rois_table"]
    assert t.uns["spatialdata_attrs"]["region"] == "roiscore_rois"
    assert list(t.obs["name"]) == [r.name for r in rois] and list(shapes["class"]) == [r.roi_class for r in rois]
    # the ROIs take the spots' transformations, so they line up with spots and image in every coordinate system
    spot_shapes = spots.provenance["region"]
    assert get_transformation(shapes, get_all=True).keys() == get_transformation(sdata.shapes[spot_shapes],
                                                                                  get_all=True).keys()
    # the spots and the rest of the store are untouched
    assert read_spatialdata(store).n_spots == 2898

    # and the plugin reads back every name, class, outline and score
    back, obs = read_rois_from_spatialdata(store)
    assert [(r.name, r.roi_class) for r in back] == [(r.name, r.roi_class) for r in rois]
    for a, b in zip(rois, back):
        assert a.geometry.equals_exact(b.geometry, 0.0), a.name
    np.testing.assert_allclose(obs["score"].to_numpy(float), table["score"].to_numpy(float))
    assert list(obs["spots"].astype(int)) == list(table["spots"])

    # writing again replaces the element (e.g. after editing ROIs)
    write_rois_to_spatialdata(store, rois[:2], table.iloc[:2])
    assert [r.name for r in read_rois_from_spatialdata(store)[0]] == ["004", "007"]

    # images come with their transformation: the low-res H&E maps back onto full-resolution pixels
    images = store_elements(store)["images"]
    assert images
    image = read_spatialdata_image(store, images[0])
    affine = np.asarray(image.provenance["affine"])
    lowres = image.shape_yx
    assert affine[0, 0] > 1 and np.isclose(affine[0, 0], affine[1, 1])
    assert lowres[0] * affine[0, 0] > spots.xy[:, 1].max()

    # the napari reader shows image (placed by its affine), spots and the ROIs written here
    from napari_roiscore._reader import read_paths

    layers = {kw["name"]: (kind, kw) for _, kw, kind in read_paths(str(store))}
    assert layers["placenta ROIs"][0] == "shapes" and layers["placenta spots"][0] == "points"
    img_layers = [kw for kind, kw in layers.values() if kind == "image"]
    assert img_layers and np.allclose(img_layers[0]["affine"], affine)


def test_multiscale_image_and_points_with_transformations(tmp_path):
    sd = pytest.importorskip("spatialdata")
    import pandas as pd
    from spatialdata.models import Image2DModel, PointsModel
    from spatialdata.transformations import Scale

    from napari_roiscore.readers.spatialdata_store import read_spatialdata_image, read_spatialdata_points

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 50, (2, 64, 64), dtype=np.uint16)
    image = Image2DModel.parse(pixels, dims=("c", "y", "x"), c_coords=["DAPI", "CD68"], scale_factors=[2],
                               transformations={"global": Scale([2.0, 2.0], axes=("y", "x"))})
    points = PointsModel.parse(pd.DataFrame({"x": [1.0, 5.0], "y": [2.0, 7.0], "gene": ["Cd68", "Stab1"]}),
                               transformations={"global": Scale([0.5, 0.5], axes=("y", "x"))})
    store = tmp_path / "small.zarr"
    sd.SpatialData(images={"slide": image}, points={"transcripts": points}).write(store)
    img = read_spatialdata_image(store)
    assert img.channel_names == ["DAPI", "CD68"] and img.roles == ["nuclei", "macrophages"]
    assert [lv.shape for lv in img.levels] == [(2, 64, 64), (2, 32, 32)]
    np.testing.assert_array_equal(np.asarray(img.levels[0]), pixels)
    np.testing.assert_allclose(np.diag(img.provenance["affine"]), [2.0, 2.0, 1.0])
    df, affine = read_spatialdata_points(store)
    assert list(df["gene"]) == ["Cd68", "Stab1"] and list(df["x"]) == [1.0, 5.0]
    np.testing.assert_allclose(np.diag(affine), [0.5, 0.5, 1.0])


def test_bad_rois_are_refused(tmp_path):
    pytest.importorskip("spatialdata")
    from napari_roiscore.readers.spatialdata_rois import write_rois_to_spatialdata

    with pytest.raises(RoiScoreError, match="no ROIs"):
        write_rois_to_spatialdata(tmp_path / "a.zarr", [])
    with pytest.raises(RoiScoreError, match="share a name"):
        write_rois_to_spatialdata(tmp_path / "a.zarr", [Roi("A", "tumour", box(0, 0, 1, 1))] * 2)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RoiScoreError, match="not a SpatialData store"):
        write_rois_to_spatialdata(tmp_path / "plain", [Roi("A", "tumour", box(0, 0, 1, 1))])
