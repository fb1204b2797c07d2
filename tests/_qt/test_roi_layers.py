"""ROI layers look like ROIs: a user-made Shapes layer once chosen, a new one, one made for bare spots."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Shapes

from gui_helpers import scores_ready
from napari_roiscore._layer_data import spots_layer
from napari_roiscore.rois.classes import class_colour_rgba
from napari_roiscore.spots.sample import open_sample

pytestmark = pytest.mark.gui


def _class_pixels(shot: np.ndarray, cls: str, tol: int = 40) -> int:
    want = np.array(class_colour_rgba(cls)[:3]) * 255
    return int((np.abs(shot[..., :3].astype(int) - want).max(axis=-1) < tol).sum())


def test_user_shapes_layer_gets_roi_style_and_class_coloured_edges(sample_viewer, qtbot):
    viewer, w = sample_viewer
    viewer.window._qt_window.show()
    for ly in viewer.layers:
        ly.visible = False
    # a Shapes layer as napari's "new shapes layer" button makes it: white fill, thin edges, no features
    tumour = np.array(viewer.layers["ROIs"].data[0])
    user = viewer.add_shapes([tumour], shape_type="polygon", name="my drawing",
                             scale=viewer.layers["ROIs"].scale)
    assert np.allclose(user.face_color[0], [1, 1, 1, 1])
    viewer.reset_view()
    before = viewer.screenshot(canvas_only=True, flash=False)
    assert _class_pixels(before, "stroma") == 0  # napari's default look: no class colour
    w.form.rois_combo.value = user
    w.scores_tab.set_roi_class(str(user.features["name"][0]), "stroma")
    qtbot.waitUntil(lambda: scores_ready(w), timeout=30_000)
    assert np.allclose(np.asarray(user.face_color)[:, 3], 0)  # the tissue shows through
    np.testing.assert_allclose(user.edge_color[0], class_colour_rgba("stroma"))
    assert user.text.string.format == "{name} {class}"
    np.testing.assert_allclose(user.text.color._values[0], class_colour_rgba("stroma"))
    assert user.edge_width[0] >= 5
    after = viewer.screenshot(canvas_only=True, flash=False)
    assert _class_pixels(after, "stroma") > 200
    # zoomed out a lot, the edges still show
    viewer.camera.zoom /= 4
    assert _class_pixels(viewer.screenshot(canvas_only=True, flash=False), "stroma") > 20


def test_new_roi_layer_button_and_bare_spots_get_an_empty_roi_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    data, kw, _ = spots_layer(open_sample().spots)
    viewer.add_points(data, **kw)
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: w.form.rois_combo.value is not None, timeout=10_000)
    made = w.form.rois_combo.value
    assert isinstance(made, Shapes) and len(made.data) == 0
    assert made.metadata.get("roiscore_roi_style")
    assert np.allclose(made.scale, viewer.layers[0].scale)
    assert made.current_edge_width > 2
    w.form.new_roi_layer_button.clicked.emit()
    second = w.form.rois_combo.value
    assert second is not made and isinstance(second, Shapes)
    # a shape drawn on it gets the class colour and a name
    second.add([np.array([[100, 100], [100, 900], [900, 900], [900, 100]])], shape_type="polygon")
    w.live.flush()
    qtbot.waitUntil(lambda: len(w.state.rois) == 1, timeout=10_000)
    assert str(second.features["name"][0]) == "001"
    np.testing.assert_allclose(second.edge_color[0], class_colour_rgba(w.form.class_combo.value))
