"""Cohort scaling: ``roiscore batch`` on 1 vs 2 Dask worker processes.

Generates a cohort of synthetic slides once (in a temporary folder), then
scores it with :func:`napari_roiscore.cli.run_batch` on a LocalCluster of 1
and of 2 worker processes (one thread each), exactly as ``roiscore batch``
does.  Both clusters are warmed up first (imports, file cache), then the
cohort is scored ``--repeats`` times on each, alternating; the best and the
median times are printed with the speed-up ratio (goal: >= 1.7x on 2 free
cores).  The two clusters must give identical tables.

    python benchmarks/cohort_scaling.py [--slides 24] [--size 1536] [--repeats 5]

The machine's load average and the CPU cores the tasks effectively got
(their CPU time over wall time) are printed too: on a shared machine the
ratio measures what the other processes leave free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd


def _write_one(folder: Path, sid: str, size: int, pixel_size_um: float, n_genes: int, seed: int) -> dict:
    from napari_roiscore.spots.synthetic import make_slide, write_slide

    return write_slide(make_slide(size=size, pixel_size_um=pixel_size_um, n_genes=n_genes, seed=seed),
                       folder / "data", stem=sid, levels=2)


def make_cohort(folder: Path, n: int, size: int, pixel_size_um: float, n_genes: int, client=None) -> Path:
    """Write ``n`` synthetic slides (on ``client`` when given) and a manifest; return its path."""
    ids = [f"slide{i:03d}" for i in range(n)]
    args = [(folder, sid, size, pixel_size_um, n_genes, 100 + i) for i, sid in enumerate(ids)]
    if client is None:
        written = [_write_one(*a) for a in args]
    else:
        written = client.gather([client.submit(_write_one, *a, pure=False) for a in args])
    rows = ["slide_id,spots,rois,image"]
    for sid, paths in zip(ids, written):
        rows.append(f"{sid},data/{paths['spots'].name},data/{paths['rois'].name},data/{paths['image'].name}")
    manifest = folder / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def start(n_workers: int):
    """A LocalCluster of ``n_workers`` processes (one thread each) and its client."""
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with warnings.catch_warnings():  # "port 8787 in use" by the other cluster's HTTP server
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)  # logging.ERROR
    client = Client(cluster)
    return cluster, client, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, default=24, help="cohort size (default 24)")
    ap.add_argument("--size", type=int, default=1536, help="slide width/height in pixels (default 1536)")
    ap.add_argument("--pixel-size", type=float, default=4.0,
                    help="µm per pixel (default 4: ~2,400 Visium spots per slide)")
    ap.add_argument("--genes", type=int, default=2000, help="genes per slide (default 2000)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per worker count (default 5)")
    args = ap.parse_args(argv)
    if args.slides < 20:
        ap.error("use at least 20 slides")

    from napari_roiscore.cli import quiet_dask_logs, read_manifest, run_batch
    from napari_roiscore.scoring.signature import EXAMPLE_PANEL

    clusters = {n: start(n) for n in (1, 2)}
    quiet_dask_logs()
    try:
        for n, (_, _, startup) in clusters.items():
            print(f"LocalCluster with {n} worker process(es) started in {startup:.1f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="roiscore_cohort_") as tmp:
            t0 = time.perf_counter()
            manifest = make_cohort(Path(tmp), args.slides, args.size, args.pixel_size, args.genes,
                                   client=clusters[2][1])
            slides = read_manifest(manifest)
            print(f"generated {args.slides} slides ({args.size} px, {args.pixel_size} µm/px, "
                  f"{args.genes} genes) in {time.perf_counter() - t0:.1f} s", flush=True)
            for n, (_, client, _) in clusters.items():  # warm-up: imports and file cache on every worker
                run_batch(slides, EXAMPLE_PANEL, client)
            times: dict[int, list[float]] = {1: [], 2: []}
            cores: dict[int, list[float]] = {1: [], 2: []}
            tables = {}
            for r in range(args.repeats):  # interleaved, so that load changes hit both alike
                for n, (_, client, _) in clusters.items():
                    res = run_batch(slides, EXAMPLE_PANEL, client)
                    if not res.ok:
                        raise SystemExit(f"benchmark slides failed: {res.failures.to_string()}")
                    times[n].append(res.seconds)
                    cores[n].append(sum(res.task_cpu_seconds.values()) / res.seconds)
                    tables[n] = res.table
                print(f"run {r + 1}: 1 worker {times[1][-1]:.2f} s, 2 workers {times[2][-1]:.2f} s", flush=True)
            pd.testing.assert_frame_equal(tables[1], tables[2], check_exact=True)
            n_rois = len(tables[1])
    finally:
        for cluster, client, _ in clusters.values():
            quiet_dask_logs()  # closing a cluster restores Dask's log levels
            client.close()
            cluster.close()
    for n, t in times.items():
        print(f"{n} worker(s): best {min(t):.2f} s, median {statistics.median(t):.2f} s per cohort "
              f"({args.slides} slides); CPU cores effectively used (task CPU time / wall time): "
              f"median {statistics.median(cores[n]):.2f}")
    best = min(times[1]) / min(times[2])
    med = statistics.median(times[1]) / statistics.median(times[2])
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"tables identical ({n_rois} ROI rows); CPUs: {os.cpu_count()}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"speed-up 1 -> 2 workers: {best:.2f}x (best), {med:.2f}x (median); goal >= 1.7x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
