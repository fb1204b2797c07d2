"""What the dock changes in a large slide's drawing (a SpotView's raster and markers).

The dock colours the spots by a signature or gene (:func:`colour_spots`), types colour
limits (:func:`set_colour_limits`) and moves the spots (*Align spots*:
:func:`show_table`); each returns False for a plain Points layer of every spot, which
the caller colours itself. The camera side is :mod:`~napari_roiscore._qt.spot_view`.
"""

from __future__ import annotations

import numpy as np

from napari_roiscore._layer_data import SPOTS_KEY, VIEW_KEY
from napari_roiscore._qt.spot_view import controllers_of_view
from napari_roiscore.spots.view import SpotView

__all__ = ["colour_spots", "set_colour_limits", "show_table"]


def colour_spots(layer, values: np.ndarray, label: str, colormap: str | None = None,
                 limits: tuple[float, float] | None = None, filled: bool = True) -> bool:
    """Colour a SpotView's raster and markers by ``values`` (e.g. a signature score).

    ``colormap`` and ``limits`` are the dock's colour scale (the raster, the
    markers and the raster's colour bar then read as the dock says); ``filled``
    draws the markers filled, else as outlines.  Returns False when ``layer`` is
    a plain Points layer of every spot (the caller colours its features as before).
    """
    view = layer.metadata.get(VIEW_KEY)
    if view is None:
        return False
    view.filled = filled
    view.set_values(values, label, colormap, limits)
    return True


def set_colour_limits(layer, limits: tuple[float, float]) -> bool:
    """Limits typed in the dock: the raster and the markers follow at once (no rebuild)."""
    view = layer.metadata.get(VIEW_KEY)
    if view is None:
        return False
    view.fixed_limits = (float(limits[0]), float(limits[1]))
    for ctl in controllers_of_view(view):
        ctl.image.contrast_limits_range = list(view.fixed_limits)
        ctl.image.contrast_limits = list(view.fixed_limits)
        ctl._marker_colours = None
        ctl.refresh()
    return True


def show_table(layer, table) -> bool:
    """Draw a new SpotTable (e.g. the spots after *Align spots*) in a SpotView's layers.

    The raster is rebuilt for the moved spots (same values, new placement), the
    Points layer keeps only the markers in view, and its data event fires after
    ``SPOTS_KEY`` holds the new table (the dock rescores on it).  Returns False
    when ``layer`` is a plain Points layer of every spot.
    """
    old = layer.metadata.get(VIEW_KEY)
    if old is None:
        return False
    ctl = next(iter(controllers_of_view(old)), None)
    make = SpotView.pending if ctl is not None else SpotView.of  # with a controller: built in its worker
    view = make(table, marker_limit=old.marker_limit, pixel_size_um=old.pixel_size_um, name=old.name)
    if old.values is not None:
        view.values, view.label = old.values, old.label
    view.totals = old.totals if old.totals is not None else view.totals  # same counts, same totals
    layer.metadata[SPOTS_KEY] = table
    layer.metadata[VIEW_KEY] = view
    if ctl is not None:
        ctl.image.metadata[VIEW_KEY] = view
        view.on_values(ctl._values_changed)
        if len(ctl.points.data):
            ctl._set_markers(np.empty(0, dtype=np.int64))  # the old markers sit where the spots were
        ctl.rebuild(view)
        ctl.refresh()
    layer.data = layer.data  # the data event, now that the new table is in place
    return True
