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

The manifest and its cohort checks, which ``roiscore batch``, ``roiscore validate
--manifest`` and the dock's Cohort tab share, are in :mod:`napari_roiscore.analysis.manifest`.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from napari_roiscore.cli.common import Progress
from napari_roiscore.errors import RoiScoreError


def add_cohort_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cohort validation (manifest with a 'response' column; research use only)")
    g.add_argument("--threshold", type=float, metavar="X",
                   help="score threshold for sensitivity/specificity (default: Youden's J on these patients)")
    g.add_argument("--bootstrap", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


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
