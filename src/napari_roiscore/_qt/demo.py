"""The README demo: napari with the sample, its ROIs and the "ROI scores" widget.

    python -m napari_roiscore._qt.demo [--out demo_output] [--no-window]

With ``--no-window`` (used automatically when there is no display) it waits
for the scores, writes ``roi_scores.csv`` and ``screenshot.png`` (the whole
window, widget included) into ``--out`` and exits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def run_demo(out: Path, window: bool, timeout: float = 120.0) -> int:
    import tempfile

    import napari
    from qtpy.QtWidgets import QApplication

    # the demo's ROIs are autosaved into a fresh folder: no restore prompt from earlier runs
    os.environ.setdefault("NAPARI_ROISCORE_AUTOSAVE_DIR", tempfile.mkdtemp(prefix="roiscore-demo-autosave-"))

    viewer = napari.Viewer(title="napari-roiscore demo (synthetic sample)")
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.window._qt_window.resize(1600, 1000)
    viewer.reset_view()
    app = QApplication.instance()
    t0 = time.perf_counter()
    while widget.last_table.empty or widget.last_table["status"].eq("computing…").any():
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - t0 > timeout:
            print("timed out waiting for ROI scores", file=sys.stderr)
            return 1
    out.mkdir(parents=True, exist_ok=True)
    csv = widget.export_tab.save_csv(out / "roi_scores.csv")
    print(widget.last_table.to_string(index=False))
    print(f"scores: {csv}")
    if window:
        napari.run()
        return 0
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    png = out / "screenshot.png"
    viewer.window.screenshot(str(png), canvas_only=False)
    print(f"screenshot: {png}")
    widget.compare_tab.update_comparison()
    rep_png, rep_pdf = widget.export_tab.write_report(out / "report")
    print(f"report: {rep_png} {rep_pdf}")
    viewer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo_output"))
    ap.add_argument("--no-window", action="store_true", help="write screenshot and CSV, then exit")
    args = ap.parse_args(argv)
    window = not args.no_window and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return run_demo(args.out, window=window)


if __name__ == "__main__":
    sys.exit(main())
