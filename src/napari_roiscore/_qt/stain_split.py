"""Brightfield H&E / IHC images as channels, so Markers and compartments apply to them.

An RGB layer has no marker channel.  "Split into haematoxylin / eosin / DAB"
runs colour deconvolution (:func:`napari_roiscore.images.brightfield.stain_image`,
scikit-image ``rgb2hed``) and adds the three stains as channel layers that the
Markers tab and compartment proposals pick up like fluorescence channels.
Where nothing applies (no RGB layer, an image too large to hold at full
resolution), the controls are disabled and say why.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.layers import Image

from napari_roiscore._layer_data import image_layers
from napari_roiscore._qt.state import DockState
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.brightfield import is_rgb, stain_image

#: largest full-resolution image (pixels) the stains are computed for
MAX_PIXELS = 40_000_000


def rgb_layers(viewer) -> list:
    """(name, layer) of the viewer's RGB image layers (H&E, IHC, tissue images)."""
    out = []
    for ly in viewer.layers:
        if isinstance(ly, Image) and getattr(ly, "rgb", False):
            out.append((ly.name, ly))
    return out


def full_resolution_rgb(layer: Image) -> tuple[np.ndarray, float]:
    """The layer's pixels in the spots' full-resolution frame, and the zoom applied.

    A Visium tissue image is a down-sampled copy (``roiscore_scale_factor`` image
    pixels per full-resolution pixel); the stain channels must be in the
    spots' pixels for the marker footprint of each spot.
    """
    from scipy.ndimage import zoom

    data = layer.data[0] if layer.multiscale else layer.data
    data = np.asarray(data)
    if not is_rgb(data):
        raise RoiScoreError(f"{layer.name!r} is not an RGB image.", "Choose an H&E or IHC image layer.")
    factor = float(layer.metadata.get("roiscore_scale_factor", 1.0))
    zoom_by = 1.0 / factor
    h, w = data.shape[:2]
    if h * w * zoom_by ** 2 > MAX_PIXELS:
        raise RoiScoreError(
            f"{layer.name!r} is {h * zoom_by:.0f} × {w * zoom_by:.0f} pixels at full resolution: too large "
            "to separate stains in memory.", "Use a smaller (cropped or down-sampled) image of the region.")
    if not np.isclose(zoom_by, 1.0):
        data = zoom(data[..., :3], (zoom_by, zoom_by, 1), order=1)
    return data, zoom_by


class StainSplit:
    """The "split into stains" action of the Markers tab.

    Parameters
    ----------
    viewer : napari.Viewer
    state : DockState
    """

    def __init__(self, viewer, state: DockState) -> None:
        self.viewer = viewer
        self.state = state
        self.rgb_combo = ComboBox(label="brightfield image", choices=lambda _w=None: rgb_layers(viewer),
                                  nullable=True)
        self.dab_role = ComboBox(label="DAB stains", value="macrophages",
                                 choices=["macrophages", "cancer cells", "vessels", "other"])
        self.split_button = PushButton(text="Split into haematoxylin / eosin / DAB")
        self.reason = Label(value="")
        self.container = Container(widgets=[self.rgb_combo, self.dab_role, self.split_button, self.reason],
                                   labels=True)
        self.split_button.changed.connect(lambda *_: self._clicked())
        self.rgb_combo.changed.connect(lambda *_: self.update_enabled())
        viewer.layers.events.inserted.connect(lambda *_: self.update_enabled())
        viewer.layers.events.removed.connect(lambda *_: self.update_enabled())
        self.update_enabled()

    def update_enabled(self) -> None:
        """Enable the action only for an RGB layer; otherwise say why it is off."""
        self.rgb_combo.reset_choices()
        if self.rgb_combo.value is None and rgb_layers(self.viewer):
            self.rgb_combo.value = rgb_layers(self.viewer)[0][1]
        ok = self.rgb_combo.value is not None
        for w in (self.rgb_combo, self.dab_role, self.split_button):
            w.enabled = ok
        self.reason.value = "" if ok else (
            "no RGB (H&E / IHC) image open: stain separation applies to brightfield images only")

    def split(self, layer: Image | None = None) -> list[Image]:
        """Add haematoxylin, eosin and DAB channel layers of ``layer`` (default: the chosen one)."""
        layer = layer if layer is not None else self.rgb_combo.value
        if layer is None:
            raise RoiScoreError("No RGB image is chosen.", "Open an H&E or IHC image first.")
        rgb, zoom_by = full_resolution_rgb(layer)
        spots = self.state.scorer.spots if self.state.scorer is not None else None
        px = spots.pixel_size_um if spots is not None else None
        image = stain_image(rgb, px, dab_role=self.dab_role.value,
                            provenance={"source_layer": layer.name})
        added = []
        for data, kw, _ in image_layers(image):
            kw["name"] = f"{kw['name'].split(' (')[0]} of {layer.name} ({kw['metadata']['roiscore_role']})"
            kw["scale"] = tuple(np.asarray(layer.scale[-2:]) / zoom_by)
            kw["translate"] = tuple(layer.translate[-2:])
            kw["units"] = layer.units[-2:]
            kw["contrast_limits"] = [0.0, 1.0]
            kw["visible"] = kw["metadata"]["roiscore_channel"] == "DAB"
            added.append(self.viewer.add_image(data, **kw))
        return added

    def _clicked(self) -> None:
        try:
            added = self.split()
        except RoiScoreError as err:
            self.state.report(err)
            return
        msg = (f"added {', '.join(ly.name for ly in added)}: choose DAB as the marker channel "
               "(Markers tab) or haematoxylin for compartments")
        self.state.status.emit(msg)
