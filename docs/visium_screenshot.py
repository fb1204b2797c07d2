"""Make docs/visium_scores.png: the real Visium CytAssist folder opened in one step.

Opens ``../shared/data/visium_cytassist_mouse`` (mouse placenta) with napari's
File > Open path (the plugin reader), docks "ROI scores", scores a haemoglobin
signature (blood in the placenta's sinuses), draws two ROIs (one over the
highest-scoring spots, one over low-scoring tissue) and saves a screenshot of
the whole window (canvas with colour bar and ROI labels, dock with legend).

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/visium_screenshot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VISIUM = ROOT / ".." / "shared" / "data" / "visium_cytassist_mouse"
SIGNATURE = "Hbb-bs, Hba-a2, Hbb-bt"


def wait(app, cond, timeout=120.0):
    import time

    t0 = time.perf_counter()
    while not cond():
        app.processEvents()
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.01)


def square(centre, half):
    y, x = centre
    return np.array([[y - half, x - half], [y - half, x + half], [y + half, x + half], [y + half, x - half]])


def main(out: Path = ROOT / "docs" / "visium_scores.png") -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1700, 1050)
    viewer.open(str(VISIUM), plugin="napari-roiscore")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    app = QApplication.instance()
    wait(app, lambda: w.state.scores is not None)
    old = w.state.scores
    w.form.signature_edit.value = SIGNATURE
    wait(app, lambda: w.state.scores is not None and w.state.scores is not old)
    spots = w.state.spots_layer
    yx = np.asarray(spots.data)
    v = w.state.scores.values
    # ROI 1 around the densest patch of top-decile spots, ROI 2 over low-scoring tissue far from it
    top = yx[v >= np.quantile(v, 0.9)]
    d = np.linalg.norm(top[:, None] - top[None], axis=-1)
    half = 0.08 * float(np.ptp(yx, axis=0).max())
    c1 = top[np.argmax((d < half).sum(axis=1))]
    low = yx[(v <= np.quantile(v, 0.5)) & (np.linalg.norm(yx - c1, axis=1) > 4 * half)]
    dl = np.linalg.norm(low[:, None] - low[None], axis=-1)
    c2 = low[np.argmax((dl < half).sum(axis=1))]
    rois = w.state.roi_layer
    for centre, cls in ((c1, "blood-rich"), (c2, "other tissue")):
        w.state.remember_class(cls)
        w.form.class_combo.value = cls
        rois.add([square(centre, half)], shape_type="polygon")
        w.live.flush()
    wait(app, lambda: len(w.last_table) == 2)
    for _ in range(20):
        app.processEvents()
    # frame the capture area (the spots), not the whole slide image
    lo, hi = spots.data_to_world(yx.min(axis=0)), spots.data_to_world(yx.max(axis=0))
    viewer.camera.center = tuple((np.asarray(lo) + np.asarray(hi)) / 2)
    native = viewer.window._qt_viewer.canvas.native
    span = np.asarray(hi) - np.asarray(lo)
    viewer.camera.zoom = 0.85 * min(native.height() / span[-2], native.width() / span[-1])
    w.state.refresh()
    import time

    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    from skimage.io import imsave

    shot = viewer.screenshot(canvas_only=False, flash=False)
    imsave(out, shot)
    print(out, shot.shape)
    print(w.last_table.to_string())
    print(w.form.status.value)
    viewer.close()


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
