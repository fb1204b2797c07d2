"""Per-ROI measurements a pathologist checks before trusting a score.

Area, number of spots, total UMIs (raw counts), mean UMIs per spot and
number of genes detected (genes with at least one count in the ROI's spots).
A score from an ROI with six spots and 200 UMIs is not the same evidence as
one from 400 spots and 2 million UMIs; these columns say which is which.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.normalise import library_sizes
from napari_roiscore.spots.table import SpotTable

__all__ = ["MEASUREMENT_COLUMNS", "measure_rois", "area_column"]

MEASUREMENT_COLUMNS = ["area", "total_umis", "mean_umis_per_spot", "genes_detected"]


def area_column(spots: SpotTable) -> str:
    """Name of the area column: ``area_um2`` when the pixel size is known."""
    return "area_um2" if spots.pixel_size_um else "area_px2"


def measure_rois(
    spots: SpotTable,
    rois: Sequence[Roi],
    members: Sequence[np.ndarray],
    totals: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per ROI: area, total UMIs, mean UMIs per spot, genes detected.

    Parameters
    ----------
    spots : SpotTable
        Coordinates in pixels; ``spots.pixel_size_um`` (µm per pixel) turns the
        area into µm² (column ``area_um2``; ``area_px2`` when it is unknown).
    rois : sequence of Roi
    members : sequence of int arrays
        Indices of the spots counted for each ROI (after any marker
        restriction), as :meth:`napari_roiscore.scoring.scorer.RoiScorer.members`
        returns them.
    totals : ndarray, optional
        Total counts per spot (computed when not given; pass it to reuse).

    Returns
    -------
    DataFrame
        Columns ``area_um2`` (or ``area_px2``), ``total_umis``,
        ``mean_umis_per_spot`` (NaN for an ROI without spots) and
        ``genes_detected``; an ROI with a problem (``roi.problem``) gets NaN area.
    """
    X = spots.counts
    if totals is None:
        totals = library_sizes(X)
    scale = float(spots.pixel_size_um) ** 2 if spots.pixel_size_um else 1.0
    rows = []
    for roi, m in zip(rois, members):
        m = np.asarray(m, dtype=np.int64)
        area = np.nan if roi.problem else float(roi.geometry.area) * scale
        total = float(totals[m].sum()) if m.size else 0.0
        mean = total / m.size if m.size else np.nan
        rows.append([area, total, mean, _genes_detected(X, m)])
    out = pd.DataFrame(rows, columns=[area_column(spots), *MEASUREMENT_COLUMNS[1:]])
    out["genes_detected"] = out["genes_detected"].astype(np.int64)
    return out


def _genes_detected(X: sp.csr_matrix, rows: np.ndarray) -> int:
    if rows.size == 0:
        return 0
    sub = X[np.sort(rows)]
    if sp.issparse(sub):
        sub = sub.tocsr()
        # a stored zero is not a detection
        return int(np.unique(sub.indices[sub.data > 0]).size)
    return int((np.asarray(sub) > 0).any(axis=0).sum())
