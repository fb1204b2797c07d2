"""SpatialData .zarr stores: recognised with zarr alone; reading needs the optional extra."""

from __future__ import annotations

import importlib.util

import pytest
import zarr

from napari_roiscore._reader import folder_kind, get_reader, read_paths
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.spatialdata_store import is_spatialdata_store, read_spatialdata

HAS_SPATIALDATA = importlib.util.find_spec("spatialdata") is not None


def _store(path, groups=("tables", "shapes")):
    root = zarr.open_group(str(path), mode="w")
    for g in groups:
        root.create_group(g)
    return path


def test_a_zarr_group_with_spatialdata_groups_is_a_store(tmp_path):
    assert is_spatialdata_store(_store(tmp_path / "sample.zarr"))
    assert is_spatialdata_store(_store(tmp_path / "points_only.zarr", groups=("points",)))
    assert folder_kind(tmp_path / "sample.zarr") == "spatialdata"
    assert get_reader(str(tmp_path / "sample.zarr")) is not None


def test_other_folders_are_not_stores(tmp_path):
    assert not is_spatialdata_store(_store(tmp_path / "plain.zarr", groups=("labels_of_mine", "x")))
    (tmp_path / "not_zarr").mkdir()
    (tmp_path / "not_zarr" / "tables").mkdir()
    assert not is_spatialdata_store(tmp_path / "not_zarr")
    assert not is_spatialdata_store(tmp_path / "missing.zarr")
    (tmp_path / "broken.zarr").mkdir()
    (tmp_path / "broken.zarr" / "zarr.json").write_text("{not json")
    assert not is_spatialdata_store(tmp_path / "broken.zarr")
    assert folder_kind(tmp_path / "plain.zarr") is None


@pytest.mark.skipif(HAS_SPATIALDATA, reason="spatialdata is installed: the missing-package message cannot show")
def test_missing_spatialdata_says_how_to_install_it(tmp_path):
    store = _store(tmp_path / "sample.zarr")
    with pytest.raises(RoiScoreError, match=r"napari-roiscore\[spatialdata\]") as err:
        read_spatialdata(store)
    assert "'spatialdata'" in str(err.value) and "not installed" in str(err.value)
    with pytest.raises(RoiScoreError, match=r"napari-roiscore\[spatialdata\]"):
        read_paths(str(store))


def test_a_missing_store_is_named(tmp_path):
    with pytest.raises(RoiScoreError, match="missing.zarr"):
        read_spatialdata(tmp_path / "missing.zarr")


@pytest.mark.skipif(not HAS_SPATIALDATA, reason="optional extra 'spatialdata' not installed")
def test_store_written_by_spatialdata_gives_spots_at_their_circles(tmp_path):
    import anndata as ad
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely
    import spatialdata as sd
    from spatialdata.models import ShapesModel, TableModel

    rng = np.random.default_rng(0)
    n = 20
    xy = rng.uniform(0, 1000, (n, 2))
    ids = [f"s{i}" for i in range(n)]
    circles = gpd.GeoDataFrame({"radius": np.full(n, 27.5)}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
                               index=ids)
    obs = pd.DataFrame({"region": pd.Categorical(["spots"] * n), "spot_id": ids[::-1]},
                       index=[f"bc{i}" for i in range(n)])  # table rows in another order than the shapes
    table = TableModel.parse(ad.AnnData(X=rng.poisson(3, (n, 5)).astype(float), obs=obs,
                                        var=pd.DataFrame(index=list("ABCDE"))),
                             region="spots", region_key="region", instance_key="spot_id")
    sd.SpatialData(shapes={"spots": ShapesModel.parse(circles)}, tables={"table": table}).write(tmp_path / "s.zarr")
    s = read_spatialdata(tmp_path / "s.zarr")
    assert s.n_spots == n and s.diameter_px == 55.0 and s.shape == "circle"
    np.testing.assert_allclose(s.xy, xy[::-1])

    bins = gpd.GeoDataFrame(geometry=[shapely.box(x, y, x + 8, y + 8) for x, y in xy], index=ids)
    obs = pd.DataFrame({"region": pd.Categorical(["bins"] * n), "iid": ids}, index=[f"b{i}" for i in range(n)])
    table = TableModel.parse(ad.AnnData(X=np.ones((n, 3)), obs=obs), region="bins", region_key="region",
                             instance_key="iid")
    sd.SpatialData(shapes={"bins": ShapesModel.parse(bins)}, tables={"t": table}).write(tmp_path / "b.zarr")
    s = read_spatialdata(tmp_path / "b.zarr")
    assert s.shape == "square" and s.diameter_px == pytest.approx(8.0)
    np.testing.assert_allclose(s.xy, xy + 4)
