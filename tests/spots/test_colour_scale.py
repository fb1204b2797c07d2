"""Colour limits follow the values: robust, symmetric for centred scores."""

from __future__ import annotations

import numpy as np

from napari_roiscore.spots.colour_scale import colour_limits, gene_scale, is_centred_quantity, score_scale


def test_robust_limits_ignore_outliers_and_nan():
    v = np.r_[np.linspace(0, 1, 1000), 1e6, np.nan, np.inf]
    lo, hi = colour_limits(v, centred=False)
    assert 0 <= lo < 0.05 and 0.95 < hi <= 1.01


def test_centred_limits_are_symmetric():
    v = np.r_[np.linspace(-1.5, 1.6, 500)]
    lo, hi = colour_limits(v, centred=True)
    assert lo == -hi and 1.4 < hi < 1.6


def test_new_values_get_new_limits():
    """The defect: limits of a first score (-0.02..6.2) kept for a new one (-1.5..1.6)."""
    first = colour_limits(np.linspace(-0.02, 6.2, 100), centred=False)
    second = colour_limits(np.linspace(-1.5, 1.6, 100), centred=True)
    assert first != second and second[1] < 2


def test_degenerate_values():
    assert colour_limits(np.full(10, 3.0), centred=False)[0] < 3.0 < colour_limits(np.full(10, 3.0), centred=False)[1]
    assert colour_limits(np.array([np.nan]), centred=False) == (0.0, 1.0)
    lo, hi = colour_limits(np.zeros(5), centred=True)
    assert lo < 0 < hi


def test_centred_methods_and_labels():
    assert is_centred_quantity("mean_z") and not is_centred_quantity("ucell")
    assert not is_centred_quantity("singscore", {"center": False})
    s = score_scale(np.linspace(0, 0.4, 50), "ucell", "example panel")
    assert s.colormap == "viridis" and "example panel" in s.label
    g = gene_scale(np.r_[0, 0, 1, 2, 3.0], "Cd68")
    assert g.low == 0 and "Cd68" in g.label and "log1p" in g.label
