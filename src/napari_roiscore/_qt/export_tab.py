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
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.analysis.export import annotate_spots, scores_csv, write_annotated_h5ad
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.methods import METHODS


def session_message(session, path: str) -> str:
    """What opening a session did, in words."""
    sig = getattr(getattr(session, "signature", None), "label", "")
    n = len(getattr(session, "rois", []) or [])
    return f"opened the session {Path(path).name}: {n} ROI(s), signature {sig}, method {session.method}"


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
        #: returns how spots are coloured now (set by the dock: SpotColours.scale)
        self.colour_scale = None
        #: runs pending updates (measurements) before an export (set by the dock)
        self.live_flush = lambda: None
        self.save_button = PushButton(text="Save scores as CSV…")
        self.save_h5ad_button = PushButton(text="Save spots with ROIs as .h5ad…")
        self.report_button = PushButton(text="Write report (PNG + PDF)…")
        self.save_session_button = PushButton(text="Save session…")
        self.open_session_button = PushButton(text="Open session…")
        self.spatialdata_button = PushButton(text="Save ROIs into a SpatialData store…")
        self._offer_spatialdata()
        self.container = Container(widgets=[self.save_button, self.save_h5ad_button, self.report_button,
                                            self.spatialdata_button, self.save_session_button,
                                            self.open_session_button])
        run = state.run_file_action
        self.save_button.changed.connect(lambda *_: run(
            self.save_csv, self._ask_save("Save ROI scores", "roi_scores.csv", "CSV (*.csv)"),
            lambda out, _p: f"saved the scores of {len(state.last_table)} ROI(s) to {out}"))
        self.save_h5ad_button.changed.connect(lambda *_: run(
            self.save_h5ad, self._ask_save("Save spots with ROIs", "spots_rois.h5ad", "AnnData (*.h5ad)"),
            lambda out, _p: f"saved the spots with their ROIs and scores to {out}"))
        self.report_button.changed.connect(lambda *_: run(
            lambda p: self.write_report(Path(p).with_suffix("")),
            self._ask_save("Write report", "roi_report.png", "PNG and PDF (*.png)"),
            lambda out, _p: f"wrote the report: {out[0]} and {out[1]}"))
        self.save_session_button.changed.connect(lambda *_: run(
            self.save_session, self._ask_save("Save session", "study.roiscore.json", "Session (*.json)"),
            lambda out, _p: f"saved the session ({len(state.rois)} ROI(s), signature, method) to {out}"))
        self.open_session_button.changed.connect(lambda *_: self.open_session_in_background(self._ask_open()))
        self.spatialdata_button.changed.connect(lambda *_: run(
            self.save_spatialdata, self._ask_save("Save ROIs into a SpatialData store", self._default_store(),
                                                  "SpatialData (*.zarr)"),
            lambda out, _p: f"wrote {len(state.current_rois())} ROI(s) and their scores into the SpatialData "
                            f"store {out} (shapes 'roiscore_rois', table 'roiscore_rois_table')"))

    def _offer_spatialdata(self) -> None:
        from napari_roiscore.readers.spatialdata_store import INSTALL_HINT, spatialdata_available

        ok = spatialdata_available()
        self.spatialdata_button.enabled = ok
        self.spatialdata_button.tooltip = (
            "Write the ROIs as a shapes element and their class and scores as a table, where "
            "napari-spatialdata shows them" if ok else
            f"Needs the optional package 'spatialdata', which is not installed: {INSTALL_HINT}")

    def _default_store(self) -> str:
        """The spots' own store when they came from one, else ``<spots>.zarr`` beside them."""
        scorer = self.state.scorer
        src = str(scorer.spots.provenance.get("path") or "") if scorer is not None else ""
        if not src:
            return "rois.zarr"
        p = Path(src)
        return str(p) if p.suffix == ".zarr" else str(p.with_name(p.stem + ".zarr"))

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
        self.live_flush()
        return scores_csv(self.state.table_with_measurements(), self.state.scores, path,
                          extra={"marker_restriction": self._marker_label()})

    def save_h5ad(self, path: str | Path) -> Path:
        """Write the spots with their ROI, class and score as .h5ad."""
        scorer = self.state.scorer
        if scorer is None:
            raise RoiScoreError("No spots layer is chosen.", "Open spots first.")
        adata = annotate_spots(scorer.spots, self.state.current_rois(), scorer.members,
                               self.state.scores, self.state.spot_mask)
        return write_annotated_h5ad(adata, path)

    def save_spatialdata(self, path: str | Path) -> Path:
        """Write the ROIs and the current table into a SpatialData store (created if absent)."""
        from napari_roiscore.readers.spatialdata_rois import write_rois_to_spatialdata

        rois = self.state.current_rois()
        if not rois:
            raise RoiScoreError("There are no ROIs to write.", "Draw an ROI first.")
        self.live_flush()
        table = None if self.state.last_table.empty else self.state.table_with_measurements()
        return write_rois_to_spatialdata(path, rois, table)

    def write_report(self, stem: str | Path) -> tuple[Path, Path]:
        """Write the report (view, table, plots, comparison) as ``stem``.png and ``stem``.pdf."""
        from napari_roiscore.analysis.report import write_report

        if self.state.last_table.empty:
            raise RoiScoreError("There are no ROI scores to report yet.", "Draw an ROI and wait for its score.")
        self.compare.update_comparison()
        view = self.viewer.screenshot(canvas_only=True, flash=False)
        values, classes = self.state.roi_values()
        from napari_roiscore.rois.classes import class_colour_rgba

        spots = self.state.scorer.spots if self.state.scorer is not None else None
        sample = ""
        if spots is not None:
            src = spots.provenance.get("path") or spots.provenance.get("source") or ""
            sample = Path(str(src)).name if src else ""
        shown = list(dict.fromkeys(str(c) for c in self.state.last_table["class"]))
        return write_report(stem, view=view, table=self.state.last_table, values=values, classes=classes,
                            metadata=self.metadata(), comparison_lines=self.compare.comparison_lines(),
                            colour_scale=self.colour_scale() if self.colour_scale else None,
                            class_colours={c: class_colour_rgba(c) for c in shown}, sample_id=sample)

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
        names it).  Scores then recompute exactly as when the session was saved.  The
        "Open session…" button does the same with the reading in a worker
        (:meth:`open_session_in_background`).

        Returns
        -------
        Session
        """
        return self._show_session(*self._read_session(path))

    def open_session_in_background(self, path: str) -> None:
        """Read the session's files (checksums, spots, image) in a worker; then show it here."""
        if not path:
            return
        from napari.qt.threading import thread_worker

        state = self.state
        state.status.emit(f"reading the session {Path(path).name}…")

        def read():
            try:
                return self._read_session(path)
            except (RoiScoreError, OSError) as err:
                return (err,)  # a 1-tuple: superqt re-raises a returned exception

        def done(result) -> None:
            if len(result) == 1:
                state.report(result[0])
                return
            state.run_file_action(lambda _p: self._show_session(*result), path, session_message)

        worker = thread_worker(read, progress={"total": 0, "desc": f"Reading session {Path(path).name}"})()
        worker.returned.connect(done)
        worker.errored.connect(state.report)
        let_go_when_finished(worker)  # napari keeps finished workers for the session
        self._session_worker = worker
        worker.start()

    def _read_session(self, path: str | Path) -> tuple:
        """The session and its data, read (no napari): ``(session, spots, image)``."""
        from napari_roiscore.readers.dispatch import read_image, read_spots_of_kind, spots_kind
        from napari_roiscore.session import load_session, read_session_spots

        session = load_session(path)
        kind = spots_kind(session.spots.path) if session.spots.path.exists() else None
        if session.image is None and kind is not None:
            # the tissue image (H&E / CytAssist) travels with the spots folder: read it with them
            spots = read_spots_of_kind(session.spots.path, kind, load_images=True, **session.spots.options)
        else:
            spots = read_session_spots(session)  # names a missing or unknown path
        image = read_image(session.image.path, **session.image.options) if session.image is not None else None
        return session, spots, image

    def _show_session(self, session, spots, image):
        """Add a read session's layers and set the dock as it was saved; returns the session."""
        from napari_roiscore._layer_data import holds_spot_view, image_layers, roi_layer, spots_layers

        layers = []
        if image is not None:
            layers += image_layers(image)
        else:
            from napari_roiscore.readers.tissue_image import tissue_image_layer, tissue_images_from_uns

            tissue = tissue_images_from_uns(spots.adata)
            if tissue:
                layers.append(tissue_image_layer(tissue[0], spots.pixel_size_um))
        px = image.pixel_size_um if image is not None else spots.pixel_size_um
        layers.extend(spots_layers(spots, pixel_size_um=px))  # a large table: raster + markers in view
        layers.append(roi_layer(session.rois, name="ROIs", pixel_size_um=px))
        self.autosave.checked.add(str(spots.provenance.get("path")))  # the session is the truth here
        if holds_spot_view(layers):
            from napari_roiscore._qt.spot_view import install_spot_views

            install_spot_views(self.viewer)  # the raster follows the camera, as when the file is opened
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
