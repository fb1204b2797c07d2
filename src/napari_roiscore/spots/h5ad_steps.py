"""Read an ``.h5ad`` file as anndata does, in steps that leave other threads their turns.

``anndata.read_h5ad`` reads each column of ``obs`` in one call: for a Visium HD 2 µm
slide (12M bins) reading the barcodes is one h5py call of 0.5-0.8 s that holds the
interpreter, pandas then copies the numeric columns into one block (0.3-0.4 s) and
anndata, when it builds the AnnData, scans every barcode for missing values and for
strings (0.5 s) — only to warn. In a reader's worker thread each of these calls
freezes napari's GUI thread for its whole length.

Here anndata's own element readers do the work (``anndata.experimental.read_dispatched``),
except that long string and number arrays are read a step at a time
(:func:`~napari_roiscore.spots.in_steps.read_in_steps`), data frames
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

from napari_roiscore.spots.in_steps import is_long, make_anndata, read_in_steps

__all__ = ["read_h5ad_in_steps"]


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
                return make_anndata(**{k: read_dispatched(elem[k], read) for k in _PARTS if k in elem})
            if kind == "dataframe":
                return _data_frame(elem, lambda child: read_dispatched(child, read))
            if kind in ("csr_matrix", "csc_matrix") and isinstance(elem, h5py.Group):
                return _sparse_matrix(elem, kind[:3])
            if kind in ("array", "string-array") and isinstance(elem, h5py.Dataset) and is_long(elem):
                return read_in_steps(elem)
            return read_func(elem)

        return read_dispatched(file, read)


def _current_layout(file) -> bool:
    """True for anndata's 0.8+ layout (encoding attributes, no ``raw.X``-style keys)."""
    return (file.attrs.get("encoding-type") == "anndata"
            and "obs" in file and file["obs"].attrs.get("encoding-type") == "dataframe"
            and not any(key.startswith("raw.") for key in file))


def _sparse_matrix(group, fmt: str) -> Any:
    """A CSR/CSC matrix as anndata's ``read_sparse`` returns it, its three arrays read in steps."""
    import anndata as ad
    import scipy.sparse as sp

    classes = {"csr": (sp.csr_matrix, sp.csr_array), "csc": (sp.csc_matrix, sp.csc_array)}[fmt]
    parts = {name: read_in_steps(group[name]) for name in ("data", "indices", "indptr")}
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
