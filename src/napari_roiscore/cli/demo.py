"""``roiscore demo``: the README demo (napari with the synthetic sample and ROI scores).

The GUI is imported only when the command runs: this module stays pure core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_roiscore.cli.common import Progress, new_command


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-parser to ``sub``."""
    de = new_command(sub, "demo", help="the README demo: napari with the synthetic sample and ROI scores",
                     description="Open napari with the synthetic sample, its ROIs and the ROI scores widget.\n"
                                 "Without a display (or with --no-window) it writes roi_scores.csv and\n"
                                 "screenshot.png into --out and exits.")
    de.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)")
    de.add_argument("--no-window", action="store_true", help="write screenshot and CSV, then exit")
    return de


def run(args: argparse.Namespace, say: Progress, ap: argparse.ArgumentParser) -> int:
    """Run ``roiscore demo`` (imports the GUI)."""
    from napari_roiscore._qt.demo import main as demo_main  # the GUI, imported only here

    argv = ["--out", str(args.out)] + (["--no-window"] if args.no_window else [])
    return int(demo_main(argv) or 0)
