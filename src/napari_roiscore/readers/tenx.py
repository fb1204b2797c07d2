"""10x Genomics count matrices: the HDF5 file and the Matrix Market folder.

Both layouts hold the same thing — raw UMI counts, features (genes) by
barcodes (spots, bins or cells) — and both are read here without scanpy:

* ``*_feature_bc_matrix.h5`` (CellRanger/Space Ranger/Xenium ≥ 3 layout: group
  ``matrix`` with ``data``, ``indices``, ``indptr``, ``shape``, ``barcodes`` and
  ``features/{id,name,feature_type,genome}``; the older v2 layout with one group
  per genome and ``genes``/``gene_names`` is accepted too);
* ``*_feature_bc_matrix/`` with ``matrix.mtx.gz``, ``features.tsv.gz`` (or
  ``genes.tsv``) and ``barcodes.tsv.gz``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import require_regular_file
from napari_roiscore.spots.in_steps import read_in_steps, rows_per_step, strings_in_steps
from napari_roiscore.readers._files import first_existing
from napari_roiscore.spots.checks import check_counts, csr_from_parts, reader_errors

__all__ = ["CountMatrix", "read_10x_h5", "read_10x_mtx"]


@dataclass
class CountMatrix:
    """Raw counts with their labels.

    Parameters
    ----------
    counts : scipy.sparse.csr_matrix
        Barcodes (rows) x features (columns), integer counts.
    barcodes : numpy.ndarray of str
        (``object`` dtype: Python strings, as pandas and anndata keep them)
    features : pandas.DataFrame
        One row per feature: ``gene_ids``, ``gene_symbols``, ``feature_types``
        and, when present, ``genome``.
    attrs : dict
        File-level metadata (software version, library ids, chemistry).
    """

    counts: sp.csr_matrix
    barcodes: np.ndarray
    features: pd.DataFrame
    attrs: dict = field(default_factory=dict)

    def only_feature_type(self, feature_type: str) -> CountMatrix:
        """Keep the features of one type (e.g. ``"Gene Expression"``)."""
        keep = (self.features["feature_types"] == feature_type).to_numpy()
        if keep.all():
            return self
        return CountMatrix(
            self.counts[:, np.flatnonzero(keep)].tocsr(),
            self.barcodes,
            self.features.loc[keep].reset_index(drop=True),
            self.attrs,
        )


def _decode(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return arr.astype(str)
    if arr.dtype.kind == "O":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in arr], dtype=str)
    return arr.astype(str)


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_attr(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_as(dataset, dtype) -> np.ndarray:
    """A 1-D HDF5 dataset read in chunks into an array of ``dtype`` (no full-size temporary;
    a step of :func:`~napari_roiscore.spots.in_steps.rows_per_step` per read, so other
    threads run between reads)."""
    out = np.empty(dataset.shape[0], dtype=dtype)
    chunk = rows_per_step(dataset)
    for start in range(0, dataset.shape[0], chunk):
        block = dataset[start:start + chunk]
        if np.dtype(dtype).kind in "iu" and block.size and (
                block.max() > np.iinfo(dtype).max or block.min() < np.iinfo(dtype).min):
            return dataset[:]  # values that do not fit: keep the stored type (checked later)
        out[start:start + chunk] = block
    return out


def read_10x_h5(path: str | Path) -> CountMatrix:
    """Read a 10x HDF5 feature-barcode matrix with h5py.

    The sparse arrays are checked before use (indices within the feature
    count, a consistent index pointer, counts finite, non-negative and whole)
    and the matrix made canonical (duplicates summed, indices sorted).

    Raises
    ------
    RoiScoreError
        The file is missing, not HDF5, not in a 10x layout, or damaged.
    """
    path = Path(path)
    if not path.exists():
        raise RoiScoreError(f"{str(path)!r} does not exist.", "Check the path to the .h5 matrix.")
    require_regular_file(path, "Count matrix")
    with reader_errors(repr(str(path)), "Re-download the 10x .h5 matrix or use the Matrix Market folder instead."):
        return _read_10x_h5(path)


def _read_10x_h5(path: Path) -> CountMatrix:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise RoiScoreError(
            f"{str(path)!r} is not a readable HDF5 file ({err}).",
            "Re-download the 10x .h5 matrix or use the Matrix Market folder instead.",
        ) from None
    with f:
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
        if "matrix" in f:
            g = f["matrix"]
            feats = g.get("features")
            if feats is None:
                raise RoiScoreError(
                    f"{str(path)!r}: group 'matrix/features' is missing.",
                    "This is not a 10x feature-barcode matrix; export it again with Space Ranger.",
                )
            n = len(feats["id"])
            features = pd.DataFrame({
                "gene_ids": _decode(feats["id"][:]),
                "gene_symbols": _decode(feats["name"][:]),
                "feature_types": (_decode(feats["feature_type"][:]) if "feature_type" in feats
                                  else np.full(n, "Gene Expression")),
            })
            if "genome" in feats:
                features["genome"] = _decode(feats["genome"][:])
        else:  # CellRanger 2 layout: one group per genome
            groups = [k for k in f.keys() if isinstance(f[k], h5py.Group)]
            if len(groups) != 1 or "genes" not in f[groups[0]]:
                raise RoiScoreError(
                    f"{str(path)!r}: no 'matrix' group (10x v3) nor a single genome group (10x v2).",
                    "Open a 10x feature-barcode matrix .h5 (e.g. filtered_feature_bc_matrix.h5).",
                )
            g = f[groups[0]]
            features = pd.DataFrame({
                "gene_ids": _decode(g["genes"][:]),
                "gene_symbols": _decode(g["gene_names"][:]),
                "feature_types": "Gene Expression",
                "genome": groups[0],
            })
        missing = [k for k in ("data", "indices", "indptr", "shape", "barcodes") if k not in g]
        if missing:
            raise RoiScoreError(
                f"{str(path)!r}: dataset(s) {missing} missing in group {g.name!r}.",
                "The .h5 file is incomplete; re-download it or use the Matrix Market folder.",
            )
        shape = g["shape"][:]
        if len(shape) != 2:
            raise RoiScoreError(f"{str(path)!r}: 'shape' has {len(shape)} entries, not 2.",
                                "The .h5 file is damaged; re-download it.")
        n_feat, n_bc = (int(v) for v in shape)
        # stored as CSC features x barcodes == CSR barcodes x features; checked before scipy sees it.
        # Integer arrays are read chunk-wise as int32 (half the memory of the stored int64 at
        # Visium HD 2 µm sizes, ~10^8 non-zeros) unless a value does not fit.
        data = _read_as(g["data"], np.int32 if g["data"].dtype.kind in "iu" else g["data"].dtype)
        counts = csr_from_parts(data, _read_as(g["indices"], np.int32), read_in_steps(g["indptr"]),
                                (n_bc, n_feat), repr(str(path)))
        barcodes = strings_in_steps(read_in_steps(g["barcodes"]))  # 11M at 2 µm: one call held 1.4 s
    if len(features) != n_feat or len(barcodes) != n_bc:
        raise RoiScoreError(
            f"{str(path)!r}: matrix shape {n_feat} x {n_bc} does not match "
            f"{len(features)} features and {len(barcodes)} barcodes.",
            "The .h5 file is inconsistent; re-download it.",
        )
    return CountMatrix(counts, barcodes, features, attrs)


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def read_10x_mtx(folder: str | Path) -> CountMatrix:
    """Read a 10x Matrix Market folder (``matrix.mtx[.gz]``, ``features.tsv[.gz]``
    or ``genes.tsv``, ``barcodes.tsv[.gz]``).

    Raises
    ------
    RoiScoreError
        Naming the missing file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RoiScoreError(f"{str(folder)!r} is not a folder.", "Point to the *_feature_bc_matrix folder.")
    found = {}
    for key, names in {
        "matrix": ["matrix.mtx.gz", "matrix.mtx"],
        "features": ["features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"],
        "barcodes": ["barcodes.tsv.gz", "barcodes.tsv"],
    }.items():
        p = first_existing(folder, names)
        if p is None:
            raise RoiScoreError(
                f"Matrix Market folder {str(folder)!r}: {names[0]!r} is missing.",
                "Copy the complete *_feature_bc_matrix folder (matrix, features, barcodes).",
            )
        found[key] = p
    for p in found.values():
        require_regular_file(p, "Matrix Market file")
    with reader_errors(repr(str(found["matrix"])), "Copy the matrix again from the Space Ranger output."):
        return _read_mtx_files(found)


def _read_mtx_files(found: dict[str, Path]) -> CountMatrix:
    with _open_text(found["matrix"]) as fh:
        header = [line for line, _ in zip(fh, range(2))]
    if not header or not header[0].startswith("%%MatrixMarket"):
        raise RoiScoreError(f"{str(found['matrix'])!r} is empty or not a Matrix Market file.",
                            "Copy the matrix again from the Space Ranger output.")
    meta = {}
    for line in header:
        if line.startswith("%metadata_json:"):
            import json

            try:
                meta = json.loads(line.split(":", 1)[1])
            except ValueError:
                meta = {}
    m = _mmread(found["matrix"])
    if not sp.issparse(m):
        m = sp.coo_matrix(np.asarray(m))
    counts = sp.csr_matrix(m.T)
    counts.sum_duplicates()
    check_counts(counts.data, repr(str(found["matrix"])))  # finite, non-negative, whole: as for .h5 and .h5ad
    if counts.dtype.kind in "fiu":
        big = counts.data.size and counts.data.max() >= 2**31
        counts = counts.astype(np.int64 if big else np.int32)
    feats = _read_tsv(found["features"])
    features = pd.DataFrame({
        "gene_ids": feats[0].to_numpy(dtype=str),
        "gene_symbols": (feats[1] if feats.shape[1] > 1 else feats[0]).to_numpy(dtype=str),
        "feature_types": (feats[2].to_numpy(dtype=str) if feats.shape[1] > 2
                          else np.full(len(feats), "Gene Expression")),
    })
    barcodes = _read_tsv(found["barcodes"])[0].to_numpy(dtype=str)
    if counts.shape != (len(barcodes), len(features)):
        raise RoiScoreError(
            f"{str(found['matrix'])!r}: matrix is {counts.shape[1]} x {counts.shape[0]} but there are "
            f"{len(features)} features and {len(barcodes)} barcodes.",
            "The three files come from different runs; copy them from one folder.",
        )
    attrs = {"software_version": meta["software_version"]} if "software_version" in meta else {}
    return CountMatrix(counts, barcodes, features, attrs)


def _read_tsv(path: Path) -> pd.DataFrame:
    """A features/barcodes table (tab-separated, no header); empty is an error naming it."""
    try:
        df = pd.read_csv(path, sep="\t", header=None, dtype=str, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    if df.empty:
        raise RoiScoreError(f"{str(path)!r} is empty.", "Copy it again from the Space Ranger output.")
    return df.fillna("")


def _mmread(path: Path):
    """``scipy.io.mmread`` of a plain or gzipped Matrix Market file.

    A ``.gz`` file is first unpacked to a temporary file: scipy's reader runs
    in a compiled thread, and a decompression error raised inside it (a
    truncated or damaged ``.gz``) aborts the whole process instead of raising.
    """
    if path.suffix != ".gz":
        return scipy.io.mmread(str(path))
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="roiscore-mtx-") as tmp:
        plain = Path(tmp) / "matrix.mtx"
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)  # gzip errors raise here, in Python
        return scipy.io.mmread(str(plain))
