"""A first look at a large ``.h5ad`` slide: its spots' total counts, before the barcodes are read.

Reading a slide of millions of spots is mostly reading their names: HDF5 stores
barcodes as variable-length strings, and 12M of them take 3.5-5 s to read and
1.5 s to check for duplicates, while the spot centres and the count matrix
take under a second.  The coarse preview the viewer shows first (the exact
mean of every spot's total counts per tile,
:func:`~napari_roiscore.spots.view_build.preview_raster`) needs only those
two, so it can be drawn while the rest is read.

:func:`first_look_h5ad` computes that preview straight from the file. It
answers only when it can be sure the full read will draw the same thing:
raw counts in ``X`` (no ``layers['counts']``, no ``raw``, whole numbers,
none negative), CSR or dense, finite centres in ``obsm['spatial']``, and a
pixel size that does not need the Space Ranger grid rule; otherwise ``None``
(the slide then appears when it is read, as before).  Nothing here is kept:
the table, its checks and its own preview come from the full read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_roiscore.scoring.normalise import _chunk_row_sums
from napari_roiscore.spots.in_steps import read_in_steps, rows_per_step
from napari_roiscore.spots.raw_counts import is_whole_numbers
from napari_roiscore.spots.view_build import RasterImage, preview_raster

__all__ = ["FIRST_LOOK_MIN_SPOTS", "FirstLook", "first_look_h5ad"]

#: slides with fewer spots are read whole before anything is drawn (measured, viewer_scale --files: at 1M
#: the values came 0.5-0.9 s sooner and the table 0.5-1.2 s later; at 3M 2.0-2.6 s sooner, 0.5-1.4 s later)
FIRST_LOOK_MIN_SPOTS = 2_000_000


@dataclass
class FirstLook:
    """The coarse preview of a slide's total counts, and how to place it.

    Attributes
    ----------
    image : RasterImage
        :func:`~napari_roiscore.spots.view_build.preview_raster` of every spot's total counts.
    totals : numpy.ndarray
        Total counts per spot, in the file's order (the values drawn; the full read's
        view reuses them and the image instead of summing again).
    pixel_size_um : float or None
        Micrometres per spot pixel (``uns['roiscore']['pixel_size_um']``), None = pixels.
    n_spots : int
    """

    image: RasterImage
    totals: np.ndarray
    pixel_size_um: float | None
    n_spots: int


def first_look_h5ad(path: str | Path, min_spots: int | None = None) -> FirstLook | None:
    """The first look at the ``.h5ad`` at ``path``, or None (small, or not sure to match the full read).

    Reads the spot centres and the count matrix a step at a time
    (:func:`~napari_roiscore.spots.in_steps.read_in_steps`), so a worker thread
    running it leaves the GUI thread its turns. Never raises for a bad file:
    the full read names what is wrong. ``min_spots`` defaults to :data:`FIRST_LOOK_MIN_SPOTS`.
    """
    min_spots = FIRST_LOOK_MIN_SPOTS if min_spots is None else min_spots
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return _look(f, min_spots)
    except Exception:  # noqa: BLE001 - unreadable here: the full read reports it
        return None


def _look(f, min_spots: int) -> FirstLook | None:
    import h5py

    spatial = f.get("obsm/spatial")
    if not isinstance(spatial, h5py.Dataset) or spatial.ndim != 2 or spatial.shape[1] < 2 \
            or spatial.dtype.kind not in "iuf" or spatial.shape[0] < max(min_spots, 1):
        return None
    if "raw" in f or "counts" in f.get("layers", {}) or _text(f, "obs", "encoding-type") != "dataframe":
        return None
    obs = f["obs"]
    if "array_row" in obs and "array_col" in obs and "uns/roiscore/pixel_size_um" not in f:
        return None  # scaled by the Space Ranger grid rule (spots.lattice), which needs the whole table
    kind = f.get("uns/roiscore/counts_kind")
    if kind is not None and _scalar(kind) not in ("raw", b"raw"):
        return None
    pixel_size = None
    if "uns/roiscore/pixel_size_um" in f:
        pixel_size = _scalar(f["uns/roiscore/pixel_size_um"])
        if not isinstance(pixel_size, (int, float, np.number)) or not np.isfinite(pixel_size) or pixel_size <= 0:
            return None
        pixel_size = float(pixel_size)
    n = spatial.shape[0]
    totals = _totals(f.get("X"), n)
    if totals is None:
        return None
    xy = read_in_steps(spatial)[:, :2].astype(np.float64, copy=False)
    if not (np.isfinite(xy.min()) and np.isfinite(xy.max())):
        return None
    return FirstLook(preview_raster(xy, totals), totals, pixel_size, n)


def _text(f, name: str, attr: str) -> str | None:
    value = f[name].attrs.get(attr) if name in f else None
    return value.decode() if isinstance(value, bytes) else value


def _scalar(dataset) -> object:
    value = dataset[()]
    return value.decode() if isinstance(value, bytes) else value


def _totals(X, n: int) -> np.ndarray | None:
    """Total counts per spot of ``X`` (CSR group or dense dataset), or None (not whole, negative, other)."""
    import h5py

    if isinstance(X, h5py.Dataset):
        if X.ndim != 2 or X.shape[0] != n or X.dtype.kind not in "iuf":
            return None
        return _dense_totals(X)
    if not isinstance(X, h5py.Group) or _text(X.file, X.name, "encoding-type") != "csr_matrix":
        return None
    shape = tuple(int(v) for v in X.attrs.get("shape", ()))
    if len(shape) != 2 or shape[0] != n or not {"data", "indptr"} <= set(X.keys()):
        return None
    data = X["data"]
    if data.dtype.kind not in "iuf":
        return None
    indptr = read_in_steps(X["indptr"]).astype(np.int64, copy=False)
    if len(indptr) != n + 1 or indptr[0] != 0 or indptr[-1] != data.shape[0] or np.any(np.diff(indptr) < 0):
        return None
    out = np.zeros(n, dtype=np.float64)
    most = rows_per_step(data)  # entries read per step
    a = 0
    while a < n:
        b = int(np.searchsorted(indptr, indptr[a] + most, side="right")) - 1
        b = min(max(b, a + 1), n)  # at least one row
        lo, hi = int(indptr[a]), int(indptr[b])
        values = data[lo:hi]
        if not _raw_counts(values):
            return None
        out[a:b] = _chunk_row_sums(values, indptr[a:b + 1] - lo)
        a = b
    return out


def _dense_totals(X) -> np.ndarray | None:
    rows = rows_per_step(X)
    out = np.zeros(X.shape[0], dtype=np.float64)
    for a in range(0, X.shape[0], rows):
        block = X[a:a + rows]
        if not _raw_counts(block):
            return None
        out[a:a + rows] = np.asarray(block, dtype=np.float64).sum(axis=1)
    return out


def _raw_counts(values: np.ndarray) -> bool:
    """Whole, finite and not negative (what the full read accepts as raw counts)."""
    if values.size == 0:
        return True
    if values.dtype.kind == "f" and not (np.isfinite(values).all() and is_whole_numbers(values)):
        return False
    return bool(values.min() >= 0)
