"""The *Discover* tab: differential expression between two ROI classes (research use only).

The ROIs of the chosen spots become pseudobulk samples
(:func:`~napari_roiscore.analysis.pseudobulk_samples.roi_pseudobulk`, honouring
the marker restriction) and PyDESeq2 compares them
(:func:`~napari_roiscore.analysis.differential.differential_expression`) in a
napari ``thread_worker``: the dock stays responsive.  Too few independent
units is a refusal shown in the panel and as a notification.  Clicking a gene
in the table or a point of the volcano colours the spots by that gene.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (QAbstractItemView, QFileDialog, QHeaderView, QProgressBar, QScrollArea, QSizePolicy,
                            QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from napari_roiscore._qt.spot_colours import SpotColours
from napari_roiscore._qt.state import DockState
from napari_roiscore.analysis.differential import RESEARCH_ONLY, DEResult, differential_expression
from napari_roiscore.analysis.pseudobulk_samples import SlideRois, roi_pseudobulk
from napari_roiscore.analysis.volcano import draw_volcano, volcano_points
from napari_roiscore.errors import RoiScoreError

#: what counts as one independent unit -> the ``unit`` of differential_expression
UNIT_CHOICES = [("slide", "slide"), ("each ROI (e.g. TMA cores)", "roi")]
#: rows shown in the table (smallest adjusted p first)
TOP_ROWS = 200
HEADERS = ["gene", "log2FC", "p", "adjusted p", "base mean"]


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (missing values last), not its text."""

    def __init__(self, value: float, fmt: str) -> None:
        super().__init__("" if not np.isfinite(value) else format(value, fmt))
        self.number = float(value) if np.isfinite(value) else np.inf

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.number < getattr(other, "number", np.inf)


class Refusal(str):
    """Why differential expression was refused (too few replicates, unknown class...)."""


def rois_fingerprint(rois: list) -> tuple:
    """Names, classes and outlines of ROIs: tells whether a result still matches them."""
    return tuple((r.name, r.roi_class, r.geometry.wkb if r.geometry is not None else b"") for r in rois)


def de_samples(state: DockState):
    """Pseudobulk samples of the dock's ROIs (one slide; marker restriction honoured)."""
    if state.scorer is None:
        raise RoiScoreError("No spots layer is chosen.", "Open spots and draw ROIs of two classes.")
    slide = SlideRois("slide", state.scorer.spots, state.current_rois(), spot_mask=state.spot_mask)
    return roi_pseudobulk([slide])


class DEPanel(QWidget):
    """Group A vs group B differential expression, its table, volcano plot and CSV export.

    Parameters
    ----------
    state : DockState
        The spots, ROIs and restriction compared.
    spot_colours : SpotColours
        Colours the spots by a gene clicked in the table or the volcano.

    Attributes
    ----------
    result : DEResult or None
        The last differential-expression result shown.
    refusal : str
        Why the last run was refused (empty otherwise).
    """

    def __init__(self, state: DockState, spot_colours: SpotColours) -> None:
        super().__init__()
        self.state = state
        self.spot_colours = spot_colours
        self.result: DEResult | None = None
        self.refusal = ""
        self._worker = None
        self._points: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._run_rois: tuple = ()  # the ROIs (name, class, outline) the result was computed on
        self.stale = False
        self.research_note = Label(value=f"Differential expression between ROI classes (PyDESeq2). {RESEARCH_ONLY}")
        self.group_a = ComboBox(label="group A (test)", choices=self._classes, value="tumour")
        self.group_b = ComboBox(label="group B (reference)", choices=self._classes, value="stroma")
        self.unit_combo = ComboBox(label="independent unit", choices=UNIT_CHOICES, value="slide")
        self.unit_combo.tooltip = ("ROIs of one slide are not replicates; choose 'each ROI' only when every ROI "
                                   "comes from a different patient (e.g. TMA cores)")
        for combo in (self.group_a, self.group_b, self.unit_combo):
            combo.native.setMinimumContentsLength(8)
            combo.native.setSizeAdjustPolicy(combo.native.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.descriptive_check = CheckBox(text="descriptive when too few units",
                                          value=False)
        self.run_button = PushButton(text="Run differential expression")
        self.export_button = PushButton(text="Export DE CSV…", enabled=False)
        self.message = Label(value="choose two ROI classes and run (research use only)")
        self.box = Container(widgets=[self.research_note, self.group_a, self.group_b, self.unit_combo,
                                      self.descriptive_check, self.run_button, self.message], labels=True)
        for label in (self.research_note, self.message):  # wrap, never widen the dock
            label.native.setWordWrap(True)
            label.native.setMinimumWidth(50)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # busy indicator: PyDESeq2 gives no progress
        self.busy.setVisible(False)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.figure = Figure(figsize=(4, 3), dpi=90)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        self.table.setMinimumHeight(150)
        body = QWidget()  # in a scroll area: the tab never forces the dock taller (the canvas keeps its room)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        lay = QVBoxLayout(body)
        lay.addWidget(self.box.native)
        lay.addWidget(self.busy)
        split = QSplitter(Qt.Orientation.Vertical)  # table above the volcano; the user moves the border
        split.addWidget(self.table)
        split.addWidget(self.canvas)
        lay.addWidget(split, 1)
        lay.addWidget(self.export_button.native)
        self.run_button.changed.connect(lambda *_: self.run())
        self.export_button.changed.connect(lambda *_: state.run_file_action(
            self.export_csv, self._ask_save(), lambda out, _p: f"saved the differential expression to {out}"))
        self.table.cellClicked.connect(self._on_cell)
        self.canvas.mpl_connect("button_press_event", self._on_plot_click)
        state.classes_changed.connect(self._reset_classes)
        state.rois_changed.connect(lambda *_: self._reset_classes())
        state.spots_changed.connect(lambda *_: self.clear("new spots: run differential expression again"))
        state.rois_seen.connect(self._on_rois_seen)

    # -- inputs -------------------------------------------------------------
    def _classes(self, *_) -> list[str]:
        found = list(self.state.classes)
        layer = self.state.roi_layer
        if layer is not None and "class" in layer.features:
            found += [str(c) for c in layer.features["class"]]
        return list(dict.fromkeys(found))

    def _reset_classes(self) -> None:
        self.group_a.reset_choices()
        self.group_b.reset_choices()

    # -- running ------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the differential expression is computing."""
        return self._worker is not None

    def run(self) -> None:
        """Start the differential expression of group A vs group B in a worker thread."""
        if self.running:
            return
        state, a, b = self.state, self.group_a.value, self.group_b.value
        unit = None if self.unit_combo.value == "roi" else self.unit_combo.value
        descriptive = bool(self.descriptive_check.value)

        def compute():
            try:
                samples = de_samples(state)
                return differential_expression(samples, "class", a, b, unit=unit, descriptive=descriptive)
            except RoiScoreError as err:  # a refusal is an answer, not a crash
                return Refusal(str(err))  # (a worker returning an exception would raise it)

        self.clear(f"computing {a} vs {b} (PyDESeq2)…")
        self._run_rois = rois_fingerprint(state.current_rois())
        self.run_button.enabled = False
        self.busy.setVisible(True)
        self._worker = worker = create_worker(compute)
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        worker.start()

    def _on_finished(self) -> None:
        self._worker = None
        self.run_button.enabled = True
        self.busy.setVisible(False)

    def _on_error(self, err: Exception) -> None:
        self.message.value = f"differential expression failed: {type(err).__name__}: {err}"
        self.state.report(err)

    def _on_done(self, out: DEResult | Refusal) -> None:
        if isinstance(out, Refusal):
            self.refusal = str(out)
            self.message.value = f"refused: {out}"
            if self.unit_combo.value == "slide":
                self.message.value += (" If each ROI comes from a different patient (TMA cores), "
                                       "choose 'each ROI' as the independent unit.")
            show_warning(f"ROI scores: differential expression refused: {out}")
            return
        self.show_result(out)
        show_info(f"ROI scores: differential expression {out.label}: {len(out.table)} genes tested")

    # -- showing ------------------------------------------------------------
    def show_result(self, result: DEResult) -> None:
        """Fill the table (top genes by adjusted p) and draw the volcano plot."""
        self.result, self.refusal = result, ""
        n = result.units_per_group
        lines = [f"{result.label}: {len(result.table)} genes, design {result.design}, "
                 f"units {n[result.test]} vs {n[result.reference]}. {RESEARCH_ONLY}"]
        if result.note:
            lines.append(result.note)
        self.message.value = "\n".join(lines)
        self.stale = False
        top = result.table.head(TOP_ROWS)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(top))
        for i, r in enumerate(top.itertuples(index=False)):
            self.table.setItem(i, 0, QTableWidgetItem(str(r.gene)))
            for j, (v, fmt) in enumerate(((r.log2FC, ".3f"), (r.p, ".3g"), (r.adjusted_p, ".3g"),
                                          (r.base_mean, ".1f")), start=1):
                self.table.setItem(i, j, NumberItem(float(v), fmt))
        # smallest adjusted p first (a stable sort keeps the table's p order among ties)
        self.table.horizontalHeader().setSortIndicator(3, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.figure.clear()
        draw_volcano(self.figure.add_subplot(), result)
        self.figure.text(0.99, 0.005, RESEARCH_ONLY, ha="right", va="bottom", fontsize=6, color="0.4")
        self.figure.tight_layout()
        self.canvas.draw_idle()
        self._points = volcano_points(result)
        self.export_button.enabled = True

    def _on_rois_seen(self, rois: list) -> None:
        if self.result is not None and not self.stale and rois_fingerprint(rois) != self._run_rois:
            self.stale = True
            self.message.value += "\nThe ROIs changed since this run: run it again for these ROIs."

    def clear(self, why: str = "") -> None:
        """Forget the result (table, plot) and say why."""
        self.result, self.refusal, self._points = None, "", None
        self.table.setRowCount(0)
        self.figure.clear()
        self.canvas.draw_idle()
        self.export_button.enabled = False
        if why:
            self.message.value = why

    def shown_genes(self) -> list[str]:
        """The genes in the table, top to bottom as shown."""
        return [self.table.item(i, 0).text() for i in range(self.table.rowCount())]

    # -- gene picking -------------------------------------------------------
    def _on_cell(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.show_gene(item.text())

    def _on_plot_click(self, event) -> None:
        if self._points is None or event.inaxes is None or event.xdata is None:
            return
        genes, x, y = self._points
        if not len(genes):
            return
        sx, sy = max(float(np.ptp(x)), 1e-9), max(float(np.ptp(y)), 1e-9)
        i = int(np.argmin(((x - event.xdata) / sx) ** 2 + ((y - event.ydata) / sy) ** 2))
        self.show_gene(str(genes[i]))

    def show_gene(self, gene: str) -> None:
        """Colour the spots by ``gene`` and select its row in the table (when shown)."""
        rows = self.table.findItems(gene, Qt.MatchFlag.MatchExactly)
        rows = [it for it in rows if it.column() == 0]
        if rows:
            self.table.selectRow(rows[0].row())
        self.spot_colours.colour_by_gene(gene)

    # -- export -------------------------------------------------------------
    def _ask_save(self) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export differential expression", "differential_expression.csv",
                                              "CSV (*.csv)")
        return path

    def export_csv(self, path: str):
        """Write the whole DE table as CSV (atomic; the output guard refuses to replace inputs)."""
        if self.result is None:
            raise RoiScoreError("There is no differential expression to export.", "Run it first.")
        return self.result.to_csv(path)
