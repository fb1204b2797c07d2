"""Live ROI editing in the real widget at Visium HD / Xenium sizes.

Builds a synthetic spot table (N spots, 40 genes incl. the example panel),
opens a real napari viewer (Xvfb) with the spots layer and one 200-vertex ROI,
docks the "ROI scores" widget and then drags the ROI the way napari's mouse
binding does (edit in place + ``refresh()`` -> ``events.set_data``), timing
each drag step until the table shows the new score.  Baseline, measured in
the same run: the naive recomputation (shapely.contains_xy over all spots +
mean/median) that a plugin without an index would do per step.

By default the window is shown (Xvfb) with the spots VISIBLE, added the
way the plugin's reader does (``spots_layers``: napari Points up to 30,000
spots, above that a raster (built in a worker; waited for) + markers-in-view; ``--points``: every spot as
one Points layer, the plugin before the raster view).  Per step: event ->
table computed, the event-loop turn after it (Qt paints canvas and table),
and one more full canvas render (``viewer.screenshot``); a second baseline
is the same loop turn with the spot layers hidden.  ``--hidden`` is the old
measurement (hidden window, spots layer hidden: scoring alone).

    xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/widget_live.py --spots 100000
    xvfb-run -a python benchmarks/widget_live.py --hidden --spots 1000000 --steps 30

Prints medians and the ratio; asserts only that the widget's scores equal the
naive answer.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_spots(n: int, seed: int = 0):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from napari_roiscore.scoring.signature import EXAMPLE_PANEL
    from napari_roiscore.spots.table import SpotTable

    rng = np.random.default_rng(seed)
    side = 20_000.0
    xy = rng.uniform(0, side, (n, 2))
    genes = list(EXAMPLE_PANEL.up) + [f"G{i}" for i in range(35)]
    lam = rng.gamma(2.0, 1.0, len(genes))
    counts = sp.csr_matrix(rng.poisson(lam, (n, len(genes))).astype(np.int32))
    a = ad.AnnData(X=counts, obs=pd.DataFrame(index=[f"s{i}" for i in range(n)]),
                   var=pd.DataFrame(index=genes))
    a.obsm["spatial"] = xy
    return SpotTable(a, diameter_px=8.0, shape="square", provenance={"reader": "benchmark"})


def star(center, r=2500.0, k=200):
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    rr = r * (1 + 0.25 * np.sin(7 * t))
    return np.c_[center[0] + rr * np.sin(t), center[1] + rr * np.cos(t)]  # (row, col)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spots", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--hidden", action="store_true",
                    help="hidden window and spots layer (scoring only, the old measurement)")
    ap.add_argument("--points", action="store_true",
                    help="shown: every spot as one napari Points layer (the plugin before the raster view)")
    args = ap.parse_args()
    shown = not args.hidden

    import napari
    import shapely
    from qtpy.QtWidgets import QApplication

    from napari_roiscore._layer_data import spots_layer, spots_layers
    from napari_roiscore._qt.roi_scores import RoiScoresWidget
    from napari_roiscore._qt.spot_view import install_spot_views

    spots = make_spots(args.spots)
    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=shown)
    if shown:
        viewer.window._qt_window.resize(1400, 1000)
        for _ in range(20):
            app.processEvents()
        install_spot_views(viewer)
        t = time.perf_counter()
        layers = [spots_layer(spots)] if args.points else spots_layers(spots)  # spots_layers: what the reader gives
        for data, kw, typ in layers:
            getattr(viewer, f"add_{typ}")(data, **kw)
        viewer.screenshot(canvas_only=True, flash=False)
        print(f"{args.spots:,} spots shown as {', '.join(ly._type_string + ' ' + repr(ly.name) for ly in viewer.layers)}; "
              f"first frame {time.perf_counter() - t:.2f} s")
    else:
        data, kw, _ = spots_layer(spots)
        kw["visible"] = False  # scoring alone, without napari drawing the markers
        viewer.add_points(data, **kw)
    roi_layer = viewer.add_shapes([star((10_000, 10_000))], shape_type="polygon", name="ROIs",
                                  features={"name": ["001"], "class": ["tumour"], "holes": [""]})
    t0 = time.perf_counter()
    w = RoiScoresWidget(viewer)
    viewer.window.add_dock_widget(w)
    while w.last_table.empty or w.last_table["status"].eq("computing…").any():
        app.processEvents()
        time.sleep(0.005)
    print(f"{args.spots:,} spots: first scores (per-spot scores + index build, in a worker) "
          f"{time.perf_counter() - t0:.2f} s")
    from napari_roiscore._qt.spot_view import controller_of

    ctl = controller_of(viewer, w.state.spots_layer) if shown else None
    while ctl is not None and (ctl.stage != "full" or ctl._worker is not None and ctl.recoloured == 0):
        app.processEvents()  # the raster is built (and recoloured by score) in workers: wait for it
        time.sleep(0.005)
    scores = w.state.scores.values
    xy = spots.xy

    if shown:
        viewer.screenshot(canvas_only=True, flash=False)
    widget_ms, naive_ms, draw_ms, table_ms, loop_ms = [], [], [], [], []
    for step in range(args.steps):
        shift = np.array([37.0, -23.0]) if step % 2 == 0 else np.array([-11.0, 29.0])
        t = time.perf_counter()
        roi_layer._data_view.shift(0, shift)
        roi_layer.refresh()
        w.live.flush()  # the update the edit's events scheduled (else it runs at the next event loop turn)
        table_ms.append((time.perf_counter() - t) * 1e3)
        t_loop = time.perf_counter()
        app.processEvents()  # shown: Qt paints the canvas (ROI moved, spots drawn) and the table here
        loop_ms.append((time.perf_counter() - t_loop) * 1e3)
        want = roi_layer.data[0][:, ::-1]
        widget_ms.append((time.perf_counter() - t) * 1e3)
        if shown:
            t = time.perf_counter()
            viewer.screenshot(canvas_only=True, flash=False)  # one more full render of that canvas
            draw_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        inside = shapely.contains_xy(shapely.Polygon(want), xy[:, 0], xy[:, 1])
        naive = scores[inside]
        naive_mean, naive_median = naive.mean(), np.median(naive)
        naive_ms.append((time.perf_counter() - t) * 1e3)
        row = w.last_table.iloc[0]
        assert row["spots"] == inside.sum(), (row["spots"], inside.sum())
        assert abs(row["score"] - naive_mean) < 1e-9 and abs(row["median"] - naive_median) < 1e-9
    hidden_loop_ms = []
    if shown:  # the same steps with the spot layers hidden: what drawing the spots adds
        spot_layers = [ly for ly in viewer.layers if ly is not roi_layer]
        for ly in spot_layers:
            ly.visible = False
        app.processEvents()
        for step in range(min(args.steps, 10)):
            roi_layer._data_view.shift(0, np.array([37.0, -23.0]) * (1 if step % 2 == 0 else -1))
            roi_layer.refresh()
            w.live.flush()
            t = time.perf_counter()
            app.processEvents()
            hidden_loop_ms.append((time.perf_counter() - t) * 1e3)
    wm, nm, tm, lm = (np.median(v) for v in (widget_ms, naive_ms, table_ms, loop_ms))
    print(f"drag step, event -> table computed (index query + aggregate + table): median {tm:.1f} ms")
    print(f"naive recomputation (shapely over all spots + mean/median), same run: median {nm:.1f} ms"
          f"  -> ratio naive / table {nm / tm:.1f}x")
    print(f"event loop turn after it ({'canvas + table painted' if shown else 'hidden window'}): "
          f"median {lm:.1f} ms")
    print(f"whole drag step (event -> table shown{', canvas painted' if shown else ''}): median {wm:.1f} ms, "
          f"slowest {max(widget_ms):.1f} ms = {wm / nm:.2f}x the naive recomputation alone "
          f"(frame budget at 25 fps: 40 ms)")
    if shown:
        hm = np.median(hidden_loop_ms)
        print(f"same event loop turn with the spot layers hidden (ROI + table only): median {hm:.1f} ms"
              f" -> the visible spots add {lm - hm:.1f} ms per step")
        dm = np.median(draw_ms)
        print(f"full canvas render with the spots visible (viewer.screenshot): median {dm:.1f} ms, "
              f"slowest {max(draw_ms):.1f} ms = {dm / nm:.2f}x the naive recomputation")
    viewer.close()


if __name__ == "__main__":
    main()
