"""``roiscore``: score ROIs headless, one slide or a whole cohort.

Subcommands
-----------
``roiscore score``     one slide (spots + ROIs [+ image]) -> ROI table (CSV/JSON);
                       or ``--session FILE`` to reproduce a saved session;
``roiscore batch``     a cohort manifest (CSV) -> one table, on Dask distributed;
``roiscore de``        differential expression between ROI groups -> CSV + volcano PNG;
``roiscore validate``  check inputs and list every problem found;
``roiscore demo``      the README demo (napari with the synthetic sample).

Exit codes
----------
0  success
1  invalid input (the message names the file and the fix) or validation problems
2  usage error (bad or missing command-line options)
3  batch finished, but at least one slide failed (see the failures table)

Progress and messages go to stderr; tables go to ``--out`` or to stdout.

Modules: :mod:`~napari_roiscore.cli.common` (exit codes, shared options,
writing tables), :mod:`~napari_roiscore.analysis.slide_scoring` (scoring one slide, in the core), and
one module per command: ``score``, ``batch``, ``de``, ``validate``, ``demo``.

This module is part of the pure core: it imports neither Qt nor napari
(``demo`` imports the GUI only when it is run).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from napari_roiscore.cli import batch, de, demo, score, validate
from napari_roiscore.cli.batch import BatchResult, DaskClient, Slide, quiet_dask_logs, read_manifest, run_batch
from napari_roiscore.cli.common import (
    EXIT_CODES_HELP,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    HelpFormatter,
    Progress,
    resolve_signature,
)
from napari_roiscore.analysis.slide_scoring import SlideResult, score_slide
from napari_roiscore.cli.validate import validate_inputs
from napari_roiscore.errors import RoiScoreError

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "BatchResult",
    "DaskClient",
    "Slide",
    "SlideResult",
    "build_parser",
    "main",
    "quiet_dask_logs",
    "read_manifest",
    "resolve_signature",
    "run_batch",
    "score_slide",
    "validate_inputs",
]

#: Sub-command name -> its module (each has ``add_parser(sub)`` and ``run(args, say, ap)``).
COMMANDS = {"score": score, "batch": batch, "de": de, "validate": validate, "demo": demo}


def build_parser() -> argparse.ArgumentParser:
    """The ``roiscore`` argument parser: global options and one sub-parser per command."""
    ap = argparse.ArgumentParser(
        prog="roiscore",
        description="Gene-signature scores per ROI on spatial-transcriptomics slides, headless.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter,
    )
    from napari_roiscore import __version__

    ap.add_argument("--version", action="version", version=f"napari-roiscore {__version__}")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS.values():
        p = command.add_parser(sub)
        p.set_defaults(subparser=p)  # usage errors of a subcommand print its own usage
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``roiscore``; returns the exit code (see module docstring).

    Usage errors exit through argparse with code 2 (``SystemExit``).
    """
    ap = build_parser()
    args = ap.parse_args(argv)
    say = Progress(bool(getattr(args, "quiet", False)))

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"roiscore: warning: {message}", file=sys.stderr, flush=True)  # not Python's file:line form

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return COMMANDS[args.command].run(args, say, args.subparser)
    except RoiScoreError as err:
        print(f"roiscore: error: {err}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("roiscore: interrupted", file=sys.stderr)
        return 130
