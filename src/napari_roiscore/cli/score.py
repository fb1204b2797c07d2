"""``roiscore score``: one slide (spots + ROIs [+ image]) -> ROI table, or a saved session reproduced.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.cli.common import EXIT_OK, Progress, add_marker_options, add_quiet_option
from napari_roiscore.cli.common import add_signature_options, marker_from_args, new_command, output_format
from napari_roiscore.cli.common import signature_from_args, usage_checked_params, write_outputs
from napari_roiscore.analysis.slide_scoring import SlideResult, image_warnings, placement_warnings, score_slide
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import check_outputs
from napari_roiscore.scoring.scorer import TABLE_COLUMNS, RoiScorer, annotated_table


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) and np.isfinite(v) else ("" if isinstance(v, float) else str(v))
                 for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path: Path, result: SlideResult, inputs: dict[str, Path | None]) -> None:
    """Write :func:`report_text` to ``path`` (never over one of ``inputs``)."""
    atomic_write_text(path, report_text(result, inputs), list(inputs.values()))


def report_text(result: SlideResult, inputs: dict[str, Path | None]) -> str:
    """A short Markdown report: inputs with checksums, signature, genes, table."""
    from napari_roiscore import __version__
    from napari_roiscore.session import sha256_path

    s = result.scores
    lines = [f"# ROI scores ({s.signature.label})", "", "## Inputs", ""]
    for role, p in inputs.items():
        if p is not None:
            lines.append(f"- {role}: `{p}` (sha256 `{sha256_path(p)}`)")
    lines += ["", "## Scoring", "",
              f"- method: {RoiScorer.method_label(s.method)} (`{s.method}`)",
              f"- parameters: `{json.dumps(s.params, default=str)}`",
              f"- signature genes (up): {', '.join(s.signature.up) or '-'}",
              f"- signature genes (down): {', '.join(s.signature.down) or '-'}",
              f"- genes used: {', '.join(s.match.used)}",
              f"- genes missing from the data: {', '.join(s.match.missing) or 'none'}",
              f"- spots: {result.n_spots}",
              f"- marker restriction: {result.marker['label'] if result.marker else 'none (all spots)'}"
              + (f" ({result.n_marker_positive} spots pass)" if result.n_marker_positive is not None else ""),
              f"- napari-roiscore {__version__}"]
    if s.signature.is_example:
        lines.append("- note: example panel of macrophage genes, NOT the published response signature")
    if result.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in result.warnings]
    lines += ["", "## ROI table", "", _md_table(result.table[TABLE_COLUMNS]), ""]
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``score`` sub-parser to ``sub``."""
    sc = new_command(
        sub, "score", help="score the ROIs of one slide",
        description="Score the ROIs of one slide and write the ROI table.\n\n"
                    "  roiscore score --spots S.h5ad --rois R.geojson --genes CD68,CD163 --out table.csv\n"
                    "  roiscore score --session study.roiscore.json --out table.csv",
    )
    add_quiet_option(sc)
    inp = sc.add_argument_group("inputs (either --spots and --rois, or --session)")
    inp.add_argument("--spots", type=Path, metavar="FILE", help="spots with raw counts (.h5ad)")
    inp.add_argument("--rois", type=Path, metavar="FILE", help="ROIs (QuPath GeoJSON)")
    inp.add_argument("--image", type=Path, metavar="FILE",
                     help="multiplex image (OME-TIFF), checked against spots and ROIs")
    inp.add_argument("--session", type=Path, metavar="FILE",
                     help="a saved session: reproduce its scores (checksums verified)")
    add_signature_options(sc)
    add_marker_options(sc)
    out = sc.add_argument_group("outputs")
    out.add_argument("--out", type=Path, metavar="FILE", help="ROI table, .csv or .json (default: CSV on stdout)")
    out.add_argument("--report", type=Path, metavar="FILE", help="also write a Markdown report")
    out.add_argument("--save-session", type=Path, metavar="FILE",
                     help="also save a session file (data checksums, ROIs, signature, method, scores)")
    out.add_argument("--to-spatialdata", type=Path, metavar="STORE",
                     help="also write the ROIs (shapes element) and their scores (table) into a SpatialData "
                          ".zarr store, created if absent; the spots' own store may be given: only the ROI "
                          "elements are added or replaced (optional extra 'spatialdata')")
    return sc


def _check_store(store: Path | None) -> None:
    """Refuse ``--to-spatialdata`` before any work: extra missing, or a path that is not a store."""
    if store is None:
        return
    from napari_roiscore.readers.spatialdata_store import INSTALL_HINT, is_spatialdata_store, spatialdata_available

    if not spatialdata_available():
        raise RoiScoreError("--to-spatialdata needs the optional package 'spatialdata', which is not installed.",
                            f"Install the extra: {INSTALL_HINT}; or drop --to-spatialdata.")
    if store.exists() and not is_spatialdata_store(store):
        raise RoiScoreError(f"--to-spatialdata {str(store)!r} exists and is not a SpatialData store.",
                            "Give a new .zarr path or an existing SpatialData store.")


def _write_store(store: Path | None, rois: list, table: pd.DataFrame, say: Progress) -> None:
    if store is None:
        return
    from napari_roiscore.readers.spatialdata_rois import ROI_ELEMENT, ROI_TABLE, write_rois_to_spatialdata

    write_rois_to_spatialdata(store, rois, table)
    say(f"ROIs -> {store} (shapes {ROI_ELEMENT!r}, table {ROI_TABLE!r})")


def run(args: argparse.Namespace, say: Progress, ap: argparse.ArgumentParser) -> int:
    """Run ``roiscore score``; returns the exit code."""
    if args.session is not None:
        clash = [o for o, v in (("--spots", args.spots), ("--rois", args.rois), ("--image", args.image),
                                ("--signature", args.signature), ("--genes", args.genes),
                                ("--save-session", args.save_session), ("--marker", args.marker),
                                ("--marker-threshold", args.marker_threshold)) if v is not None]
        if clash or args.param or args.method != "mean_z":
            ap.error(f"--session gives the inputs, signature and method; drop {', '.join(clash) or '--method/--param'}")
        return _score_from_session(args, say)
    if args.spots is None or args.rois is None:
        ap.error("score needs --spots and --rois (or --session)")
    output_format(args.out)  # fail before the work
    inputs = [args.spots, args.rois, args.image, args.signature]
    check_outputs([args.out, args.report, args.save_session], inputs)  # never over an input, pipe or folder
    _check_store(args.to_spatialdata)
    signature = signature_from_args(args)
    params = usage_checked_params(ap, args.param, args.method)
    marker = marker_from_args(args)
    say(f"scoring {args.spots.name} with {signature.label} ({args.method})")
    t0 = time.perf_counter()
    res = score_slide(args.spots, args.rois, signature, args.method, params, image=args.image, marker=marker)
    if res.marker:
        say(f"marker restriction: {res.n_marker_positive} of {res.n_spots} spots pass: {res.marker['label']}")
    for w in res.warnings:
        say(f"warning: {w}")
    outputs = []  # table, report and session: written all or nothing
    if args.report:
        outputs.append((args.report, report_text(res, {"spots": args.spots, "rois": args.rois, "image": args.image})))
    if args.save_session:
        from napari_roiscore.session import make_session

        session = make_session(spots=args.spots, rois=args.rois, signature=signature, method=args.method,
                               params=params, image=args.image, marker=res.marker, results=res.table[TABLE_COLUMNS])
        outputs.append((args.save_session, session.to_text(args.save_session)))
    write_outputs(res.table, args.out, outputs, inputs)
    ok = int((res.table["status"] == "ok").sum())
    say(f"{len(res.table)} ROI(s), {ok} scored, {res.n_spots} spots, {time.perf_counter() - t0:.1f} s"
        + (f" -> {args.out}" if args.out else ""))
    for path, what in ((args.report, "report"), (args.save_session, "session")):
        if path:
            say(f"{what} -> {path}")
    _write_store(args.to_spatialdata, res.rois, res.table, say)
    return EXIT_OK


def _score_from_session(args: argparse.Namespace, say: Progress) -> int:
    from napari_roiscore.session import load_session, same_numbers, session_scorer

    output_format(args.out)
    check_outputs([args.out, args.report], [args.session])
    _check_store(args.to_spatialdata)
    s = load_session(args.session)
    inputs = [args.session, *(f.path for f in s.data_files)]
    check_outputs([args.out, args.report], inputs)
    say(f"session {args.session.name}: checksums verified ({len(s.data_files)} file(s))")
    for d in s.version_differences():
        say(f"warning: software differs from the session's: {d}")
    t0 = time.perf_counter()
    scorer, scores, spot_mask = session_scorer(s)
    label = ""
    if s.marker:
        label = str(s.marker.get("label") or f"{s.marker['channel']}+ (> {s.marker.get('threshold')})")
        say(f"marker restriction: {int(spot_mask.sum())} of {len(spot_mask)} spots pass: {label}")
    table = annotated_table(scorer.table(s.rois, scores, spot_mask=spot_mask), scores, label)
    for w in placement_warnings(scorer, s.rois):
        say(f"warning: {w}")
    if s.image is not None:
        for w in image_warnings(s.image.path, scorer.spots.xy, s.rois):
            say(f"warning: {w}")
    if s.results is not None:
        say("scores identical to those stored in the session" if same_numbers(table, s.results)
            else "warning: scores differ from those stored in the session")
    outputs = []
    if args.report:
        res = SlideResult(table=table, scores=scores, n_spots=scorer.spots.n_spots, marker=s.marker,
                          n_marker_positive=None if spot_mask is None else int(spot_mask.sum()))
        outputs.append((args.report, report_text(res, {"spots": s.spots.path,
                                                       "image": s.image.path if s.image else None})))
    write_outputs(table, args.out, outputs, inputs)
    say(f"{len(table)} ROI(s), {time.perf_counter() - t0:.1f} s" + (f" -> {args.out}" if args.out else ""))
    if args.report:
        say(f"report -> {args.report}")
    _write_store(args.to_spatialdata, s.rois, table, say)
    return EXIT_OK
