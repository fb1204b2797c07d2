"""napari side of :class:`~napari_roiscore.spots.view.SpotView`: follow the camera.

A large spot table opens as two layers sharing one SpotView (metadata
``VIEW_KEY``): a multiscale raster Image layer and a Points layer (holding the
SpotTable under ``SPOTS_KEY``, as the widget expects).  After each pan/zoom
(debounced) the controller asks the view how many spots are in the canvas:

* at most ``marker_limit``: the Points layer gets every spot in view (the
  raster of irregular spots is hidden; a grid's raster stays, it is exact);
* more: the Points layer is emptied and the raster shown.

The canvas text overlay says which mode is on screen.  ``install_spot_views``
connects a viewer once; the reader calls it, so File ▸ Open is enough.

A view opened :meth:`~napari_roiscore.spots.view.SpotView.pending` (the
reader's default) is built by the controller in a worker
(:mod:`~napari_roiscore._qt.raster_worker`): the placeholder raster is on
screen at once, then the labelled preview, then the full raster
(:attr:`SpotViewController.stage`: "building", "preview", "full").
"""

from __future__ import annotations

import weakref
from contextlib import ExitStack, contextmanager

import numpy as np
from qtpy.QtCore import QTimer

from napari_roiscore._layer_data import SPOTS_KEY, VIEW_KEY, raster_name
from napari_roiscore._qt.raster_worker import show_raster, start_build
from napari_roiscore._qt.warm_up import OWN_TURN_MS, glyph_warmer
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.spots.view import SpotView
from napari_roiscore.spots.view_build import BuiltView, RasterImage

__all__ = ["SpotViewController", "controller_of", "controllers_of_view", "install_spot_views"]

#: pause after the last camera move before the markers are updated (ms)
DEBOUNCE_MS = 80
#: the overlay text is shown this long after the layers come (ms): its first paint (shaders of a text
#: visual, ≈ 0.05-0.09 s with software OpenGL) then is not in the paint of the new markers
OVERLAY_DELAY_MS = 4 * OWN_TURN_MS
#: widest pyramid level drawn whole (locked) so that no bin is skipped on screen
MAX_LOCKED_SIDE = 4096


def _text_overlay(viewer):
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    if overlays is not None and hasattr(overlays, "text"):
        return overlays.text
    return viewer.text_overlay  # napari < 0.9


def _canvas_size(viewer) -> np.ndarray:
    canvas = getattr(viewer, "canvas", None)
    size = getattr(canvas, "size", None)
    if size is None:
        size = getattr(viewer, "_canvas_size", (800, 800))
    return np.asarray(size, dtype=float)[-2:]


class SpotViewController:
    """Keeps the raster / markers of one SpotView in step with the camera (and builds it)."""

    def __init__(self, viewer, image, points, view: SpotView) -> None:
        self._viewer = weakref.ref(viewer)
        self.image, self.points, self.view = image, points, view
        self.mode = "raster"
        self.n_markers: int | None = None
        self.recoloured = 0  # rasters rebuilt after "colour by" changed
        self.stage = "full" if view.built else "building"
        self.preview_side: float | None = None  # tile side of the preview shown (spot pixels)
        self._build = None  # the worker building the raster
        self._worker = None  # the worker recolouring it
        self._marker_colours: tuple | None = None  # (values, limits) the markers' colour map was set for
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        viewer.camera.events.center.connect(self._schedule)
        viewer.camera.events.zoom.connect(self._schedule)
        image.events.visible.connect(self._schedule)
        view.on_values(self._values_changed)
        self._overlay = _text_overlay(viewer)
        self._overlay.font_size = 12
        # shown once its glyphs are rendered (a few per loop turn), not in one long first paint
        # its own loop turn: creating the overlay's visual is one more step when a slide opens
        # (after the markers' first paint, which builds their text visual's shaders: not in the same paint)
        glyph_warmer(viewer).when_ready(lambda: QTimer.singleShot(OVERLAY_DELAY_MS, self._show_overlay))
        viewer.layers.events.removed.connect(self._on_removed)
        if not view.built:
            self.rebuild(view)
        self._schedule()

    def _show_overlay(self) -> None:
        if self._viewer() is not None:
            self._overlay.visible = True

    # -- building the raster (worker) ------------------------------------------
    def rebuild(self, view: SpotView) -> None:
        """Draw ``view`` (pending): placeholder now, preview and full raster from a worker."""
        self.stop()
        self.view, self.stage, self.preview_side = view, "building", None
        self._overlay.text = view.mode_text(0, None)  # "building the raster…", at once
        self._build = start_build(view, self._show_preview, self._on_built)

    def stop(self) -> None:
        """Stop a build still running (at its next step)."""
        if self._build is not None:
            self._build.quit()
            self._build = None

    def _alive(self, view: SpotView) -> bool:
        return view is self.view and self.image in self._layers() and self.points in self._layers()

    def _on_removed(self, event=None) -> None:
        if self.image not in self._layers() or self.points not in self._layers():
            self.stop()  # the layers (or the viewer) are gone: nothing to build for
            self._detach()

    def _detach(self) -> None:
        """Let go of the viewer's events and registry, so the removed slide's data can be freed."""
        self._timer.stop()
        try:
            self._timer.timeout.disconnect()  # Qt holds the slot: a cycle the garbage collector cannot see
        except (TypeError, RuntimeError):
            pass
        viewer = self._viewer()
        if viewer is None:
            return
        for emitter, callback in ((viewer.camera.events.center, self._schedule),
                                  (viewer.camera.events.zoom, self._schedule),
                                  (self.image.events.visible, self._schedule),
                                  (viewer.layers.events.removed, self._on_removed)):
            emitter.disconnect(callback)
        controllers = _controllers(viewer)
        if self in controllers:
            controllers.remove(self)
        if not controllers:
            self._overlay.visible = False  # no large slide left to describe

    def _show_preview(self, view: SpotView, image: RasterImage) -> None:
        if not self._alive(view) or self.stage != "building":
            return
        show_raster(self.image, image.levels, image.contrast_limits, image.placement, view.pixel_size_um,
                    raster_name(view, "preview"))
        self.stage, self.preview_side = "preview", image.side
        self.refresh()

    def _on_built(self, view: SpotView, built: BuiltView) -> None:
        """The full raster is ready: the view gets its binning; the raster is swapped in."""
        self._build = None
        if not self._alive(view):
            return
        view.binning = built.binning
        if built.totals is not None:
            view.totals = built.totals
        if view.values is None:
            view.values = built.values
        if view.values is built.values:
            view.remember_limits(built.values, built.image.contrast_limits)
            self._swap_in(built.image.levels, built.image.contrast_limits)
        else:  # coloured by something else meanwhile: its raster, from the binning just built
            self._values_changed(view)

    def _swap_in(self, levels: list, limits) -> None:
        show_raster(self.image, levels, limits, self.view.binning.placement, self.view.pixel_size_um,
                    raster_name(self.view, "full"), colormap=self.view.colormap)
        self.stage = "full"
        self.refresh()

    def _schedule(self, event=None) -> None:
        self._timer.start()

    def visible_box(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Canvas extent as (y, x) min and max in the spots layer's data pixels."""
        viewer = self._viewer()
        if viewer is None:
            return None
        centre = np.asarray(viewer.camera.center, float)[-2:]
        half = _canvas_size(viewer) / (2.0 * viewer.camera.zoom)
        corners = np.array([centre - half, centre + half])
        data = np.array([self.points.world_to_data(np.r_[np.zeros(viewer.dims.ndim - 2), c])[-2:]
                         for c in corners])
        return data.min(axis=0), data.max(axis=0)

    def refresh(self) -> None:
        """Markers of every spot in view, or the raster, after the camera moved."""
        if self.points not in self._layers() or self.image not in self._layers():
            return
        box = self.visible_box()
        if box is None:
            return
        idx = self.view.markers_in_view(*box)
        if idx is None:
            if len(self.points.data):
                self._set_markers(np.empty(0, dtype=np.int64))
            self.mode, self.n_markers = "raster", None
            if not self.image.visible:
                self.image.visible = True
        else:
            self._set_markers(idx)
            self.mode, self.n_markers = "markers", int(idx.size)
            want_raster = self.view.is_grid
            if self.image.visible != want_raster:
                self.image.visible = want_raster
        self._show_marker_colour_bar()
        level, sampled = self._lock_honest_level()
        self._overlay.text = self.view.mode_text(level, self.n_markers, sampled,
                                                 self.preview_side if self.stage == "preview" else None)

    def _show_marker_colour_bar(self) -> None:
        """One colour bar on the canvas: the raster's, or the markers' while the raster is hidden."""
        coloured = self.mode == "markers" and not self.view.is_grid and not self.image.visible
        face, border = self.points.face_colorbar, self.points.border_colorbar
        want = (coloured and self.view.filled, coloured and not self.view.filled)
        if (face.visible, border.visible) != want:
            face.visible, border.visible = want

    def _lock_honest_level(self) -> tuple[int, bool]:
        """Show the pyramid level whose pixels are at least one screen pixel wide.

        napari picks a level with 1–2 data pixels per screen pixel and samples
        it (nearest), so up to 3 of 4 bins would not reach the screen.  One
        level coarser, every pixel — the mean of all the bins it covers — is
        drawn.  Levels wider than :data:`MAX_LOCKED_SIDE` are left to napari
        (returns ``sampled=True`` then, and the overlay says so).
        """
        viewer = self._viewer()
        m = np.asarray(self.image.affine.affine_matrix)[-3:-1, -3:-1] @ np.diag(self.image.scale[-2:])
        pixel_world = float(np.sqrt(abs(np.linalg.det(m))))
        on_screen = viewer.camera.zoom * pixel_world  # screen pixels per level-0 pixel
        want = None
        if on_screen < 1:
            want = min(int(np.ceil(np.log2(1.0 / on_screen) - 1e-9)), len(self.image.data) - 1)
            if max(self.image.data[want].shape) > MAX_LOCKED_SIDE:
                want = None
        if self.image.locked_data_level != want:
            self.image.locked_data_level = want
        sampled = want is None and on_screen < 1
        if want is None and on_screen >= 1:
            return 0, False  # napari draws level 0 at this zoom (its data_level updates only on the next draw)
        return (want if want is not None else int(self.image.data_level)), sampled

    def _layers(self):
        viewer = self._viewer()
        return viewer.layers if viewer is not None else []

    def _set_markers(self, idx: np.ndarray) -> None:
        """Markers of the spots ``idx``: one update of the layer (events held until the end).

        The colour map and limits are set once per coloured values; after that
        the new markers' colours come from their ``value`` feature, mapped once.
        """
        spots = self.view.spots
        values = self.view.values[idx]
        features = {"barcode": np.asarray(spots.adata.obs_names[idx], dtype=object), "value": values}
        colour = bool(idx.size) and not self.view.is_grid and bool(np.isfinite(values).any())
        with _held_events(self.points):
            self.points.data = spots.xy[idx][:, ::-1] if idx.size else np.empty((0, 2))  # no full-table copy
            self.points.features = features
            view = self.view
            key = (id(view.values), view.contrast_limits(), view.colormap, view.filled)
            if colour and self._marker_colours != key:  # the dock's colour scale, filled or outlined
                paint, clear = ("face", "border") if view.filled else ("border", "face")
                setattr(self.points, f"{paint}_colormap", view.colormap)
                setattr(self.points, f"{paint}_contrast_limits", key[1])
                setattr(self.points, f"{paint}_color", "value")
                setattr(self.points, f"{clear}_color", [0.0, 0.0, 0.0, 0.0])
                self._marker_colours = key
        self.points.refresh()

    def _values_changed(self, view: SpotView) -> None:
        """Colour by changed: rebuild only the raster (in a worker thread), then the marker colours."""
        from napari.qt.threading import thread_worker

        if not view.built or view is not self.view:
            return  # the build running uses (or is followed by) the latest values
        values = view.values

        @thread_worker
        def build():
            return values, view.pyramid_of(values), view.limits_for(values)

        worker = build()
        worker.returned.connect(self._show_pyramid)
        self._worker = worker  # kept alive until it returns
        let_go_when_finished(worker)  # napari keeps finished workers for the session
        worker.start()

    def _show_pyramid(self, result) -> None:
        values, levels, limits = result
        if values is not self.view.values or not self._alive(self.view):
            return  # coloured by something else meanwhile: that worker's result follows
        self.view.remember_limits(values, limits)
        self._swap_in(levels, limits)
        self.recoloured += 1


@contextmanager
def _held_events(points):
    """Hold a Points layer's events, its colour managers' included (each redraws every marker)."""
    with ExitStack() as stack:
        stack.enter_context(points.events.blocker_all())
        for manager in (getattr(points, "_face", None), getattr(points, "_border", None)):
            if manager is not None and hasattr(manager, "events"):
                stack.enter_context(manager.events.blocker_all())
        yield


def _pair(viewer, layer) -> None:
    view = layer.metadata.get(VIEW_KEY)
    if view is None:
        return
    mates = [ly for ly in viewer.layers if ly.metadata.get(VIEW_KEY) is view]
    points = [ly for ly in mates if SPOTS_KEY in ly.metadata]
    images = [ly for ly in mates if SPOTS_KEY not in ly.metadata]
    if points and images and not any(isinstance(c, SpotViewController) and c.view is view
                                     for c in _controllers(viewer)):
        _controllers(viewer).append(SpotViewController(viewer, images[0], points[0], view))


_CONTROLLERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INSTALLED: weakref.WeakSet = weakref.WeakSet()
def _controllers(viewer) -> list:
    return _CONTROLLERS.setdefault(viewer, [])


def install_spot_views(viewer) -> None:
    """Attach a controller to every raster+points pair of a SpotView, now and when added."""
    if viewer in _INSTALLED:
        return
    _INSTALLED.add(viewer)
    glyph_warmer(viewer)  # the overlay's glyphs, rendered a few per loop turn from now on
    viewer.layers.events.inserted.connect(lambda event: _pair(viewer, event.value))
    for layer in list(viewer.layers):
        _pair(viewer, layer)


def controllers_of_view(view: SpotView) -> list[SpotViewController]:
    """The controllers drawing ``view`` (in any viewer)."""
    return [c for cs in list(_CONTROLLERS.values()) for c in cs if c.view is view]


def controller_of(viewer, layer) -> SpotViewController | None:
    """The controller drawing ``layer`` (raster or points of a SpotView), if any."""
    view = layer.metadata.get(VIEW_KEY)
    return next((c for c in _controllers(viewer) if c.view is view), None)
