"""The *Cohort* tab: validate the current signature on a cohort of patients (research use only).

Choose a batch manifest (the CSV ``roiscore batch`` reads, with ``response``
and optionally ``patient`` columns); *Validate* scores every slide with the
dock's signature and method and judges, per patient, the tumour and stroma
ROI scores and their difference as response markers
(:func:`~napari_roiscore.analysis.cohort_run.run_cohort`, in a napari
``thread_worker`` with progress).  When the signature was discovered on this
same cohort, the naive numbers are labelled as such and the cross-validated
discovery by patient is added.  A bad manifest is a notification naming the
problem and the fix, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QProgressBar, QTableWidgetItem, QWidget

from napari_roiscore._qt.plots import CohortPlot
from napari_roiscore._qt.state import DockState
from napari_roiscore._qt.tab_layout import read_only_table, run_in_background, scrolling_tab, wrap_labels
from napari_roiscore.analysis.cohort import MARKERS
from napari_roiscore.analysis.cohort_run import CohortRun, run_cohort
from napari_roiscore.analysis.responder import RESEARCH_ONLY
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.signature import Signature

#: (label, folds) for the cross-validated discovery
FOLD_CHOICES = [("4 folds by patient", 4), ("5 folds by patient", 5), ("10 folds by patient", 10),
                ("leave one patient out", "loo")]
HEADERS = ["signature", "compartment", "AUC", "95 % CI", "Mann–Whitney p", "patients", "threshold",
           "sensitivity", "specificity"]
#: what the dock scores now: the signature and (method, options)
Inputs = Callable[[], tuple[Signature, tuple[str, dict]]]


@dataclass(frozen=True)
class Problem:
    """A run that stopped on bad input (a worker returning an exception would raise it)."""

    error: Exception


def check_manifest(path: str | Path) -> None:
    """What the run checks first, here on the main thread: the manifest's columns, files and responses.

    Raises
    ------
    RoiScoreError
        Naming every problem and the fix.
    """
    from napari_roiscore.analysis.manifest import read_manifest
    from napari_roiscore.analysis.manifest import validate_batch_table

    if not str(path).strip() or Path(path).is_dir():
        raise RoiScoreError("No cohort manifest is chosen.",
                            "Choose a CSV with columns slide_id, spots, rois, response (and patient).")
    validate_batch_table(read_manifest(path), path, need_response=True, check_files=True)


def summary_rows(run: CohortRun, threshold: float | None) -> list[list[str]]:
    """The table's text, one row per validation and compartment."""
    def num(v: float, fmt: str) -> str:
        return format(v, fmt) if np.isfinite(v) else "—"

    return [[r.signature, r.marker, num(r.auc, ".2f"), f"{num(r.ci_low, '.2f')}–{num(r.ci_high, '.2f')}",
             num(r.mann_whitney_p, ".3g"), f"{r.n_patients} ({r.n_responders} R / {r.n_non_responders} NR)",
             num(r.threshold, ".3g"), num(r.sensitivity, ".2f"), num(r.specificity, ".2f")]
            for r in run.summary(threshold).itertuples(index=False)]


class CohortTab(QWidget):
    """Cohort validation of the dock's signature from a batch manifest.

    Parameters
    ----------
    state : DockState
        Problems are reported through it (status line and notification).
    inputs : callable
        The dock's current signature and ``(method, options)``.

    Attributes
    ----------
    run : CohortRun or None
        The last run shown.
    """

    #: progress from the worker thread: done, total, message (delivered on the main thread)
    progressed = Signal(int, int, str)

    def __init__(self, state: DockState, inputs: Inputs) -> None:
        super().__init__()
        self.state = state
        self.inputs = inputs
        self.run: CohortRun | None = None
        self._worker = None
        self._manifest_run = ""  # the manifest of the run in progress (named with its numbers)
        self.research_note = Label(value="Validate the current signature and method on a cohort: per patient, "
                                         "tumour and stroma ROI scores and their difference against response. "
                                         f"{RESEARCH_ONLY.capitalize()}.")
        self.manifest_edit = FileEdit(label="manifest", mode="r", filter="*.csv")
        self.manifest_edit.tooltip = ("The CSV roiscore batch reads: slide_id, spots, rois[, image], response "
                                      "(responder / non-responder) and patient (when a patient has several slides).")
        self.discovered_check = CheckBox(text="signature discovered on this cohort (cross-validate)", value=False)
        self.discovered_check.tooltip = ("Its own numbers are then naive (inflated); discovery is repeated inside "
                                         "folds by patient and the held-out patients scored.")
        self.folds_combo = ComboBox(label="folds", choices=FOLD_CHOICES, value=4, enabled=False)
        self.discover_in = ComboBox(label="discovered in", choices=self._classes, value="stroma", enabled=False)
        self.run_button = PushButton(text="Validate")
        self.message = Label(value="choose a manifest with a response column and press Validate")
        self.fixed_threshold = CheckBox(text="use this threshold (else Youden's J per row: optimistic)", value=False)
        self.threshold = FloatSpinBox(label="threshold", value=0.0, min=-1000, max=1000, step=0.05)
        self.marker_combo = ComboBox(label="plot", choices=list(MARKERS), value="stroma")
        self.box = Container(widgets=[self.research_note, self.manifest_edit, self.discovered_check,
                                      self.folds_combo, self.discover_in, self.run_button, self.message,
                                      self.fixed_threshold, self.threshold, self.marker_combo], labels=True)
        wrap_labels(self.research_note, self.message)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.table = read_only_table(HEADERS, min_height=120)
        self.plot = CohortPlot()
        self._build_layout()
        self.run_button.changed.connect(lambda *_: self.start())
        self.discovered_check.changed.connect(self._on_discovered)
        self.manifest_edit.changed.connect(lambda *_: self.clear("new manifest: press Validate"))
        self.fixed_threshold.changed.connect(lambda *_: self.show_numbers())
        self.threshold.changed.connect(lambda *_: self.show_numbers())
        self.marker_combo.changed.connect(lambda *_: self.show_numbers())
        self.progressed.connect(self._on_progress)
        state.classes_changed.connect(self.discover_in.reset_choices)

    def _build_layout(self) -> None:
        scrolling_tab(self, self.box.native, self.progress, self.table, self.plot)

    # -- inputs -------------------------------------------------------------
    def _classes(self, *_) -> list[str]:
        return list(dict.fromkeys(["stroma", "tumour", *self.state.classes]))

    def _on_discovered(self, on: bool) -> None:
        self.folds_combo.enabled = self.discover_in.enabled = bool(on)

    def threshold_value(self) -> float | None:
        """The threshold shown (None: each row's Youden's J)."""
        return float(self.threshold.value) if self.fixed_threshold.value else None

    # -- running ------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a cohort is being validated."""
        return self._worker is not None

    def start(self) -> None:
        """Check the manifest, then score and validate the cohort in a worker thread."""
        if self.running:
            return
        path = str(self.manifest_edit.value or "")
        try:
            check_manifest(path)
            signature, (method, params) = self.inputs()
        except (RoiScoreError, OSError) as err:
            self.clear(f"not run: {err}")
            self.state.report(err)
            return
        options = {"discovered_here": bool(self.discovered_check.value), "folds": self.folds_combo.value,
                   "discover_in": str(self.discover_in.value)}

        def compute():
            try:
                return run_cohort(path, signature, method, params, progress=self.progressed.emit, **options)
            except RoiScoreError as err:  # bad input is an answer, not a crash
                return Problem(err)

        how = "naive + cross-validated" if options["discovered_here"] else "as given"
        self._manifest_run = Path(path).name
        self.clear(f"validating {signature.label} ({method}, {how}) on {self._manifest_run}…")
        self.progress.setRange(0, 0)
        run_in_background(self, compute, self.progress)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        if self.running:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
            self.progress.setFormat(f"{done}/{total}: {text}")

    def _on_error(self, err: Exception) -> None:
        self.message.value = f"cohort validation failed: {type(err).__name__}: {err}"
        self.state.report(err)

    def _on_done(self, out: CohortRun | Problem) -> None:
        if isinstance(out, Problem):
            self.message.value = f"not validated: {out.error}"
            self.state.report(out.error)
            return
        self.show_run(out)
        show_info(f"ROI scores: cohort validated in {out.seconds:.1f} s ({RESEARCH_ONLY})")
        if out.failures:
            show_warning(f"ROI scores: {len(out.failures)} slide(s) left out: " + "; ".join(out.failures))

    # -- showing ------------------------------------------------------------
    def show_run(self, run: CohortRun) -> None:
        """Show a run's numbers, how they were obtained and the plot."""
        self.run = run
        self.message.value = f"{self._manifest_run}: {run.text()}\n({run.seconds:.1f} s)"
        self.show_numbers()

    def show_numbers(self) -> None:
        """Fill the table and redraw the plot at the chosen threshold and compartment."""
        run = self.run
        if run is None:
            return
        threshold = self.threshold_value()
        rows = summary_rows(run, threshold)
        how = list(run.summary()["how"])
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(how[i])
                self.table.setItem(i, j, item)
        self.plot.show_cohort(run.validations, str(self.marker_combo.value), threshold)

    def shown_rows(self) -> list[list[str]]:
        """The table's text, row by row (as the user reads it)."""
        return [[self.table.item(i, j).text() for j in range(self.table.columnCount())]
                for i in range(self.table.rowCount())]

    def clear(self, why: str = "") -> None:
        """Forget the shown run (table, plot) and say why."""
        self.run = None
        self.table.setRowCount(0)
        self.plot.show_cohort({}, "stroma")
        if why:
            self.message.value = why
