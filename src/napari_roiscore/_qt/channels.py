"""Channel roles: say what each image channel shows, and it takes the study's colour.

Roles are guessed from channel names when an image is opened (DAPI → nuclei,
panCK → cancer cells, CD31 → vessels, CD68 → macrophages).  The "Channel
roles" dock lists every image channel with a drop-down to correct the guess.
"""

from __future__ import annotations

import re

from napari.layers import Image
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from napari_roiscore._layer_data import IMAGE_KEY
from napari_roiscore.images.channels import ROLE_COLOURMAPS, ROLES, guess_roles, role_for_name
from napari_roiscore.errors import RoiScoreError

__all__ = ["ChannelRolesWidget", "channel_name", "set_channel_role"]

ROLE_KEY = "roiscore_role"
CHANNEL_KEY = "roiscore_channel"


def channel_name(layer) -> str:
    """The stain name of a channel layer (its metadata, else the layer name)."""
    return str(layer.metadata.get(CHANNEL_KEY) or layer.name)


def set_channel_role(layer, role: str) -> None:
    """Give an image layer a role: recolour it and record the role.

    Updates ``layer.colormap``, ``layer.metadata["roiscore_role"]``, the
    layer name when it reads ``"<channel> (<old role>)"``, and the role in the
    :class:`~napari_roiscore.images.multiplex.MultiplexImage` the layer came from (used
    by marker statistics).

    Raises
    ------
    RoiScoreError
        Unknown role.
    """
    if role not in ROLE_COLOURMAPS:
        raise RoiScoreError(f"Unknown channel role {role!r}.", f"Use one of {', '.join(ROLES)}.")
    old = layer.metadata.get(ROLE_KEY)
    name = channel_name(layer)
    layer.colormap = ROLE_COLOURMAPS[role]
    layer.metadata[ROLE_KEY] = role
    image = layer.metadata.get(IMAGE_KEY)
    if image is not None and name in getattr(image, "channel_names", ()):
        image.set_role(name, role)
    prefix = f"{name} ({old})"
    # napari appends " [1]", " [2]" to a second copy's layer names: keep that suffix
    if old is not None and (layer.name == prefix or re.fullmatch(re.escape(prefix) + r" \[\d+\]", layer.name)):
        layer.name = f"{name} ({role})" + layer.name[len(prefix):]


class ChannelRolesWidget(QWidget):
    """One drop-down per image channel: nuclei, cancer cells, vessels, macrophages, other."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        #: drop-down per channel, keyed by stain name ("DAPI", "DAPI [2]" for a second image)
        self.combos: dict[str, QComboBox] = {}
        self._layers: dict[str, Image] = {}
        outer = QVBoxLayout(self)
        outer.addWidget(QLabel("What each channel shows (sets its colour):"))
        self._form_host = QWidget()
        self._form = QFormLayout(self._form_host)
        scroll = QScrollArea()  # a 40-marker panel is taller than the dock
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._form_host)
        outer.addWidget(scroll)
        self.guess_button = QPushButton("Guess roles from channel names")
        self.guess_button.clicked.connect(self.guess_all)
        outer.addWidget(self.guess_button)
        outer.addStretch(1)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self._rebuild)
        self._rebuild()

    def channel_layers(self) -> list[Image]:
        """Image layers that are single channels (not RGB slide images)."""
        return [ly for ly in self.viewer.layers if isinstance(ly, Image) and not ly.rgb]

    def _rebuild(self, _event=None) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        self.combos.clear()
        self._layers.clear()
        for layer in self.channel_layers():
            name = channel_name(layer)
            key, k = name, 2
            while key in self.combos:  # the same stain in two images
                key, k = f"{name} [{k}]", k + 1
            combo = QComboBox()
            combo.addItems(list(ROLES))
            combo.setCurrentText(layer.metadata.get(ROLE_KEY) or role_for_name(name))
            combo.currentTextChanged.connect(lambda role, ly=layer: set_channel_role(ly, role))
            self.combos[key] = combo
            self._layers[key] = layer
            self._form.addRow(key, combo)
        if not self.combos:
            self._form.addRow(QLabel("no image channels open"))

    def set_role(self, channel: str, role: str) -> None:
        """Programmatic equivalent of choosing ``role`` in a channel's drop-down."""
        if channel not in self.combos:
            raise RoiScoreError(f"No image channel {channel!r} is open.", f"Use one of {list(self.combos)}.")
        self.combos[channel].setCurrentText(role)
        set_channel_role(self._layers[channel], role)

    def guess_all(self) -> None:
        """Reset every channel to the role its name suggests: per image, each role goes to the
        channel that fits it best (e.g. Nuc rather than HH3), the others to "other"."""
        groups: dict[int, list[Image]] = {}
        for layer in self._layers.values():
            groups.setdefault(id(layer.metadata.get(IMAGE_KEY, layer)), []).append(layer)
        for layers in groups.values():
            for layer, role in zip(layers, guess_roles([channel_name(ly) for ly in layers])):
                set_channel_role(layer, role)
        self._rebuild()
