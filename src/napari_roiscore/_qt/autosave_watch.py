"""Autosave of the ROIs next to the spots file, the bin of deleted ROIs, and their restore.

The sidecar is written shortly after each edit; deletions are tracked at
every edit (not debounced) so a freed name cannot be reused before the deleted
ROI is in the bin.  Autosaved ROIs that are not on screen when the spots open
are offered for restore (and kept in the bin until the user decides), together
with the ROIs of crashed sessions on the same slide (see
:mod:`napari_roiscore.rois.autosave_merge`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import Label, PushButton
from napari.layers import Shapes
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QObject, QTimer

from napari_roiscore._layer_data import SPOTS_KEY
from napari_roiscore._qt.state import DockState
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.autosave import AutosaveWarning, load_autosave, save_autosave, sidecar_path, update_bin
from napari_roiscore.rois.autosave_merge import Recovery, recover_crashed_sessions, settle_recovered
from napari_roiscore.rois.roi import Roi


class AutosaveWatch(QObject):
    """Keeps the autosave sidecar and the restore button up to date.

    Parameters
    ----------
    state : DockState
        Read for the ROIs and classes.
    add_rois : callable
        Puts ROIs back on the ROI layer (keeping names unique).
    extra : callable
        Returns extra settings saved with the ROIs (signature, method).
    parent : QObject, optional
    """

    def __init__(self, state: DockState, add_rois: Callable[[list[Roi]], None],
                 extra: Callable[[], dict], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._add_rois = add_rois
        self._extra = extra
        self.path: Path | None = None
        self.offer = None  # an autosave on offer (ROIs not on screen when the data opened)
        self.recovery: Recovery | None = None  # what came from crashed sessions into that offer
        self.checked: set[str] = set()  # sidecars already offered (a session marks its own)
        self.bin: list[Roi] = []  # deleted (or not yet restored) ROIs the sidecar keeps
        self._prev_rois: list[Roi] = []  # the ROIs at the last table update (deletions are found from it)
        self._offer_replaces: set = set()  # on-screen ROI keys an offered version replaces
        self._layer: Shapes | None = None
        self.restore_button = PushButton(text="Restore autosaved ROIs")
        self.restore_button.visible = False
        self.autosave_label = Label(value="autosave: off until a spots layer with a file is chosen")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(800)
        self._timer.timeout.connect(self.save_now)
        self.restore_button.changed.connect(lambda *_: self.restore())
        state.rois_seen.connect(self._on_rois_seen)

    def _on_rois_seen(self, rois: list[Roi]) -> None:
        self.track_deletions(rois)
        self._timer.start()

    # -- following layers -------------------------------------------------
    def watch(self, layer: Shapes | None) -> None:
        """Follow deletions on ``layer``; its ROIs are not deletions of the previous layer's."""
        if self._layer is not None:
            self._layer.events.data.disconnect(self._on_roi_data)
        self._layer = layer
        self._prev_rois = []
        if layer is not None:
            layer.events.data.connect(self._on_roi_data)

    def _on_roi_data(self, event=None) -> None:
        """Not throttled: a deletion reaches the bin before a new ROI can take the freed name.

        Cheap on every other edit (a drag): only the names are compared.
        """
        layer = self.state.roi_layer
        if layer is None or not self._prev_rois or "name" not in layer.features:
            return
        names = {str(n) for n in layer.features["name"]}
        if all(r.name in names for r in self._prev_rois):
            return
        try:
            rois = self.state.current_rois()
        except Exception:  # noqa: BLE001  a half-updated layer: the throttled update catches up
            return
        self.track_deletions(rois)

    def on_spots_changed(self, layer) -> None:
        """New spots: autosave next to their file; offer its ROIs that are not on screen."""
        p = layer.metadata[SPOTS_KEY].provenance.get("path") if layer is not None else None
        path = Path(p) if p else None
        self.path = path
        self.offer = self.recovery = None
        current = self.state.current_rois()
        self._prev_rois, self.bin = current, []
        if path is None:
            self.autosave_label.value = "autosave: off (spots not from a file)"
            self._show_restore()
            return
        self.autosave_label.value = f"autosave: on ({path.name})"
        saved = None
        try:
            saved = load_autosave(path)
        except RoiScoreError as err:
            self.state.report(err)
            if sidecar_path(path).exists():  # still in place: never overwrite a sidecar we could not read
                self.path = None
                self.autosave_label.value = "autosave: off (its file is unreadable, see the message)"
            else:  # set aside by load_autosave (renamed, kept): autosaving afresh loses nothing
                self.autosave_label.value = f"autosave: on ({path.name}; the unreadable one was kept aside)"
        first_look = str(path) not in self.checked
        self.checked.add(str(path))
        if first_look:  # crashed sessions of this slide join the offer (their files are set aside)
            saved = self._recover_crashed(path, saved, current)
        if saved is not None:
            # deleted ROIs that are on screen again (e.g. the sample's own) are not offered
            self.bin = update_bin([], current, saved.deleted)
            if first_look:
                self._make_offer(saved, current)
        self._show_restore()

    def recheck_offer(self) -> None:
        """ROIs arrived after the spots (e.g. a GeoJSON opened later): offer only what is still missing."""
        current = self.state.current_rois()
        self.bin = update_bin([], current, self.bin)  # on screen again: nothing to restore
        offer = self.offer
        if offer is not None:
            on_screen = {r.key for r in current}
            left = [r for r in offer.rois if r.key not in on_screen]
            if self.recovery is not None:  # crashed sessions' ROIs: now on screen, or their name taken
                left, self.recovery = settle_recovered(left, self.recovery, current)
                before = {r.key for r in offer.rois}
                self.bin = [r for r in self.bin if r.key not in before] + left
            if [r.key for r in left] != [r.key for r in offer.rois]:
                self.offer = dataclasses.replace(offer, rois=left) if left else None
        self._show_restore()

    # -- offer and restore ------------------------------------------------
    def _recover_crashed(self, path: Path, saved, current: list[Roi]):
        """The autosave to offer with the ROIs of crashed sessions merged in; warnings as notifications."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AutosaveWarning)  # shown below, once each
                recovery = recover_crashed_sessions(path, saved, current)
        except Exception as err:  # noqa: BLE001  never a crash: the slide's own autosave is still offered
            self.state.report(err)
            return saved
        for text in recovery.messages:
            show_warning(f"ROI scores: {text}")
        self.recovery = recovery if recovery.merged else None
        return recovery.offer

    def _make_offer(self, saved, current: list[Roi]) -> None:
        """Offer the autosaved ROIs that are not on screen; keep them in the bin meanwhile.

        Autosave goes on while the offer stands: the offered ROIs sit in the
        sidecar's bin, so a crash before the user decides loses nothing.
        """
        on_screen = {r.key for r in current}
        offered = [r for r in saved.rois if r.key not in on_screen]
        if not offered:
            return
        self.offer = dataclasses.replace(saved, rois=offered)
        names = {r.name for r in offered}
        # only these exact on-screen versions are replaced on restore: an ROI drawn or
        # edited after the offer keeps its place (the restored one gets a new name)
        self._offer_replaces = {r.key for r in current if r.name in names}
        keys = {r.key for r in offered}
        self.bin = [r for r in self.bin if r.key not in keys] + offered
        crashed = f" (including {self.recovery.summary})" if self.recovery is not None else ""
        name = self.path.name if self.path is not None else "this slide"
        show_info(f"ROI scores: found {len(offered)} autosaved ROI(s){crashed} for {name} "
                  "that are not on screen — use 'Restore' in the ROIs tab.")

    def _show_restore(self) -> None:
        offer = self.offer
        n_offer = len(offer.rois) if offer is not None else 0
        n_deleted = len(self.bin) - n_offer
        if offer is not None:
            text = f"Restore {n_offer} autosaved ROI(s) from {offer.saved_at:%Y-%m-%d %H:%M} UTC"
            if n_deleted:
                text += f" and {n_deleted} deleted"
        else:
            text = f"Restore {n_deleted} deleted ROI(s)"
        self.restore_button.text = text
        self.restore_button.visible = bool(self.bin)

    def restore(self) -> None:
        """Put back the autosaved ROIs on offer (replacing same-named ones) and the deleted ones."""
        if not self.bin:
            return
        offer = self.offer
        offered = list(offer.rois) if offer is not None else []
        keys = {r.key for r in offered}
        deleted = [r for r in self.bin if r.key not in keys]
        if offer is not None:
            for c in offer.classes:
                self.state.remember_class(c)
        layer = self.state.roi_layer
        replaced = [r for r in self.state.current_rois() if r.key in self._offer_replaces]
        if layer is not None and replaced:
            names = {r.name for r in replaced}  # the autosaved version replaces the one seen at the offer
            drop = {i for i, n in enumerate(layer.features["name"].astype(str)) if n in names}
            layer.selected_data = drop
            layer.remove_selected()
        self.offer = self.recovery = None
        self._offer_replaces = set()
        self.bin = []
        self._prev_rois = self.state.current_rois()
        self._add_rois(offered + deleted)  # an ROI whose name is taken on screen gets a new one
        self.bin = replaced  # the replaced versions are not lost either
        self._show_restore()
        self.save_now()

    # -- deletions and saving ---------------------------------------------
    def track_deletions(self, rois: list[Roi]) -> None:
        """Put ROIs that left the layer since the last update into the bin.

        Called at every edit, not debounced: a freed name is handed out again at once.
        """
        n_before = len(self.bin)
        self.bin = update_bin(self._prev_rois, rois, self.bin)
        self._prev_rois = rois
        if len(self.bin) != n_before:
            self._show_restore()
        if len(self.bin) > n_before and not rois:
            show_info(f"ROI scores: all ROIs deleted — '{self.restore_button.text}' "
                      "in the ROIs tab brings them back.")

    def save_now(self) -> Path | None:
        """Write the ROIs (and the bin of deleted ones) to the sidecar now.

        Returns
        -------
        Path or None
            The sidecar written (None without an ROI layer, a spots file or on failure).
        """
        if self.state.roi_layer is None:
            return None
        rois = self.state.current_rois()
        self.track_deletions(rois)
        if self.path is None:
            return None
        try:
            out = save_autosave(rois, self.path, classes=self.state.classes, deleted=self.bin, extra=self._extra())
        except (OSError, TypeError, ValueError, RoiScoreError) as err:
            self.autosave_label.value = f"autosave failed: {err}"
            return None
        self.autosave_label.value = f"autosaved to {out}"
        return out
