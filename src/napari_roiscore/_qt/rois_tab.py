"""The *ROIs* tab: classes and their keys, QuPath GeoJSON, proposed compartments, restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, LineEdit, PushButton
from napari.layers import Shapes
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QFileDialog

from napari_roiscore._layer_data import IMAGE_KEY
from napari_roiscore._qt.autosave_watch import AutosaveWatch
from napari_roiscore._qt.form import ScoringForm, image_choices
from napari_roiscore._qt.state import DockState, same_transform
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.classes import class_colour_rgba
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.shapes import next_roi_name, shapes_from_rois


class RoisTab:
    """ROI classes (and keys 1-9 on the ROI layer), import/export, compartments, restore.

    Parameters
    ----------
    viewer : napari.Viewer
        New ROI layers are added to it.
    state : DockState
        Its ROI layer is edited here.
    form : ScoringForm
        Its class box holds the class of new ROIs; its ROI picker gets a new ROI layer.
    marker_combo : ComboBox
        The marker channel picker (a frame for a new ROI layer without spots).
    """

    def __init__(self, viewer, state: DockState, form: ScoringForm, marker_combo: ComboBox) -> None:
        self.viewer = viewer
        self.state = state
        self.form = form
        self._marker_combo = marker_combo
        self._bound_keys: list[str] = []
        self._keys_layer: Shapes | None = None
        self.new_class_edit = LineEdit(label="new class", value="")
        self.add_class_button = PushButton(text="Add class")
        self.set_class_button = PushButton(text="Set class of selected ROIs")
        self.shortcut_note = Label(value="")
        self.import_button = PushButton(text="Import QuPath GeoJSON…")
        self.export_rois_button = PushButton(text="Export QuPath GeoJSON…")
        self.tumour_channel_combo = ComboBox(label="cancer-cell channel",
                                             choices=lambda _w=None: image_choices(viewer), nullable=True)
        self.min_area_spin = FloatSpinBox(label="min region area (µm²)", value=2000, min=0, max=1e7, step=500)
        self.min_area_spin.tooltip = "Tumour and stroma pieces (and holes) smaller than this are dropped."
        self.propose_button = PushButton(text="Propose tumour / stroma compartments")
        self.annotation_combo = ComboBox(label="annotation column", choices=[], nullable=True)
        self.annotation_combo.tooltip = "GeoMx: each AOI becomes an ROI classed by this column's value."
        self.from_annotation_button = PushButton(text="ROIs from annotation column")
        self.autosave = AutosaveWatch(state, self.add_rois, extra=lambda: {
            "signature": form.signature_edit.value, "method": form.method_combo.value})
        self.container = Container(widgets=[
            self.new_class_edit, self.add_class_button, self.set_class_button, self.shortcut_note,
            self.import_button, self.export_rois_button, self.tumour_channel_combo, self.min_area_spin,
            self.propose_button, self.annotation_combo, self.from_annotation_button,
            self.autosave.restore_button, self.autosave.autosave_label,
        ], labels=True)
        self.from_annotation_button.changed.connect(lambda *_: self._rois_from_annotation_clicked())
        state.spots_changed.connect(self.on_spots_changed)
        self.on_spots_changed(None)
        self.add_class_button.changed.connect(lambda *_: self.add_class(self.new_class_edit.value))
        self.set_class_button.changed.connect(lambda *_: self.set_selected_class(form.class_combo.value))
        self.import_button.changed.connect(lambda *_: self._import_dialog())
        self.export_rois_button.changed.connect(lambda *_: self._export_dialog())
        self.propose_button.changed.connect(lambda *_: self.propose_compartments())
        form.class_combo.changed.connect(self.apply_class_defaults)
        state.classes_changed.connect(self.bind_class_keys)
        state.features_replaced.connect(lambda *_: self.apply_class_defaults(form.class_combo.value))

    # -- classes ----------------------------------------------------------
    def add_class(self, name: str) -> str | None:
        """Add a user-defined ROI class (and make it the class for new ROIs)."""
        if not str(name).strip():
            show_warning("ROI scores: type a class name first.")
            return None
        cls = self.state.remember_class(name)
        self.form.class_combo.value = cls
        self.new_class_edit.value = ""
        return cls

    def bind_class_keys(self) -> None:
        """Keys 1-9 on the ROI layer set the class of the selected ROIs (unbound on the previous layer)."""
        if self._keys_layer is not None:
            for key in self._bound_keys:
                self._keys_layer.bind_key(key, None, overwrite=True)
        self._bound_keys = []
        layer = self._keys_layer = self.state.roi_layer
        lines = []
        if layer is not None:
            for i, cls in enumerate(self.state.classes[:9], start=1):
                key = str(i)

                def apply(_layer, cls=cls):
                    self.form.class_combo.value = cls
                    self.set_selected_class(cls)

                layer.bind_key(key, apply, overwrite=True)
                self._bound_keys.append(key)
                lines.append(f"{key}: {cls}")
        self.shortcut_note.value = ("keys on the ROI layer — " + ", ".join(lines)) if lines else ""

    def apply_class_defaults(self, cls: str | None) -> None:
        """New shapes get class ``cls`` (and its colour) and an empty name."""
        layer = self.state.roi_layer
        if layer is None or cls is None:
            return
        defaults = layer.feature_defaults.iloc[0].to_dict() if len(layer.feature_defaults.columns) else {}
        defaults.update({"class": cls, "name": "", "holes": ""})
        layer.feature_defaults = defaults
        layer.current_edge_color = class_colour_rgba(cls)

    def set_selected_class(self, cls: str) -> None:
        """Give the selected shapes (and every shape of the same ROI) class ``cls``."""
        layer = self.state.roi_layer
        if layer is None or not layer.selected_data:
            show_info("ROI scores: select ROIs first (selection tool), then set their class.")
            return
        cls = self.state.remember_class(cls)
        feats = layer.features.copy()
        names = {str(feats["name"].iloc[i]) for i in layer.selected_data}
        feats.loc[feats["name"].astype(str).isin(names), "class"] = cls
        self.state.set_features(layer, feats)
        self.state.refresh()

    # -- adding ROIs ------------------------------------------------------
    def new_roi_layer(self, name: str = "ROIs") -> Shapes:
        """Add an empty ROI layer in the spots' frame, styled and chosen as the ROI layer."""
        from napari_roiscore._layer_data import roi_layer
        from napari_roiscore._qt.roi_layer import edge_width_for

        data, kw, _ = roi_layer([], name=name, pixel_size_um=None)
        # ROIs are in level-0 pixels: the frame of the spots, else of the images (same pixels)
        ref = self.state.spots_layer or self.tumour_channel_combo.value or self._marker_combo.value
        kw["scale"] = tuple(ref.scale[-2:]) if ref is not None else (1.0, 1.0)
        if ref is not None:
            kw["translate"] = tuple(ref.translate[-2:])
            kw["units"] = ref.units
        if ref is not None:
            kw["edge_width"] = edge_width_for(ref, ref) * float(np.max(ref.scale[-2:])) / float(max(kw["scale"]))
        layer = self.viewer.add_shapes(None, **{k: v for k, v in kw.items() if k not in ("shape_type", "edge_color")})
        layer.current_edge_width = kw["edge_width"]
        self.form.rois_combo.value = layer
        return layer

    def add_rois(self, rois: list[Roi]) -> None:
        """Append ROIs to the ROI layer (creating one if needed), keeping names unique."""
        layer = self.state.roi_layer
        if layer is None:
            layer = self.new_roi_layer()
        taken = [str(n) for n in layer.features.get("name", [])]
        renamed = []
        for r in rois:
            name = r.name if r.name not in taken else next_roi_name(taken)
            taken.append(name)
            renamed.append(Roi(name, r.roi_class, r.geometry))
            self.state.remember_class(r.roi_class)
        sh = shapes_from_rois(renamed)
        if not sh["data"]:
            return
        spots_layer = self.state.spots_layer
        if spots_layer is not None and not same_transform(layer, spots_layer):
            # ROIs are in the spots' level-0 pixels; this layer has another frame
            sh["data"] = [np.array([layer.world_to_data(spots_layer.data_to_world(p))[-2:] for p in v])
                          for v in sh["data"]]
        n0 = len(layer.data)
        layer.add(sh["data"], shape_type=sh["shape_type"])
        feats = layer.features.copy()
        for key in ("name", "class", "holes"):
            feats.loc[feats.index[n0:], key] = sh[key]
        self.state.set_features(layer, feats)
        self.state.refresh()

    def import_geojson(self, path: str | Path) -> int:
        """Add the ROIs of a QuPath GeoJSON file; return how many."""
        from napari_roiscore.rois.geojson import read_geojson

        rois = read_geojson(path)
        self.add_rois(rois)
        return len(rois)

    def export_geojson(self, path: str | Path) -> Path:
        """Write the ROIs as QuPath GeoJSON (level-0 pixels of the spots)."""
        from napari_roiscore.rois.geojson import write_geojson

        return write_geojson(self.state.current_rois(), path)

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
                self.state.report(result[0])
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
        worker.errored.connect(self.state.report)
        self._compartment_worker = worker
        let_go_when_finished(worker)  # napari keeps finished workers for the session
        worker.start()

    # -- GeoMx: ROIs from annotation values ---------------------------------
    def on_spots_changed(self, layer) -> None:
        """Offer the spots' annotation columns (and put them on the layer, for hover)."""
        from napari_roiscore._layer_data import SPOTS_KEY
        from napari_roiscore.rois.annotation_groups import annotation_columns

        spots = layer.metadata.get(SPOTS_KEY) if layer is not None else None
        cols = annotation_columns(spots) if spots is not None else []
        self.annotation_combo.choices = cols
        if cols:
            preferred = [c for c in cols if c.lower() in ("segment", "segment_type", "aoi_type", "class")]
            self.annotation_combo.value = (preferred or cols)[0]
        why = "" if cols else ("open spots first" if spots is None else
                               "these spots have no annotation column with 2–50 values")
        self.from_annotation_button.enabled = self.annotation_combo.enabled = bool(cols)
        self.from_annotation_button.tooltip = why or "One ROI per spot (AOI), classed by the chosen column."
        if layer is not None and cols:
            feats = layer.features.copy()
            obs = spots.adata.obs
            added = False
            for c in cols:
                if c not in feats and len(obs) == len(feats):
                    feats[c] = obs[c].astype(str).to_numpy()
                    added = True
            if added:
                self.state.set_features(layer, feats)

    def rois_from_annotation(self, column: str) -> int:
        """One ROI per spot (GeoMx AOI) classed by ``column``, on a new ROI layer; return how many."""
        from napari_roiscore.rois.annotation_groups import rois_from_annotation

        if self.state.scorer is None:
            raise RoiScoreError("No spots layer is chosen.", "Open spots (e.g. a GeoMx folder) first.")
        rois = rois_from_annotation(self.state.scorer.spots, column)
        self.new_roi_layer(name=f"AOIs by {column}")
        self.add_rois(rois)
        return len(rois)

    def _rois_from_annotation_clicked(self) -> None:
        column = self.annotation_combo.value
        if column is None:
            show_warning("ROI scores: choose an annotation column first.")
            return
        try:
            n = self.rois_from_annotation(column)
        except RoiScoreError as err:
            self.state.report(err)
            return
        classes = sorted({r.roi_class for r in self.state.current_rois()})
        msg = f"made {n} ROI(s), one per AOI, classed by {column}: {', '.join(classes)}"
        self.state.status.emit(msg)
        show_info(f"ROI scores: {msg}")

    # -- dialogs ----------------------------------------------------------
    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.container.native, "Import ROIs", "", "GeoJSON (*.geojson *.json)")
        self.state.run_file_action(self.import_geojson, path,
                                   lambda n, p: f"imported {n} ROI(s) from {Path(p).name}")

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.container.native, "Export ROIs", "rois.geojson",
                                              "GeoJSON (*.geojson)")
        self.state.run_file_action(self.export_geojson, path, lambda out, _p: (
            f"exported {len(self.state.current_rois())} ROI(s) as QuPath GeoJSON to {out}"))
