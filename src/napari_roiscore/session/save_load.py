"""Saving a session file and opening one again (with its checksums verified)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import require_regular_file
from napari_roiscore.rois.geojson import parse_geojson, read_geojson
from napari_roiscore.rois.roi import Roi, merge_same_named
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.session.checksums import sha256_path
from napari_roiscore.session.contents import (
    FORMAT,
    FORMAT_VERSION,
    DataFile,
    Session,
    jsonable,
    table_from_records,
)

__all__ = ["check_session", "load_session", "make_session", "save_session"]


def _rois_arg(rois: list[Roi] | str | Path) -> tuple[list[Roi], DataFile | None]:
    if isinstance(rois, (str, Path)):
        return read_geojson(rois), DataFile.from_path("rois", rois)
    return list(rois), None


def _path_of(obj: Any, role: str) -> Path:
    if isinstance(obj, (str, Path)):
        return Path(obj)
    path = getattr(obj, "provenance", {}).get("path") if hasattr(obj, "provenance") else None
    if not path:
        raise RoiScoreError(
            f"The {role} were not read from a file, so a session cannot point to them.",
            f"Open the {role} from a file before saving the session.",
        )
    return Path(path)


def make_session(
    *,
    spots: Any,
    rois: list[Roi] | str | Path,
    signature: Signature,
    method: str = "mean_z",
    params: dict | None = None,
    thresholds: dict | None = None,
    marker: dict | None = None,
    image: Any = None,
    rois_file: str | Path | None = None,
    results: pd.DataFrame | None = None,
    extra: dict | None = None,
    spots_options: dict | None = None,
) -> Session:
    """Build a :class:`Session`, computing the checksums of the data files.

    Parameters
    ----------
    spots : path or SpotTable
        The spot file (a SpotTable must carry ``provenance["path"]``).
    rois : list of Roi, or path to a GeoJSON file
    signature : Signature
    method : str
    params : dict, optional
        Method parameters.
    thresholds : dict, optional
    marker : dict, optional
        Marker restriction (``channel``, ``threshold``, ``min_fraction``,
        optional ``level``), e.g. the settings returned by
        :func:`marker_restriction`; needs ``image``.
    image : path or MultiplexImage, optional
    rois_file : path, optional
        The GeoJSON the ROIs were loaded from (recorded with its checksum).
    results : DataFrame, optional
        The ROI table to store for later comparison.
    extra : dict, optional
        GUI state (JSON-serialisable).
    spots_options : dict, optional
        Reader options, e.g. ``{"counts_layer": "counts"}``.
    """
    if marker:
        _check_marker(marker, "marker")
        if image is None:
            raise RoiScoreError("A marker restriction needs the image it was computed on.",
                                "Give the image together with the marker settings.")
    roi_list, roi_ref = _rois_arg(rois)
    if rois_file is not None:
        roi_ref = DataFile.from_path("rois", rois_file)
    opts = dict(spots_options or {})
    if not isinstance(spots, (str, Path)):
        layer = getattr(spots, "provenance", {}).get("counts_layer")
        if layer:
            opts.setdefault("counts_layer", layer)
    return Session(
        spots=DataFile.from_path("spots", _path_of(spots, "spots"), opts),
        rois=roi_list,
        signature=signature,
        method=method,
        params=jsonable(dict(params or {}), "params"),
        thresholds=jsonable(dict(thresholds or {}), "thresholds"),
        marker=jsonable(dict(marker), "marker") if marker else None,
        image=DataFile.from_path("image", _path_of(image, "image"),
                                 getattr(image, "provenance", {}).get("reader_options")) if image is not None else None,
        rois_file=roi_ref,
        results=None if results is None else results.copy(),
        extra=jsonable(dict(extra or {}), "extra"),
    )


def _check_marker(marker: Any, source: str) -> None:
    if not isinstance(marker, dict) or "channel" not in marker:
        raise RoiScoreError(f"{source}: the marker restriction needs a 'channel'.",
                            "Give channel, threshold and min_fraction.")
    for key in ("threshold", "min_fraction", "level"):
        val = marker.get(key)
        if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))):
            raise RoiScoreError(f"{source}: marker {key!r} is {val!r}, not a number.",
                                "Use numbers (min_fraction 0.1 = 10 % of the spot area).")


def save_session(path: str | Path, **fields: Any) -> Path:
    """Write a session file; see :func:`make_session` for the fields.

    Example
    -------
    >>> save_session("study.roiscore.json", spots="slide_spots.h5ad",
    ...              rois=rois, signature=sig, method="mean_z",
    ...              image="slide.ome.tif", results=table)     # doctest: +SKIP
    """
    return make_session(**fields).save(path)


def check_session(session: Session) -> list[str]:
    """Every data file that is missing or changed since the session was saved."""
    problems = []
    for f in session.data_files:
        if not f.path.exists():
            problems.append(f"{f.role} file {str(f.path)!r} is missing")
            continue
        now = sha256_path(f.path)
        if now != f.sha256:
            problems.append(
                f"{f.role} file {str(f.path)!r} has changed since the session was saved "
                f"(sha256 {now[:12]}…, session has {f.sha256[:12]}…)"
            )
    return problems


def load_session(path: str | Path, verify: bool = True) -> Session:
    """Read a session file.

    Parameters
    ----------
    path : path
    verify : bool
        Check the data files' checksums (default).  Turn off only to inspect
        a session whose data are gone.

    Raises
    ------
    RoiScoreError
        Unreadable or malformed file; with ``verify``, any data file missing
        or changed (all of them are named).
    """
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise RoiScoreError(f"Session file {src!r} does not exist.", "Check the path.")
    require_regular_file(path, "Session file")  # a FIFO or device would block forever
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise RoiScoreError(
            f"Session file {src!r} is not valid JSON ({type(err).__name__}: {err}).",
            "Open a session saved by napari-roiscore.",
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RoiScoreError(
            f"{src} is not a napari-roiscore session (no \"format\": \"{FORMAT}\").",
            "Open a session saved by napari-roiscore.",
        )
    fv = data.get("format_version")
    if not isinstance(fv, int) or fv > FORMAT_VERSION:
        raise RoiScoreError(
            f"{src}: session format version {fv!r} is newer than this napari-roiscore "
            f"understands ({FORMAT_VERSION}).",
            "Update napari-roiscore.",
        )
    base = path.resolve().parent
    files = data.get("data")
    if not isinstance(files, dict) or "spots" not in files:
        raise RoiScoreError(f"{src}: no 'data.spots' entry.", "Save the session again.")
    refs = {role: DataFile.from_dict(role, d, base, src) for role, d in files.items()
            if role in ("spots", "image", "rois")}
    for key in ("rois", "signature", "method"):
        if key not in data:
            raise RoiScoreError(f"{src}: field {key!r} is missing.", "Save the session again.")
    method = data["method"]
    if not isinstance(method, str):
        raise RoiScoreError(f"{src}: 'method' must be a string.", "Save the session again.")
    for key in ("params", "thresholds", "extra", "versions"):
        if not isinstance(data.get(key, {}), dict):
            raise RoiScoreError(f"{src}: {key!r} must be a mapping.", "Save the session again.")
    results = data.get("results")
    marker = data.get("marker") or None
    if marker is not None:
        _check_marker(marker, src)
        if "image" not in refs:
            raise RoiScoreError(f"{src}: a marker restriction without an image.", "Save the session again.")
    session = Session(
        spots=refs["spots"],
        rois=merge_same_named(parse_geojson(data["rois"], f"{src} (rois)")),
        signature=Signature.from_dict(data["signature"], source=f"{src} (signature)"),
        method=method,
        params=dict(data.get("params") or {}),
        thresholds=dict(data.get("thresholds") or {}),
        marker=marker,
        image=refs.get("image"),
        rois_file=refs.get("rois"),
        results=table_from_records(results) if isinstance(results, list) else None,
        versions=dict(data.get("versions") or {}),
        created=str(data.get("created", "")),
        extra=dict(data.get("extra") or {}),
        source=path,
    )
    if verify:
        problems = check_session(session)
        if problems:
            raise RoiScoreError(
                f"Session {src}: " + "; ".join(problems) + ".",
                "Point the session at the original data, or save a new session "
                "for the new data (scores would differ).",
            )
    return session
