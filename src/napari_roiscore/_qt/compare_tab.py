"""The *Compare* tab: tumour vs stroma summary, difference with CI and p-value."""

from __future__ import annotations

import pandas as pd
from magicgui.widgets import CheckBox, Container, FloatSpinBox, Label
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QTableWidgetItem, QVBoxLayout, QWidget

from napari_roiscore._qt.state import DockState
from napari_roiscore._qt.tab_layout import read_only_table
from napari_roiscore.analysis.statistics import compare_rois
from napari_roiscore.errors import RoiScoreError


class CompareTab(QWidget):
    """Compares ROI classes shortly after each table update (debounced).

    Parameters
    ----------
    state : DockState
        Read for scores, ROIs and restriction; ``state.comparison`` is written here.
    """

    def __init__(self, state: DockState) -> None:
        super().__init__()
        self.state = state
        self.compare_text = Label(value="draw tumour and stroma ROIs to compare them")
        self.responder_check = CheckBox(text="responder call (research use only)", value=False)
        self.responder_threshold = FloatSpinBox(label="threshold (tumour − stroma)", value=0.0,
                                                min=-100, max=100, step=0.05)
        self.compare_box = Container(widgets=[self.compare_text, self.responder_check,
                                              self.responder_threshold], labels=True)
        self.compare_table = read_only_table(["class", "ROIs", "spots", "mean", "median", "mean ROI"], stretch=True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.compare_box.native)
        lay.addWidget(self.compare_table)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self.update_comparison)
        self.responder_check.changed.connect(lambda *_: self._timer.start())
        self.responder_threshold.changed.connect(lambda *_: self._timer.start())
        state.table_changed.connect(self._on_table)

    def _on_table(self) -> None:
        if self.state.scorer is None or self.state.scores is None:
            self.clear()
        else:
            self._timer.start()

    def update_comparison(self) -> None:
        """Tumour vs stroma: summary per class, difference with CI and p-value."""
        state = self.state
        if state.scorer is None or state.scores is None:
            self.clear()
            return
        try:
            thr = self.responder_threshold.value if self.responder_check.value else None
            cmp = compare_rois(state.scorer, state.current_rois(), state.scores, spot_mask=state.spot_mask,
                               responder_threshold=thr)
        except RoiScoreError as err:
            self.clear(str(err))
            return
        state.comparison = cmp
        lines = [cmp.text]
        if cmp.responder is not None:
            lines.append(cmp.responder.label)
        lines.append(cmp.note)
        self.compare_text.value = "\n".join(lines)
        df = cmp.summary_table()
        self.compare_table.setRowCount(len(df))
        for i, r in enumerate(df.itertuples(index=False)):
            vals = [r[0], str(r[1]), str(r[2])] + ["" if pd.isna(v) else f"{v:.3f}" for v in r[3:]]
            for j, v in enumerate(vals):
                self.compare_table.setItem(i, j, QTableWidgetItem(v))

    def clear(self, why: str = "no scores: nothing to compare") -> None:
        """No numbers are better than the previous signature's or spots' numbers."""
        self._timer.stop()
        self.state.comparison = None
        self.compare_text.value = why
        self.compare_table.setRowCount(0)

    def comparison_lines(self) -> list[str]:
        """The comparison (and responder call) as report lines; empty without a comparison."""
        cmp = self.state.comparison
        if cmp is None:
            return []
        out = [cmp.text]
        if cmp.responder is not None:
            out.append(cmp.responder.label)
        return out
