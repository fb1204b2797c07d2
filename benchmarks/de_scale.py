"""Differential expression at scale: 100 ROIs x 18,000 genes.

Generates seeded negative-binomial pseudobulk counts for ``--rois`` ROIs on
``--slides`` slides (half tumour, half stroma on every slide; 200 genes
truly changed), then times

* ``roiscore``: :func:`napari_roiscore.analysis.differential.differential_expression`
  with every ROI a sample (``pool=False``, design ``~unit + group``: the
  largest fit) and pooled per slide and class (``pool=True``, the default);
* ``direct``: PyDESeq2 run directly on the same per-ROI matrix (the baseline,
  measured in the same run).

It asserts that the per-ROI result equals the direct run, and prints wall and
CPU times and the ratio roiscore / direct (the wrapper's overhead), plus the
machine's load average: on a shared machine the wall time says more about the
load than about the code; the CPU time (one process) is the cost.

    PYTHONPATH=src python benchmarks/de_scale.py [--rois 100] [--genes 18000] [--slides 10] [--cpus 1] [--skip-pooled]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd


def make_samples(n_rois: int, n_genes: int, n_slides: int, seed: int):
    from napari_roiscore.analysis.pseudobulk_samples import PseudobulkSamples

    rng = np.random.default_rng(seed)
    base = rng.gamma(0.6, 60.0, size=n_genes) + 0.1
    slide = np.arange(n_rois) % n_slides
    roi_class = np.where((np.arange(n_rois) // n_slides) % 2 == 0, "tumour", "stroma")
    change = np.ones(n_genes)
    hit = rng.choice(n_genes, 200, replace=False)
    change[hit] = rng.choice([0.33, 3.0], size=200)
    slide_effect = np.exp(rng.normal(0, 0.2, size=(n_slides, n_genes)))
    mu = base * slide_effect[slide] * np.where(roi_class[:, None] == "stroma", change, 1.0)
    mu *= rng.lognormal(0, 0.3, size=(n_rois, 1))
    counts = rng.poisson(rng.gamma(1 / 0.1, mu * 0.1)).astype(np.float64)
    index = pd.Index([f"slide{s}/roi{i}" for i, s in enumerate(slide)], name="sample")
    samples = pd.DataFrame({"roi": [f"roi{i}" for i in range(n_rois)], "class": roi_class,
                            "slide": [f"slide{s}" for s in slide], "n_spots": 40}, index=index)
    genes = pd.Index([f"G{g:05d}" for g in range(n_genes)], name="gene")
    return PseudobulkSamples(pd.DataFrame(counts, index=index, columns=genes), samples)


def direct(counts: pd.DataFrame, meta: pd.DataFrame, cpus: int) -> pd.DataFrame:
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    inference = DefaultInference(n_cpus=cpus)
    dds = DeseqDataSet(counts=counts, metadata=meta, design="~unit + group", inference=inference, quiet=True)
    dds.deseq2()
    stats = DeseqStats(dds, contrast=["group", "test", "reference"], inference=inference, quiet=True)
    stats.summary()
    return stats.results_df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rois", type=int, default=100)
    ap.add_argument("--genes", type=int, default=18000)
    ap.add_argument("--slides", type=int, default=10)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pooled", action="store_true", help="time only the per-ROI fit and the baseline")
    args = ap.parse_args()
    import warnings

    from napari_roiscore.analysis.differential import differential_expression

    samples = make_samples(args.rois, args.genes, args.slides, args.seed)
    print(f"{args.rois} ROIs x {args.genes} genes on {args.slides} slides; {args.cpus} CPU(s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # warm-up (imports, first fit) on 50 genes, so that neither timed path pays it
    from napari_roiscore.analysis.pseudobulk_samples import PseudobulkSamples

    differential_expression(PseudobulkSamples(samples.counts.iloc[:, :50], samples.samples), "class", "stroma",
                            "tumour", unit="slide", pool=False)

    t0, c0 = time.perf_counter(), time.process_time()
    per_roi = differential_expression(samples, "class", "stroma", "tumour", unit="slide", pool=False,
                                      n_cpus=args.cpus)
    t_roi, c_roi = time.perf_counter() - t0, time.process_time() - c0
    print(f"per-ROI ({len(per_roi.metadata)} samples, {per_roi.design}, {per_roi.counts.shape[1]} genes kept): "
          f"{t_roi:.1f} s wall, {c_roi:.1f} s CPU (load average {os.getloadavg()[0]:.1f})", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = direct(per_roi.counts, per_roi.metadata, args.cpus)
    t_direct, c_direct = time.perf_counter() - t0, time.process_time() - c0
    ours = per_roi.table.set_index("gene").loc[ref.index]
    np.testing.assert_allclose(ours["log2FC"], ref["log2FoldChange"], rtol=1e-10)
    print(f"direct PyDESeq2 on the same matrix (baseline): {t_direct:.1f} s wall, {c_direct:.1f} s CPU; "
          f"ratio roiscore/direct {t_roi / t_direct:.2f} wall, {c_roi / c_direct:.2f} CPU", flush=True)
    if not args.skip_pooled:
        t0, c0 = time.perf_counter(), time.process_time()
        pooled = differential_expression(samples, "class", "stroma", "tumour", unit="slide", n_cpus=args.cpus)
        t_pool, c_pool = time.perf_counter() - t0, time.process_time() - c0
        print(f"pooled per slide and class ({len(pooled.metadata)} samples, {pooled.design}): {t_pool:.1f} s "
              f"wall, {c_pool:.1f} s CPU ({c_pool / c_direct:.2f} x the per-ROI baseline's CPU)")
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
