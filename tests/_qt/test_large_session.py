"""A saved session of a large slide reopens drawn as the reader draws it (raster + markers in view)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Polygon

from napari_roiscore._layer_data import SPOTS_KEY, VIEW_KEY
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.session import save_session
from napari_roiscore.spots.reading import read_spots

from gui_helpers import large_h5ad, scores_ready

pytestmark = pytest.mark.gui


def _saved_large_slide_and_a_dock(make_napari_viewer, tmp_path):
    """A saved session of a 32,000-spot slide with one ROI, and an empty viewer with the dock."""
    path = large_h5ad(tmp_path)
    spots = read_spots(path)
    roi = Roi(name="T1", roi_class="tumour", geometry=Polygon([(0, 0), (0, 8000), (8000, 8000), (8000, 0)]))
    session = save_session(tmp_path / "big.roiscore.json", spots=spots, rois=[roi],
                           signature=Signature(name="macrophage example", up=("CD68", "CD163", "STAB1")))
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    return path, spots, session, viewer, w


def test_a_large_session_reopens_as_raster_and_markers_and_scores(make_napari_viewer, qtbot, tmp_path):
    path, spots, session, viewer, w = _saved_large_slide_and_a_dock(make_napari_viewer, tmp_path)
    w.export_tab.open_session(session)
    kinds = [type(ly).__name__ for ly in viewer.layers]
    assert kinds == ["Image", "Points", "Shapes"]  # not one Points layer of 32,000 markers
    points = viewer.layers[1]
    assert SPOTS_KEY in points.metadata and VIEW_KEY in points.metadata
    from napari_roiscore._qt.spot_view import controller_of

    ctl = controller_of(viewer, points)
    assert ctl is not None
    qtbot.waitUntil(lambda: ctl.stage == "full" and scores_ready(w), timeout=60_000)
    inside = (spots.xy[:, 0] < 8000) & (spots.xy[:, 1] < 8000)
    assert int(w.last_table.loc[w.last_table["roi"] == "T1", "spots"].iloc[0]) == int(inside.sum())
    assert np.isfinite(w.last_table["score"]).all()


def test_the_open_session_button_reads_in_a_worker_and_a_changed_file_is_reported(make_napari_viewer, qtbot,
                                                                                  tmp_path, notifications):
    import threading

    path, spots, session, viewer, w = _saved_large_slide_and_a_dock(make_napari_viewer, tmp_path)
    readers = []
    real_read = w.export_tab._read_session
    w.export_tab._read_session = lambda p: (readers.append(threading.current_thread()), real_read(p))[1]
    w.export_tab.open_session_in_background(str(session))
    assert len(viewer.layers) == 0  # nothing added in the click's own turn
    qtbot.waitUntil(lambda: len(viewer.layers) == 3 and scores_ready(w), timeout=60_000)
    assert readers and readers[0] is not threading.main_thread()
    assert w.last_table["roi"].tolist() == ["T1"]
    # the spots file changed since the session was saved: said, nothing added
    with open(path, "ab") as f:
        f.write(b"\0")
    w.export_tab.open_session_in_background(str(session))
    qtbot.waitUntil(lambda: any("checksum" in str(getattr(n, "message", n)).lower()
                                or "changed" in str(getattr(n, "message", n)).lower() for n in notifications),
                    timeout=60_000)
    assert len(viewer.layers) == 3
