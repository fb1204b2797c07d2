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
