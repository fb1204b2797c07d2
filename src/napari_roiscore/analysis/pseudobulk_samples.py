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

__all__ = ["PseudobulkSamples", "SlideRois", "aoi_samples", "roi_pseudobulk", "slide_column", "split_by_slide",
           "unique_gene_names"]

#: ``obs`` columns naming each spot's slide when one table holds several (spaces, ``_``, case ignored)
SLIDE_COLUMNS = ("slide", "slidename", "slideid")


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


def slide_column(columns: Sequence[object]) -> str | None:
    """The column naming each spot's slide (``slide``, ``slide name``, ``slide_id``...), or None."""
    for c in columns:
        if str(c).lower().replace(" ", "").replace("_", "").replace("-", "") in SLIDE_COLUMNS:
            return c
    return None


def split_by_slide(spots: SpotTable, rois: Sequence[Roi], *, spot_mask: np.ndarray | None = None,
                   scorer: RoiScorer | None = None, default: str = "slide") -> list[SlideRois]:
    """One :class:`SlideRois` per slide of a spots table that holds several slides.

    The slide of each spot comes from an ``obs`` column found by
    :func:`slide_column` (GeoMx ``slide name``, or a ``slide`` column of
    side-by-side sections).  Each ROI is summed over the spots of each slide
    it covers (usually one); a table without such a column is one slide
    named ``default``.

    Parameters
    ----------
    spots : SpotTable
    rois : sequence of Roi
    spot_mask : bool array of shape (n_spots,), optional
        Marker restriction, kept on every slide.
    scorer : RoiScorer, optional
        A scorer of ``spots`` to reuse (its spatial index).
    default : str
        Slide name when the table names none.
    """
    rois = list(rois)
    col = slide_column(spots.adata.obs.columns)
    labels = spots.adata.obs[col].astype(str).to_numpy() if col is not None else None
    if labels is None or len(set(labels)) < 2:
        name = str(labels[0]) if labels is not None and len(labels) else default
        return [SlideRois(name, spots, rois, spot_mask=spot_mask)]
    scorer = scorer if scorer is not None else RoiScorer(spots)
    order = list(dict.fromkeys(labels))
    per: dict[str, list[Roi]] = {s: [] for s in order}
    for roi in rois:
        here = set(labels[scorer.members(roi, sort=False)]) if not roi.problem else set()
        for s in (here or {order[0]}):  # no spots: listed as skipped with the first slide
            per[s].append(roi)
    mask = np.ones(len(labels), bool) if spot_mask is None else np.asarray(spot_mask, bool)
    return [SlideRois(s, spots, per[s], spot_mask=mask & (labels == s)) for s in order if per[s]]


def roi_pseudobulk(slides: Sequence[SlideRois], *, min_spots: int = 1,
                   scorer: RoiScorer | None = None) -> PseudobulkSamples:
    """One pseudobulk sample per ROI over one or more slides.

    Genes are matched by name across slides; only genes present on every slide
    are kept (in the first slide's order).

    Parameters
    ----------
    slides : sequence of SlideRois
    min_spots : int
        ROIs with fewer spots inside are left out (listed in ``skipped``).
    scorer : RoiScorer, optional
        A scorer of the slides' spots to reuse; otherwise one per spots table
        (slides sharing one table share its spatial index).

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
    scorers = {id(scorer.spots): scorer} if scorer is not None else {}
    for slide in slides:
        if id(slide.spots) not in scorers:
            scorers[id(slide.spots)] = RoiScorer(slide.spots)
        scorer = scorers[id(slide.spots)]
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
