"""Checks at the boundary of every reader: sparse structure, counts, coordinates, sizes.

A reader hands its arrays to these functions before anything is computed on
them, so a damaged file is a :class:`~napari_roiscore.errors.RoiScoreError`
naming the file — never a segmentation fault in a compiled scorer (a sparse
index past the gene count), a silently different result (duplicate or unsorted
sparse indices) or a crash of the spatial index (coordinates near float max).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError

__all__ = ["MAX_SPOT_COORD", "check_coordinates", "check_counts", "check_positive", "csr_from_parts",
           "canonical_csr", "reader_errors"]

#: spot centres beyond this many pixels are a broken file (a whole-slide image is < 10^6 px)
MAX_SPOT_COORD = 1e8


def csr_from_parts(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int],
                   src: str) -> sp.csr_matrix:
    """A canonical CSR matrix from its arrays, after checking they describe one.

    Checks ``indptr`` (length rows + 1, starting at 0, never decreasing, ending
    at the number of stored values) and ``indices`` (integers in
    ``[0, columns)``) *before* scipy sees them; duplicates are summed and
    indices sorted (the canonical form every scorer expects).
    """
    rows, cols = (int(v) for v in shape)
    if rows < 0 or cols < 0 or rows > 2**40 or cols > 2**40:
        raise RoiScoreError(f"{src}: matrix shape {shape} is impossible.",
                            "The matrix file is damaged; re-export or re-download it.")
    data, indices, indptr = np.asarray(data), np.asarray(indices), np.asarray(indptr)
    _check_compressed(data, indices, indptr, rows, cols, src)
    check_counts(data, src)
    m = sp.csr_matrix((data, indices.astype(np.int64 if cols >= 2**31 else np.int32),
                       indptr.astype(np.int64 if len(data) >= 2**31 else np.int32)), shape=(rows, cols))
    return canonical_csr(m, src)


def _check_compressed(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, rows: int, cols: int,
                      src: str) -> None:
    """The arrays of a compressed sparse matrix with ``rows`` major and ``cols`` minor entries."""
    fix = "The matrix file is damaged; re-export or re-download it."
    if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
        raise RoiScoreError(f"{src}: sparse matrix arrays are not one-dimensional.", fix)
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise RoiScoreError(f"{src}: sparse matrix indices are not integers ({indices.dtype}, {indptr.dtype}).", fix)
    if len(indptr) != rows + 1:
        raise RoiScoreError(f"{src}: the sparse index pointer has {len(indptr):,} entries; the matrix "
                            f"shape needs {rows + 1:,}.", fix)
    if len(indices) != len(data):
        raise RoiScoreError(f"{src}: {len(indices):,} indices for {len(data):,} values.", fix)
    if indptr[0] != 0 or indptr[-1] != len(data) or np.any(np.diff(indptr.astype(np.int64)) < 0):
        raise RoiScoreError(f"{src}: the index pointer is not increasing from 0 to {len(data):,}.", fix)
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= cols):
        raise RoiScoreError(f"{src}: sparse indices run from {int(indices.min())} to {int(indices.max())}, "
                            f"beyond the matrix's {cols:,} (features or barcodes).", fix)


def canonical_csr(X: sp.spmatrix, src: str = "count matrix") -> sp.csr_matrix:
    """``X`` as CSR with sorted indices and duplicates summed (structure checked, copied when needed).

    A CSR or CSC matrix's index arrays are checked first (:func:`csr_from_parts`
    checks): scipy does not, and converting one with an index out of range
    writes past the end of an array.
    """
    if X.format in ("csr", "csc"):
        major, minor = X.shape if X.format == "csr" else X.shape[::-1]
        _check_compressed(X.data, X.indices, X.indptr, major, minor, src)
    X = X.tocsr() if X.format != "csr" else X
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()  # also sorts the indices
    return X


def check_counts(data: np.ndarray, src: str, whole: bool = True) -> None:
    """Counts must be numbers, finite, non-negative and (``whole``) whole."""
    data = np.asarray(data)
    if data.size == 0:
        return
    if data.dtype.kind not in "biuf":
        raise RoiScoreError(f"{src}: counts are not numbers ({data.dtype}).", "Provide raw integer counts.")
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all():
            raise RoiScoreError(f"{src}: {int((~finite).sum()):,} count(s) are NaN or infinite.",
                                "Provide raw integer counts.")
    if data.dtype.kind in "if" and data.min() < 0:
        raise RoiScoreError(f"{src}: counts include negative values (lowest {data.min()}) — not raw counts.",
                            "Provide raw integer counts.")
    if whole and data.dtype.kind == "f":
        frac = np.mod(data, 1.0) != 0
        if frac.any():
            raise RoiScoreError(f"{src}: counts include fractions (e.g. {data[frac][0]:g}) — not raw counts.",
                                "Provide raw integer counts (not normalised values).")


def check_coordinates(xy: np.ndarray, src: str, what: str = "spot centres") -> np.ndarray:
    """``xy`` as float (n, 2), finite and within :data:`MAX_SPOT_COORD` pixels."""
    try:
        xy = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        raise RoiScoreError(f"{src}: {what} are not numbers ({err}).", "Store positions as numbers.") from None
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise RoiScoreError(f"{src}: {what} have shape {xy.shape}; expected (n, 2).", "Store one (x, y) per spot.")
    if xy.size == 0 or (-MAX_SPOT_COORD <= np.min(xy[:, :2]) and np.max(xy[:, :2]) <= MAX_SPOT_COORD):
        return xy  # all finite and in range (NaN fails both): two reductions, no per-spot arrays (12M: 1.0 -> 0.05 s)
    bad = ~np.isfinite(xy[:, :2]).all(axis=1)
    if bad.any():
        raise RoiScoreError(f"{src}: {int(bad.sum()):,} of the {what} are NaN/inf (not finite).",
                            "Remove those spots or fix their coordinates.")
    far = (np.abs(xy[:, :2]) > MAX_SPOT_COORD).any(axis=1)
    if far.any():
        raise RoiScoreError(f"{src}: {int(far.sum()):,} of the {what} lie beyond {MAX_SPOT_COORD:.0e} px "
                            f"(e.g. {xy[far][0, :2].tolist()}).", "Check the file: positions must be image pixels.")
    return xy


#: names hashed per step by :func:`first_duplicates` (≈ 10 ms each): between steps other
#: threads run (pandas' own uniqueness check holds the interpreter for 1.0-1.4 s at 3M names)
UNIQUE_STEP = 100_000


def first_duplicates(names, limit: int = 3) -> list:
    """Up to ``limit`` names that occur more than once in ``names`` (empty: all unique).

    Each name's hash is taken ``UNIQUE_STEP`` names at a time, the hashes are sorted by
    numpy (which lets other threads run meanwhile), and only names whose hashes repeat
    are compared — so a check of millions of barcodes in a reader's worker thread leaves
    the GUI thread its turns (3M names: longest hold 1.08 s with ``Index.is_unique``).
    """
    values = np.asarray(names, dtype=object)
    hashes = np.empty(len(values), dtype=np.int64)
    for start in range(0, len(values), UNIQUE_STEP):
        chunk = values[start:start + UNIQUE_STEP]
        hashes[start:start + len(chunk)] = np.fromiter(map(hash, chunk), dtype=np.int64, count=len(chunk))
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:
        return []
    import pandas as pd

    candidates = pd.Index(values[np.isin(hashes, repeated)])  # same hash: equal names, or a rare collision
    return list(dict.fromkeys(candidates[candidates.duplicated()].tolist()))[:limit]


_OVERRIDE_LOCK = threading.Lock()
_overrides = {"depth": 0, "saved": True}


@contextlib.contextmanager
def barcodes_checked_here() -> Iterator[None]:
    """Within: anndata skips its own barcode check when it builds an AnnData.

    anndata checks ``obs`` names with pandas when an AnnData is made (only to warn):
    1.0-1.5 s at 3M names in one call that holds the interpreter, so a reader in a
    worker thread would freeze the GUI thread that long.  Every SpotTable checks
    them itself with :func:`first_duplicates` (an error, not a warning).
    Nested and concurrent uses (two files read at once) restore anndata's setting
    when the last one leaves.
    """
    import anndata as ad

    with _OVERRIDE_LOCK:
        if _overrides["depth"] == 0:
            _overrides["saved"] = ad.settings.check_uniqueness
            ad.settings.check_uniqueness = False
        _overrides["depth"] += 1
    try:
        yield
    finally:
        with _OVERRIDE_LOCK:
            _overrides["depth"] -= 1
            if _overrides["depth"] == 0:
                ad.settings.check_uniqueness = _overrides["saved"]


def check_positive(value: object, src: str, what: str, upper: float = 1e9) -> float:
    """``value`` as a float that is finite, > 0 and at most ``upper`` (a plausible size or scale)."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise RoiScoreError(f"{src}: {what} is {value!r}, not a number.", f"Set {what} to a positive number.") from None
    if not (np.isfinite(out) and 0 < out <= upper):
        raise RoiScoreError(f"{src}: {what} is {out!r}; it must be a positive number up to {upper:g}.",
                            f"Check {what} in the file.")
    return out


@contextlib.contextmanager
def reader_errors(src: str, fix: str = "Check the file; re-export or re-download it.") -> Iterator[None]:
    """Map any library exception raised while reading ``src`` to a RoiScoreError naming it.

    RoiScoreError passes through; MemoryError becomes a message with the file;
    KeyboardInterrupt and SystemExit are never caught.
    """
    try:
        yield
    except RoiScoreError:
        raise
    except MemoryError:
        raise RoiScoreError(f"{src}: not enough memory to read it.", "Close other programs or use a smaller file.") \
            from None
    except RecursionError:
        raise RoiScoreError(f"{src}: nested too deeply to read.", fix) from None
    except Exception as err:  # noqa: BLE001 - every library's own error types
        text = str(err).replace("\n", " ")
        text = text if len(text) <= 200 else text[:200] + "…"
        raise RoiScoreError(f"{src} cannot be read ({type(err).__name__}: {text}).", fix) from None
