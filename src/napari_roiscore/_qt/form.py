"""The form above the dock's tabs: spots and ROI layers, signature, method, class, status."""

from __future__ import annotations

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
        self.spots_combo = ComboBox(label="spots", choices=self._spots_choices, nullable=True)
        self.rois_combo = ComboBox(label="ROIs", choices=self._roi_choices, nullable=True)
        self.signature_edit = LineEdit(label="signature", value=", ".join(EXAMPLE_PANEL.up))
        self.signature_note = Label(value=signature_note(example=True))
        self.load_signature_button = PushButton(text="Load signature (GMT / YAML / JSON)…")
        self.method_combo = ComboBox(label="method", choices=METHOD_CHOICES, value="mean_z")
        self.class_combo = ComboBox(label="class", choices=lambda _w=None: list(state.classes), value="tumour")
        self.status = Label(value="")
        self.container = Container(
            widgets=[self.spots_combo, self.rois_combo, self.signature_edit, self.signature_note,
                     self.load_signature_button, self.method_combo, self.class_combo, self.status],
            labels=True,
        )
        self._sig_timer = QTimer(self.container.native)
        self._sig_timer.setSingleShot(True)
        self._sig_timer.setInterval(400)
        self._sig_timer.timeout.connect(self.inputs_changed.emit)
        self.signature_edit.changed.connect(lambda *_: self._sig_timer.start())
        self.method_combo.changed.connect(lambda *_: self.inputs_changed.emit())
        self.load_signature_button.changed.connect(lambda *_: self._load_signature_dialog())
        state.status.connect(self._show_status)
        state.classes_changed.connect(self.class_combo.reset_choices)

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
        genes = [g.upper() for g in parse_gene_list(self.signature_edit.value)]
        loaded = self.loaded_signature
        if loaded is not None and genes == [g.upper() for g in loaded.up]:
            extra = f", down: {', '.join(loaded.down)}" if loaded.down else ""
            extra += ", weighted" if loaded.weights else ""
            self.signature_note.value = f"from file: {loaded.label}{extra}"
            return loaded
        is_example = genes == [g.upper() for g in EXAMPLE_PANEL.up]
        self.signature_note.value = signature_note(is_example)
        if is_example:
            return EXAMPLE_PANEL
        return Signature(name="custom signature", up=tuple(parse_gene_list(self.signature_edit.value)))

    def show_signature(self, signature: Signature) -> None:
        """Score ``signature`` (e.g. from a file or a session): its up genes go into the field."""
        self.loaded_signature = signature
        self.signature_edit.value = ", ".join(signature.up)

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
        self.show_signature(sigs[index])
        self._sig_timer.stop()
        self.inputs_changed.emit()
        return sigs[index]

    def _load_signature_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.container.native, "Load signature", "",
                                              "Signatures (*.gmt *.yaml *.yml *.json)")
        self.state.run_file_action(self.load_signature, path)
