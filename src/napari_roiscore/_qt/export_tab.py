"""The *Export* tab: scores CSV, annotated spots (.h5ad), report, sessions."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import Container, PushButton
from qtpy.QtWidgets import QFileDialog

from napari_roiscore._layer_data import IMAGE_KEY
from napari_roiscore._qt.autosave_watch import AutosaveWatch
from napari_roiscore._qt.compare_tab import CompareTab
from napari_roiscore._qt.form import METHOD_CHOICES, ScoringForm
from napari_roiscore._qt.markers_tab import MarkersTab
from napari_roiscore._qt.state import DockState
from napari_roiscore.analysis.export import annotate_spots, scores_csv, write_annotated_h5ad
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.methods import METHODS


class ExportTab:
    """Writes what the dock shows; opens a saved session back into the viewer.

    Parameters
    ----------
    viewer : napari.Viewer
    state : DockState
    form : ScoringForm
        Signature and method (saved in, and set from, sessions).
    markers : MarkersTab
        Marker settings (saved in, and set from, sessions).
    compare : CompareTab
        The comparison written into reports.
    autosave : AutosaveWatch
        A session's spots are not offered their autosave (the session is the truth).
    """

    def __init__(self, viewer, state: DockState, form: ScoringForm, markers: MarkersTab,
                 compare: CompareTab, autosave: AutosaveWatch) -> None:
        self.viewer = viewer
        self.state = state
        self.form = form
        self.markers = markers
        self.compare = compare
        self.autosave = autosave
        self.save_button = PushButton(text="Save scores as CSV…")
        self.save_h5ad_button = PushButton(text="Save spots with ROIs as .h5ad…")
        self.report_button = PushButton(text="Write report (PNG + PDF)…")
        self.save_session_button = PushButton(text="Save session…")
        self.open_session_button = PushButton(text="Open session…")
        self.container = Container(widgets=[self.save_button, self.save_h5ad_button, self.report_button,
                                            self.save_session_button, self.open_session_button])
        run = state.run_file_action
        self.save_button.changed.connect(lambda *_: run(
            self.save_csv, self._ask_save("Save ROI scores", "roi_scores.csv", "CSV (*.csv)")))
        self.save_h5ad_button.changed.connect(lambda *_: run(
            self.save_h5ad, self._ask_save("Save spots with ROIs", "spots_rois.h5ad", "AnnData (*.h5ad)")))
        self.report_button.changed.connect(lambda *_: run(
            lambda p: self.write_report(Path(p).with_suffix("")),
            self._ask_save("Write report", "roi_report.png", "PNG and PDF (*.png)")))
        self.save_session_button.changed.connect(lambda *_: run(
            self.save_session, self._ask_save("Save session", "study.roiscore.json", "Session (*.json)")))
        self.open_session_button.changed.connect(lambda *_: run(self.open_session, self._ask_open()))

    def _ask_save(self, title: str, default: str, filt: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self.container.native, title, default, filt)
        return path

    def _ask_open(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self.container.native, "Open session", "", "Session (*.json)")
        return path

    def _marker_label(self) -> str:
        return self.state.marker_label if self.state.spot_mask is not None else ""

    def metadata(self) -> dict:
        """Signature, genes, method, restriction and spots file, as written into reports."""
        s = self.state.scores
        return {
            "signature": s.signature.label if s else "",
            "genes used": ", ".join(s.match.used) if s else "",
            "genes missing": ", ".join(s.match.missing) if s else "",
            "method": f"{METHODS[s.method][0]} ({s.method})" if s else "",
            "marker restriction": self._marker_label() or "none",
            "spots": str(self.autosave.path or ""),
        }

    def save_csv(self, path: str | Path) -> Path:
        """Write the current table (plus signature and method) as CSV, atomically."""
        if self.state.last_table.empty:
            raise RoiScoreError("There are no ROI scores to save yet.", "Draw an ROI and wait for its score.")
        return scores_csv(self.state.last_table, self.state.scores, path,
                          extra={"marker_restriction": self._marker_label()})

    def save_h5ad(self, path: str | Path) -> Path:
        """Write the spots with their ROI, class and score as .h5ad."""
        scorer = self.state.scorer
        if scorer is None:
            raise RoiScoreError("No spots layer is chosen.", "Open spots first.")
        adata = annotate_spots(scorer.spots, self.state.current_rois(), scorer.members,
                               self.state.scores, self.state.spot_mask)
        return write_annotated_h5ad(adata, path)

    def write_report(self, stem: str | Path) -> tuple[Path, Path]:
        """Write the report (view, table, plots, comparison) as ``stem``.png and ``stem``.pdf."""
        from napari_roiscore.analysis.report import write_report

        if self.state.last_table.empty:
            raise RoiScoreError("There are no ROI scores to report yet.", "Draw an ROI and wait for its score.")
        self.compare.update_comparison()
        view = self.viewer.screenshot(canvas_only=True, flash=False)
        values, classes = self.state.roi_values()
        return write_report(stem, view=view, table=self.state.last_table, values=values, classes=classes,
                            metadata=self.metadata(), comparison_lines=self.compare.comparison_lines())

    # -- sessions ---------------------------------------------------------
    def save_session(self, path: str | Path) -> Path:
        """Save data paths (with checksums), ROIs, signature, method, marker settings and results."""
        from napari_roiscore.session import save_session

        state = self.state
        if state.scorer is None or state.scores is None:
            raise RoiScoreError("Nothing to save yet: no spots are scored.", "Open spots and wait for the scores.")
        method, params = self.form.method()
        marker = None
        image = None
        if state.spot_mask is not None and state.marker_settings:
            marker = {k: state.marker_settings[k] for k in ("channel", "threshold", "min_fraction", "level")}
            image = state.marker_source
        elif self.markers.marker_channel_combo.value is not None:
            image = self.markers.marker_channel_combo.value.metadata[IMAGE_KEY]
        if image is not None and not image.provenance.get("path"):
            image = None
        return save_session(path, spots=state.scorer.spots, rois=state.current_rois(),
                            signature=state.scores.signature, method=method, params=params, marker=marker,
                            image=image, results=state.last_table,
                            extra={"classes": list(state.classes), "signature_text": self.form.signature_edit.value,
                                   "method_choice": self.form.method_combo.value})

    def open_session(self, path: str | Path):
        """Open a session: its data as layers, its ROIs, signature, method and marker restriction.

        The checksums of the data files are verified first (a changed file is an error that
        names it).  Scores then recompute exactly as when the session was saved.

        Returns
        -------
        Session
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
        self.autosave.checked.add(str(spots.provenance.get("path")))  # the session is the truth here
        added = [getattr(self.viewer, f"add_{kind}")(data, **kw) for data, kw, kind in layers]
        for c in session.extra.get("classes", []):
            self.state.remember_class(c)
        form, markers = self.form, self.markers
        form.show_signature(session.signature)
        choice = session.extra.get("method_choice") or (
            session.method + (":" + ",".join(f"{k}={v}" for k, v in session.params.items()) if session.params else ""))
        if choice in [v for _, v in METHOD_CHOICES]:
            form.method_combo.value = choice
        form.spots_combo.value = added[-2]
        form.rois_combo.value = added[-1]
        if session.marker:
            m = session.marker
            for ly in added[:-2]:
                if ly.metadata.get("roiscore_channel") == m["channel"]:
                    markers.marker_channel_combo.value = ly
            markers.min_positive.value = 100.0 * float(m.get("min_fraction", 0.1))
            markers.marker_threshold.value = float(m["threshold"])
            markers.restrict_check.value = True
            markers.apply_marker_restriction()  # also when nothing above changed (no change event)
        else:
            markers.restrict_check.value = False
        form.inputs_changed.emit()
        return session
