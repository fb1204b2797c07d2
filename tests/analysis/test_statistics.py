from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.spots.sample import open_sample
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import Signature
from napari_roiscore.analysis.statistics import (
    RESEARCH_ONLY,
    compare_classes,
    compare_rois,
    responder_call,
    spots_by_class,
)


def _two_groups(rng, na=300, nb=400, shift=0.5):
    a = rng.normal(shift, 1.0, na)
    b = rng.normal(0.0, 1.0, nb)
    values = np.concatenate([a, b])
    return values, {"tumour": np.arange(na), "stroma": np.arange(na, na + nb)}


def test_difference_ci_and_p_on_known_groups():
    rng = np.random.default_rng(1)
    values, cls = _two_groups(rng)
    a, b = values[cls["tumour"]], values[cls["stroma"]]
    res = compare_classes(values, cls, n_boot=4000, seed=3)
    assert res.difference == pytest.approx(a.mean() - b.mean())
    # independent check: normal-theory (Welch) interval of a difference of means
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert res.ci_low == pytest.approx(res.difference - 1.96 * se, abs=0.2 * se)
    assert res.ci_high == pytest.approx(res.difference + 1.96 * se, abs=0.2 * se)
    assert res.ci_low < res.difference < res.ci_high
    # independent check of the p-value: normal approximation of U (no ties here)
    u = sum((x > b).sum() for x in a)
    mu, sd = a.size * b.size / 2, np.sqrt(a.size * b.size * (a.size + b.size + 1) / 12)
    p_norm = 2 * sps.norm.sf(abs(u - mu) / sd)
    assert res.u_statistic == pytest.approx(u)
    assert res.p_value == pytest.approx(p_norm, rel=0.05)
    assert res.p_value < 1e-6
    assert res.message == ""
    assert "within each class" in res.resampling


def test_bootstrap_matches_hand_written_within_class_resampling():
    rng = np.random.default_rng(5)
    values, cls = _two_groups(rng, na=60, nb=80, shift=0.3)
    a, b = values[cls["tumour"]], values[cls["stroma"]]
    res = compare_classes(values, cls, n_boot=5000, seed=0)
    r = np.random.default_rng(99)
    boots = (a[r.integers(0, a.size, (5000, a.size))].mean(axis=1)
             - b[r.integers(0, b.size, (5000, b.size))].mean(axis=1))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    width = hi - lo
    assert res.ci_low == pytest.approx(lo, abs=0.05 * width)
    assert res.ci_high == pytest.approx(hi, abs=0.05 * width)


def test_seeded_and_same_distribution():
    rng = np.random.default_rng(2)
    values, cls = _two_groups(rng, shift=0.0)
    r1 = compare_classes(values, cls, seed=7)
    r2 = compare_classes(values, cls, seed=7)
    r3 = compare_classes(values, cls, seed=8)
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)
    assert (r1.ci_low, r1.ci_high) != (r3.ci_low, r3.ci_high)
    assert r1.ci_low < 0 < r1.ci_high
    assert r1.p_value > 0.05


def test_empty_and_single_spot_classes_give_nan_and_message():
    values = np.array([0.1, 0.2, 0.3, 0.9])
    res = compare_classes(values, {"tumour": np.array([0, 1, 2]), "stroma": np.array([], int)})
    assert np.isnan(res.difference) and np.isnan(res.ci_low) and np.isnan(res.p_value)
    assert "no stroma spots" in res.message
    assert res.summaries["stroma"].n_spots == 0 and np.isnan(res.summaries["stroma"].mean)
    assert "not available" in res.text

    res = compare_classes(values, {"tumour": np.array([0, 1, 2]), "stroma": np.array([3])})
    assert res.difference == pytest.approx(0.2 - 0.9)
    assert np.isnan(res.ci_low) and np.isnan(res.ci_high) and np.isnan(res.p_value)
    assert "only 1 stroma spot" in res.message
    # class missing from the dict altogether
    res = compare_classes(values, {"tumour": np.array([0, 1])})
    assert "no stroma spots" in res.message


def test_nan_scores_ignored_and_constant_scores():
    values = np.array([1.0, np.nan, 1.0, 1.0, 1.0])
    res = compare_classes(values, {"tumour": np.array([0, 1, 2]), "stroma": np.array([3, 4])})
    assert res.summaries["tumour"].n_spots == 2
    assert res.difference == 0.0 and res.p_value == 1.0
    assert res.ci_low == res.ci_high == 0.0


def test_summary_uses_table_for_roi_counts():
    values = np.arange(6, dtype=float)
    table = pd.DataFrame({
        "roi": ["a", "b", "c"], "class": ["tumour", "tumour", "stroma"],
        "spots": [2, 2, 2], "score": [0.5, 2.5, 4.5], "median": [0.5, 2.5, 4.5],
        "status": ["ok"] * 3,
    })
    cls = {"tumour": np.array([0, 1, 2, 3]), "stroma": np.array([4, 5])}
    res = compare_classes(values, cls, table)
    t = res.summary_table().set_index("class")
    assert t.loc["tumour", "rois"] == 2 and t.loc["stroma", "rois"] == 1
    assert t.loc["tumour", "mean"] == pytest.approx(1.5)
    assert t.loc["tumour", "median"] == pytest.approx(1.5)
    assert t.loc["tumour", "mean_roi_score"] == pytest.approx(1.5)
    assert t.loc["stroma", "spots"] == 2


def test_responder_call_always_research_only():
    c = responder_call(0.4, 0.3, "above", "x")
    assert c.responder is True and RESEARCH_ONLY in c.label and "Likely responder" in c.label
    c = responder_call(0.2, 0.3, "above", "x")
    assert c.responder is False and RESEARCH_ONLY in c.label and "non-responder" in c.label
    c = responder_call(0.2, 0.3, "below", "x")
    assert c.responder is True and RESEARCH_ONLY in c.label
    c = responder_call(float("nan"), 0.3)
    assert c.responder is None and RESEARCH_ONLY in c.label
    with pytest.raises(RoiScoreError, match="direction"):
        responder_call(0.1, 0.3, "sideways")
    with pytest.raises(RoiScoreError, match="threshold"):
        responder_call(0.1, float("nan"))

    rng = np.random.default_rng(0)
    values, cls = _two_groups(rng)
    res = compare_classes(values, cls, responder_threshold=0.0)
    assert res.responder.responder is True and "tumour − stroma" in res.responder.label
    res = compare_classes(values, cls, responder_threshold=10.0, responder_statistic="mean")
    assert res.responder.responder is False and "mean tumour" in res.responder.label


def test_bad_options_raise():
    v, cls = np.zeros(4), {"tumour": np.array([0, 1]), "stroma": np.array([2, 3])}
    for kw in ({"confidence": 1.5}, {"n_boot": 5}, {"class_b": "tumour"},
               {"responder_threshold": 1, "responder_statistic": "median"}):
        with pytest.raises(RoiScoreError):
            compare_classes(v, cls, **kw)


def test_spots_by_class_union_and_mask():
    rois = [Roi.from_xy(n, c, np.array([[0, 0], [1, 0], [1, 1]]))
            for n, c in (("1", "tumour"), ("2", "tumour"), ("3", "stroma"))]
    members = [np.array([0, 1, 2]), np.array([2, 3]), np.array([3, 5])]
    out = spots_by_class(rois, members)
    assert out["tumour"].tolist() == [0, 1, 2, 3] and out["stroma"].tolist() == [3, 5]
    mask = np.array([True, False, True, True, True, False])
    out = spots_by_class(rois, members, mask)
    assert out["tumour"].tolist() == [0, 2, 3] and out["stroma"].tolist() == [3]
    res = compare_classes(np.arange(6.0), spots_by_class(rois, members))
    assert "1 spot(s) lie in both" in res.message
    with pytest.raises(RoiScoreError):
        spots_by_class(rois, members[:2])


@pytest.fixture(scope="module")
def sample():
    return open_sample()


def test_sample_macrophage_genes_higher_in_stroma(sample):
    scorer = RoiScorer(sample.spots)
    sig = Signature("macrophage", ("CD68", "CD163", "STAB1", "MRC1", "MSR1"))
    scores = scorer.spot_scores(sig)
    res = compare_rois(scorer, sample.rois, scores, seed=1)
    s = res.summaries
    assert s["tumour"].n_rois == 1 and s["stroma"].n_rois == 1
    assert s["tumour"].n_spots > 10 and s["stroma"].n_spots > 10
    # the synthetic slide puts ~4x more macrophages in stroma than in tumour nests
    assert res.difference < 0 and res.ci_high < 0 and res.p_value < 0.01
    assert s["tumour"].mean_roi_score == pytest.approx(s["tumour"].mean)
    print("\n" + res.text)
