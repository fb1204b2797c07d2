"""The *Markers* tab: restrict scoring to spots over marker-positive tissue."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_warning

from napari_roiscore._layer_data import IMAGE_KEY
from napari_roiscore._qt.form import image_choices
from napari_roiscore._qt.stain_split import StainSplit
from napari_roiscore._qt.state import DockState
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.errors import RoiScoreError


class MarkersTab:
    """Marker channel, threshold (Otsu or typed) and the marker-positive spot restriction.

    Parameters
    ----------
    viewer : napari.Viewer
        Its image channels fill the channel picker; the mask is shown in it.
    state : DockState
        ``spot_mask``, ``marker_fractions``, ``marker_label``, ``marker_settings``
        and ``marker_source`` are written here.
    """

    def __init__(self, viewer, state: DockState) -> None:
        self.viewer = viewer
        self.state = state
        self.otsu: tuple = (None, None)  # (channel layer, Otsu threshold) last computed
        self._request: object | None = None
        self.marker_channel_combo = ComboBox(label="marker channel", choices=lambda _w=None: image_choices(viewer),
                                             nullable=True)
        self.marker_threshold = FloatSpinBox(label="threshold", value=0, min=0, max=1e9, step=1)
        self.otsu_button = PushButton(text="Otsu threshold")
        self.min_positive = FloatSpinBox(label="min positive area (%)", value=10, min=0, max=100, step=5)
        self.restrict_check = CheckBox(text="restrict scoring to marker-positive spots", value=False)
        self.show_mask_button = PushButton(text="Show positive mask")
        self.marker_status = Label(value="")
        self.stains = StainSplit(viewer, state)
        self.no_channel_note = Label(value="")
        self.container = Container(widgets=[
            self.stains.container, self.no_channel_note, self.marker_channel_combo, self.marker_threshold, self.otsu_button, self.min_positive,
            self.restrict_check, self.show_mask_button, self.marker_status,
        ], labels=True)
        self.marker_channel_combo.changed.connect(lambda *_: self.compute_otsu())
        self.otsu_button.changed.connect(lambda *_: self.compute_otsu())
        self.marker_threshold.changed.connect(lambda *_: self._inputs_changed())
        self.min_positive.changed.connect(lambda *_: self._inputs_changed())
        self.restrict_check.changed.connect(lambda *_: self._inputs_changed())
        self.show_mask_button.changed.connect(lambda *_: self.show_marker_mask())

    def on_spots_changed(self, layer) -> None:
        """New spots: Otsu needs their spot size; a ticked restriction applies to them too."""
        if layer is None:
            return
        if self.otsu[0] is None and self.marker_threshold.value == 0:
            self.compute_otsu()  # the images came before the spots: Otsu needed the spot size
        if self.restrict_check.value and self.marker_channel_combo.value is not None:
            self.apply_marker_restriction()  # the box stays ticked: restrict the new spots too

    def reset_choices(self) -> None:
        """Refresh the channel picker; warn if the restriction's channel was removed."""
        before = self.marker_channel_combo.value
        restricted = self.state.spot_mask is not None
        self.marker_channel_combo.reset_choices()
        self._enable_by_channels()
        if restricted and before is not None and before not in self.viewer.layers:
            # never switch the restriction to another channel behind the user's back
            self.marker_channel_combo.value = None
            show_warning(f"ROI scores: the marker channel {before.name!r} was removed; scores stay "
                         f"restricted to the spots computed from it ({self.state.marker_label}). Untick the "
                         "restriction in the Markers tab to score all spots.")

    def _enable_by_channels(self) -> None:
        """Without an image channel the marker controls are off, and the note says why."""
        has = bool(image_choices(self.viewer))
        for w in (self.marker_channel_combo, self.marker_threshold, self.otsu_button, self.min_positive,
                  self.restrict_check, self.show_mask_button):
            w.enabled = has or self.state.spot_mask is not None
        self.no_channel_note.value = "" if has else (
            "no marker channel: open a multiplex image, or split an H&E / IHC image into stains above")

    def _marker_image(self) -> tuple[Any, Any]:
        layer = self.marker_channel_combo.value
        return (layer.metadata[IMAGE_KEY], layer.metadata["roiscore_channel"]) if layer is not None else (None, None)

    def compute_otsu(self) -> None:
        """Set the threshold field to Otsu's threshold of the chosen channel."""
        from napari_roiscore.images.markers import marker_mask

        image, channel = self._marker_image()
        if image is None or self.state.scorer is None:
            return
        try:
            mask = marker_mask(image, channel, spot_diameter_px=self.state.scorer.spots.diameter_px)
        except RoiScoreError as err:
            self.state.report(err)
            return
        self.otsu = (self.marker_channel_combo.value, float(mask.threshold))
        self.marker_threshold.value = float(mask.threshold)  # triggers _inputs_changed

    def _inputs_changed(self) -> None:
        if not self.restrict_check.value:
            if self.state.spot_mask is not None:
                self.state.spot_mask = None
                self.marker_status.value = "scoring all spots"
                self.state.refresh()
            return
        self.apply_marker_restriction()

    def apply_marker_restriction(self) -> None:
        """Compute footprint fractions (worker) and restrict scoring to positive spots."""
        from napari_roiscore.images.markers import marker_mask
        from napari_roiscore.images.spot_footprints import footprint_fractions, restrict_spots

        state = self.state
        image, channel = self._marker_image()
        if image is None or state.scorer is None:
            show_warning("ROI scores: choose an image channel and a spots layer for the marker filter.")
            return
        spots = state.scorer.spots
        thr = float(self.marker_threshold.value)
        otsu_layer, otsu_thr = self.otsu
        # the field still holds the Otsu value of this channel: label (and save) it as Otsu, not "user"
        is_otsu = otsu_layer is self.marker_channel_combo.value and otsu_thr is not None and np.isclose(
            thr, otsu_thr, rtol=0, atol=10 ** -self.marker_threshold.native.decimals())
        min_frac = float(self.min_positive.value) / 100.0
        self.marker_status.value = "computing marker-positive area under each spot…"
        request = self._request = object()  # only the latest request may set the mask
        scorer = state.scorer

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
            if request is not self._request or scorer is not state.scorer:
                return  # settings or spots changed meanwhile: a newer request is running
            if len(result) == 1:
                state.report(result[0])
                return
            mask, frac = result
            state.marker_fractions = frac
            state.spot_mask = restrict_spots(frac, min_frac)
            state.marker_source = image  # the image the mask came from (its layer may be removed later)
            state.marker_label = f"{mask.label}, ≥ {min_frac:.0%} of spot area"
            state.marker_settings = {"channel": mask.channel_name, "threshold": float(mask.threshold),
                                     "threshold_method": mask.method, "level": int(mask.level),
                                     "min_fraction": min_frac, "label": state.marker_label}
            self.marker_status.value = (f"{int(state.spot_mask.sum())} of {len(frac)} spots pass: "
                                        f"{state.marker_label}")
            state.refresh()

        worker = compute()
        worker.returned.connect(done)
        worker.errored.connect(state.report)
        let_go_when_finished(worker)  # napari keeps finished workers for the session
        worker.start()

    def show_marker_mask(self) -> None:
        """Add the marker-positive mask as a (lazy) layer over the image."""
        from napari_roiscore.images.markers import marker_mask

        image, channel = self._marker_image()
        if image is None:
            return
        scorer = self.state.scorer
        try:
            mask = marker_mask(image, channel, threshold=float(self.marker_threshold.value),
                               spot_diameter_px=scorer.spots.diameter_px if scorer else None)
        except RoiScoreError as err:
            self.state.report(err)
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
