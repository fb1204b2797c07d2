"""Housekeeping on the ROI Shapes layer: feature columns, names, colours, frame.

Each function takes the layer and a ``set_features`` callable (normally
:meth:`DockState.set_features <napari_roiscore._qt.state.DockState.set_features>`)
so the dock can restore napari's new-shape defaults after features are replaced.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from napari.layers import Points, Shapes

from napari_roiscore._qt.state import same_transform
from napari_roiscore.rois.classes import class_colour_rgba
from napari_roiscore.rois.shapes import next_roi_name

SetFeatures = Callable[[Shapes, pd.DataFrame], None]


def add_missing_columns(layer: Shapes, set_features: SetFeatures) -> None:
    """Give a plain Shapes layer the ``name``, ``class`` and ``holes`` columns ROIs need."""
    feats = layer.features
    missing = [c for c in ("name", "class", "holes") if c not in feats]
    if not missing:
        return
    feats = feats.copy()
    n = len(layer.data)
    # text columns, also on an empty layer (an empty list would become float64)
    if "name" in missing:
        feats["name"] = pd.Series([f"{i + 1:03d}" for i in range(n)], index=feats.index, dtype=object)
    if "class" in missing:
        feats["class"] = pd.Series(["other"] * n, index=feats.index, dtype=object)
    if "holes" in missing:
        feats["holes"] = pd.Series([""] * n, index=feats.index, dtype=object)
    set_features(layer, feats)


def place_on_spots(layer: Shapes | None, spots: Points | None) -> None:
    """Put ROIs read from GeoJSON into the spots layer's frame.

    GeoJSON ROIs are in the slide's level-0 pixels, the spots' data frame (as
    ``roiscore score`` reads them), but the reader cannot know the pixel size:
    such a layer arrives with scale 1 and no units.  Without this, the ROIs
    of a Visium slide (µm scale) sat far from their spots and held none.
    """
    if layer is None or spots is None or not layer.metadata.get("roiscore_rois"):
        return
    unplaced = (all(str(u) == "pixel" for u in layer.units) and np.allclose(layer.scale[-2:], 1)
                and np.allclose(layer.translate[-2:], 0) and np.allclose(layer.affine.affine_matrix, np.eye(3)))
    if not unplaced or same_transform(layer, spots):
        return
    layer.units = spots.units
    layer.scale = spots.scale
    layer.translate = spots.translate
    layer.rotate = spots.rotate
    layer.shear = spots.shear
    layer.affine = spots.affine


def drop_stale_rows(layer: Shapes, set_features: SetFeatures) -> None:
    """Drop feature rows (and colours) left behind by a discarded, unfinished shape.

    napari 0.9 discards a polygon or path finished with too few vertices
    (``Shapes._finish_drawing``) without removing its feature row and colours;
    the next ROI drawn would then inherit that shape's name and class.  The
    discarded shape is always the last one (the one being drawn).
    """
    n = len(layer.data)
    if len(layer.features) > n:
        set_features(layer, layer.features.iloc[:n].reset_index(drop=True))
    view = getattr(layer, "_data_view", None)
    for attr in ("_edge_color", "_face_color"):
        colours = getattr(view, attr, None)
        if colours is not None and len(colours) > n:
            setattr(view, attr, colours[:n])


def rename_copies(layer: Shapes, known: int, set_features: SetFeatures) -> None:
    """Give pasted copies (napari Ctrl+C / Ctrl+V) a new name, so each is a new ROI.

    napari pastes a shape with the original's features; sharing the name
    would silently merge the copy into the original ROI.  Copies of one
    multi-part ROI pasted together stay one (new) ROI.

    Parameters
    ----------
    layer : Shapes
        The ROI layer.
    known : int
        How many shapes the layer had at the last update (the rest are new).
    set_features : callable
        Sets the layer's features.
    """
    if "name" not in layer.features:
        return
    n = len(layer.data)
    known = min(known, n)
    if known in (0, n):
        return
    names = [str(x) for x in layer.features["name"]]
    old = set(names[:known])
    if not any(nm in old for nm in names[known:]):
        return
    feats = layer.features.copy()
    taken = list(names)
    new_name: dict[str, str] = {}
    for i in range(known, n):
        if names[i] in old:
            if names[i] not in new_name:
                new_name[names[i]] = next_roi_name(taken)
                taken.append(new_name[names[i]])
            feats.loc[feats.index[i], "name"] = new_name[names[i]]
    set_features(layer, feats)


def ensure_names(layer: Shapes, set_features: SetFeatures) -> None:
    """Give unnamed shapes the next free 3-digit name (e.g. a freshly drawn ROI)."""
    if "name" not in layer.features:
        return
    names = [str(x) for x in layer.features["name"]]
    empty = [i for i, n in enumerate(names) if n.strip() in ("", "nan", "None")]
    if not empty:
        return
    feats = layer.features.copy()
    for i in empty:
        names[i] = next_roi_name(names)
        feats.loc[feats.index[i], "name"] = names[i]
    if "holes" in feats:
        feats["holes"] = feats["holes"].fillna("").astype(str).replace("nan", "")
    set_features(layer, feats)


def recolour(layer: Shapes) -> None:
    """Outline each shape in its class colour."""
    if not len(layer.data) or "class" not in layer.features:
        return
    want = np.array([class_colour_rgba(c) for c in layer.features["class"]])
    have = np.asarray(layer.edge_color)
    if have.shape != want.shape or not np.allclose(have, want):
        layer.edge_color = want


def tidy(layer: Shapes, known: int, set_features: SetFeatures) -> None:
    """All housekeeping after an edit: stale rows, pasted copies, unnamed shapes, colours."""
    drop_stale_rows(layer, set_features)
    rename_copies(layer, known, set_features)
    ensure_names(layer, set_features)
    recolour(layer)
