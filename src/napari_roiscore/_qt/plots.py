"""Plots in the dock (matplotlib canvases): score distributions (redrawn debounced) and cohort validation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy

from napari_roiscore.analysis.report import draw_distributions


class ScorePlot(FigureCanvasQTAgg):
    """Box plots per ROI and violins per class.

    :meth:`show_values` is debounced: the plot redraws 250 ms after the last
    change, so dragging an ROI never waits for matplotlib.
    """

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4, 2.4), dpi=90, facecolor="#262930")
        super().__init__(self.figure)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(180)
        self._queued: tuple | None = None
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(250)
        self._redraw_timer.timeout.connect(self._redraw_now)
        self.n_draws = 0

    def show_values(self, values: Mapping[str, np.ndarray], classes: Mapping[str, str]) -> None:
        self._queued = (dict(values), dict(classes))
        self._redraw_timer.start()  # (re)start: debounce

    def _redraw_now(self) -> None:
        if self._queued is None:
            return
        values, classes = self._queued
        self._queued = None
        draw_distributions(self.figure, values, classes)
        dark_axes(self.figure)
        self.draw_idle()
        self.n_draws += 1


def dark_axes(figure: Figure) -> None:
    """napari's dark theme on every axis of ``figure``."""
    for ax in figure.axes:
        ax.set_facecolor("#262930")
        ax.tick_params(colors="white", labelsize=7)
        ax.xaxis.label.set_color("white")
        ax.yaxis.label.set_color("white")
        ax.title.set_color("white")
        for spine in ax.spines.values():
            spine.set_color("#888888")


class CohortPlot(FigureCanvasQTAgg):
    """Patient scores by response and ROC curves of one marker (see
    :func:`~napari_roiscore.analysis.volcano.draw_cohort_marker`)."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4, 2.6), dpi=90, facecolor="#262930")
        super().__init__(self.figure)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(200)
        self.n_draws = 0

    def show_cohort(self, validations: Mapping, marker: str, threshold: float | None = None) -> None:
        """Draw ``marker`` of ``validations`` (label -> CohortValidation); nothing when empty."""
        from napari_roiscore.analysis.volcano import draw_cohort_marker

        if validations:
            draw_cohort_marker(self.figure, dict(validations), marker, threshold)
            dark_axes(self.figure)
            for ax in self.figure.axes:
                legend = ax.get_legend()
                for text in legend.get_texts() if legend is not None else []:
                    text.set_color("white")
            self.figure.tight_layout()
        else:
            self.figure.clear()
        self.draw_idle()
        self.n_draws += 1
