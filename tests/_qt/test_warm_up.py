"""Once-per-session napari costs paid ahead: the unit registry in a thread, the overlay's
glyphs a few per loop turn (the overlay is shown once they are rendered)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_roiscore._layer_data import spots_layers
from napari_roiscore.spots.table import SpotTable

pytestmark = pytest.mark.gui


def _cells(n: int) -> SpotTable:
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    a = ad.AnnData(X=sp.csr_matrix(rng.poisson(2, (n, 3)).astype(np.int32)))
    a.obsm["spatial"] = rng.uniform(0, 4000, (n, 2))
    return SpotTable(a, diameter_px=8.0, shape="circle", pixel_size_um=0.5)


def test_units_set_up_in_a_thread_are_napari_units():
    import pint

    from napari_roiscore._qt.warm_up import start_units, wait_units

    start_units()
    start_units()  # once
    wait_units()
    registry = pint.get_application_registry()
    assert (1 * registry.um).to(registry.mm).magnitude == pytest.approx(1e-3)


def test_glyphs_rendered_over_several_turns_then_the_overlay_is_shown(make_napari_viewer, qtbot):
    from napari_roiscore._qt import warm_up
    from napari_roiscore._qt.spot_view import controller_of, install_spot_views

    viewer = make_napari_viewer(show=True)
    font = warm_up._overlay_font(viewer)
    assert font is not None  # napari's canvas font: what the text overlay draws with
    wanted = "ÅÉÑŐjgpqy0123456789µ×…·"
    warmer = warm_up.GlyphWarmer(viewer, wanted)
    missing = [c for c in dict.fromkeys(wanted) if c not in font._glyphs]
    turns = []
    warmer._timer.timeout.connect(lambda: turns.append(sum(c in font._glyphs for c in wanted)))
    called = []
    warmer.when_ready(lambda: called.append(True))
    qtbot.waitUntil(lambda: bool(called), timeout=30_000)
    assert all(c in font._glyphs for c in wanted)
    if len(missing) > warm_up.GLYPHS_PER_TURN:  # spread over loop turns, a few at a time
        assert len(turns) >= len(missing) // warm_up.GLYPHS_PER_TURN
        assert np.all(np.diff(turns) <= warm_up.GLYPHS_PER_TURN)
    # a large table: the overlay says what is drawn, shown once the glyphs are rendered
    install_spot_views(viewer)
    for data, kw, kind in spots_layers(_cells(5_000), name="cells", marker_limit=100, points_limit=100):
        getattr(viewer, f"add_{kind}")(data, **kw)
    ctl = controller_of(viewer, viewer.layers[-1])
    assert "building the raster" in viewer.canvas.overlays.text.text
    qtbot.waitUntil(lambda: viewer.canvas.overlays.text.visible, timeout=30_000)
    assert all(c in font._glyphs for c in warm_up.OVERLAY_CHARACTERS if c.isalnum())
    qtbot.waitUntil(lambda: ctl.stage == "full", timeout=60_000)
