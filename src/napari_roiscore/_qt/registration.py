"""Align spots: move a spots layer onto its image with 2–3 landmark pairs.

Click a recognisable feature on the image in the "landmarks: image" layer,
then the same feature among the spots in "landmarks: spots"; repeat for a
second (and third) feature, in the same order.  "Align" fits the transform
(2 pairs: rotation + uniform scale + shift; 3 or more: affine), moves the
spots, and shows how far each pair still is apart (residuals).  The
transform is stored with the spots (``SpotTable.provenance["transform"]``).
"""

from __future__ import annotations

import numpy as np
from napari.layers import Points
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_roiscore._layer_data import SPOTS_KEY
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.registration import Alignment, apply_transform, fit_landmarks

__all__ = ["IMAGE_LANDMARKS", "SPOT_LANDMARKS", "AlignSpotsWidget"]

IMAGE_LANDMARKS = "landmarks: image"
SPOT_LANDMARKS = "landmarks: spots"

_KINDS = {
    "automatic (2 pairs: similarity, 3+: affine)": None,
    "similarity (rotation, scale, shift)": "similarity",
    "affine (also shear)": "affine",
}


def _world(layer, data: np.ndarray) -> np.ndarray:
    return np.array([layer.data_to_world(p) for p in np.asarray(data)], dtype=np.float64).reshape(-1, 2)


def _to_data(layer, world: np.ndarray) -> np.ndarray:
    return np.array([layer.world_to_data(p) for p in np.asarray(world)], dtype=np.float64).reshape(-1, 2)


class AlignSpotsWidget(QWidget):
    """Landmark alignment of a spots layer onto the image."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.last_alignment: Alignment | None = None
        self._history: list[tuple] = []

        outer = QVBoxLayout(self)
        form = QFormLayout()
        self.spots_combo = QComboBox()
        form.addRow("spots", self.spots_combo)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(list(_KINDS))
        form.addRow("transform", self.kind_combo)
        outer.addLayout(form)
        help_text = QLabel(
            f"1. Add landmark layers.  2. In '{IMAGE_LANDMARKS}' click 2–3 features of the image; "
            f"in '{SPOT_LANDMARKS}' click where the same features are among the spots, in the same order.  "
            "3. Align.")
        help_text.setWordWrap(True)
        outer.addWidget(help_text)
        self.landmarks_button = QPushButton("Add landmark layers")
        self.landmarks_button.clicked.connect(self.landmark_layers)
        self.align_button = QPushButton("Align")
        self.align_button.clicked.connect(self._on_align)
        self.undo_button = QPushButton("Undo last alignment")
        self.undo_button.clicked.connect(self.undo)
        self.undo_button.setEnabled(False)
        for b in (self.landmarks_button, self.align_button, self.undo_button):
            outer.addWidget(b)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        outer.addWidget(self.result)
        outer.addStretch(1)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self._refresh_spots)
        self._refresh_spots()

    # -- layers -------------------------------------------------------------------------
    def _spots_layers(self) -> list[Points]:
        return [ly for ly in self.viewer.layers if isinstance(ly, Points) and SPOTS_KEY in ly.metadata]

    def _refresh_spots(self, _event=None) -> None:
        current = self.spots_combo.currentText()
        names = [ly.name for ly in self._spots_layers()]
        self.spots_combo.blockSignals(True)
        self.spots_combo.clear()
        self.spots_combo.addItems(names)
        if current in names:
            self.spots_combo.setCurrentText(current)
        self.spots_combo.blockSignals(False)

    def spots_layer(self) -> Points:
        name = self.spots_combo.currentText()
        if not name or name not in self.viewer.layers:
            raise RoiScoreError("No spots layer is chosen.", "Open spots (Space Ranger folder, .h5ad...) first.")
        return self.viewer.layers[name]

    def landmark_layers(self) -> tuple[Points, Points]:
        """The two landmark layers (created, in the spots' frame, when missing)."""
        spots = self.spots_layer()
        size = float(max(np.max(spots.size) if len(spots.size) else 10.0, 10.0))
        out = []
        for name, colour in ((IMAGE_LANDMARKS, "red"), (SPOT_LANDMARKS, "cyan")):
            if name in self.viewer.layers:
                out.append(self.viewer.layers[name])
                continue
            layer = self.viewer.add_points(
                np.empty((0, 2)), name=name, scale=spots.scale, translate=spots.translate, units=spots.units,
                size=size, face_color=colour, border_color="white", border_width=0.1, symbol="cross",
                text={"string": "{label}", "color": colour, "size": 12, "anchor": "upper_left"},
                features={"label": np.array([], dtype=object)}, metadata={"roiscore_landmarks": name})
            layer.feature_defaults = {"label": ""}
            layer.events.data.connect(lambda _e, ly=layer: self._number(ly))
            out.append(layer)
        self.viewer.layers.selection.active = out[0]
        out[0].mode = "add"
        return out[0], out[1]

    @staticmethod
    def _number(layer: Points) -> None:
        """Label landmarks 1, 2, 3 so pairs are easy to match."""
        labels = [str(i + 1) for i in range(len(layer.data))]
        if list(layer.features.get("label", [])) != labels:
            feats = layer.features.copy()
            feats["label"] = labels
            layer.features = feats

    # -- align --------------------------------------------------------------------------
    def align(self) -> Alignment:
        """Fit the landmark pairs and move the spots; returns the fit."""
        spots_layer = self.spots_layer()
        image_lm, spot_lm = self.landmark_layers()
        # both landmark sets in the spots layer's own pixel frame, as (x, y)
        fixed = _to_data(spots_layer, _world(image_lm, image_lm.data))[:, ::-1]
        moving = _to_data(spots_layer, _world(spot_lm, spot_lm.data))[:, ::-1]
        alignment = fit_landmarks(moving, fixed, _KINDS[self.kind_combo.currentText()])
        table = spots_layer.metadata[SPOTS_KEY]
        moved = apply_transform(table, alignment, pixel_size_um=table.pixel_size_um)
        self._history.append((spots_layer, table, spot_lm.data.copy()))
        self._show_spots(spots_layer, moved)
        # the spot landmarks follow the spots, so each pair now (nearly) coincides
        moved_lm = alignment.transform.apply(moving)[:, ::-1]
        spot_lm.data = _to_data(spot_lm, _world(spots_layer, moved_lm))
        self.last_alignment = alignment
        self.undo_button.setEnabled(True)
        self.result.setText(self._describe(alignment, table.pixel_size_um))
        return alignment

    @staticmethod
    def _show_spots(layer: Points, table) -> None:
        # metadata first: listeners of the data event (the ROI scores widget) see the new table
        from napari_roiscore._qt.spot_view_dock import show_table

        if show_table(layer, table):  # a large table drawn as raster + markers in view
            layer.size = table.diameter_px
            return
        layer.metadata[SPOTS_KEY] = table
        layer.data = table.yx
        layer.size = table.diameter_px

    @staticmethod
    def _describe(al: Alignment, pixel_size_um: float | None) -> str:
        res = ", ".join(f"{r:.2f}" for r in al.residuals)
        um = f" (max {al.max_residual * pixel_size_um:.2f} µm)" if pixel_size_um else ""
        return (f"Aligned with a {al.transform.kind} transform from {len(al.residuals)} pairs: "
                f"{al.transform.describe()}.\nResiduals per pair (px): {res}; "
                f"max {al.max_residual:.2f}, rms {al.rms_residual:.2f}{um}.")

    def _on_align(self) -> None:
        try:
            self.align()
        except RoiScoreError as err:
            self.result.setText(f"problem: {err}")
            show_error(f"Align spots: {err}")

    def undo(self) -> None:
        """Put the spots (and their landmarks) back where they were before the last alignment."""
        if not self._history:
            return
        layer, table, lm = self._history.pop()
        self._show_spots(layer, table)
        if SPOT_LANDMARKS in self.viewer.layers:
            self.viewer.layers[SPOT_LANDMARKS].data = lm
        self.undo_button.setEnabled(bool(self._history))
        self.result.setText("Last alignment undone.")
