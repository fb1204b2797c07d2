"""The pathologist's workflow in the ROI scores widget (real viewer, real files)."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest
from shapely.geometry import shape

from napari_roiscore.rois.classes import class_colour

from gui_helpers import scores_ready

pytestmark = pytest.mark.gui


def test_user_class_shortcut_and_colour(sample_viewer, qtbot):
    from app_model.types import KeyBinding

    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    w.rois_tab.new_class_edit.value = "Necrosis"
    w.rois_tab.add_class_button.clicked.emit()
    assert w.state.classes == ["tumour", "stroma", "necrosis"]
    assert w.form.class_combo.value == "necrosis"
    assert "3: necrosis" in w.rois_tab.shortcut_note.value
    # press "3" on the ROI layer with the stroma ROI selected
    layer.selected_data = {1}
    layer.keymap[KeyBinding.from_str("3")](layer)
    qtbot.waitUntil(lambda: w.last_table["class"].tolist() == ["tumour", "necrosis"], timeout=5000)
    np.testing.assert_allclose(layer.edge_color[1][:3], class_colour("necrosis"))
    # new shapes get the chosen class and the next free name
    layer.add_polygons([np.array([[1500, 1500], [1500, 1700], [1700, 1700], [1700, 1500]], float)])
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5000)
    assert w.last_table.iloc[2][["roi", "class"]].tolist() == ["001", "necrosis"]


def test_rename_roi_in_table(sample_viewer, qtbot):
    viewer, w = sample_viewer
    w.scores_tab.table.item(0, 0).setText("tumour-A")
    qtbot.waitUntil(lambda: w.last_table["roi"].tolist()[0] == "tumour-A", timeout=5000)
    assert viewer.layers["ROIs"].features["name"].tolist()[0] == "tumour-A"
    # a duplicate name is refused and the old one kept
    w.scores_tab.table.item(1, 0).setText("tumour-A")
    qtbot.waitUntil(lambda: w.last_table["roi"].tolist() == ["tumour-A", "007"], timeout=5000)


def test_comparison_panel_with_ci_p_value_and_research_only_call(sample_viewer, qtbot):
    _, w = sample_viewer
    qtbot.waitUntil(lambda: w.state.comparison is not None, timeout=5000)
    text = w.compare_tab.compare_text.value
    assert "tumour − stroma" in text and "CI" in text and "p =" in text
    c = w.state.comparison
    assert c.difference < 0 and c.ci_low < c.difference < c.ci_high and c.p_value < 0.05
    assert w.compare_tab.compare_table.rowCount() >= 2
    w.compare_tab.responder_threshold.value = -2.0
    w.compare_tab.responder_check.value = True
    qtbot.waitUntil(lambda: "research use only" in w.compare_tab.compare_text.value, timeout=5000)


def test_cd68_restricted_scores_differ_for_a_reason(sample_viewer, qtbot):
    viewer, w = sample_viewer
    before = w.last_table.set_index("roi")
    assert w.markers_tab.marker_channel_combo.value.name == "CD68 (macrophages)"
    w.markers_tab.compute_otsu()
    assert w.markers_tab.marker_threshold.value > 0
    w.markers_tab.min_positive.value = 10
    w.markers_tab.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None and scores_ready(w), timeout=30_000)
    after = w.last_table.set_index("roi")
    # the tumour ROI keeps only its macrophage-rich spots: fewer spots, higher macrophage score
    assert after.loc["004", "spots"] < before.loc["004", "spots"]
    assert after.loc["004", "score"] > before.loc["004", "score"]
    frac = w.state.marker_fractions
    kept = w.state.spot_mask
    assert frac[kept].min() >= 0.10
    w.markers_tab.show_marker_mask()
    assert any(ly.name.startswith("CD68+ mask") for ly in viewer.layers)
    w.markers_tab.restrict_check.value = False
    qtbot.waitUntil(lambda: w.state.spot_mask is None, timeout=5000)
    assert w.last_table.set_index("roi").loc["004", "spots"] == before.loc["004", "spots"]


def test_propose_compartments_adds_editable_rois(sample_viewer, qtbot):
    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    n0 = len(layer.data)
    w.rois_tab.propose_compartments()
    qtbot.waitUntil(lambda: len(layer.data) > n0 + 2, timeout=60_000)
    qtbot.waitUntil(lambda: len(w.last_table) > 2, timeout=5000)
    t = w.last_table
    assert {"tumour", "stroma"} <= set(t["class"])
    assert any(str(n).startswith("T") for n in t["roi"]) and any(str(n).startswith("S") for n in t["roi"])
    # stroma proposals carry holes (tumour nests cut out), kept in the layer features
    assert any(h for h in layer.features["holes"])


QUPATH_EXPORT = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "a1b2c3",
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[2600, 2600], [3200, 2600], [3200, 3200], [2600, 3200], [2600, 2600]],
                    [[2800, 2800], [3000, 2800], [3000, 3000], [2800, 3000], [2800, 2800]],
                ],
            },
            "properties": {"objectType": "annotation", "name": "ring",
                           "classification": {"name": "Stroma", "color": [150, 200, 150]}},
        },
        {
            "type": "Feature",
            "id": "d4e5f6",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[1000, 1000], [1300, 1000], [1300, 1300], [1000, 1000]]],
                    [[[1400, 1400], [1700, 1400], [1700, 1700], [1400, 1400]]],
                ],
            },
            "properties": {"objectType": "annotation",
                           "classification": {"name": "Tumor", "color": [200, 0, 0]}},
        },
    ],
}


def test_qupath_geojson_round_trip(sample_viewer, qtbot, tmp_path):
    _, w = sample_viewer
    src = tmp_path / "qupath_export.geojson"
    src.write_text(json.dumps(QUPATH_EXPORT))
    assert w.rois_tab.import_geojson(src) == 2
    qtbot.waitUntil(lambda: len(w.last_table) == 4, timeout=5000)
    t = w.last_table.set_index("roi")
    assert t.loc["ring", "class"] == "stroma"
    assert t.loc["d4e5f6", "class"] == "tumour"  # QuPath "Tumor" -> our tumour; the id names it
    out = w.rois_tab.export_geojson(tmp_path / "out.geojson")
    feats = {f["properties"]["name"]: f for f in json.loads(out.read_text())["features"]}
    assert set(feats) == {"004", "007", "ring", "d4e5f6"}
    for f in QUPATH_EXPORT["features"]:
        name = f["properties"].get("name", f["id"])
        back = feats[name]
        assert back["properties"]["objectType"] == "annotation"
        assert back["geometry"]["type"] == f["geometry"]["type"]
        a, b = shape(f["geometry"]), shape(back["geometry"])
        assert a.symmetric_difference(b).area < 1e-6 * a.area
    assert len(feats["ring"]["geometry"]["coordinates"]) == 2  # the hole survived


def test_autosave_and_restore_in_a_new_viewer(make_napari_viewer, sample_viewer, qtbot):
    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    w.form.class_combo.value = "stroma"
    layer.add_polygons([np.array([[2000, 2000], [2000, 2300], [2300, 2300]], float)])
    qtbot.waitUntil(lambda: len(w.last_table) == 3, timeout=5000)
    path = w.autosave.save_now()
    assert path is not None and path.is_file()
    expected = {(r.name, r.roi_class, round(r.geometry.area, 3)) for r in w.current_rois()}
    viewer.close()

    v2 = make_napari_viewer()
    v2.open_sample("napari-roiscore", "multiplex_visium")
    _, w2 = v2.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(w2), timeout=60_000)
    assert w2.autosave.restore_button.visible or not w2.autosave.restore_button.native.isHidden()
    w2.autosave.restore()
    qtbot.waitUntil(lambda: len(w2.last_table) == 3, timeout=5000)
    got = {(r.name, r.roi_class, round(r.geometry.area, 3)) for r in w2.current_rois()}
    assert got == expected


def test_exports_csv_h5ad_and_report(sample_viewer, qtbot, tmp_path):
    from PIL import Image

    _, w = sample_viewer
    qtbot.waitUntil(lambda: w.scores_tab.plot.n_draws > 0, timeout=5000)
    h5 = w.export_tab.save_h5ad(tmp_path / "spots_rois.h5ad")
    a = ad.read_h5ad(h5)
    members = w.state.scorer.members(w.current_rois()[0])
    assert (a.obs["roi"].astype(str).to_numpy()[members] == "004").all()
    assert a.obs["in_roi_004"].sum() == len(members)
    np.testing.assert_allclose(a.obs["roiscore_mean_z"].to_numpy(), w.state.scores.values)
    png, pdf = w.export_tab.write_report(tmp_path / "report")
    assert pdf.read_bytes()[:4] == b"%PDF"
    img = np.asarray(Image.open(png))
    assert img.shape[0] > 800 and img.shape[1] > 1200
    assert len(np.unique(img.reshape(-1, img.shape[-1])[::97], axis=0)) > 50  # not blank


def test_every_method_is_offered_and_matches_the_core(sample_viewer, qtbot):
    from napari_roiscore._qt.roi_scores import METHOD_CHOICES, parse_method
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.signature import EXAMPLE_PANEL

    viewer, w = sample_viewer
    spots = viewer.layers["spots"].metadata["roiscore_spots"]
    reference = RoiScorer(spots)
    rois = w.current_rois()
    offered = {parse_method(v)[0] for _, v in METHOD_CHOICES}
    assert offered == {"mean_z", "scanpy", "ucell", "singscore", "pseudobulk"}
    seen = {}
    for _, choice in METHOD_CHOICES:
        method, params = parse_method(choice)
        w.form.method_combo.value = choice
        qtbot.waitUntil(lambda m=method, p=params: w.state.scores is not None and w.state.scores.method == m
                        and all(w.state.scores.params.get(k) == v for k, v in p.items()) and scores_ready(w),
                        timeout=60_000)
        expected = reference.table(rois, reference.spot_scores(EXAMPLE_PANEL, method, **params))
        got = w.last_table
        np.testing.assert_allclose(got["score"].to_numpy(float), expected["score"].to_numpy(float), atol=1e-12)
        assert got["status"].tolist() == expected["status"].tolist()
        seen[choice] = got["score"].tolist()
    # pseudobulk z-scores across only two ROIs are necessarily -1/sqrt(2), +1/sqrt(2)
    for choice in ("pseudobulk:norm=cpm", "pseudobulk:norm=q3"):
        np.testing.assert_allclose(seen.pop(choice), [-2**-0.5, 2**-0.5])
    # the other methods really differ (each is its own computation)
    assert len({tuple(np.round(v, 6)) for v in seen.values()}) == len(seen)
    # and every one ranks the macrophage-rich stroma above the tumour nest
    for choice, (tumour, stroma) in seen.items():
        assert stroma > tumour, choice


def test_load_signature_file_with_down_set_and_weights(sample_viewer, qtbot, tmp_path):
    from napari_roiscore.scoring.scorer import RoiScorer
    from napari_roiscore.scoring.signature import load_signatures

    viewer, w = sample_viewer
    f = tmp_path / "sig.yaml"
    f.write_text("name: mac vs epi\nup: [Cd68, CD163]\ndown: [EPCAM]\nweights: {CD68: 2.0}\n")
    sig = w.form.load_signature(f)
    assert sig.down == ("EPCAM",)
    qtbot.waitUntil(lambda: w.state.scores is not None and w.state.scores.signature == sig and scores_ready(w), timeout=20_000)
    assert "from file: mac vs epi" in w.form.signature_note.value and "down: EPCAM" in w.form.signature_note.value
    ref = RoiScorer(viewer.layers["spots"].metadata["roiscore_spots"])
    expected = ref.table(w.current_rois(), ref.spot_scores(load_signatures(f)[0], "mean_z"))
    np.testing.assert_allclose(w.last_table["score"], expected["score"], atol=1e-12)
    # typing other genes switches to a custom signature
    w.form.signature_edit.value = "CD68"
    qtbot.waitUntil(lambda: w.state.scores is not None and w.state.scores.signature.up == ("CD68",), timeout=20_000)
    assert w.form.signature_note.value == "custom signature"


def test_session_saved_by_widget_reopens_with_identical_numbers_in_widget_and_cli(
        sample_viewer, make_napari_viewer, qtbot, tmp_path):
    import pandas as pd

    from napari_roiscore.cli import main as cli_main
    from napari_roiscore.session import same_numbers

    viewer, w = sample_viewer
    layer = viewer.layers["ROIs"]
    layer.add_polygons([np.array([[1500, 2500], [1500, 2900], [1900, 2900], [1900, 2500]], float)])
    w.form.method_combo.value = "scanpy"
    w.markers_tab.compute_otsu()
    w.markers_tab.restrict_check.value = True
    qtbot.waitUntil(lambda: w.state.spot_mask is not None and w.state.scores is not None
                    and w.state.scores.method == "scanpy" and len(w.last_table) == 3 and scores_ready(w), timeout=60_000)
    saved = w.last_table.copy()
    path = w.export_tab.save_session(tmp_path / "study.roiscore.json")

    v2 = make_napari_viewer()
    _, w2 = v2.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    session = w2.export_tab.open_session(path)
    qtbot.waitUntil(lambda: w2.state.spot_mask is not None and w2.state.scores is not None
                    and w2.state.scores.method == "scanpy" and len(w2.last_table) == 3 and scores_ready(w2), timeout=60_000)
    assert same_numbers(w2.last_table, saved)
    assert same_numbers(session.results, saved)
    assert {"DAPI (nuclei)", "spots", "ROIs"} <= {ly.name for ly in v2.layers}

    out = tmp_path / "cli.csv"
    assert cli_main(["score", "--session", str(path), "--out", str(out), "-q"]) == 0
    cli = pd.read_csv(out, dtype={"roi": str}, keep_default_na=False, na_values=[""],
                      float_precision="round_trip")
    assert same_numbers(cli, saved)
