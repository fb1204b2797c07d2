"""How spots are coloured: by score, by one gene, by ROI membership, or not at all.

The "colour spots by" control sits under the form.  Whatever is coloured,
the colour limits are recomputed with
:func:`~napari_roiscore.spots.colour_scale.colour_limits` each time the values
change (a new signature, method or gene): limits kept from an earlier quantity
painted most spots one colour.  The limits stay editable until the next change.

The values also go onto the spots layer's features (``barcode``, ``score``,
the gene, ``ROI``) so napari's status bar shows them for the spot under the
mouse.  The colour bar is napari's own (``layer.face_colorbar``, or
``border_colorbar`` for outlines); its quantity and units are written in the
canvas text overlay, and the ROI classes in a legend in the dock.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, LineEdit
from napari.layers import Points
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QCompleter

from napari_roiscore._layer_data import VIEW_KEY, SPOTS_KEY
from napari_roiscore._qt.state import DockState
from napari_roiscore._qt.workers import let_go_when_finished
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.rois.classes import class_colour_rgba
from napari_roiscore.spots.colour_scale import ColourScale, gene_scale, score_scale
from napari_roiscore.spots.gene_values import gene_choices, gene_index, gene_values
from napari_roiscore.spots.view import total_counts

#: what spots can be coloured by
BY_CHOICES = ["score", "gene", "ROI", "none"]
#: diverging map used over H&E: blue-green / brown, none of eosin's pinks
BRIGHTFIELD_DIVERGING = "BrBG_r"
#: spots outside every ROI, when coloured by ROI
OUTSIDE = [0.6, 0.6, 0.6, 0.25]
#: the plain outline of spots not coloured
PLAIN_BORDER = [1.0, 1.0, 1.0, 0.55]


def _score_scale(scores) -> ColourScale:
    """Colour scale of spot scores, labelled with the signature (typed genes: which ones)."""
    method = scores.method if scores.method != "pseudobulk" else "mean_z"
    name = scores.signature.label
    if name == "custom signature":  # typed genes: say which
        genes = list(scores.signature.up)
        name = ", ".join(genes[:4]) + (f" +{len(genes) - 4}" if len(genes) > 4 else "")
    return score_scale(scores.values, method, name, scores.params)


def legend_html(classes: list[str]) -> str:
    """ROI classes as coloured squares and names (rich text for a QLabel)."""
    parts = []
    for c in classes:
        r, g, b, _ = (int(round(255 * x)) for x in class_colour_rgba(c))
        parts.append(f'<span style="color:#{r:02x}{g:02x}{b:02x}">&#9632;</span>&nbsp;{escape(c)}')
    return "ROI classes: " + " &nbsp; ".join(parts) if parts else ""


class SpotColours:
    """The "colour spots by" control and everything it draws.

    Parameters
    ----------
    viewer : napari.Viewer
        Its text overlay shows the coloured quantity next to the colour bar.
    state : DockState
        Followed for the spots layer, the scores and the ROIs.

    Attributes
    ----------
    scale : ColourScale or None
        The quantity coloured now (None for ROI membership or no colour).
    """

    def __init__(self, viewer, state: DockState) -> None:
        self.viewer = viewer
        self.state = state
        self.scale: ColourScale | None = None
        self._setting_limits = False
        self._gene_cols: list[str] = []
        self._totals: tuple[int, np.ndarray] | None = None  # (id of the spot table, counts per spot)
        self._gene_request: tuple | None = None  # the large-table gene colouring wanted (worker result)
        self._gene_worker = None
        self.by_combo = ComboBox(label="colour spots by", choices=BY_CHOICES, value="score")
        self.gene_edit = LineEdit(label="gene")
        self.gene_edit.native.setPlaceholderText("type a gene (completes)")
        self.style_combo = ComboBox(label="spots drawn", choices=["filled", "outline"], value="filled")
        self.low = FloatSpinBox(label="colour from", min=-1e12, max=1e12, step=0.1)
        self.high = FloatSpinBox(label="colour to", min=-1e12, max=1e12, step=0.1)
        for box in (self.low, self.high):
            box.native.setDecimals(3)
        self.legend = Label(value="")
        self.legend.native.setTextFormat(Qt.TextFormat.RichText)
        self.container = Container(widgets=[self.by_combo, self.gene_edit, self.style_combo,
                                            self.low, self.high, self.legend], labels=True)
        self._completer = QCompleter([], self.gene_edit.native)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setFilterMode(Qt.MatchFlag.MatchStartsWith)
        self.gene_edit.native.setCompleter(self._completer)
        self._roi_timer = QTimer(self.container.native)  # ROI membership follows edits, after the burst
        self._roi_timer.setSingleShot(True)
        self._roi_timer.setInterval(150)
        self._roi_timer.timeout.connect(self.update_roi_column)

        self.by_combo.changed.connect(lambda *_: self.apply())
        self.style_combo.changed.connect(lambda *_: self.apply())
        self.gene_edit.native.editingFinished.connect(self._on_gene)
        self._completer.activated.connect(lambda *_: self._on_gene())
        self.low.changed.connect(self._on_limits_edited)
        self.high.changed.connect(self._on_limits_edited)
        state.scores_changed.connect(self.apply)
        state.spots_changed.connect(self._on_spots)
        state.table_changed.connect(lambda: self._roi_timer.start())
        state.classes_changed.connect(self._show_legend)
        state.rois_changed.connect(lambda *_: self._show_legend())
        self._show_legend()

    # -- inputs -------------------------------------------------------------
    def _on_spots(self, layer: Points | None) -> None:
        names = gene_choices(layer.metadata[SPOTS_KEY]) if layer is not None else []
        self._completer.model().setStringList(names)
        self._gene_cols = []
        self.apply()

    def _on_gene(self) -> None:
        if self.gene_edit.value.strip():
            if self.by_combo.value != "gene":
                self.by_combo.value = "gene"  # applies
            else:
                self.apply()

    def colour_by_gene(self, gene: str) -> None:
        """Colour the spots by ``gene`` (as if typed in the gene box)."""
        self.gene_edit.value = gene
        self._on_gene()

    def _on_limits_edited(self, *_) -> None:
        if self._setting_limits:
            return
        layer = self.state.spots_layer
        lo, hi = float(self.low.value), float(self.high.value)
        if layer is None or self.scale is None or hi <= lo:
            return
        if VIEW_KEY in layer.metadata:  # a large table: its raster and markers follow
            from napari_roiscore._qt.spot_view_dock import set_colour_limits

            set_colour_limits(layer, (lo, hi))
            return
        if self.style_combo.value == "filled":
            layer.face_contrast_limits = (lo, hi)
        else:
            layer.border_contrast_limits = (lo, hi)

    def set_limits(self, low: float, high: float) -> None:
        """Colour limits chosen by hand (kept until the coloured values change)."""
        self.low.value, self.high.value = low, high
        self._on_limits_edited()

    # -- drawing ------------------------------------------------------------
    def apply(self, *_) -> None:
        """Colour the spots by the chosen quantity, with limits recomputed from its values."""
        layer = self.state.spots_layer
        if layer is None:
            self._show_scale(None)
            return
        by = self.by_combo.value
        self.gene_edit.visible = by == "gene"
        if VIEW_KEY in layer.metadata:  # a large table: its raster and markers in view
            self._apply_view(layer, by)
            return
        try:
            column, values, scale = self._quantity(layer, by)
        except RoiScoreError as err:
            self.state.report(err)
            column, values, scale = None, None, None
        if by == "ROI":
            self.update_roi_column(recolour=True)
            self._show_scale(None)
            return
        if column is None:
            self._plain(layer)
            self._show_scale(None)
            return
        feats = layer.features.copy()
        feats[column] = values
        self.state.set_features(layer, feats)
        filled = self.style_combo.value == "filled"
        scale = self._readable_on_image(scale)
        limits = (scale.low, scale.high)
        if filled:
            layer.face_colormap = scale.colormap
            layer.face_color = column
            layer.face_contrast_limits = limits
            layer.border_color = [0.0, 0.0, 0.0, 0.0]
            layer.opacity = 0.8
        else:
            layer.border_colormap = scale.colormap
            layer.border_color = column
            layer.border_contrast_limits = limits
            layer.face_color = [1.0, 1.0, 1.0, 0.0]
            layer.border_width = 0.25
            layer.opacity = 0.9
        layer.face_colorbar.visible = filled
        layer.border_colorbar.visible = not filled
        self._show_scale(scale)

    def _apply_view(self, layer: Points, by: str) -> None:
        """Colour a large table's raster + markers view (every spot, no subsampling)."""
        spots = layer.metadata[SPOTS_KEY]
        scale = None
        self._gene_request = None  # a gene still computing is no longer wanted (unless asked again below)
        try:
            if by == "score" and self.state.scores is not None and len(self.state.scores.values) == spots.n_spots:
                scale = self._draw_view(layer, self.state.scores.values, _score_scale(self.state.scores))
            elif by == "gene" and self.gene_edit.value.strip():
                idx = gene_index(spots, self.gene_edit.value.strip())  # an unknown gene: said at once
                self._gene_in_worker(layer, spots, idx)
                return  # the colour scale is shown when the worker returns
            elif by == "ROI":
                self.state.report(RoiScoreError(
                    f"Colouring by ROI is not offered for large tables ({spots.n_spots:,} spots).",
                    "The ROI outlines show membership; hover a spot to see the ROI(s) holding it."))
        except RoiScoreError as err:
            self.state.report(err)
        self._show_scale(scale)

    def _draw_view(self, layer: Points, values: np.ndarray, scale: ColourScale) -> ColourScale:
        """Colour a large table's view with the dock's scale (raster, markers, colour bar alike)."""
        from napari_roiscore._qt.spot_view_dock import colour_spots

        scale = self._readable_on_image(scale)
        colour_spots(layer, values, scale.label, scale.colormap, (scale.low, scale.high),
                     filled=self.style_combo.value == "filled")
        return scale

    def _gene_in_worker(self, layer: Points, spots, idx: int) -> None:
        """A large table's gene values (one column of millions of spots) in a worker thread.

        On return (GUI thread) the view gets the values, whose raster is rebuilt
        in the view's own worker (``_qt/spot_view.py``); a result that is no
        longer wanted (another gene, quantity or table meanwhile) is dropped.
        """
        from napari.qt.threading import thread_worker

        view = layer.metadata.get(VIEW_KEY)
        totals = view.totals if view is not None and view.spots is spots else None
        if totals is None and self._totals is not None and self._totals[0] == id(spots):
            totals = self._totals[1]
        request = (id(layer), id(spots), idx)
        self._gene_request = request

        @thread_worker(progress={"total": 0, "desc": f"Colouring by {spots.gene_names[idx]}"})
        def compute():
            sums = totals if totals is not None else total_counts(spots)
            values = gene_values(spots, idx, normalised=True, totals=sums)
            return sums, values, gene_scale(values, spots.gene_names[idx])

        def _returned(result) -> None:
            sums, values, scale = result
            if totals is None:
                self._totals = (id(spots), sums)
            if (self._gene_request != request or self.state.spots_layer is not layer
                    or layer.metadata.get(SPOTS_KEY) is not spots or self.by_combo.value != "gene"):
                return  # something else is coloured now
            self._show_scale(self._draw_view(layer, values, scale))

        worker = compute()
        worker.returned.connect(_returned)
        worker.errored.connect(self.state.report)
        self._gene_worker = worker  # kept alive until it returns
        let_go_when_finished(worker)  # napari keeps finished workers for the session
        worker.start()

    def _quantity(self, layer: Points, by: str) -> tuple[str | None, np.ndarray | None, ColourScale | None]:
        state = self.state
        if by == "score":
            scores = state.scores
            if scores is None or len(scores.values) != len(layer.data):
                return None, None, None
            return "score", scores.values, _score_scale(scores)
        if by == "gene":
            name = self.gene_edit.value.strip()
            if not name:
                return None, None, None
            spots = layer.metadata[SPOTS_KEY]
            idx = gene_index(spots, name)
            gene = spots.gene_names[idx]
            values = gene_values(spots, idx, normalised=True, totals=self._spot_totals(spots))
            counts = gene_values(spots, idx, normalised=False)
            self._drop_gene_columns(layer, keep=gene)
            column = f"{gene} (log1p per 10k)"
            feats = layer.features.copy()
            feats[f"{gene} counts"] = counts
            self.state.set_features(layer, feats)
            self._gene_cols = [column, f"{gene} counts"]
            return column, values, gene_scale(values, gene)
        return None, None, None

    def _readable_on_image(self, scale: ColourScale) -> ColourScale:
        """Over a brightfield (H&E) image, a diverging map without red or pink (eosin's colours)."""
        from dataclasses import replace

        brightfield = any(getattr(ly, "rgb", False) and ly.visible for ly in self.viewer.layers)
        if brightfield and scale.centred and scale.colormap == "coolwarm":
            return replace(scale, colormap=BRIGHTFIELD_DIVERGING)
        return scale

    def _spot_totals(self, spots) -> np.ndarray:
        """Total counts per spot: a large table's view summed them once (in its worker); else summed in blocks."""
        layer = self.state.spots_layer
        view = layer.metadata.get(VIEW_KEY) if layer is not None else None
        if view is not None and view.spots is spots and view.totals is not None:
            return view.totals
        if self._totals is None or self._totals[0] != id(spots):
            self._totals = (id(spots), total_counts(spots))
        return self._totals[1]

    def _drop_gene_columns(self, layer: Points, keep: str) -> None:
        old = [c for c in self._gene_cols if c in layer.features and not c.startswith(f"{keep} ")]
        if old:
            self.state.set_features(layer, layer.features.drop(columns=old))

    def _plain(self, layer: Points) -> None:
        layer.face_color = [1.0, 1.0, 1.0, 0.0]
        layer.border_color = PLAIN_BORDER
        layer.border_width = 0.08
        layer.face_colorbar.visible = False
        layer.border_colorbar.visible = False

    def _show_scale(self, scale: ColourScale | None) -> None:
        self.scale = scale
        self._setting_limits = True
        try:
            if scale is not None:
                self.low.value, self.high.value = scale.low, scale.high
        finally:
            self._setting_limits = False
        self.low.enabled = self.high.enabled = scale is not None
        overlay = self.viewer.canvas.overlays.text
        if scale is not None:
            overlay.text = f"spot colour: {scale.label}"
            overlay.position = "top_left"  # the colour bar sits top right
            overlay.visible = True
        elif overlay.text.startswith("spot colour:") or not overlay.text:
            overlay.text = "spot colour: ROI class" if self.by_combo.value == "ROI" else ""
            overlay.visible = bool(overlay.text)
        self._show_legend()

    def _show_legend(self, *_) -> None:
        layer = self.state.roi_layer
        classes = []
        if layer is not None and "class" in layer.features:
            classes = list(dict.fromkeys(str(c) for c in layer.features["class"]))
        self.legend.value = legend_html(classes or list(self.state.classes))

    # -- ROI membership -----------------------------------------------------
    def update_roi_column(self, recolour: bool | None = None) -> None:
        """Write the ROI(s) holding each spot into the spots layer's ``ROI`` column."""
        state, layer = self.state, self.state.spots_layer
        if layer is None or state.scorer is None or VIEW_KEY in layer.metadata:
            return  # a large table's markers are only those in view: hover tells the ROI instead
        n = len(layer.data)
        names = np.full(n, "", dtype=object)
        classes = np.full(n, "", dtype=object)
        for roi in state.rois:
            if roi.problem:
                continue
            m = state.scorer.members(roi, sort=False)
            m = m[m < n]
            names[m] = np.where(names[m] == "", roi.name, names[m] + ", " + roi.name)
            classes[m] = roi.roi_class
        feats = layer.features
        if "ROI" in feats and np.array_equal(feats["ROI"].to_numpy(dtype=object), names) and not recolour:
            return
        feats = feats.copy()
        feats["ROI"] = pd.Series(names, index=feats.index, dtype=object)
        state.set_features(layer, feats)
        if recolour or (recolour is None and self.by_combo.value == "ROI"):
            lookup = {c: (class_colour_rgba(c) if c else OUTSIDE) for c in set(classes)}
            colours = np.array([lookup[c] for c in classes], dtype=float).reshape(n, 4)
            layer.face_color = colours
            layer.border_color = [0.0, 0.0, 0.0, 0.0]
            layer.opacity = 0.8
            layer.face_colorbar.visible = False
            layer.border_colorbar.visible = False
        self._show_legend()

