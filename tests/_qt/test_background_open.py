"""Spot data opened from the running napari window is read in a worker thread
(``_reader.read_paths`` → ``_qt/background_open.py``): the window keeps answering,
the layers are the ones a synchronous read gives, bad files end in a notification."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from napari_roiscore import _reader
from napari_roiscore._layer_data import SPOTS_KEY

from gui_helpers import large_h5ad, open_from_window
from real_data import real_data

pytestmark = pytest.mark.gui


def test_from_the_window_reading_runs_in_a_worker_while_the_gui_answers(make_napari_viewer, qtbot, tmp_path,
                                                                       monkeypatch):
    path = large_h5ad(tmp_path)
    expected = _reader.read_now([path])  # the same file read here and now
    viewer = make_napari_viewer(show=True)
    release, reader_threads = threading.Event(), []
    real_read = _reader._read_one

    def held_read(p, step=None):  # the real reader, held until the test has seen the GUI answer
        reader_threads.append(threading.current_thread())
        assert release.wait(60)
        return real_read(p, step)

    monkeypatch.setattr(_reader, "_read_one", held_read)
    assert open_from_window(viewer, path) == []  # napari's "nothing to add now"
    qtbot.waitUntil(lambda: bool(reader_threads), timeout=30_000)  # the worker imported the readers, then reads
    ticks = []
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=10_000)  # the event loop runs while the file is read
    timer.stop()
    assert len(viewer.layers) == 0 and reader_threads and reader_threads[0] is not threading.main_thread()
    release.set()
    qtbot.waitUntil(lambda: len(viewer.layers) == len(expected), timeout=60_000)
    qtbot.waitUntil(lambda: all(ly.visible for ly in viewer.layers), timeout=10_000)
    assert [(ly.name, type(ly).__name__.lower()) for ly in viewer.layers] == [
        (kw["name"], kind) for _, kw, kind in expected]
    points = next(ly for ly in viewer.layers if SPOTS_KEY in ly.metadata)
    assert points.metadata[SPOTS_KEY].n_spots == expected[-1][1]["metadata"][SPOTS_KEY].n_spots
    assert points.source.path == str(path) and points.source.reader_plugin == "napari-roiscore"
    from napari_roiscore._qt.spot_view import controller_of

    ctl = controller_of(viewer, points)
    assert ctl is not None  # the raster/markers switch follows the camera
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)


def test_a_script_before_napari_run_gets_the_layers_at_once(make_napari_viewer, tmp_path):
    path = large_h5ad(tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-roiscore")  # no event loop running: read here
    assert [type(ly).__name__ for ly in layers] == ["Image", "Points"]


def test_a_corrupt_file_from_the_window_is_a_notification_and_the_rois_stay(make_napari_viewer, qtbot, tmp_path,
                                                                           notifications):
    bad = tmp_path / "broken.h5ad"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then nothing
    viewer = make_napari_viewer(show=True)
    rois = viewer.add_shapes([np.array([[0, 0], [0, 50], [50, 50], [50, 0]])], name="ROIs")
    assert open_from_window(viewer, bad) == []
    qtbot.waitUntil(lambda: any("broken.h5ad" in str(n.message) for n in notifications), timeout=30_000)
    message = next(str(n.message) for n in notifications if "broken.h5ad" in str(n.message))
    assert "not a readable .h5ad" in message and "Fix:" in message
    assert list(viewer.layers) == [rois] and len(rois.data) == 1


def test_real_visium_from_the_window_gives_the_layers_of_a_synchronous_read(make_napari_viewer, qtbot):
    folder = real_data("visium_cytassist_mouse")
    expected = _reader.read_now([folder])
    viewer = make_napari_viewer(show=True)
    assert open_from_window(viewer, folder) == []
    qtbot.waitUntil(lambda: len(viewer.layers) == len(expected) and all(ly.visible for ly in viewer.layers),
                    timeout=60_000)
    for layer, (data, kw, kind) in zip(viewer.layers, expected):
        assert (layer.name, type(layer).__name__.lower()) == (kw["name"], kind)
        np.testing.assert_allclose(layer.scale, kw.get("scale", layer.scale))
    spots = viewer.layers[-1]
    np.testing.assert_array_equal(spots.data, expected[-1][0])  # every spot where the synchronous read put it


def test_images_and_rois_alone_stay_synchronous(make_napari_viewer):
    """An image opens lazily (and a channel folder may ask for its pixel size in a dialog,
    which only the GUI thread can show): no worker for it, its layers come at once."""
    sample = Path(__file__).resolve().parents[2] / "sample_images"
    viewer = make_napari_viewer(show=True)
    layers = open_from_window(viewer, sample / "sample_slide.ome.tif")
    assert len(layers) >= 1 and all(type(ly).__name__ == "Image" for ly in layers)
    assert open_from_window(viewer, sample / "sample_rois.geojson")  # ROIs alone: at once too


def test_spots_with_rois_beside_them_come_in_order(make_napari_viewer, qtbot):
    sample = Path(__file__).resolve().parents[2] / "sample_images"
    viewer = make_napari_viewer(show=True)
    from qtpy.QtCore import QEventLoop, QTimer

    loop, opened = QEventLoop(), []

    def go():  # two files dropped together: napari calls the reader once per file
        try:
            opened.append(viewer.open([str(sample / "sample_spots.h5ad"), str(sample / "sample_rois.geojson")],
                                      plugin="napari-roiscore", stack=False))
        finally:
            loop.quit()

    QTimer.singleShot(0, go)
    loop.exec()
    assert [type(ly).__name__ for ly in opened[0]] == ["Shapes"]  # the ROIs at once, the spots read meanwhile
    qtbot.waitUntil(lambda: len(viewer.layers) >= 2 and all(ly.visible for ly in viewer.layers), timeout=60_000)
    assert [type(ly).__name__ for ly in viewer.layers][-1] == "Shapes"  # the ROIs stay on top of the spots


def test_gc_freeze_only_into_an_empty_viewer_and_an_opened_slide_stays_collectable(make_napari_viewer, qtbot,
                                                                                   tmp_path, monkeypatch):
    import gc
    import weakref

    from napari_roiscore._qt import warm_up

    frozen = []
    monkeypatch.setattr(warm_up, "_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # counted, not done: the session goes on
    viewer = make_napari_viewer(show=True)
    viewer.add_shapes([np.array([[0, 0], [0, 5], [5, 5]])], shape_type="polygon", name="drawn before")
    assert not warm_up.freeze_long_lived(viewer) and not frozen  # a layer exists: its data must stay collectable
    viewer.layers.clear()
    assert warm_up.freeze_long_lived(viewer) and frozen == [True]
    assert not warm_up.freeze_long_lived(viewer) and frozen == [True]  # once per session
    monkeypatch.undo()
    # a slide read after the freeze is freed when its layers are removed
    path = large_h5ad(tmp_path)
    assert open_from_window(viewer, path) == []
    qtbot.waitUntil(lambda: any(SPOTS_KEY in ly.metadata for ly in viewer.layers), timeout=60_000)
    from napari_roiscore._qt.spot_view import controller_of

    points = next(ly for ly in viewer.layers if SPOTS_KEY in ly.metadata)
    ctl = controller_of(viewer, points)
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)
    table = weakref.ref(points.metadata[SPOTS_KEY].adata)
    del points, ctl
    viewer.layers.clear()
    from qtpy.QtCore import QCoreApplication, QEvent

    for _ in range(10):  # napari deletes the layers' controls later (deleteLater)
        qtbot.wait(20)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    if table() is not None:  # name what still holds it
        holders = [type(r).__name__ for r in gc.get_referrers(table())]
        sv = [type(r).__name__ + ":" + getattr(r, "__qualname__", "") for o in gc.get_referrers(table())
              for r in gc.get_referrers(o)]
        raise AssertionError(f"the removed slide is still alive, held by {holders} <- {sv}")


def test_the_worker_prepares_then_the_gui_is_told_then_it_reads(make_napari_viewer, qtbot, tmp_path):
    from napari_roiscore._qt.background_open import open_in_background

    viewer = make_napari_viewer(show=True)
    path = large_h5ad(tmp_path)
    events = []
    on_gui = lambda: threading.current_thread() is threading.main_thread()  # noqa: E731

    def read_one(p, step):
        events.append(("read", on_gui()))
        return _reader._read_one(p, step)

    open_in_background(viewer, [path], read_one, prepare=lambda paths: events.append(("prepare", on_gui())),
                       prepared=lambda: events.append(("prepared", on_gui())))
    qtbot.waitUntil(lambda: len(viewer.layers) >= 1, timeout=60_000)
    assert sorted(events) == [("prepare", False), ("prepared", True), ("read", False)]
    assert events.index(("prepare", False)) < events.index(("prepared", True))
    assert events.index(("prepare", False)) < events.index(("read", False))


def test_from_the_window_glyphs_are_warmed_only_once_the_readers_are_imported(make_napari_viewer, qtbot,
                                                                             tmp_path, monkeypatch):
    from napari_roiscore._qt import warm_up

    viewer = make_napari_viewer(show=True)
    warming_while_preparing = []
    real_prepare = _reader._prepare_reading

    def prepare(paths):
        warming_while_preparing.append(viewer in warm_up._WARMERS)
        real_prepare(paths)

    monkeypatch.setattr(_reader, "_prepare_reading", prepare)
    assert open_from_window(viewer, large_h5ad(tmp_path)) == []
    qtbot.waitUntil(lambda: len(viewer.layers) >= 1, timeout=60_000)
    assert warming_while_preparing == [False] and viewer in warm_up._WARMERS


def test_a_script_ending_while_a_slide_is_read_exits_cleanly(tmp_path):
    """Before: the worker's ``finished`` signal was emitted on a Qt object deleted at exit
    (RuntimeError in the worker thread, then the interpreter aborted, exit code 134)."""
    import subprocess
    import sys

    path = large_h5ad(tmp_path)
    code = (
        "import time, napari\n"
        "from qtpy.QtCore import QEventLoop, QTimer\n"
        "from napari_roiscore import _reader\n"
        "real = _reader._read_one\n"
        "_reader._read_one = lambda p, step=None: (time.sleep(2), real(p, step))[1]  # still reading at exit\n"
        "viewer = napari.Viewer(show=True)\n"
        "loop = QEventLoop()\n"
        f"QTimer.singleShot(0, lambda: viewer.open({str(path)!r}, plugin='napari-roiscore'))\n"
        "QTimer.singleShot(800, loop.quit)\n"
        "loop.exec()\n"
        "viewer.close()\n"
        "print('exiting while reading', flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "exiting while reading" in out.stdout, out.stderr[-2000:]
    assert out.returncode == 0, out.stderr[-2000:]
    assert "has been deleted" not in out.stderr
