"""npe2 sample-data contribution: the synthetic multiplex slide with spots and ROIs."""

from __future__ import annotations

from napari_roiscore._layer_data import image_layers, roi_layer, spots_layer
from napari_roiscore.spots.sample import open_sample


def make_sample_data() -> list[tuple]:
    """Layers of the shipped sample: 4 channels, spots, ROIs (synthetic data)."""
    s = open_sample()
    px = s.image.pixel_size_um
    return [*image_layers(s.image), spots_layer(s.spots, pixel_size_um=px), roi_layer(s.rois, pixel_size_um=px)]
