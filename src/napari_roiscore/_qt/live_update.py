"""The live path: a shape edit -> one spot-index query per ROI -> the ROI table.

Per-spot scores (and the spot index) are computed once per spots layer,
signature and method in a napari ``thread_worker``; each ROI edit then costs
one index query and an aggregate, throttled so the UI stays fluid while a
shape is dragged.  Tabs show the result by connecting to
:attr:`DockState.table_changed <napari_roiscore._qt.state.DockState.table_changed>`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from napari.layers import Shapes
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_warning
from qtpy.QtCore import QObject, QTimer
from superqt.utils import qthrottled

from napari_roiscore._qt import roi_layer
from napari_roiscore._qt.state import DockState
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.gene_notes import gene_notice
from napari_roiscore.scoring.methods import SpotScores
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import Signature


class LiveUpdate(QObject):
    """Keeps ``state.scores`` and ``state.last_table`` up to date with the layers.

    Parameters
    ----------
    state : DockState
        Read for the layers and restriction; ``scores``, ``last_table`` and
        ``rois`` are written here.
    inputs : callable
        Returns the signature and ``(method, params)`` to score; raises
        :class:`RoiScoreError` for a bad signature.
    parent : QObject, optional
    """

    def __init__(self, state: DockState, inputs: Callable[[], tuple[Signature, tuple[str, dict]]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._inputs = inputs
        self._worker = None
        self._layer: Shapes | None = None
        self._known_shapes = 0  # shapes in the ROI layer at the last table update
        # one edit is a burst of napari events, some before the shapes change: update after the burst
        self._after_edit = QTimer(self)
        self._after_edit.setSingleShot(True)
        self._after_edit.setInterval(0)
        self._after_edit.timeout.connect(self.on_roi_edit)
        state.refresh_requested.connect(self.update_table)
        # measurements (area, UMIs, genes detected) are cached per outline and computed after
        # the edit burst, so a drag step costs what it cost without them
        self._measured: dict = {}
        self._measured_for: tuple = (None, None)  # (scorer, spot mask) the cache belongs to
        self._measure_timer = QTimer(self)
        self._measure_timer.setSingleShot(True)
        self._measure_timer.setInterval(250)
        self._measure_timer.timeout.connect(self.measure_now)

    # -- the ROI layer ----------------------------------------------------
    def watch(self, layer: Shapes | None) -> None:
        """Follow the edits of ``layer`` (and stop following the previous ROI layer)."""
        old = self._layer
        if old is not None:
            for ev in (old.events.data, old.events.set_data, old.events.features):
                ev.disconnect(self._on_layer_event)
        self._layer = layer
        self._known_shapes = len(layer.data) if layer is not None else 0
        if layer is not None:
            for ev in (layer.events.data, layer.events.set_data, layer.events.features):
                ev.connect(self._on_layer_event)

    def _on_layer_event(self, event=None) -> None:
        """Update once napari has finished the edit (the last event of the burst wins).

        napari announces an edit (``action="changing"``, ``set_data``) before the
        shapes move; updating on the first event (the throttle's leading call)
        showed the previous position until the next call.
        """
        self._after_edit.start()

    def flush(self) -> None:
        """Run an update still waiting (after an edit or in the throttle) now.

        Measurements follow later (:meth:`measure_now` runs them at once).
        """
        if self._after_edit.isActive():
            self._after_edit.stop()
            self.on_roi_edit()
        self.on_roi_edit.flush()

    @qthrottled(timeout=40, leading=True)
    def on_roi_edit(self, event=None) -> None:
        """A shape was drawn, moved, edited or deleted (throttled)."""
        self.update_table()

    def update_table(self) -> None:
        """Recompute the ROI table now (tabs then redraw plots, comparison, autosave)."""
        state = self.state
        layer = state.roi_layer
        if layer is not None:
            roi_layer.tidy(layer, self._known_shapes, state.set_features)
            self._known_shapes = len(layer.data)
        rois = state.current_rois()
        state.rois_seen.emit(rois)
        if state.scorer is None or state.scores is None:
            state.last_table = pd.DataFrame()
            state.measurements = pd.DataFrame()
            state.rois = rois
            state.table_changed.emit()
            return
        try:
            df = state.scorer.table(rois, state.scores, spot_mask=state.spot_mask)
        except Exception as err:  # noqa: BLE001  never crash on a half-drawn shape
            state.report(err)
            return
        state.measurements = self._cached_measurements(rois)
        state.last_table = df
        state.rois = rois
        state.table_changed.emit()

    # -- measurements -------------------------------------------------------
    def _measure_key(self, roi) -> bytes:
        return roi.geometry.wkb if not roi.problem else b""

    def _cached_measurements(self, rois: list) -> pd.DataFrame:
        """Measurements of ``rois`` from the cache; missing rows are NaN and computed soon."""
        state = self.state
        if self._measured_for[0] is not state.scorer or self._measured_for[1] is not state.spot_mask:
            self._measured = {}
            self._measured_for = (state.scorer, state.spot_mask)
        rows = [self._measured.get(self._measure_key(r)) for r in rois]
        if any(r is None for r in rows):
            self._measure_timer.start()
        if not rois or all(r is None for r in rows):
            return pd.DataFrame()
        cols = next(r for r in rows if r is not None).index
        return pd.DataFrame([r if r is not None else pd.Series(index=cols, dtype=float) for r in rows],
                            columns=cols).reset_index(drop=True)

    def measure_now(self) -> None:
        """Compute the measurements still missing for the ROIs on screen and show them."""
        self._measure_timer.stop()
        state = self.state
        if state.scorer is None or not state.rois:
            return
        self._cached_measurements([])  # drop a cache of other spots / another restriction
        missing = [r for r in state.rois if self._measure_key(r) not in self._measured]
        if missing:
            try:
                df = state.scorer.measurements(missing, spot_mask=state.spot_mask)
            except Exception:  # noqa: BLE001  the scores stand without them
                return
            if len(self._measured) > 1024:
                self._measured = {}
            for roi, (_, row) in zip(missing, df.iterrows()):
                self._measured[self._measure_key(roi)] = row
        meas = self._cached_measurements(state.rois)
        if len(meas) == len(state.last_table):
            state.measurements = meas
            state.measurements_changed.emit()

    # -- spot scores (worker) ---------------------------------------------
    def set_spots(self, scorer: RoiScorer | None) -> None:
        """A new spots layer: forget its predecessor's scores and restriction."""
        self.state.scorer = scorer
        self.state.scores = None
        self.state.spot_mask = None
        self.state.marker_fractions = None

    def rescore_spots(self) -> None:
        """Recompute the per-spot scores (and the spot index) in a worker."""
        state = self.state
        if state.scorer is None:
            return
        try:
            signature, (method, params) = self._inputs()
        except RoiScoreError as err:
            state.scores = None  # the table must not keep showing the previous signature's scores
            state.score_problem = str(err)
            state.report(err)
            state.scores_changed.emit()
            self.update_table()
            return
        state.score_problem = None
        scorer = state.scorer
        state.status.emit("computing spot scores…")
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
        worker.errored.connect(state.report)
        self._worker = worker
        let_go_when_finished(worker)  # napari keeps finished workers for the session
        worker.start()

    def _on_scores(self, scorer: RoiScorer, scores: SpotScores | tuple[RoiScoreError]) -> None:
        state = self.state
        if scorer is not state.scorer:  # a newer spots layer was chosen meanwhile
            return
        if isinstance(scores, tuple):
            state.scores = None
            state.score_problem = str(scores[0])
            state.report(scores[0])
            state.scores_changed.emit()
            self.update_table()
            return
        state.scores = scores
        m = scores.match
        parts = [f"{scores.signature.label}: {m.n_used} gene(s) used"]
        if m.missing:
            parts.append(f"missing from data: {', '.join(m.missing)}")
        notice = gene_notice(scores)
        if notice:
            parts.append(notice)
        state.status.emit("; ".join(parts))
        if m.missing:
            show_warning(f"ROI scores: genes not in the data: {', '.join(m.missing)} — "
                         f"scored with the {m.n_used} present.")
        state.scores_changed.emit()  # spot colours follow (SpotColours)
        self.update_table()
