"""Differential expression between ROI groups: pseudobulk samples, PyDESeq2, refusal, signature files, volcano."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from napari_roiscore.analysis.differential import differential_expression
from napari_roiscore.analysis.pseudobulk_samples import SlideRois, roi_pseudobulk, unique_gene_names
from napari_roiscore.analysis.signature_from_de import signature_from_de, write_signature
from napari_roiscore.analysis.synthetic_cohort import synthetic_cohort
from napari_roiscore.analysis.volcano import draw_volcano, write_volcano
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.signature import load_signatures


@pytest.fixture(scope="module")
def small_cohort():
    return synthetic_cohort(8, n_genes=60, seed=3, spots_per_roi=16)


@pytest.fixture(scope="module")
def paired_de(small_cohort):
    samples = roi_pseudobulk(small_cohort.slides)
    return differential_expression(samples, "class", "stroma", "tumour", unit="patient")


def _independent_pseudobulk(cohort) -> pd.DataFrame:
    """ROI sums by shapely point-in-polygon over every spot, pooled per patient and class with pandas."""
    rows = {}
    for slide in cohort.slides:
        X = slide.spots.counts.toarray()
        x, y = slide.spots.xy.T
        for roi in slide.rois:
            inside = shapely.contains_xy(roi.geometry, x, y)
            key = (slide.attributes["patient"], roi.roi_class)
            rows[key] = rows.get(key, 0) + X[inside].sum(axis=0)
    index = pd.MultiIndex.from_tuples(list(rows), names=["patient", "class"])
    return pd.DataFrame(np.vstack(list(rows.values())), index=index, columns=slide.spots.gene_names)


def _pydeseq2(counts: pd.DataFrame, meta: pd.DataFrame, design: str, contrast: list[str]) -> pd.DataFrame:
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    inference = DefaultInference(n_cpus=1)
    dds = DeseqDataSet(counts=counts, metadata=meta, design=design, inference=inference, quiet=True)
    dds.deseq2()
    stats = DeseqStats(dds, contrast=contrast, inference=inference, quiet=True)
    stats.summary()
    return stats.results_df


def test_de_numbers_equal_pydeseq2_run_directly(small_cohort, paired_de):
    bulk = _independent_pseudobulk(small_cohort).round().astype(int)
    bulk = bulk.loc[:, bulk.sum(axis=0) >= 10]
    meta = bulk.index.to_frame(index=False)
    bulk.index = meta.index = [f"{p}_{c}" for p, c in zip(meta["patient"], meta["class"])]
    assert paired_de.design == "~unit + group" and len(paired_de.metadata) == 16
    # 1) the same matrix and the same level coding: identical numbers
    coded = pd.DataFrame({"unit": meta["patient"], "group": meta["class"].map({"stroma": "test",
                                                                               "tumour": "reference"})})
    ref = _pydeseq2(bulk, coded, "~unit + group", ["group", "test", "reference"])
    ours = paired_de.table.set_index("gene").loc[ref.index]
    for col, theirs in (("base_mean", "baseMean"), ("log2FC", "log2FoldChange"), ("p", "pvalue"),
                        ("adjusted_p", "padj"), ("lfc_se", "lfcSE")):
        np.testing.assert_allclose(ours[col], ref[theirs], rtol=1e-10, atol=0, err_msg=col)
    # 2) the natural coding (class levels; stroma the reference level inside the fit, so the fit is
    #    parameterised differently): the same fold changes, p-values within 2 % on the log scale
    ref = _pydeseq2(bulk, meta, "~patient + class", ["class", "stroma", "tumour"])
    ours = paired_de.table.set_index("gene").loc[ref.index]
    np.testing.assert_allclose(ours["log2FC"], ref["log2FoldChange"], atol=1e-3)
    np.testing.assert_allclose(np.log10(ours["p"]), np.log10(ref["pvalue"]), rtol=2e-2, atol=1e-3)


def test_pseudobulk_sums_spots_inside_each_roi(small_cohort):
    slide = small_cohort.slides[0]
    mask = np.zeros(slide.spots.n_spots, bool)
    mask[::2] = True
    plain = roi_pseudobulk([slide])
    masked = roi_pseudobulk([SlideRois(slide.slide, slide.spots, slide.rois, slide.attributes, mask)])
    X = slide.spots.counts.toarray()
    x, y = slide.spots.xy.T
    for i, roi in enumerate(slide.rois):
        inside = shapely.contains_xy(roi.geometry, x, y)
        np.testing.assert_array_equal(plain.counts.iloc[i], X[inside].sum(axis=0))
        np.testing.assert_array_equal(masked.counts.iloc[i], X[inside & mask].sum(axis=0))
        assert masked.samples["n_spots"].iloc[i] == (inside & mask).sum()
    assert set(plain.samples.columns) >= {"roi", "class", "slide", "n_spots", "patient", "response"}


def test_rois_of_one_slide_are_refused_as_replicates(small_cohort):
    slide = small_cohort.slides[0]
    extra = [Roi(f"{r.name}b", r.roi_class, shapely.affinity.translate(r.geometry, 1, 0)) for r in slide.rois]
    samples = roi_pseudobulk([SlideRois(slide.slide, slide.spots, slide.rois + extra, slide.attributes)])
    with pytest.raises(RoiScoreError, match="not independent replicates") as err:
        differential_expression(samples, "class", "stroma", "tumour", unit="slide")
    assert "'stroma' has 1 independent slide" in str(err.value)
    res = differential_expression(samples, "class", "stroma", "tumour", unit="slide", descriptive=True)
    assert res.descriptive and res.exploratory and "Exploratory" in res.note and len(res.metadata) == 8


def test_one_slide_refusal_says_why_and_names_the_ways_out(small_cohort, tmp_path):
    slide = small_cohort.slides[0]
    extra = [Roi(f"{r.name}b", r.roi_class, shapely.affinity.translate(r.geometry, 1, 0)) for r in slide.rois]
    samples = roi_pseudobulk([SlideRois(slide.slide, slide.spots, slide.rois + extra, slide.attributes)])
    with pytest.raises(RoiScoreError) as err:
        differential_expression(samples, "class", "tumour", "stroma", unit="slide")
    assert f"All 8 compared ROIs lie on one slide ('{slide.slide}')" in err.value.problem
    assert "each ROI its own unit" in err.value.fix and "exploratory" in err.value.fix
    # the explicit exploratory run: flagged in the result, its note, the CSV, the volcano, the provenance
    res = differential_expression(samples, "class", "tumour", "stroma", unit="slide", descriptive=True)
    assert res.exploratory and res.note.startswith("Exploratory") and res.headline.startswith("EXPLORATORY")
    assert res.design_label == "~ group" and res.design == "~group"  # one slide: nothing to pair on
    csv = res.to_csv(tmp_path / "de.csv").read_text().splitlines()
    assert "# design ~ group" in csv and any(line.startswith("# EXPLORATORY") for line in csv)
    assert any(line.startswith("# note: Exploratory") for line in csv)
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    draw_volcano(ax, res)
    assert ax.get_title().startswith("EXPLORATORY") and "design ~ group" in ax.get_title()
    prov = res.provenance()
    assert prov["exploratory"] is True and prov["note"] == res.note and prov["design"] == "~ group"
    assert prov["software"]["pydeseq2"] == prov["pydeseq2"] and "numpy" in prov["software"]
    sig = signature_from_de(res, n_up=2, n_down=2)
    assert sig.description.startswith("EXPLORATORY;") and "design ~ group" in sig.description
    # the same ROIs with every ROI its own unit (the user's statement): not exploratory, but the note says so
    each = differential_expression(samples, "class", "tumour", "stroma", unit=None)
    assert not each.exploratory and each.design_label == "~ group"
    assert "Each ROI was taken as an independent unit" in each.note
    assert "# note: Each ROI was taken" in each.to_csv(tmp_path / "each.csv").read_text()


def test_units_nested_in_groups_give_one_sample_per_patient(small_cohort):
    samples = roi_pseudobulk(small_cohort.slides)
    stroma = samples.subset(samples.samples["class"] == "stroma")
    res = differential_expression(stroma, "response", "responder", "non-responder", unit="patient")
    assert res.design == "~group" and res.design_label == "~ group" and not res.note
    assert len(res.metadata) == 8 and res.metadata["unit"].is_unique
    assert res.units_per_group == {"responder": 4, "non-responder": 4}


def test_bad_group_column_or_value_names_the_choices(small_cohort):
    samples = roi_pseudobulk(small_cohort.slides[:2])
    with pytest.raises(RoiScoreError, match="No sample column 'kind'"):
        differential_expression(samples, "kind", "a", "b")
    with pytest.raises(RoiScoreError, match="No sample has class = 'necrosis'"):
        differential_expression(samples, "class", "necrosis", "tumour")


def test_planted_genes_are_the_top_hits():
    cohort = synthetic_cohort(20, n_genes=150, seed=5)
    samples = roi_pseudobulk(cohort.slides)
    stroma = samples.subset(samples.samples["class"] == "stroma")
    res = differential_expression(stroma, "response", "responder", "non-responder", unit="patient")
    top10 = list(res.table["gene"].head(10))
    assert len(cohort.planted) == 5 and set(cohort.planted) <= set(top10)
    assert (res.table.set_index("gene").loc[list(cohort.planted), "log2FC"] > 0).all()


def test_csv_and_signature_files_keep_provenance(paired_de, tmp_path):
    path = paired_de.to_csv(tmp_path / "de.csv")
    back = pd.read_csv(path, comment="#")
    assert list(back.columns[:5]) == ["gene", "log2FC", "p", "adjusted_p", "base_mean"]
    np.testing.assert_allclose(back["log2FC"], paired_de.table["log2FC"])
    sig = signature_from_de(paired_de, n_up=4, n_down=3, name="stroma_vs_tumour")
    t = paired_de.table
    up = t[t.log2FC > 0].sort_values(["adjusted_p", "p"]).gene.head(4).tolist()
    assert list(sig.up) == up and len(sig.down) == 3
    gmt = load_signatures(write_signature(sig, tmp_path / "s.gmt", paired_de))
    assert len(gmt) == 1 and gmt[0].name == "stroma_vs_tumour"
    assert gmt[0].up == sig.up and gmt[0].down == sig.down and "PyDESeq2" in gmt[0].description
    yml_path = write_signature(sig, tmp_path / "s.yaml", paired_de)
    (yml,) = load_signatures(yml_path)
    assert yml.up == sig.up and yml.down == sig.down
    prov = yaml.safe_load(yml_path.read_text())["provenance"]
    assert prov["design"] == "~ patient + group" and prov["design_formula"] == "~unit + group"
    assert len(prov["rois"]) == 32 and prov["date"] and not prov["exploratory"]
    assert "design ~ patient + group" in gmt[0].description and "pydeseq2" in gmt[0].description
    chosen = signature_from_de(paired_de, genes=[up[0], sig.down[0]])
    assert chosen.up == (up[0],) and chosen.down == (sig.down[0],)
    with pytest.raises(RoiScoreError, match="not in the differential"):
        signature_from_de(paired_de, genes=["NOPE"])
    with pytest.raises(RoiScoreError, match="only down genes"):
        write_signature(signature_from_de(paired_de, n_up=0, n_down=2), tmp_path / "d.gmt")


def test_volcano_labels_the_top_genes_of_each_side(paired_de, tmp_path):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    labelled = draw_volcano(ax, paired_de, n_labels=6)
    assert labelled == paired_de.top_genes(3, "up") + paired_de.top_genes(3, "down")
    assert {t.get_text() for t in ax.texts} == set(labelled)
    png = write_volcano(paired_de, tmp_path / "v.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore")
def test_unique_gene_names_follow_anndata():
    import anndata as ad

    names = ["A", "B", "A", "A", "A-1", "B"]
    assert unique_gene_names(names) == list(ad.utils.make_index_unique(pd.Index(names)))


def test_one_table_of_several_slides_gives_one_sample_per_roi_and_slide():
    from gui_helpers import multi_slide

    from napari_roiscore.analysis.pseudobulk_samples import slide_column, split_by_slide

    combined, slides = multi_slide(3, seed=2)
    assert slide_column(["x", "Slide Name"]) == "Slide Name" and slide_column(["sample"]) is None
    mask = np.zeros(combined.spots.n_spots, bool)
    mask[::3] = True
    parts = split_by_slide(combined.spots, combined.rois, spot_mask=mask)
    assert [p.slide for p in parts] == [s.slide for s in slides]
    got = roi_pseudobulk(parts)
    # the same sums as each slide's own table (restricted to the same spots)
    offset, ref = 0, []
    for s in slides:
        n = s.spots.n_spots
        ref.append(roi_pseudobulk([SlideRois(s.slide, s.spots, s.rois, spot_mask=mask[offset:offset + n])]))
        offset += n
    np.testing.assert_array_equal(got.counts.to_numpy(), np.vstack([r.counts.to_numpy() for r in ref]))
    assert list(got.samples["slide"]) == [x for r in ref for x in r.samples["slide"]]
    # a table without a slide column is one slide
    (one,) = split_by_slide(slides[0].spots, slides[0].rois)
    assert one.slide == "slide" and one.spot_mask is None
