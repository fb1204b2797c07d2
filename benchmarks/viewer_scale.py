"""Benchmark: millions of spots on screen — raster/markers views against plain napari Points.

Generated slides (benchmarks/_large_slides.py): a Visium HD-like 2 µm bin grid
and irregular Xenium/CosMx-like cells, at 0.1, 1 and 3 million (and 11 million
with ``--sizes``).  Each (slide, mode) runs in its own process (so peak RSS is
that run's), with a shown napari window (Xvfb, software OpenGL):

* ``ours``  - ``spots_layers`` (raster pyramid + markers of the spots in view,
  ``_qt/spot_view.py``), as File ▸ Open draws a large table;
* ``points``- one napari Points layer of every spot (the previous behaviour).

Timed: first frame (layers built + added + the first full canvas render; for
ours that is the placeholder), the preview and the full raster on screen (both
built in a worker while the GUI runs), the longest GUI-thread block while
opening (a 5 ms QTimer heartbeat: its longest gap, the synchronous adding of
the layers included; napari's unit registry is set up in a thread while the
slide is generated, as the reader does while it reads),
redraw while panning/zooming (camera moved, our camera callback run, canvas
rendered via ``viewer.screenshot``; median and longest of a fixed
whole-slide → cellular zoom-and-pan path), the ROI drag step to the table
(``RoiScorer.mean_score`` of a moved 200-vertex ROI, the widget's live path;
median), peak RSS of the process.  The baseline is skipped where its first
frame, extrapolated linearly from the previous size, would exceed 60 s.

Run::

    xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/viewer_scale.py
    ... python benchmarks/viewer_scale.py --sizes 100000 1000000 3000000 11000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE_LIMIT_S = 60.0


def _roi_path(spots, n_steps=15):
    """A 200-vertex star ROI (~3 % of the spots' extent) dragged across the slide centre."""
    from shapely.geometry import Polygon

    from napari_roiscore.rois.roi import Roi

    xy = spots.xy
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    c = (lo + hi) / 2
    r = 0.1 * (hi - lo).min()
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    ring = np.c_[r * (1 + 0.25 * np.sin(7 * t)) * np.cos(t), r * (1 + 0.25 * np.sin(7 * t)) * np.sin(t)]
    step = r * 0.02
    return [Roi(name="001", roi_class="tumour", geometry=Polygon(ring + c + (i - n_steps / 2) * step))
            for i in range(n_steps)]


def _camera_path(viewer):
    """(centre, zoom) steps: whole slide, pans, zooming in to cells and panning there."""
    viewer.reset_view()
    c0 = np.asarray(viewer.camera.center, float)[-2:]
    z0 = float(viewer.camera.zoom)
    size = np.asarray(viewer.canvas.size if hasattr(viewer, "canvas") else (1000, 1000), float)[-2:]
    steps = []
    for dx in (0.05, 0.1):  # pan at whole-slide zoom
        steps.append((c0 + dx * size / z0, z0))
    for f in (2, 4, 8, 16, 32, 64, 128):  # zoom in
        steps.append((c0, z0 * f))
    zc = z0 * 128
    for k in range(1, 4):  # pan at cellular zoom
        steps.append((c0 + k * 0.3 * size / zc, zc))
    return steps


def _slide_file(kind: str, n: int, folder: str) -> str:
    """The generated slide written as an .h5ad (outside the timed part)."""
    sys.path.insert(0, HERE)
    from _large_slides import cell_slide, grid_slide

    path = os.path.join(folder, f"{kind}_{n}.h5ad")
    if not os.path.exists(path):
        spots = grid_slide(n) if kind == "grid" else cell_slide(n)
        a = spots.adata
        a.uns["spatial"] = {"slide": {"scalefactors": {"spot_diameter_fullres": spots.diameter_px}}}
        a.uns["roiscore"] = {"pixel_size_um": spots.pixel_size_um, "spot_shape": spots.shape}
        a.write_h5ad(path)
    return path


def run_file(kind: str, n: int, mode: str, folder: str) -> dict:
    """File ▸ Open of the slide's .h5ad: ``file`` from the running event loop (read in a worker),
    ``file_sync`` as a script does before ``napari.run()`` (read on the GUI thread: the previous
    behaviour of File ▸ Open), ``file_nolook`` as ``file`` without the first look (the coarse
    preview drawn while a large slide is read).  Timed from the open to the full raster painted."""
    import napari

    if mode == "file_nolook":
        import napari_roiscore.spots.first_look as first_look

        first_look.FIRST_LOOK_MIN_SPOTS = 10**18
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_roiscore._layer_data import FIRST_LOOK_KEY, VIEW_KEY

    path = _slide_file(kind, n, folder)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 1000)
    app = QApplication.instance()
    t = time.perf_counter()
    while time.perf_counter() - t < 1.5:  # the window settles (first paints) before the open
        app.processEvents()
        time.sleep(0.01)
    draws: list[float] = []
    viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(
        lambda e: draws.append(time.perf_counter()), position="last")
    beat = _Heartbeat()
    loop = QEventLoop()
    marks: dict[str, float] = {}

    def open_it() -> None:
        marks["open"] = time.perf_counter()
        viewer.open(path, plugin="napari-roiscore")
        marks["returned"] = time.perf_counter()

    def inserted(event) -> None:  # the first look (a coarse preview while reading), then the slide's own layers
        key = "look" if FIRST_LOOK_KEY in event.value.metadata else "layers"
        marks.setdefault(key, time.perf_counter())
        if event.value._type_string == "image":  # (a first look becomes the raster layer: watched from its start)
            event.value.events.name.connect(full_named)

    def full_named(event) -> None:  # the raster's name is set last when a raster is swapped in (raster_worker)
        name = event.source.name
        if VIEW_KEY in event.source.metadata and not name.startswith("PREVIEW") \
                and not name.endswith("(building raster…)"):
            marks.setdefault("full", time.perf_counter())  # (its paint follows: the data changed)

    viewer.layers.events.inserted.connect(inserted)

    def watch() -> None:
        now = time.perf_counter()
        if "full" in marks and any(d > marks["full"] for d in draws) and now - marks["full"] > 0.5:
            loop.quit()  # the full raster painted, and half a second of settling watched
        elif now - marks.get("open", now) > 600:
            loop.quit()

    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(watch)
    beat.start()
    if mode in ("file", "file_nolook"):
        QTimer.singleShot(0, open_it)  # from the running event loop, as File ▸ Open
    else:
        open_it()  # no event loop running: napari's synchronous path (the reader reads here)
        beat.start()  # (the heartbeat cannot tick during a call made outside the loop)
        beat.longest = marks["returned"] - marks["open"]
    poll.start()
    loop.exec()
    poll.stop()
    block = beat.stop()
    t0 = marks["open"]
    first = min((d for d in draws if d > marks.get("layers", t0)), default=float("nan")) - t0
    look = min((d for d in draws if d > marks["look"]), default=float("nan")) - t0 if "look" in marks else first
    full = min((d for d in draws if d > marks.get("full", float("inf"))), default=float("nan")) - t0
    viewer.close()
    return {"kind": kind, "n": n, "mode": mode, "open_return_s": marks["returned"] - t0,
            "look_s": look, "first_s": first, "full_s": full, "block_s": block,
            "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


def run_one(kind: str, n: int, mode: str) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    sys.path.insert(0, HERE)
    from _large_slides import cell_slide, grid_slide

    from napari_roiscore._layer_data import spots_layer, spots_layers
    from napari_roiscore._qt.spot_view import controller_of, install_spot_views
    from napari_roiscore._qt.warm_up import start_units, wait_units
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.signature import EXAMPLE_PANEL

    start_units()  # as the reader does when it starts reading any file (napari's unit registry, in a thread)
    t = time.perf_counter()
    spots = grid_slide(n) if kind == "grid" else cell_slide(n)
    gen_s = time.perf_counter() - t
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 1000)
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
    install_spot_views(viewer)
    wait_units()  # as the reader does before returning its layers
    beat = _Heartbeat()
    draws = []  # times the canvas was painted (by the event loop, as in use)
    viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(  # "last": after the scene is drawn
        lambda e: draws.append(time.perf_counter()), position="last")
    t0 = time.perf_counter()
    layers = spots_layers(spots, name="slide") if mode == "ours" else [spots_layer(spots, name="slide")]
    for data, kw, typ in layers:
        getattr(viewer, f"add_{typ}")(data, **kw)
    opened = time.perf_counter() - t0  # the GUI thread was busy all along (the reader's part)
    ctl = controller_of(viewer, viewer.layers[-1]) if mode == "ours" else None
    beat.start()
    n_draws = len(draws)
    preview = full = None

    def _painted_after(t: float) -> bool:
        return any(d > t for d in draws[n_draws:])


    full_mark = None
    while time.perf_counter() - t0 < 900:  # the event loop runs: paints, worker results, timers
        before = time.perf_counter()
        app.processEvents()
        now = time.perf_counter()
        if ctl is not None and ctl.stage == "preview" and preview is None:
            preview = now - t0
        if ctl is not None and ctl.stage == "full" and full_mark is None:
            full_mark = before  # the full raster was swapped in during this turn
        if draws[n_draws:] and (ctl is None or (full_mark is not None and _painted_after(full_mark))):
            break
        time.sleep(0.002)
    first = min(draws[n_draws:], default=time.perf_counter()) - t0  # first frame painted after the layers came
    if ctl is not None and full_mark is not None:
        full = min((d for d in draws[n_draws:] if d > full_mark), default=time.perf_counter()) - t0
        preview = preview if preview is not None else full
    else:
        preview = full = first
    block_build = beat.stop()
    static = []
    for _ in range(3):  # re-render with the camera still: the drawing cost alone
        t = time.perf_counter()
        viewer.screenshot(canvas_only=True)
        static.append(time.perf_counter() - t)
    redraws, modes, refresh = [], [], []
    for centre, zoom in _camera_path(viewer):
        t = time.perf_counter()
        viewer.camera.center = tuple(centre)
        viewer.camera.zoom = zoom
        if ctl is not None:
            tr = time.perf_counter()
            ctl.refresh()  # what the debounced camera callback does
            refresh.append(time.perf_counter() - tr)
            modes.append(ctl.mode)
        viewer.screenshot(canvas_only=True)
        redraws.append(time.perf_counter() - t)
        app.processEvents()
    # the ROI drag step (independent of the drawing mode; measured in both runs)
    scorer = RoiScorer(spots)
    t = time.perf_counter()
    scores = scorer.spot_scores(EXAMPLE_PANEL)
    scorer.mean_score(_roi_path(spots)[0], scores)
    score_s = time.perf_counter() - t
    drags = []
    for roi in _roi_path(spots):
        t = time.perf_counter()
        scorer.mean_score(roi, scores)
        drags.append(time.perf_counter() - t)
    viewer.close()
    return {"kind": kind, "n": spots.n_spots, "mode": mode, "gen_s": gen_s, "first_s": first,
            "preview_s": preview, "full_s": full, "open_block_s": opened,
            "block_s": max(opened, block_build), "build_block_s": block_build,
            "opened_s": opened,
            "redraw_med_s": float(np.median(redraws)), "redraw_max_s": float(np.max(redraws)),
            "drag_med_s": float(np.median(drags)), "static_s": float(np.median(static)),
            "refresh_max_s": float(np.max(refresh)) if refresh else 0.0, "score_s": score_s,
            "modes": "".join("M" if m == "markers" else "R" for m in modes),
            "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


class _Heartbeat:
    """A 5 ms GUI-thread timer: the longest gap between its ticks is the longest GUI block."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last, self.longest = None, 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        self._tick()
        self.timer.stop()
        return self.longest


def _files(args) -> None:
    """The --files table: each slide opened the three ways, each run in its own process."""
    os.makedirs(args.folder, exist_ok=True)
    print("viewer_scale --files: File > Open of a generated .h5ad, shown window (Xvfb, software OpenGL); s, GB")
    print(f"{'slide':>6} {'spots':>10} {'mode':>11} {'returns':>7} {'look':>6} {'first':>6} {'full':>6} "
          f"{'block':>6} {'RSS':>5}")
    for kind in args.kinds:
        for n in args.sizes:
            rows = {}
            for mode in ("file_sync", "file_nolook", "file"):
                r = _child(kind, n, mode, args.timeout, ["--folder", args.folder])
                rows[mode] = r
                if "error" in r:
                    print(f"{kind:>6} {n:>10,} {mode:>11}  failed: {r['error']}")
                    continue
                print(f"{kind:>6} {n:>10,} {mode:>11} {r['open_return_s']:>7.2f} {r['look_s']:>6.2f} {r['first_s']:>6.2f} "
                      f"{r['full_s']:>6.2f} {r['block_s']:>6.2f} {r['rss_gb']:>5.2f}", flush=True)
            if all("error" not in r for r in rows.values()):
                a, b = rows["file_sync"], rows["file"]
                print(f"{'':>6} {'':>10} ratio  longest GUI block {a['block_s'] / b['block_s']:.1f}x shorter, "
                      f"full raster {a['full_s'] / b['full_s']:.2f}x (read on the GUI thread / in a worker)")
                c = rows["file_nolook"]
                print(f"{'':>6} {'':>10} first look: values on screen {c['look_s'] / b['look_s']:.1f}x sooner, "
                      f"table's layers {b['first_s'] - c['first_s']:+.2f} s, full raster "
                      f"{b['full_s'] - c['full_s']:+.2f} s (in a worker with / without it)")
    print("returns = viewer.open returned (the GUI thread is free again); look = first paint of the slide's "
          "values (its first look, a coarse preview of total counts drawn while it is read, where it has one; "
          "else = first); first = first paint after the slide's own layers came; full = the full raster painted; block = longest time the GUI thread did not answer "
          "(5 ms heartbeat) from the open until 0.5 s after the full raster (file_sync: the synchronous open "
          "itself included)")


def _child(kind: str, n: int, mode: str, timeout: float, extra: list[str] = ()) -> dict | None:
    cmd = [sys.executable, __file__, "--child", kind, str(n), mode, *extra]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "n": n, "mode": mode, "error": f"over {timeout:.0f} s"}
    for line in out.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return {"kind": kind, "n": n, "mode": mode, "error": (out.stderr.strip().splitlines() or ["?"])[-1][:120]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    ap.add_argument("--kinds", nargs="+", default=["grid", "cells"])
    ap.add_argument("--no-baseline", action="store_true", help="only our views (e.g. at 11M)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--files", action="store_true",
                    help="File > Open of .h5ad slides: read in a worker (from the running window) "
                         "against read on the GUI thread (as before), longest GUI block included")
    ap.add_argument("--folder", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "roiscore_viewer_scale"),
                    help="where --files writes the generated .h5ad slides (kept for re-runs)")
    ap.add_argument("--baseline-limit", type=float, default=BASELINE_LIMIT_S,
                    help="skip the Points baseline when its first frame is estimated above this (s)")
    args = ap.parse_args()
    if args.child:
        kind, n, mode = args.child
        if mode.startswith("file"):
            print(json.dumps(run_file(kind, int(n), mode, args.folder)))
        else:
            print(json.dumps(run_one(kind, int(n), mode)))
        return
    if args.files:
        _files(args)
        return
    print("viewer_scale: generated slides, shown window (Xvfb, software OpenGL); times in s, RSS in GB")
    print(f"{'slide':>6} {'spots':>10} {'mode':>6} {'first':>7} {'prevw':>6} {'full':>6} {'block':>6} {'bld':>5} "
          f"{'redraw':>7} {'longest':>7} {'still':>6} {'cb max':>6} {'drag ms':>7} {'RSS':>5}  "
          "modes along the path (R raster, M markers)")
    rows = []
    for kind in args.kinds:
        base_first = None
        prev_n = None
        for n in args.sizes:
            ours = _child(kind, n, "ours", args.timeout)
            rows.append(ours)
            _print(ours)
            if args.no_baseline:
                continue
            est = base_first * n / prev_n if base_first else 0.0
            if base_first is not None and est > args.baseline_limit:
                print(f"{kind:>6} {n:>10,} points  skipped: first frame estimated {est:.0f} s > "
                      f"{args.baseline_limit:.0f} s")
                continue
            base = _child(kind, n, "points", args.timeout)
            rows.append(base)
            _print(base)
            if "error" not in base:
                base_first, prev_n = base["first_s"], n
                if "error" not in ours:
                    print(f"{'':>6} {'':>10} ratio  first {base['first_s'] / ours['first_s']:.1f}x, "
                          f"full raster {base['first_s'] / ours['full_s']:.1f}x, "
                          f"GUI block {base['block_s'] / ours['block_s']:.1f}x, "
                          f"redraw {base['redraw_med_s'] / ours['redraw_med_s']:.1f}x, "
                          f"longest {base['redraw_max_s'] / ours['redraw_max_s']:.1f}x (points / ours)")
    print("first = layers built + added + first full render (ours: the placeholder); prevw / full = the "
          "exact preview / the full raster on screen (built in a worker); block = longest time the GUI "
          "thread did not answer while opening (5 ms heartbeat; adding the layers included); bld = the same "
          "after the layers were added (while the worker builds and the results are swapped in); redraw = median over a 12-step "
          "pan/zoom path (whole slide -> 128x); longest = slowest step; still = re-render with the "
          "camera still (whole slide); cb max = longest camera callback (markers/raster switch); "
          "drag = RoiScorer.mean_score of a moved 200-vertex ROI (median)")


def _print(r: dict) -> None:
    if "error" in r:
        print(f"{r['kind']:>6} {r['n']:>10,} {r['mode']:>6}  failed: {r['error']}")
        return
    print(f"{r['kind']:>6} {r['n']:>10,} {r['mode']:>6} {r['first_s']:>7.2f} {r['preview_s']:>6.2f} "
          f"{r['full_s']:>6.2f} {r['block_s']:>6.2f} {r['build_block_s']:>5.2f} {r['redraw_med_s']:>7.3f} "
          f"{r['redraw_max_s']:>7.2f} {r['static_s']:>6.3f} {r['refresh_max_s']:>6.3f} {r['drag_med_s'] * 1e3:>7.1f} {r['rss_gb']:>5.2f}  {r['modes']}",
          flush=True)


if __name__ == "__main__":
    main()
