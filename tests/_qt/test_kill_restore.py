"""No data loss: napari killed mid-editing gets its ROIs back; inputs are never modified."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from napari_roiscore.rois.autosave import sidecar_path
from napari_roiscore.rois.geojson import parse_geojson
from napari_roiscore.spots.sample import SAMPLE_DIR

pytestmark = [pytest.mark.gui, pytest.mark.slow]

EDITING_SESSION = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication
    from shapely.geometry import Polygon
    from napari_roiscore.rois.autosave import sidecar_path
    from napari_roiscore.rois.roi import Roi
    from napari_roiscore.rois.geojson import rois_to_geojson

    spots = sys.argv[1]
    viewer = napari.Viewer(show=False)
    viewer.open(spots, plugin="napari-roiscore")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    w.rois_tab.add_class("necrosis")
    w.rois_tab.add_rois([
        Roi("004", "tumour", Polygon([(300, 300), (900, 320), (850, 800), (320, 760)])),
        Roi("007", "stroma", Polygon([(1200, 200), (1700, 200), (1700, 700), (1200, 700)],
                                     [[(1350, 350), (1500, 350), (1500, 500), (1350, 500)]])),
        Roi("x1", "necrosis", Polygon([(100, 1500), (400, 1450), (380, 1800)])),
    ])
    w.scores_tab.rename_roi("x1", "necrotic core")
    app = QApplication.instance()
    side = sidecar_path(spots)
    t0 = time.time()
    while time.time() - t0 < 120:
        app.processEvents()
        time.sleep(0.05)
        if side.is_file() and len(json.loads(side.read_text())["features"]) == 3 and \\
                "necrotic core" in side.read_text():
            break
    print("READY " + json.dumps(rois_to_geojson(w.current_rois())), flush=True)
    while True:  # still editing when the machine "crashes"
        app.processEvents()
        time.sleep(0.05)
""")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_sample(tmp: Path) -> dict[str, Path]:
    out = {}
    for key, name in (("image", "sample_slide.ome.tif"), ("spots", "sample_spots.h5ad"),
                      ("rois", "sample_rois.geojson")):
        out[key] = Path(shutil.copy(SAMPLE_DIR / name, tmp / name))
    return out


def _same_rois(a, b) -> None:
    assert [(r.name, r.roi_class) for r in a] == [(r.name, r.roi_class) for r in b]
    for ra, rb in zip(a, b):
        assert ra.geometry.symmetric_difference(rb.geometry).area < 1e-6 * max(rb.area_px, 1.0), ra.name
        assert len(getattr(ra.geometry, "interiors", [])) == len(getattr(rb.geometry, "interiors", []))


def test_sigkill_mid_editing_then_restore(make_napari_viewer, qtbot, tmp_path):
    data = _copy_sample(tmp_path)
    spots = data["spots"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", EDITING_SESSION, str(spots)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        t0, line = time.time(), ""
        while time.time() - t0 < 180:
            line = proc.stdout.readline()
            if line.startswith("READY") or (not line and proc.poll() is not None):
                break
        assert line.startswith("READY"), f"editing session did not get ready: {proc.stderr.read()[-3000:]}"
        os.kill(proc.pid, signal.SIGKILL)  # no atexit, no Qt close events, no flush
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    edited = parse_geojson(json.loads(line[len("READY "):]), "session")
    assert sidecar_path(spots).is_file()

    # a new napari on the same data offers the autosave and brings back exactly those ROIs
    viewer = make_napari_viewer()
    viewer.open(str(spots), plugin="napari-roiscore")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: w.autosave.offer is not None, timeout=30_000)
    assert not w.autosave.restore_button.native.isHidden()
    assert "3 autosaved ROI" in w.autosave.restore_button.text
    w.autosave.restore()
    assert w.autosave.restore_button.native.isHidden()
    _same_rois(w.current_rois(), edited)
    assert "necrosis" in w.state.classes
    assert _sha256(spots) == _sha256(SAMPLE_DIR / "sample_spots.h5ad")


def test_full_session_leaves_inputs_byte_identical(make_napari_viewer, qtbot, tmp_path):
    from napari_roiscore._layer_data import image_layers
    from napari_roiscore.images.multiplex import read_multiplex_tiff

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    data = _copy_sample(inputs)
    before = {k: _sha256(p) for k, p in data.items()}
    mtimes = {k: p.stat().st_mtime_ns for k, p in data.items()}
    out = tmp_path / "exports"

    viewer = make_napari_viewer()
    for layer_data, kw, _ in image_layers(read_multiplex_tiff(data["image"])):
        viewer.add_image(layer_data, **kw)
    viewer.open(str(data["spots"]), plugin="napari-roiscore")
    viewer.open(str(data["rois"]), plugin="napari-roiscore")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: not w.last_table.empty and w.last_table["status"].eq("ok").all(), timeout=60_000)
    w.rois_tab.import_geojson(data["rois"])  # a second copy of the ROIs, renamed
    w.form.signature_edit.value = "CD68, CD163, STAB1"
    qtbot.waitUntil(lambda: "3 gene(s) used" in w.form.status.value, timeout=30_000)
    w.markers_tab.marker_channel_combo.value = viewer.layers[3]
    w.markers_tab.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None, timeout=60_000)
    exports = [w.export_tab.save_csv(out / "scores.csv"), w.export_tab.save_h5ad(out / "spots_rois.h5ad"),
               *w.export_tab.write_report(out / "report"), w.rois_tab.export_geojson(out / "rois.geojson"), w.autosave.save_now()]
    assert all(p is not None and Path(p).is_file() for p in exports)
    viewer.layers.clear()
    assert {k: _sha256(p) for k, p in data.items()} == before
    assert {k: p.stat().st_mtime_ns for k, p in data.items()} == mtimes
    # nothing was written next to the inputs (the autosave went to its own folder in tests)
    assert sorted(p.name for p in data["spots"].parent.iterdir() if p.is_file()) == sorted(
        p.name for p in data.values())
    np.testing.assert_equal(len(list(out.iterdir())), 5)
