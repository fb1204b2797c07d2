"""The "ROI scores" dock widget: live signature scores per ROI.

The widget only wires napari layers to the pure core:
spots layer (with its :class:`~napari_roiscore.spot.SpotTable` in metadata)
-> :class:`~napari_roiscore.scorer.RoiScorer` -> table.  Per-spot scores and the
spot index are computed in a napari ``thread_worker``; each ROI edit then
costs one index query and an aggregate, throttled to keep the UI fluid.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton
from napari.layers import Points, Shapes
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from .._atomic import atomic_write_text
from .._layer_data import SPOTS_KEY, class_colour
from ..errors import RoiScoreError
from ..roi import DEFAULT_CLASSES, Roi, roi_from_napari
from ..scorer import RoiScorer
from ..scoring import METHODS, SpotScores
from ..signature import EXAMPLE_PANEL, Signature, parse_gene_list

if TYPE_CHECKING:
    import napari

HEADERS = ["ROI", "class", "spots", "score", "median"]


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
        self._roi_layer: Shapes | None = None
        self._worker = None
        self._pending = False
        self.last_table: pd.DataFrame = pd.DataFrame()

        self.spots_combo = ComboBox(label="spots", choices=self._spots_choices, nullable=True)
        self.rois_combo = ComboBox(label="ROIs", choices=self._roi_choices, nullable=True)
        self.signature_edit = LineEdit(label="signature", value=", ".join(EXAMPLE_PANEL.up))
        self.signature_note = Label(value=self._signature_note(example=True))
        self.method_combo = ComboBox(
            label="method", choices=[(label, key) for key, (label, _) in METHODS.items()], value="mean_z"
        )
        self.class_combo = ComboBox(label="new ROI class", choices=list(DEFAULT_CLASSES), value="tumour")
        self.status = Label(value="")
        self.save_button = PushButton(text="Save scores as CSV…")
        self.form = Container(
            widgets=[self.spots_combo, self.rois_combo, self.signature_edit, self.signature_note,
                     self.method_combo, self.class_combo, self.status],
            labels=True,
        )
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.table)
        layout.addWidget(self.save_button.native)

        self._sig_timer = QTimer(self)
        self._sig_timer.setSingleShot(True)
        self._sig_timer.setInterval(400)
        self._sig_timer.timeout.connect(self._rescore_spots)

        self.spots_combo.changed.connect(self._on_spots_changed)
        self.rois_combo.changed.connect(self._on_rois_changed)
        self.signature_edit.changed.connect(lambda _: self._sig_timer.start())
        self.method_combo.changed.connect(lambda _: self._rescore_spots())
        self.class_combo.changed.connect(self._on_class_changed)
        self.save_button.changed.connect(lambda _: self._save_csv_dialog())
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        self._refresh_choices()

    # -- layer choices ------------------------------------------------------
    def _spots_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Points) and SPOTS_KEY in ly.metadata]

    def _roi_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Shapes)]

    def _refresh_choices(self, event=None) -> None:
        self.spots_combo.reset_choices()
        self.rois_combo.reset_choices()
        for combo in (self.spots_combo, self.rois_combo):
            layers = [c for c in combo.choices if c is not None]
            if combo.value is None and layers:
                combo.value = layers[0]
        if self.spots_combo.value is not None and self._scorer is None:
            self._on_spots_changed(self.spots_combo.value)
        if self.rois_combo.value is not None and self._roi_layer is not self.rois_combo.value:
            self._on_rois_changed(self.rois_combo.value)

    # -- signature ----------------------------------------------------------
    @staticmethod
    def _signature_note(example: bool) -> str:
        if example:
            return "example panel (macrophage genes) — not the published signature; edit freely"
        return "custom signature"

    def signature(self) -> Signature:
        genes = parse_gene_list(self.signature_edit.value)
        is_example = [g.upper() for g in genes] == [g.upper() for g in EXAMPLE_PANEL.up]
        self.signature_note.value = self._signature_note(is_example)
        if is_example:
            return EXAMPLE_PANEL
        return Signature(name="custom signature", up=tuple(genes))

    # -- spot scores (worker) ----------------------------------------------
    def _on_spots_changed(self, layer) -> None:
        self._scorer = RoiScorer(layer.metadata[SPOTS_KEY]) if layer is not None else None
        self._scores = None
        self._rescore_spots()

    def _rescore_spots(self) -> None:
        if self._scorer is None:
            return
        try:
            signature = self.signature()
        except RoiScoreError as err:
            self._report(err)
            return
        method = self.method_combo.value
        scorer = self._scorer
        self.status.value = "computing spot scores…"
        if self._worker is not None:
            self._worker.quit()

        @thread_worker(progress={"desc": "Scoring spots"})
        def compute():
            # bad input comes back as a value, so napari never sees a worker crash
            try:
                scores = scorer.spot_scores(signature, method)
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
            show_warning(f"ROI scores: genes not in the data: {', '.join(m.missing)} — scored with the {m.n_used} present.")
        layer = self.spots_combo.value
        if layer is not None and len(layer.data) == len(scores.values):
            feats = layer.features.copy()
            feats["score"] = scores.values
            layer.features = feats
            # outline colour shows each spot's score (NaN-free: scores are finite)
            layer.border_colormap = "viridis"
            layer.border_color = "score"
        self.update_table()

    def _report(self, err: Exception) -> None:
        msg = str(err) if isinstance(err, RoiScoreError) else f"{type(err).__name__}: {err}"
        self.status.value = f"problem: {msg}"
        show_error(f"ROI scores: {msg}")

    # -- ROI layer ----------------------------------------------------------
    def _on_rois_changed(self, layer) -> None:
        old = self._roi_layer
        if old is not None:
            for ev in (old.events.data, old.events.set_data, old.events.features):
                ev.disconnect(self._on_roi_edit)
        self._roi_layer = layer
        if layer is not None:
            for ev in (layer.events.data, layer.events.set_data, layer.events.features):
                ev.connect(self._on_roi_edit)
            self._on_class_changed(self.class_combo.value)
        self.update_table()

    def _on_class_changed(self, cls: str) -> None:
        layer = self._roi_layer
        if layer is None:
            return
        defaults = {"class": cls}
        if "name" in layer.features:
            defaults["name"] = ""
        layer.feature_defaults = {**layer.feature_defaults.iloc[0].to_dict(), **defaults} if len(layer.feature_defaults.columns) else defaults
        layer.current_edge_color = class_colour(cls)

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
        n = len(layer.data)
        names = list(feats["name"]) if "name" in feats else [f"{i + 1:03d}" for i in range(n)]
        classes = list(feats["class"]) if "class" in feats else ["other"] * n
        same = spots_layer is None or _same_transform(layer, spots_layer)
        rois = []
        for i, (verts, stype) in enumerate(zip(layer.data, layer.shape_type)):
            v = np.asarray(verts, dtype=float)[:, -2:]
            if not same:
                v = np.array([spots_layer.world_to_data(layer.data_to_world(p))[-2:] for p in v])
            name = str(names[i]) if i < len(names) and str(names[i]) not in ("", "nan") else f"{i + 1:03d}"
            cls = str(classes[i]) if i < len(classes) else "other"
            rois.append(roi_from_napari(name, cls, stype, v))
        return rois

    def _recolour(self, rois: list[Roi]) -> None:
        layer = self._roi_layer
        if layer is None or not len(rois):
            return
        want = np.array([class_colour(r.roi_class) for r in rois])
        have = np.asarray(layer.edge_color)
        if have.shape != want.shape or not np.allclose(have, want):
            layer.edge_color = want

    def update_table(self) -> None:
        """Recompute the ROI table from the current ROIs and spot scores."""
        rois = self.current_rois()
        self._recolour(rois)
        if self._scorer is None or self._scores is None:
            self.last_table = pd.DataFrame()
            self._fill([[r.name, r.roi_class, "", "computing…", ""] for r in rois])
            return
        try:
            df = self._scorer.table(rois, self._scores)
        except Exception as err:  # never crash on a half-drawn shape
            self._report(err)
            return
        self.last_table = df
        rows = []
        for r in df.itertuples(index=False):
            if r.status == "ok":
                rows.append([r.roi, r._1, str(r.spots), f"{r.score:.3f}", f"{r.median:.3f}"])
            else:
                rows.append([r.roi, r._1, str(r.spots), r.status, ""])
        self._fill(rows)

    def _fill(self, rows: list[list[str]]) -> None:
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, val in enumerate(row):
                item = self.table.item(i, j)
                if item is None:
                    self.table.setItem(i, j, QTableWidgetItem(str(val)))
                elif item.text() != str(val):
                    item.setText(str(val))

    # -- export -------------------------------------------------------------
    def save_csv(self, path: str | Path) -> Path:
        """Write the current table (plus signature and method) as CSV, atomically."""
        if self.last_table.empty:
            raise RoiScoreError("There are no ROI scores to save yet.", "Draw an ROI and wait for its score.")
        df = self.last_table.copy()
        df["method"] = self._scores.method if self._scores else ""
        df["signature"] = self._scores.signature.label if self._scores else ""
        df["genes_used"] = ";".join(self._scores.match.used) if self._scores else ""
        df["genes_missing"] = ";".join(self._scores.match.missing) if self._scores else ""
        return atomic_write_text(path, df.to_csv(index=False))

    def _save_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save ROI scores", "roi_scores.csv", "CSV (*.csv)")
        if not path:
            return
        try:
            self.save_csv(path)
            show_info(f"ROI scores saved to {path}")
        except (RoiScoreError, OSError) as err:
            self._report(err)
