"""A seeded synthetic patient cohort for testing discovery and validation.

Each patient has one slide of spots with tumour and stroma ROIs drawn on it.
Spots mix three cell types — tumour cells, fibroblasts, macrophages — whose
expression profiles are shared by all patients; tumour ROIs are mostly tumour
cells, stroma ROIs fibroblasts and macrophages.  Patients differ by a
gene-wise multiplicative effect (log-normal), and spot counts are
negative-binomial (gamma–Poisson) around the mixture.

**The plant:** in responders only, the macrophages express the ``planted``
genes ``fold`` times more.  It shows in responders' stroma (rich in
macrophages) and barely in tumour ROIs.  ``fold=1`` (or ``n_planted=0``) is a
cohort with no true signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from shapely.geometry import box

from napari_roiscore.analysis.pseudobulk_samples import SlideRois
from napari_roiscore.rois.roi import Roi
from napari_roiscore.spots.table import SpotTable

__all__ = ["SyntheticCohort", "synthetic_cohort", "write_cohort"]

CELL_TYPES = ("tumour", "fibroblast", "macrophage")
#: mean cell-type fractions of a spot in each ROI class
MIX = {"tumour": (0.8, 0.12, 0.08), "stroma": (0.08, 0.52, 0.40)}
PITCH_PX = 100.0


@dataclass(frozen=True)
class SyntheticCohort:
    """Slides with ROIs, the truth behind them and the settings used.

    Attributes
    ----------
    slides : list of SlideRois
        One per patient; attributes ``patient`` and ``response``
        ("responder" / "non-responder").
    planted : tuple of str
        Genes raised in responders' macrophages (empty without a plant).
    responders : tuple of str
        Patients who respond.
    params : dict
    """

    slides: list[SlideRois]
    planted: tuple[str, ...]
    responders: tuple[str, ...]
    params: dict


def synthetic_cohort(
    n_patients: int = 24,
    *,
    n_genes: int = 200,
    n_planted: int = 5,
    fold: float = 4.0,
    rois_per_class: int = 2,
    spots_per_roi: int = 25,
    counts_per_spot: float = 2000.0,
    patient_sd: float = 0.3,
    dispersion: float = 0.2,
    seed: int = 0,
) -> SyntheticCohort:
    """Generate a cohort (seeded: the same arguments give the same cohort).

    Parameters
    ----------
    n_patients : int
        Half of them (rounded down) respond.
    n_genes : int
        Genes ``G0001``...; the planted ones are drawn among macrophage
        genes: expressed by macrophages at least at the median level and at
        least as much as by the other cell types.
    n_planted : int
    fold : float
        Multiplier of the planted genes in responders' macrophages (1 = no signal).
    rois_per_class : int
        Tumour ROIs and stroma ROIs per patient.
    spots_per_roi : int
    counts_per_spot : float
        Mean library size of a spot.
    patient_sd : float
        SD of the natural-log patient effect per gene.
    dispersion : float
        Negative-binomial dispersion of spot counts (variance = mu + dispersion mu^2).
    seed : int
    """
    rng = np.random.default_rng(seed)
    genes = [f"G{i + 1:04d}" for i in range(n_genes)]
    profiles = rng.gamma(0.7, 1.0, size=(len(CELL_TYPES), n_genes)) + 0.02
    mac = profiles[CELL_TYPES.index("macrophage")]
    others = np.delete(profiles, CELL_TYPES.index("macrophage"), axis=0).max(axis=0)
    candidates = np.flatnonzero((mac >= np.median(mac)) & (mac >= others))  # macrophage genes
    planted_idx = np.sort(rng.choice(candidates, size=min(n_planted, len(candidates)), replace=False)) \
        if n_planted and fold != 1 else np.array([], dtype=int)
    profiles /= profiles.sum(axis=1, keepdims=True)
    patients = [f"P{i + 1:02d}" for i in range(n_patients)]
    responders = set(rng.choice(patients, size=n_patients // 2, replace=False).tolist())
    side = int(np.ceil(np.sqrt(spots_per_roi)))
    slides = []
    for patient in patients:
        responder = patient in responders
        prof = profiles.copy()
        if responder and len(planted_idx):
            prof[CELL_TYPES.index("macrophage"), planted_idx] *= fold
            prof /= prof.sum(axis=1, keepdims=True)
        effect = np.exp(rng.normal(0.0, patient_sd, size=n_genes))
        blocks, xy, rois = [], [], []
        classes = ["tumour"] * rois_per_class + ["stroma"] * rois_per_class
        for r, roi_class in enumerate(classes):
            frac = rng.dirichlet(np.asarray(MIX[roi_class]) * 20.0, size=spots_per_roi)
            mu = (frac @ prof) * effect
            mu /= mu.sum(axis=1, keepdims=True)
            mu *= rng.lognormal(np.log(counts_per_spot), 0.3, size=(spots_per_roi, 1))
            lam = rng.gamma(1.0 / dispersion, mu * dispersion)
            blocks.append(rng.poisson(lam))
            k = np.arange(spots_per_roi)
            x0 = r * (side + 2) * PITCH_PX
            xy.append(np.column_stack([x0 + (k % side) * PITCH_PX, (k // side) * PITCH_PX]))
            rois.append(Roi(f"{roi_class}-{r % rois_per_class + 1}", roi_class,
                            box(x0 - PITCH_PX / 2, -PITCH_PX / 2, x0 + (side - 0.5) * PITCH_PX,
                                (side - 0.5) * PITCH_PX)))
        counts = np.vstack(blocks)
        adata = ad.AnnData(X=sp.csr_matrix(counts.astype(np.float32)),
                           obs=pd.DataFrame(index=[f"{patient}-s{i}" for i in range(len(counts))]),
                           var=pd.DataFrame(index=genes))
        adata.obsm["spatial"] = np.vstack(xy).astype(np.float64)
        adata.uns["spatial"] = {patient: {"scalefactors": {"spot_diameter_fullres": PITCH_PX * 0.55}}}
        spots = SpotTable(adata=adata, diameter_px=PITCH_PX * 0.55, provenance={"reader": "synthetic_cohort"})
        slides.append(SlideRois(slide=f"{patient}-slide", spots=spots, rois=rois,
                                attributes={"patient": patient,
                                            "response": "responder" if responder else "non-responder"}))
    return SyntheticCohort(
        slides=slides,
        planted=tuple(genes[i] for i in planted_idx),
        responders=tuple(p for p in patients if p in responders),
        params={"n_patients": n_patients, "n_genes": n_genes, "n_planted": len(planted_idx), "fold": fold,
                "rois_per_class": rois_per_class, "spots_per_roi": spots_per_roi, "patient_sd": patient_sd,
                "dispersion": dispersion, "seed": seed},
    )


def write_cohort(cohort: SyntheticCohort, folder: str | Path) -> Path:
    """Write each slide's spots (``.h5ad``) and ROIs (GeoJSON) and a manifest
    ``cohort.csv`` (``slide_id, spots, rois, patient, response``); returns the manifest."""
    from napari_roiscore.rois.geojson import write_geojson

    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = ["slide_id,spots,rois,patient,response"]
    for slide in cohort.slides:
        spots, rois = f"data/{slide.slide}.h5ad", f"data/{slide.slide}_rois.geojson"
        slide.spots.adata.write_h5ad(folder / spots)
        write_geojson(slide.rois, folder / rois)
        rows.append(f"{slide.slide},{spots},{rois},{slide.attributes['patient']},{slide.attributes['response']}")
    manifest = folder / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest
