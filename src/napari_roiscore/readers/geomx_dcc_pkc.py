"""GeoMx DSP NGS files: DCC probe counts (one file per AOI) and PKC probe kits.

* **DCC**: sections ``<Header>``, ``<Scan_Attributes>``,
  ``<NGS_Processing_Attributes>`` and ``<Code_Summary>`` (``RTS_ID,count``);
  counts must be finite, non-negative and whole.
* **PKC**: JSON, one per probe kit (loose ``.pkc`` files or a ``.zip`` of
  them): ``Targets[].DisplayName`` (gene), ``CodeClass`` and
  ``Probes[].RTS_ID``.  A zip that would unpack beyond ``MAX_PKC_BYTES`` is
  refused unread.

:func:`~napari_roiscore.readers.geomx.read_geomx_ngs` combines the two with
the annotation sheet into one observation per AOI.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import require_regular_file
from napari_roiscore.spots.checks import check_counts, reader_errors

__all__ = ["MAX_PKC_BYTES", "read_dcc", "read_pkc"]

_TAG = re.compile(r"<(/?)([A-Za-z_]+)>")
_CODE_START = re.compile(r"^[ \t]*<Code_Summary>[ \t]*\r?$", re.M)
_ANY_TAG = re.compile(r"^[ \t]*</?[A-Za-z_]+>[ \t]*\r?$", re.M)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _code_summary(block: str, path: Path) -> pd.Series:
    """``RTS_ID,count`` lines → counts indexed by probe id (``RNA…`` ids renamed ``RTS00…``)."""
    rows = [ln.partition(",") for ln in block.splitlines() if ln.strip()]
    ids = [(i := r[0].strip()) and ("RTS00" + i[3:] if i.startswith("RNA") else i) for r in rows]
    try:
        values = np.array([r[2] for r in rows], dtype=float)
    except ValueError:
        bad = next(r for r in rows if not _is_number(r[2]))
        raise RoiScoreError(f"{str(path)!r}: <Code_Summary> line {''.join(bad)[:60]!r} has no numeric count.",
                            "Each line must read 'RTS_ID,count'; re-export the DCC file.") from None
    check_counts(values, f"{str(path)!r} <Code_Summary>")  # finite, non-negative, whole
    series = pd.Series(values, index=pd.Index(ids, dtype=object), dtype=float)
    return series.groupby(level=0).sum() if series.index.has_duplicates else series.sort_index()


def read_dcc(path: str | Path) -> dict:
    """Parse one DCC file into its sections.

    Returns
    -------
    dict
        ``{"Header": {...}, "Scan_Attributes": {...}, "NGS_Processing_Attributes":
        {...}, "Code_Summary": pandas.Series(count, index=RTS_ID)}``.
    """
    path = Path(path)
    sections: dict[str, list[str]] = {}
    current = None
    require_regular_file(path, "DCC file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise RoiScoreError(f"{str(path)!r} cannot be read ({err}).", "Check the DCC file.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:  # an instrument name typed in Latin-1: every byte is a character
        text = raw.decode("latin-1")
    # the probe counts (thousands of lines) are parsed in one go; the small sections line by line
    code = _CODE_START.search(text)
    block = ""
    if code:
        end = _ANY_TAG.search(text, code.end())
        block = text[code.end():end.start() if end else len(text)]
        text = text[:code.start()] + "\n" + (text[end.start():] if end else "")
        sections["Code_Summary"] = []
    for raw in text.splitlines():
        line = raw.strip()
        m = _TAG.fullmatch(line) if line[:1] == "<" else None
        if m:
            current = None if m.group(1) else m.group(2)
            if current:
                sections.setdefault(current, [])
            continue
        if current and line:
            sections[current].append(line)
    if "Code_Summary" not in sections:
        raise RoiScoreError(f"{str(path)!r}: section <Code_Summary> is missing.",
                            "This is not a GeoMx DCC file; re-export it from the NGS pipeline.")
    out: dict = {name: {k.strip(): v.strip().strip('"') for k, _, v in (ln.partition(",") for ln in lines)}
                 for name, lines in sections.items() if name != "Code_Summary"}
    out["Code_Summary"] = _code_summary(block, path)
    return out


#: a .pkc file (or all of them in a zip, unpacked) larger than this is not a probe kit: refused unread
MAX_PKC_BYTES = 256 * 1024**2


def _pkcs_in_zip(p: Path) -> list[tuple[str, dict, str]]:
    """The .pkc documents of a zip, refusing one that would unpack to more than MAX_PKC_BYTES (a zip bomb)."""
    out = []
    with zipfile.ZipFile(p) as z:
        members = [i for i in z.infolist() if i.filename.lower().endswith(".pkc")]
        declared = sum(i.file_size for i in members)
        if declared > MAX_PKC_BYTES:
            raise RoiScoreError(f"PKC zip {str(p)!r} would unpack to {declared / 1024**2:,.0f} MB; "
                                f"a probe kit is at most {MAX_PKC_BYTES // 1024**2} MB.",
                                "Download the probe kit configuration again.")
        for info in sorted(members, key=lambda i: i.filename):
            with z.open(info) as fh:  # never trust the declared size: read at most the limit
                data = fh.read(MAX_PKC_BYTES + 1)
            if len(data) > MAX_PKC_BYTES:
                raise RoiScoreError(f"PKC zip {str(p)!r}: {info.filename} unpacks beyond "
                                    f"{MAX_PKC_BYTES // 1024**2} MB.", "Download the probe kit configuration again.")
            out.append((Path(info.filename).stem, json.loads(data.decode("utf-8-sig")), f"{p}:{info.filename}"))
    return out


def read_pkc(paths: str | Path | list) -> pd.DataFrame:
    """Probe table from PKC files (``.pkc`` JSON or ``.zip`` archives of them).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``RTS_ID`` with columns ``target``, ``module``, ``code_class``.
    """
    items = paths if isinstance(paths, (list, tuple)) else [paths]
    docs: list[tuple[str, dict, str]] = []
    for p in map(Path, items):
        if not p.is_file():
            raise RoiScoreError(f"PKC file {str(p)!r} is missing.", "Give the .pkc files (or their .zip) of the kit.")
        require_regular_file(p, "PKC file")
        with reader_errors(f"PKC file {str(p)!r}", "Download the probe kit configuration again."):
            if p.suffix.lower() == ".zip":
                docs += _pkcs_in_zip(p)
            else:
                if p.stat().st_size > MAX_PKC_BYTES:
                    raise RoiScoreError(f"PKC file {str(p)!r} is larger than {MAX_PKC_BYTES // 1024**2} MB.",
                                        "Give the kit's .pkc files (a few MB each).")
                docs.append((p.stem, json.loads(p.read_text(encoding="utf-8-sig")), str(p)))
    if not docs:
        raise RoiScoreError(f"no .pkc file found in {[str(i) for i in items]}.",
                            "Give the .pkc probe kit files (or a .zip holding them).")
    rows = []
    for module, doc, src in docs:
        if not isinstance(doc, dict) or "Targets" not in doc:
            raise RoiScoreError(f"PKC {src!r}: field 'Targets' is missing.", "Use a GeoMx .pkc file.")
        try:
            for t in doc["Targets"]:
                for probe in t.get("Probes", []):
                    rows.append((re.sub(r"^RNA", "RTS00", str(probe["RTS_ID"])), str(t["DisplayName"]),
                                 module, str(t.get("CodeClass", ""))))
        except (TypeError, KeyError, AttributeError) as err:
            raise RoiScoreError(f"PKC {src!r}: field 'Targets' is malformed ({type(err).__name__}: "
                                f"{str(err)[:60]}).",
                                "Each target needs DisplayName and Probes with RTS_ID; download the kit again.") from None
    df = pd.DataFrame(rows, columns=["RTS_ID", "target", "module", "code_class"])
    return df.drop_duplicates("RTS_ID").set_index("RTS_ID")
