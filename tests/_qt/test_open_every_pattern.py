"""Every filename pattern of the manifest opens a real file through ``viewer.open(path, plugin=None)``
(what File ▸ Open passes) without naming the plugin: napari must pick napari-roiscore (or offer it in the reader
chooser) and the layers must be ours.

A pattern missing from the installed manifest sends the file to napari's built-in reader
(or to none), which is what happened to ``filtered_feature_bc_matrix.h5``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import pytest
from napari._qt.dialogs.qt_reader_dialog import QtReaderDialog, open_with_dialog_choices
from napari.errors import MultipleReaderError, ReaderPluginError
from napari.plugins._npe2 import get_readers
from npe2 import PluginManifest

from napari_roiscore.errors import RoiScoreError
from real_data import SHARED_DATA

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_images"
VISIUM_H5 = SHARED_DATA / "visium_cytassist_mouse" / "filtered_feature_bc_matrix.h5"
HAS_SPATIALDATA = importlib.util.find_spec("spatialdata") is not None
OUR_KEYS = ("roiscore_spots", "roiscore_image", "roiscore_rois", "roiscore_tissue_image")


def _manifest_patterns() -> list[str]:
    pm = PluginManifest.from_file(REPO / "napari.yaml")
    return sorted({p for r in pm.contributions.readers for p in r.filename_patterns})


def _geomx_workbook(folder: Path) -> Path:
    from test_geomx_export import _probe_counts, _segments, _target_counts, _write_workbook

    seg = _segments()
    targets = _target_counts(_probe_counts(seg), seg["SegmentDisplayName"].tolist())
    props = pd.DataFrame({"TargetName": targets["TargetName"], "CodeClass": "Endogenous"})
    return _write_workbook(folder / "Initial Dataset.xlsx", {
        "SegmentProperties": seg, "TargetProperties": props, "TargetCountMatrix": targets})


def _spatialdata_store(folder: Path) -> Path:
    import zarr

    root = zarr.open_group(str(folder / "sample.zarr"), mode="w")
    for g in ("tables", "shapes"):
        root.create_group(g)
    return folder / "sample.zarr"


def _fixture(pattern: str, tmp_path: Path) -> Path:
    """A real file whose name matches ``pattern``."""
    if pattern == "*.h5ad":
        return SAMPLES / "sample_spots.h5ad"
    if pattern == "*.geojson":
        return SAMPLES / "sample_rois.geojson"
    if pattern in ("*.ome.tif", "*.ome.tiff", "*.qptiff", "*.tif", "*.tiff"):
        dst = tmp_path / ("slide" + pattern[1:])  # the shipped OME-TIFF under each ending
        shutil.copyfile(SAMPLES / "sample_slide.ome.tif", dst)
        return dst
    if pattern == "*.h5":
        if not VISIUM_H5.is_file():
            pytest.skip(f"real Visium data not found at {VISIUM_H5} (only present next to the CI checkout)")
        return VISIUM_H5
    if pattern == "*.xlsx":
        return _geomx_workbook(tmp_path)
    if pattern == "*.zarr":
        return _spatialdata_store(tmp_path)
    raise AssertionError(f"no test fixture for the manifest pattern {pattern!r}: add one here")


@pytest.mark.parametrize("pattern", _manifest_patterns())
def test_every_manifest_pattern_opens_with_our_reader(pattern, make_napari_viewer, tmp_path):
    path = _fixture(pattern, tmp_path)
    viewer = make_napari_viewer()
    readers = get_readers(str(path))  # what the reader chooser offers
    assert "napari-roiscore" in readers, f"{path.name}: napari offers only {readers}"
    if pattern == "*.zarr" and not HAS_SPATIALDATA:
        # our reader takes the store and says how to install the optional extra
        with pytest.raises((ReaderPluginError, RoiScoreError)) as err:
            _open_as_file_open_does(viewer, path, readers)
        ours = err.value if isinstance(err.value, RoiScoreError) else err.value.__cause__
        assert isinstance(ours, RoiScoreError)
        assert "napari-roiscore[spatialdata]" in str(ours)
        return
    layers = _open_as_file_open_does(viewer, path, readers)
    assert layers, f"{path.name}: no layer opened"
    for layer in layers:
        assert any(k in layer.metadata for k in OUR_KEYS), \
            f"{path.name}: layer {layer.name!r} was not made by napari-roiscore"
    if pattern == "*.h5":  # one file of a Space Ranger output opens the whole output
        kinds = sorted(type(layer).__name__ for layer in layers)
        assert kinds == ["Image", "Points"], kinds
        spots = next(layer for layer in layers if "roiscore_spots" in layer.metadata)
        assert len(spots.data) == spots.metadata["roiscore_spots"].adata.n_obs > 0


def _open_as_file_open_does(viewer, path: Path, readers: dict[str, str]) -> list:
    """``viewer.open`` without a plugin (plugin=None is what File ▸ Open and drag-and-drop
    pass; viewer.open itself defaults to 'napari'); the reader chooser when several claim it."""
    try:
        return viewer.open(str(path), plugin=None)
    except MultipleReaderError:
        return _open_through_the_chooser(viewer, path, readers)


def _open_through_the_chooser(viewer, path: Path, readers: dict[str, str]) -> list:
    """Do what a user does in napari's 'Choose reader' dialog: tick our reader, press OK."""
    dialog = QtReaderDialog(pth=str(path), readers=readers)
    ours = [b for b in dialog._reader_buttons or dialog.reader_btn_group.buttons()
            if b.text() == readers["napari-roiscore"]]
    assert len(ours) == 1, f"the chooser does not list {readers['napari-roiscore']!r}"
    ours[0].setChecked(True)
    before = len(viewer.layers)
    open_with_dialog_choices(dialog._get_plugin_choice(), False, dialog._extension, readers,
                             [str(path)], False, viewer.window._qt_viewer)
    dialog.deleteLater()
    return list(viewer.layers)[before:]
