"""Synthetic multiplex slide with Visium-like spots (seeded, reproducible).

The slide is *synthetic*: a tissue outline, tumour nests, stroma with vessels
and macrophages (more in stroma than in tumour nests), rendered into four
channels (DAPI, panCK, CD31, CD68).  Spots on a 100 µm hexagonal grid get raw
counts whose mean follows the tissue composition under each spot (its
footprint): macrophage genes rise with the CD68+ area, epithelial genes with
the tumour area, endothelial genes with the vessel area.  A tumour ROI and a
stroma ROI therefore score differently for a reason one can see in the image.

Used by ``sample_images/make_sample.py`` (the committed sample), by tests
(small slides) and by benchmarks (cohorts of generated slides).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = ["SyntheticSlide", "expression_for_composition", "make_slide", "write_slide"]

CHANNELS = ("DAPI", "panCK", "CD31", "CD68")

MACROPHAGE_GENES = ("CD68", "CD163", "STAB1", "MRC1", "MSR1", "CD14", "C1QA", "C1QB",
                    "C1QC", "AIF1", "CSF1R", "TYROBP", "FCGR3A", "LYZ", "MARCO", "APOE")
EPITHELIAL_GENES = ("EPCAM", "KRT8", "KRT18", "KRT19", "KRT7", "CDH1", "ERBB2", "ESR1",
                    "MUC1", "MKI67", "TOP2A", "CLDN4")
ENDOTHELIAL_GENES = ("PECAM1", "VWF", "CDH5", "CLDN5", "KDR", "ENG", "EMCN", "PLVAP")
FIBROBLAST_GENES = ("COL1A1", "COL1A2", "COL3A1", "DCN", "LUM", "FAP", "ACTA2", "PDGFRB",
                    "SPARC", "FN1", "POSTN", "VIM")
LYMPHOID_GENES = ("PTPRC", "CD3E", "CD8A", "CD4", "GZMB", "MS4A1", "CD19", "NKG7")
INTERFERON_GENES = ("STAT1", "IFIT1", "IFIT3", "ISG15", "CXCL9", "CXCL10", "IRF1", "MX1")
HOUSEKEEPING_GENES = ("ACTB", "GAPDH", "B2M", "MALAT1", "RPLP0", "RPS18", "EEF1A1", "TPT1")

CELL_TYPES = ("tumour", "fibroblast", "endothelial", "macrophage", "lymphoid")
_MARKERS = {
    "tumour": EPITHELIAL_GENES,
    "fibroblast": FIBROBLAST_GENES,
    "endothelial": ENDOTHELIAL_GENES,
    "macrophage": MACROPHAGE_GENES,
    "lymphoid": LYMPHOID_GENES,
}


@dataclass
class SyntheticSlide:
    """Everything of a generated slide, in memory."""

    image: np.ndarray  # (4, Y, X) uint8
    pixel_size_um: float
    masks: dict  # name -> bool (Y, X): tissue, tumour, vessel, macrophage
    spots_xy: np.ndarray  # (n, 2) x, y level-0 px
    spot_diameter_px: float
    composition: dict  # name -> (n,) fraction of spot footprint
    counts: "object"  # scipy.sparse.csr_matrix (n, genes) int32
    genes: list[str]
    rois: list[dict]  # {"name", "class", "xy": (k, 2)}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _upsample(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    zoom = (shape[0] / a.shape[0], shape[1] / a.shape[1])
    return ndi.zoom(a, zoom, order=1, mode="nearest")[: shape[0], : shape[1]]


def _render_points(shape, pts, sigma, amplitude=1.0):
    """Gaussian blobs at ``pts``; a lone blob peaks at ``amplitude``."""
    img = np.zeros(shape, dtype=np.float32)
    r = np.clip(pts[:, 0].astype(int), 0, shape[0] - 1)
    c = np.clip(pts[:, 1].astype(int), 0, shape[1] - 1)
    np.add.at(img, (r, c), amplitude)
    img = ndi.gaussian_filter(img, sigma)
    return img * (2 * np.pi * sigma**2)


def _poisson_points(rng, mask, per_px, step=1):
    """Random points (row, col) where ``mask`` holds, ``per_px`` expected per pixel."""
    ys, xs = np.nonzero(mask)
    n = rng.poisson(per_px * ys.size * step * step)
    pick = rng.integers(0, ys.size, n)
    jitter = rng.uniform(0, step, (n, 2))
    return np.c_[ys[pick] * step, xs[pick] * step] + jitter


def _disc_mean(mask_small: np.ndarray, radius_small: float) -> np.ndarray:
    r = int(np.ceil(radius_small))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = (yy**2 + xx**2 <= radius_small**2).astype(np.float64)
    k /= k.sum()
    return ndi.convolve(mask_small.astype(np.float64), k, mode="constant")


def hex_grid(width: float, height: float, pitch: float, margin: float) -> np.ndarray:
    """Visium-like hexagonal spot centres (x, y) covering a width x height field."""
    row_step = pitch * np.sqrt(3) / 2
    rows = np.arange(margin, height - margin, row_step)
    out = []
    for i, y in enumerate(rows):
        x0 = margin + (pitch / 2 if i % 2 else 0)
        xs = np.arange(x0, width - margin, pitch)
        out.append(np.c_[xs, np.full_like(xs, y)])
    return np.concatenate(out)


def make_slide(size: int = 4096, pixel_size_um: float = 1.0, n_genes: int = 2000,
               seed: int = 7) -> SyntheticSlide:
    """Generate a synthetic slide (see module docstring).

    Parameters
    ----------
    size : int
        Level-0 width and height in pixels.
    pixel_size_um : float
        Micrometres per pixel (sets spot size: 55 µm diameter, 100 µm pitch).
    n_genes : int
        Number of genes (≥ the ~70 named marker genes; the rest are filler genes).
    seed : int
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    shape = (size, size)
    small = max(size // 8, 32)
    sshape = (small, small)
    # tissue: a wobbly disc covering most of the field
    yy, xx = np.mgrid[0:small, 0:small] / small - 0.5
    rad = np.hypot(yy, xx) + 0.06 * _smooth_field(rng, sshape, small / 16)
    tissue_s = rad < 0.41
    # tumour nests: blobs of a smooth field
    tum_field = _smooth_field(rng, sshape, small / 24)
    tumour_s = (tum_field > 0.35) & tissue_s
    tumour_s = ndi.binary_opening(tumour_s, iterations=2)
    # vessels: thin contour lines of a smooth field, in stroma
    ves_field = _upsample(_smooth_field(rng, sshape, small / 40), shape)
    tissue = _upsample(tissue_s.astype(np.float32), shape) > 0.5
    tumour = (_upsample(tumour_s.astype(np.float32), shape) > 0.5) & tissue
    stroma = tissue & ~tumour
    grad = np.hypot(*np.gradient(ves_field)) + 1e-6
    vessel = (np.abs(ves_field) / grad < 4.0 / pixel_size_um) & stroma
    vessel &= ~ndi.binary_dilation(tumour, iterations=int(8 / pixel_size_um) + 1)

    cell_px = 1.0 / pixel_size_um**2
    tumour_nuc = _poisson_points(rng, tumour[::4, ::4], cell_px / 130.0 * 16, step=4)
    stroma_nuc = _poisson_points(rng, stroma[::4, ::4], cell_px / 700.0 * 16, step=4)
    macro_stroma = _poisson_points(rng, stroma[::4, ::4], cell_px / 5000.0 * 16, step=4)
    macro_tumour = _poisson_points(rng, tumour[::4, ::4], cell_px / 20000.0 * 16, step=4)
    macro = np.concatenate([macro_stroma, macro_tumour])
    vessel_nuc = _poisson_points(rng, vessel[::2, ::2], cell_px / 150.0 * 4, step=2)

    s = 1.0 / pixel_size_um
    dapi = _render_points(shape, np.concatenate([tumour_nuc, stroma_nuc, macro, vessel_nuc]), 2.2 * s)
    cyto = _render_points(shape, tumour_nuc, 4.0 * s, amplitude=0.25)
    panck = np.clip(cyto - 0.6 * _render_points(shape, tumour_nuc, 2.2 * s), 0, None)
    panck *= ndi.gaussian_filter(tumour.astype(np.float32), 3 * s)
    macro_jit = np.concatenate([macro + rng.normal(0, 3 * s, macro.shape) for _ in range(3)])
    cd68 = _render_points(shape, macro_jit, 3.0 * s, amplitude=0.45)
    cd31 = ndi.gaussian_filter(vessel.astype(np.float32), 1.5 * s)

    def to_u8(a, gain, floor=2):
        a = np.clip(a * gain, 0, 1)
        return (floor + a * (255 - floor)).astype(np.uint8)

    image = np.stack([
        to_u8(dapi, 0.9),
        to_u8(panck, 1.0),
        to_u8(cd31, 1.0),
        to_u8(cd68, 1.0),
    ])
    macro_mask = cd68 > 0.3

    # spots
    pitch = 100.0 / pixel_size_um
    diameter = 55.0 / pixel_size_um
    xy = hex_grid(size, size, pitch, margin=pitch / 2)
    ds = 4
    masks_small = {
        "tissue": tissue[::ds, ::ds],
        "tumour": tumour[::ds, ::ds],
        "vessel": ndi.maximum_filter(vessel, size=ds)[::ds, ::ds],
        "macrophage": ndi.maximum_filter(macro_mask, size=ds)[::ds, ::ds],
    }
    comp_maps = {k: _disc_mean(m, diameter / 2 / ds) for k, m in masks_small.items()}
    ij = np.clip((xy[:, ::-1] / ds).astype(int), 0, small * 8 // ds - 1)
    comp = {k: v[ij[:, 0], ij[:, 1]] for k, v in comp_maps.items()}
    in_tissue = comp["tissue"] > 0.5
    xy = xy[in_tissue]
    comp = {k: v[in_tissue] for k, v in comp.items()}

    counts, genes = _expression(rng, comp, n_genes)
    rois = _pick_rois(tissue, tumour, pixel_size_um, rng)
    return SyntheticSlide(
        image=image,
        pixel_size_um=pixel_size_um,
        masks={"tissue": tissue, "tumour": tumour, "vessel": vessel, "macrophage": macro_mask},
        spots_xy=xy,
        spot_diameter_px=diameter,
        composition=comp,
        counts=sp.csr_matrix(counts),
        genes=genes,
        rois=rois,
    )


def expression_for_composition(composition: dict, n_genes: int = 2000,
                               seed: int = 7) -> tuple[np.ndarray, list[str]]:
    """Raw counts of spots whose footprints hold the given tissue composition.

    The generator's own expression model, for spots placed on a real image:
    ``composition`` maps ``"tumour"``, ``"vessel"`` and ``"macrophage"`` to
    per-spot fractions of the footprint (0..1, e.g. marker-positive areas).

    Returns
    -------
    counts : ndarray of int32, shape (n_spots, n_genes)
    genes : list of str
    """
    comp = {k: np.clip(np.asarray(composition[k], dtype=np.float64), 0, 1)
            for k in ("tumour", "vessel", "macrophage")}
    return _expression(np.random.default_rng(seed), comp, n_genes)


def _expression(rng, comp: dict, n_genes: int) -> tuple[np.ndarray, list[str]]:
    named = []
    for group in (MACROPHAGE_GENES, EPITHELIAL_GENES, ENDOTHELIAL_GENES, FIBROBLAST_GENES,
                  LYMPHOID_GENES, INTERFERON_GENES, HOUSEKEEPING_GENES):
        named.extend(group)
    n_fill = max(n_genes - len(named), 0)
    genes = named + [f"GENE{i:05d}" for i in range(1, n_fill + 1)]
    g = len(genes)
    gidx = {name: i for i, name in enumerate(genes)}
    base = rng.lognormal(mean=0.0, sigma=1.3, size=g)
    for hk in HOUSEKEEPING_GENES:
        base[gidx[hk]] *= 40
    profiles = {}
    for ct in CELL_TYPES:
        prof = base * rng.lognormal(0.0, 0.35, size=g)
        for m in _MARKERS[ct]:
            prof[gidx[m]] *= rng.uniform(25, 60)
        profiles[ct] = prof / prof.sum()
    # tumour nests are "immunologically silent": interferon genes low in tumour
    for ifn in INTERFERON_GENES:
        profiles["tumour"][gidx[ifn]] *= 0.3
        profiles["lymphoid"][gidx[ifn]] *= 5
    tum = comp["tumour"]
    mac = np.clip(comp["macrophage"] * 1.6, 0, 1)
    ves = np.clip(comp["vessel"] * 2.0, 0, 1)
    lym = np.clip(0.05 + 0.05 * (1 - tum), 0, 1)
    rest = np.clip(1 - mac - ves - lym, 0, 1)
    frac = {
        "macrophage": mac,
        "endothelial": ves,
        "lymphoid": lym,
        "tumour": rest * tum,
        "fibroblast": rest * (1 - tum),
    }
    total = sum(frac.values())
    mean_profile = sum((frac[ct] / total)[:, None] * profiles[ct][None, :] for ct in CELL_TYPES)
    libsize = rng.lognormal(np.log(6000), 0.35, size=len(tum)) * (0.6 + 0.8 * tum)
    mu = mean_profile * libsize[:, None]
    # negative binomial via gamma-poisson, dispersion 0.15
    theta = 1 / 0.15
    lam = rng.gamma(theta, mu / theta)
    return rng.poisson(lam).astype(np.int32), genes


def _pick_rois(tissue, tumour, pixel_size_um, rng) -> list[dict]:
    ds = 8
    t_s = tissue[::ds, ::ds].astype(float)
    u_s = tumour[::ds, ::ds].astype(float)
    radius = 260.0 / pixel_size_um  # ROI radius ~ 0.26 mm
    rs = radius / ds
    full = _disc_mean(t_s, rs * 1.15) > 0.999
    tum_frac = _disc_mean(u_s, rs * 1.15)
    tum_score = np.where(full, tum_frac, -1)
    str_score = np.where(full, 1 - tum_frac, -1)
    rois = []
    for name, cls, score in (("004", "tumour", tum_score), ("007", "stroma", str_score)):
        r, c = np.unravel_index(np.argmax(score), score.shape)
        cy, cx = (r + 0.5) * ds, (c + 0.5) * ds
        ang = np.linspace(0, 2 * np.pi, 11, endpoint=False)
        rr = radius * (1 + 0.12 * rng.standard_normal(ang.size)).clip(0.75, 1.2)
        xy = np.c_[cx + rr * np.cos(ang), cy + rr * np.sin(ang)]
        rois.append({"name": name, "class": cls, "xy": np.round(xy, 1)})
    return rois


def write_slide(slide: SyntheticSlide, folder: str | Path, stem: str = "sample",
                levels: int = 4) -> dict[str, Path]:
    """Write a slide as OME-TIFF pyramid, spots ``.h5ad`` and ROI GeoJSON.

    Returns
    -------
    dict
        ``{"image": ..., "spots": ..., "rois": ...}`` paths.
    """
    import anndata as ad
    import pandas as pd
    import tifffile

    from napari_roiscore.rois.roi import Roi
    from napari_roiscore.rois.geojson import write_geojson

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    img_path = folder / f"{stem}_slide.ome.tif"
    px = slide.pixel_size_um
    pyramid = [slide.image]
    for _ in range(levels - 1):
        a = pyramid[-1]
        h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
        a = a[:, :h, :w].reshape(a.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        pyramid.append(a.round().astype(np.uint8))
    opts = {"tile": (256, 256), "compression": "zlib", "compressionargs": {"level": 9},
            "photometric": "minisblack"}
    with tifffile.TiffWriter(img_path, ome=True) as tif:
        tif.write(
            pyramid[0],
            subifds=levels - 1,
            resolution=(1e4 / px, 1e4 / px),
            resolutionunit="CENTIMETER",
            metadata={
                "axes": "CYX",
                "Channel": {"Name": list(CHANNELS)},
                "PhysicalSizeX": px,
                "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": px,
                "PhysicalSizeYUnit": "µm",
            },
            **opts,
        )
        for lvl in pyramid[1:]:
            tif.write(lvl, subfiletype=1, **opts)

    n = len(slide.spots_xy)
    barcodes = [f"SPOT{i:05d}-1" for i in range(n)]
    obs = pd.DataFrame(
        {f"frac_{k}": v.astype(np.float32) for k, v in slide.composition.items()},
        index=barcodes,
    )
    obs["in_tissue"] = 1
    adata = ad.AnnData(X=slide.counts, obs=obs, var=pd.DataFrame(index=slide.genes))
    adata.obsm["spatial"] = slide.spots_xy.astype(np.float64)
    adata.uns["spatial"] = {
        stem: {
            "scalefactors": {
                "spot_diameter_fullres": float(slide.spot_diameter_px),
                "tissue_hires_scalef": 1.0,
                "tissue_lowres_scalef": 1.0,
            },
            "metadata": {"source": "napari-roiscore synthetic sample (not real data)"},
        }
    }
    adata.uns["roiscore"] = {
        "pixel_size_um": float(px),
        "spot_shape": "circle",
        "synthetic": True,
        "image": img_path.name,
        "note": json.dumps({"pitch_um": 100, "diameter_um": 55}),
    }
    spots_path = folder / f"{stem}_spots.h5ad"
    adata.write_h5ad(spots_path, compression="gzip")

    rois = [Roi.from_xy(r["name"], r["class"], r["xy"]) for r in slide.rois]
    rois_path = folder / f"{stem}_rois.geojson"
    write_geojson(rois, rois_path)
    return {"image": img_path, "spots": spots_path, "rois": rois_path}
