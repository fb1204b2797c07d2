"""Differential expression on the real GeoMx NGS example: cell-line AOI groups, slides as units."""

from __future__ import annotations


import numpy as np
import pytest

from napari_roiscore.analysis.differential import differential_expression
from napari_roiscore.analysis.pseudobulk_samples import aoi_samples
from napari_roiscore.analysis.volcano import write_volcano
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.geomx import read_geomx_ngs
from real_data import real_data



@pytest.fixture(scope="module")
def samples():
    folder = real_data("geomx_ngs_example")
    return aoi_samples(read_geomx_ngs(folder))


@pytest.mark.slow
def test_geomx_cell_lines_de_with_slides_as_units(samples, tmp_path):
    assert len(samples.counts) == 88 and samples.samples["slide"].nunique() == 4
    res = differential_expression(samples, "cell_line", "HS578T", "HEL", unit="slide")
    # 2 AOIs per cell line on each of 4 slides: pooled to one sample per slide and cell line, paired by slide
    assert res.units_per_group == {"HS578T": 4, "HEL": 4}
    assert res.design == "~unit + group" and res.design_label == "~ slide + group" and len(res.metadata) == 8
    pooled = samples.counts[samples.samples["cell_line"] == "HS578T"].groupby(
        samples.samples["slide"]).sum().round()
    slide = pooled.index[0]
    got = res.counts.loc[f"{slide} | test"]
    np.testing.assert_array_equal(got.to_numpy(), pooled.loc[slide, got.index].to_numpy())
    t = res.table.set_index("gene")
    # HS578T is a mesenchymal breast cancer line, HEL an erythroleukaemia line: matrix genes up in HS578T
    assert t.loc["FN1", "log2FC"] > 3 and t.loc["FN1", "adjusted_p"] < 1e-10
    assert (t["adjusted_p"] < 0.05).sum() > 100
    png = write_volcano(res, tmp_path / "geomx_volcano.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_geomx_aois_of_one_slide_are_refused(samples):
    one = samples.subset((samples.samples["slide"] == samples.samples["slide"].iloc[0]).to_numpy())
    with pytest.raises(RoiScoreError, match="has 1 independent slide"):
        differential_expression(one, "cell_line", "HS578T", "HEL", unit="slide")
