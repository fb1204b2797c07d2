"""Independent reference computations used by several tests.

Written without the package's scoring/index code: pandas/numpy for
normalisation and z-scores, matplotlib-free point-in-polygon by shapely.
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import shapely
from shapely.geometry import shape


def mean_z_scores(h5ad: Path, genes: list[str]) -> np.ndarray:
    """Mean z-score per spot: log1p(CP10k), z per gene over spots (ddof=0), mean over genes."""
    a = ad.read_h5ad(h5ad)
    X = a.X.toarray().astype(np.float64)
    cp10k = X / X.sum(axis=1, keepdims=True) * 1e4
    lookup = {g.upper(): i for i, g in enumerate(a.var_names)}
    cols = [lookup[g.upper()] for g in genes if g.upper() in lookup]
    e = np.log1p(cp10k[:, cols])
    z = (e - e.mean(axis=0)) / e.std(axis=0)
    return z.mean(axis=1)


def spots_xy(h5ad: Path) -> np.ndarray:
    return np.asarray(ad.read_h5ad(h5ad).obsm["spatial"], dtype=float)


def inside(xy: np.ndarray, polygon_xy: np.ndarray) -> np.ndarray:
    return shapely.contains_xy(shapely.Polygon(polygon_xy), xy[:, 0], xy[:, 1])


def geojson_polygons(path: Path) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (class, exterior (x, y))"""
    data = json.loads(Path(path).read_text())
    out = {}
    for f in data["features"]:
        out[f["properties"]["name"]] = (
            f["properties"]["classification"]["name"],
            np.asarray(shape(f["geometry"]).exterior.coords)[:-1],
        )
    return out
