"""The *Discover* tab: differential expression between two ROI classes (research use only).

The ROIs of the chosen spots become pseudobulk samples
(:func:`~napari_roiscore.analysis.pseudobulk_samples.roi_pseudobulk`, honouring
the marker restriction) and PyDESeq2 compares them
(:func:`~napari_roiscore.analysis.differential.differential_expression`) in a
napari ``thread_worker``: the dock stays responsive.  Too few independent
units is a refusal shown in the panel and as a notification: the ROIs of one
slide are not replicates, so a run on them is refused unless the user makes
each ROI its unit (TMA cores) or asks for an *exploratory* run (labelled so in
the tab, the volcano, the CSV).  A spots table naming each spot's slide (a
``slide`` / ``slide name`` column, e.g. GeoMx) gives one sample per ROI and
slide.  Clicking a gene in the table or a point of the volcano colours the
spots by that gene; chosen genes become a signature (:mod:`~napari_roiscore._qt.de_signature`).
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QItemSelectionModel, Qt
from qtpy.QtWidgets import QAbstractItemView, QFileDialog, QProgressBar, QTableWidgetItem, QWidget

from napari_roiscore._qt.de_signature import SignatureFromGenes
from napari_roiscore._qt.spot_colours import SpotColours
from napari_roiscore._qt.state import DockState
from napari_roiscore._qt.tab_layout import read_only_table, run_in_background, scrolling_tab, wrap_labels
from napari_roiscore.analysis.differential import RESEARCH_ONLY, DEResult, differential_expression
from napari_roiscore.analysis.pseudobulk_samples import roi_pseudobulk, split_by_slide
from napari_roiscore.analysis.volcano import draw_volcano, volcano_points
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.scorer import RoiScorer

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
    """Why differential expression was refused (too few replicates, unknown class...); ``error`` is the reason."""

    error: RoiScoreError


def rois_fingerprint(rois: list) -> tuple:
    """Names, classes and outlines of ROIs: tells whether a result still matches them."""
    return tuple((r.name, r.roi_class, r.geometry.wkb if r.geometry is not None else b"") for r in rois)


def de_samples(spots, rois: list, spot_mask=None):
    """Pseudobulk samples of ``rois``, one per ROI and slide of ``spots`` (marker restriction honoured).

    Runs in a worker on what the dock showed at the click: a fresh scorer, never the dock's (its
    caches serve the live updates).
    """
    if spots is None:
        raise RoiScoreError("No spots layer is chosen.", "Open spots and draw ROIs of two classes.")
    scorer = RoiScorer(spots)
    return roi_pseudobulk(split_by_slide(spots, rois, spot_mask=spot_mask, scorer=scorer), scorer=scorer)


def plot_modifiers(event) -> set[str]:
    """Modifier keys held during a matplotlib click ("ctrl", "shift"...)."""
    mods = set(getattr(event, "modifiers", None) or ())
    key = getattr(event, "key", None) or ""
    mods |= {"ctrl" if k == "control" else k for k in key.split("+")}
    return mods


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
        self.descriptive_check = CheckBox(text="exploratory (too few units)", value=False)
        self.descriptive_check.tooltip = ("Run even with fewer than 3 independent units per group; the result is "
                                          "labelled EXPLORATORY: fold changes describe these ROIs, p-values do not "
                                          "generalise.")
        self.run_button = PushButton(text="Run differential expression")
        self.export_button = PushButton(text="Export DE CSV…", enabled=False)
        self.message = Label(value="choose two ROI classes and run (research use only)")
        self.box = Container(widgets=[self.research_note, self.group_a, self.group_b, self.unit_combo,
                                      self.descriptive_check, self.run_button, self.message], labels=True)
        wrap_labels(self.research_note, self.message)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # busy indicator: PyDESeq2 gives no progress
        self.busy.setVisible(False)
        self.table = read_only_table(HEADERS, stretch=True, min_height=150)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # genes for a signature
        self.table.setSortingEnabled(True)
        self.figure = Figure(figsize=(4, 3), dpi=90)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        lay = scrolling_tab(self, self.box.native, self.busy, self.table, self.canvas)  # table above the volcano
        self.genes = SignatureFromGenes(self)
        lay.addWidget(self.genes.container.native)
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

        rois = state.current_rois()  # read on the main thread; the worker only computes
        spots, mask = (state.scorer.spots if state.scorer is not None else None), state.spot_mask

        def compute():
            try:
                samples = de_samples(spots, rois, mask)
                return differential_expression(samples, "class", a, b, unit=unit, descriptive=descriptive)
            except RoiScoreError as err:  # a refusal is an answer, not a crash
                out = Refusal(str(err))  # (a worker returning an exception would raise it)
                out.error = err
                return out

        self.clear(f"computing {a} vs {b} (PyDESeq2)…")
        self._run_rois = rois_fingerprint(rois)
        run_in_background(self, compute, self.busy)

    def _on_error(self, err: Exception) -> None:
        self.message.value = f"differential expression failed: {type(err).__name__}: {err}"
        self.state.report(err)

    def _on_done(self, out: DEResult | Refusal) -> None:
        if isinstance(out, Refusal):
            self.refusal = str(out)
            fix = out.error.fix
            if self.unit_combo.value == "slide" and "independent replicates" in out.error.problem:
                fix = ("Add ROIs from more slides; choose 'each ROI' as the independent unit only if every ROI "
                       "comes from a different patient (TMA cores); or tick 'exploratory' to run it anyway, "
                       "labelled EXPLORATORY (p-values do not generalise).")
            self.message.value = f"refused: {out.error.problem}\nFix: {fix}"
            show_warning(f"ROI scores: differential expression refused: {out}")
            return
        self.show_result(out)
        show_info(f"ROI scores: differential expression {out.label}: {len(out.table)} genes tested")

    # -- showing ------------------------------------------------------------
    def show_result(self, result: DEResult) -> None:
        """Fill the table (top genes by adjusted p) and draw the volcano plot."""
        self.result, self.refusal = result, ""
        lines = [f"{result.headline}: {len(result.table)} genes. {RESEARCH_ONLY}"]
        if result.note:
            lines.append(result.note)
        self.message.value = "\n".join(lines)
        self.message.native.setStyleSheet("color: #f0b000;" if result.exploratory else "")
        self.stale = False
        top = result.table.head(TOP_ROWS)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(top))
        for i, r in enumerate(top.itertuples(index=False)):
            self._fill_row(i, r, str(r.gene))
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
        self.genes.refresh()

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
        self.message.native.setStyleSheet("")
        self.genes.refresh()
        if why:
            self.message.value = why

    def shown_genes(self) -> list[str]:
        """The genes in the table, top to bottom as shown."""
        return [self.table.item(i, 0).text() for i in range(self.table.rowCount())]

    # -- gene picking -------------------------------------------------------
    def _on_cell(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:  # Qt has (de)selected the row itself (Ctrl/Shift-clicks add to the selection)
            self.spot_colours.colour_by_gene(item.text())

    def _on_plot_click(self, event) -> None:
        if self._points is None or event.inaxes is None or event.xdata is None:
            return
        genes, x, y = self._points
        if not len(genes):
            return
        sx, sy = max(float(np.ptp(x)), 1e-9), max(float(np.ptp(y)), 1e-9)
        i = int(np.argmin(((x - event.xdata) / sx) ** 2 + ((y - event.ydata) / sy) ** 2))
        self.show_gene(str(genes[i]), add=bool({"ctrl", "cmd", "shift"} & plot_modifiers(event)))

    def show_gene(self, gene: str, add: bool = False) -> None:
        """Colour the spots by ``gene`` and select its row (added to the selection with ``add``)."""
        row = self.gene_row(gene)
        if row is not None:
            flag = QItemSelectionModel.SelectionFlag
            how = (flag.Select if add else flag.ClearAndSelect) | flag.Rows
            self.table.selectionModel().select(self.table.model().index(row, 0), how)
            self.table.scrollToItem(self.table.item(row, 0))
        self.spot_colours.colour_by_gene(gene)

    def gene_row(self, gene: str) -> int | None:
        """The table row of ``gene``; a gene of the result beyond the rows shown gets a row at the end."""
        found = [it for it in self.table.findItems(gene, Qt.MatchFlag.MatchExactly) if it.column() == 0]
        if found:
            return found[0].row()
        if self.result is None or gene not in set(self.result.table["gene"]):
            return None
        self.table.setSortingEnabled(False)  # a new row must not move while it is filled
        self._fill_row(self.table.rowCount(), self.result.table.set_index("gene").loc[gene], gene)
        self.table.setSortingEnabled(True)
        return [it for it in self.table.findItems(gene, Qt.MatchFlag.MatchExactly) if it.column() == 0][0].row()

    def _fill_row(self, i: int, r, gene: str) -> None:
        if i >= self.table.rowCount():
            self.table.setRowCount(i + 1)
        self.table.setItem(i, 0, QTableWidgetItem(gene))
        for j, (v, fmt) in enumerate(((r.log2FC, ".3f"), (r.p, ".3g"), (r.adjusted_p, ".3g"),
                                      (r.base_mean, ".1f")), start=1):
            self.table.setItem(i, j, NumberItem(float(v), fmt))

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
