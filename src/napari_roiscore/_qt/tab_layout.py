"""What the dock's analysis tabs share: read-only tables, wrapping labels, a scrolling body
with the table above a plot (the user moves the border between them), and a run in a
background thread with the Run button off and a progress indicator meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from napari.qt.threading import create_worker
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (QAbstractItemView, QHeaderView, QScrollArea, QSizePolicy, QSplitter, QTableWidget,
                            QVBoxLayout, QWidget)

from napari_roiscore._qt.workers import let_go_when_finished


def read_only_table(headers: Sequence[str], *, stretch: bool = False, min_height: int | None = None) -> QTableWidget:
    """A table the user reads (and sorts, where the tab enables it) but does not edit.

    ``stretch`` shares the dock's width between the columns; otherwise each column
    fits its contents (the table scrolls sideways).
    """
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    mode = QHeaderView.ResizeMode.Stretch if stretch else QHeaderView.ResizeMode.ResizeToContents
    table.horizontalHeader().setSectionResizeMode(mode)
    if min_height is not None:
        table.setMinimumHeight(min_height)
    return table


def wrap_labels(*labels) -> None:
    """magicgui Labels that wrap their text and never widen the dock."""
    for label in labels:
        label.native.setWordWrap(True)
        label.native.setMinimumWidth(50)
        label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)


def scrolling_tab(tab: QWidget, controls: QWidget, progress: QWidget, table: QWidget,
                  plot: QWidget) -> QVBoxLayout:
    """Lay ``tab`` out in a scroll area (it never forces the dock taller): controls, progress,
    then the table above the plot.  Returns the body's layout, for widgets below them."""
    body = QWidget()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(body)
    outer = QVBoxLayout(tab)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    lay = QVBoxLayout(body)
    lay.addWidget(controls)
    lay.addWidget(progress)
    split = QSplitter(Qt.Orientation.Vertical)
    split.addWidget(table)
    split.addWidget(plot)
    lay.addWidget(split, 1)
    return lay


def run_in_background(tab: Any, compute: Callable[[], Any], indicator: QWidget) -> None:
    """Run ``compute`` in a napari worker thread; the dock stays responsive.

    Meanwhile ``tab.run_button`` is off and ``indicator`` (a progress bar) shown;
    the result goes to ``tab._on_done``, an unexpected error to ``tab._on_error``.
    ``tab._worker`` holds the worker until it ends (``None`` = not running).
    """
    def finished() -> None:
        tab._worker = None
        tab.run_button.enabled = True
        indicator.setVisible(False)

    tab.run_button.enabled = False
    indicator.setVisible(True)
    tab._worker = worker = create_worker(compute)
    worker.returned.connect(tab._on_done)
    worker.errored.connect(tab._on_error)
    worker.finished.connect(finished)
    let_go_when_finished(worker)  # napari keeps finished workers for the session
    worker.start()
