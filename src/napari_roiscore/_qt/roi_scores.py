"""The "ROI scores" dock widget: live signature scores per ROI.

The widget only wires napari layers to the pure core:
spots layer (with its :class:`~napari_roiscore.spots.table.SpotTable` in metadata)
-> :class:`~napari_roiscore.scoring.scorer.RoiScorer` -> table, plots, comparison.

The dock builds one :class:`~napari_roiscore._qt.state.DockState`, the form
(:mod:`~napari_roiscore._qt.form`), the live update path
(:mod:`~napari_roiscore._qt.live_update`) and the tabs: *Scores* (table +
plots), *Compare* (tumour vs stroma), *Discover* (differential
expression between ROI classes, :mod:`~napari_roiscore._qt.de_panel`), *Cohort* (validation of the
signature on patients from a batch manifest, :mod:`~napari_roiscore._qt.cohort_tab`), *ROIs* (classes, shortcuts, QuPath
GeoJSON, compartments, autosave restore), *Markers* (marker-positive
restriction), *Export* (CSV, h5ad, report, sessions).  Here it only follows
the viewer's layers and hands the chosen ones to the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from magicgui.widgets import ComboBox
from napari.layers import Points, Shapes
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy, QTabWidget, QVBoxLayout, QWidget

from napari_roiscore._layer_data import SPOTS_KEY
from napari_roiscore._qt import roi_layer
from napari_roiscore._qt.cohort_tab import CohortTab
from napari_roiscore._qt.compare_tab import CompareTab
from napari_roiscore._qt.de_panel import DEPanel
from napari_roiscore._qt.export_tab import ExportTab
from napari_roiscore._qt.form import METHOD_CHOICES, ScoringForm, parse_method
from napari_roiscore._qt.live_update import LiveUpdate
from napari_roiscore._qt.markers_tab import MarkersTab
from napari_roiscore._qt.rois_tab import RoisTab
from napari_roiscore._qt.scores_tab import ScoresTab
from napari_roiscore._qt.spot_colours import SpotColours
from napari_roiscore._qt.state import DockState
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.scorer import RoiScorer

if TYPE_CHECKING:
    import napari

__all__ = ["METHOD_CHOICES", "RoiScoresWidget", "parse_method"]


class RoiScoresWidget(QWidget):
    """Dock widget: pick spots and ROI layers, a signature and a method; see scores live.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    state : DockState
        What the dock shows (layers, scores, restriction, table), with signals.
    form : ScoringForm
        Layer pickers, signature, method, class of new ROIs, status line.
    live : LiveUpdate
        Spot scores (worker) and the throttled ROI table.
    scores_tab, compare_tab, de_panel, cohort_tab, rois_tab, markers_tab, export_tab
        The tabs; ``autosave`` is the ROIs tab's autosave watch.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state = DockState()
        self.form = ScoringForm(napari_viewer, state)
        self.live = LiveUpdate(state, lambda: (self.form.signature(), self.form.method()), parent=self)
        self.spot_colours = SpotColours(napari_viewer, state)
        self.scores_tab = ScoresTab(state)
        self.compare_tab = CompareTab(state)
        self.de_panel = DEPanel(state, self.spot_colours)
        self.cohort_tab = CohortTab(state, lambda: (self.form.signature(), self.form.method()))
        self.markers_tab = MarkersTab(napari_viewer, state)
        self.rois_tab = RoisTab(napari_viewer, state, self.form, self.markers_tab.marker_channel_combo)
        self.autosave = self.rois_tab.autosave
        self.export_tab = ExportTab(napari_viewer, state, self.form, self.markers_tab, self.compare_tab,
                                    self.autosave)
        self.export_tab.colour_scale = lambda: self.spot_colours.scale
        self.export_tab.live_flush = lambda: (self.live.flush(), self.live.measure_now())
        self._auto_picked: set = set()  # channel pickers whose value we chose (the user has not)
        self._picking = False
        self._watched_names: set[int] = set()

        self.tabs = QTabWidget()
        self.tabs.addTab(self.scores_tab, "Scores")
        self.tabs.addTab(self.compare_tab, "Compare")
        self.tabs.addTab(self.de_panel, "Discover")
        self.tabs.addTab(self.cohort_tab, "Cohort")
        self.tabs.addTab(self.rois_tab.container.native, "ROIs")
        self.tabs.addTab(self.markers_tab.container.native, "Markers")
        self.tabs.addTab(self.export_tab.container.native, "Export")
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.container.native)
        layout.addWidget(self.spot_colours.container.native)
        layout.addWidget(self.tabs, 1)
        # long messages (errors, paths) wrap instead of widening the dock over the canvas
        for label in (self.form.signature_note, self.form.status, self.form.layout_notice, self.compare_tab.compare_text,
                      self.rois_tab.shortcut_note, self.autosave.autosave_label, self.markers_tab.marker_status,
                      self.markers_tab.no_channel_note, self.markers_tab.stains.reason):
            label.native.setWordWrap(True)
            label.native.setMinimumWidth(50)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.form.inputs_changed.connect(self.live.rescore_spots)
        self.form.spots_combo.changed.connect(self._on_spots_changed)
        self.form.new_roi_layer_button.changed.connect(lambda *_: self.rois_tab.new_roi_layer())
        self._given_roi_layer: set[int] = set()  # spots layers we made an empty ROI layer for
        self.form.rois_combo.changed.connect(self._on_rois_changed)
        for combo in self._channel_combos():
            combo.changed.connect(lambda *_, c=combo: None if self._picking else self._auto_picked.discard(c))
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        self._refresh_choices()

    # -- conveniences -----------------------------------------------------
    @property
    def last_table(self) -> pd.DataFrame:
        """The last ROI table (empty while there are no scores)."""
        return self.state.last_table

    def current_rois(self) -> list[Roi]:
        """ROIs of the chosen Shapes layer, in the spots layer's pixel frame."""
        return self.state.current_rois()

    # -- following the viewer's layers --------------------------------------
    def _channel_combos(self) -> tuple[ComboBox, ComboBox]:
        return self.rois_tab.tumour_channel_combo, self.markers_tab.marker_channel_combo

    def _refresh_choices(self, event=None) -> None:
        for ly in self.viewer.layers:  # renamed layers (e.g. a new channel role) show their new name
            if id(ly) not in self._watched_names:
                self._watched_names.add(id(ly))
                ly.events.name.connect(self._refresh_choices)
        for combo in (self.form.spots_combo, self.form.rois_combo, self.rois_tab.tumour_channel_combo):
            combo.reset_choices()
        self.markers_tab.reset_choices()
        for combo in (self.form.rois_combo, self.form.spots_combo):  # ROIs first, see below
            layers = [c for c in combo.choices if c is not None]
            if combo.value is None and layers:
                combo.value = layers[0]
        self._pick_channels()
        # ROIs first: the autosave check (with the spots) compares with the ROIs on screen
        state = self.state
        if self.form.rois_combo.value is not None and state.roi_layer is not self.form.rois_combo.value:
            self._on_rois_changed(self.form.rois_combo.value)
        if self.form.rois_combo.value is None and state.roi_layer is not None:
            self._on_rois_changed(None)
        if self.form.spots_combo.value is not None and state.scorer is None:
            self._on_spots_changed(self.form.spots_combo.value)
        if self.form.spots_combo.value is not None and self.form.rois_combo.value is None:
            QTimer.singleShot(0, self._ensure_roi_layer)  # after the reader's other layers arrive

    def _ensure_roi_layer(self) -> None:
        """Spots without ROIs: add an empty, styled ROI layer to draw on (once per spots layer)."""
        spots = self.form.spots_combo.value
        if spots is None or id(spots) in self._given_roi_layer:
            return
        if any(isinstance(ly, Shapes) for ly in self.viewer.layers):
            return
        self._given_roi_layer.add(id(spots))
        self.rois_tab.new_roi_layer()

    def _pick_channels(self) -> None:
        """Choose the cancer-cell and marker channels by role, until the user picks one."""
        tumour_combo, marker_combo = self._channel_combos()
        images = [c for c in tumour_combo.choices if c is not None]
        for combo, role in ((tumour_combo, "cancer cells"), (marker_combo, "macrophages")):
            if combo is marker_combo and self.state.spot_mask is not None:
                continue  # under a restriction the channel only changes by the user's hand
            # channels arrive one layer at a time: a pick made by us (not the user) may be bettered
            if images and (combo.value is None or combo in self._auto_picked):
                pick = [ly for ly in images if ly.metadata.get("roiscore_role") == role]
                best = (pick or images)[0]
                if best is not combo.value:
                    self._picking = True
                    try:
                        combo.value = best
                    finally:
                        self._picking = False
                self._auto_picked.add(combo)

    def _on_spots_data(self, event=None) -> None:
        """The spots layer got new data (e.g. after Align spots): rescore if its table changed."""
        layer = self.form.spots_combo.value
        scorer = self.state.scorer
        if layer is not None and (scorer is None or layer.metadata.get(SPOTS_KEY) is not scorer.spots):
            self._on_spots_changed(layer)

    def _on_spots_changed(self, layer: Points | None) -> None:
        old = self.state.spots_layer
        if old is not None and old is not layer:
            old.events.data.disconnect(self._on_spots_data)
        if layer is not None and old is not layer:
            layer.events.data.connect(self._on_spots_data)
        self.state.spots_layer = layer
        self.live.set_spots(RoiScorer(layer.metadata[SPOTS_KEY]) if layer is not None else None)
        # order matters: the autosave check sees the ROIs before they move onto the spots
        self.autosave.on_spots_changed(layer)
        roi_layer.place_on_spots(self.state.roi_layer, layer)
        self.live.rescore_spots()
        self.markers_tab.on_spots_changed(layer)
        self.state.spots_changed.emit(layer)
        if layer is None:
            self.state.status.emit("no spots layer: open spots (File > Open) to score ROIs")
            self.live.update_table()  # no spots: no scores left over from the removed layer

    def _on_rois_changed(self, layer: Shapes | None) -> None:
        state = self.state
        state.roi_layer = layer
        if layer is not None:
            roi_layer.add_missing_columns(layer, state.set_features)
            roi_layer.apply_style(layer, state.spots_layer)
            for c in layer.features["class"]:
                state.remember_class(str(c))
        self.live.watch(layer)  # edits (throttled) first, then the autosave's deletion check
        self.autosave.watch(layer)
        self.rois_tab.bind_class_keys()
        if layer is not None:
            self.rois_tab.apply_class_defaults(self.form.class_combo.value)
            roi_layer.place_on_spots(layer, state.spots_layer)
            self.autosave.recheck_offer()
        state.rois_changed.emit(layer)
        self.live.update_table()
