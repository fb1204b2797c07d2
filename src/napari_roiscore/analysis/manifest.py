"""The cohort manifest: one row per slide (spots, ROIs, image) with patient and response.

What ``roiscore batch``, ``roiscore validate --manifest`` and the dock's Cohort tab
read, and the checks they share before any slide is scored:

* :func:`read_manifest` - the CSV (``slide_id, spots, rois[, image]`` and any other
  columns, e.g. ``patient`` and ``response``) as :class:`Slide` rows with absolute paths;
* :func:`batch_table_problems` / :func:`validate_batch_table` - the cohort columns
  (and, on request, the files) checked, every problem with its fix;
* :func:`with_cohort_columns` - ``patient`` and ``response`` added to a ROI table.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError


@dataclass(frozen=True)
class Slide:
    """One manifest row, with absolute paths."""

    slide_id: str
    spots: Path
    rois: Path
    image: Path | None = None
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def attribute_dict(self) -> dict[str, str]:
        """The manifest's other columns (e.g. ``patient``, ``response``) for this slide."""
        return dict(self.attributes)


MANIFEST_REQUIRED = ("slide_id", "spots", "rois")


def read_manifest(path: str | Path) -> list[Slide]:
    """Read a cohort manifest (CSV with ``slide_id, spots, rois[, image]`` and optional
    attribute columns such as ``patient`` and ``response``).

    Relative paths are relative to the manifest's folder.  Columns other than
    the four above are kept as the slide's ``attributes``.  Missing data files
    are *not* an error here: they fail their own slide only.

    Raises
    ------
    RoiScoreError
        Unreadable manifest, missing columns, empty or duplicate slide ids
        (every problem is listed).
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise RoiScoreError(f"Manifest {src!r} does not exist.", "Check the path.")
    try:
        # index_col=False: a trailing comma must not turn the first column into the index
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RoiScoreError(f"Manifest {src!r} is not a readable CSV ({err}).",
                            "Write one row per slide: slide_id,spots,rois,image.") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in MANIFEST_REQUIRED if c not in df.columns]
    if missing:
        raise RoiScoreError(
            f"Manifest {src!r} lacks column(s) {', '.join(missing)} (has {', '.join(df.columns)}).",
            "The header must be slide_id,spots,rois (image optional).",
        )
    if df.empty:
        raise RoiScoreError(f"Manifest {src!r} lists no slide.", "Add one row per slide.")
    base = path.resolve().parent
    problems = []
    slides = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(df.to_dict("records"), start=2):  # line 1 is the header
        sid = str(rec["slide_id"]).strip()
        where = f"line {i}"
        if not sid:
            problems.append(f"{where}: empty slide_id")
        elif sid in seen:
            problems.append(f"{where}: slide_id {sid!r} already used on line {seen[sid]}")
        else:
            seen[sid] = i
        for col in ("spots", "rois"):
            if not str(rec[col]).strip():
                problems.append(f"{where}: empty {col!r} path")
        image = str(rec.get("image", "") or "").strip()
        extra = tuple((str(k), str(v).strip()) for k, v in rec.items()
                      if k not in (*MANIFEST_REQUIRED, "image") and not str(k).startswith("unnamed"))
        slides.append(Slide(
            slide_id=sid,
            spots=(base / str(rec["spots"]).strip()).resolve(),
            rois=(base / str(rec["rois"]).strip()).resolve(),
            image=(base / image).resolve() if image else None,
            attributes=extra,
        ))
    if problems:
        raise RoiScoreError(f"Manifest {src!r}: " + "; ".join(problems) + ".",
                            "Give every row a unique slide_id and both paths.")
    return slides


COHORT_COLUMNS = ("patient", "response")
#: what to do about a bad response column
RESPONSE_FIX = ("Give every slide a response (responder / non-responder, or 1/0, R/NR, yes/no; empty = unknown) "
                "and include patients of both kinds.")


def batch_table_problems(slides: Sequence, manifest: str | Path = "manifest", *, need_response: bool = False,
                         check_files: bool = False) -> list[tuple[str, str]]:
    """Every problem of a read manifest as a cohort, each as ``(problem, fix)``.

    Parameters
    ----------
    slides : sequence of Slide
        From :func:`read_manifest` (manifest order: line = index + 2).
    manifest : path
        Named in the messages.
    need_response : bool
        A ``response`` column is required (cohort validation); without it
        and without the column there is nothing to check.
    check_files : bool
        Check that every spots, ROI and image path exists (``roiscore batch``
        lets a missing file fail its own slide instead).
    """
    from napari_roiscore.analysis.cohort import parse_response

    src = str(manifest)
    out: list[tuple[str, str]] = []
    if check_files:
        missing = [f"line {i} ({s.slide_id}): {kind} {str(p)!r}" for i, s in enumerate(slides, start=2)
                   for kind, p in (("spots", s.spots), ("ROIs", s.rois), ("image", s.image))
                   if p is not None and not Path(p).exists()]
        if missing:
            out.append((f"Manifest {src!r}: file(s) not found: " + "; ".join(missing) + ".",
                        "Correct the paths (relative paths are relative to the manifest's folder)."))
    has_response = any("response" in s.attribute_dict for s in slides)
    if not has_response:
        if need_response:
            out.append((f"Manifest {src!r} has no 'response' column.",
                        "Add a response column (responder / non-responder) and, when a patient has several "
                        "slides, a patient column."))
        return out
    bad, by_patient = [], {}
    for i, s in enumerate(slides, start=2):
        value = s.attribute_dict.get("response", "")
        try:
            (r,) = parse_response([value])
        except RoiScoreError:
            bad.append(f"line {i} ({s.slide_id}): {value!r}")
            continue
        if np.isfinite(r):
            by_patient.setdefault(s.attribute_dict.get("patient") or s.slide_id, {})[i] = r
    if bad:
        out.append((f"Manifest {src!r}: response value(s) neither responder nor non-responder: "
                    + "; ".join(bad) + ".", RESPONSE_FIX))
    mixed = [f"{p} (lines {', '.join(map(str, r))})" for p, r in by_patient.items() if len(set(r.values())) > 1]
    if mixed:
        out.append((f"Manifest {src!r}: patient(s) both responder and non-responder: " + "; ".join(mixed) + ".",
                    "Give all slides of a patient the same response (check the patient column)."))
    kinds = {v for r in by_patient.values() for v in r.values()}
    if not bad and len(kinds) < 2:
        have = ("no patient has a known response" if not kinds else
                f"all {len(by_patient)} patient(s) with a response are "
                f"{'responders' if kinds == {1.0} else 'non-responders'}")
        out.append((f"Manifest {src!r}: {have}; a ROC curve needs responders and non-responders.", RESPONSE_FIX))
    return out


def validate_batch_table(slides: Sequence, manifest: str | Path = "manifest", *, need_response: bool = False,
                         check_files: bool = False) -> None:
    """Raise one :class:`RoiScoreError` listing every problem of :func:`batch_table_problems`."""
    problems = batch_table_problems(slides, manifest, need_response=need_response, check_files=check_files)
    if problems:
        fixes = list(dict.fromkeys(f for _, f in problems))
        raise RoiScoreError(" ".join(p for p, _ in problems), " ".join(fixes))


def with_cohort_columns(table: pd.DataFrame, slides: Sequence) -> pd.DataFrame:
    """``table`` with ``patient`` and ``response`` after ``slide_id`` when the manifest has a response."""
    attrs = {s.slide_id: s.attribute_dict for s in slides}
    if not any("response" in a for a in attrs.values()):
        return table
    out = table.copy()
    sid = out["slide_id"].astype(str)
    out.insert(1, "patient", [attrs.get(s, {}).get("patient") or s for s in sid])
    out.insert(2, "response", [attrs.get(s, {}).get("response", "") for s in sid])
    return out
