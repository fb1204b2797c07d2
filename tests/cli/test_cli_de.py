"""``roiscore de`` and the cohort section of ``roiscore batch`` on a written synthetic cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from napari_roiscore.analysis.differential import differential_expression
from napari_roiscore.analysis.pseudobulk_samples import SlideRois, roi_pseudobulk
from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort, write_cohort
from napari_roiscore.cli import main, read_manifest
from napari_roiscore.rois.geojson import read_geojson
from napari_roiscore.scoring.signature import load_signatures
from napari_roiscore.spots.table import read_h5ad_spots


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("de_cohort")
    cohort = synthetic_cohort(8, n_genes=40, seed=4, spots_per_roi=9)
    return cohort, write_cohort(cohort, folder)


def test_manifest_keeps_patient_and_response(written):
    cohort, manifest = written
    slides = read_manifest(manifest)
    assert [s.attribute_dict for s in slides] == [dict(s.attributes) for s in cohort.slides]


def test_de_command_matches_the_core_on_the_same_files(written, tmp_path, capsys):
    cohort, manifest = written
    out = tmp_path / "de.csv"
    rc = main(["de", "--manifest", str(manifest), "--test", "stroma", "--reference", "tumour",
               "--out", str(out), "--signature-out", str(tmp_path / "sig.yaml"), "--top-up", "3"])
    assert rc == 0
    got = pd.read_csv(out, comment="#")
    slides = [SlideRois(s.slide_id, read_h5ad_spots(s.spots), read_geojson(s.rois), s.attribute_dict)
              for s in read_manifest(manifest)]
    ref = differential_expression(roi_pseudobulk(slides), "class", "stroma", "tumour", unit="patient")
    pd.testing.assert_frame_equal(got[["gene", "log2FC", "p", "adjusted_p", "base_mean"]],
                                  ref.table[["gene", "log2FC", "p", "adjusted_p", "base_mean"]])
    assert (tmp_path / "de.png").read_bytes()[:4] == b"\x89PNG"
    (sig,) = load_signatures(tmp_path / "sig.yaml")
    assert list(sig.up) == ref.top_genes(3, "up")
    assert "design ~ patient + group" in capsys.readouterr().err


def test_de_command_refuses_rois_of_one_slide(written, tmp_path, capsys):
    cohort, manifest = written
    s = read_manifest(manifest)[0]
    rc = main(["de", "--spots", str(s.spots), "--rois", str(s.rois), "--test", "stroma", "--reference", "tumour",
               "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and "not independent replicates" in err and not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_batch_with_response_writes_the_cohort_section(written, tmp_path):
    cohort, manifest = written
    out = tmp_path / "scores.csv"
    genes = ",".join(cohort.planted)
    rc = main(["batch", str(manifest), "--workers", "1", "--out", str(out), "--genes", genes,
               "--method", "pseudobulk", "--bootstrap", "200"])
    assert rc == 0
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["slide_id", "patient", "response"]
    perf = pd.read_csv(tmp_path / "scores.cohort_performance.csv").set_index("marker")
    means = table.groupby(["patient", "class"])["score"].mean().unstack()
    y = (table.groupby("patient")["response"].first() == "responder").astype(int).loc[means.index]
    assert perf.loc["stroma", "auc"] == pytest.approx(roc_auc_score(y, means["stroma"]))
    assert perf.loc["difference", "auc"] == pytest.approx(roc_auc_score(y, means["stroma"] - means["tumour"]))
    assert "validated as is" in perf.loc["stroma", "signature"]
    assert (tmp_path / "scores.cohort.png").stat().st_size > 5000
    assert len(pd.read_csv(tmp_path / "scores.cohort_patients.csv")) == 8
    assert np.isfinite(perf["ci_low"]).all()


def test_de_command_never_writes_over_an_input(written, capsys):
    cohort, manifest = written
    s = read_manifest(manifest)[0]
    before = s.rois.read_bytes()
    rc = main(["de", "--manifest", str(manifest), "--test", "stroma", "--reference", "tumour",
               "--out", str(manifest.with_name("de.csv")), "--signature-out", str(s.rois)])
    assert rc == 1 and s.rois.read_bytes() == before
    assert not manifest.with_name("de.csv").exists()
