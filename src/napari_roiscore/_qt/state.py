"""What the "ROI scores" dock currently shows, shared by its tabs.

One :class:`DockState` holds the chosen spots layer (with its
:class:`~napari_roiscore.scoring.scorer.RoiScorer`), the ROI layer, the spot
scores, the marker restriction and the last ROI table.  Tabs read and write it
and connect to its psygnal signals instead of calling each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error, show_info
from psygnal import Signal

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.classes import normalise_class
from napari_roiscore.rois.roi import DEFAULT_CLASSES, Roi
from napari_roiscore.rois.shapes import rois_from_shapes

if TYPE_CHECKING:
    from napari.layers import Points, Shapes

    from napari_roiscore.analysis.statistics import ClassComparison
    from napari_roiscore.scoring.methods import SpotScores
    from napari_roiscore.scoring.scorer import RoiScorer


def describe_files(result: Any, path: str) -> str:
    """The file(s) an action wrote, for a message (never an object's repr)."""
    from pathlib import Path

    if isinstance(result, (str, Path)):
        return str(result)
    if isinstance(result, (tuple, list)) and result and all(isinstance(r, (str, Path)) for r in result):
        return " and ".join(str(r) for r in result)
    return str(path)


def same_transform(a: Any, b: Any) -> bool:
    """True if two layers map their data to the world in the same way (last two axes)."""
    return (
        np.allclose(a.scale[-2:], b.scale[-2:])
        and np.allclose(a.translate[-2:], b.translate[-2:])
        and np.allclose(a.rotate[-2:, -2:], b.rotate[-2:, -2:])
        and np.allclose(a.shear, b.shear)
        and np.allclose(a.affine.affine_matrix, b.affine.affine_matrix)
    )


class DockState:
    """The dock's shared state, with signals the tabs connect to.

    Attributes
    ----------
    spots_layer : napari.layers.Points or None
        The chosen spots layer (its SpotTable is in ``metadata``).
    scorer : RoiScorer or None
        Scorer of the chosen spots.
    scores : SpotScores or None
        The current per-spot scores (None while computing or after a problem).
    score_problem : str or None
        Why there are no spot scores (e.g. a bad signature).
    roi_layer : napari.layers.Shapes or None
        The chosen ROI layer.
    classes : list of str
        ROI classes known to the dock (built-in and user-defined).
    spot_mask, marker_fractions : numpy.ndarray or None
        Marker restriction: the spots scored and each spot's marker-positive fraction.
    marker_label : str
        How the restriction reads in exports (channel, threshold, min. area).
    marker_settings : dict or None
        The restriction's settings as saved in sessions.
    marker_source : MultiplexImage, TissueImage or None
        The image the current spot mask was computed from.
    last_table : pandas.DataFrame
        The last ROI table (empty while there are no scores).
    measurements : pandas.DataFrame
        Per-ROI area, total UMIs, mean UMIs per spot and genes detected, rows
        as ``last_table`` (empty when unknown).
    rois : list of Roi
        The ROIs at the last table update.
    comparison : ClassComparison or None
        The last tumour vs stroma comparison.
    """

    #: a message for the status line
    status = Signal(str)
    #: a new spots layer (or None) was chosen; ``scorer`` is already set
    spots_changed = Signal(object)
    #: a new ROI layer (or None) was chosen; ``roi_layer`` is already set
    rois_changed = Signal(object)
    #: someone changed ROIs, classes or the restriction: recompute the table
    refresh_requested = Signal()
    #: the ROIs on screen at a table update (before the table is computed)
    rois_seen = Signal(list)
    #: ``last_table`` / ``rois`` were recomputed
    table_changed = Signal()
    #: the ROI layer's features were replaced (napari resets the new-shape defaults)
    features_replaced = Signal(object)
    #: ``measurements`` were computed (after the edit burst)
    measurements_changed = Signal()
    #: ``scores`` were recomputed (or cleared): recolour the spots
    scores_changed = Signal()
    #: a class was added to ``classes``
    classes_changed = Signal()
    #: a signature made elsewhere (the Discover tab's genes) to score at once in the form
    signature_offered = Signal(object)

    def __init__(self) -> None:
        self.spots_layer: Points | None = None
        self.scorer: RoiScorer | None = None
        self.scores: SpotScores | None = None
        self.score_problem: str | None = None
        self.roi_layer: Shapes | None = None
        self.classes: list[str] = list(DEFAULT_CLASSES)
        self.spot_mask: np.ndarray | None = None
        self.marker_fractions: np.ndarray | None = None
        self.marker_label = ""
        self.marker_settings: dict | None = None
        self.marker_source: Any = None
        self.last_table: pd.DataFrame = pd.DataFrame()
        self.measurements: pd.DataFrame = pd.DataFrame()
        self.rois: list[Roi] = []
        self.comparison: ClassComparison | None = None

    def report(self, err: Exception) -> None:
        """Show a problem in the status line and as a napari notification (never a crash)."""
        msg = str(err) if isinstance(err, RoiScoreError) else f"{type(err).__name__}: {err}"
        self.status.emit(f"problem: {msg}")
        show_error(f"ROI scores: {msg}")

    def run_file_action(self, action: Callable[[str], Any], path: str,
                        done: Callable[[Any, str], str] | None = None) -> None:
        """Run a file action chosen in a dialog; say what it did, or report its problem.

        Parameters
        ----------
        action : callable
            Takes the path; returns what it wrote or read.
        path : str
            The dialog's answer (empty if cancelled: nothing happens).
        done : callable, optional
            ``done(result, path)`` -> the sentence shown afterwards ("saved the
            ROI scores to …"); by default the files written are named.
        """
        if not path:
            return
        try:
            out = action(path)
        except (RoiScoreError, OSError) as err:
            self.report(err)
            return
        msg = done(out, path) if done is not None else f"done: {describe_files(out, path)}"
        self.status.emit(msg)
        show_info(f"ROI scores: {msg}")

    def table_with_measurements(self) -> pd.DataFrame:
        """``last_table`` with the measurement columns appended (when they match its rows)."""
        table, meas = self.last_table, self.measurements
        if table.empty or meas.empty or len(meas) != len(table):
            return table.copy()
        out = pd.concat([table.reset_index(drop=True), meas.reset_index(drop=True)], axis=1)
        for col in ("total_umis", "genes_detected"):  # counts are whole numbers (NA while not measured)
            if col in out:
                out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")
        return out

    def refresh(self) -> None:
        """Ask for the ROI table (and everything shown from it) to be recomputed now."""
        self.refresh_requested.emit()

    def remember_class(self, cls: str) -> str:
        """Normalise ``cls`` and add it to the known classes; return the normalised name."""
        cls = normalise_class(cls)
        if cls not in self.classes:
            self.classes.append(cls)
            self.classes_changed.emit()
        return cls

    def set_features(self, layer: Shapes | Points, feats: pd.DataFrame) -> None:
        """Set a layer's features (tabs restore the ROI layer's new-shape defaults)."""
        layer.features = feats
        if layer is self.roi_layer:
            self.features_replaced.emit(layer)

    def current_rois(self) -> list[Roi]:
        """ROIs of the chosen Shapes layer, in the spots layer's pixel frame."""
        layer, spots_layer = self.roi_layer, self.spots_layer
        if layer is None:
            return []
        feats = layer.features
        same = spots_layer is None or same_transform(layer, spots_layer)
        data = []
        for verts in layer.data:
            v = np.asarray(verts, dtype=float)[:, -2:]
            if not same:
                v = np.array([spots_layer.world_to_data(layer.data_to_world(p))[-2:] for p in v])
            data.append(v)

        def col(key: str) -> list | None:
            return list(feats[key]) if key in feats else None

        return rois_from_shapes(data, list(layer.shape_type), col("name"), col("class"), col("holes"))

    def roi_values(self, rois: list[Roi] | None = None) -> tuple[dict, dict]:
        """Spot scores per ROI (respecting the marker restriction) and each ROI's class."""
        rois = self.current_rois() if rois is None else rois
        values: dict = {}
        classes: dict = {}
        if self.scorer is None or self.scores is None:
            return values, classes
        for roi in rois:
            if roi.problem:
                continue
            m = self.scorer.members(roi, sort=False)  # cached by the table just before
            if self.spot_mask is not None:
                m = m[self.spot_mask[m]]
            values[roi.name] = self.scores.values[m]
            classes[roi.name] = roi.roi_class
        return values, classes
