"""``roiscore batch``: a cohort manifest (CSV) -> one ROI table, one Dask task per slide.

Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from napari_roiscore.cli.common import EXIT_OK, EXIT_PARTIAL, Progress, add_marker_options, add_quiet_option
from napari_roiscore.cli.common import add_signature_options, check_method, marker_from_args, new_command
from napari_roiscore.cli.common import output_format, signature_from_args, usage_checked_params, write_table
from napari_roiscore.analysis.manifest import Slide, read_manifest
from napari_roiscore.analysis.manifest import validate_batch_table, with_cohort_columns
from napari_roiscore.cli.cohort import add_cohort_options
from napari_roiscore.cli.cohort import write_cohort_section
from napari_roiscore.analysis.slide_scoring import score_slide
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import check_outputs
from napari_roiscore.scoring.scorer import ANNOTATION_COLUMNS, TABLE_COLUMNS
from napari_roiscore.scoring.signature import Signature


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
              marker: dict | None = None, slide_timeout: float | None = None) -> BatchResult:
    """Score every slide on a Dask ``client``: one task per slide.

    Failed slides (bad files, crashed workers, and slides still running
    ``slide_timeout`` seconds after a worker started them) are collected in
    ``failures`` while the other slides complete.  Rows come out in manifest
    order, whatever order the tasks finish in.  ``marker`` (see
    :func:`score_slide`) applies to every slide, each with its own image.
    """
    from distributed import wait

    check_method(method)
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

    def record(slide: Slide, res: dict) -> None:
        results[slide.slide_id] = res
        k = len(results)
        if res["ok"]:
            progress(f"[{k}/{n}] {slide.slide_id}: {len(res['table'])} ROI(s) scored "
                     f"in {res['seconds']:.1f} s")
            for w in res.get("warnings", []):
                progress(f"    {slide.slide_id}: warning: {w}")
        else:
            progress(f"[{k}/{n}] {slide.slide_id}: FAILED: {res['error']}")

    def failed(slide: Slide, error: str) -> dict:
        return {"slide_id": slide.slide_id, "ok": False, "error": error, "seconds": float("nan"),
                "cpu_seconds": float("nan"), "worker": None}

    pending, started = set(futures), {}
    while pending:
        try:
            done = wait(pending, timeout=0.5 if slide_timeout else None, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        for fut in done:
            pending.discard(fut)
            try:
                res = fut.result()
            except Exception as err:  # noqa: BLE001 - e.g. KilledWorker: the slide fails, the cohort goes on
                res = failed(futures[fut], f"{type(err).__name__}: {err}")
            record(futures[fut], res)
        if slide_timeout and pending:  # a slide's clock starts when a worker starts it
            now = time.monotonic()
            running = {str(key) for keys in client.processing().values() for key in keys}
            for fut in list(pending):
                if str(fut.key) in running:
                    started.setdefault(fut.key, now)
                if fut.key in started and now - started[fut.key] > slide_timeout:
                    fut.cancel()
                    pending.discard(fut)
                    record(futures[fut], failed(futures[fut], f"timed out: still running after {slide_timeout:g} s "
                                                              "(--slide-timeout)"))
    tables = [results[s.slide_id]["table"] for s in slides if results[s.slide_id]["ok"]]
    table = (pd.concat(tables, ignore_index=True) if tables
             else pd.DataFrame(columns=["slide_id", *TABLE_COLUMNS, *ANNOTATION_COLUMNS]))
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


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``batch`` sub-parser to ``sub``."""
    bt = new_command(
        sub, "batch", help="score a cohort (manifest CSV) on Dask distributed",
        description="Score every slide of a cohort manifest, one Dask task per slide.\n\n"
                    "The manifest is a CSV with columns slide_id, spots, rois and optionally image;\n"
                    "relative paths are relative to the manifest. A slide that fails is reported\n"
                    "(stderr and a failures table) while the others complete; exit code 3 then.\n"
                    "Optional columns response and patient add a cohort validation (per-patient\n"
                    "tumour/stroma scores, ROC AUC with bootstrap CI, Mann-Whitney p; CSVs and a\n"
                    "figure next to --out; research use only); an unusable response column (unknown\n"
                    "values, one class only, a patient both) stops the run before any slide is scored.\n"
                    "Workers must see the data paths (shared filesystem) when --scheduler is used.",
    )
    add_quiet_option(bt)
    bt.add_argument("manifest", type=Path, help="cohort manifest (CSV)")
    bt.add_argument("--out", type=Path, metavar="FILE", required=True, help="cohort table, .csv or .json")
    bt.add_argument("--slide-timeout", type=float, metavar="SECONDS", default=None,
                    help="a slide still running after this long fails (the others are written)")
    bt.add_argument("--failures", type=Path, metavar="FILE",
                    help="failures table (default: OUT with suffix .failures.csv, written when a slide fails)")
    dk = bt.add_argument_group("Dask")
    dk.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask scheduler (tcp://host:8786)")
    dk.add_argument("--workers", type=int, metavar="N",
                    help="worker processes of the local cluster (default: number of CPUs)")
    add_signature_options(bt)
    add_marker_options(bt)
    add_cohort_options(bt)
    return bt


def run(args: argparse.Namespace, say: Progress, ap: argparse.ArgumentParser) -> int:
    """Run ``roiscore batch``; returns the exit code (3 when a slide failed)."""
    if args.workers is not None and args.workers < 1:
        ap.error("--workers must be at least 1")
    if args.slide_timeout is not None and not args.slide_timeout > 0:
        ap.error("--slide-timeout must be a positive number of seconds")
    if args.scheduler and args.workers is not None:
        ap.error("--workers sets up a local cluster; it cannot be combined with --scheduler")
    output_format(args.out)
    slides = read_manifest(args.manifest)
    validate_batch_table(slides, args.manifest)  # a bad response column: before any slide is scored
    fpath = args.failures or args.out.with_name(args.out.stem + ".failures.csv")
    inputs = [args.manifest, args.signature, *(p for s in slides for p in (s.spots, s.rois, s.image))]
    check_outputs([args.out, fpath], inputs)  # before any slide is scored
    signature = signature_from_args(args)
    params = usage_checked_params(ap, args.param, args.method)
    marker = marker_from_args(args)
    workers = args.workers or min(os.cpu_count() or 1, len(slides))
    where = args.scheduler or f"a local cluster of {workers} worker process(es)"
    say(f"{len(slides)} slide(s), {signature.label} ({args.method}), on {where}")
    with DaskClient(args.scheduler, workers) as client:
        result = run_batch(slides, signature, client, args.method, params, progress=say, marker=marker,
                           slide_timeout=args.slide_timeout)
    table = with_cohort_columns(result.table, slides)
    write_table(table, args.out, inputs)
    write_cohort_section(table, args.out, args, signature.label, say)
    n_fail = len(result.failures)
    say(f"{len(slides) - n_fail}/{len(slides)} slide(s) scored in {result.seconds:.1f} s -> {args.out}")
    if not n_fail and args.failures is None and fpath.is_file():
        fpath.unlink()  # a failures table left by an earlier run would mislead
        say(f"removed the failures table of an earlier run ({fpath})")
    if n_fail:
        write_table(result.failures, fpath, inputs)
        say(f"{n_fail} slide(s) failed (listed in {fpath}):")
        for r in result.failures.itertuples(index=False):
            say(f"  {r.slide_id}: {r.error}")
        return EXIT_PARTIAL
    return EXIT_OK
