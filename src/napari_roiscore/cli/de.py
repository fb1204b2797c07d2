"""``roiscore de``: differential expression between ROI groups -> CSV + volcano PNG.

Inputs: one slide (``--spots`` + ``--rois``), a cohort manifest
(``--manifest``; its extra columns such as ``patient`` and ``response`` are
sample attributes), or a GeoMx readout (``--spots`` folder without
``--rois``: each AOI is a sample, the annotation columns its attributes).
See :mod:`napari_roiscore.analysis.differential` for the method.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_roiscore.cli.common import EXIT_OK, Progress, add_quiet_option, new_command
from napari_roiscore.errors import RoiScoreError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``de`` sub-parser to ``sub``."""
    p = new_command(
        sub, "de", help="differential expression between ROI groups (PyDESeq2) -> CSV + volcano PNG",
        description="Compare two groups of ROIs (pseudobulk: each ROI's spots summed) with PyDESeq2.\n\n"
                    "  roiscore de --manifest cohort.csv --test stroma --reference tumour --out de.csv\n"
                    "  roiscore de --manifest cohort.csv --group response --test responder \\\n"
                    "              --reference non-responder --only-class stroma --out de.csv\n"
                    "  roiscore de --spots geomx_folder --group cell_line --test HS578T --reference HEL \\\n"
                    "              --unit 'slide name' --out de.csv\n\n"
                    "Each group needs 3 independent units (slides, or patients): ROIs on one slide are\n"
                    "not replicates, and DE is refused (or, with --descriptive, run and labelled EXPLORATORY).\n"
                    "Research use only.",
    )
    add_quiet_option(p)
    src = p.add_argument_group("input (a manifest, or one slide)")
    src.add_argument("--manifest", type=Path, metavar="CSV",
                     help="cohort manifest: slide_id, spots, rois[, image] and attribute columns (patient, ...)")
    src.add_argument("--spots", type=Path, metavar="PATH", help="spots of one slide (.h5ad or instrument folder)")
    src.add_argument("--rois", type=Path, metavar="FILE",
                     help="ROIs of that slide (GeoJSON); without it each spot is a sample (GeoMx AOIs)")
    g = p.add_argument_group("comparison")
    g.add_argument("--group", default="class", metavar="COLUMN",
                   help="sample column holding the groups (default: class; or a manifest/annotation column)")
    g.add_argument("--test", required=True, metavar="VALUE", help="group in the numerator of the fold change")
    g.add_argument("--reference", required=True, metavar="VALUE", help="group in the denominator")
    g.add_argument("--only-class", metavar="CLASS", help="use only ROIs of this class (e.g. stroma)")
    g.add_argument("--unit", metavar="COLUMN",
                   help="column of independent units (default: patient if the manifest has it, else slide; "
                        "'none' = every ROI independent)")
    g.add_argument("--no-pool", action="store_true", help="keep every ROI a sample (default: sum per unit and group)")
    g.add_argument("--min-units", type=int, default=3, metavar="N", help="independent units needed per group")
    g.add_argument("--descriptive", action="store_true",
                   help="run with too few units, labelled EXPLORATORY (p-values do not generalise)")
    g.add_argument("--cpus", type=int, default=1, metavar="N", help="processes for PyDESeq2 (default 1)")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, metavar="CSV", help="DE table (CSV)")
    o.add_argument("--volcano", type=Path, metavar="PNG", help="volcano plot (default: OUT with .png)")
    o.add_argument("--labels", type=int, default=10, metavar="N", help="genes named on the volcano plot")
    o.add_argument("--signature-out", type=Path, metavar="FILE",
                   help="save a signature of the top genes (.gmt or .yaml, with provenance)")
    o.add_argument("--top-up", type=int, default=5, metavar="N", help="up genes in that signature (default 5)")
    o.add_argument("--top-down", type=int, default=0, metavar="N", help="down genes in that signature")
    return p


def _samples(args: argparse.Namespace, say: Progress):
    from napari_roiscore.analysis.pseudobulk_samples import SlideRois, aoi_samples, roi_pseudobulk
    from napari_roiscore.cli.batch import read_manifest
    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.spots.reading import read_spots

    if args.manifest is not None:
        slides = []
        for s in read_manifest(args.manifest):
            say(f"reading {s.slide_id}")
            slides.append(SlideRois(s.slide_id, read_spots(s.spots), read_geojson(s.rois), s.attribute_dict))
        return roi_pseudobulk(slides)
    spots = read_spots(args.spots)
    if args.rois is None:
        return aoi_samples(spots)
    return roi_pseudobulk([SlideRois(Path(args.spots).stem, spots, read_geojson(args.rois))])


def run(args: argparse.Namespace, say: Progress, ap: argparse.ArgumentParser) -> int:
    """Run ``roiscore de``."""
    from napari_roiscore.analysis.differential import differential_expression
    from napari_roiscore.analysis.signature_from_de import signature_from_de, write_signature
    from napari_roiscore.analysis.volcano import write_volcano

    if (args.manifest is None) == (args.spots is None):
        ap.error("give either --manifest or --spots (with --rois, or a GeoMx folder)")
    if args.rois is not None and args.spots is None:
        ap.error("--rois needs --spots")
    if args.out.suffix.lower() != ".csv":
        raise RoiScoreError(f"Output {str(args.out)!r} must be a .csv file.", "Name it e.g. de.csv.")
    from napari_roiscore.cli.batch import read_manifest
    from napari_roiscore.outputs import check_outputs

    volcano = args.volcano or args.out.with_suffix(".png")
    inputs = ([args.manifest, *(p for s in read_manifest(args.manifest) for p in (s.spots, s.rois, s.image))]
              if args.manifest is not None else [args.spots, args.rois])
    check_outputs([args.out, volcano, args.signature_out], inputs)  # before the (long) fit
    samples = _samples(args, say)
    for s in samples.skipped:
        say(f"left out: {s}")
    if args.only_class:
        keep = (samples.samples["class"].astype(str) == args.only_class).to_numpy()
        if not keep.any():
            raise RoiScoreError(f"No ROI of class {args.only_class!r}.",
                                f"Use one of {sorted(set(samples.samples['class'].astype(str)))}.")
        samples = samples.subset(keep)
    unit = args.unit or ("patient" if "patient" in samples.samples.columns else "slide")
    unit = None if unit.lower() == "none" else unit
    say(f"{len(samples.counts)} samples x {samples.counts.shape[1]} genes; {args.group}: {args.test} vs "
        f"{args.reference}; units: {unit or 'every sample'}")
    result = differential_expression(samples, args.group, args.test, args.reference, unit=unit,
                                     pool=not args.no_pool, min_units=args.min_units,
                                     descriptive=args.descriptive, n_cpus=args.cpus)
    result.to_csv(args.out)
    png = write_volcano(result, volcano, n_labels=args.labels)
    n_sig = int((result.table["adjusted_p"] < 0.05).sum())
    say(f"{result.headline}; {len(result.metadata)} samples, units per group {result.units_per_group}: "
        f"{n_sig} genes with adjusted p < 0.05 -> {args.out}, {png}")
    if result.note:
        say(result.note)
    if args.signature_out is not None:
        sig = signature_from_de(result, n_up=args.top_up, n_down=args.top_down,
                                name=f"{args.test}_vs_{args.reference}".replace(" ", "_"))
        write_signature(sig, args.signature_out, result)
        say(f"signature {sig.name}: up {', '.join(sig.up) or '-'}; down {', '.join(sig.down) or '-'} "
            f"-> {args.signature_out}")
    say("Research use only.")
    return EXIT_OK
