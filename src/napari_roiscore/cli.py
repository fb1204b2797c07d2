"""``roiscore``: score ROIs headless, one slide or a whole cohort.

Subcommands
-----------
``roiscore score``     one slide (spots + ROIs [+ image]) -> ROI table (CSV/JSON);
                       or ``--session FILE`` to reproduce a saved session;
``roiscore batch``     a cohort manifest (CSV) -> one table, on Dask distributed;
``roiscore validate``  check inputs and list every problem found;
``roiscore demo``      the README demo (napari with the synthetic sample).

Exit codes
----------
0  success
1  invalid input (the message names the file and the fix) or validation problems
2  usage error (bad or missing command-line options)
3  batch finished, but at least one slide failed (see the failures table)

Progress and messages go to stderr; tables go to ``--out`` or to stdout.

This module is part of the pure core: it imports neither Qt nor napari
(``demo`` imports the GUI only when it is run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi, merge_same_named
from napari_roiscore.scoring.scorer import TABLE_COLUMNS, RoiScorer
from napari_roiscore.scoring.methods import METHODS, SpotScores, check_params
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature, load_signatures, parse_gene_list

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "BatchResult",
    "Slide",
    "SlideResult",
    "main",
    "read_manifest",
    "resolve_signature",
    "run_batch",
    "score_slide",
    "validate_inputs",
]

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

#: Columns the CLI adds to the scorer's table (the same as the widget's CSV export).
EXTRA_COLUMNS = ["method", "signature", "genes_used", "genes_missing", "marker_restriction"]


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------
class _Progress:
    """Messages on stderr (silenced by ``--quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"roiscore: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# signature and params
# ---------------------------------------------------------------------------
def resolve_signature(signature_file: str | Path | None = None, genes: str | None = None,
                      name: str | None = None) -> Signature:
    """The signature to score: from a file, from a gene list, or the example panel.

    Parameters
    ----------
    signature_file : path, optional
        GMT, YAML or JSON file (see :func:`~napari_roiscore.scoring.signature.load_signatures`).
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
            f"Use one of: {', '.join(s.name for s in sigs)}.",
        )
    if len(sigs) > 1:
        raise RoiScoreError(
            f"Signature file {str(signature_file)!r} holds {len(sigs)} signatures.",
            f"Choose one with --signature-name: {', '.join(repr(s.name) for s in sigs)} (sets sharing a "
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


def _usage_checked_params(ap: argparse.ArgumentParser, items: Sequence[str] | None, method: str) -> dict:
    """--param values for ``method``; a bad name or value is a usage error (exit 2)."""
    _check_method(method)
    try:
        return parse_params(items, method)
    except RoiScoreError as err:
        ap.error(str(err))
        raise  # pragma: no cover - ap.error exits


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise RoiScoreError(f"Unknown scoring method {method!r}.", f"Use one of {sorted(METHODS)}.")


# ---------------------------------------------------------------------------
# one slide
# ---------------------------------------------------------------------------
@dataclass
class SlideResult:
    """The ROI table of one slide and what went into it."""

    table: pd.DataFrame
    scores: SpotScores
    n_spots: int
    warnings: list[str] = field(default_factory=list)
    marker: dict | None = None
    n_marker_positive: int | None = None


def annotate(table: pd.DataFrame, scores: SpotScores, marker_label: str = "") -> pd.DataFrame:
    """Add method, signature, gene and marker columns (as the widget's CSV export does)."""
    out = table.copy()
    out["method"] = scores.method
    out["signature"] = scores.signature.label
    out["genes_used"] = ";".join(scores.match.used)
    out["genes_missing"] = ";".join(scores.match.missing)
    out["marker_restriction"] = marker_label
    return out


def _image_checks(img: Any, image_path: str | Path | None, spots_xy: np.ndarray | None,
                  rois: list[Roi] | None) -> Findings:
    """Do the spots and ROIs fall on the image?  (Problems: all spots or an
    ROI outside; warning: some spots outside.)"""
    f = Findings()
    h, w = img.shape_yx
    where = f"the image {str(image_path)!r} ({w} x {h} px)"
    if spots_xy is not None and len(spots_xy):
        x, y = spots_xy[:, 0], spots_xy[:, 1]
        outside = (x < 0) | (y < 0) | (x > w) | (y > h)
        if outside.all():
            f.problems.append(f"All {len(outside)} spots lie outside {where}. Fix: pair the spots with their "
                              "own image; spot coordinates must be its full-resolution pixels.")
        elif outside.any():
            f.warnings.append(f"{int(outside.sum())} of {len(outside)} spots lie outside {where}")
    for roi in rois or []:
        if roi.problem:
            continue
        x0, y0, x1, y1 = roi.geometry.bounds
        if x1 < 0 or y1 < 0 or x0 > w or y0 > h:
            f.problems.append(f"ROI {roi.name!r} lies entirely outside {where}. Fix: export the ROIs "
                              "from this slide, in full-resolution pixels.")
    return f


def _image_warnings(image_path: str | Path, spots_xy: np.ndarray, rois: list[Roi]) -> list[str]:
    """Open the image (lazily); what does not fall on it is worth a warning when scoring."""
    from napari_roiscore.readers.dispatch import read_image

    f = _image_checks(read_image(image_path), image_path, spots_xy, rois)
    return f.problems + f.warnings


def _bounds_text(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f} px"


def _placement_warnings(scorer: RoiScorer, rois: Sequence[Roi]) -> list[str]:
    """Warnings about where the spots are: placed on a made-up grid (no
    coordinates, e.g. GeoMx NGS without ROI coordinates), or in another frame
    than the ROIs (no ROI holds a spot centre)."""
    spots = scorer.spots
    out = []
    obs = spots.adata.obs
    if "has_coordinates" in obs and not np.asarray(obs["has_coordinates"], dtype=bool).all():
        out.append(f"spots {spots.provenance.get('path', '')!r} have no coordinates: they are placed on a "
                   "made-up grid (obs['has_coordinates'] is False), so ROIs drawn on an image do not select "
                   "real tissue positions")
    drawn = [r for r in rois if r.problem is None]
    if drawn and spots.n_spots and all(scorer.members(r, sort=False).size == 0 for r in drawn):
        xy = spots.xy
        b = np.array([r.geometry.bounds for r in drawn])
        out.append(f"no ROI holds any spot centre — probably not the same coordinate frame: spots span "
                   f"{_bounds_text(*xy.min(axis=0), *xy.max(axis=0))}, the ROIs "
                   f"{_bounds_text(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())} "
                   "(both must be full-resolution image pixels)")
    return out


def score_slide(spots: str | Path, rois: str | Path | list[Roi], signature: Signature,
                method: str = "mean_z", params: dict | None = None,
                image: str | Path | None = None, marker: dict | None = None) -> SlideResult:
    """Score the ROIs of one slide (what ``roiscore score`` and each batch task run).

    Parameters
    ----------
    spots : path
        ``.h5ad`` spot file or instrument folder (see :func:`~napari_roiscore.session.read_spots`).
    rois : path or list of Roi
        GeoJSON (QuPath) file, or ROIs already read.
    signature : Signature
    method : str
    params : dict, optional
        Method parameters.
    image : path, optional
        Multiplex image; opened lazily to check that spots and ROIs fall on it.
    marker : dict, optional
        Restrict scoring to marker-positive spots: ``channel`` (name or index),
        ``threshold`` (None: Otsu), ``min_fraction`` (0.1 = 10 % of the spot
        area); needs ``image``.  See :func:`~napari_roiscore.session.marker_restriction`.

    Raises
    ------
    RoiScoreError
        Any unreadable or invalid input.
    """
    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.session import marker_restriction, read_spots

    _check_method(method)
    if marker and image is None:
        raise RoiScoreError("The marker restriction needs the image (--image, or an image column).",
                            "Give the multiplex image the marker channel is in.")
    table_spots = read_spots(spots)
    roi_list = read_geojson(rois) if isinstance(rois, (str, Path)) else merge_same_named(rois)
    scorer = RoiScorer(table_spots)
    scores = scorer.spot_scores(signature, method, **(params or {}))
    spot_mask = settings = None
    if marker:
        spot_mask, settings = marker_restriction(image, table_spots, marker["channel"], marker.get("threshold"),
                                                 marker.get("min_fraction", 0.1), marker.get("level"))
    table = annotate(scorer.table(roi_list, scores, spot_mask=spot_mask), scores,
                     settings["label"] if settings else "")
    warnings = _placement_warnings(scorer, roi_list)
    if scores.match.missing:
        warnings.append(f"genes not in the data: {', '.join(scores.match.missing)} "
                        f"(scored with the {scores.match.n_used} present)")
    if scores.constant:
        warnings.append(f"genes without variation over the slide: {', '.join(scores.constant)}")
    if image is not None:
        warnings.extend(_image_warnings(image, table_spots.xy, roi_list))
    return SlideResult(table=table, scores=scores, n_spots=table_spots.n_spots, warnings=warnings,
                       marker=settings, n_marker_positive=None if spot_mask is None else int(spot_mask.sum()))


# ---------------------------------------------------------------------------
# tables out
# ---------------------------------------------------------------------------
def _records(df: pd.DataFrame) -> list[dict]:
    from napari_roiscore.session import table_to_records

    return table_to_records(df)


def table_text(df: pd.DataFrame, fmt: str) -> str:
    """CSV (floats written to round-trip exactly) or JSON records (NaN -> null)."""
    if fmt == "json":
        return json.dumps(_records(df), indent=1, allow_nan=False) + "\n"
    return df.to_csv(index=False)


def _format_for(path: Path | None) -> str:
    if path is None:
        return "csv"
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix == ".json":
        return "json"
    raise RoiScoreError(f"Output {str(path)!r}: unknown table format {suffix!r}.",
                        "Name the output *.csv or *.json.")


def write_table(df: pd.DataFrame, path: Path | None) -> None:
    """Write ``df`` to ``path`` (format from the extension) or to stdout."""
    text = table_text(df, _format_for(path))
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        atomic_write_text(path, text)
    except OSError as err:
        raise RoiScoreError(f"Cannot write {str(path)!r}: {err}.", "Choose a folder you can write to.") from None


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) and np.isfinite(v) else ("" if isinstance(v, float) else str(v))
                 for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path: Path, result: SlideResult, inputs: dict[str, Path | None]) -> None:
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
    atomic_write_text(path, "\n".join(lines))


# ---------------------------------------------------------------------------
# cohort manifest and batch
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Slide:
    """One manifest row, with absolute paths."""

    slide_id: str
    spots: Path
    rois: Path
    image: Path | None = None


MANIFEST_REQUIRED = ("slide_id", "spots", "rois")


def read_manifest(path: str | Path) -> list[Slide]:
    """Read a cohort manifest (CSV with ``slide_id, spots, rois[, image]``).

    Relative paths are relative to the manifest's folder.  Missing data files
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
    for i, row in enumerate(df.itertuples(index=False), start=2):  # line 1 is the header
        rec = row._asdict()
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
        slides.append(Slide(
            slide_id=sid,
            spots=(base / str(rec["spots"]).strip()).resolve(),
            rois=(base / str(rec["rois"]).strip()).resolve(),
            image=(base / image).resolve() if image else None,
        ))
    if problems:
        raise RoiScoreError(f"Manifest {src!r}: " + "; ".join(problems) + ".",
                            "Give every row a unique slide_id and both paths.")
    return slides


def _score_slide_task(slide: Slide, signature: Signature, method: str, params: dict,
                      marker: dict | None = None) -> dict:
    """One Dask task: score one slide; never raises (failures are data)."""
    import dask

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        # one slide per task and one thread per worker: lazy image reads (marker masks)
        # run right here, not as nested tasks on the cluster
        with dask.config.set(scheduler="synchronous"):
            res = score_slide(slide.spots, slide.rois, signature, method, params, image=slide.image,
                              marker=marker)
    except Exception as err:  # noqa: BLE001 - one slide's failure must not stop the cohort
        msg = str(err) if isinstance(err, RoiScoreError) else f"{type(err).__name__}: {err}"
        return {"slide_id": slide.slide_id, "ok": False, "error": msg, "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - c0, "worker": os.getpid()}
    table = res.table.copy()
    table.insert(0, "slide_id", slide.slide_id)
    return {"slide_id": slide.slide_id, "ok": True, "table": table, "warnings": res.warnings,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "worker": os.getpid()}


@dataclass
class BatchResult:
    """A cohort run: one table, the failures, and timings.

    Attributes
    ----------
    table : DataFrame
        ROI rows of every slide that succeeded, ``slide_id`` first.
    failures : DataFrame
        ``slide_id, spots, rois, error`` of every slide that failed.
    seconds : float
        Wall time of the run.
    workers_used : int
        Worker processes that ran at least one slide.
    task_seconds : dict
        slide_id -> seconds spent inside its task (wall clock).
    task_cpu_seconds : dict
        slide_id -> CPU seconds its task used.
    """

    table: pd.DataFrame
    failures: pd.DataFrame
    seconds: float
    workers_used: int = 0
    task_seconds: dict = field(default_factory=dict)
    task_cpu_seconds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failures.empty


def run_batch(slides: Sequence[Slide], signature: Signature, client: Any, method: str = "mean_z",
              params: dict | None = None, progress: Callable[[str], None] | None = None,
              marker: dict | None = None) -> BatchResult:
    """Score every slide on a Dask ``client``: one task per slide.

    Failed slides (bad files, crashed workers) are collected in
    ``failures`` while the other slides complete.  Rows come out in manifest
    order, whatever order the tasks finish in.  ``marker`` (see
    :func:`score_slide`) applies to every slide, each with its own image.
    """
    from distributed import as_completed

    _check_method(method)
    params = dict(params or {})
    progress = progress or (lambda _m: None)
    t0 = time.perf_counter()
    token = uuid.uuid4().hex[:8]
    futures = {
        client.submit(_score_slide_task, s, signature, method, params, marker,
                      key=f"roiscore-slide-{token}-{i}", pure=False, retries=0): s
        for i, s in enumerate(slides)
    }
    results: dict[str, dict] = {}
    n = len(slides)
    for k, fut in enumerate(as_completed(futures), start=1):
        slide = futures[fut]
        try:
            res = fut.result()
        except Exception as err:  # noqa: BLE001 - e.g. KilledWorker: the slide fails, the cohort goes on
            res = {"slide_id": slide.slide_id, "ok": False, "error": f"{type(err).__name__}: {err}",
                   "seconds": float("nan"), "cpu_seconds": float("nan"), "worker": None}
        results[slide.slide_id] = res
        if res["ok"]:
            progress(f"[{k}/{n}] {slide.slide_id}: {len(res['table'])} ROI(s) scored "
                     f"in {res['seconds']:.1f} s")
            for w in res.get("warnings", []):
                progress(f"    {slide.slide_id}: warning: {w}")
        else:
            progress(f"[{k}/{n}] {slide.slide_id}: FAILED: {res['error']}")
    tables = [results[s.slide_id]["table"] for s in slides if results[s.slide_id]["ok"]]
    table = (pd.concat(tables, ignore_index=True) if tables
             else pd.DataFrame(columns=["slide_id", *TABLE_COLUMNS, *EXTRA_COLUMNS]))
    failures = pd.DataFrame(
        [{"slide_id": s.slide_id, "spots": str(s.spots), "rois": str(s.rois),
          "error": results[s.slide_id]["error"]} for s in slides if not results[s.slide_id]["ok"]],
        columns=["slide_id", "spots", "rois", "error"],
    )
    workers = {r.get("worker") for r in results.values() if r.get("worker") is not None}
    return BatchResult(table=table, failures=failures, seconds=time.perf_counter() - t0,
                       workers_used=len(workers),
                       task_seconds={k: r["seconds"] for k, r in results.items()},
                       task_cpu_seconds={k: r["cpu_seconds"] for k, r in results.items()})


def quiet_dask_logs() -> None:
    """Keep Dask's own INFO chatter off stderr (progress lines are ours)."""
    for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"] + ["distributed"]:
        logging.getLogger(name).setLevel(logging.ERROR)


class DaskClient:
    """Context manager: a Dask client on ``scheduler`` or on a new LocalCluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); default: start a
        LocalCluster of ``workers`` processes with one thread each.
    workers : int, optional
        Number of local worker processes (default: number of CPUs).
    timeout : str
        How long to try reaching ``scheduler``.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 timeout: str = "20s") -> None:
        self.scheduler = scheduler
        self.timeout = timeout
        self.workers = workers
        self.cluster = None
        self.client = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as err:
                raise RoiScoreError(f"Cannot reach the Dask scheduler at {self.scheduler!r} ({err}).",
                                    "Check the address (tcp://host:8786) and that the scheduler runs.") from None
            return self.client
        n = self.workers or os.cpu_count() or 1
        with warnings.catch_warnings():  # "port 8787 in use": another cluster's HTTP server; harmless
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
        quiet_dask_logs()
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc) -> None:
        quiet_dask_logs()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
@dataclass
class Findings:
    """Problems (make the input unusable) and warnings (worth a look)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Findings, prefix: str = "") -> None:
        self.problems += [prefix + p for p in other.problems]
        self.warnings += [prefix + w for w in other.warnings]


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
    from napari_roiscore.images.markers import find_channel
    from napari_roiscore.readers.dispatch import read_image
    from napari_roiscore.session import read_spots
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
        f.warnings += [f"{str(spots)!r}: {w}" for w in _placement_warnings(scorer, roi_list or [])]
        for r in roi_list or []:
            if not r.problem and scorer.members(r).size == 0:
                f.warnings.append(f"ROI {r.name!r} ({rois}) holds no spot centre")
    if img is not None:
        f.extend(_image_checks(img, image, table.xy if table is not None else None, roi_list))
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
        from napari_roiscore.images.markers import find_channel
        from napari_roiscore.readers.dispatch import read_image

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


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_signature_options(p: argparse.ArgumentParser) -> None:
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


def _add_marker_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("marker restriction (as the widget's Markers tab; needs the image)")
    g.add_argument("--marker", metavar="CHANNEL",
                   help="score only spots that are marker-positive in this channel (name, role or index)")
    g.add_argument("--marker-threshold", type=float, metavar="X",
                   help="intensity above which a pixel is positive (default: Otsu)")
    g.add_argument("--min-positive", type=float, default=None, metavar="PERCENT",
                   help="minimum marker-positive share of a spot's area, in %% (default 10)")


def _marker_from_args(args: argparse.Namespace) -> dict | None:
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


def build_parser() -> argparse.ArgumentParser:
    """The ``roiscore`` argument parser."""
    ap = argparse.ArgumentParser(
        prog="roiscore",
        description="Gene-signature scores per ROI on spatial-transcriptomics slides, headless.",
        epilog=EXIT_CODES_HELP, formatter_class=_Formatter,
    )
    from napari_roiscore import __version__

    ap.add_argument("--version", action="version", version=f"napari-roiscore {__version__}")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sc = sub.add_parser(
        "score", help="score the ROIs of one slide", formatter_class=_Formatter, epilog=EXIT_CODES_HELP,
        description="Score the ROIs of one slide and write the ROI table.\n\n"
                    "  roiscore score --spots S.h5ad --rois R.geojson --genes CD68,CD163 --out table.csv\n"
                    "  roiscore score --session study.roiscore.json --out table.csv",
    )
    sc.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                    help="no progress messages on stderr")
    inp = sc.add_argument_group("inputs (either --spots and --rois, or --session)")
    inp.add_argument("--spots", type=Path, metavar="FILE", help="spots with raw counts (.h5ad)")
    inp.add_argument("--rois", type=Path, metavar="FILE", help="ROIs (QuPath GeoJSON)")
    inp.add_argument("--image", type=Path, metavar="FILE", help="multiplex image (OME-TIFF), checked against spots and ROIs")
    inp.add_argument("--session", type=Path, metavar="FILE",
                     help="a saved session: reproduce its scores (checksums verified)")
    _add_signature_options(sc)
    _add_marker_options(sc)
    out = sc.add_argument_group("outputs")
    out.add_argument("--out", type=Path, metavar="FILE", help="ROI table, .csv or .json (default: CSV on stdout)")
    out.add_argument("--report", type=Path, metavar="FILE", help="also write a Markdown report")
    out.add_argument("--save-session", type=Path, metavar="FILE",
                     help="also save a session file (data checksums, ROIs, signature, method, scores)")

    bt = sub.add_parser(
        "batch", help="score a cohort (manifest CSV) on Dask distributed", formatter_class=_Formatter,
        epilog=EXIT_CODES_HELP,
        description="Score every slide of a cohort manifest, one Dask task per slide.\n\n"
                    "The manifest is a CSV with columns slide_id, spots, rois and optionally image;\n"
                    "relative paths are relative to the manifest. A slide that fails is reported\n"
                    "(stderr and a failures table) while the others complete; exit code 3 then.\n"
                    "Workers must see the data paths (shared filesystem) when --scheduler is used.",
    )
    bt.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                    help="no progress messages on stderr")
    bt.add_argument("manifest", type=Path, help="cohort manifest (CSV)")
    bt.add_argument("--out", type=Path, metavar="FILE", required=True, help="cohort table, .csv or .json")
    bt.add_argument("--failures", type=Path, metavar="FILE",
                    help="failures table (default: OUT with suffix .failures.csv, written when a slide fails)")
    dk = bt.add_argument_group("Dask")
    dk.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask scheduler (tcp://host:8786)")
    dk.add_argument("--workers", type=int, metavar="N",
                    help="worker processes of the local cluster (default: number of CPUs)")
    _add_signature_options(bt)
    _add_marker_options(bt)

    va = sub.add_parser(
        "validate", help="check inputs and list every problem", formatter_class=_Formatter,
        epilog=EXIT_CODES_HELP,
        description="Check inputs without scoring and list every problem found (exit 1 if any).\n\n"
                    "  roiscore validate --spots S.h5ad --rois R.geojson --image I.ome.tif\n"
                    "  roiscore validate --manifest cohort.csv\n"
                    "  roiscore validate --session study.roiscore.json",
    )
    va.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                    help="no summary on stderr")
    va.add_argument("--spots", type=Path, metavar="FILE")
    va.add_argument("--rois", type=Path, metavar="FILE")
    va.add_argument("--image", type=Path, metavar="FILE")
    va.add_argument("--manifest", type=Path, metavar="FILE", help="check every slide of a cohort manifest")
    va.add_argument("--session", type=Path, metavar="FILE", help="check a session file and its data")
    _add_signature_options(va)
    _add_marker_options(va)

    de = sub.add_parser("demo", help="the README demo: napari with the synthetic sample and ROI scores",
                        formatter_class=_Formatter, epilog=EXIT_CODES_HELP,
                        description="Open napari with the synthetic sample, its ROIs and the ROI scores widget.\n"
                                    "Without a display (or with --no-window) it writes roi_scores.csv and\n"
                                    "screenshot.png into --out and exits.")
    de.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)")
    de.add_argument("--no-window", action="store_true", help="write screenshot and CSV, then exit")
    for p in (sc, bt, va, de):
        p.set_defaults(subparser=p)  # usage errors of a subcommand print its own usage
    return ap


def _signature_from_args(args: argparse.Namespace) -> Signature:
    return resolve_signature(args.signature, args.genes, args.signature_name)


def _cmd_score(args: argparse.Namespace, say: _Progress, ap: argparse.ArgumentParser) -> int:
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
    _format_for(args.out)  # fail before the work
    signature = _signature_from_args(args)
    params = _usage_checked_params(ap, args.param, args.method)
    marker = _marker_from_args(args)
    say(f"scoring {args.spots.name} with {signature.label} ({args.method})")
    t0 = time.perf_counter()
    res = score_slide(args.spots, args.rois, signature, args.method, params, image=args.image, marker=marker)
    if res.marker:
        say(f"marker restriction: {res.n_marker_positive} of {res.n_spots} spots pass: {res.marker['label']}")
    for w in res.warnings:
        say(f"warning: {w}")
    write_table(res.table, args.out)
    ok = int((res.table["status"] == "ok").sum())
    say(f"{len(res.table)} ROI(s), {ok} scored, {res.n_spots} spots, {time.perf_counter() - t0:.1f} s"
        + (f" -> {args.out}" if args.out else ""))
    if args.report:
        write_report(args.report, res, {"spots": args.spots, "rois": args.rois, "image": args.image})
        say(f"report -> {args.report}")
    if args.save_session:
        from napari_roiscore.session import save_session

        save_session(args.save_session, spots=args.spots, rois=args.rois, signature=signature,
                     method=args.method, params=params, image=args.image, marker=res.marker,
                     results=res.table[TABLE_COLUMNS])
        say(f"session -> {args.save_session}")
    return EXIT_OK


def _score_from_session(args: argparse.Namespace, say: _Progress) -> int:
    from napari_roiscore.session import load_session, same_numbers, session_scorer

    _format_for(args.out)
    s = load_session(args.session)
    say(f"session {args.session.name}: checksums verified ({len(s.data_files)} file(s))")
    for d in s.version_differences():
        say(f"warning: software differs from the session's: {d}")
    t0 = time.perf_counter()
    scorer, scores, spot_mask = session_scorer(s)
    label = ""
    if s.marker:
        label = str(s.marker.get("label") or f"{s.marker['channel']}+ (> {s.marker.get('threshold')})")
        say(f"marker restriction: {int(spot_mask.sum())} of {len(spot_mask)} spots pass: {label}")
    table = annotate(scorer.table(s.rois, scores, spot_mask=spot_mask), scores, label)
    for w in _placement_warnings(scorer, s.rois):
        say(f"warning: {w}")
    if s.image is not None:
        for w in _image_warnings(s.image.path, scorer.spots.xy, s.rois):
            say(f"warning: {w}")
    if s.results is not None:
        say("scores identical to those stored in the session" if same_numbers(table, s.results)
            else "warning: scores differ from those stored in the session")
    write_table(table, args.out)
    say(f"{len(table)} ROI(s), {time.perf_counter() - t0:.1f} s" + (f" -> {args.out}" if args.out else ""))
    if args.report:
        res = SlideResult(table=table, scores=scores, n_spots=scorer.spots.n_spots, marker=s.marker,
                          n_marker_positive=None if spot_mask is None else int(spot_mask.sum()))
        write_report(args.report, res, {"spots": s.spots.path, "image": s.image.path if s.image else None})
        say(f"report -> {args.report}")
    return EXIT_OK


def _cmd_batch(args: argparse.Namespace, say: _Progress, ap: argparse.ArgumentParser) -> int:
    if args.workers is not None and args.workers < 1:
        ap.error("--workers must be at least 1")
    if args.scheduler and args.workers is not None:
        ap.error("--workers sets up a local cluster; it cannot be combined with --scheduler")
    _format_for(args.out)
    slides = read_manifest(args.manifest)
    signature = _signature_from_args(args)
    params = _usage_checked_params(ap, args.param, args.method)
    marker = _marker_from_args(args)
    workers = args.workers or min(os.cpu_count() or 1, len(slides))
    where = args.scheduler or f"a local cluster of {workers} worker process(es)"
    say(f"{len(slides)} slide(s), {signature.label} ({args.method}), on {where}")
    with DaskClient(args.scheduler, workers) as client:
        result = run_batch(slides, signature, client, args.method, params, progress=say, marker=marker)
    write_table(result.table, args.out)
    n_fail = len(result.failures)
    say(f"{len(slides) - n_fail}/{len(slides)} slide(s) scored in {result.seconds:.1f} s -> {args.out}")
    fpath = args.failures or args.out.with_name(args.out.stem + ".failures.csv")
    if not n_fail and args.failures is None and fpath.is_file():
        fpath.unlink()  # a failures table left by an earlier run would mislead
        say(f"removed the failures table of an earlier run ({fpath})")
    if n_fail:
        write_table(result.failures, fpath)
        say(f"{n_fail} slide(s) failed (listed in {fpath}):")
        for r in result.failures.itertuples(index=False):
            say(f"  {r.slide_id}: {r.error}")
        return EXIT_PARTIAL
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, say: _Progress, ap: argparse.ArgumentParser) -> int:
    if not any(v is not None for v in (args.spots, args.rois, args.image, args.manifest, args.session,
                                       args.signature, args.genes)):
        ap.error("nothing to validate: give --spots/--rois/--image, --manifest, --session or a signature")
    f = Findings()
    signature = None
    if args.signature is not None or args.genes is not None or args.spots is not None or args.manifest is not None:
        try:
            signature = _signature_from_args(args)
        except RoiScoreError as err:
            f.problems.append(str(err))
    try:
        parse_params(args.param, args.method if args.method in METHODS else None)
    except RoiScoreError as err:
        f.problems.append(str(err))
    marker = None
    try:
        marker = _marker_from_args(args)
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


def _cmd_demo(args: argparse.Namespace, say: _Progress, ap: argparse.ArgumentParser) -> int:
    from napari_roiscore._qt.demo import main as demo_main  # the GUI, imported only here

    argv = ["--out", str(args.out)] + (["--no-window"] if args.no_window else [])
    return int(demo_main(argv) or 0)


COMMANDS = {"score": _cmd_score, "batch": _cmd_batch, "validate": _cmd_validate, "demo": _cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``roiscore``; returns the exit code (see module docstring).

    Usage errors exit through argparse with code 2 (``SystemExit``).
    """
    ap = build_parser()
    args = ap.parse_args(argv)
    say = _Progress(bool(getattr(args, "quiet", False)))

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"roiscore: warning: {message}", file=sys.stderr, flush=True)  # not Python's file:line form

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return COMMANDS[args.command](args, say, args.subparser)
    except RoiScoreError as err:
        print(f"roiscore: error: {err}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("roiscore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the importable module, so that Dask workers find the task functions
    # as napari_roiscore.cli.* rather than as pickled __main__ code.
    from napari_roiscore.cli import main as _main

    sys.exit(_main())
