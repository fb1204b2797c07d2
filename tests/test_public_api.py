"""The "Python API" example of the README runs, and gives the numbers of ``roiscore score``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import napari_roiscore
from napari_roiscore.cli import EXIT_OK, main
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.scorer import ANNOTATION_COLUMNS, TABLE_COLUMNS
from napari_roiscore.spots.sample import SAMPLE_DIR

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README 'Python API' section has no python code block"
    return match.group(1)


@pytest.fixture(scope="module")
def example() -> dict:
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)
    return namespace


def read_cli_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"roi": str}, float_precision="round_trip", keep_default_na=False,
                       na_values={"score": [""], "median": [""]})


def test_example_is_short_and_uses_the_public_names():
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    assert "from napari_roiscore import" in code


def test_public_names_are_exported():
    for name in ("SpotTable", "Roi", "Signature", "RoiScorer", "read_spots", "read_rois", "score_rois",
                 "RoiScoreError", "EXAMPLE_PANEL"):
        assert name in napari_roiscore.__all__
        assert getattr(napari_roiscore, name) is not None
    assert napari_roiscore.RoiScoreError is RoiScoreError


def test_example_gives_one_finite_score_per_roi(example):
    rois, table = example["rois"], example["table"]
    assert isinstance(example["spots"], napari_roiscore.SpotTable)
    assert all(isinstance(r, napari_roiscore.Roi) for r in rois)
    assert list(table.columns) == TABLE_COLUMNS + ANNOTATION_COLUMNS
    assert list(table["roi"]) == [r.name for r in rois] and len(rois) >= 2
    assert (table["status"] == "ok").all() and (table["spots"] > 0).all()
    assert np.isfinite(table["score"].to_numpy(dtype=float)).all()
    ucell = example["ucell"]["score"].to_numpy(dtype=float)
    assert len(ucell) == len(rois) and ((ucell >= 0) & (ucell <= 1)).all()  # UCell scores lie in [0, 1]


def test_example_table_equals_the_command_line_table(example, tmp_path):
    out = tmp_path / "cli.csv"
    rc = main(["-q", "score", "--spots", str(SAMPLE_DIR / "sample_spots.h5ad"),
               "--rois", str(SAMPLE_DIR / "sample_rois.geojson"), "--method", "mean_z", "--out", str(out)])
    assert rc == EXIT_OK
    cli = read_cli_table(out)
    api = example["table"]
    assert list(cli.columns) == list(api.columns)
    np.testing.assert_array_equal(cli["score"].to_numpy(dtype=float), api["score"].to_numpy(dtype=float))
    np.testing.assert_array_equal(cli["median"].to_numpy(dtype=float), api["median"].to_numpy(dtype=float))
    for col in ("roi", "class", "spots", "status", *ANNOTATION_COLUMNS):
        assert [str(v) for v in cli[col]] == [str(v) for v in api[col]], col


def test_score_rois_reads_paths_and_gene_lists_like_the_cli(tmp_path):
    spots, rois = SAMPLE_DIR / "sample_spots.h5ad", SAMPLE_DIR / "sample_rois.geojson"
    table = napari_roiscore.score_rois(spots, rois, ["CD163", "MRC1"], method="ucell", max_rank=500)
    out = tmp_path / "cli.csv"
    assert main(["-q", "score", "--spots", str(spots), "--rois", str(rois), "--genes", "CD163,MRC1",
                 "--method", "ucell", "--param", "max_rank=500", "--out", str(out)]) == EXIT_OK
    cli = read_cli_table(out)
    np.testing.assert_array_equal(cli["score"].to_numpy(dtype=float), table["score"].to_numpy(dtype=float))
    assert list(cli["signature"]) == list(table["signature"])


def test_score_rois_refuses_an_unknown_parameter():
    spots, rois = SAMPLE_DIR / "sample_spots.h5ad", SAMPLE_DIR / "sample_rois.geojson"
    with pytest.raises(RoiScoreError, match="max_rank"):
        napari_roiscore.score_rois(spots, rois, napari_roiscore.EXAMPLE_PANEL, method="ucell", max_rnak=500)
