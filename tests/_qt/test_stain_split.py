"""Brightfield: an RGB IHC image split into haematoxylin / eosin / DAB feeds the Markers tab."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata
from skimage.color import rgb2hed

from napari_roiscore._layer_data import IMAGE_KEY, spots_layer
from napari_roiscore.spots.sample import open_sample

pytestmark = pytest.mark.gui


def test_split_ihc_into_stains_and_restrict_by_dab(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    spots = open_sample().spots
    data, kw, _ = spots_layer(spots)
    viewer.add_points(data, **kw)
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: w.state.scores is not None, timeout=60_000)
    m = w.markers_tab
    # nothing applies yet: controls off, with the reason shown
    assert not m.stains.split_button.enabled and "no RGB" in m.stains.reason.value
    assert not m.marker_channel_combo.enabled and "no marker channel" in m.no_channel_note.value
    ihc = skdata.immunohistochemistry()  # a real CD-stained IHC field (DAB brown)
    rgb = viewer.add_image(np.tile(ihc, (4, 4, 1)), rgb=True, name="IHC", scale=viewer.layers[0].scale)
    assert m.stains.split_button.enabled and m.stains.reason.value == ""
    m.stains.split_button.clicked.emit()
    names = [ly.name for ly in viewer.layers]
    assert "DAB of IHC (macrophages)" in names and "haematoxylin of IHC (nuclei)" in names
    dab = viewer.layers["DAB of IHC (macrophages)"]
    assert IMAGE_KEY in dab.metadata and dab.data.shape == rgb.data.shape[:2]
    # the DAB channel is rgb2hed's third component (scaled to 0..1)
    ref = np.clip(rgb2hed(np.tile(ihc, (4, 4, 1)))[..., 2], 0, None)
    ref = np.clip(ref / np.percentile(ref, 99.9), 0, 1)
    np.testing.assert_allclose(np.asarray(dab.data), ref, atol=1e-5)
    assert m.marker_channel_combo.enabled and m.no_channel_note.value == ""
    m.marker_channel_combo.value = dab
    m.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None, timeout=60_000)
    assert "DAB" in w.state.marker_label
