"""The report's plots and files (pure core, matplotlib Agg)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from napari_roiscore.analysis.report import draw_distributions_on, report_title, write_report


def _values():
    rng = np.random.default_rng(0)
    values = {"A": rng.normal(0, 1, 30), "B": rng.normal(1, 1, 20), "C": rng.normal(2, 1, 10),
              "D": np.array([])}
    classes = {"A": "stroma", "B": "necrosis", "C": "tumour", "D": "tumour"}
    return values, classes


def test_violins_put_tumour_before_stroma_then_user_classes():
    values, classes = _values()
    fig = Figure()
    ax_roi, ax_cls = fig.subplots(1, 2)
    draw_distributions_on(ax_roi, ax_cls, values, classes)
    assert [t.get_text() for t in ax_cls.get_xticklabels()] == ["tumour", "stroma", "necrosis"]
    assert [t.get_text() for t in ax_roi.get_xticklabels()] == ["A", "B", "C"]  # D has no spots


def test_report_writes_png_and_pdf_also_with_an_empty_roi(tmp_path):
    values, classes = _values()
    table = pd.DataFrame({"roi": ["A", "B", "C", "D"], "class": [classes[k] for k in "ABCD"],
                          "spots": [30, 20, 10, 0], "score": [0.0, 1.0, 2.0, np.nan],
                          "median": [0.0, 1.0, 2.0, np.nan], "status": ["ok"] * 3 + ["no spots"]})
    png, pdf = write_report(tmp_path / "r", view=np.zeros((20, 30, 3), np.uint8), table=table, values=values,
                            classes=classes, metadata={"method": "mean_z"}, comparison_lines=["tumour − stroma: 2"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def _pdf_pages(pdf) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))


@pytest.mark.parametrize("n, pages", [(5, 1), (10, 1), (11, 2), (35, 2), (100, 4)])
def test_many_rois_go_on_further_pdf_pages(tmp_path, n, pages):
    """35 ROIs ran over the text and the plots, and only 30 rows were printed, silently."""
    rng = np.random.default_rng(1)
    names = [f"R{i:03d}" for i in range(n)]
    values = {k: rng.normal(0, 1, 5) for k in names}
    classes = {k: ("tumour", "stroma")[i % 2] for i, k in enumerate(names)}
    table = pd.DataFrame({"roi": names, "class": [classes[k] for k in names], "spots": 5,
                          "score": [v.mean() for v in values.values()],
                          "median": [np.median(v) for v in values.values()], "status": "ok"})
    png, pdf = write_report(tmp_path / "r", view=None, table=table, values=values, classes=classes,
                            metadata={"method": "mean_z"})
    assert _pdf_pages(pdf) == pages


def test_report_draws_colour_bar_class_legend_date_and_sample(tmp_path):
    import datetime

    from skimage.io import imread

    from napari_roiscore.rois.classes import class_colour_rgba
    from napari_roiscore.spots.colour_scale import score_scale

    values, classes = _values()
    table = pd.DataFrame({"roi": ["A", "C"], "class": ["stroma", "tumour"], "spots": [30, 10],
                          "score": [0.0, 2.0], "median": [0.0, 2.0], "status": ["ok", "ok"]})
    scale = score_scale(np.linspace(0, 1, 50), "ucell", "macrophage genes")
    kw = dict(view=np.zeros((20, 30, 3), np.uint8), table=table, values=values, classes=classes,
              metadata={"signature": "macrophage genes"})
    plain, _ = write_report(tmp_path / "plain", **kw)
    png, _ = write_report(tmp_path / "keys", **kw, colour_scale=scale, sample_id="visium_cytassist_mouse",
                          class_colours={"tumour": class_colour_rgba("tumour"),
                                         "stroma": class_colour_rgba("stroma")})

    def has(img, rgb, tol=12):
        return int((np.abs(img[..., :3].astype(int) - np.array(rgb)).max(axis=-1) < tol).sum())

    before, after = imread(plain), imread(png)
    viridis_top = (253, 231, 37)
    assert has(after, viridis_top) > has(before, viridis_top) + 20  # the colour bar
    stroma = [round(255 * c) for c in class_colour_rgba("stroma")[:3]]
    assert has(after, stroma) > has(before, stroma)  # the legend's edge swatch
    assert report_title("macrophage genes", "visium_cytassist_mouse", datetime.date(2026, 12, 2)) == (
        "napari-roiscore report — sample visium_cytassist_mouse — macrophage genes — 2026-12-02 — "
        "research use only")
