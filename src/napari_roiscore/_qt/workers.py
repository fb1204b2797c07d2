"""Letting go of what a finished worker holds.

napari keeps every ``thread_worker`` started while a viewer is open, for the whole
session: its task-status list holds each worker's ``quit`` as a cancel callback
(napari 0.9).  A worker holds its function (whose closure often holds a slide's
SpotTable or scorer) and the slots connected to its signals.  Measured: after a
slide's layers were removed, its AnnData stayed alive through the raster build's
worker.  :func:`let_go_when_finished` drops those references once the worker is done.

A script that ends while one of our workers still runs (a slide still being read) used to
abort the interpreter: the worker's ``finished`` signal was emitted on a Qt object already
deleted at exit. napari waits for its workers when its application quits; for scripts, the
first of our workers also registers that wait at exit (:data:`EXIT_WAIT_MS`).
"""

from __future__ import annotations

import atexit

__all__ = ["EXIT_WAIT_MS", "let_go_when_finished"]

#: at exit, how long to wait for running workers to end (ms)
EXIT_WAIT_MS = 120_000
_exit_wait = {"registered": False}

#: what a superqt worker keeps of the work it was given (a function or a generator)
_WORK_ATTRIBUTES = ("_func", "_args", "_kwargs", "_gen")


def let_go_when_finished(worker):
    """Once ``worker`` has finished, disconnect its result signals and drop its work; returns it."""
    worker.finished.connect(lambda: _let_go(worker))
    if not _exit_wait["registered"]:
        _exit_wait["registered"] = True
        atexit.register(_wait_for_workers_at_exit)
    return worker


def _wait_for_workers_at_exit() -> None:
    """Ask running workers to quit and wait for them (as napari does when its app quits)."""
    try:
        from superqt.utils import WorkerBase

        WorkerBase.await_workers(EXIT_WAIT_MS)
    except Exception:  # noqa: BLE001 - at exit: a worker that would not end is left to the OS
        pass


def _disconnect(worker, names: tuple[str, ...]) -> None:
    for name in names:
        signal = getattr(worker, name, None)
        if signal is not None:
            try:
                signal.disconnect()
            except (TypeError, RuntimeError):  # nothing connected, or the Qt object is gone
                pass


def _let_go(worker) -> None:
    _disconnect(worker, ("returned", "yielded", "errored"))
    # napari's own slots (task status, progress bar) hold the worker's function, whose closure holds
    # the data: disconnected on the next loop turn, once every slot of "finished" has run
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, lambda: _disconnect(worker, ("started", "finished", "aborted", "warned", "paused",
                                                      "resumed")))
    for attr in _WORK_ATTRIBUTES:
        if hasattr(worker, attr):
            setattr(worker, attr, None)
