"""The first look at a large slide: its coarse preview, shown while the slide is read.

The preview layer (``_layer_data.first_look_layer``) is added as soon as the
reading worker has computed it, and removed when the slide read from the same
path draws its own raster (preview or full), when that raster cannot be built,
or when the read fails — it never outlives the read it stands in for.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QTimer

from napari_roiscore._layer_data import FIRST_LOOK_KEY
from napari_roiscore._qt.warm_up import OWN_TURN_MS

__all__ = ["drop_first_look", "show_first_look"]


def show_first_look(viewer, layer_data: list[tuple], shown: Callable[[], None] | None = None) -> None:
    """Add the first-look layers of ``layer_data`` to ``viewer`` (skipped if napari cannot add them).

    Each is added hidden and shown on a later loop turn: napari building the layer with its
    controls, and its first paint (the shaders of the first image drawn), are two steps
    instead of one. ``shown()`` is called two turns after the last is shown (painted).
    """
    turns: list[Callable[[], None]] = []
    for data, kwargs, kind in layer_data:
        try:
            layer = getattr(viewer, f"add_{kind}")(data, **{**kwargs, "visible": False})
        except Exception:  # noqa: BLE001 - only a preview: the slide itself comes when it is read
            continue
        turns.append(lambda layer=layer: _show(viewer, layer))
    turns += [lambda: None, shown or (lambda: None)]

    def next_turn() -> None:
        turns.pop(0)()
        if turns:
            QTimer.singleShot(OWN_TURN_MS, next_turn)

    QTimer.singleShot(OWN_TURN_MS, next_turn)


def _show(viewer, layer) -> None:
    if layer in viewer.layers:  # (not dropped meanwhile)
        layer.visible = True


def drop_first_look(viewer, source: str | None = None) -> None:
    """Remove the first-look layers read from ``source`` (all of them when None)."""
    for layer in [la for la in viewer.layers if FIRST_LOOK_KEY in la.metadata]:
        if source is None or layer.metadata[FIRST_LOOK_KEY] == source:
            viewer.layers.remove(layer)
