"""Count normalisation shared by the scoring methods, computed without densifying.

Per-spot methods that need expression values (``mean_z`` and the
scanpy-compatible control-gene score) use **log1p of counts per 10,000**,
computed exactly as ``scanpy.pp.normalize_total(target_sum=1e4)`` followed by
``scanpy.pp.log1p`` on float64 data::

    divisor_i = (sum of spot i's counts) / 10_000      (1 for an empty spot)
    value_ij  = log1p(count_ij / divisor_i)

Nothing here builds the full dense matrix: values are produced chunk by chunk
over the stored (non-zero) entries of the CSR count matrix, so a slide of
10^6 spots x 18,000 genes needs only a few tens of MB on top of the counts.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

__all__ = [
    "TARGET_SUM",
    "as_csr",
    "forget_cached_means",
    "gene_means",
    "gene_means_and_divisor",
    "library_sizes",
    "log1p_cp10k_divisor",
    "normalised_weights",
    "selected_columns",
    "weighted_mean",
    "weighted_row_sums",
]

#: Counts per spot after normalisation (scanpy's ``target_sum``).
TARGET_SUM = 1e4

#: Stored entries processed per chunk: small enough for temporaries to stay in
#: cache and be reused by the allocator (large fresh arrays cost page faults).
CHUNK_NNZ = 262_144


def as_csr(matrix: sp.spmatrix | sp.sparray | np.ndarray) -> sp.csr_matrix:
    """``matrix`` as CSR without copying when it already is one."""
    if sp.issparse(matrix):
        return matrix if matrix.format == "csr" else sp.csr_matrix(matrix)
    return sp.csr_matrix(np.asarray(matrix))


def _row_chunks(indptr: np.ndarray, chunk_nnz: int = CHUNK_NNZ) -> Iterator[tuple[int, int]]:
    """Row ranges [start, stop) holding about ``chunk_nnz`` stored entries each."""
    n = len(indptr) - 1
    if n == 0:
        return
    bounds = np.searchsorted(indptr, np.arange(chunk_nnz, indptr[-1], chunk_nnz), side="left")
    edges = np.unique(np.concatenate([[0], np.clip(bounds, 1, n), [n]]))
    for a, b in zip(edges[:-1], edges[1:]):
        yield int(a), int(b)


def _chunk_row_sums(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """float64 sums of each row segment (``indptr`` local to ``data``), in storage order."""
    out = np.zeros(len(indptr) - 1, dtype=np.float64)
    nonempty = np.diff(indptr) > 0
    if data.size:
        out[nonempty] = np.add.reduceat(data, indptr[:-1][nonempty], dtype=np.float64)
    return out


def library_sizes(counts: sp.csr_matrix) -> np.ndarray:
    """Total counts per spot, summed in float64 in storage order (as scanpy does)."""
    X = as_csr(counts)
    out = np.zeros(X.shape[0], dtype=np.float64)
    for a, b in _row_chunks(X.indptr):
        lo, hi = int(X.indptr[a]), int(X.indptr[b])
        out[a:b] = _chunk_row_sums(X.data[lo:hi], X.indptr[a : b + 1] - lo)
    return out


def log1p_cp10k_divisor(totals: np.ndarray, target_sum: float = TARGET_SUM) -> np.ndarray:
    """Per-spot divisor ``total / target_sum``; empty spots get 1 (values stay 0).

    This is the factor scanpy's ``normalize_total`` divides each row by.
    """
    div = np.asarray(totals, dtype=np.float64) / target_sum
    return div + (div == 0)


def _gene_sums_pass(X: sp.csr_matrix, log_normalise: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """One pass over the stored entries: per-gene sums of the (log-normalised)
    values and, when normalising, the per-spot divisors.

    Per chunk of rows the counts are copied into a reused float64 buffer,
    library sizes are summed while the chunk is in cache, values become
    ``log1p(count / divisor)`` in place, and a sparse mat-vec adds them up per
    gene.
    """
    n_rows, n_cols = X.shape
    sums = np.zeros(n_cols, dtype=np.float64)
    divisor = np.empty(n_rows, dtype=np.float64) if log_normalise else None
    row_nnz = np.diff(X.indptr)
    buf = np.empty(CHUNK_NNZ + int(row_nnz.max(initial=0)), dtype=np.float64)
    ones = np.ones(n_rows, dtype=np.float64)
    for a, b in _row_chunks(X.indptr):
        lo, hi = int(X.indptr[a]), int(X.indptr[b])
        indptr = X.indptr[a : b + 1] - lo
        vals = buf[: hi - lo]
        vals[:] = X.data[lo:hi]
        if log_normalise:
            div = log1p_cp10k_divisor(_chunk_row_sums(vals, indptr))
            divisor[a:b] = div
            np.divide(vals, np.repeat(div, row_nnz[a:b]), out=vals)
            np.log1p(vals, out=vals)
        chunk = sp.csr_matrix(
            (vals, X.indices[lo:hi], indptr.astype(X.indices.dtype, copy=False)),
            shape=(b - a, n_cols),
            copy=False,
        )
        sums += chunk.T @ ones[: b - a]
    return sums, divisor


_MEANS_CACHE: dict[int, tuple[weakref.ref, tuple, np.ndarray, np.ndarray | None]] = {}


def gene_means_and_divisor(
    counts: sp.csr_matrix, log_normalise: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over all spots of each gene's (log-normalised) expression, and the
    per-spot divisors (``None`` without normalisation).

    Cached per count matrix (by identity), so scoring several signatures on
    the same slide pays for the full pass over the counts once.
    """
    X = as_csr(counts)
    key = (X.shape, X.nnz, log_normalise)
    hit = _MEANS_CACHE.get(id(X))
    if hit is not None and hit[0]() is X and hit[1] == key:
        return hit[2].copy(), hit[3]
    sums, divisor = _gene_sums_pass(X, log_normalise)
    means = sums / X.shape[0]
    for k in [k for k, v in _MEANS_CACHE.items() if v[0]() is None]:
        del _MEANS_CACHE[k]
    try:
        _MEANS_CACHE[id(X)] = (weakref.ref(X), key, means, divisor)
    except TypeError:  # not weak-referenceable: no caching
        pass
    return means.copy(), divisor


def forget_cached_means() -> None:
    """Drop the cached gene means (benchmarks time the first computation)."""
    _MEANS_CACHE.clear()


def gene_means(counts: sp.csr_matrix, log_normalise: bool = True) -> np.ndarray:
    """Mean over all spots of each gene's (log-normalised) expression."""
    return gene_means_and_divisor(counts, log_normalise)[0]


def weighted_row_sums(
    counts: sp.csr_matrix, weights: np.ndarray, divisor: np.ndarray | None
) -> np.ndarray:
    """Per spot ``sum_g weights[g] * value[spot, g]`` over genes with a weight.

    ``value = log1p(count / divisor[spot])`` (or the stored value when
    ``divisor`` is None).  Only stored entries of weighted genes are touched.
    """
    X = as_csr(counts)
    weights = np.asarray(weights, dtype=np.float64)
    wanted = weights != 0
    out = np.zeros(X.shape[0], dtype=np.float64)
    for a, b in _row_chunks(X.indptr):
        lo, hi = int(X.indptr[a]), int(X.indptr[b])
        genes = X.indices[lo:hi]
        keep = np.flatnonzero(np.take(wanted, genes))
        if keep.size == 0:
            continue
        rows = np.searchsorted(X.indptr[a : b + 1] - lo, keep, side="right") - 1
        vals = X.data[lo:hi][keep].astype(np.float64)
        if divisor is not None:
            vals /= divisor[a + rows]
            np.log1p(vals, out=vals)
        out[a:b] = np.bincount(rows, weights=vals * weights[genes[keep]], minlength=b - a)
    return out


def selected_columns(
    counts: sp.csr_matrix, columns: np.ndarray, divisor: np.ndarray | None
) -> sp.csr_matrix:
    """Sparse (spots x len(columns)) matrix of log-normalised values of ``columns``.

    ``divisor`` as from :func:`log1p_cp10k_divisor` (computed over *all* genes);
    ``None`` keeps the stored values (already-normalised input).
    """
    X = as_csr(counts)
    sub = X[:, np.asarray(columns, dtype=np.int64)].tocsr()
    vals = sub.data.astype(np.float64)
    if divisor is not None:
        vals = vals / np.repeat(divisor, np.diff(sub.indptr))
        np.log1p(vals, out=vals)
    return sp.csr_matrix((vals, sub.indices, sub.indptr), shape=sub.shape)


def weighted_mean(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean over the last axis; weights are divided by ``sum(|w|)``.

    With no weights (or all zero) this is the plain mean.  Dividing by the sum
    of absolute weights keeps negative weights meaningful.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[-1]
    if n == 0:
        return np.zeros(values.shape[:-1])
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    s = np.abs(w).sum()
    w = np.full(n, 1.0 / n) if s == 0 else w / s
    return values @ w


def normalised_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """The per-gene factors :func:`weighted_mean` applies (sum of |w| = 1)."""
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    s = np.abs(w).sum()
    return np.full(n, 1.0 / n) if s == 0 else w / s
