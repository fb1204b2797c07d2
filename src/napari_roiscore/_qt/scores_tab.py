"""The *Scores* tab: one row per ROI (editable name and class) and the score plots."""

from __future__ import annotations

import pandas as pd
from napari.utils.notifications import show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_roiscore._qt.plots import ScorePlot
from napari_roiscore._qt.state import DockState

HEADERS = ["ROI", "class", "spots", "score", "median"]


class ScoresTab(QWidget):
    """The ROI table and the per-ROI score plots, redrawn at each table update.

    Parameters
    ----------
    state : DockState
        Shown from ``last_table`` / ``rois``; renames and class edits go to its ROI layer.
    """

    def __init__(self, state: DockState) -> None:
        super().__init__()
        self.state = state
        self._filling = False
        self.row_names: list[str] = []  # the ROI shown in each table row
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Double-click a name or class to edit it; select a row to select its ROI.")
        self.plot = ScorePlot()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 3)
        lay.addWidget(self.plot, 2)
        self.table.itemChanged.connect(self._on_item_edited)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        state.table_changed.connect(self.show_table)

    def show_table(self) -> None:
        """Fill the table and plots from the state's last update."""
        state = self.state
        df = state.last_table
        if state.scorer is None or state.scores is None:
            note = "" if state.scorer is None else ("no score: see problem" if state.score_problem
                                                    else "computing…")
            self.row_names = [r.name for r in state.rois]
            self._fill([[r.name, r.roi_class, "", note, ""] for r in state.rois])
            self.plot.show_values({}, {})
            return
        self.row_names = [str(n) for n in df["roi"]]
        rows = []
        for r in df.itertuples(index=False):
            if r.status == "ok":
                median = "—" if pd.isna(r.median) else f"{r.median:.3f}"  # pseudobulk: one profile, no median
                rows.append([r.roi, r._1, str(r.spots), f"{r.score:.3f}", median])
            else:
                rows.append([r.roi, r._1, str(r.spots), r.status, ""])
        self._fill(rows)
        self.plot.show_values(*state.roi_values(state.rois))

    def _fill(self, rows: list[list[str]]) -> None:
        self._filling = True
        try:
            self.table.setRowCount(len(rows))
            for i, row in enumerate(rows):
                for j, val in enumerate(row):
                    item = self.table.item(i, j)
                    if item is None:
                        item = QTableWidgetItem(str(val))
                        item.setToolTip(str(val))  # statuses are longer than the column
                        self.table.setItem(i, j, item)
                    elif item.text() != str(val):
                        item.setText(str(val))
                        item.setToolTip(str(val))
                    flags = item.flags()
                    editable = Qt.ItemFlag.ItemIsEditable
                    item.setFlags((flags | editable) if j in (0, 1) else (flags & ~editable))
        finally:
            self._filling = False

    def _on_item_edited(self, item: QTableWidgetItem) -> None:
        # rows are ROIs also while there are no scores (computing, bad signature, no spots)
        if self._filling or self.state.roi_layer is None:
            return
        row, col = item.row(), item.column()
        if row >= len(self.row_names) or col not in (0, 1):
            return
        old_name = self.row_names[row]
        if col == 0:
            self.rename_roi(old_name, item.text())
        else:
            self.set_roi_class(old_name, item.text())

    def rename_roi(self, old: str, new: str) -> None:
        """Rename ROI ``old`` (all its shapes) to ``new``; names must stay unique."""
        layer = self.state.roi_layer
        new = str(new).strip()
        names = [str(n) for n in layer.features["name"]]
        if not new or new in ("nan", "None") or (new != old and new in names):
            why = "already used" if new in names else "empty (or reads as a missing value)"
            show_warning(f"ROI scores: the name {new!r} is {why} — kept {old!r}.")
            self.state.refresh()
            return
        feats = layer.features.copy()
        feats.loc[feats["name"].astype(str) == old, "name"] = new
        self.state.set_features(layer, feats)
        self.state.refresh()

    def set_roi_class(self, name: str, cls: str) -> None:
        """Give every shape of ROI ``name`` class ``cls``."""
        layer = self.state.roi_layer
        cls = self.state.remember_class(cls)
        feats = layer.features.copy()
        feats.loc[feats["name"].astype(str) == name, "class"] = cls
        self.state.set_features(layer, feats)
        self.state.refresh()

    def _on_row_selected(self) -> None:
        layer, table = self.state.roi_layer, self.state.last_table
        if layer is None or table.empty:
            return
        rows = {i.row() for i in self.table.selectedItems()}
        names = {str(table["roi"].iloc[r]) for r in rows if r < len(table)}
        if names:
            idx = {i for i, n in enumerate(layer.features["name"].astype(str)) if n in names}
            layer.selected_data = idx
