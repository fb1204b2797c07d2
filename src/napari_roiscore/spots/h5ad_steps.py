"""Read an ``.h5ad`` file as anndata does, in steps that leave other threads their turns.

``anndata.read_h5ad`` reads each column of ``obs`` in one call: for a Visium HD 2 µm
slide (12M bins) reading the barcodes is one h5py call of 0.5-0.8 s that holds the
interpreter, pandas then copies the numeric columns into one block (0.3-0.4 s) and
anndata, when it builds the AnnData, scans every barcode for missing values and for
strings (0.5 s) — only to warn. In a reader's worker thread each of these calls
freezes napari's GUI thread for its whole length.

Here anndata's own element readers do the work (``anndata.experimental.read_dispatched``),
except that long string and number arrays are read ``STEP`` rows at a time, data frames
keep their columns as read (no copy into one block), and the AnnData is built with
placeholder obs names that anndata checks at once, the real names set afterwards with
pandas' index setter. The result equals ``anndata.read_h5ad`` (tested on real and
generated files); files in anndata's pre-0.8 layout go to ``anndata.read_h5ad`` itself.
Duplicate obs names are not warned about here: :class:`~napari_roiscore.spots.table.SpotTable`
refuses them (checked in steps too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STEP", "read_h5ad_in_steps"]

#: strings read per call (25k barcodes: 8-15 ms)
STEP = 25_000
#: bytes of numbers read per call (1 MB: 0.5-3 ms; 8 MB took up to 44 ms)
STEP_BYTES = 1_000_000

#: what an AnnData is made of, in anndata's order (``read_anndata``)
_PARTS = ("X", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns", "raw")


def read_h5ad_in_steps(path: str | Path) -> Any:
    """The AnnData in ``path``, equal to ``anndata.read_h5ad(path)``.

    Parameters
    ----------
    path : str or Path
        An ``.h5ad`` file.

    Returns
    -------
    anndata.AnnData
        In memory (not backed).
    """
    import anndata as ad
    import h5py
    from anndata.experimental import read_dispatched

    with h5py.File(path, "r") as file:
        if not _current_layout(file):
            return ad.read_h5ad(path)

        def read(read_func, name: str, elem, iospec) -> Any:
            kind = iospec.encoding_type
            if name == "/":
                return _anndata({k: read_dispatched(elem[k], read) for k in _PARTS if k in elem})
            if kind == "dataframe":
                return _data_frame(elem, lambda child: read_dispatched(child, read))
            if kind in ("csr_matrix", "csc_matrix") and isinstance(elem, h5py.Group):
                return _sparse_matrix(elem, kind[:3])
            if kind in ("array", "string-array") and isinstance(elem, h5py.Dataset) and _long(elem):
                return _in_steps(elem)
            return read_func(elem)

        return read_dispatched(file, read)


def _current_layout(file) -> bool:
    """True for anndata's 0.8+ layout (encoding attributes, no ``raw.X``-style keys)."""
    return (file.attrs.get("encoding-type") == "anndata"
            and "obs" in file and file["obs"].attrs.get("encoding-type") == "dataframe"
            and not any(key.startswith("raw.") for key in file))


def _rows_per_step(dataset) -> int:
    """Rows read per call: ``STEP`` strings, or ``STEP_BYTES`` of numbers."""
    if dataset.dtype.kind == "O":
        return STEP
    row_bytes = dataset.dtype.itemsize * int(np.prod(dataset.shape[1:], dtype=np.int64))
    return max(1, STEP_BYTES // max(row_bytes, 1))


def _long(dataset) -> bool:
    """Worth reading in steps: more than one step's rows."""
    return dataset.ndim >= 1 and dataset.shape[0] > _rows_per_step(dataset)


def _in_steps(dataset) -> np.ndarray:
    """The whole dataset (strings as ``str``), a step of rows per read: other threads run between reads."""
    rows = _rows_per_step(dataset)
    if dataset.dtype.kind == "O":
        source, out = dataset.asstr(), _empty_objects(dataset.shape)
    else:
        source, out = dataset, np.empty(dataset.shape, dtype=dataset.dtype)  # touched step by step
    for start in range(0, dataset.shape[0], rows):
        out[start:start + rows] = source[start:start + rows]
    return out


def _empty_objects(shape: tuple) -> np.ndarray:
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


def _sparse_matrix(group, fmt: str) -> Any:
    """A CSR/CSC matrix as anndata's ``read_sparse`` returns it, its three arrays read in steps."""
    import anndata as ad
    import scipy.sparse as sp

    classes = {"csr": (sp.csr_matrix, sp.csr_array), "csc": (sp.csc_matrix, sp.csc_array)}[fmt]
    parts = {name: _in_steps(group[name]) if _long(group[name]) else group[name][...]
             for name in ("data", "indices", "indptr")}
    matrix = classes[bool(ad.settings.use_sparse_array_on_read)](
        tuple(int(n) for n in group.attrs["shape"]), dtype=parts["data"].dtype)
    matrix.data, matrix.indices, matrix.indptr = parts["data"], parts["indices"], parts["indptr"]
    return matrix


def _data_frame(elem, read_child) -> Any:
    """A data frame as anndata's ``read_dataframe`` builds it, its columns not copied into blocks."""
    import pandas as pd

    columns = list(elem.attrs["column-order"])
    index_key = elem.attrs["_index"]
    index = read_child(elem[index_key])
    if isinstance(index, np.ndarray) and index.dtype == object:
        index = pd.Index(index, dtype=object, copy=False)  # no inference over every name
    frame = pd.DataFrame({k: read_child(elem[k]) for k in columns}, index=index,
                         columns=columns if columns else None, copy=False)
    if index_key != "_index":
        frame.index.name = index_key
    return frame


def _anndata(parts: dict) -> Any:
    """``AnnData(**parts)`` without anndata's scan of every obs name; the names set afterwards."""
    import anndata as ad
    import pandas as pd

    obs = parts.get("obs")
    if not isinstance(obs, pd.DataFrame) or len(obs) <= STEP or obs.index.dtype != object:
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
