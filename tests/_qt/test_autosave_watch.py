"""A crashed napari's ROIs are offered when the slide opens again, and restored into the layer."""

from __future__ import annotations

import os

import pytest
from autosave_helpers import crashed_session
from gui_helpers import scores_ready
from shapely.geometry import Polygon

from napari_roiscore.rois.autosave import sidecar_path
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.rois.roi import Roi
from napari_roiscore.spots.sample import SAMPLE_DIR

pytestmark = pytest.mark.gui


def _outline_matches(a, b) -> bool:
    return a.symmetric_difference(b).area < 1e-6 * max(a.area, b.area)


def test_a_crashed_sessions_rois_are_offered_and_restored(make_napari_viewer, qtbot, tmp_path):
    data = SAMPLE_DIR / "sample_spots.h5ad"
    assert os.environ["NAPARI_ROISCORE_AUTOSAVE_DIR"] == str(tmp_path / "autosave")  # never beside the sample
    sample = {r.name: r for r in read_geojson(SAMPLE_DIR / "sample_rois.geojson")}
    redrawn = Roi("004", "tumour", Polygon([(2000, 2000), (2400, 2000), (2400, 2400), (2000, 2400)]))
    new = Roi("crash 1", "immune", Polygon([(2600, 2600), (2900, 2600), (2900, 2900)]))
    crashed = crashed_session(data, [redrawn, sample["007"], new], classes=["tumour", "stroma", "immune"])
    side = crashed["path"]
    assert side.parent == sidecar_path(data).parent and side.is_file()

    viewer = make_napari_viewer()
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w), timeout=60_000)

    offer = w.autosave.offer
    assert offer is not None, "the crashed session's ROIs are offered"
    assert sorted(r.name for r in offer.rois) == ["004 (recovered)", "crash 1"], \
        "the copy of 007 already on screen is not offered again; 004's name is taken"
    assert not w.autosave.restore_button.native.isHidden()
    assert "Restore 2 autosaved ROI(s)" in w.autosave.restore_button.text
    assert not side.exists()
    assert [p.name for p in side.parent.iterdir() if p.name.startswith(side.name + ".merged-")], \
        "the crashed session's file is set aside, not deleted"

    w.autosave.restore()
    qtbot.waitUntil(lambda: len(w.last_table) == 4, timeout=10_000)
    got = {r.name: r for r in w.current_rois()}
    assert set(got) == {"004", "007", "004 (recovered)", "crash 1"}
    assert _outline_matches(got["004"].geometry, sample["004"].geometry), "the slide's own 004 is untouched"
    assert _outline_matches(got["004 (recovered)"].geometry, redrawn.geometry)
    assert got["crash 1"].roi_class == "immune" and "immune" in w.state.classes
    assert w.autosave.restore_button.native.isHidden()
    saved = w.autosave.save_now()
    assert saved is not None and "crash 1" in saved.read_text(), "the restored ROIs are autosaved again"


def test_rois_opened_after_the_spots_settle_the_crashed_offer(make_napari_viewer, qtbot):
    data = SAMPLE_DIR / "sample_spots.h5ad"
    sample = {r.name: r for r in read_geojson(SAMPLE_DIR / "sample_rois.geojson")}
    redrawn = Roi("004", "tumour", Polygon([(2000, 2000), (2400, 2000), (2400, 2400), (2000, 2400)]))
    crashed_session(data, [redrawn, sample["007"]])

    viewer = make_napari_viewer()
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    viewer.layers.remove("ROIs")  # the spots open without ROIs: nothing on screen to compare with
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: w.autosave.offer is not None, timeout=30_000)
    assert sorted(r.name for r in w.autosave.offer.rois) == ["004", "007"]

    opened = viewer.open(str(SAMPLE_DIR / "sample_rois.geojson"), plugin="napari-roiscore")  # ROIs come later
    w.form.rois_combo.value = opened[0]  # the dock gave the spots an empty ROI layer meanwhile: pick the file's
    qtbot.waitUntil(lambda: len(w.last_table) == 2, timeout=30_000)
    assert [r.name for r in w.autosave.offer.rois] == ["004 (recovered)"], \
        "the crashed 007 is on screen now; its 004 no longer takes the file's 004"
    assert "Restore 1 autosaved ROI(s)" in w.autosave.restore_button.text
    w.autosave.restore()
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=10_000)
    got = {r.name: r for r in w.current_rois()}
    assert set(got) == {"004", "007", "004 (recovered)"}
    assert _outline_matches(got["004"].geometry, sample["004"].geometry)
    assert _outline_matches(got["004 (recovered)"].geometry, redrawn.geometry)
