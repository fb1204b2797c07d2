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

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.geojson import read_geojson as read_rois
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.scorer import RoiScorer, score_rois
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature
from napari_roiscore.spots.reading import read_spots
from napari_roiscore.spots.table import SpotTable

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
