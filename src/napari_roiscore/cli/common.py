"""What the ``roiscore`` sub-commands share: exit codes, progress messages,
signature/method/marker options, and writing tables.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.outputs import limited_list, write_all
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.analysis.slide_scoring import check_method
from napari_roiscore.scoring.methods import METHODS, check_params
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature, parse_gene_list
from napari_roiscore.scoring.signature_files import load_signatures

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

EXIT_CODES_HELP = """exit codes:
  0  success
  1  invalid input (message names the file and the fix) or validation problems
  2  usage error (bad or missing options)
  3  batch finished but at least one slide failed (see the failures table)
"""


class Progress:
    """Messages on stderr (silenced by ``--quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"roiscore: {msg}", file=sys.stderr, flush=True)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text laid out as written (examples keep their lines)."""


def resolve_signature(signature_file: str | Path | None = None, genes: str | None = None,
                      name: str | None = None) -> Signature:
    """The signature to score: from a file, from a gene list, or the example panel.

    Parameters
    ----------
    signature_file : path, optional
        GMT, YAML or JSON file (see :func:`~napari_roiscore.scoring.signature_files.load_signatures`).
    genes : str, optional
        Gene list as typed, e.g. ``"CD68,CD163,STAB1"``.
    name : str, optional
        Which signature of a file holding several.

    Raises
    ------
    RoiScoreError
        Unreadable file, unknown name, or a file with several signatures and no name.
    """
    if signature_file is not None and genes is not None:
        raise RoiScoreError("Give either a signature file or a gene list, not both.",
                            "Drop --signature or --genes.")
    if genes is not None:
        up = parse_gene_list(genes)
        if [g.upper() for g in up] == [g.upper() for g in EXAMPLE_PANEL.up]:
            return EXAMPLE_PANEL
        return Signature(name=name or "custom signature", up=tuple(up))
    if signature_file is None:
        if name is not None:  # silently scoring the example panel would look like the named set
            raise RoiScoreError(f"A signature name ({name!r}) but no signature file to take it from.",
                                "Add --signature FILE (GMT/YAML/JSON), or --genes to name a typed list.")
        return EXAMPLE_PANEL
    sigs = load_signatures(signature_file)
    if name is not None:
        for s in sigs:
            if s.name == name:
                return s
        raise RoiScoreError(
            f"Signature file {str(signature_file)!r} has no signature named {name!r}.",
            f"Use one of: {limited_list([s.name for s in sigs], 10, quote=False)}.",
        )
    if len(sigs) > 1:
        raise RoiScoreError(
            f"Signature file {str(signature_file)!r} holds {len(sigs)} signatures.",
            f"Choose one with --signature-name: {limited_list([s.name for s in sigs], 10)} (sets sharing a "
            "name are numbered 'NAME (2)', ... in file order).",
        )
    return sigs[0]


def parse_params(items: Sequence[str] | None, method: str | None = None) -> dict[str, Any]:
    """``["max_rank=1500", "center=true"]`` -> ``{"max_rank": 1500, "center": True}``.

    With ``method``, names and values are checked against the method's
    parameters (:func:`~napari_roiscore.scoring.methods.check_params`: unknown names
    are refused with the valid ones listed; booleans accept
    true/false/yes/no/1/0 in any case).
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RoiScoreError(f"Method parameter {item!r} is not KEY=VALUE.",
                                "Write e.g. --param max_rank=1500.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return check_params(method, out) if method is not None else out


def usage_checked_params(ap: argparse.ArgumentParser, items: Sequence[str] | None, method: str) -> dict:
    """--param values for ``method``; a bad name or value is a usage error (exit 2)."""
    check_method(method)
    try:
        return parse_params(items, method)
    except RoiScoreError as err:
        ap.error(str(err))
        raise  # pragma: no cover - ap.error exits


def signature_from_args(args: argparse.Namespace) -> Signature:
    return resolve_signature(args.signature, args.genes, args.signature_name)


def new_command(sub: argparse._SubParsersAction, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command's parser: its description laid out as written, the exit codes below."""
    return sub.add_parser(name, help=help, description=description, formatter_class=HelpFormatter,
                          epilog=EXIT_CODES_HELP)


def add_quiet_option(p: argparse.ArgumentParser, help: str = "no progress messages on stderr") -> None:
    """``-q/--quiet`` after the sub-command too (``roiscore score -q ...``)."""
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=help)


def add_signature_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("signature and method")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--signature", type=Path, metavar="FILE",
                   help="signature file (.gmt, .yaml, .json); default: the example macrophage panel")
    x.add_argument("--genes", metavar="LIST", help='gene list, e.g. "CD68,CD163,STAB1"')
    g.add_argument("--signature-name", metavar="NAME", help="which signature of a file holding several")
    g.add_argument("--method", default="mean_z", metavar="METHOD",
                   help=f"scoring method: {', '.join(sorted(METHODS))} (default: mean_z)")
    g.add_argument("--param", action="append", metavar="KEY=VALUE", default=[],
                   help="method parameter (repeatable; VALUE parsed as JSON when possible)")


def add_marker_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("marker restriction (as the widget's Markers tab; needs the image)")
    g.add_argument("--marker", metavar="CHANNEL",
                   help="score only spots that are marker-positive in this channel (name, role or index)")
    g.add_argument("--marker-threshold", type=float, metavar="X",
                   help="intensity above which a pixel is positive (default: Otsu)")
    g.add_argument("--min-positive", type=float, default=None, metavar="PERCENT",
                   help="minimum marker-positive share of a spot's area, in %% (default 10)")


def marker_from_args(args: argparse.Namespace) -> dict | None:
    if getattr(args, "marker", None) is None:
        given = [o for o, v in (("--min-positive", getattr(args, "min_positive", None)),
                                ("--marker-threshold", getattr(args, "marker_threshold", None))) if v is not None]
        if given:  # silently scoring all spots would look like a restricted result
            raise RoiScoreError(f"{' and '.join(given)} without --marker: no marker channel to restrict by.",
                                "Add --marker CHANNEL (e.g. --marker CD68) or drop the option.")
        return None
    channel: int | str = int(args.marker) if args.marker.isdigit() else args.marker
    min_positive = 10.0 if args.min_positive is None else args.min_positive
    if not 0 <= min_positive <= 100:
        raise RoiScoreError(f"--min-positive {min_positive:g} is not a percentage.",
                            "Give a value between 0 and 100, e.g. 10.")
    return {"channel": channel, "threshold": args.marker_threshold, "min_fraction": min_positive / 100.0}


def _records(df: pd.DataFrame) -> list[dict]:
    from napari_roiscore.session import table_to_records

    return table_to_records(df)


def table_text(df: pd.DataFrame, fmt: str) -> str:
    """CSV (floats written to round-trip exactly) or JSON records (NaN -> null)."""
    if fmt == "json":
        return json.dumps(_records(df), indent=1, allow_nan=False) + "\n"
    from napari_roiscore.analysis.export import escape_formulas

    return escape_formulas(df).to_csv(index=False)  # an ROI named "=..." is text in a spreadsheet


def output_format(path: Path | None) -> str:
    if path is None:
        return "csv"
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix == ".json":
        return "json"
    raise RoiScoreError(f"Output {str(path)!r}: unknown table format {suffix!r}.",
                        "Name the output *.csv or *.json.")


def write_table(df: pd.DataFrame, path: Path | None, inputs: Sequence[Path | None] = ()) -> None:
    """Write ``df`` to ``path`` (format from the extension; never over one of ``inputs``) or to stdout."""
    text = table_text(df, output_format(path))
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        atomic_write_text(path, text, inputs)
    except OSError as err:
        raise RoiScoreError(f"Cannot write {str(path)!r}: {err}.", "Choose a folder you can write to.") from None


def write_outputs(table: pd.DataFrame, out: Path | None, others: list[tuple[Path, str]],
                  inputs: Sequence[Path | None]) -> None:
    """The table (to ``out``, else stdout) and further text outputs: all or nothing, none over an input."""
    texts = ([(out, table_text(table, output_format(out)))] if out is not None else []) + list(others)
    try:
        write_all([(p, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8")) for p, text in texts], inputs)
    except OSError as err:
        raise RoiScoreError(f"Cannot write the outputs ({err}); none was written.",
                            "Choose a folder you can write to.") from None
    if out is None:
        write_table(table, None)
