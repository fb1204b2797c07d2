"""Benchmark: reading a Visium HD ``square_002um`` folder at full size.

Writes a generated ``square_002um`` folder (10x ``filtered_feature_bc_matrix.h5``
+ ``spatial/tissue_positions.parquet`` with every bin of the capture area, the
matrix holding the bins under tissue, ~5 genes per bin out of 2,000), then reads it in
a fresh process two ways, each reporting wall time and peak RSS:

* ``reader`` - ``read_visium_hd`` (bins matched to positions through the grid
  indices in their barcodes; h5 gene indices read as int32);
* ``join``   - the general path: h5 as stored + ``read_tissue_positions``
  (pandas, barcode index) + ``.loc[barcodes]`` string join.

    python benchmarks/read_visium_hd.py --bins 3000000 [--keep /tmp/hd]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_folder(folder: Path, n_bins: int, seed: int = 0, n_genes: int = 2000) -> int:
    import h5py
    import pandas as pd

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_bins / 0.6)))
    r, c = np.divmod(np.arange(side * side, dtype=np.int64), side)
    under = np.hypot(r - side / 2, c - side / 2) < side * 0.437  # ~60 % under tissue
    (folder / "spatial").mkdir(parents=True, exist_ok=True)
    bcs_all = np.char.add(np.char.add(np.char.add("s_002um_", np.char.zfill(r.astype(str), 5)), "_"),
                          np.char.add(np.char.zfill(c.astype(str), 5), "-1"))
    pitch = 2 / 0.2738
    pd.DataFrame({"barcode": bcs_all, "in_tissue": under.astype(np.int32), "array_row": r, "array_col": c,
                  "pxl_row_in_fullres": 500 + r * pitch, "pxl_col_in_fullres": 700 + c * pitch}
                 ).to_parquet(folder / "spatial" / "tissue_positions.parquet")
    bcs = bcs_all[under].astype("S")
    n = len(bcs)
    per = rng.poisson(5, n).astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per, out=indptr[1:])
    nnz = int(indptr[-1])
    gaps = rng.integers(1, 2 * n_genes // 6, nnz)
    run = np.cumsum(gaps)
    starts = np.repeat(run[indptr[:-1]] - gaps[indptr[:-1]], per)
    genes = (run - starts - 1) % n_genes  # increasing within a bin while below n_genes
    ok = np.ones(nnz, bool)
    ok[1:] = genes[1:] > genes[:-1]
    ok[indptr[:-1][per > 0]] = True
    genes = np.where(ok, genes, 0)
    # keep rows sorted and unique: drop the entries that wrapped
    keep = ok
    row_of = np.repeat(np.arange(n), per)
    genes, row_of = genes[keep], row_of[keep]
    # a kept entry was compared with a dropped one before it: sort each bin's genes and drop
    # repeats, so the matrix is in canonical order as Space Ranger writes it
    order = np.lexsort((genes, row_of))
    genes, row_of = genes[order], row_of[order]
    repeat = np.zeros(genes.size, bool)
    repeat[1:] = (row_of[1:] == row_of[:-1]) & (genes[1:] == genes[:-1])
    genes, row_of = genes[~repeat], row_of[~repeat]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=n), out=indptr[1:])
    with h5py.File(folder / "filtered_feature_bc_matrix.h5", "w") as f:
        f.attrs["software_version"] = "spaceranger-benchmark"
        f.attrs["library_ids"] = np.array([b"hd"])
        g = f.create_group("matrix")
        g["data"] = rng.integers(1, 4, genes.size).astype(np.int32)
        g["indices"] = genes.astype(np.int64)
        g["indptr"] = indptr
        g["shape"] = np.array([n_genes, n], dtype=np.int32)
        g["barcodes"] = bcs
        fe = g.create_group("features")
        fe["id"] = np.char.add("ENSG", np.arange(n_genes).astype(str)).astype("S")
        fe["name"] = np.char.add("G", np.arange(n_genes).astype(str)).astype("S")
        fe["feature_type"] = np.full(n_genes, b"Gene Expression")
        fe["genome"] = np.full(n_genes, b"GRCh38")
    (folder / "spatial" / "scalefactors_json.json").write_text(json.dumps(
        {"spot_diameter_fullres": pitch, "bin_size_um": 2.0, "microns_per_pixel": 0.2738}))
    return n


def read_child(folder: str, how: str) -> dict:
    import anndata  # noqa: F401  (imports are not the read: seconds on a loaded machine)
    import h5py  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import napari_roiscore.readers.visium  # noqa: F401

    t = time.perf_counter()
    if how == "reader":
        from napari_roiscore.readers.visium import read_visium_hd

        spots = read_visium_hd(folder, load_images=False)
        n = spots.n_spots
    else:
        from napari_roiscore.readers.tenx import read_10x_h5
        from napari_roiscore.readers.visium import read_tissue_positions

        import h5py

        with h5py.File(Path(folder) / "filtered_feature_bc_matrix.h5") as f:  # as stored (int64 indices)
            g = f["matrix"]
            _ = (g["data"][:], g["indices"][:], g["indptr"][:])
        cm = read_10x_h5(Path(folder) / "filtered_feature_bc_matrix.h5")
        pos = read_tissue_positions(Path(folder) / "spatial" / "tissue_positions.parquet")
        p = pos.loc[cm.barcodes]
        n = len(p)
    return {"how": how, "n": n, "s": time.perf_counter() - t,
            "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bins", type=int, default=3_000_000)
    ap.add_argument("--keep", help="folder to write (kept); default a temporary one")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(read_child(*args.child)))
        return
    tmp = tempfile.TemporaryDirectory() if not args.keep else None
    folder = Path(args.keep or tmp.name) / "square_002um"
    t = time.perf_counter()
    n = write_folder(folder, args.bins)
    print(f"read_visium_hd: {n:,} bins under tissue written in {time.perf_counter() - t:.0f} s")
    res = {}
    for how in ("reader", "join"):
        out = subprocess.run([sys.executable, __file__, "--child", str(folder), how], capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        res[how] = json.loads(line[-1]) if line else {"error": out.stderr.strip()[-200:]}
        print(how, res[how], flush=True)
    if all("s" in r for r in res.values()):
        print(f"reader vs join: time {res['join']['s'] / res['reader']['s']:.1f}x, "
              f"peak RSS {res['reader']['rss_gb']:.2f} vs {res['join']['rss_gb']:.2f} GB")


if __name__ == "__main__":
    main()
