"""Live ROI editing in the real widget at Visium HD / Xenium sizes.

Builds a synthetic spot table (N spots, 40 genes incl. the example panel),
opens a real napari viewer (Xvfb) with the spots layer and one 200-vertex ROI,
docks the "ROI scores" widget and then drags the ROI the way napari's mouse
binding does (edit in place + ``refresh()`` -> ``events.set_data``), timing
each drag step until the table shows the new score.  Baseline, measured in
the same run: the naive recomputation (shapely.contains_xy over all spots +
mean/median) that a plugin without an index would do per step.

    xvfb-run -a python benchmarks/widget_live.py --spots 1000000 --steps 30

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
    args = ap.parse_args()

    import napari
    import shapely
    from qtpy.QtWidgets import QApplication

    from napari_roiscore._layer_data import spots_layer
    from napari_roiscore._qt.roi_scores import RoiScoresWidget

    spots = make_spots(args.spots)
    viewer = napari.Viewer(show=False)
    data, kw, _ = spots_layer(spots)
    kw["visible"] = False  # drawing 1M markers is napari's cost, not ours; we time scoring
    viewer.add_points(data, **kw)
    roi_layer = viewer.add_shapes([star((10_000, 10_000))], shape_type="polygon", name="ROIs",
                                  features={"name": ["001"], "class": ["tumour"], "holes": [""]})
    app = QApplication.instance()
    t0 = time.perf_counter()
    w = RoiScoresWidget(viewer)
    viewer.window.add_dock_widget(w)
    while w.last_table.empty or w.last_table["status"].eq("computing…").any():
        app.processEvents()
        time.sleep(0.005)
    print(f"{args.spots:,} spots: first scores (per-spot scores + index build, in a worker) "
          f"{time.perf_counter() - t0:.2f} s")
    scores = w.state.scores.values
    xy = spots.xy

    widget_ms, naive_ms = [], []
    for step in range(args.steps):
        shift = np.array([37.0, -23.0]) if step % 2 == 0 else np.array([-11.0, 29.0])
        t = time.perf_counter()
        roi_layer._data_view.shift(0, shift)
        roi_layer.refresh()
        w.live.flush()  # the update the edit's events scheduled (else it runs at the next event loop turn)
        app.processEvents()
        want = roi_layer.data[0][:, ::-1]
        widget_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        inside = shapely.contains_xy(shapely.Polygon(want), xy[:, 0], xy[:, 1])
        naive = scores[inside]
        naive_mean, naive_median = naive.mean(), np.median(naive)
        naive_ms.append((time.perf_counter() - t) * 1e3)
        row = w.last_table.iloc[0]
        assert row["spots"] == inside.sum(), (row["spots"], inside.sum())
        assert abs(row["score"] - naive_mean) < 1e-9 and abs(row["median"] - naive_median) < 1e-9
    wm, nm = np.median(widget_ms), np.median(naive_ms)
    print(f"drag step in the widget (event -> table): median {wm:.1f} ms")
    print(f"naive recomputation (shapely over all spots + mean/median): median {nm:.1f} ms")
    print(f"ratio naive / widget: {nm / wm:.1f}x  (frame budget at 25 fps: 40 ms)")
    viewer.close()


if __name__ == "__main__":
    main()
