"""ROI classes: the built-in tumour/stroma plus any class the user adds.

Every class has a stable colour: built-ins use :data:`roi.CLASS_COLOURS`; a
user class gets a palette colour chosen from its name (the same name gives
the same colour in every session and on every machine).
"""

from __future__ import annotations

import zlib

from napari_roiscore.rois.roi import CLASS_COLOURS, DEFAULT_CLASSES

__all__ = ["DEFAULT_CLASSES", "class_colour", "class_colour_rgba", "normalise_class", "qupath_class_name"]

#: QuPath's built-in classes, as QuPath spells them (its class names are case-sensitive)
QUPATH_CLASSES = ("Tumor", "Stroma", "Immune cells", "Necrosis", "Other", "Region*", "Ignore*",
                  "Positive", "Negative")

# colour-blind-friendlier palette avoiding the tumour red / stroma green
_PALETTE = [
    (0.35, 0.6, 1.0),
    (1.0, 0.65, 0.0),
    (0.8, 0.45, 1.0),
    (0.0, 0.85, 0.85),
    (1.0, 0.85, 0.2),
    (1.0, 0.5, 0.75),
    (0.65, 0.65, 0.65),
]


def normalise_class(name: object) -> str:
    """Class names are trimmed, lower-case text; empty means "other"."""
    text = str(name).strip().lower() if name is not None else ""
    if text in ("", "nan", "none"):
        return "other"
    return {"tumor": "tumour"}.get(text, text)


def qupath_class_name(name: str) -> str:
    """The name to export for class ``name``: QuPath's own spelling for its built-in classes.

    An exported "tumour" ROI must land in QuPath's "Tumor" class, not in a new
    class "tumour"; other (user) classes are written as they are.
    """
    name = normalise_class(name)
    for qp in QUPATH_CLASSES:
        if normalise_class(qp) == name:
            return qp
    return name


def class_colour(name: str) -> tuple[float, float, float]:
    """RGB (0..1) of class ``name``."""
    name = normalise_class(name)
    if name in CLASS_COLOURS:
        return CLASS_COLOURS[name]
    return _PALETTE[zlib.crc32(name.encode("utf-8")) % len(_PALETTE)]


def class_colour_rgba(name: str) -> list[float]:
    return [*class_colour(name), 1.0]
