"""Pseudobulk samples for differential expression: one count profile per ROI, and who it is.

A drawn ROI becomes one sample whose counts are the **sum of the raw counts of
the spots inside it** (optionally only the marker-positive spots), exactly as
the ``pseudobulk`` scoring method sums them
(:func:`napari_roiscore.scoring.pseudobulk.pseudobulk_counts`).  Each sample
carries its ROI's name and class, its slide, the number of spots summed and
any slide attributes (patient, response...), so groups can be formed from any
of them.

A GeoMx AOI is already a sequenced pseudobulk: :func:`aoi_samples` turns a
GeoMx spot table (one "spot" per AOI) into samples with the annotation sheet's
columns as attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.spots.table import SpotTable

__all__ = ["PseudobulkSamples", "SlideRois", "aoi_samples", "roi_pseudobulk", "unique_gene_names"]


@dataclass
class SlideRois:
    """One slide of a study: its spots, the ROIs drawn on it and its attributes.

    Parameters
    ----------
    slide : str
        Slide name (unique within a cohort).
    spots : SpotTable
    rois : list of Roi
    attributes : mapping, optional
        Slide-level values copied to each of its ROIs, e.g.
        ``{"patient": "P07", "response": "responder"}``.
    spot_mask : bool array of shape (n_spots,), optional
        Sum only spots where it is True (e.g. marker-positive spots).
    """

    slide: str
    spots: SpotTable
    rois: list[Roi]
    attributes: Mapping[str, object] = field(default_factory=dict)
    spot_mask: np.ndarray | None = None


@dataclass(frozen=True)
class PseudobulkSamples:
    """Raw count profiles of samples and their description.

    Attributes
    ----------
    counts : DataFrame
        Samples x genes, summed raw counts (float64).
    samples : DataFrame
        One row per sample (same index as ``counts``): ``roi``, ``class``,
        ``slide``, ``n_spots`` and the slide attributes.
    skipped : tuple of str
        ROIs left out and why (no area, no spots, no counts).
    """

    counts: pd.DataFrame
    samples: pd.DataFrame
    skipped: tuple[str, ...] = ()

    def subset(self, mask: np.ndarray | pd.Series) -> PseudobulkSamples:
        """The samples where ``mask`` is True."""
        mask = np.asarray(mask, dtype=bool)
        return PseudobulkSamples(self.counts.loc[mask], self.samples.loc[mask], self.skipped)


def unique_gene_names(names: Sequence[str]) -> list[str]:
    """Gene names made unique the anndata way: a repeat of ``X`` becomes ``X-1``, ``X-2``..."""
    seen: dict[str, int] = {}
    taken = set(names)
    out = []
    for name in names:
        if name in seen:
            n = seen[name]
            new = f"{name}-{n}"
            while new in taken:
                n += 1
                new = f"{name}-{n}"
            seen[name] = n + 1
            taken.add(new)
            out.append(new)
        else:
            seen[name] = 1
            out.append(name)
    return out


def roi_pseudobulk(slides: Sequence[SlideRois], *, min_spots: int = 1) -> PseudobulkSamples:
    """One pseudobulk sample per ROI over one or more slides.

    Genes are matched by name across slides; only genes present on every slide
    are kept (in the first slide's order).

    Parameters
    ----------
    slides : sequence of SlideRois
    min_spots : int
        ROIs with fewer spots inside are left out (listed in ``skipped``).

    Raises
    ------
    RoiScoreError
        No slide, duplicate slide names, no gene shared by all slides, or no
        ROI holding spots.
    """
    if not slides:
        raise RoiScoreError("No slide to build pseudobulk samples from.", "Give at least one slide with ROIs.")
    names = [str(s.slide) for s in slides]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RoiScoreError(f"Slide name(s) {dup} appear more than once.", "Give every slide a unique name.")
    gene_lists = [unique_gene_names(s.spots.gene_names) for s in slides]
    shared = set(gene_lists[0]).intersection(*gene_lists[1:])
    genes = [g for g in gene_lists[0] if g in shared]
    if not genes:
        raise RoiScoreError("The slides share no gene name.", "Use spot tables of the same panel or reference.")
    rows, profiles, skipped = [], [], []
    for slide in slides:
        scorer = RoiScorer(slide.spots)
        position = pd.Index(gene_lists[names.index(str(slide.slide))]).get_indexer(genes)
        for roi in slide.rois:
            where = f"{slide.slide}/{roi.name}"
            if roi.problem:
                skipped.append(f"{where}: {roi.problem}")
                continue
            members = scorer.members(roi)
            if slide.spot_mask is not None:
                members = members[np.asarray(slide.spot_mask, bool)[members]]
            bulk = scorer.pseudobulk(roi, None if slide.spot_mask is None else np.asarray(slide.spot_mask, bool))
            if len(members) < min_spots:
                skipped.append(f"{where}: {len(members)} spot(s), fewer than {min_spots}")
                continue
            if bulk.sum() == 0:
                skipped.append(f"{where}: no counts")
                continue
            profiles.append(bulk[position])
            rows.append({"sample": where, "roi": roi.name, "class": roi.roi_class, "slide": str(slide.slide),
                         "n_spots": len(members), **dict(slide.attributes)})
    if not rows:
        raise RoiScoreError("No ROI holds spots with counts: " + "; ".join(skipped[:5]),
                            "Draw ROIs over the spots (check the slide and the ROI coordinates).")
    samples = pd.DataFrame(rows).set_index("sample")
    counts = pd.DataFrame(np.vstack(profiles), index=samples.index, columns=pd.Index(genes, name="gene"))
    return PseudobulkSamples(counts, samples, tuple(skipped))


def aoi_samples(spots: SpotTable) -> PseudobulkSamples:
    """Each spot of ``spots`` as one sample (GeoMx AOIs), with ``obs`` columns as attributes.

    The slide comes from a ``slide name`` column when there is one.
    """
    obs = spots.adata.obs.copy()
    X = spots.counts.toarray().astype(np.float64)
    index = pd.Index([str(i) for i in obs.index], name="sample")
    samples = pd.DataFrame({c: obs[c].to_numpy() for c in obs.columns}, index=index)
    slide_col = next((c for c in obs.columns if str(c).lower().replace(" ", "").replace("_", "") == "slidename"),
                     None)
    samples["roi"] = list(index)
    samples["class"] = samples.get("class", "")
    samples["slide"] = samples[slide_col].astype(str) if slide_col else "slide"
    samples["n_spots"] = 1
    counts = pd.DataFrame(X, index=index, columns=pd.Index(unique_gene_names(spots.gene_names), name="gene"))
    return PseudobulkSamples(counts, samples)
