"""A large .h5ad opened from the window shows its first look (the coarse preview of total
counts, ``spots/first_look.py``) while the table is read; the preview layer then
becomes the slide's raster layer, or goes when the read fails (``_qt/first_look.py``)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import napari_roiscore.spots.first_look as first_look
from napari_roiscore import _reader
from napari_roiscore._layer_data import FIRST_LOOK_KEY, SPOTS_KEY

from gui_helpers import large_h5ad, open_from_window

pytestmark = pytest.mark.gui


@pytest.fixture
def looks_at_small_slides(monkeypatch):
    """First looks from 1,000 spots (the default threshold is a million)."""
    monkeypatch.setattr(first_look, "FIRST_LOOK_MIN_SPOTS", 1000)


def _inserted(viewer) -> list:
    seen = []
    viewer.layers.events.inserted.connect(lambda e: seen.append((e.value.name, dict(e.value.metadata))))
    return seen


def test_the_first_look_comes_first_and_becomes_the_slides_raster(make_napari_viewer, qtbot, tmp_path,
                                                                   looks_at_small_slides):
    path = large_h5ad(tmp_path)
    expected = _reader.read_now([path])
    viewer = make_napari_viewer(show=True)
    seen = _inserted(viewer)
    assert open_from_window(viewer, path) == []
    qtbot.waitUntil(lambda: len(seen) >= 1, timeout=60_000)
    name, metadata = seen[0]
    assert name.startswith("PREVIEW · cells") and metadata[FIRST_LOOK_KEY] == str(path)
    look_layer = viewer.layers[0]
    assert look_layer.source.path == str(path) and look_layer.source.reader_plugin == "napari-roiscore"
    from napari_roiscore._qt.spot_view import _text_overlay

    overlay = _text_overlay(viewer)  # it says what it is, against a colour bar
    qtbot.waitUntil(lambda: overlay.text.startswith("spots: PREVIEW, mean per ")
                    and overlay.text.endswith("reading the table…") and look_layer.colorbar.visible, timeout=60_000)
    assert "32,000 spots" in overlay.text and "µm tile" in overlay.text
    qtbot.waitUntil(lambda: len(viewer.layers) == len(expected), timeout=60_000)
    points = next(ly for ly in viewer.layers if SPOTS_KEY in ly.metadata)
    from napari_roiscore._qt.spot_view import controller_of

    ctl = controller_of(viewer, points)
    assert ctl.image is look_layer  # the same layer: napari adds one image layer fewer, removes none
    assert len(seen) == 2 and FIRST_LOOK_KEY not in look_layer.metadata
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)
    assert [ly.name for ly in viewer.layers] == [
        "cells (bins)" if ctl.view.is_grid else "cells (tile means)", "cells"]
    assert all(ly.visible for ly in viewer.layers)
    # the raster drawn is the full one (one pixel per spot tile), as without a first look
    assert np.asarray(look_layer.data[0]).shape == ctl.view.pyramid()[0].shape
    # the view reused the first look's totals and preview: the same values as a read without it
    np.testing.assert_array_equal(ctl.view.totals, first_look.first_look_h5ad(path, min_spots=1).totals)
    assert ctl.view.ready_preview is not None
    assert not _reader._FIRST_LOOKS  # nothing kept once the table took it


def test_without_a_first_look_nothing_extra_is_shown(make_napari_viewer, qtbot, tmp_path):
    path = large_h5ad(tmp_path)  # 32,000 spots: under the default threshold
    viewer = make_napari_viewer(show=True)
    seen = _inserted(viewer)
    open_from_window(viewer, path)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=60_000)
    assert not any(FIRST_LOOK_KEY in metadata for _, metadata in seen)


def test_a_read_failing_after_the_first_look_removes_it_and_keeps_the_rois(make_napari_viewer, qtbot, tmp_path,
                                                                          looks_at_small_slides, notifications):
    path = large_h5ad(tmp_path)
    adata = ad.read_h5ad(path)
    adata.obs_names = ["same"] * adata.n_obs  # the first look reads no barcodes; the table refuses these
    bad = tmp_path / "duplicates.h5ad"
    adata.write_h5ad(bad)
    viewer = make_napari_viewer(show=True)
    rois = viewer.add_shapes([[[0, 0], [0, 900], [900, 900]]], shape_type="polygon", name="tumour ROIs")
    seen = _inserted(viewer)
    open_from_window(viewer, bad)
    qtbot.waitUntil(lambda: any(FIRST_LOOK_KEY in m for _, m in seen), timeout=60_000)
    qtbot.waitUntil(lambda: any("duplicate spot barcodes" in str(n.message) for n in notifications),
                    timeout=60_000)
    qtbot.waitUntil(lambda: list(viewer.layers) == [rois], timeout=10_000)
    from napari_roiscore._qt.spot_view import _text_overlay

    assert "reading the table" not in _text_overlay(viewer).text  # nothing left saying it is being read
    assert len(rois.data) == 1
    assert not _reader._FIRST_LOOKS
