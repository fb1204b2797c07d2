"""Benchmark: what a pan/zoom step costs with 5k, 10k, 30k (…) markers on screen vs the raster alone.

Chooses ``MARKER_LIMIT`` (``spots/view.py``): the most spots drawn as markers
when zoomed in.  A generated slide of irregular cells (``_large_slides.py``)
opens as the reader opens it (raster + markers in view, shown window, Xvfb,
software OpenGL).  For each target the camera is zoomed until about that many
cells are in view; then a fixed sequence of steps (pans of a tenth of the
canvas, zooms of ×1.1 in and out) is timed, each step being: camera moved,
the controller's refresh (markers of every spot in view, or the raster),
canvas rendered (``viewer.screenshot``).  Baseline in the same run and at the
same camera positions: the raster alone (markers switched off).

Run::

    PYTHONPATH=src xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/marker_limit.py
    ... python benchmarks/marker_limit.py --cells 1000000 --targets 5000 10000 30000 60000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _zoom_for(viewer, ctl, target: int) -> None:
    """Zoom (about the slide centre) until about ``target`` spots are in view."""
    viewer.reset_view()
    for _ in range(12):
        n = ctl.view.binning.count_in_view(*ctl.visible_box())
        if n == 0:
            viewer.camera.zoom /= 2
            continue
        f = np.sqrt(n / target)
        if abs(f - 1) < 0.03:
            break
        viewer.camera.zoom *= f


def _steps(viewer):
    """Camera positions: 4 pans of a tenth of the canvas, 4 zooms ×1.1 in / out."""
    c = np.asarray(viewer.camera.center, float)[-2:]
    z = float(viewer.camera.zoom)
    w = np.asarray(viewer.canvas.size, float)[-2:] / z
    pans = [(c + (k + 1) * 0.1 * w * np.array([0.3, 1.0]), z) for k in range(4)]
    zooms = [(c, z * f) for f in (1.1, 1.0, 1 / 1.1, 1.0)]
    return [(c, z)] + pans + zooms


def _time_steps(viewer, ctl, steps, app) -> tuple[list, list, list]:
    total, refresh, counts = [], [], []
    for centre, zoom in steps:
        t = time.perf_counter()
        viewer.camera.center = tuple(centre)
        viewer.camera.zoom = zoom
        tr = time.perf_counter()
        ctl.refresh()
        refresh.append(time.perf_counter() - tr)
        viewer.screenshot(canvas_only=True)
        total.append(time.perf_counter() - t)
        counts.append(len(ctl.points.data))
        app.processEvents()
    return total[1:], refresh[1:], counts[1:]  # the first step only positions the camera


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--targets", type=int, nargs="+", default=[5_000, 10_000, 30_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    sys.path.insert(0, HERE)
    from _large_slides import cell_slide

    from napari_roiscore._layer_data import spots_layers
    from napari_roiscore._qt.spot_view import controller_of, install_spot_views

    spots = cell_slide(args.cells)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 1000)
    app = QApplication.instance()
    install_spot_views(viewer)
    for data, kw, typ in spots_layers(spots, name="cells", marker_limit=max(args.targets) * 2):
        getattr(viewer, f"add_{typ}")(data, **kw)
    ctl = controller_of(viewer, viewer.layers[-1])
    while ctl.stage != "full":
        app.processEvents()
        time.sleep(0.005)
    limit = ctl.view.marker_limit
    print(f"marker_limit: {spots.n_spots:,} generated cells, canvas {tuple(viewer.canvas.size)}, shown window "
          "(Xvfb, software OpenGL); step = camera + refresh + render; median (max) over "
          f"{args.repeats} x 8 steps")
    print(f"{'in view':>9} {'markers step ms':>16} {'refresh ms':>11} {'raster alone ms':>16} {'ratio':>6}")
    for target in args.targets:
        _zoom_for(viewer, ctl, target)
        steps = _steps(viewer)
        with_m, ref, counts, alone = [], [], [], []
        for _ in range(args.repeats):
            ctl.view.marker_limit = limit
            t, r, c = _time_steps(viewer, ctl, steps, app)
            with_m += t
            ref += r
            counts += c
            ctl.view.marker_limit = 0  # the raster alone at the same camera positions
            t, _, _ = _time_steps(viewer, ctl, steps, app)
            alone += t
        ctl.view.marker_limit = limit
        m, a = np.median(with_m) * 1e3, np.median(alone) * 1e3
        print(f"{int(np.median(counts)):>9,} {m:>9.0f} ({np.max(with_m) * 1e3:>4.0f}) "
              f"{np.median(ref) * 1e3:>11.0f} {a:>9.0f} ({np.max(alone) * 1e3:>4.0f}) {m / a:>6.1f}",
              flush=True)
    viewer.close()


if __name__ == "__main__":
    main()
