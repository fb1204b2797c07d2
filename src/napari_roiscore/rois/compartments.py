"""Automatic compartments: tumour from the cancer-cell channel, stroma = tissue − tumour.

The proposal is a starting point for the pathologist, who edits the polygons.

Tumour
    The cancer-cell channel (e.g. panCK) is smoothed with a Gaussian
    (``sigma_um``), thresholded (Otsu by default), kept inside the tissue,
    cleared of objects smaller than ``min_area_um2`` and of holes smaller than
    ``max_hole_um2`` (larger holes, e.g. stroma inside a nest, stay holes).
Tissue
    Every channel is scaled by its own 99.5th percentile, the channels are
    summed (or only the ``tissue_channels`` given, e.g. DAPI), smoothed with
    ``tissue_sigma_um`` and thresholded (Otsu by default); small objects and
    small holes are removed as for the tumour.
Sparse ion counts (MIBI-TOF, IMC)
    Detected automatically (integer pixels, most of them zero; or
    ``counts=True``).  Most of such a field is tissue, so Otsu on the summed
    channels would split cell-dense from cell-poor tissue rather than tissue
    from background.  Instead, tissue is where the smoothed total ion count
    (all channels, or ``tissue_channels``) reaches ``tissue_fraction`` of its
    90th percentile: background (glass, lumens) holds almost no ions.  The
    tumour channel is smoothed, then square-root transformed (variance-stabilising
    for counts) before Otsu.
Stroma
    Tissue polygons minus tumour polygons (exact polygon difference, so the
    two classes never overlap); parts smaller than ``min_area_um2`` are
    dropped.

The work is done at one pyramid level (pixel ≈ ``target_pixel_um``, at most
``MAX_PIXELS`` pixels) and outlines are returned as :class:`Roi` polygons,
holes included, in (x, y) level-0 pixels (see :mod:`napari_roiscore.images.markers`
for the level ↔ level-0 coordinate rule).  Outlines follow pixel edges and are
simplified to within ``simplify_um`` (default: one working pixel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.multiplex import MultiplexImage
from napari_roiscore.images.markers import (find_channel, level_downsample, level_to_level0, looks_like_counts,
                                             otsu_threshold)
from napari_roiscore.rois.roi import Roi, polygonal

__all__ = ["Compartments", "mask_to_polygons", "propose_compartments"]

#: Largest working image (pixels per channel) for compartment proposals.
MAX_PIXELS = 16_000_000
#: Default tissue smoothing (µm), and for sparse ion counts
TISSUE_SIGMA_UM = 20.0
COUNT_TISSUE_SIGMA_UM = 8.0


@dataclass(frozen=True)
class Compartments:
    """Proposed tumour and stroma ROIs and how they were made.

    Attributes
    ----------
    rois : list of Roi
        Tumour ROIs ("T01", ... by decreasing area), then stroma ROIs ("S01", ...).
    level : int
        Pyramid level worked on.
    downsample : (float, float)
        Level-0 pixels per working pixel.
    tumour_threshold, tissue_threshold : float
        On the smoothed (tumour; square-rooted for counts) and smoothed, scaled
        sum (tissue; total counts for counts) images.
    tumour_mask, tissue_mask : ndarray of bool
        Working-level masks after size filtering and hole filling.
    settings : dict
        All parameters, for reports.
    """

    rois: list[Roi]
    level: int
    downsample: tuple[float, float]
    tumour_threshold: float
    tissue_threshold: float
    tumour_mask: np.ndarray
    tissue_mask: np.ndarray
    settings: dict = field(default_factory=dict)

    def of_class(self, roi_class: str) -> list[Roi]:
        return [r for r in self.rois if r.roi_class == roi_class]


def _choose_level(image: MultiplexImage, pixel_um: float, target_um: float) -> int:
    best = 0
    for k in range(len(image.levels)):
        if max(level_downsample(image, k)) * pixel_um <= target_um:
            best = k
    while best + 1 < len(image.levels) and np.prod(image.levels[best].shape[-2:]) > MAX_PIXELS:
        best += 1
    return best


def _rings(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines (row, col) of ``mask`` along pixel edges."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(np.float32), 1)
    return [c - 1.0 for c in find_contours(padded, 0.5) if len(c) >= 4]


def mask_to_polygons(mask: np.ndarray, downsample: tuple[float, float] = (1.0, 1.0),
                     simplify_px: float = 0.0) -> list[Polygon]:
    """Polygons (with holes) of a binary mask, in (x, y) level-0 pixels.

    Parameters
    ----------
    mask : 2-D bool array at some pyramid level
    downsample : (float, float)
        Level-0 pixels per mask pixel (rows, columns).
    simplify_px : float
        Douglas–Peucker tolerance in level-0 pixels (0: no simplification).

    Returns
    -------
    list of Polygon
        One per connected region, largest first.  Nesting is resolved by
        parity: an outline inside an odd number of others bounds a hole.
    """
    rings = []
    for r in _rings(np.asarray(mask, bool)):
        ring = Polygon(level_to_level0(r[:, ::-1], downsample))
        rings.extend([ring] if ring.is_valid else _parts(polygonal(ring)))
    rings = [r for r in rings if r.area > 0]
    if not rings:
        return []
    tree = shapely.STRtree(rings)
    probes = shapely.points([np.asarray(r.exterior.coords[0]) for r in rings])
    pi, ri = tree.query(probes, predicate="within")
    depth = np.bincount(pi, minlength=len(rings))
    parent = np.full(len(rings), -1)
    for p, r in zip(pi, ri):
        if depth[r] == depth[p] - 1:
            parent[p] = r
    holes: dict[int, list] = {}
    for i in np.flatnonzero(depth % 2 == 1):
        holes.setdefault(int(parent[i]), []).append(rings[i].exterior.coords)
    polys = []
    for i in np.flatnonzero(depth % 2 == 0):
        p = polygonal(Polygon(rings[i].exterior.coords, holes.get(int(i), [])))
        if simplify_px > 0:
            p = polygonal(p.simplify(simplify_px, preserve_topology=True))
        polys.extend(_parts(p))
    return sorted(polys, key=lambda p: -p.area)


def _parts(geom) -> list[Polygon]:
    if geom.is_empty:
        return []
    return list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]


def _clean(mask: np.ndarray, min_px: float, max_hole_px: float) -> np.ndarray:
    """Drop regions smaller than ``min_px`` pixels; fill holes of at most ``max_hole_px``.

    Regions are 4-connected and background 8-connected, as the outlines of
    :func:`mask_to_polygons` (skimage ``find_contours``) see them.
    """
    from scipy import ndimage as ndi

    lab, n = ndi.label(mask)
    if n:
        keep = np.bincount(lab.ravel()) >= min_px
        keep[0] = False
        mask = keep[lab]
    if max_hole_px > 0:
        lab, n = ndi.label(~mask, structure=np.ones((3, 3), bool))
        if n:
            sizes = np.bincount(lab.ravel())
            border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
            fill = sizes <= max_hole_px
            fill[0] = False
            fill[border] = False
            mask = mask | fill[lab]
    return mask


def _scaled(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float32)
    lo = float(np.percentile(arr, 0.5))
    hi = float(np.percentile(arr, 99.5))
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def propose_compartments(
    image: MultiplexImage,
    tumour_channel: int | str = "cancer cells",
    tissue_channels: list[int | str] | None = None,
    tumour_threshold: float | None = None,
    tissue_threshold: float | None = None,
    sigma_um: float = 6.0,
    tissue_sigma_um: float | None = None,
    min_area_um2: float = 2000.0,
    max_hole_um2: float | None = None,
    target_pixel_um: float = 4.0,
    simplify_um: float | None = None,
    level: int | None = None,
    pixel_size_um: float | None = None,
    counts: bool | None = None,
    tissue_fraction: float = 0.05,
) -> Compartments:
    """Propose tumour ROIs and stroma ROIs (see the module docstring).

    Parameters
    ----------
    image : MultiplexImage
    tumour_channel : int or str
        Cancer-cell channel: index, name ("panCK") or role ("cancer cells").
    tissue_channels : list, optional
        Channels whose scaled sum defines tissue (default: all).
    tumour_threshold, tissue_threshold : float, optional
        Thresholds on the smoothed images (default: Otsu).  The tumour image is
        in channel intensity units; the tissue image is a sum of channels each
        scaled to 0..1 by its 0.5th..99.5th percentiles.
    sigma_um, tissue_sigma_um : float
        Gaussian smoothing (standard deviation, µm).  ``tissue_sigma_um``
        defaults to 20 µm, or :data:`COUNT_TISSUE_SIGMA_UM` for sparse counts
        (enough to bridge the gaps between ions, small enough to keep lumens out).
    min_area_um2 : float
        Smallest tumour region, tissue piece or stroma part kept.
    max_hole_um2 : float, optional
        Holes smaller than this are filled (default ``min_area_um2``).
    target_pixel_um : float
        Work at the coarsest level whose pixel is at most this size.
    simplify_um : float, optional
        Outline simplification tolerance (default: one working pixel).
    level : int, optional
        Force a pyramid level.
    pixel_size_um : float, optional
        Level-0 pixel size if the image does not declare one.
    counts : bool, optional
        Treat the channels as sparse ion counts (see the module docstring);
        default: detected from the pixels.
    tissue_fraction : float
        Counts only: tissue is where the smoothed total count reaches this
        fraction of its 90th percentile (ignored when ``tissue_threshold`` is given).
    """
    from scipy import ndimage as ndi

    px = pixel_size_um or image.pixel_size_um
    if not px or not np.isfinite(px) or px <= 0:
        raise RoiScoreError(
            "The image does not say how large its pixels are (PhysicalSizeX missing).",
            "Give the pixel size in µm (e.g. 0.5) so areas and smoothing can be set in µm: open the "
            "image again and enter it when asked, or pass pixel_size_um.",
        )
    for name, v in (("sigma_um", sigma_um), ("tissue_sigma_um", 0.0 if tissue_sigma_um is None else tissue_sigma_um),
                    ("min_area_um2", min_area_um2), ("target_pixel_um", target_pixel_um)):
        if not (np.isfinite(v) and v >= 0):
            raise RoiScoreError(f"Compartment setting {name} = {v!r} is not a number ≥ 0.",
                                f"Set {name} to a positive number.")
    t_c = find_channel(image, tumour_channel)
    if tissue_channels is None:
        tissue_idx = list(range(image.n_channels))
    else:
        tissue_idx = [find_channel(image, c) for c in tissue_channels]
    if level is None:
        level = _choose_level(image, px, target_pixel_um)
    ds = level_downsample(image, level)
    work_um = max(ds) * px
    px_area_um2 = ds[0] * ds[1] * px * px
    min_px = min_area_um2 / px_area_um2
    hole_px = (min_area_um2 if max_hole_um2 is None else max_hole_um2) / px_area_um2
    lvl = image.levels[level]

    # tissue
    channels = [np.asarray(lvl[c]) for c in tissue_idx]
    tumour_raw = np.asarray(lvl[t_c])
    if counts is None:
        counts = looks_like_counts(channels + [tumour_raw])
    if tissue_sigma_um is None:
        tissue_sigma_um = COUNT_TISSUE_SIGMA_UM if counts else TISSUE_SIGMA_UM
    if counts:
        total = ndi.gaussian_filter(sum(a.astype(np.float32) for a in channels), tissue_sigma_um / work_um)
        t_thr = tissue_fraction * float(np.percentile(total, 90)) if tissue_threshold is None \
            else float(tissue_threshold)
    else:
        total = ndi.gaussian_filter(sum(_scaled(a) for a in channels), tissue_sigma_um / work_um)
        t_thr = otsu_threshold(total) if tissue_threshold is None else float(tissue_threshold)
    del channels
    tissue = _clean(total > t_thr, min_px, hole_px)

    # tumour
    tum = ndi.gaussian_filter(tumour_raw.astype(np.float32), sigma_um / work_um)
    if counts:
        tum = np.sqrt(np.clip(tum, 0, None))
    if tumour_threshold is None:
        u_thr = otsu_threshold(tum[tissue]) if tissue.any() else otsu_threshold(tum)
    else:
        u_thr = float(tumour_threshold)
    tumour = _clean((tum > u_thr) & tissue, min_px, hole_px)

    tol = (work_um if simplify_um is None else simplify_um) / px
    tissue_polys = mask_to_polygons(tissue, ds, tol)
    tissue_geom = shapely.union_all(tissue_polys) if tissue_polys else Polygon()
    min_area_px0 = min_area_um2 / (px * px)
    tumour_polys = []
    for p in mask_to_polygons(tumour, ds, tol):
        tumour_polys.extend(q for q in _parts(polygonal(p.intersection(tissue_geom)))
                            if q.area >= min_area_px0)
    tumour_polys.sort(key=lambda p: -p.area)
    tumour_geom = shapely.union_all(tumour_polys) if tumour_polys else Polygon()
    stroma_polys = [q for q in _parts(polygonal(tissue_geom.difference(tumour_geom)))
                    if q.area >= min_area_px0]
    stroma_polys.sort(key=lambda p: -p.area)

    rois = [Roi(f"T{i + 1:02d}", "tumour", p) for i, p in enumerate(tumour_polys)]
    rois += [Roi(f"S{i + 1:02d}", "stroma", p) for i, p in enumerate(stroma_polys)]
    settings = {
        "tumour_channel": image.channel_names[t_c],
        "tissue_channels": [image.channel_names[c] for c in tissue_idx],
        "sigma_um": sigma_um, "tissue_sigma_um": tissue_sigma_um,
        "min_area_um2": min_area_um2,
        "max_hole_um2": min_area_um2 if max_hole_um2 is None else max_hole_um2,
        "working_pixel_um": work_um, "simplify_um": tol * px,
        "tumour_threshold": "Otsu" if tumour_threshold is None else "user",
        "tissue_threshold": ("user" if tissue_threshold is not None
                             else f"{tissue_fraction:g} x 90th percentile" if counts else "Otsu"),
        "counts": bool(counts),
    }
    return Compartments(rois, int(level), ds, float(u_thr), float(t_thr), tumour, tissue, settings)
