"""A signature file with several signatures: a chooser in the form."""

from __future__ import annotations

import pytest

from gui_helpers import scores_ready

pytestmark = pytest.mark.gui


def test_choose_among_the_signatures_of_a_gmt(sample_viewer, qtbot, tmp_path):
    viewer, w = sample_viewer
    gmt = tmp_path / "two.gmt"
    gmt.write_text("MACRO\tna\tCD68\tCD163\tMRC1\nEPI\tna\tEPCAM\tKRT8\tKRT18\tKRT19\n")
    form = w.form
    assert form.signature_choice.native.isHidden()
    old = w.state.scores
    form.load_signature(gmt)
    assert not form.signature_choice.native.isHidden()
    assert [form.signature_choice.native.itemText(i) for i in range(2)] == ["MACRO (3 genes)", "EPI (4 genes)"]
    qtbot.waitUntil(lambda: w.state.scores is not old and w.state.scores is not None, timeout=30_000)
    assert w.state.scores.signature.name == "MACRO"
    first = w.state.scores
    form.signature_choice.value = 1
    qtbot.waitUntil(lambda: w.state.scores is not first and w.state.scores is not None, timeout=30_000)
    qtbot.waitUntil(lambda: scores_ready(w), timeout=30_000)
    assert w.state.scores.signature.name == "EPI"
    assert list(w.state.scores.match.used) == ["EPCAM", "KRT8", "KRT18", "KRT19"]
    assert form.signature_edit.value == "EPCAM, KRT8, KRT18, KRT19"
    assert form.choose_signature("MACRO").name == "MACRO"
    with pytest.raises(Exception, match="No signature called 'NOPE'"):
        form.choose_signature("NOPE")
    # a one-signature file hides the chooser
    one = tmp_path / "one.gmt"
    one.write_text("EPI\tna\tEPCAM\tKRT8\n")
    form.load_signature(one)
    assert form.signature_choice.native.isHidden()
