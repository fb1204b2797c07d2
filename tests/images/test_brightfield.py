"""Colour deconvolution turns an H&E / IHC RGB into stain channels."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.color import hed2rgb

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.images.brightfield import STAIN_NAMES, stain_channels, stain_image
from napari_roiscore.images.markers import otsu_threshold


def test_ihc_sample_dab_channel_follows_brown():
    rgb = data.immunohistochemistry()  # scikit-image's real IHC sample (haematoxylin + DAB)
    stains = stain_channels(rgb)
    assert stains.shape == (3, *rgb.shape[:2]) and stains.dtype == np.float32
    assert 0 <= stains.min() and stains.max() <= 1
    dab = stains[2]
    brown = (rgb[..., 0].astype(int) - rgb[..., 2].astype(int)) > 40  # brown: red well above blue
    assert dab[brown].mean() > 2 * dab[~brown].mean()


def test_synthetic_pure_stains_separate():
    hed = np.zeros((20, 30, 3))
    hed[:10, :, 0] = 0.05   # haematoxylin top half
    hed[10:, :, 2] = 0.05   # DAB bottom half
    rgb = (hed2rgb(hed) * 255).astype(np.uint8)
    st = stain_channels(rgb)
    assert st[0, :10].mean() > 5 * st[0, 10:].mean()
    assert st[2, 10:].mean() > 5 * st[2, :10].mean()


def test_stain_image_is_a_multiplex_image_markers_can_threshold():
    img = stain_image(data.immunohistochemistry(), pixel_size_um=0.5, dab_role="macrophages")
    assert img.channel_names == list(STAIN_NAMES) and img.roles == ["nuclei", "other", "macrophages"]
    t = otsu_threshold(img.levels[0][2])
    assert 0 < t < 1


def test_grey_image_refused_with_reason():
    with pytest.raises(RoiScoreError, match="RGB"):
        stain_channels(np.zeros((10, 10)))
