"""Atomic file writes: a temporary file in the same folder, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "commit_temp", "prepare_temp"]


def prepare_temp(path: Path) -> Path:
    """An empty temporary file beside ``path`` (its folder created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit_temp(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk, give it ``path``'s permissions and rename it to ``path``."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, _mode_for(path))
    os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[Path], None],
                 inputs: Iterable[str | Path | None] = ()) -> Path:
    """Call ``write(tmp_path)`` then atomically replace ``path`` with it.

    A crash mid-write leaves the old file intact (and no partial new file).
    The new file gets the permissions an ordinary ``open(path, "w")`` would
    give it (those of the file it replaces, else 0o666 minus the umask), not the
    owner-only 0o600 of a temporary file: exports on a shared workstation stay
    readable by colleagues.

    ``path`` is checked first by :func:`napari_roiscore.outputs.check_outputs`:
    it may not resolve to one of ``inputs``, to a data file read in this
    process, or to a folder, pipe or device (RoiScoreError, nothing written).
    """
    from napari_roiscore.outputs import check_outputs

    path = Path(path)
    check_outputs([path], inputs)
    tmp_path = prepare_temp(path)
    try:
        write(tmp_path)
        commit_temp(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _mode_for(path: Path) -> int:
    """Permission bits for a new ``path``: the existing file's, else 0o666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | Path, text: str, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path`` (guarded as :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"), inputs)
