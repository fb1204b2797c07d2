"""napari-roiscore: live gene-signature scores for ROIs on spatial pathology slides.

The top-level package is the *pure core*: it imports neither Qt nor napari, so
that the same scoring runs headless (CLI, notebooks, clusters) and in the
viewer.  Widgets live in :mod:`napari_roiscore._qt`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-roiscore")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+unknown"

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.roi import Roi
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature
from napari_roiscore.spots.table import SpotTable

__all__ = ["EXAMPLE_PANEL", "Roi", "RoiScoreError", "Signature", "SpotTable", "__version__"]
