"""Pixel test: every channel renders in the study's colour (shown viewer, Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

EXPECTED = {
    "DAPI (nuclei)": "blue",
    "panCK (cancer cells)": "cyan",
    "CD31 (vessels)": "yellow",
    "CD68 (macrophages)": "magenta",
}


def _classify(rgb: np.ndarray) -> str:
    r, g, b = rgb
    hi = max(r, g, b)
    on = [c > 0.5 * hi for c in (r, g, b)]
    return {
        (False, False, True): "blue",
        (False, True, True): "cyan",
        (True, True, False): "yellow",
        (True, False, True): "magenta",
    }.get(tuple(on), f"other{tuple(np.round(rgb))}")


def test_each_channel_renders_in_its_colour(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-roiscore", "multiplex_visium")
    viewer.layers["spots"].visible = False
    viewer.layers["ROIs"].visible = False
    seen = {}
    for name in EXPECTED:
        for ly in viewer.layers:
            ly.visible = ly.name == name
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
        bright = shot.max(axis=-1) > 60
        assert bright.mean() > 0.001, f"{name} rendered nothing"
        seen[name] = _classify(shot[bright].mean(axis=0))
    assert seen == EXPECTED
    # all four together: additive blending shows more than any single channel
    for ly in viewer.layers:
        ly.visible = ly.name in EXPECTED
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    assert len(np.unique(shot.reshape(-1, 3) // 32, axis=0)) >= 6
