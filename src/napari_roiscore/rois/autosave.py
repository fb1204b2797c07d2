"""Never lose annotations: an autosave sidecar next to the data.

Every ROI edit can be written to ``<data>.roiscore-autosave.geojson`` next to
the data file (or folder, e.g. a Space Ranger ``outs/``).  The sidecar is a
QuPath-compatible GeoJSON FeatureCollection (see :mod:`napari_roiscore.rois.geojson`)
with one extra top-level member, ``"roiscore_autosave"``, holding when it was
saved, which data it belongs to, and the user's list of ROI classes (including
classes no ROI uses yet).

Writes are atomic (temporary file in the same folder, then rename): a crash
or an error during a write leaves the previous sidecar untouched.  When to
save (debouncing after edits) is up to the caller; these helpers do no timing.

Deleting ROIs never loses them either: the sidecar keeps a *bin* of the ROIs
that were removed since (top-level member ``"roiscore_deleted"``, features
like the ROIs themselves, at most :data:`MAX_DELETED`, most recent last);
:func:`update_bin` works out what goes in it.  napari has no undo for shapes,
so this is how an accidental "delete all" is taken back.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from napari_roiscore._atomic import atomic_write
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.autosave_guard import (
    AutosaveWarning,
    claim,
    keep_aside,
    remember,
    slide_digest,
    written_here,
)
from napari_roiscore.rois.roi import DEFAULT_CLASSES, Roi
from napari_roiscore.rois.geojson import parse_geojson, rois_to_geojson

__all__ = [
    "SUFFIX",
    "AutosaveState",
    "AutosaveWarning",
    "keep_aside",
    "discard_autosave",
    "load_autosave",
    "read_sidecar",
    "save_autosave",
    "sidecar_path",
    "update_bin",
]

SUFFIX = ".roiscore-autosave.geojson"
FORMAT_VERSION = 1
KEY = "roiscore_autosave"
DELETED_KEY = "roiscore_deleted"
#: the bin keeps at most this many deleted ROIs (the most recent ones)
MAX_DELETED = 500


#: environment variable: put every autosave in this folder instead of next to the data
ENV_DIR = "NAPARI_ROISCORE_AUTOSAVE_DIR"


def _state_dir() -> Path:
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir("napari-roiscore")) / "autosave"


def sidecar_path(data_path: str | Path) -> Path:
    """Where the autosave of ``data_path`` lives.

    Next to the data file or folder (``<data>.roiscore-autosave.geojson``) when
    that folder is writable.  In the user's state folder instead (name plus a
    hash of the full path) when ``$NAPARI_ROISCORE_AUTOSAVE_DIR`` is set, when
    the data's folder is read-only, or for the sample shipped with the plugin —
    so the plugin's own files are never written to.
    """
    p = Path(data_path)
    if not p.name:
        raise RoiScoreError(f"{str(data_path)!r} has no file name to put an autosave next to.",
                            "Open a data file or folder first.")
    resolved = p.resolve()
    shipped = Path(__file__).resolve().parent.parent / "sample_images"
    in_package = shipped.resolve() in resolved.parents
    if os.environ.get(ENV_DIR) or in_package or _read_only(resolved.parent):
        return _state_dir() / f"{p.name}.{slide_digest(resolved)}{SUFFIX}"
    return p.with_name(p.name + SUFFIX)


def _read_only(folder: Path) -> bool:
    """Not writable, or marked read-only (no write bit: root could write, but must not)."""
    try:
        return not os.access(folder, os.W_OK) or not (folder.stat().st_mode & 0o222)
    except OSError:
        return True


def _data_fingerprint(data_path: Path) -> dict:
    try:
        st = data_path.stat()
    except OSError:
        return {"name": data_path.name}
    out = {"name": data_path.name, "mtime": st.st_mtime}
    if data_path.is_file():
        out["size"] = st.st_size
    return out


@dataclass(frozen=True)
class AutosaveState:
    """What an autosave sidecar holds.

    Attributes
    ----------
    path : Path
        The sidecar.
    rois : list of Roi
    classes : list of str
        ROI classes the user had defined (built-in ones first).
    saved_at : datetime
        When it was written (UTC).
    data : dict
        Name (and size/mtime) of the data it was saved for.
    data_changed : bool
        The data file's size or modification time differs from when saved.
    extra : dict
        Anything else the caller stored (e.g. signature, thresholds).
    deleted : list of Roi
        The bin: ROIs deleted since they were autosaved, most recent last.
    """

    path: Path
    rois: list[Roi]
    classes: list[str]
    saved_at: datetime
    data: dict = field(default_factory=dict)
    data_changed: bool = False
    extra: dict = field(default_factory=dict)
    deleted: list[Roi] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """E.g. "3 ROIs (tumour, stroma) saved 2025-01-31 14:02 UTC"."""
        used = list(dict.fromkeys(r.roi_class for r in self.rois))
        n = len(self.rois)
        text = (f"{n} ROI{'s' if n != 1 else ''} ({', '.join(used) or 'none'}) saved "
                f"{self.saved_at:%Y-%m-%d %H:%M} UTC")
        if self.data_changed:
            text += "; the data file has changed since"
        return text


def update_bin(previous: list[Roi], current: list[Roi], deleted: list[Roi],
               max_deleted: int = MAX_DELETED) -> list[Roi]:
    """The bin after the ROIs went from ``previous`` to ``current``.

    A previous ROI goes into the bin when its name is gone and its outline is
    not on screen under another name (a rename is not a deletion; a moved or
    reshaped ROI keeps its name).  An ROI leaves the bin when its outline is
    back (restored).  Duplicates are dropped; the most recent
    ``max_deleted`` are kept, oldest first.
    """
    names = {r.name for r in current}
    candidates = [r for r in previous if r.name not in names]
    if not candidates and not deleted:  # the usual edit (a drag): no outline needs comparing
        return []
    outlines = {r.geometry.wkb for r in current}
    gone = [r for r in candidates if r.geometry.wkb not in outlines]
    out: dict[tuple[str, bytes], Roi] = {}
    for r in list(deleted) + gone:
        if r.geometry.wkb in outlines:
            continue
        out.pop(r.key, None)  # deleted again: now the most recent
        out[r.key] = r
    return list(out.values())[-max_deleted:] if max_deleted > 0 else []


def save_autosave(
    rois: list[Roi],
    data_path: str | Path,
    classes: list[str] | None = None,
    extra: dict | None = None,
    now: datetime | None = None,
    deleted: list[Roi] | None = None,
) -> Path:
    """Atomically write ``rois`` to the sidecar of ``data_path``.

    Parameters
    ----------
    rois : list of Roi
    data_path : path of the data (spot file or folder) the ROIs belong to
    classes : list of str, optional
        User-defined classes to remember (default: built-in + those in use).
    extra : dict, optional
        JSON-serialisable metadata to keep (signature name, thresholds, ...).
    now : datetime, optional
        Time stamp (default: current UTC time).
    deleted : list of Roi, optional
        The bin of deleted ROIs to keep (see :func:`update_bin`).

    Returns
    -------
    Path
        The sidecar path.

    Raises
    ------
    TypeError, ValueError
        ``extra`` is not JSON-serialisable; the previous sidecar is kept.
    """
    data_path = Path(data_path)
    path = sidecar_path(data_path)
    if classes is None:
        classes = list(DEFAULT_CLASSES)
    classes = list(dict.fromkeys(list(classes) + [r.roi_class for r in rois]))
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    doc = rois_to_geojson(rois)
    doc[KEY] = {
        "version": FORMAT_VERSION,
        "saved_at": stamp.isoformat(),
        "data": _data_fingerprint(data_path),
        "classes": classes,
        "n_rois": len(doc["features"]),
        "extra": extra or {},
    }
    doc[DELETED_KEY] = rois_to_geojson(list(deleted or []))["features"]

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False)

    path = claim(path, data_path, SUFFIX)
    _guard_existing(path, data_path)
    atomic_write(path, write, [data_path])
    remember(path)
    return path


def _guard_existing(path: Path, data_path: Path) -> None:
    """Set aside the sidecar about to be replaced when it is not ours to replace.

    Unreadable or ill-typed (e.g. edited by hand, or a damaged disk), or
    changed by another program since this process wrote it: it is renamed
    aside (never overwritten) with an :class:`AutosaveWarning`.
    """
    if not path.exists():
        return
    seen = written_here(path)
    if seen:
        return
    if seen is False:
        aside = keep_aside(path, "changed-elsewhere")
        warnings.warn(AutosaveWarning(f"Autosave {str(path)!r} was changed by another program since this napari "
                                      f"wrote it; that version was kept as {str(aside)!r}."), stacklevel=3)
        return
    try:
        _read_sidecar(path, data_path)
    except RoiScoreError as err:
        aside = keep_aside(path, "unreadable")
        warnings.warn(AutosaveWarning(f"{err.problem} It was kept as {str(aside)!r} and a new autosave started."),
                      stacklevel=3)


def load_autosave(data_path: str | Path) -> AutosaveState | None:
    """The autosave of ``data_path``, or ``None`` when there is none.

    Raises
    ------
    RoiScoreError
        The sidecar exists but cannot be read or holds ill-typed members: it is
        first renamed aside (``<sidecar>.unreadable-<UTC time>``, never
        overwritten nor deleted) and the message names both files.
    """
    data_path = Path(data_path)
    path = sidecar_path(data_path)
    if not path.is_file():
        return None
    try:
        state = _read_sidecar(path, data_path)
    except RoiScoreError as err:
        aside = keep_aside(path, "unreadable")
        raise RoiScoreError(f"{err.problem} It was kept as {str(aside)!r}; the next autosave starts afresh.",
                            f"Move or delete {aside.name} when you no longer need it (it is not your data).") from None
    remember(path)
    return state


def read_sidecar(path: str | Path, data_path: str | Path) -> AutosaveState:
    """Parse and type-check any autosave sidecar of ``data_path`` (its own, or another process's).

    Raises
    ------
    RoiScoreError
        Unreadable, not JSON, or ill-typed members; the message names the file.
        The file is left as it is.
    """
    return _read_sidecar(Path(path), Path(data_path))


def _read_sidecar(path: Path, data_path: Path) -> AutosaveState:
    """Parse and type-check a sidecar; any problem is a RoiScoreError naming it."""
    fix = f"Move or delete {path.name} to start without it (it is not your data)."
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise RoiScoreError(f"Autosave {str(path)!r} is unreadable ({type(err).__name__}: {_short(err)}).",
                            fix) from None
    try:
        _check_types(doc, path)
        rois = parse_geojson(doc, str(path))
        meta = doc.get(KEY) or {}
        saved_at = _saved_at(meta.get("saved_at"), path)
        classes = list(dict.fromkeys(list(meta.get("classes") or []) + [r.roi_class for r in rois]))
        classes = classes or list(DEFAULT_CLASSES)
        data = meta.get("data") or {}
        now_fp = _data_fingerprint(data_path)
        changed = any(k in data and k in now_fp and data[k] != now_fp[k] for k in ("size", "mtime"))
        extra = meta.get("extra") or {}
        binned = doc.get(DELETED_KEY)
        try:  # a damaged bin must not cost the ROIs themselves
            deleted = parse_geojson(binned, f"{path} (deleted ROIs)") if binned else []
        except RoiScoreError:
            deleted = []
    except RoiScoreError:
        raise
    except Exception as err:  # noqa: BLE001 - anything else a damaged sidecar can cause
        raise RoiScoreError(f"Autosave {str(path)!r} is damaged ({type(err).__name__}: {_short(err)}).",
                            fix) from None
    return AutosaveState(path, rois, classes, saved_at, data, changed, extra, deleted)


#: the members of ``"roiscore_autosave"`` and the types they must have
_META_TYPES = {"saved_at": str, "classes": list, "data": dict, "extra": dict, "n_rois": int, "version": int}


def _check_types(doc: object, path: Path) -> None:
    """Refuse a sidecar whose members have the wrong JSON types (RoiScoreError)."""
    fix = f"Move or delete {path.name} to start without it (it is not your data)."

    def bad(what: str, value: object, want: str) -> RoiScoreError:
        return RoiScoreError(f"Autosave {str(path)!r}: {what} is {type(value).__name__} "
                             f"{_short(value)}, not {want}.", fix)

    if not isinstance(doc, dict):
        raise bad("the document", doc, "a GeoJSON object")
    meta = doc.get(KEY, {})
    if not isinstance(meta, dict):
        raise bad(f"{KEY!r}", meta, "an object")
    for key, want in _META_TYPES.items():
        if key in meta and not isinstance(meta[key], want):
            raise bad(f"{KEY}.{key}", meta[key], f"a JSON {want.__name__}")
    if any(not isinstance(c, str) for c in meta.get("classes", [])):
        raise RoiScoreError(f"Autosave {str(path)!r}: {KEY}.classes holds something other than text.", fix)
    if DELETED_KEY in doc and not isinstance(doc[DELETED_KEY], list):
        raise bad(f"{DELETED_KEY!r}", doc[DELETED_KEY], "a list")


def _saved_at(value: object, path: Path) -> datetime:
    try:
        saved_at = datetime.fromisoformat(str(value))
    except ValueError:
        saved_at = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    if saved_at.tzinfo is None:
        saved_at = saved_at.replace(tzinfo=timezone.utc)
    return saved_at


def _short(value: object, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def discard_autosave(data_path: str | Path) -> bool:
    """Delete the sidecar of ``data_path``; True if there was one."""
    path = sidecar_path(data_path)
    if path.is_file():
        path.unlink()
        return True
    return False
