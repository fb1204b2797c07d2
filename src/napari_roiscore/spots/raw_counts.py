"""Raw counts: are these values raw counts, and where in an AnnData are they?

Every score needs raw counts — whole, finite, non-negative numbers, not all
zero.  A log-normalised ``X`` is the usual mistake; scanpy users keep the
counts in ``layers["counts"]`` or ``adata.raw``, and :func:`select_raw_counts`
finds them there.  :func:`check_raw_count_values` is what
:meth:`~napari_roiscore.spots.table.SpotTable.validate` runs on every table.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError

__all__ = ["check_raw_count_values", "is_whole_numbers", "select_raw_counts"]


def check_raw_count_values(X: Any, src: str) -> None:
    """Refuse counts that are not numbers, NaN/inf, negative, or all zero.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix
        Spots x genes (sparse: only the stored values are checked).
    src : str
        Name of the source, for messages.

    Raises
    ------
    RoiScoreError
        Naming the problem and where raw counts are usually kept.
    """
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.size:
        if not np.issubdtype(data.dtype, np.number):
            raise RoiScoreError(f"{src}: counts are not numeric.", "Store counts as numbers.")
        if not np.all(np.isfinite(data)):
            raise RoiScoreError(
                f"{src}: the count matrix contains NaN or inf.",
                "Provide raw integer counts (adata.layers['counts'] if X is normalised).",
            )
        if data.min() < 0:
            raise RoiScoreError(
                f"{src}: the count matrix contains negative values — it is not raw counts.",
                "Provide raw integer counts (e.g. adata.layers['counts']).",
            )
    if not data.size or not np.any(data):
        raise RoiScoreError(f"{src}: every count is zero — there is nothing to score.",
                            "Open the raw counts (e.g. adata.layers['counts'] holds them?).")


#: elements checked per block by :func:`is_whole_numbers` (bounds its temporary memory)
_WHOLE_BLOCK = 1 << 22


def is_whole_numbers(X: Any) -> bool:
    """True if every finite value of ``X`` (dense or sparse) is a whole number.

    Integer dtypes pass at once; float data are checked block by block with
    ``np.mod`` (sparse: only the stored ``.data``).  NaN/inf are ignored here
    (:func:`check_raw_count_values` reports them).
    """
    return _first_fraction(X) is None


def _fraction_text(X: Any) -> str:
    """A non-whole value of ``X`` written in full (``:g`` would print 19.000000000019 as 19)."""
    x = _first_fraction(X)
    return "?" if x is None else repr(float(x))


def _first_fraction(X: Any) -> float | None:
    """The first finite non-whole value of ``X``, or None (scanned block by block)."""
    data = X.data if sp.issparse(X) else np.asarray(X)
    if not np.issubdtype(data.dtype, np.floating):
        return None  # integer or bool counts; non-numeric is reported by validate
    flat = data.reshape(-1)
    for start in range(0, flat.size, _WHOLE_BLOCK):
        block = flat[start:start + _WHOLE_BLOCK]
        bad = block[np.isfinite(block) & (np.mod(block, 1.0) != 0)]
        if bad.size:
            return float(bad[0])
    return None


def select_raw_counts(adata: Any, src: str, counts_layer: str | None = None) -> tuple[Any, str]:
    """Put the raw (whole-number) counts of ``adata`` in ``X``.

    Scores need raw counts.  In order:

    1. ``counts_layer`` when given, else ``layers["counts"]`` when present
       (one that is not whole numbers gives way, with a warning, to an ``X``
       that is);
    2. ``X`` when it holds whole numbers;
    3. ``adata.raw`` when it holds whole numbers (scanpy keeps the counts
       there before normalising): its ``X`` and ``var`` (so its genes, which
       may be more or fewer than ``X``'s) with ``adata``'s spots;
    4. otherwise a :class:`RoiScoreError`: ``X`` looks log-normalised.

    Tables that declare non-count values in ``uns["roiscore"]["counts_kind"]``
    (``"q3"`` / ``"normalised"``, as GeoMx exports write) keep ``X`` as is.

    Parameters
    ----------
    adata : anndata.AnnData
    src : str
        Name of the source, for messages.
    counts_layer : str, optional
        Layer holding the raw counts.

    Returns
    -------
    adata : anndata.AnnData
        ``adata`` itself (``X`` replaced) or a new object built from ``.raw``.
    source : str
        Where the counts came from: ``"X"``, ``"layers['<name>']"`` or ``"raw.X"``.

    Raises
    ------
    RoiScoreError
        Unknown layer, a counts layer that is not whole numbers, or
        normalised ``X`` with no raw counts to fall back on.
    """
    import anndata as ad

    layer = counts_layer or ("counts" if "counts" in adata.layers else None)
    meta = adata.uns.get("roiscore")
    declared = meta.get("counts_kind") if isinstance(meta, dict) else None
    if layer is not None:
        if layer not in adata.layers:
            raise RoiScoreError(
                f"{src}: layer {layer!r} not found.",
                f"Use one of {list(adata.layers)} or leave it empty to use X.",
            )
        values = adata.layers[layer]
        if declared in (None, "raw") and not is_whole_numbers(values):
            if counts_layer is None and is_whole_numbers(adata.X):
                # a layers['counts'] that holds something else, but X holds the raw counts
                warnings.warn(f"{src}: layers['counts'] is not whole numbers; using X, which is.",
                              stacklevel=2)
                return adata, "X"
            raise RoiScoreError(
                f"{src}: layers[{layer!r}] is not whole numbers (e.g. {_fraction_text(values)}) — "
                "it is not raw counts.",
                "Store the raw integer counts in X or layers['counts'] (e.g. adata.layers['counts'] = "
                "adata.raw.X before normalising).",
            )
        adata.X = values
        return adata, f"layers[{layer!r}]"
    if declared not in (None, "raw") or is_whole_numbers(adata.X):
        return adata, "X"
    raw = adata.raw
    if raw is not None and raw.n_obs == adata.n_obs and is_whole_numbers(raw.X):
        out = ad.AnnData(X=raw.X, obs=adata.obs, var=raw.var.copy(), uns=adata.uns,
                         obsm=dict(adata.obsm.items()))
        return out, "raw.X"
    why = "and adata.raw is not whole numbers either" if raw is not None else "and there is no adata.raw"
    raise RoiScoreError(
        f"{src}: X is not whole numbers (e.g. {_fraction_text(adata.X)}) — it looks log-normalised, "
        f"not raw counts; there is no layers['counts'] {why}.",
        "Store the raw integer counts in X, in layers['counts'] or in adata.raw "
        "(scanpy: adata.raw = adata, or adata.layers['counts'] = adata.X.copy(), before normalising).",
    )
