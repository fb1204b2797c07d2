"""Write small files in real 10x formats (used by the reader tests)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp


def write_10x_h5(path: Path, counts: np.ndarray, barcodes: list[str], gene_ids: list[str],
                 gene_names: list[str], feature_types: list[str] | None = None,
                 library_id: str = "lib1") -> None:
    """Write ``counts`` (barcodes x features) in the 10x v3 HDF5 layout (CSC, features x barcodes)."""
    m = sp.csc_matrix(np.asarray(counts).T.astype(np.int32))
    n = len(gene_ids)
    ft = feature_types or ["Gene Expression"] * n
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["version"] = 2
        f.attrs["software_version"] = "spaceranger-test"
        f.attrs["library_ids"] = np.array([library_id.encode()])
        g = f.create_group("matrix")
        g["data"] = m.data
        g["indices"] = m.indices.astype(np.int64)
        g["indptr"] = m.indptr.astype(np.int64)
        g["shape"] = np.array(m.shape, dtype=np.int32)
        g["barcodes"] = np.array([b.encode() for b in barcodes])
        fe = g.create_group("features")
        fe["id"] = np.array([s.encode() for s in gene_ids])
        fe["name"] = np.array([s.encode() for s in gene_names])
        fe["feature_type"] = np.array([s.encode() for s in ft])
        fe["genome"] = np.array([b"GRCh38"] * n)
        fe["_all_tag_keys"] = np.array([b"genome"])


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
