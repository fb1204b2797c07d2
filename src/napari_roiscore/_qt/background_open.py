"""Reading spot data in a worker thread when the user opens it in the running napari window.

napari calls a reader synchronously on its GUI thread: a 1-million-bin table
took 1.2 s to read there (and a GeoMx NGS folder 1.1 s), the window frozen all
along.  When a file is opened from the running window (File ▸ Open, drag and
drop), the reader hands the paths to :func:`open_in_background` and returns
napari's "nothing to add" sentinel; the files are read in a napari
``thread_worker`` with a progress bar in the activity dock, and the layers are
added one per event-loop turn when reading is done.  A read that fails shows
the reader's message (what is wrong and the fix) as a napari notification.

Scripts calling ``viewer.open`` before ``napari.run()`` (no event loop yet) get
the layers at once, as napari's API promises: the reader decides with
:func:`running_viewer`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from qtpy.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal

from napari_roiscore._layer_data import VIEW_KEY, holds_spot_view
from napari_roiscore._qt.first_look import adopt_first_look, drop_first_look, show_first_look
from napari_roiscore._qt.warm_up import OWN_TURN_MS
from napari_roiscore._qt.workers import let_go_when_finished

__all__ = ["open_in_background", "running_viewer"]

#: longest the reading worker waits for the GUI to show a first look (s)
FIRST_LOOK_WAIT_S = 2.0

#: ``read_one(path, step)`` → layer data of one path; ``step(done, total)`` reports progress
ReadOne = Callable[[Path, Callable[[int, int], None]], list[tuple]]

def running_viewer():
    """The current napari viewer when called on the GUI thread inside its running event loop, else ``None``."""
    app = QCoreApplication.instance()
    if app is None or app.thread() != QThread.currentThread() or QThread.currentThread().loopLevel() < 1:
        return None
    import napari

    viewer = napari.current_viewer()
    if viewer is None or getattr(viewer, "window", None) is None:
        return None
    return viewer


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (a queued signal)."""

    step = Signal(str, int, int)
    prepared = Signal()
    first_look = Signal(object)


def open_in_background(viewer, paths: list[Path], read_one: ReadOne,
                       before_adding: Callable[[list[tuple]], None] | None = None,
                       prepare: Callable[[list[Path]], None] | None = None,
                       prepared: Callable[[], None] | None = None,
                       first_look: Callable[[Path], list[tuple]] | None = None):
    """Read ``paths`` in a worker, then add their layers to ``viewer`` one per loop turn.

    Parameters
    ----------
    viewer : napari.Viewer
    paths : list of Path
    read_one : callable
        ``read_one(path, step)`` → the layer data of one path (run in the worker).
    before_adding : callable, optional
        Called on the GUI thread with all layer data before the first layer is
        added (e.g. to attach the raster/markers camera callback).
    prepare : callable, optional
        ``prepare(paths)``, run in the worker before reading (e.g. the readers'
        imports: loading compiled modules holds the interpreter, so GUI-thread
        work done meanwhile waits for it).
    prepared : callable, optional
        Called on the GUI thread once ``prepare`` has run (e.g. to start warming
        glyphs, which took 0.13-0.22 s per turn while the readers were imported).
    first_look : callable, optional
        ``first_look(path)`` → layer data shown while ``path`` is read (run in the worker
        before ``read_one``; e.g. a large slide's coarse preview; the worker waits up to
        ``FIRST_LOOK_WAIT_S`` while the GUI shows it). Such layers carry ``FIRST_LOOK_KEY``;
        one becomes the raster layer of the slide read from its path
        (``_qt/first_look.adopt_first_look``), or is removed when the read fails or gives
        no raster.

    Returns
    -------
    napari worker
        Started on the next loop turn, once the progress bar is shown; its
        ``finished`` signal fires after reading (the layers follow on the next
        loop turns).
    """
    from napari.qt.threading import thread_worker

    names = ", ".join(p.name for p in paths)
    bar = _Bar()
    relay = _Relay()
    relay.step.connect(lambda desc, done, total: bar.advance(desc, done, total))
    if prepared is not None:
        relay.prepared.connect(prepared)
    relay.first_look.connect(lambda look: show_first_look(viewer, look[0], shown=look[1].set,
                                                          source=lambda: _source(look[2])))

    def read_all() -> list[tuple[Path, list[tuple]]] | tuple[Exception]:
        out = []
        try:
            if prepare is not None:
                prepare(paths)
                relay.prepared.emit()
            for p in paths:
                if first_look is not None and (look := first_look(p)):
                    shown = threading.Event()  # the worker waits while the GUI adds and paints it: napari's
                    relay.first_look.emit((look, shown, p))  # steps there took 0.3 s against a reading worker
                    shown.wait(FIRST_LOOK_WAIT_S)  # (both want the interpreter), 0.1-0.15 s alone
                relay.step.emit(f"reading {p.name}", 0, 0)
                out.append((p, read_one(p, lambda d, t, p=p: relay.step.emit(f"reading {p.name}", d, t))))
        except Exception as err:  # noqa: BLE001 - told the user once, in our words (a raised or returned
            return (err,)  # exception would also be re-raised and notified by napari's worker)
        return out

    first_index = len(viewer.layers)  # where this open's layers go, under any added meanwhile (ROIs)

    def done(result: list | tuple[Exception]) -> None:
        if isinstance(result, tuple):
            for p in paths:
                drop_first_look(viewer, str(p))
            _failed(bar, names, result[0])
        else:
            _add_in_turns(viewer, result, bar, before_adding, first_index)

    worker = thread_worker(read_all)()
    worker.returned.connect(done)  # (superqt keeps a running worker, read_all's closure its relay)
    let_go_when_finished(worker)  # napari keeps finished workers for the session

    def start() -> None:  # napari makes its progress bar in 0.06 s, but in 0.16-0.24 s once the
        bar.advance(f"reading {names}")  # worker imports the readers (both want the interpreter)
        worker.start()

    QTimer.singleShot(OWN_TURN_MS, start)  # not in the turn of napari's own "Opening" bar
    return worker


class _Bar:
    """napari's progress bar in the activity dock, made on the first step reported."""

    def __init__(self) -> None:
        self._bar = None

    def advance(self, desc: str, done: int = 0, total: int = 0) -> None:
        from napari.utils import progress

        desc = f"napari-roiscore: {desc}"
        if self._bar is None:
            self._bar = progress(total=total, desc=desc)
        elif self._bar.desc != desc:
            self._bar.set_description(desc)
        if total and self._bar.total != total:
            self._bar.total = total
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None


def _failed(bar, names: str, err: Exception) -> None:
    from napari.utils.notifications import show_error

    bar.close()
    show_error(f"Could not open {names}: {err}")


def _add_in_turns(viewer, result: list[tuple[Path, list[tuple]]], bar,
                  before_adding: Callable[[list[tuple]], None] | None, first_index: int) -> None:
    """Add the layers one per event-loop turn, so the window repaints and answers between them.

    They go in at ``first_index`` and up, in their order, so layers opened while
    these were read (ROIs dropped with the spots) stay on top.  Each layer is added
    hidden and shown on the next turn: adding it (napari builds the
    layer, its controls and its visual) and drawing it the first time (vispy compiles its
    shaders) are then two shorter steps instead of one.
    """
    queue = [(p, layer) for p, layers in result for layer in layers]
    index = [min(first_index, len(viewer.layers))]
    if before_adding is not None:
        before_adding([layer for _, layer in queue])
    bar.advance(f"adding {len(queue)} layer(s)")

    def next_one() -> None:
        if not queue:
            bar.close()
            for p, layers in result:
                if not holds_spot_view(layers):
                    drop_first_look(viewer, str(p))  # no raster of its own will replace it
            return
        step = queue.pop(0)
        if step[0] == "show":  # the layer's first paint, in its own turn
            step[1].visible = True
        else:
            p, (data, kwargs, kind) = step
            try:
                layer = adopt_first_look(viewer, str(p), step[1]) if VIEW_KEY in kwargs.get("metadata", {}) \
                    and kind == "image" else None  # its first look becomes the raster layer
                if layer is None:
                    with _source(p):
                        layer = getattr(viewer, f"add_{kind}")(data, **{**kwargs, "visible": False})
                at = viewer.layers.index(layer)
                if at != index[0]:
                    viewer.layers.move(at, index[0])
                index[0] += 1
                if kwargs.get("visible", True) and not layer.visible:
                    queue.insert(0, ("show", layer))
            except Exception as err:  # noqa: BLE001 - e.g. the window was closed while reading
                from napari.utils.notifications import show_error

                show_error(f"{p.name}: layer {kwargs.get('name', kind)!r} could not be added ({err}).")
        QTimer.singleShot(OWN_TURN_MS, next_one)

    QTimer.singleShot(OWN_TURN_MS, next_one)


def _source(path: Path):
    """napari's layer source (the path and this reader, as napari sets it when it adds a reader's layers)."""
    try:
        from napari.layers._source import layer_source

        return layer_source(path=str(path), reader_plugin="napari-roiscore")
    except ImportError:  # pragma: no cover - private napari module moved
        from contextlib import nullcontext

        return nullcontext()
