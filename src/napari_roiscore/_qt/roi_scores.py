"""The "ROI scores" dock widget: live signature scores per ROI.

The widget only wires napari layers to the pure core:
spots layer (with its :class:`~napari_roiscore.spots.table.SpotTable` in metadata)
-> :class:`~napari_roiscore.scoring.scorer.RoiScorer` -> table, plots, comparison.
Per-spot scores, the spot index, marker masks and compartment proposals are
computed in napari ``thread_worker``s; each ROI edit costs one index query and
an aggregate, throttled so the UI stays fluid while a shape is dragged.

Tabs: *Scores* (table + plots), *Compare* (tumour vs stroma), *ROIs*
(classes, shortcuts, QuPath GeoJSON, compartments, autosave restore),
*Markers* (marker-positive restriction), *Export* (CSV, h5ad, report).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
)
from napari.layers import Image, Points, Shapes
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from napari_roiscore._layer_data import IMAGE_KEY, SPOTS_KEY
from napari_roiscore.rois.autosave import load_autosave, save_autosave, update_bin
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.analysis.export import annotate_spots, scores_csv, write_annotated_h5ad
from napari_roiscore.rois.roi import DEFAULT_CLASSES, Roi
from napari_roiscore.rois.classes import class_colour_rgba, normalise_class
from napari_roiscore.rois.shapes import next_roi_name, rois_from_shapes, shapes_from_rois
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.methods import METHODS, SpotScores
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature, parse_gene_list
from napari_roiscore.analysis.statistics import compare_rois
from napari_roiscore._qt.plots import ScorePlot

if TYPE_CHECKING:
    import napari

HEADERS = ["ROI", "class", "spots", "score", "median"]

#: (label, "method[:option=value,...]") offered in the method box
METHOD_CHOICES = [
    (label, key) for key, (label, _) in METHODS.items() if key != "pseudobulk"
] + [
    ("GeoMx-style pseudobulk per ROI, CPM (live)", "pseudobulk:norm=cpm"),
    ("GeoMx-style pseudobulk per ROI, Q3 across ROIs", "pseudobulk:norm=q3"),
    ("GeoMx-style pseudobulk per ROI, CPM, singscore", "pseudobulk:norm=cpm,score=singscore"),
]


def parse_method(choice: str) -> tuple[str, dict]:
    """``"pseudobulk:norm=q3"`` -> ``("pseudobulk", {"norm": "q3"})``."""
    method, _, opts = str(choice).partition(":")
    params = dict(kv.split("=", 1) for kv in opts.split(",") if "=" in kv)
    return method, params


def _same_transform(a, b) -> bool:
    return (
        np.allclose(a.scale[-2:], b.scale[-2:])
        and np.allclose(a.translate[-2:], b.translate[-2:])
        and np.allclose(a.rotate[-2:, -2:], b.rotate[-2:, -2:])
        and np.allclose(a.shear, b.shear)
        and np.allclose(a.affine.affine_matrix, b.affine.affine_matrix)
    )


class RoiScoresWidget(QWidget):
    """Dock widget: pick spots and ROI layers, a signature and a method; see scores live.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._scorer: RoiScorer | None = None
        self._scores: SpotScores | None = None
        self._score_problem: str | None = None  # why there are no spot scores (bad signature)
        self._roi_layer: Shapes | None = None
        self._known_shapes = 0  # shapes in the ROI layer at the last table update
        self._worker = None
        self._filling = False
        self._bound_keys: list[str] = []
        self.classes: list[str] = list(DEFAULT_CLASSES)
        self.spot_mask: np.ndarray | None = None
        self.marker_fractions: np.ndarray | None = None
        self.marker_label = ""
        self.marker_settings: dict | None = None
        self._marker_source = None  # TissueImage the current spot mask was computed from
        self._otsu: tuple = (None, None)  # (channel layer, Otsu threshold) last computed
        self._auto_picked: set = set()  # channel pickers whose value we chose (the user has not)
        self._picking = False
        self._watched_names: set[int] = set()
        self._marker_request: object | None = None
        self.comparison = None
        self.last_table: pd.DataFrame = pd.DataFrame()
        self._row_names: list[str] = []  # the ROI shown in each table row
        self.autosave_path: Path | None = None
        self._autosave_state = None  # an autosave on offer (ROIs not on screen when the data opened)
        self._checked_autosave: set[str] = set()
        self._prev_rois: list[Roi] = []  # the ROIs at the last table update (deletions are found from it)
        self._offer_replaces: set[tuple[str, bytes]] = set()  # on-screen ROIs an offered version replaces
        self._bin: list[Roi] = []  # deleted (or not yet restored) ROIs the sidecar keeps

        # -- form ---------------------------------------------------------
        self.spots_combo = ComboBox(label="spots", choices=self._spots_choices, nullable=True)
        self.rois_combo = ComboBox(label="ROIs", choices=self._roi_choices, nullable=True)
        self.signature_edit = LineEdit(label="signature", value=", ".join(EXAMPLE_PANEL.up))
        self.signature_note = Label(value=self._signature_note(example=True))
        self.load_signature_button = PushButton(text="Load signature (GMT / YAML / JSON)…")
        self._loaded_signature: Signature | None = None
        self.method_combo = ComboBox(label="method", choices=METHOD_CHOICES, value="mean_z")
        self.class_combo = ComboBox(label="class", choices=self._class_choices, value="tumour")
        self.status = Label(value="")
        self.form = Container(
            widgets=[self.spots_combo, self.rois_combo, self.signature_edit, self.signature_note,
                     self.load_signature_button, self.method_combo, self.class_combo, self.status],
            labels=True,
        )

        # -- Scores tab ---------------------------------------------------------
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Double-click a name or class to edit it; select a row to select its ROI.")
        self.plot = ScorePlot()
        scores_tab = QWidget()
        lay = QVBoxLayout(scores_tab)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 3)
        lay.addWidget(self.plot, 2)

        # -- Compare tab ----------------------------------------------------
        self.compare_text = Label(value="draw tumour and stroma ROIs to compare them")
        self.responder_check = CheckBox(text="responder call (research use only)", value=False)
        self.responder_threshold = FloatSpinBox(label="threshold (tumour − stroma)", value=0.0,
                                                min=-100, max=100, step=0.05)
        self.compare_box = Container(widgets=[self.compare_text, self.responder_check,
                                              self.responder_threshold], labels=True)
        self.compare_table = QTableWidget(0, 6)
        self.compare_table.setHorizontalHeaderLabels(["class", "ROIs", "spots", "mean", "median", "mean ROI"])
        self.compare_table.verticalHeader().setVisible(False)
        self.compare_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.compare_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        compare_tab = QWidget()
        lay = QVBoxLayout(compare_tab)
        lay.addWidget(self.compare_box.native)
        lay.addWidget(self.compare_table)

        # -- ROIs tab -----------------------------------------------------------
        self.new_class_edit = LineEdit(label="new class", value="")
        self.add_class_button = PushButton(text="Add class")
        self.set_class_button = PushButton(text="Set class of selected ROIs")
        self.shortcut_note = Label(value="")
        self.import_button = PushButton(text="Import QuPath GeoJSON…")
        self.export_rois_button = PushButton(text="Export QuPath GeoJSON…")
        self.tumour_channel_combo = ComboBox(label="cancer-cell channel", choices=self._image_choices,
                                             nullable=True)
        self.min_area_spin = FloatSpinBox(label="min region area (µm²)", value=2000, min=0, max=1e7, step=500)
        self.min_area_spin.tooltip = "Tumour and stroma pieces (and holes) smaller than this are dropped."
        self.propose_button = PushButton(text="Propose tumour / stroma compartments")
        self.restore_button = PushButton(text="Restore autosaved ROIs")
        self.restore_button.visible = False
        self.autosave_label = Label(value="autosave: off until a spots layer with a file is chosen")
        self.rois_box = Container(widgets=[
            self.new_class_edit, self.add_class_button, self.set_class_button, self.shortcut_note,
            self.import_button, self.export_rois_button, self.tumour_channel_combo, self.min_area_spin,
            self.propose_button, self.restore_button, self.autosave_label,
        ], labels=True)

        # -- Markers tab ----------------------------------------------------
        self.marker_channel_combo = ComboBox(label="marker channel", choices=self._image_choices, nullable=True)
        self.marker_threshold = FloatSpinBox(label="threshold", value=0, min=0, max=1e9, step=1)
        self.otsu_button = PushButton(text="Otsu threshold")
        self.min_positive = FloatSpinBox(label="min positive area (%)", value=10, min=0, max=100, step=5)
        self.restrict_check = CheckBox(text="restrict scoring to marker-positive spots", value=False)
        self.show_mask_button = PushButton(text="Show positive mask")
        self.marker_status = Label(value="")
        self.markers_box = Container(widgets=[
            self.marker_channel_combo, self.marker_threshold, self.otsu_button, self.min_positive,
            self.restrict_check, self.show_mask_button, self.marker_status,
        ], labels=True)

        # -- Export tab -----------------------------------------------------
        self.save_button = PushButton(text="Save scores as CSV…")
        self.save_h5ad_button = PushButton(text="Save spots with ROIs as .h5ad…")
        self.report_button = PushButton(text="Write report (PNG + PDF)…")
        self.save_session_button = PushButton(text="Save session…")
        self.open_session_button = PushButton(text="Open session…")
        self.export_box = Container(widgets=[self.save_button, self.save_h5ad_button, self.report_button,
                                             self.save_session_button, self.open_session_button])

        self.tabs = QTabWidget()
        self.tabs.addTab(scores_tab, "Scores")
        self.tabs.addTab(compare_tab, "Compare")
        self.tabs.addTab(self.rois_box.native, "ROIs")
        self.tabs.addTab(self.markers_box.native, "Markers")
        self.tabs.addTab(self.export_box.native, "Export")
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.tabs, 1)
        # long messages (errors, paths) wrap instead of widening the dock over the canvas
        for label in (self.signature_note, self.status, self.compare_text, self.shortcut_note,
                      self.autosave_label, self.marker_status):
            label.native.setWordWrap(True)
            label.native.setMinimumWidth(50)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        # -- timers and signals ---------------------------------------------
        self._sig_timer = self._timer(400, self._rescore_spots)
        self._compare_timer = self._timer(300, self.update_comparison)
        self._autosave_timer = self._timer(800, self.autosave_now)

        self.spots_combo.changed.connect(self._on_spots_changed)
        self.rois_combo.changed.connect(self._on_rois_changed)
        self.signature_edit.changed.connect(lambda *_: self._sig_timer.start())
        self.method_combo.changed.connect(lambda *_: self._rescore_spots())
        self.load_signature_button.changed.connect(lambda *_: self._load_signature_dialog())
        self.class_combo.changed.connect(self._on_class_changed)
        self.add_class_button.changed.connect(lambda *_: self.add_class(self.new_class_edit.value))
        self.set_class_button.changed.connect(lambda *_: self.set_selected_class(self.class_combo.value))
        self.import_button.changed.connect(lambda *_: self._import_dialog())
        self.export_rois_button.changed.connect(lambda *_: self._export_rois_dialog())
        self.propose_button.changed.connect(lambda *_: self.propose_compartments())
        self.restore_button.changed.connect(lambda *_: self.restore_autosave())
        self.responder_check.changed.connect(lambda *_: self._compare_timer.start())
        self.responder_threshold.changed.connect(lambda *_: self._compare_timer.start())
        self.marker_channel_combo.changed.connect(lambda *_: self.compute_otsu())
        for combo in (self.tumour_channel_combo, self.marker_channel_combo):
            combo.changed.connect(lambda *_, c=combo: None if self._picking else self._auto_picked.discard(c))
        self.otsu_button.changed.connect(lambda *_: self.compute_otsu())
        self.marker_threshold.changed.connect(lambda *_: self._marker_inputs_changed())
        self.min_positive.changed.connect(lambda *_: self._marker_inputs_changed())
        self.restrict_check.changed.connect(lambda *_: self._marker_inputs_changed())
        self.show_mask_button.changed.connect(lambda *_: self.show_marker_mask())
        self.save_button.changed.connect(lambda *_: self._save_csv_dialog())
        self.save_h5ad_button.changed.connect(lambda *_: self._save_h5ad_dialog())
        self.report_button.changed.connect(lambda *_: self._report_dialog())
        self.save_session_button.changed.connect(lambda *_: self._run_export(
            self.save_session, self._ask_save("Save session", "study.roiscore.json", "Session (*.json)")))
        self.open_session_button.changed.connect(lambda *_: self._open_session_dialog())
        self.table.itemChanged.connect(self._on_item_edited)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        self._refresh_choices()

    def _timer(self, ms: int, slot) -> QTimer:
        t = QTimer(self)
        t.setSingleShot(True)
        t.setInterval(ms)
        t.timeout.connect(slot)
        return t

    # =====================================================================
    # layer choices
    # =====================================================================
    def _spots_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Points) and SPOTS_KEY in ly.metadata]

    def _roi_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Shapes)]

    def _image_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Image) and IMAGE_KEY in ly.metadata]

    def _class_choices(self, _w=None) -> list:
        return list(self.classes)

    def _refresh_choices(self, event=None) -> None:
        for ly in self.viewer.layers:  # renamed layers (e.g. a new channel role) show their new name
            if id(ly) not in self._watched_names:
                self._watched_names.add(id(ly))
                ly.events.name.connect(self._refresh_choices)
        marker_before = self.marker_channel_combo.value
        restricted = self.spot_mask is not None
        for combo in (self.spots_combo, self.rois_combo, self.tumour_channel_combo, self.marker_channel_combo):
            combo.reset_choices()
        if restricted and marker_before is not None and marker_before not in self.viewer.layers:
            # never switch the restriction to another channel behind the user's back
            self.marker_channel_combo.value = None
            show_warning(f"ROI scores: the marker channel {marker_before.name!r} was removed; scores stay "
                         f"restricted to the spots computed from it ({self.marker_label}). Untick the "
                         "restriction in the Markers tab to score all spots.")
        for combo in (self.rois_combo, self.spots_combo):  # ROIs first, see below
            layers = [c for c in combo.choices if c is not None]
            if combo.value is None and layers:
                combo.value = layers[0]
        images = [c for c in self.tumour_channel_combo.choices if c is not None]
        for combo, role in ((self.tumour_channel_combo, "cancer cells"), (self.marker_channel_combo, "macrophages")):
            if combo is self.marker_channel_combo and self.spot_mask is not None:
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
        # ROIs first: the autosave check (with the spots) compares with the ROIs on screen
        if self.rois_combo.value is not None and self._roi_layer is not self.rois_combo.value:
            self._on_rois_changed(self.rois_combo.value)
        if self.rois_combo.value is None and self._roi_layer is not None:
            self._on_rois_changed(None)
        if self.spots_combo.value is not None and self._scorer is None:
            self._on_spots_changed(self.spots_combo.value)

    # =====================================================================
    # signature and spot scores (worker)
    # =====================================================================
    @staticmethod
    def _signature_note(example: bool) -> str:
        if example:
            return "example panel (macrophage genes) — not the published signature; edit freely"
        return "custom signature"

    def signature(self) -> Signature:
        """The signature to score: the loaded file's (while its genes are shown), else the typed genes."""
        genes = [g.upper() for g in parse_gene_list(self.signature_edit.value)]
        loaded = self._loaded_signature
        if loaded is not None and genes == [g.upper() for g in loaded.up]:
            extra = f", down: {', '.join(loaded.down)}" if loaded.down else ""
            extra += ", weighted" if loaded.weights else ""
            self.signature_note.value = f"from file: {loaded.label}{extra}"
            return loaded
        is_example = genes == [g.upper() for g in EXAMPLE_PANEL.up]
        self.signature_note.value = self._signature_note(is_example)
        if is_example:
            return EXAMPLE_PANEL
        return Signature(name="custom signature", up=tuple(parse_gene_list(self.signature_edit.value)))

    def load_signature(self, path: str | Path, index: int = 0) -> Signature:
        """Use signature ``index`` of a GMT/YAML/JSON file (up genes shown in the field)."""
        from napari_roiscore.scoring.signature import load_signatures

        sigs = load_signatures(path)
        if not 0 <= index < len(sigs):
            raise RoiScoreError(f"{path}: no signature number {index + 1} (it holds {len(sigs)}).",
                                "Pick another one.")
        self._loaded_signature = sigs[index]
        self.signature_edit.value = ", ".join(sigs[index].up)
        self._rescore_spots()
        return sigs[index]

    def _load_signature_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load signature", "",
                                              "Signatures (*.gmt *.yaml *.yml *.json)")
        self._run_export(self.load_signature, path)

    def _on_spots_data(self, event=None) -> None:
        """The spots layer got new data (e.g. after Align spots): rescore if its table changed."""
        layer = self.spots_combo.value
        if layer is not None and (self._scorer is None or layer.metadata.get(SPOTS_KEY) is not self._scorer.spots):
            self._on_spots_changed(layer)

    def _on_spots_changed(self, layer) -> None:
        old = getattr(self, "_spots_layer", None)
        if old is not None and old is not layer:
            old.events.data.disconnect(self._on_spots_data)
        if layer is not None and old is not layer:
            layer.events.data.connect(self._on_spots_data)
        self._spots_layer = layer
        self._scorer = RoiScorer(layer.metadata[SPOTS_KEY]) if layer is not None else None
        self._scores = None
        self.spot_mask = None
        self.marker_fractions = None
        self._setup_autosave(layer)
        self._place_rois_on_spots()
        self._rescore_spots()
        if layer is not None and self._otsu[0] is None and self.marker_threshold.value == 0:
            self.compute_otsu()  # the images came before the spots: Otsu needed the spot size
        if layer is not None and self.restrict_check.value and self.marker_channel_combo.value is not None:
            self.apply_marker_restriction()  # the box stays ticked: restrict the new spots too
        if layer is None:
            self.status.value = "no spots layer: open spots (File > Open) to score ROIs"
            self.update_table()  # no spots: no scores left over from the removed layer

    def _rescore_spots(self) -> None:
        if self._scorer is None:
            return
        try:
            signature = self.signature()
        except RoiScoreError as err:
            self._scores = None  # the table must not keep showing the previous signature's scores
            self._score_problem = str(err)
            self._report(err)
            self.update_table()
            return
        self._score_problem = None
        method, params = parse_method(self.method_combo.value)
        scorer = self._scorer
        self.status.value = "computing spot scores…"
        if self._worker is not None:
            self._worker.quit()

        @thread_worker(progress={"desc": "Scoring spots"})
        def compute():
            # bad input comes back as a value, so napari never sees a worker crash
            try:
                scores = scorer.spot_scores(signature, method, **params)
                scorer.index  # build the spot index off the GUI thread  # noqa: B018
            except RoiScoreError as err:
                return (err,)  # a tuple: superqt re-raises a returned exception
            return scores

        worker = compute()
        worker.returned.connect(lambda s, sc=scorer: self._on_scores(sc, s))
        worker.errored.connect(self._report)
        self._worker = worker
        worker.start()

    def _on_scores(self, scorer: RoiScorer, scores: SpotScores | tuple[RoiScoreError]) -> None:
        if scorer is not self._scorer:  # a newer spots layer was chosen meanwhile
            return
        if isinstance(scores, tuple):
            self._scores = None
            self._score_problem = str(scores[0])
            self._report(scores[0])
            self.update_table()
            return
        self._scores = scores
        m = scores.match
        parts = [f"{scores.signature.label}: {m.n_used} gene(s) used"]
        if m.missing:
            parts.append(f"missing from data: {', '.join(m.missing)}")
        if scores.constant:
            parts.append(f"no variation: {', '.join(scores.constant)}")
        self.status.value = "; ".join(parts)
        if m.missing:
            show_warning(f"ROI scores: genes not in the data: {', '.join(m.missing)} — "
                         f"scored with the {m.n_used} present.")
        layer = self.spots_combo.value
        if layer is not None and len(layer.data) == len(scores.values) and np.all(np.isfinite(scores.values)):
            feats = layer.features.copy()
            feats["score"] = scores.values
            self._set_features(layer, feats)
            layer.border_colormap = "viridis"
            layer.border_color = "score"  # outline colour shows each spot's score
        self.update_table()

    def _report(self, err: Exception) -> None:
        msg = str(err) if isinstance(err, RoiScoreError) else f"{type(err).__name__}: {err}"
        self.status.value = f"problem: {msg}"
        show_error(f"ROI scores: {msg}")

    # =====================================================================
    # ROI layer, classes, names
    # =====================================================================
    def _on_rois_changed(self, layer) -> None:
        old = self._roi_layer
        if old is not None:
            for ev in (old.events.data, old.events.set_data, old.events.features):
                ev.disconnect(self._on_roi_edit)
            old.events.data.disconnect(self._on_roi_data)
            for key in self._bound_keys:
                old.bind_key(key, None, overwrite=True)
            self._bound_keys = []
        self._roi_layer = layer
        self._known_shapes = len(layer.data) if layer is not None else 0
        self._prev_rois = []  # another layer: its ROIs were not deleted, so nothing goes into the bin
        if layer is not None:
            feats = layer.features
            missing = [c for c in ("name", "class", "holes") if c not in feats]
            if missing:
                feats = feats.copy()
                n = len(layer.data)
                # text columns, also on an empty layer (an empty list would become float64)
                if "name" in missing:
                    feats["name"] = pd.Series([f"{i + 1:03d}" for i in range(n)], index=feats.index, dtype=object)
                if "class" in missing:
                    feats["class"] = pd.Series(["other"] * n, index=feats.index, dtype=object)
                if "holes" in missing:
                    feats["holes"] = pd.Series([""] * n, index=feats.index, dtype=object)
                self._set_features(layer, feats)
            for c in feats["class"]:
                self._remember_class(str(c))
            for ev in (layer.events.data, layer.events.set_data, layer.events.features):
                ev.connect(self._on_roi_edit)
            layer.events.data.connect(self._on_roi_data)
            self._bind_class_keys()
            self._on_class_changed(self.class_combo.value)
            self._place_rois_on_spots()
            self._recheck_offer()
        self.update_table()

    def _recheck_offer(self) -> None:
        """ROIs arrived after the spots (e.g. a GeoJSON opened later): offer only what is still missing."""
        current = self.current_rois()
        self._bin = update_bin([], current, self._bin)  # on screen again: nothing to restore
        offer = self._autosave_state
        if offer is not None:
            on_screen = {r.key for r in current}
            left = [r for r in offer.rois if r.key not in on_screen]
            if len(left) < len(offer.rois):
                self._autosave_state = dataclasses.replace(offer, rois=left) if left else None
        self._show_restore()

    def _place_rois_on_spots(self) -> None:
        """Put ROIs read from GeoJSON into the spots layer's frame.

        GeoJSON ROIs are in the slide's level-0 pixels, the spots' data frame (as
        ``roiscore score`` reads them), but the reader cannot know the pixel size:
        such a layer arrives with scale 1 and no units.  Without this, the ROIs
        of a Visium slide (µm scale) sat far from their spots and held none.
        """
        layer, spots = self._roi_layer, self.spots_combo.value
        if layer is None or spots is None or not layer.metadata.get("roiscore_rois"):
            return
        unplaced = (all(str(u) == "pixel" for u in layer.units) and np.allclose(layer.scale[-2:], 1)
                    and np.allclose(layer.translate[-2:], 0) and np.allclose(layer.affine.affine_matrix, np.eye(3)))
        if not unplaced or _same_transform(layer, spots):
            return
        layer.units = spots.units
        layer.scale = spots.scale
        layer.translate = spots.translate
        layer.rotate = spots.rotate
        layer.shear = spots.shear
        layer.affine = spots.affine

    def _remember_class(self, cls: str) -> str:
        cls = normalise_class(cls)
        if cls not in self.classes:
            self.classes.append(cls)
            self.class_combo.reset_choices()
            self._bind_class_keys()
        return cls

    def add_class(self, name: str) -> str | None:
        """Add a user-defined ROI class (and make it the class for new ROIs)."""
        if not str(name).strip():
            show_warning("ROI scores: type a class name first.")
            return None
        cls = self._remember_class(name)
        self.class_combo.value = cls
        self.new_class_edit.value = ""
        return cls

    def _bind_class_keys(self) -> None:
        layer = self._roi_layer
        lines = []
        if layer is not None:
            for key in self._bound_keys:
                layer.bind_key(key, None, overwrite=True)
            self._bound_keys = []
            for i, cls in enumerate(self.classes[:9], start=1):
                key = str(i)

                def apply(_layer, cls=cls):
                    self.class_combo.value = cls
                    self.set_selected_class(cls)

                layer.bind_key(key, apply, overwrite=True)
                self._bound_keys.append(key)
                lines.append(f"{key}: {cls}")
        self.shortcut_note.value = ("keys on the ROI layer — " + ", ".join(lines)) if lines else ""

    def _set_features(self, layer: Shapes, feats: pd.DataFrame) -> None:
        """Set features, then restore the defaults for new shapes (napari resets them)."""
        layer.features = feats
        if layer is self._roi_layer:
            self._on_class_changed(self.class_combo.value)

    def _on_class_changed(self, cls: str) -> None:
        layer = self._roi_layer
        if layer is None or cls is None:
            return
        defaults = layer.feature_defaults.iloc[0].to_dict() if len(layer.feature_defaults.columns) else {}
        defaults.update({"class": cls, "name": "", "holes": ""})
        layer.feature_defaults = defaults
        layer.current_edge_color = class_colour_rgba(cls)

    def set_selected_class(self, cls: str) -> None:
        """Give the selected shapes (and every shape of the same ROI) class ``cls``."""
        layer = self._roi_layer
        if layer is None or not layer.selected_data:
            show_info("ROI scores: select ROIs first (selection tool), then set their class.")
            return
        cls = self._remember_class(cls)
        feats = layer.features.copy()
        names = {str(feats["name"].iloc[i]) for i in layer.selected_data}
        feats.loc[feats["name"].astype(str).isin(names), "class"] = cls
        self._set_features(layer, feats)
        self.update_table()

    def _drop_stale_rows(self) -> None:
        """Drop feature rows (and colours) left behind by a discarded, unfinished shape.

        napari 0.9 discards a polygon or path finished with too few vertices
        (``Shapes._finish_drawing``) without removing its feature row and colours;
        the next ROI drawn would then inherit that shape's name and class.  The
        discarded shape is always the last one (the one being drawn).
        """
        layer = self._roi_layer
        if layer is None:
            return
        n = len(layer.data)
        if len(layer.features) > n:
            self._set_features(layer, layer.features.iloc[:n].reset_index(drop=True))
        view = getattr(layer, "_data_view", None)
        for attr in ("_edge_color", "_face_color"):
            colours = getattr(view, attr, None)
            if colours is not None and len(colours) > n:
                setattr(view, attr, colours[:n])

    def _rename_copies(self) -> None:
        """Give pasted copies (napari Ctrl+C / Ctrl+V) a new name, so each is a new ROI.

        napari pastes a shape with the original's features; sharing the name
        would silently merge the copy into the original ROI.  Copies of one
        multi-part ROI pasted together stay one (new) ROI.
        """
        layer = self._roi_layer
        if layer is None or "name" not in layer.features:
            return
        n = len(layer.data)
        known = min(self._known_shapes, n)
        self._known_shapes = n
        if known in (0, n):
            return
        names = [str(x) for x in layer.features["name"]]
        old = set(names[:known])
        if not any(nm in old for nm in names[known:]):
            return
        feats = layer.features.copy()
        taken = list(names)
        new_name: dict[str, str] = {}
        for i in range(known, n):
            if names[i] in old:
                if names[i] not in new_name:
                    new_name[names[i]] = next_roi_name(taken)
                    taken.append(new_name[names[i]])
                feats.loc[feats.index[i], "name"] = new_name[names[i]]
        self._set_features(layer, feats)

    def _ensure_names(self) -> None:
        """Give unnamed shapes the next free 3-digit name (e.g. a freshly drawn ROI)."""
        layer = self._roi_layer
        if layer is None or "name" not in layer.features:
            return
        names = [str(x) for x in layer.features["name"]]
        empty = [i for i, n in enumerate(names) if n.strip() in ("", "nan", "None")]
        if not empty:
            return
        feats = layer.features.copy()
        for i in empty:
            names[i] = next_roi_name(names)
            feats.loc[feats.index[i], "name"] = names[i]
        if "holes" in feats:
            feats["holes"] = feats["holes"].fillna("").astype(str).replace("nan", "")
        self._set_features(layer, feats)

    def _on_roi_data(self, event=None) -> None:
        """Not throttled: a deletion reaches the bin before a new ROI can take the freed name.

        Cheap on every other edit (a drag): only the names are compared.
        """
        layer = self._roi_layer
        if layer is None or not self._prev_rois or "name" not in layer.features:
            return
        names = {str(n) for n in layer.features["name"]}
        if all(r.name in names for r in self._prev_rois):
            return
        try:
            rois = self.current_rois()
        except Exception:  # noqa: BLE001  a half-updated layer: the throttled update catches up
            return
        self._track_deletions(rois)

    @qthrottled(timeout=40, leading=True)
    def _on_roi_edit(self, event=None) -> None:
        self.update_table()

    def current_rois(self) -> list[Roi]:
        """ROIs of the chosen Shapes layer, in the spots layer's pixel frame."""
        layer = self._roi_layer
        spots_layer = self.spots_combo.value
        if layer is None:
            return []
        feats = layer.features
        same = spots_layer is None or _same_transform(layer, spots_layer)
        data = []
        for verts in layer.data:
            v = np.asarray(verts, dtype=float)[:, -2:]
            if not same:
                v = np.array([spots_layer.world_to_data(layer.data_to_world(p))[-2:] for p in v])
            data.append(v)

        def col(key):
            return list(feats[key]) if key in feats else None

        return rois_from_shapes(data, list(layer.shape_type), col("name"), col("class"), col("holes"))

    def _recolour(self) -> None:
        layer = self._roi_layer
        if layer is None or not len(layer.data) or "class" not in layer.features:
            return
        want = np.array([class_colour_rgba(c) for c in layer.features["class"]])
        have = np.asarray(layer.edge_color)
        if have.shape != want.shape or not np.allclose(have, want):
            layer.edge_color = want

    # =====================================================================
    # the table
    # =====================================================================
    def update_table(self) -> None:
        """Recompute the ROI table (and schedule plots, comparison, autosave)."""
        self._drop_stale_rows()
        self._rename_copies()
        self._ensure_names()
        self._recolour()
        rois = self.current_rois()
        self._track_deletions(rois)
        self._autosave_timer.start()
        if self._scorer is None or self._scores is None:
            self.last_table = pd.DataFrame()
            note = "" if self._scorer is None else ("no score: see problem" if self._score_problem
                                                    else "computing…")
            self._row_names = [r.name for r in rois]
            self._fill([[r.name, r.roi_class, "", note, ""] for r in rois])
            self.plot.show_values({}, {})
            self._clear_comparison()
            return
        try:
            df = self._scorer.table(rois, self._scores, spot_mask=self.spot_mask)
        except Exception as err:  # never crash on a half-drawn shape
            self._report(err)
            return
        self.last_table = df
        self._row_names = [str(n) for n in df["roi"]]
        rows = []
        for r in df.itertuples(index=False):
            if r.status == "ok":
                median = "—" if pd.isna(r.median) else f"{r.median:.3f}"  # pseudobulk: one profile, no median
                rows.append([r.roi, r._1, str(r.spots), f"{r.score:.3f}", median])
            else:
                rows.append([r.roi, r._1, str(r.spots), r.status, ""])
        self._fill(rows)
        self.plot.show_values(*self.roi_values(rois))
        self._compare_timer.start()

    def roi_values(self, rois: list[Roi] | None = None) -> tuple[dict, dict]:
        """Spot scores per ROI (respecting the marker restriction) and classes."""
        rois = self.current_rois() if rois is None else rois
        values, classes = {}, {}
        if self._scorer is None or self._scores is None:
            return values, classes
        for roi in rois:
            if roi.problem:
                continue
            m = self._scorer.members(roi, sort=False)  # cached by the table just before
            if self.spot_mask is not None:
                m = m[self.spot_mask[m]]
            values[roi.name] = self._scores.values[m]
            classes[roi.name] = roi.roi_class
        return values, classes

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
        if self._filling or self._roi_layer is None:
            return
        row, col = item.row(), item.column()
        if row >= len(self._row_names) or col not in (0, 1):
            return
        old_name = self._row_names[row]
        if col == 0:
            self.rename_roi(old_name, item.text())
        else:
            self.set_roi_class(old_name, item.text())

    def rename_roi(self, old: str, new: str) -> None:
        """Rename ROI ``old`` (all its shapes) to ``new``; names must stay unique."""
        layer = self._roi_layer
        new = str(new).strip()
        names = [str(n) for n in layer.features["name"]]
        if not new or new in ("nan", "None") or (new != old and new in names):
            why = "already used" if new in names else "empty (or reads as a missing value)"
            show_warning(f"ROI scores: the name {new!r} is {why} — kept {old!r}.")
            self.update_table()
            return
        feats = layer.features.copy()
        feats.loc[feats["name"].astype(str) == old, "name"] = new
        self._set_features(layer, feats)
        self.update_table()

    def set_roi_class(self, name: str, cls: str) -> None:
        layer = self._roi_layer
        cls = self._remember_class(cls)
        feats = layer.features.copy()
        feats.loc[feats["name"].astype(str) == name, "class"] = cls
        self._set_features(layer, feats)
        self.update_table()

    def _on_row_selected(self) -> None:
        layer = self._roi_layer
        if layer is None or self.last_table.empty:
            return
        rows = {i.row() for i in self.table.selectedItems()}
        names = {str(self.last_table["roi"].iloc[r]) for r in rows if r < len(self.last_table)}
        if names:
            idx = {i for i, n in enumerate(layer.features["name"].astype(str)) if n in names}
            layer.selected_data = idx

    # =====================================================================
    # comparison
    # =====================================================================
    def update_comparison(self) -> None:
        """Tumour vs stroma: summary per class, difference with CI and p-value."""
        if self._scorer is None or self._scores is None:
            self._clear_comparison()
            return
        try:
            thr = self.responder_threshold.value if self.responder_check.value else None
            cmp = compare_rois(self._scorer, self.current_rois(), self._scores, spot_mask=self.spot_mask,
                               responder_threshold=thr)
        except RoiScoreError as err:
            self._clear_comparison(str(err))
            return
        self.comparison = cmp
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

    def _clear_comparison(self, why: str = "no scores: nothing to compare") -> None:
        """No numbers are better than the previous signature's or spots' numbers."""
        self._compare_timer.stop()
        self.comparison = None
        self.compare_text.value = why
        self.compare_table.setRowCount(0)

    def comparison_lines(self) -> list[str]:
        if self.comparison is None:
            return []
        out = [self.comparison.text]
        if self.comparison.responder is not None:
            out.append(self.comparison.responder.label)
        return out

    # =====================================================================
    # markers
    # =====================================================================
    def _marker_image(self):
        layer = self.marker_channel_combo.value
        return (layer.metadata[IMAGE_KEY], layer.metadata["roiscore_channel"]) if layer is not None else (None, None)

    def compute_otsu(self) -> None:
        """Set the threshold field to Otsu's threshold of the chosen channel."""
        from napari_roiscore.images.markers import marker_mask

        image, channel = self._marker_image()
        if image is None or self._scorer is None:
            return
        try:
            mask = marker_mask(image, channel, spot_diameter_px=self._scorer.spots.diameter_px)
        except RoiScoreError as err:
            self._report(err)
            return
        self._otsu = (self.marker_channel_combo.value, float(mask.threshold))
        self.marker_threshold.value = float(mask.threshold)  # triggers _marker_inputs_changed

    def _marker_inputs_changed(self) -> None:
        if not self.restrict_check.value:
            if self.spot_mask is not None:
                self.spot_mask = None
                self.marker_status.value = "scoring all spots"
                self.update_table()
            return
        self.apply_marker_restriction()

    def apply_marker_restriction(self) -> None:
        """Compute footprint fractions (worker) and restrict scoring to positive spots."""
        from napari_roiscore.images.markers import footprint_fractions, marker_mask, restrict_spots

        image, channel = self._marker_image()
        if image is None or self._scorer is None:
            show_warning("ROI scores: choose an image channel and a spots layer for the marker filter.")
            return
        spots = self._scorer.spots
        thr = float(self.marker_threshold.value)
        otsu_layer, otsu_thr = self._otsu
        # the field still holds the Otsu value of this channel: label (and save) it as Otsu, not "user"
        is_otsu = otsu_layer is self.marker_channel_combo.value and otsu_thr is not None and np.isclose(
            thr, otsu_thr, rtol=0, atol=10 ** -self.marker_threshold.native.decimals())
        min_frac = float(self.min_positive.value) / 100.0
        self.marker_status.value = "computing marker-positive area under each spot…"
        request = self._marker_request = object()  # only the latest request may set the mask
        scorer = self._scorer

        @thread_worker(progress={"desc": "Marker-positive area"})
        def compute():
            try:
                mask = marker_mask(image, channel, threshold=otsu_thr if is_otsu else thr,
                                   spot_diameter_px=spots.diameter_px)
                if is_otsu:
                    mask = dataclasses.replace(mask, method="otsu")
                frac = footprint_fractions(mask, spots.xy, spots.diameter_px, shape=spots.shape)
            except RoiScoreError as err:
                return (err,)
            return mask, frac

        def done(result):
            if request is not self._marker_request or scorer is not self._scorer:
                return  # settings or spots changed meanwhile: a newer request is running
            if len(result) == 1:
                self._report(result[0])
                return
            mask, frac = result
            self.marker_fractions = frac
            self.spot_mask = restrict_spots(frac, min_frac)
            self._marker_source = image  # the image the mask came from (its layer may be removed later)
            self.marker_label = f"{mask.label}, ≥ {min_frac:.0%} of spot area"
            self.marker_settings = {"channel": mask.channel_name, "threshold": float(mask.threshold),
                                    "threshold_method": mask.method, "level": int(mask.level),
                                    "min_fraction": min_frac, "label": self.marker_label}
            self.marker_status.value = (f"{int(self.spot_mask.sum())} of {len(frac)} spots pass: {self.marker_label}")
            self.update_table()

        worker = compute()
        worker.returned.connect(done)
        worker.errored.connect(self._report)
        worker.start()

    def show_marker_mask(self) -> None:
        """Add the marker-positive mask as a (lazy) layer over the image."""
        from napari_roiscore.images.markers import marker_mask

        image, channel = self._marker_image()
        if image is None:
            return
        try:
            mask = marker_mask(image, channel, threshold=float(self.marker_threshold.value),
                               spot_diameter_px=self._scorer.spots.diameter_px if self._scorer else None)
        except RoiScoreError as err:
            self._report(err)
            return
        kw = mask.layer_kwargs()
        px = self.marker_channel_combo.value.scale[-1]
        kw["scale"] = tuple(s * px for s in kw["scale"])
        kw["translate"] = tuple(t * px for t in kw["translate"])
        name = kw.pop("name")
        kw["units"] = self.marker_channel_combo.value.units  # same units as the image: keeps the scale bar in µm
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.viewer.add_image(mask.data.astype(np.uint8), name=name, colormap="gray", opacity=0.4,
                              blending="additive", contrast_limits=(0, 1), **kw)

    # =====================================================================
    # ROI import / export, compartments
    # =====================================================================
    def add_rois(self, rois: list[Roi]) -> None:
        """Append ROIs to the ROI layer (creating one if needed), keeping names unique."""
        layer = self._roi_layer
        if layer is None:
            from napari_roiscore._layer_data import roi_layer

            data, kw, _ = roi_layer([], pixel_size_um=None)
            # ROIs are in level-0 pixels: the frame of the spots, else of the images (same pixels)
            ref = self.spots_combo.value or self.tumour_channel_combo.value or self.marker_channel_combo.value
            kw["scale"] = tuple(ref.scale[-2:]) if ref is not None else (1.0, 1.0)
            if ref is not None:
                kw["translate"] = tuple(ref.translate[-2:])
                kw["units"] = ref.units
            layer = self.viewer.add_shapes(None, **{k: v for k, v in kw.items() if k not in ("shape_type", "edge_color")})
            self.rois_combo.value = layer
        taken = [str(n) for n in layer.features.get("name", [])]
        renamed = []
        for r in rois:
            name = r.name if r.name not in taken else next_roi_name(taken)
            taken.append(name)
            renamed.append(Roi(name, r.roi_class, r.geometry))
            self._remember_class(r.roi_class)
        sh = shapes_from_rois(renamed)
        if not sh["data"]:
            return
        spots_layer = self.spots_combo.value
        if spots_layer is not None and not _same_transform(layer, spots_layer):
            # ROIs are in the spots' level-0 pixels; this layer has another frame
            sh["data"] = [np.array([layer.world_to_data(spots_layer.data_to_world(p))[-2:] for p in v])
                          for v in sh["data"]]
        n0 = len(layer.data)
        layer.add(sh["data"], shape_type=sh["shape_type"])
        feats = layer.features.copy()
        for key in ("name", "class", "holes"):
            feats.loc[feats.index[n0:], key] = sh[key]
        self._set_features(layer, feats)
        self.update_table()

    def import_geojson(self, path: str | Path) -> int:
        from napari_roiscore.rois.geojson import read_geojson

        rois = read_geojson(path)
        self.add_rois(rois)
        return len(rois)

    def export_geojson(self, path: str | Path) -> Path:
        from napari_roiscore.rois.geojson import write_geojson

        return write_geojson(self.current_rois(), path)

    def propose_compartments(self) -> None:
        """Propose tumour ROIs from the cancer-cell channel and stroma = tissue − tumour (worker)."""
        from napari_roiscore.rois.compartments import propose_compartments

        layer = self.tumour_channel_combo.value
        if layer is None:
            show_warning("ROI scores: choose the cancer-cell channel first.")
            return
        image = layer.metadata[IMAGE_KEY]
        channel = layer.metadata["roiscore_channel"]
        min_area = float(self.min_area_spin.value)

        @thread_worker(progress={"desc": "Proposing compartments"})
        def compute():
            try:
                return propose_compartments(image, tumour_channel=channel, min_area_um2=min_area)
            except RoiScoreError as err:
                return (err,)

        def done(result):
            if isinstance(result, tuple):
                self._report(result[0])
                return
            if not result.rois:
                show_warning(f"ROI scores: no tumour or stroma region of at least {min_area:g} µm² was found "
                             f"in {layer.name!r} — lower 'min region area' (ROIs tab) or check the channel.")
                return
            self.add_rois(result.rois)
            show_info(f"ROI scores: proposed {len(result.of_class('tumour'))} tumour and "
                      f"{len(result.of_class('stroma'))} stroma ROIs — edit them like any ROI.")

        worker = compute()
        worker.returned.connect(done)
        worker.errored.connect(self._report)
        self._compartment_worker = worker
        worker.start()

    # =====================================================================
    # autosave
    # =====================================================================
    def _data_path(self, layer) -> Path | None:
        if layer is None:
            return None
        p = layer.metadata[SPOTS_KEY].provenance.get("path")
        return Path(p) if p else None

    def _setup_autosave(self, layer) -> None:
        path = self._data_path(layer)
        self.autosave_path = path
        self._autosave_state = None
        current = self.current_rois()
        self._prev_rois, self._bin = current, []
        if path is None:
            self.autosave_label.value = "autosave: off (spots not from a file)"
            self._show_restore()
            return
        self.autosave_label.value = f"autosave: on ({path.name})"
        try:
            state = load_autosave(path)
        except RoiScoreError as err:
            self._report(err)
            self.autosave_path = None  # never overwrite a sidecar we could not read
            self.autosave_label.value = "autosave: off (its file is unreadable, see the message)"
            self._show_restore()
            return
        first_look = str(path) not in self._checked_autosave
        self._checked_autosave.add(str(path))
        if state is not None:
            # deleted ROIs that are on screen again (e.g. the sample's own) are not offered
            self._bin = update_bin([], current, state.deleted)
            if first_look:
                self._offer(state, current)
        self._show_restore()

    def _offer(self, state, current: list[Roi]) -> None:
        """Offer the autosaved ROIs that are not on screen; keep them in the bin meanwhile.

        Autosave goes on while the offer stands: the offered ROIs sit in the
        sidecar's bin, so a crash before the user decides loses nothing.
        """
        on_screen = {r.key for r in current}
        offered = [r for r in state.rois if r.key not in on_screen]
        if not offered:
            return
        self._autosave_state = dataclasses.replace(state, rois=offered)
        names = {r.name for r in offered}
        # only these exact on-screen versions are replaced on restore: an ROI drawn or
        # edited after the offer keeps its place (the restored one gets a new name)
        self._offer_replaces = {r.key for r in current if r.name in names}
        keys = {r.key for r in offered}
        self._bin = [r for r in self._bin if r.key not in keys] + offered
        show_info(f"ROI scores: found {len(offered)} autosaved ROI(s) for {self.autosave_path.name} "
                  "that are not on screen — use 'Restore' in the ROIs tab.")

    def _show_restore(self) -> None:
        offer = self._autosave_state
        n_offer = len(offer.rois) if offer is not None else 0
        n_deleted = len(self._bin) - n_offer
        if offer is not None:
            text = f"Restore {n_offer} autosaved ROI(s) from {offer.saved_at:%Y-%m-%d %H:%M} UTC"
            if n_deleted:
                text += f" and {n_deleted} deleted"
        else:
            text = f"Restore {n_deleted} deleted ROI(s)"
        self.restore_button.text = text
        self.restore_button.visible = bool(self._bin)

    def restore_autosave(self) -> None:
        """Put back the autosaved ROIs on offer (replacing same-named ones) and the deleted ones."""
        if not self._bin:
            return
        offer = self._autosave_state
        offered = list(offer.rois) if offer is not None else []
        keys = {r.key for r in offered}
        deleted = [r for r in self._bin if r.key not in keys]
        if offer is not None:
            for c in offer.classes:
                self._remember_class(c)
        layer = self._roi_layer
        replaced = [r for r in self.current_rois() if r.key in self._offer_replaces]
        if layer is not None and replaced:
            names = {r.name for r in replaced}  # the autosaved version replaces the one seen at the offer
            drop = {i for i, n in enumerate(layer.features["name"].astype(str)) if n in names}
            layer.selected_data = drop
            layer.remove_selected()
        self._autosave_state = None
        self._offer_replaces = set()
        self._bin = []
        self._prev_rois = self.current_rois()
        self.add_rois(offered + deleted)  # an ROI whose name is taken on screen gets a new one
        self._bin = replaced  # the replaced versions are not lost either
        self._show_restore()
        self.autosave_now()

    def _track_deletions(self, rois: list[Roi]) -> None:
        """Put ROIs that left the layer since the last update into the bin (at every edit, not debounced:
        a freed name is handed out again at once)."""
        n_before = len(self._bin)
        self._bin = update_bin(self._prev_rois, rois, self._bin)
        self._prev_rois = rois
        if len(self._bin) != n_before:
            self._show_restore()
        if len(self._bin) > n_before and not rois:
            show_info(f"ROI scores: all ROIs deleted — '{self.restore_button.text}' "
                      "in the ROIs tab brings them back.")

    def autosave_now(self) -> Path | None:
        """Write the ROIs (and the bin of deleted ones) to the sidecar now."""
        if self._roi_layer is None:
            return None
        rois = self.current_rois()
        self._track_deletions(rois)
        if self.autosave_path is None:
            return None
        try:
            out = save_autosave(rois, self.autosave_path, classes=self.classes, deleted=self._bin,
                                extra={"signature": self.signature_edit.value, "method": self.method_combo.value})
        except (OSError, TypeError, ValueError, RoiScoreError) as err:
            self.autosave_label.value = f"autosave failed: {err}"
            return None
        self.autosave_label.value = f"autosaved to {out}"
        return out

    # =====================================================================
    # exports
    # =====================================================================
    def _metadata(self) -> dict:
        s = self._scores
        meta = {
            "signature": s.signature.label if s else "",
            "genes used": ", ".join(s.match.used) if s else "",
            "genes missing": ", ".join(s.match.missing) if s else "",
            "method": f"{METHODS[s.method][0]} ({s.method})" if s else "",
            "marker restriction": self.marker_label if self.spot_mask is not None else "none",
            "spots": str(self.autosave_path or ""),
        }
        return meta

    def save_csv(self, path: str | Path) -> Path:
        """Write the current table (plus signature and method) as CSV, atomically."""
        if self.last_table.empty:
            raise RoiScoreError("There are no ROI scores to save yet.", "Draw an ROI and wait for its score.")
        extra = {"marker_restriction": self.marker_label if self.spot_mask is not None else ""}
        return scores_csv(self.last_table, self._scores, path, extra=extra)

    def save_h5ad(self, path: str | Path) -> Path:
        if self._scorer is None:
            raise RoiScoreError("No spots layer is chosen.", "Open spots first.")
        adata = annotate_spots(self._scorer.spots, self.current_rois(), self._scorer.members,
                               self._scores, self.spot_mask)
        return write_annotated_h5ad(adata, path)

    def write_report(self, stem: str | Path) -> tuple[Path, Path]:
        from napari_roiscore.analysis.report import write_report

        if self.last_table.empty:
            raise RoiScoreError("There are no ROI scores to report yet.", "Draw an ROI and wait for its score.")
        self.update_comparison()
        view = self.viewer.screenshot(canvas_only=True, flash=False)
        values, classes = self.roi_values()
        return write_report(stem, view=view, table=self.last_table, values=values, classes=classes,
                            metadata=self._metadata(), comparison_lines=self.comparison_lines())

    # -- sessions ---------------------------------------------------------
    def save_session(self, path: str | Path) -> Path:
        """Save data paths (with checksums), ROIs, signature, method, marker settings and results."""
        from napari_roiscore.session import save_session

        if self._scorer is None or self._scores is None:
            raise RoiScoreError("Nothing to save yet: no spots are scored.", "Open spots and wait for the scores.")
        method, params = parse_method(self.method_combo.value)
        marker = None
        image = None
        if self.spot_mask is not None and self.marker_settings:
            marker = {k: self.marker_settings[k] for k in ("channel", "threshold", "min_fraction", "level")}
            image = self._marker_source
        elif self.marker_channel_combo.value is not None:
            image = self.marker_channel_combo.value.metadata[IMAGE_KEY]
        if image is not None and not image.provenance.get("path"):
            image = None
        return save_session(path, spots=self._scorer.spots, rois=self.current_rois(), signature=self._scores.signature,
                            method=method, params=params, marker=marker, image=image, results=self.last_table,
                            extra={"classes": list(self.classes), "signature_text": self.signature_edit.value,
                                   "method_choice": self.method_combo.value})

    def open_session(self, path: str | Path):
        """Open a session: its data as layers, its ROIs, signature, method and marker restriction.

        The checksums of the data files are verified first (a changed file is an error that
        names it).  Scores then recompute exactly as when the session was saved.
        """
        from napari_roiscore._layer_data import image_layers, roi_layer, spots_layer
        from napari_roiscore.readers.dispatch import read_image
        from napari_roiscore.session import load_session, read_session_spots

        session = load_session(path)
        spots = read_session_spots(session)
        layers = []
        image = None
        if session.image is not None:
            image = read_image(session.image.path, **session.image.options)
            layers += image_layers(image)
        px = image.pixel_size_um if image is not None else spots.pixel_size_um
        layers.append(spots_layer(spots, pixel_size_um=px))
        layers.append(roi_layer(session.rois, name="ROIs", pixel_size_um=px))
        self._checked_autosave.add(str(spots.provenance.get("path")))  # the session is the truth here
        added = []
        for data, kw, kind in layers:
            added.append(getattr(self.viewer, f"add_{kind}")(data, **kw))
        for c in session.extra.get("classes", []):
            self._remember_class(c)
        self._loaded_signature = session.signature
        self.signature_edit.value = ", ".join(session.signature.up)
        choice = session.extra.get("method_choice") or (
            session.method + (":" + ",".join(f"{k}={v}" for k, v in session.params.items()) if session.params else ""))
        if choice in [v for _, v in METHOD_CHOICES]:
            self.method_combo.value = choice
        self.spots_combo.value = added[-2]
        self.rois_combo.value = added[-1]
        if session.marker:
            m = session.marker
            for ly in added[:-2]:
                if ly.metadata.get("roiscore_channel") == m["channel"]:
                    self.marker_channel_combo.value = ly
            self.min_positive.value = 100.0 * float(m.get("min_fraction", 0.1))
            self.marker_threshold.value = float(m["threshold"])
            self.restrict_check.value = True
            self.apply_marker_restriction()  # also when nothing above changed (no change event)
        else:
            self.restrict_check.value = False
        self._rescore_spots()
        return session

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Session (*.json)")
        self._run_export(self.open_session, path)

    def _ask_save(self, title: str, default: str, filt: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, default, filt)
        return path

    def _run_export(self, fn, path) -> None:
        if not path:
            return
        try:
            out = fn(path)
            show_info(f"ROI scores: saved {out}")
        except (RoiScoreError, OSError) as err:
            self._report(err)

    def _save_csv_dialog(self) -> None:
        self._run_export(self.save_csv, self._ask_save("Save ROI scores", "roi_scores.csv", "CSV (*.csv)"))

    def _save_h5ad_dialog(self) -> None:
        self._run_export(self.save_h5ad, self._ask_save("Save spots with ROIs", "spots_rois.h5ad", "AnnData (*.h5ad)"))

    def _report_dialog(self) -> None:
        path = self._ask_save("Write report", "roi_report.png", "PNG and PDF (*.png)")
        self._run_export(lambda p: self.write_report(Path(p).with_suffix("")), path)

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import ROIs", "", "GeoJSON (*.geojson *.json)")
        self._run_export(self.import_geojson, path)

    def _export_rois_dialog(self) -> None:
        self._run_export(self.export_geojson, self._ask_save("Export ROIs", "rois.geojson", "GeoJSON (*.geojson)"))
