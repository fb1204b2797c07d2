"""The dock's Cohort tab on a 12-patient synthetic cohort: as given, 4-fold and leave-one-patient-out.

Writes a seeded synthetic cohort (``synthetic_cohort(12)``: 200 genes, 2 tumour
+ 2 stroma ROIs of 25 spots per patient, a 5-gene plant) as a batch manifest,
opens napari with the ROI scores dock, types the planted genes as the
signature (method: mean z-score) and times *Validate* from the click until the
worker has finished and the table is filled, for each mode, ``--reps`` times.
The baseline, measured in the same run, is
:func:`napari_roiscore.analysis.cohort_run.run_cohort` called directly with the
same settings: the ratio tab / core is the GUI's overhead.  On a shared
machine the wall time says more about the load (printed) than about the code.

    PYTHONPATH=src python benchmarks/cohort_tab.py [--reps 3] [--patients 12] [--no-loo]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--no-loo", action="store_true", help="skip leave-one-patient-out (the slowest)")
    args = ap.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_roiscore.analysis.cohort_run import run_cohort
    from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort, write_cohort
    from napari_roiscore.scoring.signature import Signature

    cohort = synthetic_cohort(args.patients, seed=11)
    manifest = write_cohort(cohort, Path(tempfile.mkdtemp()))
    viewer = napari.Viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    widget.form.signature_edit.value = ", ".join(cohort.planted)
    tab = widget.cohort_tab
    widget.tabs.setCurrentWidget(tab)
    tab.manifest_edit.value = manifest
    app = QApplication.instance()
    signature = Signature("custom signature", up=cohort.planted)

    def in_tab(discovered: bool, folds) -> float:
        tab.discovered_check.value, tab.folds_combo.value = discovered, folds
        t0 = time.perf_counter()
        tab.run_button.native.click()
        while tab.running:
            app.processEvents()
            time.sleep(0.005)
        assert tab.table.rowCount() == (6 if discovered else 3), tab.message.value
        return time.perf_counter() - t0

    def in_core(discovered: bool, folds) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        run_cohort(manifest, signature, "mean_z", discovered_here=discovered, folds=folds)
        return time.perf_counter() - t0, time.process_time() - c0

    modes = [("as given", False, 4), ("discovered here, 4-fold", True, 4)]
    if not args.no_loo:
        modes.append(("discovered here, leave-one-patient-out", True, "loo"))
    in_tab(False, 4)  # warm-up: imports, first draw
    print(f"{args.patients} patients, {len(cohort.slides) * 4} ROIs; load average before: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, discovered, folds in modes:
        tab_s = [in_tab(discovered, folds) for _ in range(args.reps)]
        core = [in_core(discovered, folds) for _ in range(args.reps)]
        t, c = statistics.median(tab_s), statistics.median(w for w, _ in core)
        cpu = statistics.median(p for _, p in core)
        print(f"{name:40s} tab {t:6.2f} s (runs {', '.join(f'{x:.2f}' for x in tab_s)}); "
              f"core {c:6.2f} s wall / {cpu:6.2f} s CPU; tab / core {t / c:4.2f}")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    viewer.close()


if __name__ == "__main__":
    main()
