"""Opening a folder of per-marker TIFFs in napari: the pixel-size dialog, the four-colour overlay."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

pytestmark = pytest.mark.gui


def _answer_dialog(qtbot, value: float | None):
    """Fill in (or cancel) the pixel-size dialog as soon as it opens."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication, QInputDialog

    seen = []

    def act():
        dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, QInputDialog) and w.isVisible()]
        if not dialogs:
            QTimer.singleShot(50, act)
            return
        seen.append(dialogs[0].labelText())
        if value is None:
            dialogs[0].reject()
        else:
            dialogs[0].setDoubleValue(value)
            dialogs[0].accept()

    QTimer.singleShot(50, act)
    return seen


def _folder(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("CD3", "CD31", "CD68", "ECAD", "HH3", "Nuc", "PanKRT"):
        tifffile.imwrite(tmp_path / f"{name}.tif", rng.poisson(0.5, (64, 96)).astype(np.uint8))
    return tmp_path


def test_folder_asks_for_the_pixel_size_and_uses_it(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    seen = _answer_dialog(qtbot, 0.75)
    layers = viewer.open(str(_folder(tmp_path)), plugin="napari-roiscore")
    assert seen and "pixel size" in seen[0]
    assert len(layers) == 7
    assert {ly.name for ly in layers if ly.visible} == {
        "Nuc (nuclei)", "PanKRT (cancer cells)", "CD31 (vessels)", "CD68 (macrophages)"}
    assert all(tuple(ly.scale) == (0.75, 0.75) for ly in layers)
    image = layers[0].metadata["roiscore_image"]
    assert image.pixel_size_um == 0.75 and image.provenance["reader_options"] == {"pixel_size_um": 0.75}


def test_cancelled_dialog_opens_in_pixels(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _answer_dialog(qtbot, None)
    layers = viewer.open(str(_folder(tmp_path)), plugin="napari-roiscore")
    assert all(tuple(ly.scale) == (1.0, 1.0) for ly in layers)
    assert layers[0].metadata["roiscore_image"].pixel_size_um is None


def test_real_mibi_field_in_one_step(make_napari_viewer, qtbot, shared_data):
    """The real 41-marker field opens as the four-colour overlay, visibly (not black)."""
    from napari_roiscore._qt.channels import ChannelRolesWidget

    viewer = make_napari_viewer(show=True)
    _answer_dialog(qtbot, 0.5)
    layers = viewer.open(str(shared_data / "mibi_breast_risom2022" / "Point2206_pt1116_31620"),
                         plugin="napari-roiscore")
    assert len(layers) == 41
    assert {ly.name for ly in layers if ly.visible} == {
        "Nuc (nuclei)", "PanKRT (cancer cells)", "CD31 (vessels)", "CD68 (macrophages)"}
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    assert (shot.max(axis=-1) > 60).mean() > 0.05  # sparse counts are displayed, not black
    roles = ChannelRolesWidget(viewer)
    roles.set_role("HH3", "nuclei")
    roles.guess_all()  # back to one channel per role
    assert roles.combos["HH3"].currentText() == "other" and roles.combos["Nuc"].currentText() == "nuclei"
    assert roles.combos["PanKRT"].currentText() == "cancer cells"
