"""The form above the dock's tabs: spots and ROI layers, signature, method, class, status."""

from __future__ import annotations

import re
from pathlib import Path

from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton
from napari.layers import Image, Points, Shapes
from psygnal import Signal
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog

from napari_roiscore._layer_data import IMAGE_KEY, SPOTS_KEY
from napari_roiscore._qt.state import DockState
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.methods import METHODS
from napari_roiscore.scoring.signature import EXAMPLE_PANEL, Signature, parse_gene_list

#: (label, "method[:option=value,...]") offered in the method box
METHOD_CHOICES = [
    (label, key) for key, (label, _) in METHODS.items() if key != "pseudobulk"
] + [
    ("GeoMx-style pseudobulk per ROI, CPM (live)", "pseudobulk:norm=cpm"),
    ("GeoMx-style pseudobulk per ROI, Q3 across ROIs", "pseudobulk:norm=q3"),
    ("GeoMx-style pseudobulk per ROI, CPM, singscore", "pseudobulk:norm=cpm,score=singscore"),
]


def parse_method(choice: str) -> tuple[str, dict]:
    """Split a method choice into the method and its options.

    Parameters
    ----------
    choice : str
        e.g. ``"pseudobulk:norm=q3"``.

    Returns
    -------
    tuple of (str, dict)
        e.g. ``("pseudobulk", {"norm": "q3"})``.
    """
    method, _, opts = str(choice).partition(":")
    params = dict(kv.split("=", 1) for kv in opts.split(",") if "=" in kv)
    return method, params


def image_choices(viewer) -> list:
    """(name, layer) of the viewer's image channels read by the plugin."""
    return [(ly.name, ly) for ly in viewer.layers if isinstance(ly, Image) and IMAGE_KEY in ly.metadata]


def split_down(text: str) -> tuple[list[str], list[str]]:
    """Typed genes as (up, down): ``"CD68, CD163; down: EPCAM"`` -> ``(["CD68", "CD163"], ["EPCAM"])``."""
    parts = re.split(r"(?i)\bdown\s*:", text or "", maxsplit=1)
    return parse_gene_list(parts[0]), parse_gene_list(parts[1] if len(parts) > 1 else "")


def gene_text(signature: Signature) -> str:
    """What the signature field shows for ``signature``: its up genes, then ``; down:`` and its down genes."""
    text = ", ".join(signature.up)
    return f"{text}; down: {', '.join(signature.down)}" if signature.down else text


def signature_note(example: bool) -> str:
    """The note under the signature field for typed genes."""
    if example:
        return "example panel (macrophage genes) — not the published signature; edit freely"
    return "custom signature"


class ScoringForm:
    """Layer pickers, the signature and method to score, the class of new ROIs, the status line.

    Parameters
    ----------
    viewer : napari.Viewer
        Its layers fill the pickers.
    state : DockState
        The status line shows ``state.status`` messages.
    """

    #: the signature or method changed: the spot scores must be recomputed
    inputs_changed = Signal()

    def __init__(self, viewer, state: DockState) -> None:
        self.viewer = viewer
        self.state = state
        self.loaded_signature: Signature | None = None
        self.loaded_from = "from file"
        self.spots_combo = ComboBox(label="spots", choices=self._spots_choices, nullable=True)
        self.rois_combo = ComboBox(label="ROIs", choices=self._roi_choices, nullable=True)
        self.new_roi_layer_button = PushButton(text="New ROI layer")
        self.new_roi_layer_button.tooltip = "An empty ROI layer on the spots: draw ROIs on it (outlines in class colours)."
        self.signature_edit = LineEdit(label="signature", value=", ".join(EXAMPLE_PANEL.up))
        self.signature_note = Label(value=signature_note(example=True))
        self.load_signature_button = PushButton(text="Load signature (GMT / YAML / JSON)…")
        #: the signatures of the loaded file, when it holds several
        self.signature_choice = ComboBox(label="signature in file", choices=[])
        self.signature_choice.visible = False
        self._file_signatures: list[Signature] = []
        self.method_combo = ComboBox(label="method", choices=METHOD_CHOICES, value="mean_z")
        self.class_combo = ComboBox(label="class", choices=lambda _w=None: list(state.classes), value="tumour")
        self.status = Label(value="")
        #: shown while the spots' positions are a layout (GeoMx AOIs without coordinates)
        self.layout_notice = Label(value="")
        self.layout_notice.visible = False
        self.container = Container(
            widgets=[self.spots_combo, self.rois_combo, self.new_roi_layer_button, self.signature_edit, self.signature_note,
                     self.load_signature_button, self.signature_choice, self.method_combo, self.class_combo, self.layout_notice, self.status],
            labels=True,
        )
        self._sig_timer = QTimer(self.container.native)
        self._sig_timer.setSingleShot(True)
        self._sig_timer.setInterval(400)
        self._sig_timer.timeout.connect(self.inputs_changed.emit)
        self.signature_edit.changed.connect(lambda *_: self._sig_timer.start())
        self.method_combo.changed.connect(lambda *_: self.inputs_changed.emit())
        self.load_signature_button.changed.connect(lambda *_: self._load_signature_dialog())
        self.signature_choice.changed.connect(self._on_signature_chosen)
        state.status.connect(self._show_status)
        state.spots_changed.connect(self._show_layout_notice)
        state.classes_changed.connect(self.class_combo.reset_choices)
        state.signature_offered.connect(self.offer_signature)

    def _show_layout_notice(self, layer) -> None:
        from napari_roiscore.rois.annotation_groups import has_real_coordinates

        spots = layer.metadata.get(SPOTS_KEY) if layer is not None else None
        layout = spots is not None and not has_real_coordinates(spots)
        self.layout_notice.value = (
            "⚠ positions are a layout, not tissue: these AOIs have no coordinates, so drawn ROIs "
            "group grid cells, not tissue. Use ROIs tab > ROIs from annotation column." if layout else "")
        self.layout_notice.native.setStyleSheet("color: #f0b000;" if layout else "")
        self.layout_notice.visible = layout

    def _show_status(self, text: str) -> None:
        self.status.value = text

    def _spots_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Points) and SPOTS_KEY in ly.metadata]

    def _roi_choices(self, _w=None) -> list:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Shapes)]

    def method(self) -> tuple[str, dict]:
        """The chosen method and its options."""
        return parse_method(self.method_combo.value)

    def signature(self) -> Signature:
        """The signature to score: the loaded file's (while its genes are shown), else the typed genes.

        Raises
        ------
        RoiScoreError
            If the typed gene list is empty or malformed.
        """
        up, down = split_down(self.signature_edit.value)
        typed = ([g.upper() for g in up], [g.upper() for g in down])
        loaded = self.loaded_signature
        if loaded is not None and typed == ([g.upper() for g in loaded.up], [g.upper() for g in loaded.down]):
            extra = f", down: {', '.join(loaded.down)}" if loaded.down else ""
            extra += ", weighted" if loaded.weights else ""
            self.signature_note.value = f"{self.loaded_from}: {loaded.label}{extra}"
            return loaded
        is_example = typed == ([g.upper() for g in EXAMPLE_PANEL.up], [])
        self.signature_note.value = signature_note(is_example)
        if is_example:
            return EXAMPLE_PANEL
        return Signature(name="custom signature", up=tuple(up), down=tuple(down))

    def show_signature(self, signature: Signature, source: str = "from file") -> None:
        """Score ``signature`` (from a file, a session or the Discover tab): its genes go into the field
        (down genes after ``; down:``); ``source`` heads the note under it."""
        self.loaded_signature, self.loaded_from = signature, source
        self.signature_edit.value = gene_text(signature)

    def offer_signature(self, signature: Signature) -> None:
        """Score a signature made in the Discover tab at once (it replaces a file's chooser)."""
        self._file_signatures = []
        self.signature_choice.visible = False
        self._use(signature, "from the Discover tab")

    def load_signature(self, path: str | Path, index: int = 0) -> Signature:
        """Use signature ``index`` of a GMT/YAML/JSON file (up genes shown in the field).

        Parameters
        ----------
        path : str or Path
            The signature file.
        index : int
            Which of the file's signatures (0 = the first).

        Returns
        -------
        Signature
        """
        from napari_roiscore.scoring.signature import load_signatures

        sigs = load_signatures(path)
        if not 0 <= index < len(sigs):
            raise RoiScoreError(f"{path}: no signature number {index + 1} (it holds {len(sigs)}).",
                                "Pick another one.")
        self._file_signatures = list(sigs)
        choice = self.signature_choice
        with choice.changed.blocked():
            choice.choices = [(f"{s.label} ({len(s.genes)} genes)", i) for i, s in enumerate(sigs)]
            choice.value = index
        choice.visible = len(sigs) > 1
        choice.tooltip = f"{len(sigs)} signatures in {Path(path).name}: choose the one to score."
        self._use(sigs[index])
        return sigs[index]

    def choose_signature(self, name: str) -> Signature:
        """Score the loaded file's signature called ``name`` (as ``--signature-name`` in the CLI)."""
        for i, sig in enumerate(self._file_signatures):
            if name in (sig.name, sig.label):
                self.signature_choice.value = i
                return sig
        names = ", ".join(s.name for s in self._file_signatures) or "none loaded"
        raise RoiScoreError(f"No signature called {name!r} in the loaded file (it holds: {names}).",
                            "Choose one of those names.")

    def _on_signature_chosen(self, index) -> None:
        if index is not None and 0 <= index < len(self._file_signatures):
            self._use(self._file_signatures[index])

    def _use(self, signature: Signature, source: str = "from file") -> None:
        self.show_signature(signature, source)
        self._sig_timer.stop()
        self.inputs_changed.emit()

    def _load_signature_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.container.native, "Load signature", "",
                                              "Signatures (*.gmt *.yaml *.yml *.json)")
        self.state.run_file_action(self.load_signature, path, lambda sig, p: (
            f"loaded the signature {sig.label} ({len(sig.genes)} genes) from {Path(p).name}"))
