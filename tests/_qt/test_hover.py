"""Hovering a spot: napari's status bar shows its barcode, score, coloured gene and ROI(s)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_status_of_a_spot_in_an_roi(sample_viewer, qtbot):
    viewer, w = sample_viewer
    layer = viewer.layers["spots"]
    sc = w.spot_colours
    sc.gene_edit.value = "CD68"
    sc.gene_edit.native.editingFinished.emit()
    qtbot.waitUntil(lambda: "ROI" in layer.features and (layer.features["ROI"] != "").any(), timeout=10_000)
    feats = layer.features
    i = int(np.flatnonzero(feats["ROI"].to_numpy() != "")[0])
    pos = layer.data_to_world(layer.data[i])
    viewer.cursor.position = tuple(pos)
    status = layer.get_status(tuple(pos), world=True)
    text = status["coordinates"] if isinstance(status, dict) else str(status)
    assert str(feats["barcode"][i]) in text
    assert f"ROI: {feats['ROI'][i]}" in text
    assert "score: " in text and "CD68 (log1p per 10k): " in text and "CD68 counts: " in text
    # ROI membership follows an edit
    rois = viewer.layers["ROIs"]
    rois.data = [d + 5000 for d in rois.data]
    w.live.flush()
    qtbot.waitUntil(lambda: (layer.features["ROI"] == "").all(), timeout=10_000)
