"""Exports: ROI scores as CSV, ROI membership and scores into AnnData ``.obs``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write, atomic_write_text
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.methods import SpotScores
from napari_roiscore.scoring.scorer import score_columns
from napari_roiscore.spots.table import SpotTable

__all__ = ["annotate_spots", "escape_cell", "escape_formulas", "scores_csv", "write_annotated_h5ad"]


def scores_csv(table: pd.DataFrame, scores: SpotScores | None, path: str | Path,
               extra: dict | None = None, inputs: Sequence[str | Path | None] = ()) -> Path:
    """Write the ROI table plus signature, method and genes used/missing (atomic).

    Text cells beginning with ``=``, ``+``, ``-``, ``@`` (or a tab/CR) get a
    leading apostrophe so a spreadsheet shows them as text and never runs them
    as a formula (an ROI named ``=HYPERLINK(...)``); numbers are untouched.
    The output may not replace one of ``inputs``.
    """
    df = table.copy()
    for k, v in {**(score_columns(scores) if scores is not None else {}), **(extra or {})}.items():
        df[k] = v
    return atomic_write_text(path, escape_formulas(df).to_csv(index=False), inputs)


#: first characters that make a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) are escaped by :func:`escape_cell`."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(escape_cell)
    out.columns = [escape_cell(str(c)) for c in out.columns]
    return out


def annotate_spots(spots: SpotTable, rois: Sequence[Roi], members: Callable[[Roi], np.ndarray],
                   scores: SpotScores | None = None, spot_mask: np.ndarray | None = None):
    """A copy of the spots' AnnData with ROI membership, class and score in ``.obs``.

    Columns: ``roi`` (name of the ROI holding the spot; several joined by
    ";"; empty outside all ROIs), ``roi_class`` (likewise), ``in_roi_<name>``
    booleans, ``roiscore_<method>`` spot scores and ``roiscore_included``
    (marker restriction).  ``uns["roiscore"]`` records signature and method.
    """
    adata = spots.adata.copy()
    n = adata.n_obs
    names = [[] for _ in range(n)]
    classes = [[] for _ in range(n)]
    for roi in rois:
        idx = members(roi) if roi.problem is None else np.zeros(0, dtype=np.int64)
        flag = np.zeros(n, dtype=bool)
        flag[idx] = True
        adata.obs[f"in_roi_{roi.name}"] = flag
        for i in idx:
            names[i].append(roi.name)
            if roi.roi_class not in classes[i]:
                classes[i].append(roi.roi_class)
    adata.obs["roi"] = pd.Categorical([";".join(x) for x in names])
    adata.obs["roi_class"] = pd.Categorical([";".join(x) for x in classes])
    meta = dict(adata.uns.get("roiscore", {}))
    if scores is not None:
        adata.obs[f"roiscore_{scores.method}"] = scores.values
        meta.update({
            "signature_name": scores.signature.label,
            "signature_up": list(scores.signature.up),
            "signature_down": list(scores.signature.down),
            "genes_used": list(scores.match.used),
            "genes_missing": list(scores.match.missing),
            "method": scores.method,
        })
    if spot_mask is not None:
        adata.obs["roiscore_included"] = np.asarray(spot_mask, dtype=bool)
    adata.uns["roiscore"] = meta
    return adata


def write_annotated_h5ad(adata, path: str | Path, inputs: Sequence[str | Path | None] = ()) -> Path:
    """Write ``adata`` as ``.h5ad`` atomically (never over one of ``inputs`` or a data file read)."""
    return atomic_write(path, lambda p: adata.write_h5ad(p), inputs)
