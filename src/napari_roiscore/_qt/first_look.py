"""The first look at a large slide: its coarse preview, shown while the slide is read.

The preview layer (``_layer_data.first_look_layer``) is added as soon as the
reading worker has computed it. When the table is read, the layer becomes the
slide's raster layer (:func:`adopt_first_look`: same preview, now the raster's own,
which the build then replaces by the full raster) — napari adds one image layer
fewer, and nothing is removed; when the read fails, or gives no raster, the
layer is removed: it never outlives the read it stands in for.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext

from qtpy.QtCore import QTimer

from napari_roiscore._layer_data import FIRST_LOOK_KEY, FIRST_LOOK_TEXT_KEY, VIEW_KEY, raster_name
from napari_roiscore._qt.warm_up import OWN_TURN_MS

__all__ = ["adopt_first_look", "drop_first_look", "show_first_look"]


def show_first_look(viewer, layer_data: list[tuple], shown: Callable[[], None] | None = None,
                    source: Callable[[], ContextManager] = nullcontext) -> None:
    """Add the first-look layers of ``layer_data`` to ``viewer`` (skipped if napari cannot add them).

    Each is added hidden and shown on a later loop turn: napari building the layer with its
    controls, and its first paint (the shaders of the first image drawn), are two steps
    instead of one. ``shown()`` is called two turns after the last is shown (painted).
    ``source()``: the context napari's layer source is set in (the path read, this reader).
    """
    turns: list[Callable[[], None]] = []
    for data, kwargs, kind in layer_data:
        try:
            with source():
                layer = getattr(viewer, f"add_{kind}")(data, **{**kwargs, "visible": False})
        except Exception:  # noqa: BLE001 - only a preview: the slide itself comes when it is read
            continue
        turns += [lambda layer=layer: _show(viewer, layer), lambda: None,  # each first paint in its own turn
                  lambda layer=layer: _colour_bar(viewer, layer), lambda: None,
                  lambda layer=layer: _explain(viewer, layer)]
    turns += [lambda: None, shown or (lambda: None)]

    def next_turn() -> None:
        turns.pop(0)()
        if turns:
            QTimer.singleShot(OWN_TURN_MS, next_turn)

    QTimer.singleShot(OWN_TURN_MS, next_turn)


def _show(viewer, layer) -> None:
    if layer in viewer.layers:  # (not dropped meanwhile)
        layer.visible = True


def _colour_bar(viewer, layer) -> None:
    if layer in viewer.layers:
        layer.colorbar.visible = True


def _explain(viewer, layer) -> None:
    """The canvas text saying what it is (once the overlay's glyphs are rendered)."""
    if layer not in viewer.layers:
        return
    from napari_roiscore._qt.spot_view import _text_overlay
    from napari_roiscore._qt.warm_up import glyph_warmer

    overlay = _text_overlay(viewer)
    overlay.text = layer.metadata.get(FIRST_LOOK_TEXT_KEY, "")
    overlay.font_size = 12

    def show_text() -> None:  # (unless it went meanwhile, or became the slide's raster, whose controller says)
        if layer in viewer.layers and FIRST_LOOK_KEY in layer.metadata:
            overlay.visible = True

    glyph_warmer(viewer).when_ready(show_text)


def drop_first_look(viewer, source: str | None = None) -> None:
    """Remove the first-look layers read from ``source`` (all of them when None)."""
    for layer in [la for la in viewer.layers if FIRST_LOOK_KEY in la.metadata]:
        if source is None or layer.metadata[FIRST_LOOK_KEY] == source:
            viewer.layers.remove(layer)
            from napari_roiscore._qt.spot_view import _text_overlay

            overlay = _text_overlay(viewer)
            if overlay.text == layer.metadata.get(FIRST_LOOK_TEXT_KEY):
                overlay.visible, overlay.text = False, ""


def adopt_first_look(viewer, source: str, raster: tuple):
    """The first-look layer read from ``source`` made the slide's raster layer, or None (there is none).

    ``raster`` is the reader's layer data of the raster (``_layer_data.raster_layer``):
    the layer takes its metadata (the SpotView) and the preview's name, and keeps its
    pixels — the first look is the view's own preview (``SpotView.ready_preview``).
    """
    layer = next((la for la in viewer.layers if la.metadata.get(FIRST_LOOK_KEY) == source), None)
    if layer is None:
        return None
    view = raster[1]["metadata"][VIEW_KEY]
    layer.metadata = dict(raster[1]["metadata"])
    layer.name = raster_name(view, "preview")
    return layer
