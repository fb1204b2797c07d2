"""Regressions found by QA: the ROI scores widget driven like a user would, in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import (
    mouse_double_click_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)

from gui_helpers import scores_ready

pytestmark = pytest.mark.gui


def _click(layer, kind, pos):
    pos = tuple(float(p) for p in pos)
    event = read_only_mouse_event(type=kind, position=pos, pos=np.asarray(pos))
    {"mouse_press": mouse_press_callbacks, "mouse_release": mouse_release_callbacks,
     "mouse_double_click": mouse_double_click_callbacks}[kind](layer, event)


def test_abandoned_polygon_leaves_no_stale_class_for_next_roi(sample_viewer, qtbot):
    """A polygon finished after two clicks is discarded by napari; the next ROI gets the chosen class."""
    viewer, w = sample_viewer
    rois = viewer.layers["ROIs"]
    rois.mode = "add_polygon"
    for p in ((3000, 1000), (3000, 1200)):
        _click(rois, "mouse_press", p)
        _click(rois, "mouse_release", p)
    _click(rois, "mouse_double_click", (3000, 1200))
    qtbot.wait(100)
    assert len(rois.data) == 2
    assert len(rois.features) == 2
    w.form.class_combo.value = "stroma"
    rois.mode = "pan_zoom"
    rois.add_rectangles(np.array([[1500, 1500], [1900, 2000]]))
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5_000)
    assert list(rois.features["class"]) == ["tumour", "stroma", "stroma"]
    assert list(w.last_table["class"]) == ["tumour", "stroma", "stroma"]
    assert len(rois.edge_color) == 3
    np.testing.assert_allclose(rois.edge_color[2], rois.edge_color[1])


def test_pasted_roi_is_a_new_roi_with_a_unique_name(sample_viewer, qtbot):
    """Ctrl+C / Ctrl+V of ROI 004 makes a new ROI, not a second part of 004."""
    viewer, w = sample_viewer
    rois = viewer.layers["ROIs"]
    rois.selected_data = {0}
    rois._copy_data()
    rois._paste_data()
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5_000)
    names = list(rois.features["name"])
    assert names[:2] == ["004", "007"] and names[2] not in ("004", "007")
    assert list(rois.features["class"]) == ["tumour", "stroma", "tumour"]
    t = w.last_table
    assert t["spots"].iloc[0] == t["spots"].iloc[2] == 25  # the original keeps its own spots
    # a pasted multi-part ROI (two shapes sharing a name) stays one ROI, under a new name
    feats = rois.features.copy()
    feats.loc[1, "name"] = "multi"
    feats.loc[2, "name"] = "multi"
    feats.loc[2, "class"] = "stroma"  # one ROI in two parts (parts of other classes stay apart)
    rois.features = feats
    w.live.update_table()
    rois.selected_data = {1, 2}
    rois._copy_data()
    rois._paste_data()
    qtbot.waitUntil(lambda: len(rois.data) == 5 and len(w.last_table) == 3, timeout=5_000)
    new = list(rois.features["name"])[3:]
    assert new[0] == new[1] and new[0] not in ("004", "multi")


def test_signature_problem_clears_scores_and_keeps_the_canvas_visible(sample_viewer, qtbot):
    """An empty or unmatched signature: no stale scores, no eternal 'computing…', no dock over the canvas."""
    viewer, w = sample_viewer
    window = viewer.window._qt_window
    window.resize(1600, 1000)
    qtbot.wait(50)
    canvas = viewer.window._qt_viewer.canvas.native
    w.form.signature_edit.value = ""
    w.live.rescore_spots()
    assert w.last_table.empty
    assert w.scores_tab.table.item(0, 3).text() == "no score: see problem"
    assert "no genes" in w.form.status.value
    w.form.signature_edit.value = "FOO, BAR"
    w.live.rescore_spots()
    qtbot.waitUntil(lambda: w.form.status.value.startswith("problem"), timeout=10_000)
    qtbot.wait(100)
    assert w.scores_tab.table.item(0, 3).text() == "no score: see problem"
    assert w.scores_tab.table.item(0, 3).toolTip() == "no score: see problem"
    assert window.width() <= 1600
    assert canvas.width() > 300  # the long message wraps instead of widening the dock
    w.form.signature_edit.value = "CD68, CD163, STAB1, MRC1, MSR1"
    w.live.rescore_spots()
    qtbot.waitUntil(lambda: scores_ready(w), timeout=30_000)
    assert w.scores_tab.table.item(0, 3).text() == "-0.518"


def test_pseudobulk_median_is_not_shown_as_nan(sample_viewer, qtbot):
    viewer, w = sample_viewer
    w.form.method_combo.value = "pseudobulk:norm=cpm"
    qtbot.waitUntil(lambda: scores_ready(w) and w.state.scores.method == "pseudobulk", timeout=30_000)
    assert [w.scores_tab.table.item(i, 4).text() for i in range(2)] == ["—", "—"]
    assert w.scores_tab.table.item(0, 3).text() == f"{w.last_table['score'][0]:.3f}"


def test_otsu_restriction_is_labelled_otsu_and_a_typed_threshold_user(sample_viewer, qtbot):
    viewer, w = sample_viewer
    w.markers_tab.compute_otsu()
    w.markers_tab.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None, timeout=30_000)
    assert "Otsu" in w.state.marker_label and w.state.marker_settings["threshold_method"] == "otsu"
    w.markers_tab.marker_threshold.value = 200
    qtbot.waitUntil(lambda: "> 200" in w.state.marker_label, timeout=30_000)
    assert "user" in w.state.marker_label and w.state.marker_settings["threshold_method"] == "user"


def test_marker_mask_layer_keeps_the_scale_bar_in_micrometres(sample_viewer, qtbot):
    viewer, w = sample_viewer
    w.markers_tab.show_marker_mask()
    mask = viewer.layers["CD68+ mask"]
    assert mask.units == viewer.layers["CD68 (macrophages)"].units
    assert str(viewer.layers["spots"].units[0]) == "micrometer"
    assert len({tuple(str(u) for u in ly.units) for ly in viewer.layers}) == 1


def test_open_session_reapplies_marker_restriction_when_already_ticked(sample_viewer, qtbot, tmp_path):
    """Opening a restricted session while the box is already ticked kept unrestricted scores."""
    viewer, w = sample_viewer
    w.markers_tab.compute_otsu()
    w.markers_tab.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None, timeout=30_000)
    saved = w.last_table.copy()
    assert saved["spots"].tolist() == [10, 24]
    w.export_tab.save_session(tmp_path / "s.roiscore.json")
    w.export_tab.open_session(tmp_path / "s.roiscore.json")
    qtbot.waitUntil(lambda: scores_ready(w) and w.state.spot_mask is not None, timeout=60_000)
    assert w.form.spots_combo.value.name == "spots [1]"
    assert w.last_table["spots"].tolist() == [10, 24]
    np.testing.assert_allclose(w.last_table["score"], saved["score"])


def test_new_empty_shapes_layer_can_be_chosen_and_drawn_on(sample_viewer, qtbot):
    viewer, w = sample_viewer
    layer = viewer.add_shapes(name="my ROIs", scale=viewer.layers["spots"].scale)
    w.form.rois_combo.value = layer
    assert w.state.roi_layer is layer
    assert layer.feature_defaults["class"][0] == "tumour"
    layer.add_rectangles(np.array([[1500, 1500], [1900, 2000]]))
    qtbot.waitUntil(lambda: len(w.last_table) == 1, timeout=5_000)
    assert w.last_table["roi"].tolist() == ["001"] and w.last_table["class"].tolist() == ["tumour"]
    assert w.last_table["spots"].iloc[0] == 22


def test_removing_the_only_spots_layer_clears_the_scores(sample_viewer, qtbot):
    viewer, w = sample_viewer
    viewer.layers.remove("spots")
    qtbot.wait(50)
    assert w.state.scorer is None
    assert [w.scores_tab.table.item(i, 3).text() for i in range(w.scores_tab.table.rowCount())] == ["", ""]
    assert w.last_table.empty


def _visium_rois(path, spots_xy):
    """Two rectangles in full-resolution pixels (QuPath on the full-res H&E), as GeoJSON."""
    import json

    x, y = spots_xy[:, 0], spots_xy[:, 1]
    feats = []
    for name, cls, (qa, qb) in (("A", "tumour", (0.3, 0.5)), ("B", "stroma", (0.55, 0.8))):
        x0, x1 = np.quantile(x, [qa, qb])
        y0, y1 = np.quantile(y, [qa, qb])
        feats.append({"type": "Feature", "properties": {"name": name, "classification": {"name": cls}},
                      "geometry": {"type": "Polygon",
                                   "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_geojson_rois_overlay_visium_spots_and_score_as_the_cli(make_napari_viewer, qtbot, shared_data, tmp_path):
    """GeoJSON ROIs (full-res pixels) opened next to a Space Ranger folder held no spots in the widget."""
    from napari_roiscore.readers import read_spaceranger
    from napari_roiscore.rois.geojson import read_geojson
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.signature import EXAMPLE_PANEL

    visium = shared_data / "visium_cytassist_mouse"
    spots = read_spaceranger(visium)
    geojson = _visium_rois(tmp_path / "rois.geojson", spots.xy)
    viewer = make_napari_viewer()
    viewer.open(str(visium), plugin="napari-roiscore")
    viewer.open(str(geojson), plugin="napari-roiscore")
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w), timeout=60_000)
    layer, spots_layer = w.state.roi_layer, w.form.spots_combo.value
    assert layer.name == "rois"
    np.testing.assert_allclose(layer.scale, spots_layer.scale)
    assert layer.units == spots_layer.units == viewer.layers[0].units  # tissue image too: one unit
    scorer = RoiScorer(spots)
    expected = scorer.table(read_geojson(geojson), scorer.spot_scores(EXAMPLE_PANEL))
    assert expected["spots"].min() > 50
    assert w.last_table["spots"].tolist() == expected["spots"].tolist()
    np.testing.assert_allclose(w.last_table["score"], expected["score"])
    # importing the same file in the ROIs tab lands on the same spots
    w.rois_tab.import_geojson(geojson)
    assert w.last_table["spots"].tolist() == expected["spots"].tolist() * 2
    # ... and so does an import into a Shapes layer made with napari's "new shapes" button (scale 1)
    mine = viewer.add_shapes(name="mine")
    w.form.rois_combo.value = mine
    w.rois_tab.import_geojson(geojson)
    assert w.state.roi_layer is mine
    assert w.last_table["spots"].tolist() == expected["spots"].tolist()


def test_reopening_unchanged_rois_offers_nothing_and_autosave_keeps_going(make_napari_viewer, sample_viewer, qtbot):
    """The second opening of a slide offered a spurious restore and stopped autosaving."""
    import json

    viewer, w = sample_viewer
    path = w.autosave.save_now()
    viewer.close()
    v2 = make_napari_viewer()
    v2.open_sample("napari-roiscore", "multiplex_visium")
    _, w2 = v2.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w2), timeout=60_000)
    assert w2.autosave.offer is None and w2.autosave.restore_button.native.isHidden()
    v2.layers["ROIs"].add_rectangles(np.array([[1500, 1500], [1900, 2000]]))
    qtbot.waitUntil(lambda: len(w2.last_table) == 3, timeout=5_000)
    assert w2.autosave.save_now() == path
    assert len(json.loads(path.read_text())["features"]) == 3


def test_delete_all_rois_can_be_taken_back_also_after_a_crash(make_napari_viewer, sample_viewer, qtbot):
    """napari has no undo for shapes: deleted ROIs go to the autosave's bin and come back on request."""
    viewer, w = sample_viewer
    rois = viewer.layers["ROIs"]
    rois.add_rectangles(np.array([[1500, 1500], [1900, 2000]]))
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5_000)
    before = w.last_table[["roi", "class", "spots", "score"]].copy()
    w.autosave.save_now()
    rois.selected_data = set(range(len(rois.data)))
    rois.remove_selected()
    qtbot.waitUntil(lambda: len(rois.data) == 0, timeout=5_000)
    w.autosave.save_now()
    assert not w.autosave.restore_button.native.isHidden()
    assert w.autosave.restore_button.text == "Restore 3 deleted ROI(s)"
    viewer.close()  # as if napari had crashed: only the sidecar is left

    v2 = make_napari_viewer()
    v2.open_sample("napari-roiscore", "multiplex_visium")
    _, w2 = v2.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w2), timeout=60_000)
    assert w2.autosave.restore_button.text == "Restore 1 deleted ROI(s)"  # 004 and 007 are on screen again
    w2.autosave.restore()
    qtbot.waitUntil(lambda: len(w2.last_table) == 3, timeout=5_000)
    assert w2.autosave.restore_button.native.isHidden()
    got = w2.last_table[["roi", "class", "spots", "score"]]
    assert got.sort_values("roi").reset_index(drop=True).equals(before.sort_values("roi").reset_index(drop=True))


def test_removing_the_marker_channel_keeps_the_restriction_and_sessions_save(sample_viewer, qtbot, tmp_path):
    """Removing CD68 silently switched the restriction to DAPI; removing all images crashed Save session."""
    viewer, w = sample_viewer
    w.markers_tab.compute_otsu()
    w.markers_tab.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None, timeout=30_000)
    restricted = w.last_table[["spots", "score"]].copy()
    assert restricted["spots"].tolist() == [10, 24]
    viewer.layers.remove("CD68 (macrophages)")
    qtbot.wait(300)
    assert w.markers_tab.marker_channel_combo.value is None
    assert w.last_table[["spots", "score"]].equals(restricted)
    for name in ("DAPI (nuclei)", "panCK (cancer cells)", "CD31 (vessels)"):
        viewer.layers.remove(name)
    qtbot.wait(300)
    assert w.last_table[["spots", "score"]].equals(restricted)
    out = w.export_tab.save_session(tmp_path / "s.roiscore.json")
    import json

    saved = json.loads(out.read_text())
    assert saved["marker"]["channel"] == "CD68"


def test_compare_tab_and_report_do_not_keep_numbers_without_scores(sample_viewer, qtbot, tmp_path):
    from napari_roiscore.errors import RoiScoreError

    viewer, w = sample_viewer
    w.compare_tab.update_comparison()
    assert w.state.comparison is not None and w.compare_tab.compare_table.rowCount() == 2
    w.form.signature_edit.value = "FOO1, BAR2"
    w.live.rescore_spots()
    qtbot.waitUntil(lambda: w.form.status.value.startswith("problem"), timeout=10_000)
    qtbot.wait(400)
    assert w.state.comparison is None and w.compare_tab.compare_table.rowCount() == 0
    assert "−0.969" not in w.compare_tab.compare_text.value and "-0.969" not in w.compare_tab.compare_text.value
    with pytest.raises(RoiScoreError, match="no ROI scores"):
        w.export_tab.write_report(tmp_path / "report")
    viewer.layers.remove("spots")
    qtbot.wait(50)
    assert "no spots layer" in w.form.status.value


def test_table_edits_apply_while_scores_are_missing(sample_viewer, qtbot):
    """Renaming or reclassifying in the table while there were no scores was shown but dropped."""
    viewer, w = sample_viewer
    w.form.signature_edit.value = ""
    w.live.rescore_spots()
    assert w.last_table.empty
    w.scores_tab.table.item(0, 0).setText("tumour-A")
    w.scores_tab.table.item(1, 1).setText("necrosis")
    rois = viewer.layers["ROIs"]
    assert list(rois.features["name"]) == ["tumour-A", "007"]
    assert list(rois.features["class"]) == ["tumour", "necrosis"]
    w.form.signature_edit.value = "CD68, CD163, STAB1, MRC1, MSR1"
    w.live.rescore_spots()
    qtbot.waitUntil(lambda: scores_ready(w), timeout=30_000)
    assert w.last_table["roi"].tolist() == ["tumour-A", "007"]
    assert w.last_table["class"].tolist() == ["tumour", "necrosis"]


def test_compartments_without_spots_or_roi_layer_land_in_the_image_frame(sample_viewer, qtbot):
    """They went into a layer in pixel units at scale 1 (napari: 'Inconsistent units across layers')."""
    viewer, w = sample_viewer
    viewer.layers.remove("ROIs")
    viewer.layers.remove("spots")
    qtbot.wait(50)
    w.rois_tab.propose_compartments()
    qtbot.waitUntil(lambda: w.state.roi_layer is not None and len(w.state.roi_layer.data) > 0, timeout=60_000)
    image = viewer.layers["panCK (cancer cells)"]
    assert w.state.roi_layer.units == image.units
    np.testing.assert_allclose(w.state.roi_layer.scale, image.scale[-2:])


def test_restore_keeps_an_roi_drawn_after_the_offer_under_the_same_name(make_napari_viewer, sample_viewer, qtbot):
    """Restore removed every on-screen ROI sharing a name with an offered one, also one drawn after the offer."""
    viewer, w = sample_viewer
    viewer.layers["ROIs"].add_rectangles(np.array([[1500, 1500], [1900, 2000]]))
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5_000)
    w.autosave.save_now()
    viewer.close()
    v2 = make_napari_viewer()
    v2.open_sample("napari-roiscore", "multiplex_visium")
    _, w2 = v2.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w2) and w2.autosave.offer is not None, timeout=60_000)
    rois = v2.layers["ROIs"]
    rois.add_rectangles(np.array([[3000, 1000], [3300, 1400]]))  # gets the free name 001 as well
    qtbot.waitUntil(lambda: len(w2.last_table) == 3, timeout=5_000)
    assert list(rois.features["name"]) == ["004", "007", "001"]
    w2.autosave.restore()
    qtbot.waitUntil(lambda: len(w2.last_table) == 4, timeout=5_000)
    bounds = sorted(tuple(np.round(r.geometry.bounds)) for r in w2.current_rois())
    assert (1000.0, 3000.0, 1400.0, 3300.0) in bounds and (1500.0, 1500.0, 2000.0, 1900.0) in bounds
    assert len(set(rois.features["name"])) == 4


def test_roi_deleted_just_before_drawing_the_next_one_reaches_the_bin(sample_viewer, qtbot):
    """The next ROI reused the freed name before the debounced autosave ran: the deleted one was lost."""
    viewer, w = sample_viewer
    rois = viewer.layers["ROIs"]
    rois.add_rectangles(np.array([[1500, 1500], [1900, 2000]]))
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5_000)
    rois.selected_data = {2}
    rois.remove_selected()
    rois.add_rectangles(np.array([[3000, 1000], [3300, 1400]]))  # named 001 again, at once
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5_000)
    assert w.autosave.restore_button.text == "Restore 1 deleted ROI(s)"
    w.autosave.restore()
    qtbot.waitUntil(lambda: len(w.last_table) == 4, timeout=5_000)
    bounds = sorted(tuple(np.round(r.geometry.bounds)) for r in w.current_rois())
    assert (1500.0, 1500.0, 2000.0, 1900.0) in bounds and (1000.0, 3000.0, 1400.0, 3300.0) in bounds


def test_choosing_another_roi_layer_puts_nothing_in_the_bin(sample_viewer, qtbot):
    viewer, w = sample_viewer
    other = viewer.add_shapes(name="other ROIs", scale=viewer.layers["spots"].scale)
    w.form.rois_combo.value = other
    qtbot.wait(50)
    assert w.autosave.bin == [] and w.autosave.restore_button.native.isHidden()


def test_dock_opened_before_the_data_picks_channels_by_role_and_otsu(make_napari_viewer, qtbot):
    """With the dock first, both pickers stayed on DAPI (the first layer to arrive) and no Otsu was computed."""
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    qtbot.waitUntil(lambda: scores_ready(w), timeout=60_000)
    assert w.rois_tab.tumour_channel_combo.value.name == "panCK (cancer cells)"
    assert w.markers_tab.marker_channel_combo.value.name == "CD68 (macrophages)"
    assert w.markers_tab.marker_threshold.value > 0
    # a channel the user chose stays chosen when more layers arrive
    from napari_roiscore.spots.sample import SAMPLE_DIR

    w.markers_tab.marker_channel_combo.value = viewer.layers["CD31 (vessels)"]
    n_images = len(w.markers_tab.marker_channel_combo.choices)
    viewer.open(str(SAMPLE_DIR / "sample_slide.ome.tif"), plugin="napari-roiscore")  # 4 more channels
    assert len(w.markers_tab.marker_channel_combo.choices) > n_images
    assert w.markers_tab.marker_channel_combo.value.name == "CD31 (vessels)"


def test_channel_pickers_follow_a_role_change(sample_viewer, qtbot):
    """After Channel roles set DAPI to cancer cells, the pickers showed old names and kept panCK."""
    from napari_roiscore._qt.channels import set_channel_role

    viewer, w = sample_viewer
    set_channel_role(viewer.layers["panCK (cancer cells)"], "other")
    set_channel_role(viewer.layers["DAPI (nuclei)"], "cancer cells")
    names = [c.name for c in w.rois_tab.tumour_channel_combo.choices if c is not None]
    assert "DAPI (cancer cells)" in names and "panCK (other)" in names
    assert w.rois_tab.tumour_channel_combo.value.name == "DAPI (cancer cells)"


def test_role_change_renames_the_second_copy_of_a_channel(sample_viewer):
    """'DAPI (nuclei) [1]' kept '(nuclei)' after being made a macrophage channel."""
    from napari_roiscore.spots.sample import SAMPLE_DIR
    from napari_roiscore._qt.channels import set_channel_role

    viewer, _ = sample_viewer
    viewer.open(str(SAMPLE_DIR / "sample_slide.ome.tif"), plugin="napari-roiscore")
    second = viewer.layers["DAPI (nuclei) [1]"]
    set_channel_role(second, "macrophages")
    assert second.name == "DAPI (macrophages) [1]"
    assert viewer.layers["DAPI (nuclei)"].metadata["roiscore_role"] == "nuclei"
