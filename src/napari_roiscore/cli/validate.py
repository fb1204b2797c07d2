"""``roiscore validate``: check inputs without scoring and list every problem found.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_roiscore.analysis.manifest import read_manifest
from napari_roiscore.analysis.manifest import batch_table_problems
from napari_roiscore.cli.common import EXIT_INVALID, EXIT_OK, Progress, add_marker_options
from napari_roiscore.cli.common import add_quiet_option, add_signature_options, marker_from_args, new_command
from napari_roiscore.cli.common import parse_params, signature_from_args
from napari_roiscore.analysis.slide_scoring import Findings, image_checks, placement_warnings
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi, merge_same_named
from napari_roiscore.scoring.methods import METHODS, check_params
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import Signature


def _rois_findings(path: Path) -> tuple[list[Roi] | None, Findings]:
    """Read ROIs; when the file is bad, list the problem of every bad feature."""
    from napari_roiscore.rois.geojson import parse_geojson, read_geojson

    f = Findings()
    try:
        rois = read_geojson(path, merge=False)
    except RoiScoreError as err:
        feats = None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            feats = data.get("features") if isinstance(data, dict) else data
        except (OSError, ValueError, RecursionError):
            pass
        if not isinstance(feats, list) or len(feats) < 2:
            f.problems.append(str(err))
            return None, f
        for i, feat in enumerate(feats):
            where = f"{path}, feature {i}"
            try:
                parsed = parse_geojson([feat], where)
            except RoiScoreError as e:
                f.problems.append(str(e).replace(f"{where}, feature 0", where, 1))
                continue
            f.problems += [f"{where}: ROI {r.name!r} has {r.problem}." for r in parsed if r.problem]
        if not f.problems:
            f.problems.append(str(err))
        return None, f
    if not rois:
        f.problems.append(f"ROI file {str(path)!r} holds no polygon ROI.")
    names = [r.name for r in rois]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        f.warnings.append(f"ROI file {str(path)!r}: features sharing a name are scored as one ROI "
                          f"(their union): {dups}")
    rois = merge_same_named(rois)
    for r in rois:
        if r.problem:
            f.problems.append(f"ROI file {str(path)!r}: ROI {r.name!r} has {r.problem}.")
    return rois, f


def validate_inputs(spots: str | Path | None = None, rois: str | Path | None = None,
                    image: str | Path | None = None, signature: Signature | None = None,
                    method: str = "mean_z", marker: dict | None = None) -> Findings:
    """Check one slide's inputs and collect every problem (nothing raises).

    Checks: each file opens; the method exists; signature genes are in the
    data (none -> problem, some missing -> warning); every ROI has an area
    and holds spots; spots and ROIs fall on the image; the marker channel
    is in the image.
    """
    from napari_roiscore.readers.dispatch import read_image
    from napari_roiscore.images.markers import find_channel
    from napari_roiscore.spots.reading import read_spots
    from napari_roiscore.scoring.signature import match_genes

    f = Findings()
    if method not in METHODS:
        f.problems.append(f"Unknown scoring method {method!r}. Fix: use one of {sorted(METHODS)}.")
    table = roi_list = img = None
    if spots is not None:
        try:
            table = read_spots(spots)
        except RoiScoreError as err:
            f.problems.append(str(err))
    if rois is not None:
        roi_list, rf = _rois_findings(Path(rois))
        f.extend(rf)
    if image is not None:
        try:
            img = read_image(image)
        except RoiScoreError as err:
            f.problems.append(str(err))
    if marker:
        if image is None:
            f.problems.append("The marker restriction needs the image. Fix: give --image (or an image column).")
        elif img is not None:
            try:
                find_channel(img, marker["channel"])
            except RoiScoreError as err:
                f.problems.append(f"{str(image)!r}: {err}")
    if table is not None and signature is not None:
        try:
            m = match_genes(signature, table.gene_names, table.gene_id_columns())
            if m.missing:
                f.warnings.append(f"{str(spots)!r}: signature genes not in the data: {', '.join(m.missing)} "
                                  f"(scored with the {m.n_used} present)")
        except RoiScoreError as err:
            f.problems.append(f"{str(spots)!r}: {err}")
    if table is not None:
        scorer = RoiScorer(table)
        f.warnings += [f"{str(spots)!r}: {w}" for w in placement_warnings(scorer, roi_list or [])]
        for r in roi_list or []:
            if not r.problem and scorer.members(r).size == 0:
                f.warnings.append(f"ROI {r.name!r} ({rois}) holds no spot centre")
    if img is not None:
        f.extend(image_checks(img, image, table.xy if table is not None else None, roi_list))
    return f


def _validate_session(path: Path) -> Findings:
    from napari_roiscore.session import check_session, load_session, read_session_spots
    from napari_roiscore.scoring.signature import match_genes

    f = Findings()
    try:
        s = load_session(path, verify=False)
    except RoiScoreError as err:
        f.problems.append(str(err))
        return f
    f.problems += [f"Session {str(path)!r}: {p}." for p in check_session(s)]
    f.warnings += [f"software differs from the session's: {d}" for d in s.version_differences()]
    if s.method not in METHODS:
        f.problems.append(f"Session {str(path)!r}: unknown method {s.method!r}.")
    else:
        try:
            check_params(s.method, dict(s.params or {}))
        except RoiScoreError as err:
            f.problems.append(f"Session {str(path)!r}: {err}")
    for r in s.rois:
        if r.problem:
            f.problems.append(f"Session {str(path)!r}: ROI {r.name!r} has {r.problem}.")
    if s.marker and s.image is not None and s.image.path.exists():
        from napari_roiscore.readers.dispatch import read_image
        from napari_roiscore.images.markers import find_channel

        try:
            find_channel(read_image(s.image.path, **s.image.options), s.marker["channel"])
        except RoiScoreError as err:
            f.problems.append(f"Session {str(path)!r}: marker restriction: {err}")
    if s.spots.path.exists():
        try:
            t = read_session_spots(s)
            m = match_genes(s.signature, t.gene_names, t.gene_id_columns())
            if m.missing:
                f.warnings.append(f"signature genes not in the data: {', '.join(m.missing)}")
        except RoiScoreError as err:
            f.problems.append(str(err))
    return f


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``validate`` sub-parser to ``sub``."""
    va = new_command(
        sub, "validate", help="check inputs and list every problem",
        description="Check inputs without scoring and list every problem found (exit 1 if any).\n\n"
                    "  roiscore validate --spots S.h5ad --rois R.geojson --image I.ome.tif\n"
                    "  roiscore validate --manifest cohort.csv\n"
                    "  roiscore validate --session study.roiscore.json",
    )
    add_quiet_option(va, "no summary on stderr")
    va.add_argument("--spots", type=Path, metavar="FILE")
    va.add_argument("--rois", type=Path, metavar="FILE")
    va.add_argument("--image", type=Path, metavar="FILE")
    va.add_argument("--manifest", type=Path, metavar="FILE", help="check every slide of a cohort manifest")
    va.add_argument("--session", type=Path, metavar="FILE", help="check a session file and its data")
    add_signature_options(va)
    add_marker_options(va)
    return va


def run(args: argparse.Namespace, say: Progress, ap: argparse.ArgumentParser) -> int:
    """Run ``roiscore validate``: print every problem and warning; exit code 1 if any problem."""
    if not any(v is not None for v in (args.spots, args.rois, args.image, args.manifest, args.session,
                                       args.signature, args.genes)):
        ap.error("nothing to validate: give --spots/--rois/--image, --manifest, --session or a signature")
    f = Findings()
    signature = None
    if args.signature is not None or args.genes is not None or args.spots is not None or args.manifest is not None:
        try:
            signature = signature_from_args(args)
        except RoiScoreError as err:
            f.problems.append(str(err))
    try:
        parse_params(args.param, args.method if args.method in METHODS else None)
    except RoiScoreError as err:
        f.problems.append(str(err))
    marker = None
    try:
        marker = marker_from_args(args)
    except RoiScoreError as err:
        f.problems.append(str(err))
    if any(v is not None for v in (args.spots, args.rois, args.image)) or args.method != "mean_z":
        f.extend(validate_inputs(args.spots, args.rois, args.image, signature, args.method, marker))
    if args.manifest is not None:
        try:
            slides = read_manifest(args.manifest)
        except RoiScoreError as err:
            f.problems.append(str(err))
            slides = []
        f.problems += [f"{p} Fix: {fix}" for p, fix in batch_table_problems(slides, args.manifest)]
        for s in slides:
            say(f"checking slide {s.slide_id}")
            f.extend(validate_inputs(s.spots, s.rois, s.image, signature, args.method, marker),
                     prefix=f"slide {s.slide_id}: ")
    if args.session is not None:
        f.extend(_validate_session(args.session))
    for p in f.problems:
        print(f"problem: {p}")
    for w in f.warnings:
        print(f"warning: {w}")
    if f.problems:
        say(f"{len(f.problems)} problem(s), {len(f.warnings)} warning(s)")
        return EXIT_INVALID
    say(f"inputs OK ({len(f.warnings)} warning(s))")
    return EXIT_OK
