"""The cohort validation section of ``roiscore batch`` (manifest columns ``response`` and ``patient``).

When the manifest gives each slide a ``response`` (responder / non-responder,
1/0, R/NR...) and optionally a ``patient`` (default: the slide id), the batch
table gains those columns and the run writes, next to ``--out``:

* ``<out>.cohort_patients.csv``: per patient the mean tumour and stroma ROI
  scores and their difference (stroma − tumour);
* ``<out>.cohort_performance.csv``: ROC AUC with a bootstrap 95 % CI over
  patients, Mann–Whitney p, a threshold's sensitivity/specificity;
* ``<out>.cohort.png``: score distributions by response.

The signature is the one given to the batch, so the section says it was
validated as given (not discovered on this cohort).  Research use only.

:func:`validate_batch_table` checks the cohort columns (and, for the dock's
Cohort tab, the files) before any slide is scored; ``roiscore batch``,
``roiscore validate --manifest`` and the Cohort tab share it.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.cli.common import Progress
from napari_roiscore.errors import RoiScoreError

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
        From :func:`~napari_roiscore.cli.batch.read_manifest` (manifest order: line = index + 2).
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


def add_cohort_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cohort validation (manifest with a 'response' column; research use only)")
    g.add_argument("--threshold", type=float, metavar="X",
                   help="score threshold for sensitivity/specificity (default: Youden's J on these patients)")
    g.add_argument("--bootstrap", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


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


def write_cohort_section(table: pd.DataFrame, out: Path, args: argparse.Namespace, signature_label: str,
                         say: Progress) -> list[Path]:
    """Validate the batch scores per patient and write the CSVs and figure; returns the paths written."""
    from napari_roiscore.analysis.cohort import validate_table
    from napari_roiscore.analysis.volcano import draw_cohort, write_figure

    if "response" not in table.columns:
        return []
    try:
        res = validate_table(table[["patient", "class", "score", "response"]],
                             f"{signature_label}: given, validated as is (not discovered on this cohort)",
                             threshold=args.threshold, n_boot=args.bootstrap, seed=args.seed)
    except RoiScoreError as err:
        say(f"warning: cohort validation skipped: {err}")
        return []
    stem = out.with_suffix("").name + ".cohort"
    written = list(res.to_csv(out.parent, stem=stem))
    written.append(write_figure(out.parent / f"{stem}.png", lambda fig: draw_cohort(fig, res),
                                size=(3.2 * len(res.performance), 3.6)))
    for line in res.text().splitlines():
        say(line)
    say(f"cohort validation -> {', '.join(str(p) for p in written)}")
    return written
