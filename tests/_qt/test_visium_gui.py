"""The real Visium CytAssist folder in the dock: one-step open, gene notice, session keeps the image."""

from __future__ import annotations


import numpy as np
import pytest
from napari.layers import Image, Shapes

from gui_helpers import scores_ready
from real_data import real_data

pytestmark = pytest.mark.gui



def test_visium_open_notice_rois_session_restores_image(make_napari_viewer, qtbot, tmp_path):
    folder = real_data("visium_cytassist_mouse")
    viewer = make_napari_viewer()
    viewer.open(str(folder), plugin="napari-roiscore")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: w.state.scores is not None, timeout=120_000)
    assert any(isinstance(ly, Image) and ly.rgb for ly in viewer.layers)
    # the example panel is human macrophage genes: on mouse data some have no counts, and the status says so
    status = w.form.status.value
    assert w.state.scores.no_counts and "no counts in any spot" in status
    assert ", ".join(w.state.scores.no_counts[:1]) in status
    # an empty, styled ROI layer is ready to draw on
    rois = w.state.roi_layer
    assert isinstance(rois, Shapes) and len(rois.data) == 0 and rois.metadata.get("roiscore_roi_style")
    spots = w.state.spots_layer
    yx = np.asarray(spots.data)
    c = np.median(yx, axis=0)
    r = 0.15 * (yx.max(0) - yx.min(0))
    for dx, cls in ((-1, "tumour"), (1, "stroma")):
        w.form.class_combo.value = cls
        centre = c + [0, dx * 1.2 * r[1]]
        rois.add([np.array([centre - r, centre + [-r[0], r[1]], centre + r, centre + [r[0], -r[1]]])],
                 shape_type="polygon")
        w.live.flush()
    qtbot.waitUntil(lambda: len(w.last_table) == 2 and scores_ready(w), timeout=30_000)
    assert (w.last_table["spots"] > 10).all()
    out = w.export_tab.save_session(tmp_path / "visium.roiscore.json")
    for ly in list(viewer.layers):
        viewer.layers.remove(ly)
    w.export_tab.open_session(out)
    assert any(isinstance(ly, Image) and ly.rgb for ly in viewer.layers), [ly.name for ly in viewer.layers]
    qtbot.waitUntil(lambda: len(w.last_table) == 2 and scores_ready(w), timeout=60_000)
