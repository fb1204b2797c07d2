"""A cohort run from a batch manifest: numbers against scikit-learn/SciPy, the scores against the
per-slide scorer, plant vs no plant, and bad manifests named with their fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from napari_roiscore.analysis.cohort import _discover, cross_validated_discovery
from napari_roiscore.analysis.cohort_run import SUMMARY_COLUMNS, roc_points, run_cohort
from napari_roiscore.analysis.pseudobulk_samples import roi_pseudobulk
from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort, write_cohort
from napari_roiscore.cli import main, read_manifest
from napari_roiscore.analysis.manifest import batch_table_problems
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.spots.table import read_h5ad_spots


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    cohort = synthetic_cohort(12, n_genes=80, seed=11, spots_per_roi=16)
    return cohort, write_cohort(cohort, tmp_path_factory.mktemp("planted"))


def _patient_means(rois: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    means = rois.groupby(["patient", "class"])["score"].mean().unstack()
    y = (rois.groupby("patient")["response"].first() == "responder").astype(int).loc[means.index]
    return y, means


def test_numbers_equal_sklearn_and_scipy_on_the_same_scores(planted):
    cohort, manifest = planted
    sig = Signature("planted", up=cohort.planted)
    seen = []
    run = run_cohort(manifest, sig, "mean_z", n_boot=300, progress=lambda *a: seen.append(a))
    # every slide scored as the per-slide scorer scores it (what a batch task runs)
    for s in read_manifest(manifest):
        scorer = RoiScorer(read_h5ad_spots(s.spots))
        ref = scorer.table(read_geojson(s.rois), scorer.spot_scores(sig, "mean_z"))
        got = run.rois[run.rois["slide_id"] == s.slide_id]
        np.testing.assert_allclose(got["score"].to_numpy(float), ref["score"].to_numpy(float), rtol=1e-12)
    y, means = _patient_means(run.rois)
    table = run.summary().set_index("marker")
    assert list(run.summary().columns) == SUMMARY_COLUMNS and set(table["signature"]) == {"as given"}
    assert table["how"].str.contains("not discovered on this cohort").all()
    for marker, score in (("tumour", means["tumour"]), ("stroma", means["stroma"]),
                          ("difference", means["stroma"] - means["tumour"])):
        assert table.loc[marker, "auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
        assert table.loc[marker, "mann_whitney_p"] == pytest.approx(
            mannwhitneyu(score[y == 1], score[y == 0], alternative="two-sided").pvalue)
        assert table.loc[marker, "n_patients"] == 12
        assert table.loc[marker, "ci_low"] <= table.loc[marker, "auc"] <= table.loc[marker, "ci_high"]
    # a chosen threshold: sensitivity / specificity of score >= threshold, counted by hand
    for thr in (*means["stroma"].iloc[[0, 5, 11]], 0.2):  # patients' own scores: >= counts them as called
        at = run.summary(threshold=thr).set_index("marker").loc["stroma"]
        called = means["stroma"] >= thr
        assert at["sensitivity"] == called[y == 1].mean() and at["specificity"] == (~called[y == 0]).mean()
        assert at["threshold"] == thr and at["auc"] == table.loc["stroma", "auc"]
    fpr, tpr = roc_points(run.validations["as given"], "stroma")
    assert np.trapezoid(tpr, fpr) == pytest.approx(table.loc["stroma", "auc"])
    # progress: one call per slide, then done
    assert [a[0] for a in seen] == list(range(13)) and all(a[1] == 12 for a in seen)


@pytest.mark.slow
def test_planted_signature_cross_validated_has_high_auc(planted):
    cohort, manifest = planted
    sig = Signature("five genes", up=tuple(f"G{i:04d}" for i in range(1, 6)))  # the size is what matters
    seen = []
    run = run_cohort(manifest, sig, "mean_z", discovered_here=True, folds=4, n_boot=300,
                     progress=lambda *a: seen.append(a))
    table = run.summary().set_index(["signature", "marker"])
    cv = table.loc[("cross-validated", "stroma")]
    assert cv["auc"] >= 0.8 and cv["n_patients"] == 12
    assert "4-fold by patient discovery + scoring" in cv["how"] and "scored with mean_z" in cv["how"]
    assert "naive: AUC inflated" in table.loc[("naive", "stroma"), "how"]
    cv_run = run.validations["cross-validated"]
    assert len(cv_run.signatures) == 4 and all(len(s.up) == 5 for s in cv_run.signatures)
    assert seen[-1][0] == seen[-1][1] == 12 + 4
    # a held-out patient's scores are its own slide scored by the per-slide method with its fold's signature
    fold_of = cv_run.params["fold_of_patient"]
    assert sorted(set(fold_of.values())) == [1, 2, 3, 4] and len(fold_of) == 12
    patients = cv_run.patients.set_index("patient")
    for slide in cohort.slides:
        p = slide.attributes["patient"]
        scorer = RoiScorer(slide.spots)
        table = scorer.table(slide.rois, scorer.spot_scores(cv_run.signatures[fold_of[p] - 1], "mean_z"))
        means = table.groupby("class")["score"].mean()
        assert patients.loc[p, "stroma"] == pytest.approx(means["stroma"], rel=1e-12)
        assert patients.loc[p, "tumour"] == pytest.approx(means["tumour"], rel=1e-12)


@pytest.mark.slow
def test_without_signal_the_cross_validated_ci_covers_chance(tmp_path):
    cohort = synthetic_cohort(12, n_genes=80, fold=1.0, seed=21, spots_per_roi=16)
    manifest = write_cohort(cohort, tmp_path)
    # discovered on all 12 patients, then validated on them: the double dip the tab must undo
    sig = _discover(roi_pseudobulk(cohort.slides), "stroma", 5, 0, "patient", "response", "discovered here")
    run = run_cohort(manifest, sig, "mean_z", discovered_here=True, folds=4, n_boot=1000)
    cv = run.summary().set_index(["signature", "marker"]).loc[("cross-validated", "stroma")]
    assert cv["ci_low"] < 0.5 < cv["ci_high"]
    # no leak: each fold's genes are those discovered without its held-out patients (without a
    # signal the top genes are noise, so they differ with the patients they were chosen on)
    samples, cv_run = roi_pseudobulk(cohort.slides), run.validations["cross-validated"]
    fold_of = cv_run.params["fold_of_patient"]
    for k, sig_k in enumerate(cv_run.signatures, start=1):
        train = ~samples.samples["patient"].map(fold_of).eq(k).to_numpy()
        assert sig_k.up == _discover(samples.subset(train), "stroma", 5, 0, "patient", "response", "x").up
        assert sig_k.up != sig.up


def test_cross_validated_discovery_reports_progress_per_fold():
    samples = roi_pseudobulk(synthetic_cohort(12, n_genes=40, seed=4, spots_per_roi=9).slides)
    seen = []
    cv = cross_validated_discovery(samples, folds=2, n_up=3, n_boot=50, progress=lambda *a: seen.append(a))
    assert [(d, n) for d, n, _ in seen] == [(1, 2), (2, 2)] and "fold 2/2" in seen[-1][2]
    assert len(cv.signatures) == 2


def _manifest(tmp_path, text: str):
    path = tmp_path / "cohort.csv"
    path.write_text(text)
    return path


def test_bad_manifests_name_the_problem_and_the_fix(planted, tmp_path):
    _, manifest = planted
    sig = Signature("s", up=("G0001",))
    lines = manifest.read_text().splitlines()
    data = str(manifest.parent / "data")
    rows = [ln.replace("data/", data + "/") for ln in lines[1:]]
    no_response = _manifest(tmp_path, "slide_id,spots,rois\n" + "\n".join(r.rsplit(",", 2)[0] for r in rows))
    with pytest.raises(RoiScoreError, match="no 'response' column.*Fix: Add a response column"):
        run_cohort(no_response, sig)
    one_class = _manifest(tmp_path, lines[0] + "\n" + "\n".join(r for r in rows if r.endswith(",responder")))
    with pytest.raises(RoiScoreError, match="all 6 patient.*are responders.*needs responders and non-responders"):
        run_cohort(one_class, sig)
    missing = _manifest(tmp_path, lines[0] + "\n" + "\n".join(rows).replace("P03-slide.h5ad", "gone.h5ad"))
    with pytest.raises(RoiScoreError, match=r"line 4 \(P03-slide\): spots .*gone.h5ad.*Fix: Correct the paths"):
        run_cohort(missing, sig)
    bad = _manifest(tmp_path, lines[0] + "\n" + "\n".join(rows).replace(",responder", ",maybe", 1))
    with pytest.raises(RoiScoreError, match="neither responder nor non-responder: line .*'maybe'"):
        run_cohort(bad, sig)
    with pytest.raises(RoiScoreError, match="lacks column"):
        run_cohort(_manifest(tmp_path, "slide,spots\nA,a.h5ad\n"), sig)
    mixed = _manifest(tmp_path, "slide_id,spots,rois,patient,response\n" + "\n".join(
        f"{r.split(',')[0]},{r.split(',')[1]},{r.split(',')[2]},PX,{'responder' if i else 'non-responder'}"
        for i, r in enumerate(rows[:2])) + "\n" + "\n".join(rows[2:]))
    (problem, fix), = [p for p in batch_table_problems(read_manifest(mixed), mixed) if "both" in p[0]]
    assert "PX (lines 2, 3)" in problem and "same response" in fix


def test_the_cli_shares_the_manifest_check(planted, tmp_path, capsys):
    _, manifest = planted
    lines = manifest.read_text().splitlines()
    data = str(manifest.parent / "data")
    one_class = _manifest(tmp_path, lines[0] + "\n" + "\n".join(
        ln.replace("data/", data + "/") for ln in lines[1:] if ln.endswith(",non-responder")))
    out = tmp_path / "scores.csv"
    assert main(["batch", str(one_class), "--workers", "1", "--out", str(out)]) == 1
    assert "are non-responders; a ROC curve needs" in capsys.readouterr().err and not out.exists()
    assert main(["validate", "--manifest", str(one_class)]) == 1
    assert "are non-responders" in capsys.readouterr().out
