"""Channel roles and Align spots docks, and TIFF images opened from napari."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import tifffile
from qtpy.QtCore import Qt

from napari_roiscore._layer_data import SPOTS_KEY, image_layers, spots_layer
from napari_roiscore._qt.channels import ChannelRolesWidget, set_channel_role
from napari_roiscore._qt.registration import IMAGE_LANDMARKS, SPOT_LANDMARKS, AlignSpotsWidget
from napari_roiscore.images.multiplex import MultiplexImage
from napari_roiscore.images.registration import Transform, apply_transform
from napari_roiscore.spots.table import SpotTable

pytestmark = pytest.mark.gui


def _add(viewer, layer_data):
    data, kwargs, kind = layer_data
    return getattr(viewer, f"add_{kind}")(data, **kwargs)


# -- channel roles -------------------------------------------------------------------------

def test_channel_roles_dock_recolours_and_updates_metadata(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    img = MultiplexImage(levels=[np.zeros((3, 16, 16), np.uint16)], channel_names=["DAPI", "FOXP3", "CD68"])
    for ld in image_layers(img):
        _add(viewer, ld)
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "Channel roles")
    assert isinstance(widget, ChannelRolesWidget)
    assert list(widget.combos) == ["DAPI", "FOXP3", "CD68"]
    assert widget.combos["FOXP3"].currentText() == "other"

    widget.combos["FOXP3"].setCurrentText("macrophages")  # as a user picking from the drop-down
    layer = viewer.layers["FOXP3 (macrophages)"]
    assert layer.colormap.name == "magenta"
    assert layer.metadata["roiscore_role"] == "macrophages"
    assert img.roles == ["nuclei", "macrophages", "macrophages"]

    widget.set_role("DAPI", "vessels")
    assert viewer.layers["DAPI (vessels)"].colormap.name == "yellow"
    qtbot.mouseClick(widget.guess_button, Qt.LeftButton)
    assert [ly.name for ly in viewer.layers] == ["DAPI (nuclei)", "FOXP3 (other)", "CD68 (macrophages)"]
    assert [ly.colormap.name for ly in viewer.layers] == ["blue", "gray", "magenta"]

    # layers opened later appear in the dock
    viewer.add_image(np.zeros((8, 8)), name="CD31")
    assert "CD31" in widget.combos and widget.combos["CD31"].currentText() == "vessels"
    set_channel_role(viewer.layers["CD31"], "vessels")
    assert viewer.layers["CD31"].colormap.name == "yellow"
    with pytest.raises(ValueError, match="role"):
        set_channel_role(viewer.layers["CD31"], "tumour")


# -- TIFF images through the npe2 reader ---------------------------------------------------

def test_qptiff_opens_as_coloured_channel_layers(make_napari_viewer, tmp_path):
    from test_image import planes, write_qptiff

    path = write_qptiff(tmp_path / "slide.qptiff", planes())
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-roiscore")
    assert [ly.name for ly in layers] == ["DAPI (nuclei)", "PanCK (cancer cells)", "CD31 (vessels)",
                                          "CD68 (macrophages)"]
    assert [ly.colormap.name for ly in layers] == ["blue", "cyan", "yellow", "magenta"]
    assert all(ly.multiscale and len(ly.data) == 3 for ly in layers)
    assert np.allclose(layers[0].scale, 0.4977)


# -- align spots ---------------------------------------------------------------------------

FEATURE_YX = (300, 500)  # a bright blob in the image, under spot 0


def _image_with_feature() -> np.ndarray:
    img = np.zeros((800, 1000), np.uint16)
    y, x = FEATURE_YX
    img[y - 6:y + 7, x - 6:x + 7] = 5000
    return img


def _spots_on_image() -> SpotTable:
    rng = np.random.default_rng(1)
    xy = np.vstack([[FEATURE_YX[1], FEATURE_YX[0]], [150, 120], [850, 650], rng.uniform(100, 700, (20, 2))])
    adata = ad.AnnData(X=sp.csr_matrix(rng.poisson(3, (len(xy), 5)).astype(np.float32)))
    adata.obs_names = [f"spot{i}" for i in range(len(xy))]
    adata.var_names = [f"g{j}" for j in range(5)]
    adata.obsm["spatial"] = xy
    return SpotTable(adata, diameter_px=20.0, pixel_size_um=0.5, provenance={"path": "test"})


def _value_under(viewer, image_layer, spots_layer_, i: int) -> int:
    world = spots_layer_.data_to_world(spots_layer_.data[i])
    r, c = np.round(image_layer.world_to_data(world)).astype(int)
    return int(image_layer.data[r, c])


def test_align_brings_a_misplaced_spot_back_onto_its_feature(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = viewer.add_image(_image_with_feature(), name="DAPI", scale=(0.5, 0.5))
    truth = _spots_on_image()
    shifted = apply_transform(truth, Transform.similarity(1.0, 3.0, (40.0, -25.0)), pixel_size_um=0.5)
    layer = _add(viewer, spots_layer(shifted, name="spots"))
    assert _value_under(viewer, image, layer, 0) == 0  # misplaced: spot 0 is off its blob

    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "Align spots")
    assert isinstance(widget, AlignSpotsWidget)
    widget.spots_combo.setCurrentText("spots")
    qtbot.mouseClick(widget.landmarks_button, Qt.LeftButton)
    image_lm, spot_lm = viewer.layers[IMAGE_LANDMARKS], viewer.layers[SPOT_LANDMARKS]
    # clicks: two features on the image (world = µm), then the same two among the misplaced spots
    image_lm.data = np.array([image_lm.world_to_data(image.data_to_world(p)) for p in
                              (FEATURE_YX, (120, 150))])
    spot_lm.data = np.array([spot_lm.world_to_data(layer.data_to_world(layer.data[i])) for i in (0, 1)])
    assert list(spot_lm.features["label"]) == ["1", "2"]

    qtbot.mouseClick(widget.align_button, Qt.LeftButton)
    assert "problem" not in widget.result.text(), widget.result.text()
    assert _value_under(viewer, image, layer, 0) == 5000  # back on its blob
    moved = layer.metadata[SPOTS_KEY]
    np.testing.assert_allclose(moved.xy, truth.xy, atol=1e-6)
    np.testing.assert_array_equal(moved.counts.toarray(), truth.counts.toarray())
    assert moved.provenance["transform_steps"][-1]["kind"] == "similarity"
    assert "Residuals" in widget.result.text()
    np.testing.assert_allclose(spot_lm.data, image_lm.data, atol=1e-6)  # pairs now coincide

    qtbot.mouseClick(widget.undo_button, Qt.LeftButton)
    assert layer.metadata[SPOTS_KEY] is shifted
    assert _value_under(viewer, image, layer, 0) == 0


def test_align_with_unpaired_landmarks_says_what_to_do(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _add(viewer, spots_layer(_spots_on_image(), name="spots"))
    widget = AlignSpotsWidget(viewer)
    qtbot.addWidget(widget)
    image_lm, spot_lm = widget.landmark_layers()
    image_lm.data = np.array([[10.0, 10.0], [50.0, 80.0]])
    spot_lm.data = np.array([[12.0, 11.0]])
    qtbot.mouseClick(widget.align_button, Qt.LeftButton)
    assert "do not pair up" in widget.result.text() and "Click" in widget.result.text()
