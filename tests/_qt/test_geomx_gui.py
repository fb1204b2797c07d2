"""GeoMx without coordinates in the dock: a lasting notice, annotations on the layer, ROIs from a column."""

from __future__ import annotations


import pytest

from napari_roiscore._layer_data import spots_layer
from napari_roiscore.readers.geomx import read_geomx_ngs
from real_data import real_data

pytestmark = pytest.mark.gui



def test_geomx_layout_notice_annotations_and_rois_from_column(make_napari_viewer, qtbot):
    folder = real_data("geomx_ngs_example")
    spots = read_geomx_ngs(folder)
    viewer = make_napari_viewer()
    data, kw, _ = spots_layer(spots)
    viewer.add_points(data, **kw)
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: w.state.scores is not None or w.state.score_problem is not None, timeout=60_000)
    notice = w.form.layout_notice
    assert not notice.native.isHidden() and "positions are a layout, not tissue" in notice.value
    layer = viewer.layers[spots_layer(spots)[1]["name"]]
    assert "cell_line" in layer.features  # annotations show on hover
    tab = w.rois_tab
    assert "cell_line" in tab.annotation_combo.choices and tab.from_annotation_button.enabled
    tab.annotation_combo.value = "cell_line"
    tab.from_annotation_button.clicked.emit()
    qtbot.waitUntil(lambda: len(w.state.rois) == spots.n_spots, timeout=30_000)
    assert w.state.roi_layer.name == "AOIs by cell_line"
    classes = {str(v).lower() for v in spots.adata.obs["cell_line"].astype(str)}
    assert {r.roi_class for r in w.state.rois} == classes
    assert "made" in w.form.status.value and "classed by cell_line" in w.form.status.value
    w.form.signature_edit.value = ", ".join(spots.gene_names[:5])
    qtbot.waitUntil(lambda: not w.last_table.empty and (w.last_table["spots"] == 1).all(), timeout=60_000)
