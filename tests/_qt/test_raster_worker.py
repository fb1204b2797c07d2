"""A large table's raster is built off the GUI thread: placeholder at once, a labelled exact
preview, then the full raster equal to the core's; closing or replacing meanwhile is safe."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_roiscore._layer_data import SPOTS_KEY, VIEW_KEY, spots_layers
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.spots.view import SpotView

pytestmark = pytest.mark.gui


def _cells(n, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 6000, (n, 2))
    a = ad.AnnData(X=sp.csr_matrix(rng.poisson(2, (n, 4)).astype(np.int32)),
                   obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
                   var=pd.DataFrame(index=["CD68", "CD163", "EPCAM", "KRT8"]))
    a.obsm["spatial"] = xy
    return SpotTable(a, diameter_px=12.0, shape="circle", pixel_size_um=0.5)


@pytest.fixture
def preview_gate(monkeypatch):
    """Holds the worker after its preview until released, so the preview is seen for sure."""
    import threading

    from napari_roiscore._qt import raster_worker

    gate = threading.Event()
    build_steps = raster_worker.build_steps

    def gated(view, *args, **kwargs):
        steps = build_steps(view, *args, **kwargs)
        try:
            while True:
                item = next(steps)
                yield item
                if item[0] == "preview":
                    gate.wait(60)
        except StopIteration as stop:
            return stop.value

    monkeypatch.setattr(raster_worker, "build_steps", gated)
    yield gate
    gate.set()


def _add(viewer, spots, limit=500):
    from napari_roiscore._qt.spot_view import controller_of, install_spot_views

    install_spot_views(viewer)
    for data, kw, kind in spots_layers(spots, name="cells", marker_limit=limit):
        getattr(viewer, f"add_{kind}")(data, **kw)
    points = next(ly for ly in viewer.layers if SPOTS_KEY in ly.metadata)
    image = next(ly for ly in viewer.layers if VIEW_KEY in ly.metadata and ly is not points)
    return image, points, controller_of(viewer, points)


def test_placeholder_at_once_then_labelled_preview_then_the_core_raster(make_napari_viewer, qtbot, preview_gate):
    viewer = make_napari_viewer(show=True)
    spots = _cells(20_000)
    image, points, ctl = _add(viewer, spots)
    # synchronously: an empty placeholder over the spots, named as such; the worker is running
    assert ctl.stage == "building" and ctl._build is not None
    assert image.name == "cells (building raster…)"
    assert all(np.isnan(np.asarray(level)).all() for level in image.data)
    assert "building the raster" in viewer.canvas.overlays.text.text
    # the placeholder's 2 x 2 pixels cover the spots' bounding box exactly (µm)
    np.testing.assert_allclose(image.data_to_world((-0.5, -0.5)), spots.xy.min(axis=0)[::-1] * 0.5)
    np.testing.assert_allclose(image.data_to_world((1.5, 1.5)), spots.xy.max(axis=0)[::-1] * 0.5)
    names = []
    image.events.name.connect(lambda e: names.append(image.name))
    qtbot.waitUntil(lambda: ctl.stage == "preview", timeout=60_000)
    # the preview, labelled on the layer and on the canvas
    assert image.name == "PREVIEW · cells (coarse tile means)"
    assert "PREVIEW" in viewer.canvas.overlays.text.text and "building the full raster" in viewer.canvas.overlays.text.text
    assert np.isfinite(np.asarray(image.data[0])).any()
    preview_gate.set()
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)
    assert names == ["PREVIEW · cells (coarse tile means)", "cells (tile means)"]
    assert "PREVIEW" not in viewer.canvas.overlays.text.text
    # the full raster is the core's, level by level, with the core's contrast limits
    core = SpotView.of(spots, marker_limit=500)
    want = core.pyramid()
    assert len(image.data) == len(want)
    for got, exp in zip(image.data, want):
        np.testing.assert_array_equal(np.asarray(got), exp)
    assert tuple(image.contrast_limits) == pytest.approx(core.contrast_limits())
    np.testing.assert_allclose(image.translate, np.asarray(core.binning.placement.translate) * 0.5)
    view = points.metadata[VIEW_KEY]
    np.testing.assert_array_equal(view.values, core.values)
    assert view.totals is view.values  # the totals summed once, reused (gene colours)
    # and the camera controller works on it: zoomed in, markers of every spot in view
    viewer.reset_view()
    viewer.camera.zoom *= 12
    ctl.refresh()
    assert ctl.mode == "markers" and 0 < len(points.data) <= 500
    # markers filled with their values' colours, on the raster's colour scale
    from napari.utils.colormaps import ensure_colormap

    lo, hi = view.contrast_limits()
    shown = points.features["value"].to_numpy()
    want = ensure_colormap("viridis").map(np.clip((shown - lo) / (hi - lo), 0, 1))
    np.testing.assert_allclose(points.face_color, want, atol=1e-3)  # filled (the dock's default)
    viewer.camera.center = tuple(np.asarray(viewer.camera.center) + 300)  # pan: new markers, same colouring
    ctl.refresh()
    shown = points.features["value"].to_numpy()
    want = ensure_colormap("viridis").map(np.clip((shown - lo) / (hi - lo), 0, 1))
    np.testing.assert_allclose(points.face_color, want, atol=1e-3)  # filled (the dock's default)


def test_the_preview_is_the_exact_mean_of_every_spot_per_tile(make_napari_viewer, qtbot, preview_gate):
    from napari_roiscore.spots.view_build import preview_raster

    viewer = make_napari_viewer(show=False)
    spots = _cells(5000, seed=3)
    image, _, ctl = _add(viewer, spots)
    qtbot.waitUntil(lambda: ctl.stage == "preview", timeout=60_000)
    shown = [[np.asarray(lv).copy() for lv in image.data]]
    preview_gate.set()
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)
    totals = np.asarray(spots.adata.X.sum(axis=1)).ravel().astype(float)
    prev = preview_raster(spots.xy, totals)
    np.testing.assert_array_equal(shown[0][0], prev.levels[0])
    # exact: the preview's finest level, weighted by spots per tile, sums to the grand total
    side, (y0, x0) = prev.side, (spots.xy[:, 1].min(), spots.xy[:, 0].min())
    rows = np.minimum(((spots.xy[:, 1] - y0) / side).astype(int), prev.levels[0].shape[0] - 1)
    cols = np.minimum(((spots.xy[:, 0] - x0) / side).astype(int), prev.levels[0].shape[1] - 1)
    n = np.zeros(prev.levels[0].shape)
    np.add.at(n, (rows, cols), 1)
    assert np.nansum(prev.levels[0].astype(float) * n) == pytest.approx(totals.sum(), rel=1e-5)


def test_colour_by_while_building_shows_the_new_values(make_napari_viewer, qtbot):
    from napari_roiscore._qt.spot_view_dock import colour_spots

    viewer = make_napari_viewer(show=False)
    spots = _cells(20_000, seed=1)
    image, points, ctl = _add(viewer, spots)
    new = np.arange(spots.n_spots, dtype=float)
    assert colour_spots(points, new, "score")  # before the build returns
    qtbot.waitUntil(lambda: ctl.stage == "full" and ctl.recoloured == 1, timeout=60_000)
    want = SpotView.of(spots).pyramid_of(new)
    np.testing.assert_array_equal(np.asarray(image.data[0]), want[0])
    assert points.metadata[VIEW_KEY].label == "score"


def test_closing_the_viewer_or_removing_the_layers_while_building_is_safe(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    image, points, ctl = _add(viewer, _cells(600_000, seed=2), limit=30_000)
    worker = ctl._build
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        viewer.close()  # the build stops at its next step; nothing touches the closed viewer
    assert ctl._build is None and ctl.stage != "full"

    other = make_napari_viewer(show=False)
    image, points, ctl = _add(other, _cells(600_000, seed=4), limit=30_000)
    worker = ctl._build
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        other.layers.clear()
    assert ctl.stage != "full" and len(other.layers) == 0


def test_large_table_reads_with_the_docks_colour_scale(make_napari_viewer, qtbot):
    """Raster, markers and colour bar use the dock's map and limits ("colour from / to"), filled or outlined."""
    viewer = make_napari_viewer(show=False)
    spots = _cells(20_000, seed=2)
    image, points, ctl = _add(viewer, spots)
    _, w = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    w.form.signature_edit.value = "CD68, CD163"
    qtbot.waitUntil(lambda: ctl.stage == "full" and w.spot_colours.scale is not None
                    and points.metadata[VIEW_KEY].values is w.state.scores.values, timeout=60_000)
    scale = w.spot_colours.scale
    assert scale.centred and scale.colormap != "viridis"  # a z-like score: diverging, symmetric
    qtbot.waitUntil(lambda: image.colormap.name == scale.colormap, timeout=60_000)
    np.testing.assert_allclose(image.contrast_limits, [scale.low, scale.high])
    assert image.colorbar.visible and not points.face_colorbar.visible  # one colour bar: the raster's

    viewer.camera.center = (3000.0, 3000.0)
    viewer.camera.zoom = 40.0  # a few hundred cells in view: markers, the raster hidden
    ctl.refresh()
    assert ctl.mode == "markers" and not image.visible
    assert points.face_colormap.name == scale.colormap and points.face_colorbar.visible
    np.testing.assert_allclose(points.face_contrast_limits, [scale.low, scale.high])

    w.spot_colours.set_limits(-0.25, 0.25)  # typed limits: raster and markers follow, no rebuild
    np.testing.assert_allclose(image.contrast_limits, [-0.25, 0.25])
    np.testing.assert_allclose(points.face_contrast_limits, [-0.25, 0.25])

    w.spot_colours.style_combo.value = "outline"
    qtbot.waitUntil(lambda: points.border_colorbar.visible, timeout=60_000)
    assert points.border_colormap.name == w.spot_colours.scale.colormap and not points.face_colorbar.visible
