"""Once-per-session costs of napari paid before they would freeze the GUI.

Measured when a large spot table opens (1M bins, software OpenGL): the first
napari layer of a session sets up pint's unit registry (~0.38 s, parsing its
definitions file), and the first paint of the canvas text overlay renders the
glyph of each new character (~6 ms each, 40-50 characters: ~0.28 s).  Both
would block the GUI thread in one piece.

* :func:`start_units` sets up the unit registry in a background thread (the
  reader starts it when it begins reading; :func:`wait_units` joins it before
  the layers are returned, so napari never touches a half-built registry);
* :func:`freeze_long_lived` moves the objects alive when the first slide is
  opened into an empty viewer (napari's, Qt's, the modules imported: they live
  as long as the session) out of the garbage collector's reach (``gc.freeze``): a full
  collection, which took 100-130 ms in the middle of adding the layers, then
  only traverses what came later;
* :class:`GlyphWarmer` renders the overlay's glyphs a few per event-loop turn
  and calls back when the text can be shown without a long paint.
"""

from __future__ import annotations

import string
import threading
import time
import weakref
from collections.abc import Callable

from qtpy.QtCore import QTimer

__all__ = ["OVERLAY_CHARACTERS", "GlyphWarmer", "freeze_long_lived", "glyph_warmer", "import_napari_lazy_modules",
           "start_units", "wait_units"]

#: delay (ms) that gives a GUI step its own event-loop turn: zero-delay calls are queued
#: events, which Qt runs back to back (with the paints they cause) before any timer or input
OWN_TURN_MS = 15

#: modules napari imports the first time a layer of a session is added (measured: scipy.ndimage
#: for the thumbnail, 0.11 s; xarray, checked for by every image layer, when installed)
NAPARI_LAZY_MODULES = ("scipy.ndimage", "xarray")

_units_thread: threading.Thread | None = None
_UNITS_LOCK = threading.Lock()


def _set_up_units() -> None:
    import pint

    pint.get_application_registry().pixel  # noqa: B018 - the first attribute parses the definitions


def start_units() -> None:
    """Set up pint's unit registry (as napari's layers use it) in a background thread, once."""
    global _units_thread
    with _UNITS_LOCK:
        if _units_thread is None:
            _units_thread = threading.Thread(target=_set_up_units, name="roiscore-units", daemon=True)
            _units_thread.start()


def wait_units(timeout: float = 30.0) -> None:
    """Wait for :func:`start_units` (if it was started) to finish."""
    if _units_thread is not None:
        _units_thread.join(timeout)


_frozen = False


def import_napari_lazy_modules() -> None:
    """Import :data:`NAPARI_LAZY_MODULES` (those installed) here: the reader's worker calls it,
    so napari does not import them on the GUI thread when it adds the first layer."""
    from importlib import import_module
    from importlib.util import find_spec

    for name in NAPARI_LAZY_MODULES:
        try:
            if find_spec(name) is not None:
                import_module(name)
        except (ImportError, ValueError):  # noqa: PERF203 - absent or broken: napari copes as it does anyway
            pass


def freeze_long_lived(viewer) -> bool:
    """``gc.freeze()`` once per session, when the first slide is opened into an empty viewer.

    The objects alive then (napari's, Qt's, the modules') live as long as the session and
    are no longer traversed by every full collection.  Frozen objects are never collected,
    so it is done only while the viewer holds no layer: a layer removed later, and its
    data, must stay collectable.  Returns True if it froze now.
    """
    global _frozen
    if _frozen or len(viewer.layers):
        return False
    import gc

    gc.freeze()
    _frozen = True
    return True


#: characters of the spot-view overlay texts (labels add a few more, loaded when drawn); first
#: those vispy measures the line height with, drawn with any text (even an empty one)
OVERLAY_CHARACTERS = "ÅÉÑŐjgpqy " + string.ascii_letters + string.digits + " .,:;()+-–/%×·…µ"
#: glyphs rendered per event-loop turn at most (~6 ms each with software rendering) ...
GLYPHS_PER_TURN = 3
#: ... and no more once a turn took this long (s): other threads reading or building rasters
#: compete for the interpreter, and then one glyph can take 30 ms
TURN_BUDGET_S = 0.012


def _overlay_font(viewer):
    """The texture font of the viewer's canvas text overlay (napari >= 0.6), or None."""
    try:
        info = viewer.window._qt_viewer.canvas.font_info
        info = info() if callable(info) else info  # a method in napari 0.9
        return info.font_manager.get_font(info.face)
    except AttributeError:  # another napari: nothing to warm, glyphs load when drawn
        return None


class GlyphWarmer:
    """Render the overlay font's glyphs a few per event-loop turn, then call back.

    Parameters
    ----------
    viewer : napari.Viewer
    characters : str
        Glyphs to render (those already rendered are skipped).
    """

    def __init__(self, viewer, characters: str = OVERLAY_CHARACTERS) -> None:
        self._font = _overlay_font(viewer)
        glyphs = getattr(self._font, "_glyphs", {})
        self._todo = [c for c in dict.fromkeys(characters) if c not in glyphs]
        self._done: list[Callable[[], None]] = []
        self._timer = QTimer()
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._turn)
        if self._font is not None and self._todo:
            self._timer.start()

    @property
    def ready(self) -> bool:
        """Every glyph rendered (or nothing to warm)."""
        return not self._timer.isActive()

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every glyph is rendered (now, if they are)."""
        if self.ready:
            callback()
        else:
            self._done.append(callback)

    def _turn(self) -> None:
        start = time.perf_counter()
        for _ in range(GLYPHS_PER_TURN):
            if not self._todo or time.perf_counter() - start > TURN_BUDGET_S:
                break
            try:
                self._font[self._todo.pop(0)]  # renders and stores the glyph
            except Exception:  # noqa: BLE001 - a glyph the font cannot render is drawn (or not) by napari
                pass
        if not self._todo:
            self._timer.stop()
            done, self._done = self._done, []
            for callback in done:
                callback()


_WARMERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def glyph_warmer(viewer) -> GlyphWarmer:
    """The viewer's overlay glyph warmer, started on the first call (the reader calls it when
    reading begins, the spot views when they are attached)."""
    if viewer not in _WARMERS:
        _WARMERS[viewer] = GlyphWarmer(viewer)
    return _WARMERS[viewer]
