"""ROIs of crashed sessions: found, merged into the restore offer, their files set aside.

When a second napari opens data that another napari is autosaving, it writes
its own sidecar (``<data>.<slide hash>.<host>-<pid>.roiscore-autosave.geojson``,
see :func:`napari_roiscore.rois.autosave_guard.process_sidecar`).  If that
napari then crashes, its ROIs would sit in a file nobody opens.  When the
slide is opened again, :func:`recover_crashed_sessions`:

1. finds the per-process sidecars of this slide whose writer is gone — on this
   machine when its process id no longer runs, on another machine when the
   file has not changed for :data:`QUIET_OTHER_HOST` (24 h);
2. merges their ROIs into the restore offer: an ROI already there (same name
   and same outline, :func:`stable_key`) is not offered twice; one whose name
   is taken by another outline is renamed ``"<name> (recovered)"`` (then
   ``"(recovered 2)"``...); their ROI classes and deleted ROIs come along;
3. after the merge, renames each merged sidecar to
   ``<sidecar>.merged-<UTC time>`` — never deleted, so nothing is lost even if
   the restore is declined.

A sidecar that cannot be read or holds ill-typed members is renamed to
``<sidecar>.unreadable-<UTC time>`` with an :class:`AutosaveWarning` naming
the file and what to do; the other sidecars are merged all the same.

Sidecars of processes that still run are left alone (their napari is still
autosaving into them).  Sidecars of the old form ``<data>.<host>-<pid>…``
(no slide hash) are recovered only next to the data, where the file name
alone tells the slide.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import socket
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import shapely

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.autosave import SUFFIX, AutosaveState, read_sidecar, sidecar_path
from napari_roiscore.rois.autosave_guard import AutosaveWarning, is_alive, keep_aside, slide_digest
from napari_roiscore.rois.roi import DEFAULT_CLASSES, Roi

__all__ = [
    "QUIET_OTHER_HOST",
    "CrashedSidecar",
    "Recovery",
    "crashed_sidecars",
    "merge_recovered_rois",
    "recover_crashed_sessions",
    "settle_recovered",
    "stable_key",
]

#: a sidecar written on another machine counts as abandoned after this long without a change
QUIET_OTHER_HOST = timedelta(hours=24)

_HOST_PID = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)$")


@dataclass(frozen=True)
class CrashedSidecar:
    """The sidecar of a napari process that is gone.

    Attributes
    ----------
    path : Path
    host : str
        Machine the process ran on.
    pid : int
        Its process id.
    """

    path: Path
    host: str
    pid: int


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_crashed_sessions` did.

    Attributes
    ----------
    offer : AutosaveState or None
        The autosave to offer for restore (the slide's own, when there is one)
        with the crashed sessions' ROIs merged in; None when there is nothing.
    recovered : list of Roi
        The crashed sessions' ROIs added to the offer (under their new names).
    renamed : dict
        New name → old name of the recovered ROIs whose name was taken.
    merged : list of Path
        Where the merged sidecars were set aside (``….merged-<UTC time>``).
    unreadable : list of Path
        Where unreadable sidecars were set aside (``….unreadable-<UTC time>``).
    messages : list of str
        One line per unreadable sidecar: what happened and what to do.
    """

    offer: AutosaveState | None
    recovered: list[Roi] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    merged: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """E.g. "2 ROI(s) from 1 crashed session"; empty when nothing was recovered."""
        if not self.merged:
            return ""
        n = len(self.merged)
        return f"{len(self.recovered)} ROI(s) from {n} crashed session{'s' if n != 1 else ''}"


def stable_key(roi: Roi) -> tuple[str, bytes]:
    """Name and outline: the same ROI whatever vertex its outline starts at, or how precisely it was kept.

    napari keeps shapes in 32-bit floats, so an outline read from a file
    (3344.9) and the same outline taken back from the layer (3344.89990…) are
    compared at that precision; the outline is then normalised (vertex order).
    """
    as_float32 = shapely.transform(roi.geometry, lambda xy: xy.astype(np.float32).astype(np.float64))
    return roi.name, shapely.normalize(as_float32).wkb


def _who_wrote(path: Path, data_path: Path, next_to_data: bool) -> tuple[str, int] | None:
    """(host, pid) in the name of a per-process sidecar of ``data_path``, else None."""
    name = path.name
    prefix = f"{data_path.name}."
    if not (name.startswith(prefix) and name.endswith(SUFFIX)):
        return None
    middle = name[len(prefix):-len(SUFFIX)]
    digest = slide_digest(data_path)
    if middle.startswith(digest + "."):
        middle = middle[len(digest) + 1:]
    elif not next_to_data or re.match(r"^[0-9a-f]{12}\.", middle):
        return None  # old form in the shared folder (which slide?), or another slide's hash
    m = _HOST_PID.match(middle)
    return (m["host"], int(m["pid"])) if m else None


def crashed_sidecars(data_path: str | Path, now: datetime | None = None,
                     quiet: timedelta = QUIET_OTHER_HOST) -> list[CrashedSidecar]:
    """Per-process sidecars of ``data_path`` whose napari is gone, oldest first.

    Gone: on this machine, its process id no longer runs; on another machine
    (a shared drive), the file has not changed for ``quiet``.  This process's
    own sidecar and those of running processes are never listed.
    """
    data_path = Path(data_path)
    main = sidecar_path(data_path)
    folder = main.parent
    if not folder.is_dir():
        return []
    next_to_data = folder.resolve() == data_path.resolve().parent
    now = now or datetime.now(timezone.utc)
    me_host, me_pid = socket.gethostname(), os.getpid()
    out: list[tuple[float, CrashedSidecar]] = []
    try:
        candidates = sorted(folder.glob(f"{glob.escape(data_path.name)}.*{SUFFIX}"))
    except OSError:
        return []
    for path in candidates:
        if path == main or not path.is_file():
            continue
        who = _who_wrote(path, data_path, next_to_data)
        if who is None:
            continue
        host, pid = who
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if host == me_host:
            gone = pid != me_pid and not is_alive(pid)
        else:
            gone = now - datetime.fromtimestamp(mtime, timezone.utc) >= quiet
        if gone:
            out.append((mtime, CrashedSidecar(path, host, pid)))
    return [c for _, c in sorted(out, key=lambda t: (t[0], str(t[1].path)))]


def _free_name(name: str, taken: set[str]) -> str:
    new, n = f"{name} (recovered)", 1
    while new in taken:
        n += 1
        new = f"{name} (recovered {n})"
    return new


def merge_recovered_rois(existing: list[Roi], recovered: list[Roi]) -> tuple[list[Roi], dict[str, str]]:
    """The ROIs of ``recovered`` that ``existing`` lacks, renamed where their name is taken.

    Parameters
    ----------
    existing : list of Roi
        ROIs already on screen or already offered; never changed.
    recovered : list of Roi
        ROIs of crashed sessions, in the order to offer them.

    Returns
    -------
    (added, renamed)
        ``added``: recovered ROIs not already present (same name and same
        outline, :func:`stable_key`; duplicates among ``recovered`` are
        dropped too), an ROI whose name is used by another outline renamed
        ``"<name> (recovered)"``; ``renamed``: new name → old name.
    """
    seen = {stable_key(r) for r in existing}
    taken = {r.name for r in existing}
    added: list[Roi] = []
    renamed: dict[str, str] = {}
    for roi in recovered:
        key = stable_key(roi)
        if key in seen:
            continue
        seen.add(key)
        if roi.name in taken:
            new = _free_name(roi.name, taken)
            renamed[new] = roi.name
            roi = dataclasses.replace(roi, name=new)
            seen.add(stable_key(roi))
        taken.add(roi.name)
        added.append(roi)
    return added, renamed


def recover_crashed_sessions(data_path: str | Path, saved: AutosaveState | None,
                             on_screen: list[Roi] | tuple[Roi, ...] = (),
                             now: datetime | None = None) -> Recovery:
    """Merge the ROIs of crashed sessions of ``data_path`` into the restore offer.

    Parameters
    ----------
    data_path : str or Path
        The slide (spots file or folder) just opened.
    saved : AutosaveState or None
        Its own autosave (:func:`~napari_roiscore.rois.autosave.load_autosave`).
    on_screen : list of Roi
        ROIs already on the layer: a recovered copy of one is not offered, and
        a recovered ROI does not take its name.
    now : datetime, optional
        For the other-machine rule (default: the current UTC time).

    Returns
    -------
    Recovery
        ``offer`` is ``saved`` itself when no crashed session was found.  Each
        merged sidecar is renamed ``….merged-<UTC time>`` only after all were
        read; unreadable ones are renamed ``….unreadable-<UTC time>`` with an
        :class:`AutosaveWarning`.  Never raises for a damaged sidecar.
    """
    data_path = Path(data_path)
    states: list[tuple[Path, AutosaveState]] = []
    unreadable: list[Path] = []
    messages: list[str] = []
    for crashed in crashed_sidecars(data_path, now=now):
        try:
            states.append((crashed.path, read_sidecar(crashed.path, data_path)))
        except RoiScoreError as err:
            try:
                aside = keep_aside(crashed.path, "unreadable")
            except OSError as move_err:  # cannot even rename it: leave it where it is, untouched
                aside = crashed.path
                where = f"it stays where it is (it could not be renamed: {move_err})"
            else:
                where = f"it was kept as {str(aside)!r}"
            unreadable.append(aside)
            text = (f"The autosave of a crashed session (process {crashed.pid} on {crashed.host}) could not be "
                    f"merged: {err.problem} Nothing was taken from it; {where}. Open it in a text editor to "
                    "rescue its ROIs, or delete it when you no longer need it.")
            messages.append(text)
            warnings.warn(AutosaveWarning(text), stacklevel=2)
    if not states:
        return Recovery(offer=saved, unreadable=unreadable, messages=messages)
    base = list(saved.rois) if saved is not None else []
    added, renamed = merge_recovered_rois(list(on_screen) + base, [r for _, s in states for r in s.rois])
    kept = {stable_key(r) for r in base + added}
    deleted = list(saved.deleted) if saved is not None else []
    for _, s in states:
        for r in s.deleted:
            if stable_key(r) not in kept:
                kept.add(stable_key(r))
                deleted.append(r)
    classes = list(dict.fromkeys((list(saved.classes) if saved is not None else list(DEFAULT_CLASSES))
                                 + [c for _, s in states for c in s.classes]))
    merged: list[Path] = []
    for path, _ in states:
        try:
            merged.append(keep_aside(path, "merged"))
        except OSError:  # still in place: found (and offered) again next time; nothing lost
            merged.append(path)
    newest = max(s.saved_at for _, s in states)
    if saved is not None:
        offer = dataclasses.replace(saved, rois=base + added, classes=classes, deleted=deleted,
                                    saved_at=max(saved.saved_at, newest))
    else:
        first = states[0][1]
        offer = dataclasses.replace(first, path=sidecar_path(data_path), rois=added, classes=classes,
                                    deleted=deleted, saved_at=newest)
    return Recovery(offer=offer, recovered=added, renamed=renamed, merged=merged,
                    unreadable=unreadable, messages=messages)


def settle_recovered(offered: list[Roi], recovery: Recovery,
                     on_screen: list[Roi]) -> tuple[list[Roi], Recovery]:
    """The offer again after ROIs arrived on screen (e.g. a GeoJSON opened after the spots).

    Recovered ROIs that are now on screen (same name and outline) leave the
    offer; those whose original name is now taken on screen are renamed
    ``"<name> (recovered)"``.  The slide's own autosaved ROIs are kept as
    they are (restoring them replaces the on-screen version, as before).

    Returns
    -------
    (offered, recovery)
        The new offer and ``recovery`` with its ``recovered`` and ``renamed`` updated.
    """
    recovered_keys = {stable_key(r) for r in recovery.recovered}
    own = [r for r in offered if stable_key(r) not in recovered_keys]
    offered_keys = {stable_key(r) for r in offered}
    originals = [dataclasses.replace(r, name=recovery.renamed.get(r.name, r.name))
                 for r in recovery.recovered if stable_key(r) in offered_keys]
    added, renamed = merge_recovered_rois(list(on_screen) + own, originals)
    return own + added, dataclasses.replace(recovery, recovered=added, renamed=renamed)
