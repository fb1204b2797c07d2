"""Signature from genes (Discover tab): chosen DE genes -> a signature scored at once and saved with provenance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from gui_helpers import multi_slide, open_de_dock, run_de, scores_ready
from napari_roiscore.analysis.differential import differential_expression
from napari_roiscore.analysis.pseudobulk_samples import roi_pseudobulk
from napari_roiscore.scoring.scorer import RoiScorer
from napari_roiscore.scoring.signature import load_signatures

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def four_slides():
    """Four synthetic patients' sections side by side in one spots table (obs 'slide'), and the separate slides."""
    return multi_slide(4, seed=11)


def _ctrl_click_volcano(qtbot, panel, gene: str) -> None:
    """A real Qt mouse press with Ctrl held on ``gene``'s volcano point."""
    from qtpy.QtCore import QPoint, Qt

    genes, x, y = panel._points
    i = list(genes).index(gene)
    panel.canvas.draw()
    px, py = panel.figure.axes[0].transData.transform((x[i], y[i]))
    ratio = panel.canvas.device_pixel_ratio
    pos = QPoint(int(round(px / ratio)), int(round((panel.figure.bbox.height - py) / ratio)))
    qtbot.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, pos)


def _lonely_gene(panel, exclude: list[str]) -> str:
    """A plotted gene at least 6 display pixels from every other point (a click cannot miss it)."""
    genes, x, y = panel._points
    xy = panel.figure.axes[0].transData.transform(np.column_stack([x, y]))
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e9
    ok = [g for g, near in zip(genes, d.min(axis=1)) if near > 6 and g not in exclude]
    assert ok, "no isolated volcano point to click"
    return str(ok[0])


def test_top_genes_become_a_scored_signature_saved_with_provenance(make_napari_viewer, qtbot, four_slides,
                                                                   tmp_path):
    combined, slides = four_slides
    viewer, widget = open_de_dock(make_napari_viewer, qtbot, combined)
    widget.form.signature_edit.value = "G0001, G0002, G0003"  # a typed signature scored first
    qtbot.waitUntil(lambda: widget.state.scores is not None and widget.state.scores.signature.up[0] == "G0001"
                    and scores_ready(widget), timeout=60_000)
    before = widget.last_table["score"].to_numpy().copy()
    panel = widget.de_panel
    run_de(qtbot, panel)  # the default: slides as units, read from the spots table's 'slide' column
    res = panel.result
    assert res is not None and not res.exploratory, panel.message.value
    assert res.units_per_group == {"tumour": 4, "stroma": 4} and res.design_label == "~ slide + group"
    assert "design ~ slide + group" in panel.message.value
    # the same numbers as the core on the four slides as separate tables
    direct = differential_expression(roi_pseudobulk(slides), "class", "tumour", "stroma", unit="slide")
    pd.testing.assert_frame_equal(res.table, direct.table)

    tool = panel.genes
    tool.top_n.value = 3
    tool.top_up_button.native.click()
    tool.top_down_button.native.click()
    up, down = res.top_genes(3, "up", alpha=0.05), res.top_genes(3, "down", alpha=0.05)
    assert len(up) == 3 and len(down) == 3
    order = list(res.table["gene"])
    assert tool.selected_genes() == sorted(up + down, key=order.index)
    tool.top_n.value = 2  # Top N again replaces that side only
    tool.top_up_button.native.click()
    assert tool.selected_genes() == sorted(up[:2] + down, key=order.index)
    # Ctrl-click on a volcano point adds its gene to the selection (and colours the spots by it)
    extra = _lonely_gene(panel, up + down)
    _ctrl_click_volcano(qtbot, panel, extra)
    assert widget.spot_colours.gene_edit.value == extra
    chosen = sorted(up[:2] + down + [extra], key=order.index)
    assert tool.selected_genes() == chosen
    # a Ctrl-click on a table row adds its gene too (Qt's own multi-selection); a second one removes it
    from qtpy.QtCore import Qt

    row = next(i for i, g in enumerate(panel.shown_genes()) if g not in chosen)
    panel.table.scrollTo(panel.table.model().index(row, 1))
    rect = panel.table.visualRect(panel.table.model().index(row, 1))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     rect.center())
    assert tool.selected_genes() == sorted(chosen + [panel.shown_genes()[row]], key=order.index)
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     rect.center())
    assert tool.selected_genes() == chosen

    tool.make_button.native.click()
    sig = tool.signature
    lfc = res.table.set_index("gene")["log2FC"]
    assert list(sig.up) == [g for g in chosen if lfc[g] > 0] and list(sig.down) == [g for g in chosen if lfc[g] < 0]
    form = widget.form
    assert form.signature_edit.value == f"{', '.join(sig.up)}; down: {', '.join(sig.down)}"
    qtbot.waitUntil(lambda: widget.state.scores is not None and widget.state.scores.signature == sig
                    and scores_ready(widget), timeout=60_000)
    assert "from the Discover tab: tumour_vs_stroma" in form.signature_note.value
    after = widget.last_table["score"].to_numpy()
    assert not np.allclose(before, after)
    ref = RoiScorer(combined.spots)
    expected = ref.table(widget.current_rois(), ref.spot_scores(sig, "mean_z"))
    np.testing.assert_allclose(after, expected["score"], atol=1e-12)
    assert form.signature() is sig  # the field's text still means this signature

    # saved as YAML and GMT: the same genes and the provenance read back
    path = tool.save_signature(tmp_path / "sig.yaml")
    (back,) = load_signatures(path)
    assert (back.name, back.up, back.down) == (sig.name, sig.up, sig.down)
    prov = yaml.safe_load(path.read_text())["provenance"]
    assert prov["comparison"] == "class: tumour vs stroma" and prov["design"] == "~ slide + group"
    assert prov["independent_unit"] == "slide" and prov["units_per_group"] == {"tumour": 4, "stroma": 4}
    assert sorted(prov["rois"]) == sorted(f"{r.name.split()[0]}-slide/{r.name}" for r in combined.rois)
    assert prov["date"] and prov["software"]["pydeseq2"] and prov["software"]["napari-roiscore"]
    assert prov["exploratory"] is False and "Wald" in prov["test"]
    (gmt,) = load_signatures(tool.save_signature(tmp_path / "sig.gmt"))
    assert (gmt.name, gmt.up, gmt.down) == (sig.name, sig.up, sig.down)
    for words in ("class: tumour vs stroma", "design ~ slide + group", "pydeseq2", prov["date"], "Research use only",
                  "Discover tab", f"ROIs {prov['rois'][0]}"):
        assert words in gmt.description, words


def test_make_without_genes_says_what_to_do(make_napari_viewer, qtbot, four_slides):
    from napari.utils.notifications import notification_manager

    viewer, widget = open_de_dock(make_napari_viewer, qtbot, four_slides[0])
    tool = widget.de_panel.genes
    assert not tool.make_button.enabled and not tool.top_up_button.enabled  # nothing to choose from yet
    tool._act(tool.make_signature)
    assert any("no differential expression" in str(n.message).lower() for n in notification_manager.records)
    run_de(qtbot, widget.de_panel)
    tool._act(tool.make_signature)
    assert any("No gene is selected" in str(n.message) for n in notification_manager.records)
    assert tool.signature is None and widget.form.loaded_signature is None
    # a typed '; down:' part is a down set too (as the field shows an offered signature)
    widget.form.signature_edit.value = "G0001, G0002; down: G0003"
    qtbot.waitUntil(lambda: widget.state.scores is not None
                    and widget.state.scores.signature.down == ("G0003",), timeout=30_000)
    assert widget.state.scores.signature.up == ("G0001", "G0002")


@pytest.mark.slow
def test_real_geomx_in_the_dock_uses_its_slides_as_units(make_napari_viewer, qtbot):
    """The GeoMx example (88 AOIs on 4 slides, one spots layer): the Discover tab reads 'slide name', so the
    dock's DE equals the core's on the AOIs with slides as units, and its top genes score at once."""
    from real_data import real_data

    from napari_roiscore._layer_data import spots_layer
    from napari_roiscore.analysis.pseudobulk_samples import aoi_samples
    from napari_roiscore.readers.geomx import read_geomx_ngs

    spots = read_geomx_ngs(real_data("geomx_ngs_example"))
    viewer = make_napari_viewer()
    data, kw, _ = spots_layer(spots)
    viewer.add_points(data, **kw)
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: widget.state.scorer is not None, timeout=60_000)
    widget.rois_tab.annotation_combo.value = "cell_line"
    widget.rois_tab.from_annotation_button.clicked.emit()
    qtbot.waitUntil(lambda: len(widget.state.rois) == spots.n_spots, timeout=30_000)
    panel = widget.de_panel
    panel.group_a.value, panel.group_b.value = "hs578t", "hel"
    run_de(qtbot, panel)
    res = panel.result
    assert res is not None, panel.message.value
    assert res.units_per_group == {"hs578t": 4, "hel": 4} and res.design_label == "~ slide + group"
    core = differential_expression(aoi_samples(spots), "cell_line", "HS578T", "HEL", unit="slide")
    pd.testing.assert_frame_equal(res.table, core.table)
    # a gene beyond the 200 rows shown gets a row when picked (e.g. from the volcano), and joins the selection
    far = str(res.table["gene"].iloc[-1])
    assert far not in panel.shown_genes() and panel.table.rowCount() == 200
    panel.show_gene(far, add=True)
    assert panel.table.rowCount() == 201 and panel.genes.selected_genes()[-1] == far
    panel.genes.top_up_button.native.click()  # replaces the up side; 'far' stays only if it is down
    assert (far in panel.genes.selected_genes()) == (res.table.set_index("gene").loc[far, "log2FC"] < 0)
    panel.genes.clear_button.native.click()
    panel.genes.top_up_button.native.click()
    panel.genes.make_button.native.click()
    sig = panel.genes.signature
    assert "FN1" in sig.up and sig.up == tuple(core.top_genes(5, "up", alpha=0.05))
    qtbot.waitUntil(lambda: widget.state.scores is not None and widget.state.scores.signature == sig, timeout=60_000)
