"""Genes without counts or variation: named, and treated as each method's reference does."""

from __future__ import annotations

import numpy as np
import pytest

from napari_roiscore.readers.visium import read_spaceranger
from napari_roiscore.scoring.gene_notes import gene_notice, informative_genes
from napari_roiscore.scoring.methods import score_spots
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature  # noqa: F401
from test_scoring import make_spots, random_counts


def test_mean_z_leaves_a_zero_gene_out_of_the_average():
    X = random_counts(80, 12, 0.3, seed=3).toarray()
    X[::2, 1] += 1
    X[::3, 2] += 2
    X[:, 4] = 0
    with_zero = score_spots(make_spots(X), Signature("s", up=("G1", "G2", "G4")), "mean_z")
    without = score_spots(make_spots(X), Signature("s", up=("G1", "G2")), "mean_z")
    # left out, not averaged in as 0 (which would shrink every score by 2/3)
    assert np.allclose(with_zero.values, without.values)
    assert with_zero.no_counts == ("G4",) and with_zero.constant == ("G4",)
    note = gene_notice(with_zero)
    assert note.startswith("G4: no counts in any spot") and "left out" in note
    assert "2 of 3 matched genes inform the score" in note
    assert informative_genes(with_zero) == ("G1", "G2")


def test_every_gene_without_variation_gives_nan_not_zero():
    X = random_counts(40, 8, 0.3, seed=4).toarray()
    X[:, [1, 2]] = 0
    res = score_spots(make_spots(X), Signature("s", up=("G1", "G2")), "mean_z")
    assert np.isnan(res.values).all()


def test_down_side_alone_still_scores():
    X = random_counts(60, 8, 0.4, seed=5).toarray()
    X[::2, 3] += 1
    X[:, 1] = 0
    res = score_spots(make_spots(X), Signature("s", up=("G1",), down=("G3",)), "mean_z")
    ref = score_spots(make_spots(X), Signature("s", up=("G3",)), "mean_z")
    assert np.allclose(res.values, -ref.values)


@pytest.mark.parametrize("method,word", [("scanpy", "scanpy"), ("ucell", "lowest rank"),
                                         ("singscore", "lowest rank")])
def test_other_methods_keep_the_gene_and_say_so(method, word):
    X = random_counts(80, 60, 0.3, seed=6).toarray()
    X[::2, 1] += 1
    X[::3, 2] += 2
    X[:, 4] = 0
    res = score_spots(make_spots(X), Signature("s", up=("G1", "G2", "G4")), method)
    assert res.no_counts == ("G4",)
    assert word in gene_notice(res)


def test_no_notice_when_every_gene_informs():
    X = random_counts(50, 10, 0.6, seed=7).toarray()
    X[:, :3] += 1
    res = score_spots(make_spots(X), Signature("s", up=("G0", "G1", "G2")), "mean_z")
    assert res.no_counts == () and gene_notice(res) is None


def test_long_lists_are_capped():
    X = random_counts(30, 30, 0.3, seed=8).toarray()
    X[:, 10:30] = 0
    genes = tuple(f"G{i}" for i in range(5, 30))
    res = score_spots(make_spots(X), Signature("s", up=genes), "ucell")
    assert "and 14 more" in gene_notice(res)


def test_real_visium_example_panel_names_the_silent_genes(shared_data):
    spots = read_spaceranger(shared_data / "visium_cytassist_mouse")
    res = score_spots(spots, EXAMPLE_PANEL, "mean_z")
    X = spots.counts.tocsc()
    idx = [spots.gene_names.index(g) for g in res.match.used]
    zero = tuple(g for g, i in zip(res.match.used, idx) if X[:, i].sum() == 0)
    assert res.no_counts == zero and len(zero) >= 1
    note = gene_notice(res)
    for g in zero:
        assert g in note
    assert f"{res.match.n_used - len(zero)} of {res.match.n_used}" in note
