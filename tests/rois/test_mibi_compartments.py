"""Compartments and marker masks on the real MIBI-TOF fields (sparse ion counts).

Point2206 shows tumour nests in stroma with vessels; Point2203 one duct edge
with CD68-rich stroma (Risom et al., Cell 2022; see the data's PROVENANCE.md).
The pixel size is not in the files; MIBI fields of this kind are 0.4-0.8 µm/px,
so the checks hold over that range.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import ndimage as ndi

from napari_roiscore.images.markers import is_sparse_counts, marker_mask
from napari_roiscore.readers.channel_folder import read_channel_folder
from napari_roiscore.rois.compartments import propose_compartments

NESTS = "Point2206_pt1116_31620"
DUCT_EDGE = "Point2203_pt1072_31606"


def _field(shared_data, name, px):
    return read_channel_folder(shared_data / "mibi_breast_risom2022" / name, pixel_size_um=px)


def _share_inside(image, rois, channel, sigma_um=2.0) -> float:
    """Fraction of a channel's smoothed signal inside the union of ``rois``."""
    geom = shapely.union_all([r.geometry for r in rois]) if rois else shapely.Polygon()
    h, w = image.shape_yx
    yy, xx = np.mgrid[0:h, 0:w]
    inside = shapely.contains_xy(geom, xx.ravel(), yy.ravel()).reshape(h, w)
    signal = ndi.gaussian_filter(np.asarray(image.levels[0][image.channel_names.index(channel)]).astype(float),
                                 sigma_um / image.pixel_size_um)
    return float(signal[inside].sum() / signal.sum())


@pytest.mark.parametrize("px", [0.4, 0.5, 0.8])
def test_tumour_nests_hold_the_keratin_and_not_the_vessels(shared_data, px):
    image = _field(shared_data, NESTS, px)
    comp = propose_compartments(image)
    assert comp.settings["counts"] is True and comp.settings["tumour_channel"] == "PanKRT"
    tumour, stroma = comp.of_class("tumour"), comp.of_class("stroma")
    assert tumour and stroma
    assert _share_inside(image, tumour, "PanKRT") >= 0.80
    assert _share_inside(image, tumour, "CD31") <= 0.30
    assert _share_inside(image, tumour, "ECAD") >= 0.80  # a second epithelial marker agrees
    assert _share_inside(image, stroma, "COLI") >= 0.80  # collagen lies in the stroma
    # tumour and stroma never overlap
    assert shapely.union_all([r.geometry for r in tumour]).intersection(
        shapely.union_all([r.geometry for r in stroma])).area < 1.0


def test_duct_edge_field(shared_data):
    image = _field(shared_data, DUCT_EDGE, 0.5)
    comp = propose_compartments(image)
    tumour, stroma = comp.of_class("tumour"), comp.of_class("stroma")
    assert _share_inside(image, tumour, "PanKRT") >= 0.80
    assert _share_inside(image, stroma, "CD68") >= 0.70  # the CD68-rich stroma
    assert _share_inside(image, stroma, "COLI") >= 0.80


def test_dense_image_rule_would_have_failed_here(shared_data):
    """Without the count rules (Otsu on the summed, percentile-scaled channels) tissue
    splits into cell-dense and cell-poor parts and the tumour misses a nest."""
    image = _field(shared_data, NESTS, 0.5)
    dense = propose_compartments(image, counts=False)
    assert _share_inside(image, dense.of_class("tumour"), "PanKRT") < 0.80


def test_count_channels_are_smoothed_before_otsu(shared_data):
    image = _field(shared_data, DUCT_EDGE, 0.5)
    assert is_sparse_counts(image, "CD68")
    raw = np.asarray(marker_mask(image, "CD68", smooth_um=0).data)
    smooth_mask = marker_mask(image, "CD68")
    assert "smoothed" in smooth_mask.label
    smooth = np.asarray(smooth_mask.data)
    # raw Otsu on counts: speckles of one or two pixels; smoothed: cell-sized objects (µm²)
    px_area = image.pixel_size_um**2
    mean_area = [m.sum() / max(ndi.label(m)[1], 1) * px_area for m in (raw, smooth)]
    assert mean_area[0] < 3.0 and mean_area[1] > 15.0
    counts = np.asarray(image.levels[0][image.channel_names.index("CD68")]).astype(float)
    assert counts[smooth].sum() / counts.sum() >= 0.85
