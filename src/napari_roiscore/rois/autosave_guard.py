"""Keep autosaves safe from each other: set aside, never overwrite; one writer per sidecar.

* :func:`keep_aside` renames a sidecar that must not be overwritten (unreadable,
  ill-typed, or changed by someone else since this process wrote it) to
  ``<sidecar>.<reason>-<UTC time>``: it is never deleted.
* :func:`claim` gives each process its sidecar.  The first napari to autosave
  the ROIs of a data file holds a lock (``<sidecar>.lock``: host and process
  id); a second napari on the same data writes to its own sidecar
  (``<data>.<slide hash>.<host>-<pid>.roiscore-autosave.geojson``, see
  :func:`process_sidecar`) with a warning, instead of silently replacing the
  first one's.  A lock whose process is gone is taken over; the autosave folder
  is created first when it does not exist yet, so the lock is always taken.
  When that second napari crashes, its sidecar is merged into the next restore
  offer (:mod:`napari_roiscore.rois.autosave_merge`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import socket
import threading
import warnings
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["AutosaveWarning", "claim", "is_alive", "keep_aside", "process_sidecar", "release_all", "remember",
           "slide_digest", "written_here"]


class AutosaveWarning(UserWarning):
    """An autosave was set aside or redirected; nothing was lost."""


_lock = threading.Lock()
_written: dict[str, tuple[int, str]] = {}  # sidecar -> (size, sha1) as this process left it
_claims: dict[str, Path] = {}  # main sidecar -> where this process writes
_locks: list[Path] = []  # lock files this process holds


def _key(path: Path) -> str:
    return os.path.realpath(path)


def keep_aside(path: Path, reason: str) -> Path:
    """Rename ``path`` to ``<path>.<reason>-<UTC time>`` (a free name) and return the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.{reason}-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.{reason}-{stamp}-{n}")
    os.replace(path, aside)
    with _lock:
        _written.pop(_key(path), None)
    return aside


def _digest(path: Path) -> tuple[int, str] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return len(data), hashlib.sha1(data).hexdigest()


def remember(path: Path) -> None:
    """Record ``path``'s content as this process last saw it (after writing or reading it)."""
    digest = _digest(path)
    if digest is not None:
        with _lock:
            _written[_key(path)] = digest


def written_here(path: Path) -> bool | None:
    """True: unchanged since this process wrote/read it; False: changed since; None: never seen."""
    with _lock:
        known = _written.get(_key(path))
    if known is None:
        return None
    try:
        if os.stat(path).st_size != known[0]:
            return False
    except OSError:
        return None
    return _digest(path) == known


def slide_digest(data_path: str | Path) -> str:
    """12 hex digits of the SHA-1 of the slide's full path: tells apart slides of the same file name."""
    return hashlib.sha1(str(Path(data_path).resolve()).encode("utf-8")).hexdigest()[:12]


def process_sidecar(sidecar: Path, data_path: str | Path, host: str, pid: int, suffix: str) -> Path:
    """The sidecar of one napari process (``<data>.<slide hash>.<host>-<pid><suffix>``) beside ``sidecar``.

    The slide hash keeps two slides with the same file name (e.g. two Space
    Ranger ``outs`` folders) apart in the shared autosave folder.
    """
    return sidecar.with_name(f"{Path(data_path).name}.{slide_digest(data_path)}.{host}-{pid}{suffix}")


def is_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a process of another user counts)."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negative numbers address process groups, not one process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _owner(lock: Path) -> dict | None:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
        return owner if isinstance(owner, dict) else None
    except (OSError, ValueError):
        return None


def claim(sidecar: Path, data_path: str | Path, suffix: str) -> Path:
    """Where this process writes the autosave whose usual place is ``sidecar``.

    ``sidecar`` itself when this process holds (or can take) its lock; else a
    sidecar of its own (:func:`process_sidecar`), with an
    :class:`AutosaveWarning` naming the other process.  The folder of
    ``sidecar`` is created when missing, so the lock is taken from the first
    autosave on.
    """
    data_name = Path(data_path).name
    key = _key(sidecar)
    with _lock:
        if key in _claims:
            return _claims[key]
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    lock = sidecar.with_name(sidecar.name + ".lock")
    target = sidecar
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)  # a first autosave into a new folder is locked too
    except OSError:
        pass  # the lock cannot be created either: written as before, below
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            same_host = owner is not None and owner.get("host") == me["host"]
            pid = owner.get("pid") if owner else None
            if owner is None or (same_host and isinstance(pid, int) and (pid == me["pid"] or not _alive(pid))):
                lock.unlink(missing_ok=True)  # a stale lock (its napari is gone), or an unreadable one
                continue
            target = process_sidecar(sidecar, data_path, me["host"], me["pid"], suffix)
            warnings.warn(AutosaveWarning(
                f"Another napari (process {pid} on {owner.get('host')}) is autosaving the ROIs of {data_name} "
                f"to {str(sidecar)!r}; this one autosaves to {str(target)!r} instead, so neither overwrites "
                "the other. Restore from either file."), stacklevel=3)
            break
        except OSError:
            break  # cannot create a lock (read-only state folder...): write as before
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            with _lock:
                _locks.append(lock)
            break
    with _lock:
        _claims[key] = target
    return target


def release_all() -> None:
    """Give up every lock this process holds (at exit)."""
    with _lock:
        locks, _locks[:] = list(_locks), []
        _claims.clear()
    for lock in locks:
        owner = _owner(lock)
        if owner is not None and owner.get("pid") == os.getpid():
            lock.unlink(missing_ok=True)


atexit.register(release_all)
