"""The Discover tab: differential expression between ROI classes in the dock (real viewer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gui_helpers import PLANTED, open_de_dock, run_de
from gui_helpers import planted_slide as make_planted_slide
from napari_roiscore.analysis.differential import differential_expression
from napari_roiscore.analysis.pseudobulk_samples import SlideRois, roi_pseudobulk
from napari_roiscore.errors import RoiScoreError

@pytest.fixture(scope="module")
def planted_slide() -> SlideRois:
    """One slide, 3 tumour and 3 stroma ROIs; tumour spots carry 30x (+200) the counts of three genes."""
    return make_planted_slide()


def test_de_fills_the_table_with_the_planted_genes(make_napari_viewer, qtbot, planted_slide):
    viewer, widget = open_de_dock(make_napari_viewer, qtbot, planted_slide)
    panel = widget.de_panel
    assert (panel.group_a.value, panel.group_b.value) == ("tumour", "stroma")
    panel.unit_combo.value = "roi"  # ROIs of one slide as units: only as the user's choice
    run_de(qtbot, panel)
    assert panel.refusal == "" and panel.result is not None, panel.message.value
    shown = panel.shown_genes()
    assert set(shown[:3]) == set(PLANTED)
    assert panel.table.rowCount() == min(200, len(panel.result.table))
    assert "Research use only" in panel.message.value and panel.export_button.enabled
    # the numbers equal the core run directly on the same ROIs
    direct = differential_expression(roi_pseudobulk([planted_slide]), "class", "tumour", "stroma", unit=None)
    pd.testing.assert_frame_equal(panel.result.table, direct.table)
    first = direct.table.iloc[0]
    assert panel.table.item(0, 0).text() == first["gene"]
    assert float(panel.table.item(0, 1).text()) == pytest.approx(first["log2FC"], abs=1e-3)
    assert float(panel.table.item(0, 3).text()) == pytest.approx(first["adjusted_p"], rel=1e-2)
    assert panel.figure.axes and "tumour vs stroma" in panel.figure.axes[0].get_title()
    # editing the ROIs marks the result stale (it was computed on the earlier ROIs)
    assert not panel.stale
    viewer.layers["ROIs"].selected_data = {5}
    viewer.layers["ROIs"].remove_selected()
    qtbot.waitUntil(lambda: panel.stale, timeout=10_000)
    assert "run it again" in panel.message.value
    # sorting by log2FC puts the most down-regulated gene first
    panel.table.sortItems(1)
    assert panel.table.item(0, 0).text() == panel.result.table.head(200).sort_values("log2FC")["gene"].iloc[0]


def test_clicking_a_gene_colours_the_spots_by_it(make_napari_viewer, qtbot, planted_slide, tmp_path):
    viewer, widget = open_de_dock(make_napari_viewer, qtbot, planted_slide)
    panel = widget.de_panel
    panel.unit_combo.value = "roi"
    run_de(qtbot, panel)
    row = panel.shown_genes().index(PLANTED[1])
    panel.table.cellClicked.emit(row, 0)
    colours = widget.spot_colours
    assert colours.by_combo.value == "gene" and colours.gene_edit.value == PLANTED[1]
    assert f"{PLANTED[1]} counts" in widget.state.spots_layer.features
    assert colours.scale is not None and PLANTED[1] in colours.scale.label
    # a click on a volcano point (a real matplotlib event at the gene's pixel) colours by that gene
    from matplotlib.backend_bases import MouseEvent

    genes, x, y = panel._points
    i = list(genes).index(PLANTED[2])
    px, py = panel.figure.axes[0].transData.transform((x[i], y[i]))
    event = MouseEvent("button_press_event", panel.canvas, px, py, button=1)
    panel.canvas.callbacks.process("button_press_event", event)
    assert colours.gene_edit.value == PLANTED[2]
    assert panel.table.selectedItems()[0].text() == PLANTED[2]
    # export through the atomic writer; the output guard refuses to replace an input
    out = panel.export_csv(tmp_path / "de.csv")
    back = pd.read_csv(out, comment="#")
    assert list(back["gene"]) == list(panel.result.table["gene"])
    assert "Research use only" in out.read_text().splitlines()[3]
    from napari_roiscore.outputs import protect_input

    data = tmp_path / "spots.csv"
    data.write_text("barcode\n")
    protect_input(data)
    with pytest.raises(RoiScoreError):
        panel.export_csv(data)
    assert data.read_text() == "barcode\n"


def test_sample_with_two_rois_on_one_slide_is_refused(sample_viewer, qtbot):
    viewer, widget = sample_viewer
    panel = widget.de_panel
    run_de(qtbot, panel)
    assert panel.result is None and "not independent replicates" in panel.refusal
    assert "refused" in panel.message.value and panel.table.rowCount() == 0
    from napari.utils.notifications import notification_manager

    assert any("differential expression refused" in str(n.message) for n in notification_manager.records)
    panel.unit_combo.value = "roi"  # one ROI per class is still too few
    run_de(qtbot, panel)
    assert "each group needs at least 3" in panel.refusal
    # nothing to export: said, not crashed; an export never replaces a data file read as input
    with pytest.raises(RoiScoreError, match="no differential expression"):
        panel.export_csv("de.csv")


def test_marker_restriction_sums_only_the_restricted_spots(make_napari_viewer, qtbot, planted_slide):
    viewer, widget = open_de_dock(make_napari_viewer, qtbot, planted_slide)
    mask = np.zeros(planted_slide.spots.n_spots, bool)
    mask[::2] = True
    widget.state.spot_mask = mask  # as the Markers tab sets it
    panel = widget.de_panel
    panel.unit_combo.value = "roi"
    run_de(qtbot, panel)
    restricted = SlideRois(planted_slide.slide, planted_slide.spots, planted_slide.rois, spot_mask=mask)
    direct = differential_expression(roi_pseudobulk([restricted]), "class", "tumour", "stroma", unit=None)
    pd.testing.assert_frame_equal(panel.result.table, direct.table)
    plain = differential_expression(roi_pseudobulk([planted_slide]), "class", "tumour", "stroma", unit=None)
    assert not np.allclose(panel.result.table["base_mean"].sum(), plain.table["base_mean"].sum())


def test_one_slide_is_refused_by_default_and_exploratory_is_labelled(make_napari_viewer, qtbot, planted_slide,
                                                                     tmp_path):
    viewer, widget = open_de_dock(make_napari_viewer, qtbot, planted_slide)
    panel = widget.de_panel
    assert panel.unit_combo.value == "slide" and not panel.descriptive_check.value
    run_de(qtbot, panel)
    assert panel.result is None and "All 6 compared ROIs lie on one slide" in panel.refusal
    assert "'each ROI'" in panel.message.value and "'exploratory'" in panel.message.value
    panel.descriptive_check.value = True  # the user's explicit choice
    run_de(qtbot, panel)
    res = panel.result
    assert res is not None and res.exploratory and res.note.startswith("Exploratory")
    assert panel.message.value.startswith("EXPLORATORY") and res.note in panel.message.value
    assert panel.figure.axes[0].get_title().startswith("EXPLORATORY")
    assert set(panel.shown_genes()[:3]) == set(PLANTED)  # the fold changes still describe these ROIs
    csv = panel.export_csv(tmp_path / "de.csv").read_text().splitlines()
    assert any(line.startswith("# EXPLORATORY") for line in csv) and f"# note: {res.note}" in csv
