"""The raster of a large spot table, built in a napari worker and swapped into its layer.

:func:`start_build` runs :func:`~napari_roiscore.spots.view_build.build_steps`
in a ``thread_worker`` with a napari progress bar (one tick per block of
summed rows and per step); the GUI thread only receives the preview and the
full raster (:func:`show_raster` swaps them into the existing Image layer, so
the user's opacity, visibility and layer order stay).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer

from napari_roiscore._layer_data import raster_placement
from napari_roiscore._qt.warm_up import OWN_TURN_MS
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.spots.raster import Placement
from napari_roiscore.spots.view import SpotView
from napari_roiscore.spots.view_build import BuiltView, RasterImage, build_steps, n_build_steps

__all__ = ["show_raster", "start_build"]


def start_build(view: SpotView, on_preview: Callable[[SpotView, RasterImage], None],
                on_built: Callable[[SpotView, BuiltView], None],
                on_step: Callable[[str], None] | None = None):
    """Build ``view``'s raster in a worker thread; returns the started worker.

    ``on_preview(view, image)`` and ``on_built(view, built)`` run on the GUI
    thread.  ``worker.quit()`` stops the build at its next step (nothing is
    called back then).
    """
    from napari.qt.threading import thread_worker

    @thread_worker(progress={"total": n_build_steps(view), "desc": f"Drawing {view.name}"})
    def build():
        return (yield from build_steps(view))

    def _yielded(item) -> None:
        kind, payload = item
        if kind == "preview":  # on the next loop turn: a full raster already waiting wins (no
            QTimer.singleShot(OWN_TURN_MS, lambda: on_preview(view, payload))  # preview swapped in for nothing)
        elif on_step is not None:
            on_step(payload)

    worker = build()
    worker.yielded.connect(_yielded)
    worker.returned.connect(lambda built: on_built(view, built))
    worker.errored.connect(lambda err: show_error(f"ROI scores: the raster of {view.name} was not built: {err}"))
    let_go_when_finished(worker)  # napari keeps finished workers for the session
    worker.start()
    return worker


def show_raster(image, levels: list, limits: tuple[float, float], placement: Placement,
                pixel_size_um: float | None, name: str, colormap: str | None = None) -> None:
    """Put a (new) raster into ``image``: placement, colour map and limits (with its colour bar), data, name."""
    place = raster_placement(placement, pixel_size_um)
    block = getattr(image, "_block_refresh", None)  # one refresh at the end, not one per property
    with block() if block is not None else nullcontext():
        if image.locked_data_level is not None:
            image.locked_data_level = None  # the new pyramid may have fewer levels
        lo, hi = float(limits[0]), float(limits[1])
        image.contrast_limits_range = [lo, hi]  # the slider follows the new values
        image.contrast_limits = [lo, hi]
        if colormap is not None:
            image.colormap = colormap
        image.affine = place.get("affine", np.eye(3))
        image.scale = place.get("scale", (1.0, 1.0))
        image.translate = place.get("translate", (0.0, 0.0))
        image.data = levels
        image.name = name
    image.refresh()
    if not image.colorbar.visible:  # the raster's colours read against a scale, as the dock's; napari
        QTimer.singleShot(OWN_TURN_MS, lambda: _show_colour_bar(image))  # builds it in its own turn


def _show_colour_bar(image) -> None:
    try:
        image.colorbar.visible = True
    except RuntimeError:  # pragma: no cover - the layer's canvas is gone
        pass
