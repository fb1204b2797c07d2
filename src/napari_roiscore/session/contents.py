"""What a session holds: its data files (with checksums), ROIs, signature,
method, parameters and, optionally, the ROI table it produced.

:class:`Session` and :class:`DataFile` turn into JSON (``to_dict``) and back;
ROI tables are stored as JSON records that keep every float exactly.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.geojson import rois_to_geojson
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.session.checksums import sha256_path, software_versions

__all__ = ["FORMAT", "FORMAT_VERSION", "DataFile", "Session", "jsonable", "table_from_records", "table_to_records"]


FORMAT = "napari-roiscore session"

FORMAT_VERSION = 1


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
            "params": jsonable(self.params, "params"),
            "thresholds": jsonable(self.thresholds, "thresholds"),
        }
        if self.marker:
            data["marker"] = jsonable(self.marker, "marker")
        if self.results is not None:
            data["results"] = table_to_records(self.results)
        if self.extra:
            data["extra"] = jsonable(self.extra, "extra")
        return data

    def to_text(self, path: str | Path) -> str:
        """The session as the JSON text :meth:`save` writes to ``path`` (paths relative to its folder)."""
        return json.dumps(self.to_dict(base=Path(path).resolve().parent), indent=1, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the session as JSON (atomically; never over one of its own data files)."""
        path = Path(path)
        text = self.to_text(path)
        try:
            return atomic_write_text(path, text, [f.path for f in self.data_files])
        except OSError as err:
            raise RoiScoreError(f"Cannot write session {str(path)!r}: {err}.",
                                "Choose a folder you can write to.") from None


def jsonable(value: Any, where: str) -> Any:
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
