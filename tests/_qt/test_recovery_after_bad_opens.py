"""After a sequence of failed opens, the viewer still opens good files and scores (issue 12)."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from test_bad_inputs_2 import _ome, _png, _replace, _visium, _with_png

from gui_helpers import scores_ready

pytestmark = pytest.mark.gui


def _bad_paths(tmp):
    """Files and folders the plugin's reader accepts by name, each broken in another way."""
    fifo = tmp / "pipe.h5ad"
    os.mkfifo(fifo)
    yield fifo  # would block forever
    segv = _visium(tmp / "segv")
    with h5py.File(segv / "filtered_feature_bc_matrix.h5", "r+") as f:
        _replace(f["matrix"], "indices", np.array([0, 70_000, 1, 0], np.int64))
    yield segv  # sparse indices past the features (segfaulted singscore)
    yield _with_png(_visium(tmp / "png"), b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)  # corrupt tissue image
    yield _with_png(_visium(tmp / "bomb"), _png(tmp / "b.png", 60_000, 60_000, idat=b"x").read_bytes())
    yield _ome(tmp / "stack.ome.tif", np.zeros((3, 2, 32, 32), np.uint8), "ZCYX")  # a Z stack
    bom = tmp / "bad.geojson"
    bom.write_bytes(b"\xef\xbb\xbf{\"type\": \"FeatureCollection\", \"features\": 5}")
    yield bom


def test_failed_opens_leave_the_viewer_able_to_open_and_score(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    for path in _bad_paths(tmp_path):
        with pytest.raises(Exception) as info:  # noqa: PT011 - napari may wrap the RoiScoreError
            viewer.open(str(path), plugin="napari-roiscore")
        cause = info.value.__cause__ or info.value.__context__ or info.value
        assert type(cause).__name__ == "RoiScoreError" or type(info.value).__name__ == "RoiScoreError", \
            f"{path.name}: {type(info.value).__name__}: {info.value}"
        assert len(viewer.layers) == 0, f"{path.name}: a half-read layer was added"
    # a good instrument folder opens...
    good = _visium(tmp_path / "good")
    viewer.open(str(good), plugin="napari-roiscore")
    assert any(layer.name.endswith("spots") for layer in viewer.layers)
    viewer.layers.clear()
    # ...and the sample opens and scores
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(widget), timeout=60_000)
    assert widget.last_table["status"].eq("ok").any()


def test_an_ill_typed_autosave_is_kept_aside_and_autosave_goes_on(make_napari_viewer, sample_viewer, qtbot):
    """The issue's lost annotations: a sidecar whose 'classes' is a number was overwritten by the next edit."""
    import json

    from napari_roiscore.rois.autosave import sidecar_path

    viewer, w = sample_viewer
    data = w.autosave.path
    assert data is not None
    side = sidecar_path(data)
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "precious"},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [90, 0], [90, 90], [0, 0]]]}}],
           "roiscore_autosave": {"version": 1, "classes": 3}}
    content = json.dumps(doc).encode()
    viewer.close()
    side.parent.mkdir(parents=True, exist_ok=True)
    side.write_bytes(content)

    v2 = make_napari_viewer()
    v2.open_sample("napari-roiscore", "multiplex_visium")
    _, w2 = v2.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w2), timeout=60_000)
    aside = [p for p in side.parent.iterdir() if p.name.startswith(side.name + ".unreadable-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content  # kept, byte for byte
    assert w2.autosave.path is not None and "kept aside" in w2.autosave.autosave_label.value
    assert w2.autosave.save_now() == side  # autosave goes on beside the kept file
    assert aside[0].read_bytes() == content
