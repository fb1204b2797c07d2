"""The real-tissue walkthrough (benchmarks/mibi_walkthrough.py) without its screenshot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("mibi_walkthrough", ROOT / "benchmarks" / "mibi_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_walkthrough_scores_follow_the_real_stains(shared_data):
    wt = _script()
    res = wt.walkthrough(shared_data / "mibi_breast_risom2022" / "Point2206_pt1116_31620", 0.5)
    spots = res["spots"]
    assert spots.n_spots >= 25 and spots.diameter_px == 110.0  # 55 µm at 0.5 µm/px
    obs = spots.adata.obs
    assert obs["frac_tumour"].max() > 0.5 and obs["frac_tumour"].min() < 0.1
    table = res["table"]
    epi = table[table["signature"] == "epithelial panel"].dropna(subset=["score"])
    by_class = epi.groupby("class").apply(lambda t: np.average(t["score"], weights=t["spots"]))
    assert by_class["tumour"] > by_class["stroma"] + 0.5
    assert set(res["seconds"]) == {"read all TIFFs eagerly (baseline)", "open field (lazy)", "propose compartments"}


def test_walkthrough_skips_cleanly_without_data(tmp_path, capsys):
    assert _script().main(["--data", str(tmp_path), "--no-screenshot", "--out", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().out
