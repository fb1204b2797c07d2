"""Signatures: files (GMT / YAML / JSON), gene matching, the shipped example panel."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature, match_genes
from napari_roiscore.scoring.signature_files import load_signatures
from napari_roiscore.spots.table import SpotTable
from real_data import SHARED_DATA, real_data

VISIUM_H5 = SHARED_DATA / "visium_cytassist_mouse" / "filtered_feature_bc_matrix.h5"
EXAMPLE_FILE = files("napari_roiscore") / "signatures" / "example_macrophage_panel.yaml"


# --------------------------------------------------------------------------- example panel
def test_shipped_example_panel_loads_and_is_labelled_example():
    sigs = load_signatures(Path(str(EXAMPLE_FILE)))
    assert len(sigs) == 1
    sig = sigs[0]
    assert sig.is_example
    assert "example" in sig.label.lower()
    assert "NOT the published" in sig.description
    assert sig.up == EXAMPLE_PANEL.up == ("CD68", "CD163", "STAB1", "MRC1", "MSR1")
    assert "example" in Path(str(EXAMPLE_FILE)).read_text().lower()


def test_user_signature_is_not_labelled_example():
    sig = Signature("mine", up=("CD68",))
    assert not sig.is_example and sig.label == "mine"


# --------------------------------------------------------------------------- files
def test_gmt_with_up_down_pair(tmp_path):
    p = tmp_path / "sigs.gmt"
    p.write_text(
        "IFN\tinterferon genes\tSTAT1\tIFIT1\tISG15\n"
        "RESP_UP\tresponse\tCD68\tSTAB1\n"
        "RESP_DN\tresponse\tIFIT1\tCXCL10\n"
    )
    sigs = {s.name: s for s in load_signatures(p)}
    assert set(sigs) == {"IFN", "RESP"}
    assert sigs["IFN"].up == ("STAT1", "IFIT1", "ISG15") and sigs["IFN"].down == ()
    assert sigs["RESP"].up == ("CD68", "STAB1") and sigs["RESP"].down == ("IFIT1", "CXCL10")


def test_gmt_unpaired_up_or_down_sets_keep_their_names_as_up_sets(tmp_path):
    p = tmp_path / "sigs.gmt"
    p.write_text("GSE1_DN\tmsigdb\tCD68\tSTAB1\n"
                 "LONELY_UP\tx\tMRC1\n"
                 "B_DOWN\tx\tIFIT1\n"
                 "other\tx\tSTAT1\n"
                 "b_up\tx\tCD163\n")
    sigs = load_signatures(p)
    assert [s.name for s in sigs] == ["GSE1_DN", "LONELY_UP", "b", "other"]
    by = {s.name: s for s in sigs}
    assert by["GSE1_DN"].up == ("CD68", "STAB1") and by["GSE1_DN"].down == ()
    assert by["LONELY_UP"].up == ("MRC1",) and by["LONELY_UP"].down == ()
    assert by["b"].up == ("CD163",) and by["b"].down == ("IFIT1",)


def test_signatures_sharing_a_name_are_numbered_and_selectable(tmp_path):
    from napari_roiscore.cli import resolve_signature

    p = tmp_path / "dup.gmt"
    p.write_text("A\td\tCD68\nA\td\tSTAB1\nA\td\tMRC1\n")
    with pytest.warns(UserWarning, match="numbered: 'A \\(2\\)', 'A \\(3\\)'"):
        sigs = load_signatures(p)
    assert [s.name for s in sigs] == ["A", "A (2)", "A (3)"]
    with pytest.warns(UserWarning):
        assert resolve_signature(p, name="A (2)").up == ("STAB1",)
    with pytest.warns(UserWarning), pytest.raises(RoiScoreError, match="3 signatures") as err:
        resolve_signature(p)
    assert "'A (2)'" in err.value.fix and "numbered" in err.value.fix


@pytest.mark.parametrize("text,words", [
    ("name: m\nup: [CD68, NO, STAB1]\n", "holds False, not a gene symbol"),
    ("name: m\nup: [CD68]\ndown: [ON]\n", "field 'down' of signature 'm' holds True"),
    ("name: yes\nup: [CD68]\n", "field 'name' is True"),
    ("name: m\nup: [CD68]\nweights: {NO: 2}\n", "keyed by a boolean"),
])
def test_yaml_booleans_are_not_turned_into_gene_names(tmp_path, text, words):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(RoiScoreError, match=words) as err:
        load_signatures(p)
    assert "Quote" in err.value.fix
    p.write_text('name: m\nup: [CD68, "NO", "TRUE"]\n')
    assert load_signatures(p)[0].up == ("CD68", "NO", "TRUE")


def test_gmt_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.gmt"
    p.write_text("ONLYNAME CD68 CD163\n")  # spaces, not tabs
    with pytest.raises(RoiScoreError, match=r"bad\.gmt, line 1"):
        load_signatures(p)


def test_yaml_with_weights_and_down(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        "signatures:\n"
        "  - name: weighted\n"
        "    up: [CD68, CD163]\n"
        "    down: [IFIT1]\n"
        "    weights: {CD68: 2.0}\n"
        "  - name: listed\n"
        "    genes: [A, B]\n"
        "    weights: [0.5, 1.5]\n"
    )
    a, b = load_signatures(p)
    assert a.weight("cd68") == 2.0 and a.weight("CD163") == 1.0 and a.down == ("IFIT1",)
    assert b.up == ("A", "B") and b.weight("B") == 1.5


def test_json_list(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps([{"name": "x", "up": ["CD68"]}, {"name": "y", "up": "CD14, LYZ"}]))
    x, y = load_signatures(p)
    assert x.up == ("CD68",) and y.up == ("CD14", "LYZ")


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("w.yaml", "name: x\nup: [A, B]\nweights: [1]\n", "2 genes but 1 weights"),
        ("w.yaml", "name: x\nup: [A]\nweights: {A: abc}\n", "not a number"),
        ("b.json", "{not json", "not valid JSON"),
        ("e.yaml", "name: x\nup: []\n", "has no genes"),
        ("s.txt", "CD68", "unknown extension"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(RoiScoreError, match=match):
        load_signatures(p)


# --------------------------------------------------------------------------- matching
def test_match_case_insensitive_reports_missing():
    names = ["Cd68", "Stab1", "Actb"]
    m = match_genes(Signature("s", up=("CD68", "STAB1", "MSR1"), down=("actb", "NOPE")), names)
    assert m.up_used == ("Cd68", "Stab1") and m.down_used == ("Actb",)
    assert m.up_index.tolist() == [0, 1] and m.down_index.tolist() == [2]
    assert m.missing == ("MSR1", "NOPE")
    assert m.n_used == 3


def test_match_none_raises_with_fix():
    with pytest.raises(RoiScoreError, match="None of the signature genes") as err:
        match_genes(Signature("s", up=("X1",)), ["A", "B"])
    assert "Ensembl" in err.value.fix


def test_match_via_var_column_ensembl():
    names = ["CD68", "STAB1", "ACTB"]
    ids = ["ENSG00000129226", "ENSG00000010327", "ENSG00000075624"]
    m = match_genes(Signature("s", up=("ensg00000010327", "CD68")), names, [ids])
    assert m.up_index.tolist() == [1, 0]
    assert m.up_used == ("STAB1", "CD68")  # reported by the data's symbol


def test_spot_table_matches_gene_ids_column_when_scoring():
    X = sp.csr_matrix(np.array([[1, 0, 3], [0, 2, 1], [4, 1, 0]], dtype=np.float32))
    var = pd.DataFrame({"gene_ids": ["ENSMUSG01", "ENSMUSG02", "ENSMUSG03"]}, index=["Cd68", "Stab1", "Actb"])
    a = ad.AnnData(X=X, var=var)
    a.obsm["spatial"] = np.zeros((3, 2))
    spots = SpotTable(a, diameter_px=1.0)
    by_id = score_spots(spots, Signature("s", up=("ENSMUSG02",)), "mean_z")
    by_symbol = score_spots(spots, Signature("s", up=("STAB1",)), "mean_z")
    assert by_id.match.up_used == ("Stab1",)
    assert np.array_equal(by_id.values, by_symbol.values)


def test_real_visium_matching_by_symbol_and_ensembl():
    real_data("visium_cytassist_mouse", "filtered_feature_bc_matrix.h5")
    sc = pytest.importorskip("scanpy")
    a = sc.read_10x_h5(VISIUM_H5)
    a.var_names_make_unique()  # a SpotTable refuses duplicate gene names (see spot.py)
    a.obsm["spatial"] = np.zeros((a.n_obs, 2))
    spots = SpotTable(a, diameter_px=1.0)
    cd68 = list(a.var_names).index("Cd68")
    ensembl = str(a.var["gene_ids"].iloc[cd68])
    assert ensembl.startswith("ENSMUSG")
    m = match_genes(Signature("s", up=(ensembl.lower(), "STAB1", "NotAGene")), spots.gene_names, spots.gene_id_columns())
    assert m.up_index[0] == cd68 and m.up_used == ("Cd68", "Stab1")
    assert m.missing == ("NotAGene",)


@pytest.mark.parametrize("column", ["gene_name", "gene_symbol", "symbol", "feature_name"])
def test_ensembl_var_names_match_symbols_in_a_symbol_column(column):
    """var_names as Ensembl ids with the symbols in var['gene_name'] found no signature gene."""
    X = sp.csr_matrix(np.array([[1, 0, 3], [0, 2, 1], [4, 1, 0]], dtype=np.float32))
    var = pd.DataFrame({column: ["Cd68", "Stab1", "Actb"]}, index=["ENSMUSG01", "ENSMUSG02", "ENSMUSG03"])
    a = ad.AnnData(X=X, var=var)
    a.obsm["spatial"] = np.zeros((3, 2))
    spots = SpotTable(a, diameter_px=1.0)
    by_symbol = score_spots(spots, Signature("s", up=("STAB1", "CD68")), "mean_z")
    by_id = score_spots(spots, Signature("s", up=("ENSMUSG02", "ENSMUSG01")), "mean_z")
    assert by_symbol.match.n_used == 2
    assert np.array_equal(by_id.values, by_symbol.values)
