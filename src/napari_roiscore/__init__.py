"""napari-roiscore: live gene-signature scores for ROIs on spatial pathology slides.

The top-level package is the *pure core*: it imports neither Qt nor napari, so
that the same scoring runs headless (CLI, notebooks, clusters) and in the
viewer.  Widgets live in :mod:`napari_roiscore._qt`.

For scripts and notebooks (see "Python API" in the README)::

    from napari_roiscore import read_rois, read_spots, score_rois, EXAMPLE_PANEL

    table = score_rois(read_spots("spots.h5ad"), read_rois("rois.geojson"), EXAMPLE_PANEL, method="mean_z")

``read_spots`` opens any supported spot file or instrument folder as a
:class:`SpotTable`, ``read_rois`` a QuPath GeoJSON file as a list of
:class:`Roi`, and ``score_rois`` returns the ROI table ``roiscore score``
writes (one row per ROI).  :class:`RoiScorer` keeps the spot index and spot
scores between calls, for scoring many ROI sets on one slide.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-roiscore")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+unknown"

# Imported on first use (see napari_roiscore._lazy): napari importing the plugin for its
# reader does not also import the scoring stack on its GUI thread.
from napari_roiscore._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "EXAMPLE_PANEL": "napari_roiscore.scoring.signature",
    "Roi": "napari_roiscore.rois.roi",
    "RoiScoreError": "napari_roiscore.errors",
    "RoiScorer": "napari_roiscore.scoring.scorer",
    "Signature": "napari_roiscore.scoring.signature",
    "SpotTable": "napari_roiscore.spots.table",
    "read_rois": "napari_roiscore.rois.geojson:read_geojson",
    "read_spots": "napari_roiscore.spots.reading",
    "score_rois": "napari_roiscore.scoring.scorer",
})

__all__ = [
    "EXAMPLE_PANEL",
    "Roi",
    "RoiScoreError",
    "RoiScorer",
    "Signature",
    "SpotTable",
    "__version__",
    "read_rois",
    "read_spots",
    "score_rois",
]
