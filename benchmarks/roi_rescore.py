"""Benchmark: one ROI edit (membership + 5-gene score aggregate) while dragging.

For 100k and 1M uniformly placed spots (seeded) and a 200-vertex star-shaped
polygon holding ~5 % of them, each "edit" moves the polygon a little (as when
dragging it in napari) and recomputes the ROI's score, the mean over its
spots of a per-spot 5-gene score (computed once beforehand, as the plugin
caches it).  Timed per edit, interleaved so that all paths see the same
machine load:

* naive   - ``shapely.contains_xy`` over every spot, then ``numpy`` mean;
* bbox    - the strongest simple peer: a ``numpy`` bounding-box prefilter, then
            ``shapely.contains_xy`` on the survivors only, then the mean;
* index   - ``SpotIndex.aggregate`` (inside cells summed from running sums,
            boundary spots tested exactly); the plugin's live path;
* unsorted- ``SpotIndex.query(sort=False)`` + ``numpy`` mean of the members;
* members - ``SpotIndex.query()`` (ascending indices, as ``RoiScorer.members``)
            + ``numpy`` mean.

Every edit checks that the index gives exactly the naive members and mean.
Prints medians and ratios measured in this run; asserts nothing about speed.

Run::

    PYTHONPATH=src python benchmarks/roi_rescore.py            # 100k and 1M
    PYTHONPATH=src python benchmarks/roi_rescore.py --sizes 100000 --edits 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely
from shapely.geometry import Polygon

from napari_roiscore.spots.index import SpotIndex

SLIDE_PX = 20_000.0  # square slide, level-0 pixels
N_GENES = 5
N_VERTICES = 200
FRACTION = 0.05
GOAL_MS = 3.0
GOAL_RATIO = 10.0


def make_spots(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform spot centres and a per-spot 5-gene score (mean of z-scores)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, SLIDE_PX, (n, 2))
    logexpr = np.log1p(rng.poisson(2.0, (n, N_GENES)).astype(np.float64))
    z = (logexpr - logexpr.mean(axis=0)) / logexpr.std(axis=0)
    return xy, z.mean(axis=1)


def star(seed: int) -> np.ndarray:
    """200-vertex star-ish outline (x, y) around the origin, area ~5 % of the slide."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 2 * np.pi, N_VERTICES, endpoint=False)
    r = 1.0 + 0.3 * np.sin(7 * t) + 0.05 * rng.standard_normal(N_VERTICES)
    ring = np.column_stack([r * np.cos(t), r * np.sin(t)])
    area = Polygon(ring).area
    return ring * np.sqrt(FRACTION * SLIDE_PX**2 / area)


def drag(ring: np.ndarray, n_edits: int) -> list[Polygon]:
    """The outline at each step of a drag across the slide's centre."""
    centre = np.array([SLIDE_PX / 2, SLIDE_PX / 2])
    step = np.array([7.3, 4.1])  # pixels per edit
    return [Polygon(ring + centre + (i - n_edits / 2) * step) for i in range(n_edits)]


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t0) * 1e3


def run(n: int, n_edits: int, seed: int) -> dict[str, float]:
    xy, values = make_spots(n, seed)
    index, build_ms = timed(SpotIndex, xy)
    sums, prefix_ms = timed(index.prefix_sums, values)
    polygons = drag(star(seed + 1), n_edits)
    x, y = xy[:, 0], xy[:, 1]

    def naive(p):
        mask = shapely.contains_xy(p, x, y)
        return mask, values[mask].mean()

    def bbox(p):
        x0, y0, x1, y1 = p.bounds
        cand = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        inside = cand[shapely.contains_xy(p, x[cand], y[cand])]
        return inside, values[inside].mean()

    def unsorted(p):
        return values[index.query(p, sort=False)].mean()

    def members(p):
        idx = index.query(p)
        return idx, values[idx].mean()

    # warm up every path once
    naive(polygons[0]), bbox(polygons[0]), index.aggregate(polygons[0], sums), unsorted(polygons[0])
    members(polygons[0])
    t = {"naive": [], "bbox": [], "index": [], "unsorted": [], "members": []}
    fractions = []
    for p in polygons:
        (mask, mean_naive), ms = timed(naive, p)
        t["naive"].append(ms)
        (bbox_idx, mean_bbox), ms = timed(bbox, p)
        t["bbox"].append(ms)
        agg, ms = timed(index.aggregate, p, sums)
        t["index"].append(ms)
        mean_unsorted, ms = timed(unsorted, p)
        t["unsorted"].append(ms)
        (idx, mean_members), ms = timed(members, p)
        t["members"].append(ms)
        # the index must give exactly the naive answer
        want = np.flatnonzero(mask)
        if not np.array_equal(idx, want) or agg.n_spots != want.size or not np.array_equal(bbox_idx, want):
            raise AssertionError(f"membership differs from shapely.contains_xy at n={n}")
        for m in (agg.mean, mean_unsorted, mean_members, mean_bbox):
            if not np.isclose(m, mean_naive, rtol=1e-12, atol=1e-12):
                raise AssertionError(f"mean differs: {m!r} vs {mean_naive!r}")
        fractions.append(want.size / n)
    med = {k: float(np.median(v)) for k, v in t.items()}
    med.update(build_ms=build_ms, prefix_ms=prefix_ms, fraction=float(np.mean(fractions)))
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--edits", type=int, default=41, help="edits per size (>= 30)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n_edits = max(args.edits, 30)
    t_start = time.perf_counter()
    print(f"roi_rescore: {N_VERTICES}-vertex star ROI (~{FRACTION:.0%} of spots), "
          f"{n_edits} dragging edits per size, medians in ms (shapely {shapely.__version__}, "
          f"GEOS {shapely.geos_version_string})")
    header = (f"{'spots':>9} {'in ROI':>7} {'build':>8} {'prefix':>7} {'naive':>7} {'bbox':>7} {'index':>7} "
              f"{'ratio':>6} {'vs bbox':>7} {'unsorted':>8} {'ratio':>6} {'members':>8} {'ratio':>6}  equal")
    print(header)
    results = {}
    for n in args.sizes:
        r = run(n, n_edits, args.seed)
        results[n] = r
        print(f"{n:>9,} {r['fraction']:>7.2%} {r['build_ms']:>8.1f} {r['prefix_ms']:>7.1f} "
              f"{r['naive']:>7.2f} {r['bbox']:>7.2f} {r['index']:>7.3f} {r['naive'] / r['index']:>5.1f}x "
              f"{r['bbox'] / r['index']:>6.1f}x "
              f"{r['unsorted']:>8.3f} {r['naive'] / r['unsorted']:>5.1f}x "
              f"{r['members']:>8.3f} {r['naive'] / r['members']:>5.1f}x  yes")
    print("columns: build = SpotIndex construction, prefix = running sums of the scores (once per"
          " score);\n  index = SpotIndex.aggregate (live path); unsorted = query(sort=False) + mean;"
          " members = sorted query + mean; ratio = naive / that path;\n  bbox = numpy bounding-box prefilter +"
          " shapely on the survivors (the strongest simple peer); vs bbox = bbox / index")
    for n, r in results.items():
        ok = r["index"] <= GOAL_MS and r["naive"] / r["index"] >= GOAL_RATIO
        scope = "issue 3 goal" if n >= 1_000_000 else "same bar (goal is stated at 1M)"
        print(f"{n:,} spots, index median <= {GOAL_MS} ms and >= {GOAL_RATIO:.0f}x naive "
              f"({scope}): {'met' if ok else 'not met'}")
    print(f"total benchmark time: {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
