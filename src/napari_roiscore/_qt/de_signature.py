"""*Signature from genes* in the Discover tab: chosen DE genes -> a scored, saved signature.

Genes are chosen in the differential-expression table (Ctrl/Shift-click for
several), by Ctrl/Shift-clicking volcano points, or with *Top N up* / *Top N
down* (the N significant genes with the smallest adjusted p on that side).
*Make signature from genes* builds a
:class:`~napari_roiscore.scoring.signature.Signature` (genes with log2FC > 0
up, < 0 down; :func:`~napari_roiscore.analysis.signature_from_de.signature_from_de`)
and offers it to the form through ``DockState.signature_offered``: the
signature field shows it and the scores update at once.  *Save signature…*
writes GMT or YAML with the provenance of the DE run
(:func:`~napari_roiscore.analysis.signature_from_de.write_signature`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import Container, Label, LineEdit, PushButton, SpinBox
from qtpy.QtCore import QItemSelectionModel
from qtpy.QtWidgets import QFileDialog, QSizePolicy

from napari_roiscore.analysis.signature_from_de import signature_from_de, write_signature
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.signature import Signature

if TYPE_CHECKING:
    from napari_roiscore._qt.de_panel import DEPanel

#: adjusted p below which a gene counts as significant for *Top N*
ALPHA = 0.05


class SignatureFromGenes:
    """The gene selection of a :class:`~napari_roiscore._qt.de_panel.DEPanel` made into a signature.

    Parameters
    ----------
    panel : DEPanel
        Its table holds the selection; its result the genes' numbers.

    Attributes
    ----------
    signature : Signature or None
        The last signature made (and offered to the form).
    """

    def __init__(self, panel: DEPanel) -> None:
        self.panel = panel
        self.signature: Signature | None = None
        self.top_n = SpinBox(label="N", value=5, min=1, max=200)
        self.top_n_label = Label(value="N")
        self._marks = None  # rings around the selected genes' volcano points
        self.top_up_button = PushButton(text="Top N up")
        self.top_down_button = PushButton(text="Top N down")
        self.clear_button = PushButton(text="Clear selection")
        self.name_edit = LineEdit(label="signature name", value="")
        self.make_button = PushButton(text="Make signature from genes")
        self.save_button = PushButton(text="Save signature… (GMT / YAML)")
        self.selection_note = Label(value="run differential expression, then choose genes")
        self.selection_note.native.setWordWrap(True)
        self.selection_note.native.setMinimumWidth(50)
        self.selection_note.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        top_row = [self.top_n_label, self.top_n, self.top_up_button, self.top_down_button, self.clear_button]
        self.container = Container(widgets=[
            Container(widgets=top_row, layout="horizontal", labels=False),
            self.name_edit, self.selection_note, self.make_button, self.save_button], labels=True)
        self.top_n.tooltip = f"Top N: the N genes with adjusted p < {ALPHA} and the smallest adjusted p on that side"
        self.top_up_button.changed.connect(lambda *_: self._act(lambda: self.select_top("up")))
        self.top_down_button.changed.connect(lambda *_: self._act(lambda: self.select_top("down")))
        self.clear_button.changed.connect(lambda *_: panel.table.clearSelection())
        self.make_button.changed.connect(lambda *_: self._act(self.make_signature))
        self.save_button.changed.connect(lambda *_: panel.state.run_file_action(
            self.save_signature, self._ask_save(),
            lambda out, _p: f"saved the signature {self.build().name} with its provenance to {out}"))
        panel.table.itemSelectionChanged.connect(self._on_selection)
        self.refresh()

    def _act(self, action) -> None:
        try:
            action()
        except RoiScoreError as err:
            self.panel.state.report(err)

    # -- the selection --------------------------------------------------------
    def selected_genes(self) -> list[str]:
        """The selected genes, smallest adjusted p first (the DE table's order)."""
        table = self.panel.table
        items = (table.item(ix.row(), 0) for ix in table.selectionModel().selectedRows(0))
        chosen = {it.text() for it in items if it is not None}
        result = self.panel.result
        if result is None:
            return []
        return [g for g in result.table["gene"] if g in chosen]

    def select(self, genes: list[str], add: bool = True) -> None:
        """Select ``genes`` in the table (rows added for genes beyond the top rows shown)."""
        panel = self.panel
        model = panel.table.selectionModel()
        flag = QItemSelectionModel.SelectionFlag
        if not add:
            panel.table.clearSelection()
        for gene in genes:
            row = panel.gene_row(gene)
            if row is not None:
                model.select(panel.table.model().index(row, 0), flag.Select | flag.Rows)

    def select_top(self, direction: str) -> list[str]:
        """Select the top N significant genes of ``direction`` ("up"/"down") in place of that side's selection."""
        result = self.panel.result
        if result is None:
            raise RoiScoreError("There is no differential expression to choose genes from.", "Run it first.")
        n = int(self.top_n.value)
        top = result.top_genes(n, direction, alpha=ALPHA)
        side = result.table.set_index("gene")["log2FC"]
        keep = [g for g in self.selected_genes() if (side[g] > 0) != (direction == "up")]
        self.select(keep + top, add=False)
        word = "up in " + (result.test if direction == "up" else result.reference)
        if len(top) < n:
            self.panel.state.status.emit(f"only {len(top)} gene(s) {word} have adjusted p < {ALPHA}")
        return top

    def _on_selection(self) -> None:
        genes = self.selected_genes()
        result = self.panel.result
        if result is None or not genes:
            self.selection_note.value = ("select genes: click table rows (Ctrl/Shift for several), Ctrl/Shift-click "
                                         "volcano points, or Top N up / down" if result is not None else
                                         "run differential expression, then choose genes")
        else:
            up, down = self._split(genes)
            self.selection_note.value = (f"{len(genes)} gene(s): up {', '.join(up) or '–'}; "
                                         f"down {', '.join(down) or '–'}")
        self.make_button.enabled = self.save_button.enabled = bool(genes)
        self._mark(genes)

    def _mark(self, genes: list[str]) -> None:
        """Ring the selected genes in the volcano plot."""
        panel = self.panel
        if self._marks is not None:
            if self._marks.axes is not None and self._marks.axes in panel.figure.axes:  # not a cleared plot
                self._marks.remove()
            self._marks = None
        if panel._points is None or not panel.figure.axes:
            return
        names, x, y = panel._points
        chosen = np.isin(names, genes)
        if chosen.any():
            self._marks = panel.figure.axes[0].scatter(x[chosen], y[chosen], s=40, facecolors="none",
                                                       edgecolors="k", linewidths=0.8, zorder=3)
        panel.canvas.draw_idle()

    def _split(self, genes: list[str]) -> tuple[list[str], list[str]]:
        lfc = self.panel.result.table.set_index("gene")["log2FC"]
        return [g for g in genes if lfc[g] > 0], [g for g in genes if lfc[g] < 0]

    def refresh(self) -> None:
        """Follow a new (or no) DE result: buttons on only when there are genes to choose."""
        has = self.panel.result is not None
        for button in (self.top_up_button, self.top_down_button, self.clear_button):
            button.enabled = has
        if has and not self.name_edit.value:
            r = self.panel.result
            self.name_edit.value = f"{r.test}_vs_{r.reference}".replace(" ", "_")
        self._on_selection()

    # -- the signature ----------------------------------------------------------
    def _how(self, genes: list[str]) -> str:
        result = self.panel.result
        up, down = self._split(genes)
        if up == result.top_genes(len(up), "up", alpha=ALPHA) and down == result.top_genes(len(down), "down",
                                                                                          alpha=ALPHA):
            return f"top {len(up)} up / {len(down)} down by adjusted p (< {ALPHA}), Discover tab"
        return f"{len(up)} up / {len(down)} down genes chosen in the Discover tab"

    def build(self) -> Signature:
        """The signature of the selected genes (up: log2FC > 0, down: < 0), with its provenance.

        Raises
        ------
        RoiScoreError
            No result, or no gene selected.
        """
        result = self.panel.result
        if result is None:
            raise RoiScoreError("There is no differential expression to make a signature from.", "Run it first.")
        genes = self.selected_genes()
        if not genes:
            raise RoiScoreError("No gene is selected for the signature.",
                                "Click table rows (Ctrl/Shift for several), Ctrl/Shift-click volcano points, "
                                "or use Top N up / Top N down.")
        name = " ".join(self.name_edit.value.split()) or f"{result.test}_vs_{result.reference}"
        return signature_from_de(result, genes=genes, name=name, how=self._how(genes))

    def make_signature(self) -> Signature:
        """Build the signature and offer it to the form: it is scored at once."""
        sig = self.signature = self.build()
        self.panel.state.signature_offered.emit(sig)
        msg = f"scoring the signature {sig.name} (up {', '.join(sig.up) or '–'}; down {', '.join(sig.down) or '–'})"
        if self.panel.result.exploratory:
            msg += " — EXPLORATORY: p-values of its DE do not generalise"
        self.panel.state.status.emit(msg)
        return sig

    def save_signature(self, path: str):
        """Write the selected genes' signature as .gmt or .yaml with the DE run's provenance."""
        return write_signature(self.build(), path, self.panel.result)

    def _ask_save(self) -> str:
        name = (self.name_edit.value or "signature").replace(" ", "_")
        path, _ = QFileDialog.getSaveFileName(self.panel, "Save signature", f"{name}.yaml",
                                              "YAML with provenance (*.yaml *.yml);;GMT (*.gmt)")
        return path
