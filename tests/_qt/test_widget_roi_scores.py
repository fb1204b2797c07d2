"""The ROI scores widget on the real sample, in a real napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from independent import inside, mean_z_scores, spots_xy
from napari_roiscore.rois.roi import CLASS_COLOURS
from napari_roiscore.scoring.signature import EXAMPLE_PANEL

from gui_helpers import scores_ready

pytestmark = pytest.mark.gui


def test_sample_opens_with_expected_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    names = [ly.name for ly in viewer.layers]
    assert names == ["DAPI (nuclei)", "panCK (cancer cells)", "CD31 (vessels)", "CD68 (macrophages)", "spots", "ROIs"]
    cmaps = [ly.colormap.name for ly in list(viewer.layers)[:4]]
    assert cmaps == ["blue", "cyan", "yellow", "magenta"]
    for ly in list(viewer.layers)[:4]:
        assert ly.blending == "additive"
        assert ly.multiscale and len(ly.data) >= 3
    spots = viewer.layers["spots"]
    assert np.allclose(spots.size, 55.0)  # 55 µm at 1 µm/px: the real diameter
    rois = viewer.layers["ROIs"]
    assert list(rois.features["class"]) == ["tumour", "stroma"]
    assert list(rois.features["name"]) == ["004", "007"]
    np.testing.assert_allclose(rois.edge_color[0][:3], CLASS_COLOURS["tumour"])
    np.testing.assert_allclose(rois.edge_color[1][:3], CLASS_COLOURS["stroma"])


def _expected(sample_paths, polygon_rc, genes=EXAMPLE_PANEL.up):
    ref = mean_z_scores(sample_paths["spots"], list(genes))
    m = inside(spots_xy(sample_paths["spots"]), np.asarray(polygon_rc)[:, ::-1])
    return int(m.sum()), float(ref[m].mean())


def test_widget_shows_two_scores_matching_reference(sample_viewer, sample_paths):
    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    t = w.last_table
    assert list(t["roi"]) == ["004", "007"] and list(t["class"]) == ["tumour", "stroma"]
    for i in range(2):
        n, score = _expected(sample_paths, layer.data[i])
        assert t["spots"][i] == n
        assert t["score"][i] == pytest.approx(score, abs=1e-9)
    # and what the user reads in the Qt table
    assert w.scores_tab.table.rowCount() == 2
    assert w.scores_tab.table.item(0, 3).text() == f"{t['score'][0]:.3f}"
    assert "example panel" in w.form.signature_note.value


def test_moving_tumour_roi_onto_stroma_updates_score(sample_viewer, sample_paths, qtbot):
    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    tumour, stroma = (np.array(d, copy=True) for d in layer.data)
    before = w.last_table["score"][0]
    shift = stroma.mean(axis=0) - tumour.mean(axis=0)
    moved = tumour + shift
    n, expected = _expected(sample_paths, moved)
    # as the mouse binding does while dragging: edit in place + refresh (events.set_data)
    layer.selected_data = {0}
    layer._data_view.shift(0, shift / 2)
    layer.refresh()
    n_half, expected_half = _expected(sample_paths, tumour + shift / 2)
    qtbot.waitUntil(lambda: w.last_table["score"][0] == pytest.approx(expected_half, abs=1e-9), timeout=5000)
    layer._data_view.shift(0, shift / 2)
    layer.refresh()
    layer.events.data(value=layer.data, action="changed", data_indices=(0,), vertex_indices=((),))
    qtbot.waitUntil(lambda: w.last_table["score"][0] == pytest.approx(expected, abs=1e-9), timeout=5000)
    assert w.last_table["spots"][0] == n
    assert w.last_table["class"][0] == "tumour"
    assert expected > before + 0.3  # stroma holds more macrophages than tumour nests


def test_dragging_in_steps_shows_each_new_position_at_once(sample_viewer, sample_paths, qtbot):
    """Every table shown after a drag step holds the shape where it is now, not where it was.

    napari announces an edit (``action="changing"``, ``set_data``) before it moves
    the shape; the throttled update used to fire on that first event and show
    the previous position until the throttle's next call.
    """
    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    tumour, stroma = (np.array(d, copy=True) for d in layer.data)
    shift = stroma.mean(axis=0) - tumour.mean(axis=0)
    shown = []  # (spots, score) of ROI 004 in each table the widget showed

    def record():
        t = w.last_table
        shown.append((int(t["spots"][0]), float(t["score"][0])) if not t.empty else (None, None))

    w.state.table_changed.connect(record)
    counts = []
    for k in range(1, 5):
        w.live.flush()
        w.live.on_roi_edit.flush(restart_timer=False)  # the step starts a new throttle window
        shown.clear()
        moved = tumour + shift * k / 4
        layer.data = [moved, stroma]  # one drag step
        n, expected = _expected(sample_paths, moved)
        qtbot.waitUntil(lambda: len(shown) > 0, timeout=5000)
        qtbot.wait(100)  # and the throttle's trailing call, if any
        assert [s for s, _ in shown] == [n] * len(shown)
        assert [v for _, v in shown] == pytest.approx([expected] * len(shown), abs=1e-9)
        assert w.scores_tab.table.item(0, 2).text() == str(n)
        counts.append(n)
    assert len(set(counts)) > 1  # the steps did change what the ROI holds
    assert w.last_table["roi"][0] == "004" and w.last_table["class"][0] == "tumour"


def test_missing_genes_are_reported_and_present_ones_scored(sample_viewer, sample_paths, qtbot):
    viewer, w = sample_viewer
    w.form.signature_edit.value = "CD68, NOT_A_GENE, cd163"
    qtbot.waitUntil(lambda: "missing" in w.form.status.value and scores_ready(w), timeout=10_000)
    assert "NOT_A_GENE" in w.form.status.value
    assert "custom signature" in w.form.signature_note.value
    n, expected = _expected(sample_paths, viewer.layers["ROIs"].data[1], genes=("CD68", "CD163"))
    qtbot.waitUntil(lambda: w.last_table["score"][1] == pytest.approx(expected, abs=1e-9), timeout=10_000)


def test_no_match_signature_gives_message_not_crash(sample_viewer, qtbot):
    viewer, w = sample_viewer
    w.form.signature_edit.value = "FOO1, BAR2"
    qtbot.waitUntil(lambda: "problem" in w.form.status.value, timeout=10_000)
    assert "None of the signature genes" in w.form.status.value
    assert len(viewer.layers["ROIs"].data) == 2  # annotations untouched


def test_added_empty_and_degenerate_rois(sample_viewer, qtbot):
    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    w.form.class_combo.value = "stroma"
    # far outside the tissue: no spots
    layer.add_polygons([np.array([[5, 5], [5, 60], [60, 60], [60, 5]], float)])
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5000)
    row = w.last_table.iloc[2]
    assert row["status"] == "no spots" and row["spots"] == 0
    assert row["class"] == "stroma"
    assert w.scores_tab.table.item(2, 3).text() == "no spots"
    np.testing.assert_allclose(layer.edge_color[2][:3], CLASS_COLOURS["stroma"])
    # a line has no area
    layer.add_lines([np.array([[1000, 1000], [1500, 1500]], float)])
    qtbot.waitUntil(lambda: len(w.last_table) == 4, timeout=5000)
    assert "no area" in w.last_table.iloc[3]["status"]
    # deleting an ROI removes its row
    layer.selected_data = {0}
    layer.remove_selected()
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5000)
    assert list(w.last_table["roi"])[0] == "007"


def test_save_csv_has_same_scores(sample_viewer, tmp_path):
    import pandas as pd

    _, w = sample_viewer
    path = w.export_tab.save_csv(tmp_path / "scores.csv")
    df = pd.read_csv(path)
    np.testing.assert_allclose(df["score"], w.last_table["score"])
    assert set(df["genes_used"].iloc[0].split(";")) == set(EXAMPLE_PANEL.up)


def test_scores_follow_spots_moved_by_alignment(sample_viewer, sample_paths, qtbot):
    from napari_roiscore._qt.registration import AlignSpotsWidget
    from napari_roiscore.spots.table import SpotTable

    viewer, w = sample_viewer
    layer = viewer.layers["spots"]
    old = layer.metadata["roiscore_spots"]
    moved = old.adata.copy()
    moved.obsm["spatial"] = old.xy + np.array([300.0, -200.0])
    new = SpotTable(moved, old.diameter_px, old.shape, old.pixel_size_um, dict(old.provenance))
    AlignSpotsWidget._show_spots(layer, new)  # what "Align" does to the spots layer
    qtbot.waitUntil(lambda: w.state.scorer.spots is new and scores_ready(w) and w.state.scores is not None, timeout=20_000)
    ref = mean_z_scores(sample_paths["spots"], list(EXAMPLE_PANEL.up))
    roi = np.array(viewer.layers["ROIs"].data[0])[:, ::-1]
    m = inside(new.xy, roi)
    qtbot.waitUntil(lambda: w.last_table["spots"][0] == m.sum(), timeout=5000)
    assert w.last_table["score"][0] == pytest.approx(ref[m].mean(), abs=1e-9)
