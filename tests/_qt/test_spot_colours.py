"""Spot colouring in a real viewer: by score, gene, ROI; limits that follow the values."""

from __future__ import annotations

import numpy as np
import pytest

from gui_helpers import scores_ready
from napari_roiscore.spots.colour_scale import colour_limits

pytestmark = pytest.mark.gui

EPITHELIAL = "EPCAM, KRT8, KRT18, KRT19, CDH1"


def _open(make_napari_viewer, qtbot, show=False):
    viewer = make_napari_viewer(show=show)
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w) and w.spot_colours.scale is not None, timeout=60_000)
    return viewer, w


def _rescore(w, qtbot, genes=None, method=None):
    old = w.state.scores
    if genes is not None:
        w.form.signature_edit.value = genes
    if method is not None:
        w.form.method_combo.value = method
    qtbot.waitUntil(lambda: w.state.scores is not None and w.state.scores is not old, timeout=60_000)
    qtbot.waitUntil(lambda: scores_ready(w), timeout=60_000)


def _spot_colour_entropy(viewer) -> float:
    """Entropy (bits) of the quantised colours of the spot pixels on the canvas, spots alone."""
    for ly in viewer.layers:
        ly.visible = ly.name == "spots"
    viewer.canvas.overlays.text.visible = False
    viewer.layers["spots"].face_colorbar.visible = False
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    px = shot.reshape(-1, 3)
    px = px[px.sum(axis=1) > 30]  # spot pixels (the canvas is black)
    assert len(px) > 1000
    q = (px // 32) @ np.array([64, 8, 1])
    p = np.bincount(q) / len(q)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_limits_follow_new_signature_and_method(make_napari_viewer, qtbot):
    viewer, w = _open(make_napari_viewer, qtbot)
    layer = viewer.layers["spots"]
    first = tuple(layer.face_contrast_limits)
    assert first == pytest.approx(colour_limits(w.state.scores.values, centred=True))
    assert first[0] == pytest.approx(-first[1])  # mean z: symmetric around 0
    _rescore(w, qtbot, genes=EPITHELIAL, method="ucell")
    vals = w.state.scores.values
    lo, hi = layer.face_contrast_limits
    assert (lo, hi) == pytest.approx(colour_limits(vals, centred=False))
    assert 0 <= lo < hi <= 1  # UCell lives in 0..1, not in the previous z limits
    assert np.allclose(layer.features["score"], vals)
    assert w.spot_colours.low.value == pytest.approx(lo, abs=1e-3)
    assert "ucell" in viewer.canvas.overlays.text.text
    # editable: a hand-set limit is used until the values change
    w.spot_colours.set_limits(0.1, 0.3)
    assert tuple(layer.face_contrast_limits) == pytest.approx((0.1, 0.3))


def test_colour_spread_after_new_signature_at_least_fresh(make_napari_viewer, qtbot):
    fresh, fw = _open(make_napari_viewer, qtbot, show=True)
    fresh_entropy = _spot_colour_entropy(fresh)
    first_limits = tuple(fw.state.spots_layer.face_contrast_limits)
    fresh.close()
    viewer, w = _open(make_napari_viewer, qtbot, show=True)
    _rescore(w, qtbot, genes=EPITHELIAL)
    changed = _spot_colour_entropy(viewer)
    assert changed >= fresh_entropy * 0.95, (changed, fresh_entropy)
    # a new method (UCell, 0..1): limits follow; the first score's limits paint it one colour
    _rescore(w, qtbot, method="ucell")
    ucell = _spot_colour_entropy(viewer)
    w.state.spots_layer.face_contrast_limits = first_limits  # what the old, kept limits did
    stale = _spot_colour_entropy(viewer)
    assert stale < ucell * 0.9, (stale, ucell)


def test_colour_by_gene_with_completion_and_by_roi(make_napari_viewer, qtbot):
    viewer, w = _open(make_napari_viewer, qtbot)
    layer = viewer.layers["spots"]
    sc = w.spot_colours
    assert "CD68" in sc._completer.model().stringList()
    sc.gene_edit.value = "cd68"  # case-insensitive, as signatures match
    sc.gene_edit.native.editingFinished.emit()
    assert sc.by_combo.value == "gene"
    col = "CD68 (log1p per 10k)"
    assert col in layer.features and "CD68 counts" in layer.features
    spots = layer.metadata["roiscore_spots"]
    j = spots.gene_names.index("CD68")
    raw = np.asarray(spots.counts[:, j].toarray()).ravel()
    tot = np.asarray(spots.counts.sum(axis=1)).ravel()
    np.testing.assert_allclose(layer.features["CD68 counts"], raw)
    np.testing.assert_allclose(layer.features[col], np.log1p(raw / (tot / 1e4)))
    assert "CD68" in viewer.canvas.overlays.text.text and "counts per 10k" in viewer.canvas.overlays.text.text
    assert layer.face_colorbar.visible
    # another gene replaces the first one's columns
    sc.gene_edit.value = "EPCAM"
    sc.gene_edit.native.editingFinished.emit()
    assert "CD68 counts" not in layer.features and "EPCAM counts" in layer.features
    # by ROI: spots inside an ROI take its class colour, others grey
    sc.by_combo.value = "ROI"
    names = layer.features["ROI"].astype(str)
    inside = names.str.len() > 0
    assert inside.any() and (~inside).any()
    fc = np.asarray(layer.face_color)
    assert not np.allclose(fc[inside.to_numpy()][0], fc[(~inside).to_numpy()][0])
    assert not layer.face_colorbar.visible
    assert "tumour" in sc.legend.value and "stroma" in sc.legend.value
    sc.by_combo.value = "none"
    assert np.allclose(np.asarray(layer.face_color)[:, 3], 0)


def test_unknown_gene_is_a_message_not_a_crash(make_napari_viewer, qtbot):
    viewer, w = _open(make_napari_viewer, qtbot)
    w.spot_colours.gene_edit.value = "NOT_A_GENE"
    w.spot_colours.gene_edit.native.editingFinished.emit()
    assert "No gene called 'NOT_A_GENE'" in w.form.status.value
