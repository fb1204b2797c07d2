"""A cohort validation run from a batch manifest: what the dock's *Cohort* tab computes.

The manifest is the table ``roiscore batch`` reads (``slide_id, spots, rois[,
image]`` plus ``response`` and optionally ``patient``; checked by
:func:`~napari_roiscore.analysis.manifest.validate_batch_table`, as the CLI checks
it).  Every slide's ROIs are scored with the signature and method chosen in
the dock, exactly as a batch task scores them
(:func:`~napari_roiscore.analysis.slide_scoring.score_slide`); per patient the tumour and
stroma ROI scores and their difference are each judged as a response marker
(:func:`~napari_roiscore.analysis.cohort.validate_table`: ROC AUC with a
bootstrap 95 % CI over patients, Mann–Whitney p, a threshold's sensitivity
and specificity).

**No double dipping.**  When the signature was *discovered on this same
cohort*, its scores are labelled *naive* (AUC inflated) and the run adds the
honest estimate: discovery repeated inside each fold by patient (k folds or
leave-one-patient-out; :func:`~napari_roiscore.analysis.cohort.cross_validated_discovery`:
responders vs non-responders in one ROI class, as many top genes up and down
as the signature has) and the held-out patients scored with their fold's
signature by the same method.  Every row says which was done.

Research use only.  Pure core: imports neither Qt nor napari.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.analysis.cohort import (GIVEN_MODE, MARKERS, NAIVE_MODE, CohortValidation, ProgressCallback,
                                             cross_validated_discovery, parse_response, threshold_performance,
                                             validate_table)
from napari_roiscore.analysis.pseudobulk_samples import SlideRois, roi_pseudobulk
from napari_roiscore.analysis.responder import RESEARCH_ONLY
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.signature import Signature

__all__ = ["SUMMARY_COLUMNS", "CohortRun", "run_cohort"]

#: columns of :meth:`CohortRun.summary`
SUMMARY_COLUMNS = ["signature", "marker", "auc", "ci_low", "ci_high", "mann_whitney_p", "n_patients",
                   "n_responders", "n_non_responders", "threshold", "sensitivity", "specificity", "how"]


@dataclass(frozen=True)
class CohortRun:
    """The scores of a cohort and their validation(s).

    Attributes
    ----------
    rois : DataFrame
        The ROI table of every slide scored with the chosen signature
        (``slide_id, patient, response`` then the batch columns).
    validations : dict of str -> CohortValidation
        ``"as given"`` (not discovered on this cohort) or ``"naive"``
        (discovered on it), and ``"cross-validated"`` when discovery was
        repeated by patient.
    signature : Signature
    method : str
    params : dict
    failures : list of str
        Slides that could not be scored (left out, with the reason).
    seconds : float
        Wall time of the run.
    """

    rois: pd.DataFrame
    validations: dict[str, CohortValidation]
    signature: Signature
    method: str
    params: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = float("nan")

    def summary(self, threshold: float | None = None) -> pd.DataFrame:
        """One row per validation and marker (:data:`SUMMARY_COLUMNS`).

        Parameters
        ----------
        threshold : float, optional
            Sensitivity and specificity of calling ``score >= threshold`` a
            responder; default: each row's own threshold (the one given to
            the run, or Youden's J on these patients — optimistic).
        """
        rows = []
        for label, val in self.validations.items():
            for r in val.performance.to_dict("records"):
                row = {"signature": label, **r, "n_patients": r["n_responders"] + r["n_non_responders"],
                       "how": val.mode}
                if threshold is not None:
                    row["threshold"] = float(threshold)
                    row["sensitivity"], row["specificity"] = threshold_performance(
                        val.patients["response"], val.patients[r["marker"]], threshold)
                rows.append(row)
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def text(self) -> str:
        """What was done, in words (one line per validation)."""
        sig = f"{self.signature.label} ({self.method})"
        lines = [f"Cohort validation of {sig}: {len(self.rois)} ROIs, "
                 f"{self.rois['patient'].nunique() if len(self.rois) else 0} patients. {RESEARCH_ONLY.capitalize()}."]
        lines += [f"{label}: {val.mode}" for label, val in self.validations.items()]
        if self.failures:
            lines.append(f"{len(self.failures)} slide(s) left out: " + "; ".join(self.failures))
        return "\n".join(lines)


def _patient_attributes(slide) -> dict:
    attrs = slide.attribute_dict
    return {"patient": attrs.get("patient") or slide.slide_id, "response": attrs.get("response", "")}


def _held_out_scorer(samples, loaded: dict[str, SlideRois], method: str, params: dict):
    """``score_held_out`` for :func:`cross_validated_discovery`: the held-out slides scored per slide."""
    from napari_roiscore.analysis.slide_scoring import score_slide

    meta = samples.samples

    def score(sig: Signature, held: np.ndarray, _train: np.ndarray) -> np.ndarray:
        out = np.full(len(meta), np.nan)
        for slide_id in pd.unique(meta["slide"][held]):
            slide = loaded[slide_id]
            table = score_slide(slide.spots, slide.rois, sig, method, params).table
            rows = held & (meta["slide"] == slide_id).to_numpy()
            out[rows] = meta["roi"][rows].map(dict(zip(table["roi"], table["score"]))).to_numpy(float)
        return out

    return score


def _n_folds(folds: int | str, loaded: dict[str, SlideRois]) -> int:
    if folds != "loo":
        return int(folds)
    known = {s.attributes["patient"] for s in loaded.values()
             if np.isfinite(parse_response([s.attributes["response"]])[0])}
    return len(known)


def run_cohort(manifest: str | Path, signature: Signature, method: str = "mean_z", params: dict | None = None, *,
               discovered_here: bool = False, folds: int | str = 4, discover_in: str = "stroma",
               threshold: float | None = None, n_boot: int = 2000, seed: int = 0,
               progress: ProgressCallback | None = None) -> CohortRun:
    """Score a cohort manifest with ``signature`` and validate it per patient.

    Parameters
    ----------
    manifest : path
        Batch manifest (CSV) with a ``response`` column (and ``patient`` when
        a patient has several slides; default: one patient per slide).
    signature : Signature
    method : str
        Scoring method (as ``roiscore batch --method``); ``params`` its options.
    discovered_here : bool
        The signature was discovered on these patients: label its
        validation naive and add the cross-validated one (the slides'
        spots are then kept in memory, to score each fold's held-out patients).
    folds : int or "loo"
        Folds by patient for the cross-validated discovery.
    discover_in : str
        ROI class in which discovery compares responders with non-responders.
    threshold : float, optional
        For sensitivity/specificity (default: Youden's J per marker).
    n_boot, seed : int
        Bootstrap resamples of patients and their seed.
    progress : callable, optional
        ``progress(done, total, message)`` after each slide and each fold.

    Raises
    ------
    RoiScoreError
        A bad manifest (missing columns or files, one response class only,
        unreadable responses), no slide scored, or too few patients for a fold.
    """
    from napari_roiscore.analysis.manifest import read_manifest
    from napari_roiscore.analysis.manifest import validate_batch_table, with_cohort_columns
    from napari_roiscore.analysis.slide_scoring import score_slide
    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.spots.reading import read_spots

    t0 = time.perf_counter()
    params = dict(params or {})
    say = progress or (lambda *_: None)
    slides = read_manifest(manifest)
    validate_batch_table(slides, manifest, need_response=True, check_files=True)
    tables, failures, loaded = [], [], {}
    for i, slide in enumerate(slides):
        say(i, len(slides), f"scoring slide {slide.slide_id} ({i + 1}/{len(slides)})")
        try:
            spots = read_spots(slide.spots)
            res = score_slide(spots, read_geojson(slide.rois), signature, method, params, image=slide.image)
        except Exception as err:  # noqa: BLE001 - one slide's failure must not stop the cohort
            failures.append(f"{slide.slide_id}: {err if isinstance(err, RoiScoreError) else repr(err)}")
            continue
        tables.append(res.table.assign(slide_id=slide.slide_id))
        if discovered_here:  # kept for discovery (pseudobulk) and to score each fold's held-out patients
            loaded[slide.slide_id] = SlideRois(slide.slide_id, spots, res.rois, _patient_attributes(slide))
    if not tables:
        raise RoiScoreError(f"No slide of {str(manifest)!r} could be scored: " + "; ".join(failures),
                            "Check the spots and ROI files the manifest names.")
    rois = pd.concat(tables, ignore_index=True)
    rois = with_cohort_columns(rois[["slide_id", *[c for c in rois.columns if c != "slide_id"]]], slides)
    left_out = f" ({len(failures)} slide(s) could not be scored: {'; '.join(failures)})" if failures else ""
    try:
        first = validate_table(rois[["patient", "class", "score", "response"]],
                               NAIVE_MODE if discovered_here else GIVEN_MODE, [signature], threshold=threshold,
                               n_boot=n_boot, seed=seed, params={"method": method, **params})
    except RoiScoreError as err:
        raise RoiScoreError(err.problem + left_out, err.fix) from None
    validations = {"naive" if discovered_here else "as given": first}
    if discovered_here:
        total = len(slides) + _n_folds(folds, loaded)
        samples = roi_pseudobulk(list(loaded.values()))
        cv = cross_validated_discovery(
            samples, folds=folds, discover_in=discover_in, n_up=len(signature.up), n_down=len(signature.down),
            threshold=threshold, n_boot=n_boot, seed=seed,
            score_held_out=_held_out_scorer(samples, loaded, method, params),
            progress=lambda done, _n, msg: say(len(slides) + done, total, msg))
        validations["cross-validated"] = dataclasses.replace(
            cv, mode=f"{cv.mode} (responders vs non-responders in {discover_in} ROIs, top {len(signature.up)} up / "
                     f"{len(signature.down)} down; held-out patients scored with {method})")
    else:
        say(len(slides), len(slides), "done")
    return CohortRun(rois, validations, signature, method, params, failures, time.perf_counter() - t0)


def roc_points(validation: CohortValidation, marker: str) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of ``marker``'s patient scores (``sklearn.metrics.roc_curve``)."""
    from sklearn.metrics import roc_curve

    if marker not in MARKERS:
        raise RoiScoreError(f"Unknown marker {marker!r}.", f"Use one of {', '.join(MARKERS)}.")
    pts = validation.patients
    ok = np.isfinite(pts["response"].to_numpy(float)) & np.isfinite(pts[marker].to_numpy(float))
    fpr, tpr, _ = roc_curve(pts["response"][ok], pts[marker][ok])
    return fpr, tpr
