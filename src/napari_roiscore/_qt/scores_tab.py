"""The *Scores* tab: one row per ROI (editable name and class), a per-class summary, the score plots.

Each ROI row also shows the evidence behind its score: area, total UMIs,
mean UMIs per spot and genes detected
(:func:`~napari_roiscore.analysis.roi_measurements.measure_rois`).  Columns
sort by their numbers when a header is clicked.
"""

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

HEADERS = ["ROI", "class", "spots", "score", "median", "area µm²", "total UMIs", "mean UMIs/spot",
           "genes detected"]
#: item data role holding the ROI name of a row (rows move when sorted)
NAME_ROLE = Qt.ItemDataRole.UserRole
#: item data role holding the number a cell sorts by
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class SortableItem(QTableWidgetItem):
    """A table cell that sorts by its number (text cells after numbers, by text)."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is not None and b is not None:
            return float(a) < float(b)
        if (a is None) != (b is None):
            return a is not None
        return self.text() < other.text()


def _num(x, fmt: str = "{:.3f}") -> str:
    return "" if x is None or pd.isna(x) else fmt.format(x)


def measurement_cells(m) -> list:
    """Display values of one measurements row (area, total UMIs, mean UMIs/spot, genes detected)."""
    if m is None:
        return ["", "", "", ""]
    area = m.get("area_um2", m.get("area_px2"))
    return [(_num(area, "{:,.0f}"), area), (_num(m["total_umis"], "{:,.0f}"), m["total_umis"]),
            (_num(m["mean_umis_per_spot"], "{:,.1f}"), m["mean_umis_per_spot"]),
            (_num(m["genes_detected"], "{:.0f}"), m["genes_detected"])]


def class_summary(table: pd.DataFrame, measurements: pd.DataFrame) -> list[list]:
    """One row per class: ROIs, spots, mean of the ROI scores, summed area and UMIs, UMIs per spot."""
    if table.empty:
        return []
    df = table.reset_index(drop=True)
    if not measurements.empty and len(measurements) == len(df):
        df = pd.concat([df, measurements.reset_index(drop=True)], axis=1)
    area_col = "area_um2" if "area_um2" in df else ("area_px2" if "area_px2" in df else None)
    rows = []
    for cls, g in df.groupby("class", sort=True):
        ok = g[g["status"] == "ok"]
        score = ok["score"].mean() if len(ok) else float("nan")
        row = [f"all {cls} ({len(g)} ROI{'s' if len(g) != 1 else ''})", str(cls), str(int(g["spots"].sum())),
               _num(score), "" if len(ok) < 2 else f"sd {ok['score'].std():.3f}"]
        if area_col is not None:
            total = g["total_umis"].sum()
            spots = g["spots"].sum()
            row += [_num(g[area_col].sum(), "{:,.0f}"), _num(total, "{:,.0f}"),
                    _num(total / spots if spots else float("nan"), "{:,.1f}"), ""]
        rows.append(row)
    return rows


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
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("Double-click a name or class to edit it; select a row to select its ROI; "
                              "click a header to sort.")
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.summary = QTableWidget(0, len(HEADERS))
        self.summary.setHorizontalHeaderLabels(["per class", *HEADERS[1:4], "spread", *HEADERS[5:]])
        self.summary.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary.verticalHeader().setVisible(False)
        self.summary.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary.horizontalHeader().setStretchLastSection(True)
        self.summary.setToolTip("Per class: ROIs, spots, mean of the ROI scores (and their sd), "
                                "summed area and UMIs, UMIs per spot.")
        self.summary.setMinimumHeight(110)
        self.summary.setMaximumHeight(130)
        self.plot = ScorePlot()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 3)
        lay.addWidget(self.summary, 1)
        lay.addWidget(self.plot, 2)
        self.table.itemChanged.connect(self._on_item_edited)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        state.table_changed.connect(self.show_table)
        state.measurements_changed.connect(self.show_table)

    def show_table(self) -> None:
        """Fill the table and plots from the state's last update."""
        state = self.state
        df = state.last_table
        if state.scorer is None or state.scores is None:
            note = "" if state.scorer is None else ("no score: see problem" if state.score_problem
                                                    else "computing…")
            self.row_names = [r.name for r in state.rois]
            self._fill([[r.name, r.roi_class, "", note, "", "", "", "", ""] for r in state.rois])
            self._fill_summary([])
            self.plot.show_values({}, {})
            return
        self.row_names = [str(n) for n in df["roi"]]
        meas = state.measurements if len(state.measurements) == len(df) else None
        unit = "area µm²" if meas is None or "area_um2" in meas else "area px²"
        for t in (self.table, self.summary):
            t.horizontalHeaderItem(5).setText(unit)
        rows = []
        for i, r in enumerate(df.itertuples(index=False)):
            extra = measurement_cells(None if meas is None else meas.iloc[i])
            if r.status == "ok":
                median = ("—", None) if pd.isna(r.median) else (f"{r.median:.3f}", r.median)  # pseudobulk: no median
                rows.append([r.roi, r._1, (str(r.spots), r.spots), (f"{r.score:.3f}", r.score), median, *extra])
            else:
                rows.append([r.roi, r._1, (str(r.spots), r.spots), r.status, "", *extra])
        self._fill(rows)
        self._fill_summary(class_summary(df, state.measurements))
        self.plot.show_values(*state.roi_values(state.rois))

    def _fill_summary(self, rows: list[list[str]]) -> None:
        t = self.summary
        t.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, val in enumerate(row):
                item = t.item(i, j)
                if item is None:
                    t.setItem(i, j, QTableWidgetItem(str(val)))
                elif item.text() != str(val):
                    item.setText(str(val))

    def _fill(self, rows: list[list]) -> None:
        """Fill the ROI rows; a cell is text or (text, number to sort by)."""
        self._filling = True
        table = self.table
        sort_col = table.horizontalHeader().sortIndicatorSection()
        order = table.horizontalHeader().sortIndicatorOrder()
        table.setSortingEnabled(False)  # rows must not move while they are filled
        try:
            table.setRowCount(len(rows))
            for i, row in enumerate(rows):
                for j, cell in enumerate(row):
                    val, key = cell if isinstance(cell, tuple) else (cell, None)
                    val = str(val)
                    item = table.item(i, j)
                    if item is None:
                        item = SortableItem(val)
                        table.setItem(i, j, item)
                    if item.text() != val:
                        item.setText(val)
                    item.setToolTip(val)  # statuses are longer than the column
                    item.setData(SORT_ROLE, None if key is None or pd.isna(key) else float(key))
                    item.setData(NAME_ROLE, str(row[0]))
                    flags = item.flags()
                    editable = Qt.ItemFlag.ItemIsEditable
                    item.setFlags((flags | editable) if j in (0, 1) else (flags & ~editable))
        finally:
            table.setSortingEnabled(True)
            if sort_col >= 0:
                table.sortItems(sort_col, order)
            self._filling = False

    def roi_of_row(self, row: int) -> str | None:
        """The ROI shown in table row ``row`` (rows move when sorted)."""
        item = self.table.item(row, 0)
        return None if item is None else item.data(NAME_ROLE)

    def _on_item_edited(self, item: QTableWidgetItem) -> None:
        # rows are ROIs also while there are no scores (computing, bad signature, no spots)
        if self._filling or self.state.roi_layer is None:
            return
        row, col = item.row(), item.column()
        old_name = self.roi_of_row(row)
        if old_name is None or col not in (0, 1):
            return
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
        names = {self.roi_of_row(r) for r in rows} - {None}
        if names:
            idx = {i for i, n in enumerate(layer.features["name"].astype(str)) if n in names}
            layer.selected_data = idx
