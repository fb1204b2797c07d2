"""Large spot tables in a real viewer: raster at low zoom, every spot in view as a marker
when zoomed in, the mode on screen, the raster on the tissue, colour-by rebuilds the raster."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_roiscore._layer_data import SPOTS_KEY, VIEW_KEY, spots_layers
from napari_roiscore.spots.table import SpotTable

pytestmark = pytest.mark.gui


def _table(xy, shape="circle", diameter=10.0, obs=None, px=0.5):
    rng = np.random.default_rng(0)
    n = len(xy)
    a = ad.AnnData(X=sp.csr_matrix(rng.poisson(3, (n, 3)).astype(np.int32)),
                   obs=pd.DataFrame(obs or {}, index=[f"s{i}" for i in range(n)]),
                   var=pd.DataFrame(index=["CD68", "CD163", "EPCAM"]))
    a.obsm["spatial"] = np.asarray(xy, float)
    return SpotTable(a, diameter_px=diameter, shape=shape, pixel_size_um=px)


def _open(viewer, spots, limit, qtbot):
    """The layers as the reader gives them; waits until the full raster is built (in a worker)."""
    from napari_roiscore._qt.spot_view import controller_of, install_spot_views

    install_spot_views(viewer)
    for data, kw, kind in spots_layers(spots, name="cells", marker_limit=limit):
        getattr(viewer, f"add_{kind}")(data, **kw)
    points = next(ly for ly in viewer.layers if SPOTS_KEY in ly.metadata)
    image = next(ly for ly in viewer.layers if VIEW_KEY in ly.metadata and ly is not points)
    ctl = controller_of(viewer, points)
    assert ctl is not None
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)
    return image, points, ctl


def _visible(viewer, xy):
    """Spots whose centres are inside the canvas (world = pixels * 0.5 µm)."""
    c = np.asarray(viewer.camera.center)[-2:]
    half = np.asarray(viewer.canvas.size, float) / (2 * viewer.camera.zoom)
    yx = xy[:, ::-1] * 0.5
    return np.flatnonzero(np.all((yx >= c - half) & (yx <= c + half), axis=1))



def _scored_in_the_dock(make_napari_viewer, qtbot, seed: int):
    """8,000 spots as a raster view (markers above 500 in view), one ROI, the dock scored."""
    from gui_helpers import scores_ready

    viewer = make_napari_viewer(show=True)
    spots = _table(np.random.default_rng(seed).uniform(0, 4000, (8000, 2)))
    image, points, ctl = _open(viewer, spots, limit=500, qtbot=qtbot)
    viewer.add_shapes([np.array([[1000, 1000], [1000, 2000], [2000, 2000], [2000, 1000]]) * 0.5],
                      shape_type="polygon", name="ROIs", scale=(1, 1),
                      features={"name": ["001"], "class": ["tumour"], "holes": [""]})
    _, widget = viewer.window.add_plugin_dock_widget("napari-roiscore", "ROI scores")
    qtbot.waitUntil(lambda: scores_ready(widget), timeout=60_000)
    qtbot.waitUntil(lambda: ctl.recoloured >= 1, timeout=30_000)
    return viewer, spots, image, points, ctl, widget


def test_irregular_cells_switch_from_tile_means_to_every_marker(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    xy = np.random.default_rng(1).uniform(0, 4000, (20_000, 2))
    spots = _table(xy)
    image, points, ctl = _open(viewer, spots, limit=500, qtbot=qtbot)
    viewer.reset_view()
    ctl.refresh()
    assert ctl.mode == "raster" and len(points.data) == 0 and image.visible
    assert "mean per" in viewer.canvas.overlays.text.text and "tile" in viewer.canvas.overlays.text.text
    # every tile reaches the screen: the level drawn has pixels at least one screen pixel wide
    level = image.locked_data_level if image.locked_data_level is not None else image.data_level
    assert viewer.camera.zoom * image.scale[-1] * 2**level >= 1 - 1e-9
    # zoom in until a few hundred cells are on screen
    viewer.camera.zoom *= 12
    ctl.refresh()
    assert ctl.mode == "markers" and not image.visible
    shown = set(map(tuple, points.data))
    inside = _visible(viewer, xy)
    assert 0 < len(inside) <= len(points.data) <= 500
    assert set(map(tuple, xy[inside][:, ::-1])) <= shown  # every spot in view is drawn
    assert "every spot" in viewer.canvas.overlays.text.text
    # the widget still finds the table where it always did
    assert points.metadata[SPOTS_KEY] is spots and points.__class__.__name__ == "Points"


def test_grid_raster_sits_on_the_bins_and_colour_by_rebuilds_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    r, c = np.divmod(np.arange(150 * 120), 120)
    keep = (r - 75) ** 2 + (c - 60) ** 2 < 55**2
    r, c = r[keep], c[keep]
    pitch = 8.0
    xy = np.column_stack([300 + c * pitch, 100 + r * pitch])
    spots = _table(xy, shape="square", diameter=pitch, obs={"array_row": r, "array_col": c})
    image, points, ctl = _open(viewer, spots, limit=1000, qtbot=qtbot)
    # bin centres in world coordinates: raster pixel (row, col) -> spot (y, x) * 0.5 µm
    got = np.array([image.data_to_world((rr, cc)) for rr, cc in zip(r[:50] - r.min(), c[:50] - c.min())])
    np.testing.assert_allclose(got, xy[:50, ::-1] * 0.5, atol=1e-9)
    viewer.reset_view()
    ctl.refresh()
    assert "bin" in viewer.canvas.overlays.text.text
    new = np.arange(spots.n_spots, dtype=float)
    from napari_roiscore._qt.spot_view_dock import colour_spots

    assert colour_spots(points, new, "score")  # what the widget does with new scores
    qtbot.waitUntil(lambda: ctl.recoloured == 1, timeout=30_000)  # rebuilt in a worker
    level0 = np.asarray(image.data[0])
    np.testing.assert_array_equal(level0[r - r.min(), c - c.min()], new.astype(np.float32))
    assert image.contrast_limits[1] > 1000
    assert "score" in viewer.canvas.overlays.text.text


def test_opening_a_large_h5ad_draws_a_raster_and_follows_the_camera(make_napari_viewer, tmp_path):
    from napari_roiscore._qt.spot_view import controller_of
    from napari_roiscore.spots.view import POINTS_LAYER_LIMIT

    xy = np.random.default_rng(2).uniform(0, 20_000, (POINTS_LAYER_LIMIT + 1000, 2))
    spots = _table(xy)
    spots.adata.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 10.0}}}
    spots.adata.write_h5ad(tmp_path / "big.h5ad")
    viewer = make_napari_viewer(show=True)
    viewer.open(str(tmp_path / "big.h5ad"), plugin="napari-roiscore")
    kinds = sorted(ly.__class__.__name__ for ly in viewer.layers)
    assert kinds == ["Image", "Points"]
    points = next(ly for ly in viewer.layers if SPOTS_KEY in ly.metadata)
    assert controller_of(viewer, points) is not None


def test_the_dock_colours_the_raster_by_score_and_aligned_spots_move_it(make_napari_viewer, qtbot):
    from napari_roiscore._qt.registration import AlignSpotsWidget
    from napari_roiscore.spots.table import SpotTable as Table

    viewer, spots, image, points, ctl, widget = _scored_in_the_dock(make_napari_viewer, qtbot, seed=3)
    xy = spots.xy
    view = points.metadata[VIEW_KEY]
    assert view.label != "total counts"  # coloured by the signature score
    assert np.isfinite(view.values).sum() > 0
    # Align spots moves the table: the raster follows, the dock sees the new table
    moved = Table(spots.adata.copy(), spots.diameter_px, spots.shape, spots.pixel_size_um)
    moved.adata.obsm["spatial"] = spots.xy + 100.0
    AlignSpotsWidget._show_spots(points, moved)
    assert points.metadata[SPOTS_KEY] is moved and ctl.view is points.metadata[VIEW_KEY]
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)  # rebuilt in a worker
    lo = ctl.view.binning.placement.translate
    assert lo == pytest.approx((xy[:, 1].min() + 100 + ctl.view.binning.side / 2,
                                xy[:, 0].min() + 100 + ctl.view.binning.side / 2))
    np.testing.assert_allclose(image.translate, np.asarray(lo) * 0.5)


def test_grid_text_says_one_pixel_per_bin_as_soon_as_zoomed_in(make_napari_viewer, qtbot):
    """The canvas text names the level drawn at the new zoom, not the one of the previous frame."""
    viewer = make_napari_viewer(show=True)
    r, c = np.divmod(np.arange(60 * 1100), 1100)  # a strip wider than the coarsest level: 3 levels
    xy = np.column_stack([c * 8.0, r * 8.0])
    spots = _table(xy, shape="square", diameter=8.0, obs={"array_row": r, "array_col": c})
    image, points, ctl = _open(viewer, spots, limit=1000, qtbot=qtbot)
    viewer.reset_view()  # the whole strip: a coarse level
    ctl.refresh()
    qtbot.wait(200)
    assert "mean of" in viewer.canvas.overlays.text.text
    viewer.camera.zoom *= 200  # no draw in between
    ctl.refresh()
    assert "1 pixel per" in viewer.canvas.overlays.text.text, viewer.canvas.overlays.text.text


def test_gene_colour_of_a_large_table_is_computed_in_a_worker_while_the_gui_answers(
        make_napari_viewer, qtbot, monkeypatch):
    import threading

    from qtpy.QtCore import QTimer

    from napari_roiscore._qt import spot_colours
    from napari_roiscore.spots.gene_values import gene_values
    from napari_roiscore.spots.view import total_counts

    viewer, spots, image, points, ctl, widget = _scored_in_the_dock(make_napari_viewer, qtbot, seed=4)
    gate, where = threading.Event(), []

    def held(*args, **kwargs):  # the real computation, held until the test has looked at the GUI
        where.append(threading.current_thread() is threading.main_thread())
        gate.wait(60)
        return gene_values(*args, **kwargs)

    monkeypatch.setattr(spot_colours, "gene_values", held)
    recoloured = ctl.recoloured
    widget.spot_colours.colour_by_gene("CD68")
    ticks = []
    beat = QTimer()
    beat.timeout.connect(lambda: ticks.append(1))
    beat.start(10)
    qtbot.waitUntil(lambda: bool(where) and len(ticks) >= 5, timeout=30_000)  # the GUI answers meanwhile
    beat.stop()
    assert where == [False]  # computed in a worker thread, not on the GUI thread
    assert "CD68" not in points.metadata[VIEW_KEY].label  # not coloured yet
    gate.set()
    qtbot.waitUntil(lambda: "CD68" in points.metadata[VIEW_KEY].label and ctl.recoloured > recoloured,
                    timeout=30_000)
    view = points.metadata[VIEW_KEY]
    want = gene_values(spots, spots.gene_names.index("CD68"), normalised=True, totals=total_counts(spots))
    np.testing.assert_allclose(view.values, want)
    assert "CD68" in viewer.canvas.overlays.text.text
    assert widget.spot_colours.scale is not None and "CD68" in widget.spot_colours.scale.label
    # the dock's colour scale for a gene (sequential), on the raster too
    assert image.colormap.name == widget.spot_colours.scale.colormap
