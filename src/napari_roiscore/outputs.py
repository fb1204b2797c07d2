"""The output guard: no writer may replace an input, a device or a folder.

Every file the plugin writes goes through :func:`napari_roiscore._atomic.atomic_write`,
which calls :func:`check_outputs` first.  An output is refused, before anything
is written, when it resolves (through symlinks) to

* one of the inputs of the command (passed explicitly), or to a data file a
  reader opened in this process (:func:`protect_input`: spots, images,
  signatures, manifests — never replaced by an export);
* an existing file that is not a regular file (a folder, FIFO, socket or
  device: writing to it would hang, or replace a folder);
* another output of the same command.

Commands writing several files use :func:`write_all`: every output goes to a
temporary file first and all are renamed at the end; if any write fails, the
temporaries are removed and no output is replaced.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from napari_roiscore.errors import RoiScoreError

__all__ = ["check_outputs", "clear_protected", "is_protected", "limited_list", "protect_input",
           "protected_inputs", "require_regular_file", "write_all"]

_lock = threading.Lock()
_protected: set[str] = set()
#: at most this many files of an input folder are protected individually
_MAX_FOLDER_FILES = 2000


def _real(path: str | Path) -> str:
    return os.path.realpath(os.fspath(path))


def limited_list(items: Iterable[object], first: int = 5, quote: bool = True) -> str:
    """``"'a', 'b', 'c' and 7 more"``: a list cut for a message."""
    items = list(items)
    shown = [repr(str(x)) if quote else str(x) for x in items[:first]]
    text = ", ".join(shown)
    if len(items) > first:
        text += f" and {len(items) - first} more"
    return text


def protect_input(path: str | Path | None) -> None:
    """Remember that ``path`` was read as data: no output may replace it.

    A folder protects the folder and the files in it (up to 2,000: an
    instrument output folder's count matrix, positions, images).
    """
    if path is None:
        return
    p = Path(path)
    with _lock:
        _protected.add(_real(p))
        if p.is_dir():
            n = 0
            for root, _dirs, files in os.walk(p):
                for f in files:
                    _protected.add(_real(Path(root) / f))
                    n += 1
                    if n >= _MAX_FOLDER_FILES:
                        return


def protected_inputs() -> frozenset[str]:
    """The resolved paths protected so far in this process."""
    with _lock:
        return frozenset(_protected)


def is_protected(path: str | Path) -> bool:
    """True when ``path`` resolves to a protected input."""
    with _lock:
        return _real(path) in _protected


def clear_protected() -> None:
    """Forget every protected input (tests; a new, unrelated project)."""
    with _lock:
        _protected.clear()


def _input_reals(inputs: Iterable[str | Path | None]) -> dict[str, str]:
    """Resolved path -> given path, for the inputs and every file in input folders."""
    out: dict[str, str] = {}
    for inp in inputs:
        if inp is None:
            continue
        p = Path(inp)
        out.setdefault(_real(p), str(p))
        if p.is_dir():
            n = 0
            for root, _dirs, files in os.walk(p):
                for f in files:
                    fp = Path(root) / f
                    out.setdefault(_real(fp), str(fp))
                    n += 1
                    if n >= _MAX_FOLDER_FILES:
                        break
                if n >= _MAX_FOLDER_FILES:
                    break
    return out


def check_outputs(outputs: Sequence[str | Path | None], inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse outputs that would replace an input, a non-regular file, or each other.

    Parameters
    ----------
    outputs : paths to be written (``None`` entries are skipped, e.g. stdout)
    inputs : paths read by the command (files or folders)

    Raises
    ------
    RoiScoreError
        Naming the output and the input (or the kind of file) it would replace.
    """
    given = _input_reals(inputs)
    seen: dict[str, str] = {}
    protected = protected_inputs()
    for out in outputs:
        if out is None:
            continue
        real = _real(out)
        if real in given:
            raise RoiScoreError(
                f"Output {str(out)!r} is the input {given[real]!r}: writing it would destroy that input.",
                "Choose another output file name.")
        if real in protected:
            raise RoiScoreError(
                f"Output {str(out)!r} is a data file read in this session ({real!r}): "
                "writing it would destroy that input.", "Choose another output file name.")
        if real in seen:
            raise RoiScoreError(f"Outputs {seen[real]!r} and {str(out)!r} are the same file.",
                                "Give each output its own file name.")
        seen[real] = str(out)
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue  # does not exist yet: fine
        if not stat.S_ISREG(mode):
            raise RoiScoreError(f"Output {str(out)!r} exists and is {_kind(mode)}, not a regular file.",
                                "Give a file name (not a folder, pipe or device).")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def require_regular_file(path: str | Path, what: str = "Input") -> Path:
    """``path`` if it is a regular file (through symlinks); refuse FIFOs, devices, sockets.

    Reading a FIFO or a character device blocks forever or never ends; a
    folder where a file is expected gives a library traceback.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise RoiScoreError(f"{what} {str(p)!r} does not exist.", "Check the path.") from None
    except OSError as err:
        raise RoiScoreError(f"{what} {str(p)!r} cannot be read ({err.strerror}).",
                            "Check the path and its permissions.") from None
    if not stat.S_ISREG(mode):
        raise RoiScoreError(f"{what} {str(p)!r} is {_kind(mode)}, not a regular file.",
                            "Give the data file itself.")
    return p


def write_all(writers: Sequence[tuple[str | Path, Callable[[Path], None]]],
              inputs: Iterable[str | Path | None] = ()) -> list[Path]:
    """Write several outputs all or nothing.

    Parameters
    ----------
    writers : ``(path, write)`` pairs; ``write(tmp_path)`` writes one output
    inputs : paths the command read; no output may replace one

    Every output is checked first (:func:`check_outputs`), then written to a
    temporary file beside it; only when every write succeeded are they renamed
    into place.  On failure the temporaries are removed and the old outputs
    (if any) are untouched.
    """
    from napari_roiscore._atomic import prepare_temp, commit_temp

    paths = [Path(p) for p, _ in writers]
    check_outputs(paths, inputs)
    temps: list[tuple[Path, Path]] = []
    try:
        for path, (_, write) in zip(paths, writers):
            tmp = prepare_temp(path)
            temps.append((tmp, path))
            write(tmp)
        for tmp, path in temps:
            commit_temp(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    return paths
