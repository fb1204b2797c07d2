"""Colour changes at Visium HD sizes in the real widget (Xvfb).

Builds N synthetic spots (benchmarks/widget_live.make_spots), opens a real
viewer with the "ROI scores" dock and times, until the canvas has drawn:
a new score (limits recomputed), a gene, ROI membership, and hand-set limits.
Baseline in the same run: napari itself recolouring the layer with a constant
colour (``layer.face_color = "red"`` + draw), the least any recolour costs.

    xvfb-run -a python benchmarks/spot_colours.py --spots 100000
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spots", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_roiscore._layer_data import roi_layer, spots_layer
    from napari_roiscore.rois.roi import Roi
    from widget_live import make_spots, star

    spots = make_spots(args.spots)
    viewer = napari.Viewer(show=True)
    data, kw, _ = spots_layer(spots)
    viewer.add_points(data, **kw)
    rois = [Roi.from_xy("001", "tumour", star((6000, 6000))[:, ::-1]),
            Roi.from_xy("002", "stroma", star((14000, 14000))[:, ::-1])]
    d, kw, _ = roi_layer(rois)
    viewer.add_shapes(d, **kw)
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    app = QApplication.instance()
    t0 = time.perf_counter()
    while w.state.scores is None and time.perf_counter() - t0 < 300:
        app.processEvents()
    layer = viewer.layers["spots"]
    sc = w.spot_colours

    def timed(action) -> float:
        out = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            action()
            viewer.screenshot(canvas_only=True, flash=False)
            out.append(time.perf_counter() - t)
        return float(np.median(out))

    base = timed(lambda: setattr(layer, "face_color", "red"))
    sc.by_combo.value = "score"
    res = {
        "score (limits recomputed)": timed(sc.apply),
        "hand-set limits": timed(lambda: sc.set_limits(-0.5, 0.5)),
    }
    sc.gene_edit.value = "CD68"
    res["gene CD68"] = timed(lambda: (sc.by_combo.set_value("gene"), sc.apply()))
    res["ROI membership"] = timed(lambda: (sc.by_combo.set_value("ROI"), sc.apply()))
    print(f"{args.spots} spots; baseline (constant colour + draw): {base * 1e3:.0f} ms")
    for k, v in res.items():
        print(f"  {k:28s} {v * 1e3:7.0f} ms   ratio to baseline {v / base:5.1f}")
    viewer.close()


if __name__ == "__main__":
    main()
