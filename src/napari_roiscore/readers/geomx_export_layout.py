"""GeoMx DSP export: where each AOI is drawn (ROI coordinates, several scans, or a grid)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from napari_roiscore.readers.geomx import GRID_PITCH_PX
from napari_roiscore.readers.geomx_export_tables import _column

__all__: list[str] = []


def _coordinates(obs: pd.DataFrame, scan_col: str | None) -> tuple[np.ndarray | None, np.ndarray, str]:
    cx, cy = _column(obs, "ROICoordinateX"), _column(obs, "ROICoordinateY")
    offsets = np.zeros(len(obs))
    if cx is None or cy is None:
        return None, offsets, "no ROICoordinateX/ROICoordinateY columns"
    xy = obs[[cx, cy]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    missing = ~np.isfinite(xy).all(axis=1)
    if missing.any():
        warnings.warn(f"GeoMx export: {int(missing.sum())} AOI(s) have no ROI coordinates, e.g. "
                      f"{obs.index[missing][:3].tolist()}; all AOIs are laid out on a grid instead.", stacklevel=3)
        return None, offsets, f"grid: {int(missing.sum())} AOI(s) without {cx!r}/{cy!r}"
    how = f"segment properties {cx!r}, {cy!r} (ROI centre, scan pixels)"
    if scan_col is not None:
        scans = obs[scan_col].astype(str).to_numpy()
        order = list(dict.fromkeys(scans))
        if len(order) > 1:
            span = np.ptp(xy[:, 0]) if len(xy) > 1 else 0.0
            margin = max(span * 0.1, 10 * GRID_PITCH_PX)
            start = None
            for s in order:  # the first scan keeps its coordinates; the next start right of it
                rows = scans == s
                offsets[rows] = 0.0 if start is None else start - xy[rows, 0].min()
                start = (xy[rows, 0] + offsets[rows]).max() + margin
            xy[:, 0] += offsets
            how += f"; {len(order)} scans ({scan_col}) placed side by side along x, offsets in obs['scan_offset_x']"
    return xy, offsets, how


def _grid(obs: pd.DataFrame, slide_col: str | None) -> np.ndarray:
    slides = obs[slide_col].astype(str).to_numpy() if slide_col else np.full(len(obs), "slide")
    xy = np.zeros((len(obs), 2))
    for r, s in enumerate(dict.fromkeys(slides)):
        idx = np.flatnonzero(slides == s)
        xy[idx, 0] = np.arange(len(idx)) * GRID_PITCH_PX
        xy[idx, 1] = r * GRID_PITCH_PX
    return xy
