"""ROIs from annotation values instead of drawing (GeoMx AOIs).

In a GeoMx study every AOI is already a region with its own library, and the
annotation sheet says what it is (segment "tumor" / "stroma", a ROI label, a
patient).  Drawing ROIs over the made-up layout grid of AOIs without
coordinates would be meaningless; instead each AOI becomes one ROI whose
class is the value of a chosen annotation column, so the Compare tab,
reports and differential expression work on real GeoMx studies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from shapely.geometry import box

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.classes import normalise_class
from napari_roiscore.rois.roi import Roi
from napari_roiscore.spots.table import SpotTable

__all__ = ["annotation_columns", "has_real_coordinates", "rois_from_annotation"]

#: columns that never make useful groups
_SKIP = {"in_tissue", "has_coordinates", "ntc_count"}


def has_real_coordinates(spots: SpotTable) -> bool:
    """False when spot positions are a layout (GeoMx AOIs without ROI coordinates)."""
    obs = spots.adata.obs
    if "has_coordinates" in obs:
        return bool(np.asarray(obs["has_coordinates"], dtype=bool).all())
    return True


def annotation_columns(spots: SpotTable, max_levels: int = 50) -> list[str]:
    """Annotation columns that can group spots: 2..``max_levels`` distinct values."""
    obs = spots.adata.obs
    out = []
    for col in obs.columns:
        if col in _SKIP:
            continue
        n = obs[col].astype(str).nunique(dropna=True)
        if 2 <= n <= max_levels:
            out.append(str(col))
    return out


def rois_from_annotation(spots: SpotTable, column: str, label_column: str | None = None) -> list[Roi]:
    """One ROI per spot (AOI), classed by the value of ``column``.

    Parameters
    ----------
    spots : SpotTable
    column : str
        Annotation column whose values become ROI classes ("tumor" becomes
        the built-in class "tumour"; other values are user classes).
    label_column : str, optional
        Column with the ROI names (default: the spot / AOI ids).

    Returns
    -------
    list of Roi
        Squares of the spot diameter centred on each spot, so each holds
        exactly its own spot.

    Raises
    ------
    RoiScoreError
        When ``column`` (or ``label_column``) is not an annotation column.
    """
    obs = spots.adata.obs
    for col in (column, label_column):
        if col is not None and col not in obs.columns:
            cols = ", ".join(map(str, obs.columns[:20]))
            raise RoiScoreError(f"No annotation column {col!r} in the spots' annotations.",
                                f"Choose one of: {cols}.")
    labels = (obs[label_column] if label_column else pd.Series(obs.index, index=obs.index)).astype(str)
    values = obs[column]
    xy = spots.xy
    half = spots.diameter_px / 2.0
    rois, seen = [], {}
    for i, (name, value) in enumerate(zip(labels.to_numpy(), values.to_numpy())):
        k = seen.get(name, 0)
        seen[name] = k + 1
        unique_name = name if k == 0 else f"{name} #{k + 1}"
        x, y = float(xy[i, 0]), float(xy[i, 1])
        rois.append(Roi(unique_name, normalise_class(value), box(x - half, y - half, x + half, y + half)))
    return rois
