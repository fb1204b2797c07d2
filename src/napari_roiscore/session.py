"""Session files: everything needed to reproduce a set of ROI scores.

A session is a JSON file that records

* the **data files** (spots, optional image, optional ROI file) with their
  paths and SHA-256 checksums, so that opening a session on changed data
  fails loudly instead of giving different numbers;
* the **ROIs** themselves, as QuPath-style GeoJSON features with their names
  and classes (the ROIs as drawn, which may differ from any ROI file);
* the **signature**, the scoring **method** and its **parameters**, plus any
  **thresholds** the user set;
* the **software versions** that produced it, and (optionally) the resulting
  ROI table, so that a reopened session can be checked number by number.

The widget saves and opens sessions; ``roiscore score --session FILE`` scores
one headless.  Both go through :func:`score_session`, which uses the same
:class:`~napari_roiscore.scoring.scorer.RoiScorer` as everything else, so the numbers
are identical.

Functions
---------
:func:`save_session`   write a session from paths, ROIs and a signature;
:func:`load_session`   read one back and verify the checksums;
:func:`score_session`  recompute its ROI table.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi, merge_same_named
from napari_roiscore.rois.classes import normalise_class
from napari_roiscore.rois.geojson import parse_geojson, read_geojson, rois_to_geojson
from napari_roiscore.scoring.signature import Signature

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "DataFile",
    "Session",
    "check_session",
    "load_session",
    "make_session",
    "marker_restriction",
    "read_session_spots",
    "read_spots",
    "save_session",
    "same_numbers",
    "score_session",
    "session_scorer",
    "sha256_path",
    "software_versions",
    "table_from_records",
    "table_to_records",
]

FORMAT = "napari-roiscore session"
FORMAT_VERSION = 1

#: Packages whose versions are recorded in a session (those that shape the numbers).
VERSIONED_PACKAGES = ("napari-roiscore", "numpy", "scipy", "pandas", "anndata", "h5py",
                      "shapely", "tifffile", "scikit-image", "dask")

_CHUNK = 1 << 20


def sha256_path(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder (its files' relative paths and contents).

    Folders (e.g. a Space Ranger ``outs/``) are hashed over their files in
    sorted order, so the checksum changes when any file is added, removed,
    renamed or edited.  Symlinked files and subfolders are followed (a link
    back to a folder above it is not, so link loops end).
    """
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(_folder_files(path)):
            h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
            h.update(sha256_path(f).encode("ascii"))
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _folder_files(folder: Path) -> list[Path]:
    """Every file under ``folder``, following symlinked subfolders except those
    that lead back to a folder being walked (a loop)."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = os.path.realpath(root)
        keep = []
        for d in dirs:
            real = os.path.realpath(os.path.join(root, d))
            if not (here == real or here.startswith(real.rstrip(os.sep) + os.sep)):
                keep.append(d)
        dirs[:] = keep
        out += [p for p in (Path(root) / f for f in files) if p.is_file()]
    return out


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the numbers."""
    from napari_roiscore.analysis.report import software_versions as report_versions

    out = dict(report_versions())
    for pkg in VERSIONED_PACKAGES:
        if pkg not in out:
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                continue
    return out


def read_spots(path: str | Path, **options: Any):
    """Spots from an ``.h5ad`` file, an ``.xlsx`` GeoMx DSP export or an instrument folder.

    Paths are recognised as by the napari reader (both use
    :func:`~napari_roiscore.readers.dispatch.spots_kind`): Space Ranger
    (Visium), Visium HD, Xenium, GeoMx NGS, GeoMx DSP export or SpatialData
    ``.zarr``.  ``options`` go to the reader (e.g. ``counts_layer`` for h5ad,
    ``bin_size_um`` for Visium HD).  Tissue images are not loaded.

    Raises
    ------
    RoiScoreError
        Missing path, unknown kind of folder or file, or a reader's error.
    """
    from napari_roiscore.readers.dispatch import read_spots_of_kind, spots_kind

    p = Path(path)
    if not p.exists():
        raise RoiScoreError(f"Spots {str(p)!r} do not exist.", "Check the path.")
    kind = spots_kind(p)
    if kind is None:
        raise RoiScoreError(
            f"Spots {str(p)!r}: not an .h5ad file, a GeoMx DSP export nor a Space Ranger, Visium HD, "
            "Xenium, GeoMx NGS or SpatialData (.zarr) folder.",
            "Give the .h5ad file, the export workbook or the instrument's output folder.",
        )
    return read_spots_of_kind(p, kind, load_images=False, **options)


def marker_restriction(image: Any, spots: Any, channel: int | str, threshold: float | None = None,
                       min_fraction: float = 0.1, level: int | None = None) -> tuple[np.ndarray, dict]:
    """Spots whose footprint is at least ``min_fraction`` marker-positive.

    The same steps as the widget's *Markers* tab: threshold one channel
    (Otsu when ``threshold`` is None) at the pyramid level chosen for the
    spot size, measure the positive fraction of each spot's footprint, keep
    spots at or above ``min_fraction``.

    Parameters
    ----------
    image : MultiplexImage or path
    spots : SpotTable
    channel : int or str
        Index, name (e.g. "CD68") or role of the channel.
    threshold : float, optional
    min_fraction : float
        0.1 = 10 % of the spot area (the widget's default).
    level : int, optional
        Pyramid level (default: chosen from the spot size).

    Returns
    -------
    spot_mask : ndarray of bool, shape (n_spots,)
    settings : dict
        ``channel`` (name), ``threshold`` (resolved number), ``threshold_method``,
        ``level``, ``min_fraction`` and ``label`` (as the widget writes it).
    """
    from napari_roiscore.images.markers import footprint_fractions, marker_mask, restrict_spots
    from napari_roiscore.readers.dispatch import read_image

    img = read_image(image) if isinstance(image, (str, Path)) else image
    mask = marker_mask(img, channel, threshold=threshold, level=level, spot_diameter_px=spots.diameter_px)
    frac = footprint_fractions(mask, spots.xy, spots.diameter_px, shape=spots.shape)
    keep = restrict_spots(frac, min_fraction)
    settings = {
        "channel": mask.channel_name,
        "threshold": float(mask.threshold),
        "threshold_method": mask.method,
        "level": int(mask.level),
        "min_fraction": float(min_fraction),
        "label": f"{mask.label}, ≥ {float(min_fraction):.0%} of spot area",
    }
    return keep, settings


@dataclass(frozen=True)
class DataFile:
    """A data file of a session: where it is and what it must contain.

    Attributes
    ----------
    role : str
        ``"spots"``, ``"image"`` or ``"rois"``.
    path : Path
        Absolute path.
    sha256 : str
        Checksum when the session was saved.
    options : dict
        Reader options (e.g. ``{"counts_layer": "counts"}``).
    """

    role: str
    path: Path
    sha256: str
    options: dict = field(default_factory=dict)

    @classmethod
    def from_path(cls, role: str, path: str | Path, options: dict | None = None) -> DataFile:
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise RoiScoreError(f"{role} file {str(p)!r} does not exist.", "Check the path.")
        return cls(role, p, sha256_path(p), dict(options or {}))

    def to_dict(self, base: Path | None = None) -> dict:
        d = {"path": str(self.path), "sha256": self.sha256}
        if base is not None:
            d["relative_path"] = Path(os.path.relpath(self.path, base)).as_posix()
        if self.options:
            d["options"] = dict(self.options)
        return d

    @classmethod
    def from_dict(cls, role: str, data: dict, base: Path | None, source: str) -> DataFile:
        if not isinstance(data, dict) or "path" not in data or "sha256" not in data:
            raise RoiScoreError(
                f"{source}: data entry {role!r} needs 'path' and 'sha256'.",
                "Save the session again from napari-roiscore.",
            )
        path = Path(str(data["path"]))
        rel = data.get("relative_path")
        if not path.exists() and rel and base is not None and (base / rel).exists():
            path = (base / rel).resolve()  # the session and its data were moved together
        return cls(role, path, str(data["sha256"]), dict(data.get("options") or {}))


@dataclass
class Session:
    """What a session file holds (see module docstring).

    Attributes
    ----------
    spots : DataFile
    rois : list of Roi
        The ROIs as scored (names, classes, outlines).
    signature : Signature
    method : str
    params : dict
        Method parameters, passed to the scoring function.
    thresholds : dict
        Other user thresholds (stored and returned as given).
    marker : dict or None
        Marker restriction: ``channel``, ``threshold`` (a number: Otsu's value
        is stored once resolved), ``min_fraction`` and ``level``; scoring then
        counts only spots whose footprint is that marker-positive (needs
        ``image``).  See :func:`marker_restriction`.
    image : DataFile or None
    rois_file : DataFile or None
        The GeoJSON the ROIs came from, when they came from a file.
    results : DataFrame or None
        The ROI table when the session was saved.
    versions : dict
        Software versions that produced the session.
    created : str
        ISO timestamp.
    extra : dict
        Free-form data for the GUI (e.g. view state); not used for scoring.
    source : Path or None
        The file this session was loaded from.
    """

    spots: DataFile
    rois: list[Roi]
    signature: Signature
    method: str = "mean_z"
    params: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    marker: dict | None = None
    image: DataFile | None = None
    rois_file: DataFile | None = None
    results: pd.DataFrame | None = None
    versions: dict = field(default_factory=software_versions)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra: dict = field(default_factory=dict)
    source: Path | None = None

    @property
    def data_files(self) -> list[DataFile]:
        return [f for f in (self.spots, self.image, self.rois_file) if f is not None]

    def version_differences(self) -> list[str]:
        """Recorded versions that differ from the running software."""
        now = software_versions()
        return [
            f"{pkg}: session {was}, now {now.get(pkg, 'not installed')}"
            for pkg, was in sorted(self.versions.items())
            if now.get(pkg) != was
        ]

    def to_dict(self, base: Path | None = None) -> dict:
        data: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "versions": dict(self.versions),
            "data": {f.role: f.to_dict(base) for f in self.data_files},
            "rois": rois_to_geojson(self.rois),
            "signature": self.signature.to_dict(),
            "method": self.method,
            "params": _jsonable(self.params, "params"),
            "thresholds": _jsonable(self.thresholds, "thresholds"),
        }
        if self.marker:
            data["marker"] = _jsonable(self.marker, "marker")
        if self.results is not None:
            data["results"] = table_to_records(self.results)
        if self.extra:
            data["extra"] = _jsonable(self.extra, "extra")
        return data

    def save(self, path: str | Path) -> Path:
        """Write the session as JSON (atomically)."""
        path = Path(path)
        text = json.dumps(self.to_dict(base=path.resolve().parent), indent=1, allow_nan=False)
        try:
            return atomic_write_text(path, text + "\n")
        except OSError as err:
            raise RoiScoreError(f"Cannot write session {str(path)!r}: {err}.",
                                "Choose a folder you can write to.") from None


def _jsonable(value: Any, where: str) -> Any:
    """Check that ``value`` survives JSON unchanged (finite numbers, str keys)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise RoiScoreError(
            f"Session field {where!r} cannot be stored as JSON ({err}).",
            "Use plain numbers, strings, lists and mappings.",
        ) from None
    return json.loads(text)


def table_to_records(df: pd.DataFrame) -> list[dict]:
    """ROI table as JSON-safe records (NaN -> null; floats kept exactly)."""
    out = []
    for rec in df.to_dict(orient="records"):
        row = {}
        for k, v in rec.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            row[str(k)] = v
        out.append(row)
    return out


def table_from_records(records: list[dict]) -> pd.DataFrame:
    """Inverse of :func:`table_to_records` (null scores -> NaN)."""
    df = pd.DataFrame.from_records(records)
    for col in ("score", "median"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col]).astype(np.float64)
    return df


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
        params=_jsonable(dict(params or {}), "params"),
        thresholds=_jsonable(dict(thresholds or {}), "thresholds"),
        marker=_jsonable(dict(marker), "marker") if marker else None,
        image=DataFile.from_path("image", _path_of(image, "image"),
                                 getattr(image, "provenance", {}).get("reader_options")) if image is not None else None,
        rois_file=roi_ref,
        results=None if results is None else results.copy(),
        extra=_jsonable(dict(extra or {}), "extra"),
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
    if not path.is_file():
        raise RoiScoreError(f"Session file {src!r} does not exist.", "Check the path.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
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


def read_session_spots(session: Session):
    """The session's spot table (read with its recorded reader options)."""
    return read_spots(session.spots.path, **session.spots.options)


def session_scorer(session: Session):
    """What scoring ``session`` needs: scorer, per-spot scores and spot mask.

    Returns
    -------
    scorer : RoiScorer
    scores : SpotScores
    spot_mask : ndarray of bool or None
        The marker restriction, when the session has one.
    """
    from napari_roiscore.scoring.scorer import RoiScorer

    scorer = RoiScorer(read_session_spots(session))
    scores = scorer.spot_scores(session.signature, session.method, **session.params)
    spot_mask = None
    if session.marker:
        m = session.marker
        if session.image is None:
            raise RoiScoreError("The session's marker restriction has no image.", "Save the session again.")
        spot_mask, _ = marker_restriction(session.image.path, scorer.spots, m["channel"], m.get("threshold"),
                                          m.get("min_fraction", 0.1), m.get("level"))
    return scorer, scores, spot_mask


def score_session(session: Session) -> pd.DataFrame:
    """Recompute the ROI table of ``session`` (same code as the widget and CLI).

    Returns
    -------
    DataFrame
        Columns of :data:`napari_roiscore.scoring.scorer.TABLE_COLUMNS`.
    """
    scorer, scores, spot_mask = session_scorer(session)
    return scorer.table(session.rois, scores, spot_mask=spot_mask)


def same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when two ROI tables agree exactly (names, classes, spots, scores, status)."""
    from napari_roiscore.scoring.scorer import TABLE_COLUMNS

    if len(a) != len(b) or not all(c in a.columns and c in b.columns for c in TABLE_COLUMNS):
        return False
    for c in TABLE_COLUMNS:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if c in ("score", "median"):
            if not np.array_equal(x.astype(float), y.astype(float), equal_nan=True):
                return False
        elif c == "class":  # sessions saved before class names were normalised ("tumor")
            if [normalise_class(v) for v in x] != [normalise_class(v) for v in y]:
                return False
        elif [str(v) for v in x] != [str(v) for v in y]:
            return False
    return True
