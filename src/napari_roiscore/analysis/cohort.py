"""Cohort validation of a signature: does the ROI score tell responders apart?

Per patient, the mean score of the tumour ROIs, of the stroma ROIs and their
difference (stroma − tumour) are each tested as a response marker: ROC AUC
(``sklearn.metrics.roc_auc_score``) with a bootstrap 95 % CI over patients
(seeded percentile bootstrap), the two-sided Mann–Whitney p, and the
sensitivity/specificity of a threshold (given, or the one maximising Youden's
J on these patients — optimistic by construction).

**ROI score.**  ``log2(CPM + 1)`` of the ROI pseudobulk, z-scored per gene
against *reference* ROIs (mean and SD with n − 1), mean over the up genes
minus mean over the down genes.  With every ROI as reference this is the
``pseudobulk`` method's ``mean_z`` score (CPM).

**No double dipping.**  A signature discovered on the same patients it is
validated on looks better than it is.  :func:`cross_validated_discovery` holds
out patients (leave-one-patient-out or k folds by patient), discovers the
signature on the others only (DE responders vs non-responders in one ROI
class, top genes), scores the held-out patients against the training ROIs,
and pools the held-out scores.  :func:`naive_discovery` does discovery and
validation on all patients and says so.

Research use only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.analysis.differential import RESEARCH_ONLY, differential_expression
from napari_roiscore.analysis.pseudobulk_samples import PseudobulkSamples
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.signature import Signature

__all__ = ["GIVEN_MODE", "NAIVE_MODE", "CohortValidation", "auc_bootstrap", "cross_validated_discovery",
           "marker_performance", "naive_discovery", "parse_response", "patient_scores", "score_rois",
           "threshold_performance", "validate_signature", "validate_table"]

MARKERS = ("tumour", "stroma", "difference")
#: how a signature relates to the patients it is validated on (stated in every output)
GIVEN_MODE = "given, validated as is (not discovered on this cohort)"
NAIVE_MODE = "discovered on these same patients (naive: AUC inflated)"
#: ``progress(done, total, message)``
ProgressCallback = Callable[[int, int, str], None]
_YES = {"1", "1.0", "true", "yes", "y", "r", "responder", "response", "cr", "pr"}
_NO = {"0", "0.0", "false", "no", "n", "nr", "non-responder", "nonresponder", "non_responder", "no response",
       "sd", "pd"}


@dataclass(frozen=True)
class CohortValidation:
    """Patient scores, marker performance and how the signature was obtained.

    Attributes
    ----------
    patients : DataFrame
        ``patient, response, tumour, stroma, difference`` (mean ROI scores).
    performance : DataFrame
        One row per marker: ``marker, auc, ci_low, ci_high, mann_whitney_p,
        threshold, sensitivity, specificity, n_responders, n_non_responders``.
    mode : str
        How the signature relates to these patients (stated in every report).
    signatures : list of Signature
        The signature used (one per fold when cross-validated).
    """

    patients: pd.DataFrame
    performance: pd.DataFrame
    mode: str
    signatures: list[Signature] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def text(self) -> str:
        """A short plain-text summary."""
        lines = [f"Cohort validation ({RESEARCH_ONLY})", f"Signature: {self.mode}"]
        for r in self.performance.itertuples():
            lines.append(f"  {r.marker}: AUC {r.auc:.2f} (95% CI {r.ci_low:.2f}-{r.ci_high:.2f}), "
                         f"Mann-Whitney p {r.mann_whitney_p:.3g}, threshold {r.threshold:.3g}: "
                         f"sensitivity {r.sensitivity:.2f}, specificity {r.specificity:.2f} "
                         f"({r.n_responders} responders, {r.n_non_responders} non-responders)")
        return "\n".join(lines)

    def to_csv(self, folder: str | Path, stem: str = "cohort") -> tuple[Path, Path]:
        """Write ``<stem>_patients.csv`` and ``<stem>_performance.csv`` (with the mode as a column)."""
        folder = Path(folder)
        patients = self.patients.assign(response=self.patients["response"].map({1.0: "responder",
                                                                                0.0: "non-responder"}))
        a = atomic_write_text(folder / f"{stem}_patients.csv", patients.to_csv(index=False))
        perf = self.performance.assign(signature=self.mode, note=RESEARCH_ONLY)
        b = atomic_write_text(folder / f"{stem}_performance.csv", perf.to_csv(index=False))
        return a, b


def parse_response(values: Sequence[object]) -> np.ndarray:
    """Response labels as 1.0 (responder), 0.0 (non-responder) or NaN (missing).

    Accepts 1/0, true/false, yes/no, R/NR, responder/non-responder, CR/PR vs SD/PD.

    Raises
    ------
    RoiScoreError
        A value that is none of these.
    """
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        text = "" if v is None else str(v).strip().lower()
        if text in ("", "nan", "na", "none"):
            continue
        if text in _YES:
            out[i] = 1.0
        elif text in _NO:
            out[i] = 0.0
        else:
            raise RoiScoreError(f"Response value {v!r} is neither responder nor non-responder.",
                                "Use responder / non-responder (or 1/0, R/NR, yes/no); leave unknown empty.")
    return out


def score_rois(counts: pd.DataFrame, signature: Signature, reference: np.ndarray | None = None) -> np.ndarray:
    """Mean z of ``log2(CPM + 1)`` over up genes minus down genes, z against the ``reference`` rows."""
    genes = {g.upper(): g for g in counts.columns}
    up = [genes[g.upper()] for g in signature.up if g.upper() in genes]
    down = [genes[g.upper()] for g in signature.down if g.upper() in genes]
    if not up and not down:
        raise RoiScoreError(f"No gene of signature {signature.name!r} is in the data.", "Check the gene names.")
    X = counts.to_numpy(dtype=np.float64)
    total = X.sum(axis=1, keepdims=True)
    expr = np.log2(X / np.where(total > 0, total, np.nan) * 1e6 + 1.0)
    ref = expr if reference is None else expr[np.asarray(reference, bool)]
    mean, sd = ref.mean(axis=0), ref.std(axis=0, ddof=1)
    z = np.where(sd > 0, (expr - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    cols = {g: i for i, g in enumerate(counts.columns)}
    score = np.zeros(len(X))
    if up:
        score += z[:, [cols[g] for g in up]].mean(axis=1)
    if down:
        score -= z[:, [cols[g] for g in down]].mean(axis=1)
    return score


def patient_scores(roi_scores: pd.DataFrame, *, tumour: str = "tumour", stroma: str = "stroma") -> pd.DataFrame:
    """Per patient: mean ``score`` of its tumour ROIs, of its stroma ROIs, and stroma − tumour.

    ``roi_scores`` needs columns ``patient, class, score, response``.
    """
    rs = roi_scores.dropna(subset=["score"])
    mean = rs.groupby(["patient", "class"])["score"].mean().unstack()
    out = pd.DataFrame(index=pd.Index(sorted(rs["patient"].unique()), name="patient"))
    out["response"] = rs.groupby("patient")["response"].first().reindex(out.index)
    out["tumour"] = mean[tumour].reindex(out.index) if tumour in mean else np.nan
    out["stroma"] = mean[stroma].reindex(out.index) if stroma in mean else np.nan
    out["difference"] = out["stroma"] - out["tumour"]
    return out.reset_index()


def auc_bootstrap(y: np.ndarray, score: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % CI of the ROC AUC, resampling patients with replacement (seeded).

    Resamples holding only one class are drawn again (skipped).  The AUC of a
    resample is the Mann–Whitney identity ``(R₁ − n₁(n₁+1)/2) / (n₁ n₀)``
    with mid-ranks for ties — what ``roc_auc_score`` computes.
    """
    from scipy.stats import rankdata

    y, score = np.asarray(y, float), np.asarray(score, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    yy, ss = y[idx], score[idx]
    n1 = yy.sum(axis=1)
    n0 = len(y) - n1
    ok = (n1 > 0) & (n0 > 0)
    ranks = rankdata(ss[ok], axis=1)
    aucs = ((ranks * yy[ok]).sum(axis=1) - n1[ok] * (n1[ok] + 1) / 2) / (n1[ok] * n0[ok])
    if len(aucs) == 0:
        return np.nan, np.nan
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def marker_performance(y: np.ndarray, score: np.ndarray, *, threshold: float | None = None,
                       n_boot: int = 2000, seed: int = 0) -> dict:
    """AUC, bootstrap CI, Mann–Whitney p and a threshold's sensitivity/specificity (score ≥ threshold = responder)."""
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score, roc_curve

    y, score = np.asarray(y, float), np.asarray(score, float)
    ok = np.isfinite(y) & np.isfinite(score)
    y, score = y[ok], score[ok]
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    if n1 == 0 or n0 == 0:
        raise RoiScoreError(f"ROC needs responders and non-responders with scores; got {n1} and {n0}.",
                            "Add patients of both kinds (response column) with scored ROIs.")
    auc = float(roc_auc_score(y, score))
    lo, hi = auc_bootstrap(y, score, n_boot=n_boot, seed=seed)
    p = float(mannwhitneyu(score[y == 1], score[y == 0], alternative="two-sided").pvalue)
    if threshold is None:
        fpr, tpr, thr = roc_curve(y, score)
        best = int(np.argmax(tpr - fpr))
        threshold = float(thr[best]) if np.isfinite(thr[best]) else float(score.max())
    sensitivity, specificity = threshold_performance(y, score, threshold)
    return {"auc": auc, "ci_low": lo, "ci_high": hi, "mann_whitney_p": p, "threshold": float(threshold),
            "sensitivity": sensitivity, "specificity": specificity, "n_responders": n1, "n_non_responders": n0}


def threshold_performance(y: np.ndarray, score: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity of calling ``score >= threshold`` a responder (missing values left out)."""
    y, score = np.asarray(y, float), np.asarray(score, float)
    ok = np.isfinite(y) & np.isfinite(score)
    y, called = y[ok], score[ok] >= float(threshold)
    sens = float(called[y == 1].mean()) if (y == 1).any() else np.nan
    spec = float((~called[y == 0]).mean()) if (y == 0).any() else np.nan
    return sens, spec


def _roi_table(samples: PseudobulkSamples, scores: np.ndarray, patient: str, response: str) -> pd.DataFrame:
    for col in (patient, response):
        if col not in samples.samples.columns:
            raise RoiScoreError(f"No sample column {col!r} for cohort validation.",
                                f"Add {patient!r} and {response!r} columns (manifest or slide attributes).")
    return pd.DataFrame({"patient": samples.samples[patient].astype(str).to_numpy(),
                         "class": samples.samples["class"].astype(str).to_numpy(),
                         "response": list(samples.samples[response]), "score": scores})


def validate_table(rois: pd.DataFrame, mode: str, signatures: list[Signature] | None = None, *,
                   threshold: float | None = None, n_boot: int = 2000, seed: int = 0,
                   params: dict | None = None) -> CohortValidation:
    """Validation from an ROI score table (``patient, class, score, response``; response as
    :func:`parse_response` reads it), e.g. the table of ``roiscore batch``.

    ``mode`` states how the signature relates to these patients (shown in every output).
    """
    rois = rois.assign(response=parse_response(list(rois["response"])))
    patients = patient_scores(rois)
    patients = patients[np.isfinite(patients["response"].to_numpy(float))].reset_index(drop=True)
    rows = []
    for marker in MARKERS:
        if patients[marker].notna().sum() == 0:
            continue
        rows.append({"marker": marker, **marker_performance(patients["response"], patients[marker],
                                                             threshold=threshold, n_boot=n_boot, seed=seed)})
    if not rows:
        raise RoiScoreError("No patient has a tumour or stroma ROI score.",
                            "Classify ROIs as tumour or stroma and score them.")
    return CohortValidation(patients, pd.DataFrame(rows), mode, list(signatures or []), dict(params or {}))


def validate_signature(samples: PseudobulkSamples, signature: Signature, *, patient: str = "patient",
                       response: str = "response", threshold: float | None = None, n_boot: int = 2000,
                       seed: int = 0, discovered_here: bool = False) -> CohortValidation:
    """Validate a signature obtained elsewhere (every ROI is a z-score reference)."""
    rois = _roi_table(samples, score_rois(samples.counts, signature), patient, response)
    mode = NAIVE_MODE if discovered_here else GIVEN_MODE
    return validate_table(rois, mode, [signature], threshold=threshold, n_boot=n_boot, seed=seed,
                       params={"patient": patient, "response": response})


def _discover(samples: PseudobulkSamples, discover_in: str, n_up: int, n_down: int, patient: str,
              response: str, name: str) -> Signature:
    resp = parse_response(list(samples.samples[response]))
    sub = samples.subset((samples.samples["class"].astype(str) == discover_in).to_numpy() & np.isfinite(resp))
    labels = np.where(parse_response(list(sub.samples[response])) == 1, "responder", "non-responder")
    sub = PseudobulkSamples(sub.counts, sub.samples.assign(_response=labels))
    de = differential_expression(sub, "_response", "responder", "non-responder", unit=patient)
    up, down = de.top_genes(n_up, "up"), de.top_genes(n_down, "down") if n_down else []
    return Signature(name=name, up=tuple(up), down=tuple(down),
                     description=f"top {n_up} up / {n_down} down, {de.label.replace('_response', 'response')} "
                                 f"in {discover_in} ROIs, design {de.design_label}")


def naive_discovery(samples: PseudobulkSamples, *, discover_in: str = "stroma", n_up: int = 5, n_down: int = 0,
                    patient: str = "patient", response: str = "response", threshold: float | None = None,
                    n_boot: int = 2000, seed: int = 0) -> CohortValidation:
    """Discover on all patients and validate on the same patients (inflated; for comparison only)."""
    sig = _discover(samples, discover_in, n_up, n_down, patient, response, "discovered (all patients)")
    return validate_signature(samples, sig, patient=patient, response=response, threshold=threshold,
                              n_boot=n_boot, seed=seed, discovered_here=True)


def cross_validated_discovery(samples: PseudobulkSamples, *, folds: int | str = "loo", discover_in: str = "stroma",
                              n_up: int = 5, n_down: int = 0, patient: str = "patient",
                              response: str = "response", threshold: float | None = None, n_boot: int = 2000,
                              seed: int = 0, score_held_out: Callable[[Signature, np.ndarray, np.ndarray],
                                                                      np.ndarray] | None = None,
                              progress: ProgressCallback | None = None) -> CohortValidation:
    """Discovery repeated inside each fold by patient; held-out patients scored with their fold's signature.

    Parameters
    ----------
    folds : "loo" or int
        Leave-one-patient-out, or this many folds of patients (seeded
        shuffle, responders and non-responders spread over the folds).
    score_held_out : callable, optional
        ``score_held_out(signature, held, train)`` -> one score per sample
        (only the ``held`` rows are used; both are boolean masks over the
        samples).  Default: :func:`score_rois` z-scored against the
        training ROIs.  A per-slide scoring method (what the dock and
        ``roiscore batch`` run) sees nothing of the other patients.
    progress : callable, optional
        ``progress(done, total, message)`` after each fold.

    The result's ``params["fold_of_patient"]`` says in which fold (1, 2...)
    each patient was held out; ``signatures[k]`` was discovered without fold k + 1.
    """
    rois_all = _roi_table(samples, np.full(len(samples.counts), np.nan), patient, response)
    rois_all["response"] = parse_response(list(rois_all["response"]))
    known = rois_all.drop_duplicates("patient").dropna(subset=["response"])
    ids = known["patient"].to_numpy()
    if folds == "loo":
        assignment = {p: i for i, p in enumerate(ids)}
        mode = "leave-one-patient-out discovery + scoring"
    else:
        k = int(folds)
        if not 2 <= k <= len(ids):
            raise RoiScoreError(f"{k} folds for {len(ids)} patients.", f"Use 2 to {len(ids)} folds, or 'loo'.")
        rng = np.random.default_rng(seed)
        assignment = {}
        for label in (1.0, 0.0):  # stratified: each fold gets its share of both
            group = ids[known["response"].to_numpy() == label]
            offset = len(assignment)
            for j, p in enumerate(rng.permutation(group)):
                assignment[p] = (offset + j) % k
        mode = f"{k}-fold by patient discovery + scoring"
    fold_of = rois_all["patient"].map(assignment).to_numpy(dtype=float)
    scores = np.full(len(rois_all), np.nan)
    signatures = []
    if score_held_out is None:
        def score_held_out(sig: Signature, _held: np.ndarray, train: np.ndarray) -> np.ndarray:
            return score_rois(samples.counts, sig, reference=train)
    all_folds = sorted(set(assignment.values()))
    for f in all_folds:
        held = fold_of == f
        train = ~held & np.isfinite(fold_of)
        try:
            sig = _discover(samples.subset(train), discover_in, n_up, n_down, patient, response,
                            f"discovered without fold {f + 1}")
        except RoiScoreError as err:
            raise RoiScoreError(f"Fold {f + 1}: {err.problem}", err.fix or "Use fewer folds.") from None
        signatures.append(sig)
        scores[held] = np.asarray(score_held_out(sig, held, train), float)[held]
        if progress is not None:
            progress(f + 1, len(all_folds), f"fold {f + 1}/{len(all_folds)}: discovered on "
                                            f"{len(set(rois_all['patient'][train]))} patients, scored the held-out")
    rois_all["score"] = scores
    return validate_table(rois_all, mode, signatures, threshold=threshold, n_boot=n_boot, seed=seed,
                       params={"folds": folds, "discover_in": discover_in, "n_up": n_up, "n_down": n_down,
                               "fold_of_patient": {str(p): f + 1 for p, f in assignment.items()}})
