"""Work on millions of spots in steps that leave other threads their turns.

A reader runs in a worker thread while napari's GUI thread draws. Python runs one
thread at a time, and one long call into compiled code (numpy, pandas, h5py) keeps
the GUI thread waiting until it returns: at Visium HD 2 µm sizes (11-12M bins) single
calls took 0.3-1.9 s. The helpers here do the same work a step at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STEP_BYTES", "STRING_STEP", "empty_objects", "is_long", "make_anndata", "read_in_steps",
           "rows_per_step", "strings_in_steps"]

#: strings made per call (25k barcodes: 3-15 ms)
STRING_STEP = 25_000
#: bytes of numbers read per call (1 MB: 0.5-3 ms; 8 MB took up to 44 ms)
STEP_BYTES = 1_000_000


def rows_per_step(dataset) -> int:
    """Rows of an array or HDF5 dataset handled per call: ``STRING_STEP`` strings, or ``STEP_BYTES`` of numbers."""
    if dataset.dtype.kind == "O":
        return STRING_STEP
    row_bytes = dataset.dtype.itemsize * int(np.prod(dataset.shape[1:], dtype=np.int64))
    return max(1, STEP_BYTES // max(row_bytes, 1))


def is_long(dataset) -> bool:
    """Worth reading in steps: more than one step's rows."""
    return dataset.ndim >= 1 and dataset.shape[0] > rows_per_step(dataset)


def read_in_steps(dataset) -> np.ndarray:
    """The whole dataset (strings as ``str``), a step of rows per read: other threads run between reads."""
    rows = rows_per_step(dataset)
    if dataset.dtype.kind == "O":
        source, out = dataset.asstr(), empty_objects(dataset.shape)
    else:
        source, out = dataset, np.empty(dataset.shape, dtype=dataset.dtype)  # touched step by step
    for start in range(0, dataset.shape[0], rows):
        out[start:start + rows] = source[start:start + rows]
    return out


def empty_objects(shape: tuple) -> np.ndarray:
    """An object array of ``shape`` (all ``None``), made without numpy's huge-page advice.

    numpy asks the kernel to back arrays over 4 MB with huge pages, and fills an object
    array at once: where the kernel first had to free huge pages (compaction) this one
    call took 0.24-0.26 s at 12M names, holding the interpreter; with small pages 0.02-0.04 s.
    The advice is numpy's process-wide switch, turned back on at once.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # another numpy: its default
        return np.empty(shape, dtype=object)
    advised = _set_madvise_hugepage(False)
    try:
        return np.empty(shape, dtype=object)
    finally:
        _set_madvise_hugepage(advised)


def strings_in_steps(values: np.ndarray) -> np.ndarray:
    """``values`` (bytes as UTF-8, numpy strings or objects) as an object array of ``str``,
    ``STRING_STEP`` at a time (``np.asarray(values).astype(str)`` held the interpreter
    1.4 s at 11M barcodes, and made a numpy unicode array 4 bytes per character)."""
    values = np.asarray(values)
    out = empty_objects(values.shape)
    for start in range(0, len(values), STRING_STEP):
        out[start:start + STRING_STEP] = _as_str(values[start:start + STRING_STEP])
    return out


def _as_str(part: np.ndarray) -> np.ndarray:
    if part.dtype.kind == "S":
        try:
            return part.astype(str)  # ASCII, the fast way
        except UnicodeDecodeError:
            return np.char.decode(part, "utf-8")
    if part.dtype.kind == "O":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in part], dtype=object)
    return part.astype(str)


def make_anndata(**parts: Any) -> Any:
    """``anndata.AnnData(**parts)``, without anndata's scan of every obs name.

    anndata checks obs names for missing values and for strings when it builds an
    AnnData (one pandas call over all names, 0.3-0.56 s at 12M, holding the
    interpreter). Here it is built with placeholder names (Arrow strings, checked
    at once) and the real names are set afterwards with pandas' index setter, so they must
    be Python strings (as the readers make them). Duplicate names are not warned about:
    :class:`~napari_roiscore.spots.table.SpotTable` refuses them. Built as anndata builds it
    when the names are few, not strings, or another element is indexed by them (a data
    frame in ``obsm`` or as ``X``).
    """
    import anndata as ad
    import pandas as pd

    obs = parts.get("obs")
    indexed_by_names = isinstance(parts.get("X"), pd.DataFrame) or any(
        isinstance(v, pd.DataFrame) for v in (parts.get("obsm") or {}).values())
    if not isinstance(obs, pd.DataFrame) or len(obs) <= STRING_STEP or obs.index.dtype != object \
            or indexed_by_names:
        return ad.AnnData(**parts)
    from napari_roiscore.spots.checks import barcodes_checked_here

    names = obs.index
    parts["obs"] = obs = obs.copy(deep=False)
    obs.index = _placeholder_names(len(obs))
    with barcodes_checked_here():  # placeholders are all equal; SpotTable checks the real names
        adata = ad.AnnData(**parts)
    adata.obs.index = names  # pandas' setter: the names are strings, read as such
    return adata


def _placeholder_names(n: int) -> Any:
    """``n`` empty names in an Arrow string index: anndata checks these in milliseconds."""
    import pandas as pd
    import pyarrow as pa

    empty = pa.StringArray.from_buffers(n, pa.py_buffer(np.zeros(n + 1, dtype=np.int32)), pa.py_buffer(b""))
    return pd.Index(pd.arrays.ArrowStringArray(empty))
