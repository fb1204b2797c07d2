"""Generated large slides for the viewer benchmarks: a 2 µm bin grid or irregular cells.

Tissue: a lobed blob with holes; expression: 12 genes (the example panel and
fillers) whose Poisson means follow smooth random fields, so the raster
shows structure.  Seeded; no data files.
"""

from __future__ import annotations

import numpy as np


def _field(rng, n=48):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.standard_normal((n, n)), 4.0, mode="wrap")


def _sample(field, u, v):
    """Bilinear sample of ``field`` at fractional coordinates u, v in [0, 1]."""
    from scipy.ndimage import map_coordinates

    n = field.shape[0] - 1
    return map_coordinates(field, [u * n, v * n], order=1, mode="nearest")


def _tissue(rng, u, v):
    """Inside the tissue: a lobed disc with two holes (u, v in [0, 1])."""
    t = np.arctan2(v - 0.5, u - 0.5)
    r = np.hypot(u - 0.5, v - 0.5)
    edge = 0.42 + 0.05 * np.sin(3 * t + 1.0) + 0.03 * np.sin(7 * t)
    holes = (np.hypot(u - 0.35, v - 0.6) < 0.06) | (np.hypot(u - 0.62, v - 0.38) < 0.04)
    return (r < edge) & ~holes


def _table(xy, u, v, rng, diameter_px, shape, px_um, obs_extra=None):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from napari_roiscore.scoring.signature import EXAMPLE_PANEL
    from napari_roiscore.spots.table import SpotTable

    n = len(xy)
    genes = list(EXAMPLE_PANEL.up)[:6] + [f"G{i}" for i in range(6)]
    base = 0.15 if shape == "square" else 2.0  # 2 µm bins hold few UMIs; cells many
    cols = []
    for _ in genes:
        lam = base * np.exp(1.2 * _sample(_field(rng), u, v))
        cols.append(sp.csc_matrix(rng.poisson(lam).astype(np.int32)[:, None]))
    counts = sp.hstack(cols, format="csr")
    obs = pd.DataFrame(obs_extra or {}, index=pd.Index(np.char.add("s", np.arange(n).astype(str))))
    a = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=genes))
    a.obsm["spatial"] = xy
    return SpotTable(a, diameter_px=diameter_px, shape=shape, pixel_size_um=px_um,
                     provenance={"reader": "benchmark"})


def grid_slide(n_target: int, seed: int = 0, bin_um: float = 2.0, px_um: float = 0.2738):
    """About ``n_target`` square bins of ``bin_um`` on a grid (Visium HD-like, full-res pixels)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_target / 0.5)))  # the tissue covers ~half of the square
    r, c = np.divmod(np.arange(side * side, dtype=np.int64), side)
    u, v = (c + 0.5) / side, (r + 0.5) / side
    keep = _tissue(rng, u, v)
    r, c, u, v = r[keep], c[keep], u[keep], v[keep]
    pitch = bin_um / px_um
    xy = np.column_stack([1500.0 + c * pitch, 900.0 + r * pitch])
    return _table(xy, u, v, rng, pitch, "square", px_um,
                  {"array_row": r.astype(np.int32), "array_col": c.astype(np.int32)})


def cell_slide(n_target: int, seed: int = 0, px_um: float = 0.2125, cell_um: float = 10.0):
    """About ``n_target`` irregular cells (Xenium/CosMx-like), centres uniform in the tissue."""
    rng = np.random.default_rng(seed)
    m = int(n_target / 0.5)
    u, v = rng.random(m), rng.random(m)
    keep = _tissue(rng, u, v)
    u, v = u[keep], v[keep]
    extent_px = np.sqrt(len(u) / 0.5) * cell_um / px_um  # ~one cell per (cell_um)^2
    xy = np.column_stack([u * extent_px, v * extent_px])
    return _table(xy, u, v, rng, cell_um / px_um, "circle", px_um)
