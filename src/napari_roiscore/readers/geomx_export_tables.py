"""GeoMx DSP export: finding the segment-properties and counts tables, and reading them.

An export is a workbook (``.xlsx``) with a segment-properties sheet and a
counts sheet, or a folder holding it or the two tables as text files.  Only
header rows are read to recognise the tables (cheap, for drag and drop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from napari_roiscore.errors import RoiScoreError

__all__ = ["find_geomx_export", "is_geomx_export"]

_TABLE_SUFFIXES = (".xlsx", ".csv", ".tsv", ".txt")
_MAX_FILES_SCANNED = 40
_PROBE_COLUMNS = ("probename", "probedisplayname", "rtsid")


def _norm(text: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


@dataclass(frozen=True)
class _Table:
    """One candidate table: a sheet of a workbook or a delimited text file."""

    file: Path
    sheet: str | None
    header: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.file.name}[{self.sheet}]" if self.sheet is not None else self.file.name

    @property
    def name_hint(self) -> str:
        return _norm(f"{self.file.stem} {self.sheet or ''}")

    def has(self, column: str) -> bool:
        return _norm(column) in {_norm(h) for h in self.header}


def _delimiter(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        return ","
    if path.suffix.lower() == ".tsv":
        return "\t"
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    return "\t" if first.count("\t") >= first.count(",") else ","


def _headers(path: Path) -> list[_Table]:
    """The tables of one file with their header rows (cheap: no data read)."""
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception:  # not a workbook (or a locked/corrupt one): not ours to open
            return []
        try:
            out = []
            for ws in wb.worksheets:
                row = next(ws.iter_rows(max_row=1, values_only=True), ())
                out.append(_Table(path, ws.title, tuple("" if v is None else str(v) for v in row)))
            return out
        except Exception:  # a damaged sheet (truncated zip member, bad XML): not recognised
            return []
        finally:
            wb.close()
    try:
        header = pd.read_csv(path, sep=_delimiter(path), nrows=0, encoding="utf-8-sig").columns
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return []
    return [_Table(path, None, tuple(str(h) for h in header))]


def _tables_in(path: Path) -> list[_Table]:
    if path.is_file():
        return _headers(path) if path.suffix.lower() in _TABLE_SUFFIXES else []
    if not path.is_dir():
        return []
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES and not p.name.startswith(("~$", ".")))
    return [t for f in files[:_MAX_FILES_SCANNED] for t in _headers(f)]


def _segment_candidates(tables: list[_Table]) -> list[_Table]:
    found = [t for t in tables if t.has("SegmentDisplayName")]
    return sorted(found, key=lambda t: _norm(t.sheet or "") != "segmentproperties")


def _count_candidates(tables: list[_Table]) -> list[_Table]:
    return [t for t in tables if t.has("TargetName") and not t.has("SegmentDisplayName")]


def find_geomx_export(path: str | Path) -> dict | None:
    """Where the two tables of a DSP export are, reading headers only.

    Parameters
    ----------
    path : str or Path
        An export workbook (``.xlsx``) or a folder holding it (or the two
        tables as ``.csv``/``.tsv``/``.txt`` files).

    Returns
    -------
    dict or None
        ``{"segments": [(file, sheet), ...], "counts": [(file, sheet), ...]}``
        (best candidate first; ``sheet`` is ``None`` for text files), or
        ``None`` when ``path`` does not hold both tables.
    """
    tables = _tables_in(Path(path))
    seg, cnt = _segment_candidates(tables), _count_candidates(tables)
    if not seg or not cnt:
        return None
    return {"segments": [(t.file, t.sheet) for t in seg], "counts": [(t.file, t.sheet) for t in cnt]}


def is_geomx_export(path: str | Path) -> bool:
    """True for a DSP export workbook, or a folder with a segment table and a counts table."""
    try:
        return find_geomx_export(path) is not None
    except OSError:
        return False


def _read_table(t: _Table) -> pd.DataFrame:
    from napari_roiscore.spots.checks import reader_errors

    with reader_errors(f"GeoMx export table {t.label!r}", "Re-export it from the GeoMx DSP."):
        if t.sheet is not None:
            df = pd.read_excel(t.file, sheet_name=t.sheet)
        else:
            df = pd.read_csv(t.file, sep=_delimiter(t.file), encoding="utf-8-sig", low_memory=False)
    df.columns = [str(c).strip() for c in df.columns]
    return df.dropna(how="all")


def _column(df: pd.DataFrame, name: str) -> str | None:
    return next((c for c in df.columns if _norm(c) == _norm(name)), None)


