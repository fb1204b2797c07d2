"""napari layer-data tuples built from core objects (no napari import here).

Readers, the sample-data contribution and the demo all create their layers
through these functions, so that every entry point draws the same thing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_roiscore.images.multiplex import MultiplexImage
from napari_roiscore.rois.roi import Roi
from napari_roiscore.rois.classes import class_colour_rgba
from napari_roiscore.rois.shapes import shapes_from_rois
from napari_roiscore.spots.first_look import FirstLook
from napari_roiscore.spots.raster import Placement
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.spots.view import MARKER_LIMIT, POINTS_LAYER_LIMIT, SpotView, length_text

__all__ = ["FIRST_LOOK_KEY", "IMAGE_KEY", "SPOTS_KEY", "VIEW_KEY", "first_look_layer", "holds_spot_view",
           "image_layers", "roi_layer", "spots_layer", "spots_layers"]

#: key of the SpotTable in the Points layer's metadata
SPOTS_KEY = "roiscore_spots"
#: key of the MultiplexImage in each channel layer's metadata
IMAGE_KEY = "roiscore_image"
#: key of the SpotView (raster + markers in view) in both layers of a large spot table
VIEW_KEY = "roiscore_spot_view"
#: key of the path a first-look preview was read from (shown while that slide is read; it then becomes
#: that slide's raster layer, or is removed if the read fails)
FIRST_LOOK_KEY = "roiscore_first_look"
#: key of the canvas text saying what a first look shows (the overlay, while it is on screen)
FIRST_LOOK_TEXT_KEY = "roiscore_first_look_text"


def _frame(px: float | None) -> dict:
    """scale (µm per pixel) and units, so napari's scale bar reads micrometres."""
    if px:
        return {"scale": (px, px), "units": ("um", "um")}
    return {"scale": (1.0, 1.0)}


#: channels whose coarsest level holds at most this many pixels get contrast limits from their data
CONTRAST_SAMPLE_PIXELS = 4_000_000


def _contrast_limits(levels: list) -> list[float]:
    """Display range of one channel: 0 .. its 99.9th percentile (at least 1).

    Sparse ion counts (MIBI, IMC) and 16-bit images that use a small part of
    their range would look black against the dtype's full range.  The
    percentile is taken on the coarsest pyramid level when it is small
    enough; otherwise the dtype's range is used (nothing is read).
    """
    dtype = np.dtype(levels[0].dtype)
    full = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    small = levels[-1]
    if int(np.prod(small.shape)) > CONTRAST_SAMPLE_PIXELS:
        return [0.0, full]
    values = np.asarray(small)
    if not values.size:
        return [0.0, full]
    hi = float(np.percentile(values, 99.9))
    if dtype.kind in "ui" and hi < 1:
        hi = max(float(values.max()), 1.0)
    if dtype.kind not in "ui" and not hi > 0:
        hi = full
    return [0.0, hi]


def image_layers(image: MultiplexImage) -> list[tuple]:
    """One additive image layer per channel, coloured by its role.

    When some channels have a role (nuclei, cancer cells, vessels,
    macrophages), the others start hidden (grey): a 40-marker panel opens
    as the four-colour overlay.  Without any role every channel is shown.
    """
    any_role = any(r != "other" for r in image.roles)
    out = []
    for c, name in enumerate(image.channel_names):
        levels = image.channel_levels(c)
        out.append((
            levels if len(levels) > 1 else levels[0],
            {
                "name": f"{name} ({image.roles[c]})",
                "colormap": image.colormap(c),
                "blending": "additive",
                "contrast_limits": _contrast_limits(levels),
                "visible": image.roles[c] != "other" or not any_role,
                "multiscale": len(levels) > 1,
                **_frame(image.pixel_size_um),
                **({"affine": np.asarray(image.provenance["affine"])} if "affine" in image.provenance else {}),
                "metadata": {"roiscore_channel": name, "roiscore_role": image.roles[c], IMAGE_KEY: image},
            },
            "image",
        ))
    return out


def _points_style(spots: SpotTable, pixel_size_um: float | None) -> dict:
    """How spot markers look: outlines at their real diameter."""
    return {
        "size": spots.diameter_px,
        "symbol": "disc" if spots.shape == "circle" else "square",
        "face_color": [1, 1, 1, 0.0],
        "border_color": [1, 1, 1, 0.55],
        "border_width": 0.08,
        "border_width_is_relative": True,
        "opacity": 0.9,
        **_frame(pixel_size_um or spots.pixel_size_um),
    }


def spots_layer(spots: SpotTable, name: str = "spots", pixel_size_um: float | None = None) -> tuple:
    """Spots drawn as outlines at their real diameter."""
    return (
        spots.yx,
        {
            "name": name,
            **_points_style(spots, pixel_size_um),
            "features": {"barcode": np.asarray(spots.adata.obs_names, dtype=object)},
            "metadata": {SPOTS_KEY: spots},
        },
        "points",
    )


def spots_layers(spots: SpotTable, name: str = "spots", pixel_size_um: float | None = None,
                 marker_limit: int = MARKER_LIMIT, build_now: bool = False,
                 points_limit: int | None = None, first_look: FirstLook | None = None) -> list[tuple]:
    """Layers that draw every spot at any size.

    Up to ``points_limit`` spots the Points layer of :func:`spots_layer`
    (default: :data:`POINTS_LAYER_LIMIT` with the default ``marker_limit``,
    else ``marker_limit``, so a small marker limit gives the raster view).
    More: an Image layer (multiscale raster of the spot values: one pixel per
    bin for a square grid, the mean per tile otherwise) plus a Points layer
    that carries the SpotTable (``SPOTS_KEY``) and, once the napari side
    (``_qt/spot_view.py``) is attached, holds markers of every spot in view
    when at most ``marker_limit`` are.

    By default nothing heavy is computed here: the raster starts as an empty
    placeholder over the spots (named "… (building raster…)") and the napari
    side builds a preview and then the full raster in a worker thread.
    ``build_now=True`` builds the full raster before returning (no napari needed).
    ``first_look``: the slide's first look (same file, read before the table), whose
    totals and preview the view reuses instead of computing them again.
    """
    if points_limit is None:
        points_limit = POINTS_LAYER_LIMIT if marker_limit == MARKER_LIMIT else marker_limit
    if spots.n_spots <= points_limit:
        return [spots_layer(spots, name=name, pixel_size_um=pixel_size_um)]
    px = pixel_size_um or spots.pixel_size_um
    make = SpotView.of if build_now else SpotView.pending
    view = make(spots, marker_limit=marker_limit, pixel_size_um=px, name=name)
    if first_look is not None and first_look.n_spots == spots.n_spots and not view.built:
        view.values = view.totals = first_look.totals
        view.ready_preview = first_look.image
    return [raster_layer(view, name=name, pixel_size_um=px), view_points_layer(view, name, px)]


def holds_spot_view(layer_data: list[tuple]) -> bool:
    """True when reader layer data holds a large table's view (raster + markers), which
    the napari side must attach to the camera (``_qt.spot_view.install_spot_views``)."""
    return any(VIEW_KEY in kw.get("metadata", {}) for _, kw, _ in layer_data)


def raster_placement(where: SpotView | Placement, pixel_size_um: float | None) -> dict:
    """scale/translate (or affine) putting a raster's pixels on the spots, in µm when known."""
    s = pixel_size_um or 1.0
    pl = where if isinstance(where, Placement) else where.binning.placement
    units = {"units": ("um", "um")} if pixel_size_um else {}
    if pl.is_axis_aligned:
        return {"scale": tuple(s * v for v in pl.scale), "translate": tuple(s * v for v in pl.translate), **units}
    return {"affine": np.diag([s, s, 1.0]) @ pl.matrix, **units}


#: how a large table's raster is drawn (its first look too, which becomes that layer)
RASTER_STYLE = {"colormap": "viridis", "multiscale": True, "interpolation2d": "nearest", "opacity": 0.9}


def raster_name(view: SpotView, stage: str = "full") -> str:
    """The raster layer's name at each stage: "building", "preview" or "full"."""
    if stage == "building":
        return f"{view.name} (building raster…)"
    if stage == "preview":
        return f"PREVIEW · {view.name} (coarse tile means)"
    return f"{view.name} ({'bins' if view.is_grid else 'tile means'})"


def raster_layer(view: SpotView, name: str, pixel_size_um: float | None = None) -> tuple:
    """Image layer of the spot values (multiscale, NaN = no spot = transparent).

    A view still :meth:`~napari_roiscore.spots.view.SpotView.pending` gets
    an empty placeholder over the spots' bounding box.
    """
    if view.built:
        levels, limits, place, stage = view.pyramid(), view.contrast_limits(), view.binning.placement, "full"
    else:
        from napari_roiscore.spots.view_build import placeholder_raster

        empty = placeholder_raster(view.spots)
        levels, limits, place, stage = empty.levels, empty.contrast_limits, empty.placement, "building"
    view.name = name
    return (
        levels,
        {
            "name": raster_name(view, stage),
            **RASTER_STYLE,
            "contrast_limits": list(limits),
            **raster_placement(place, pixel_size_um),
            "metadata": {VIEW_KEY: view},
        },
        "image",
    )


def first_look_layer(look: FirstLook, name: str, source: str) -> tuple:
    """The first look at a large slide (its coarse preview), drawn while the rest of it is read.

    Placed, coloured and limited as the slide's own raster preview (same values, same tiles,
    the raster's style). ``source`` (the path read) is kept in the metadata: the slide read
    from there makes this layer its raster layer (``_qt/first_look.adopt_first_look``).
    """
    image = look.image
    tile = length_text(image.side, look.pixel_size_um)
    text = f"spots: PREVIEW, mean per {tile} tile · total counts · {look.n_spots:,} spots · reading the table…"
    return (
        image.levels,
        {
            "name": f"PREVIEW · {name} (coarse tile means; reading the table…)",
            **RASTER_STYLE,
            "contrast_limits": list(image.contrast_limits),
            **raster_placement(image.placement, look.pixel_size_um),
            "metadata": {FIRST_LOOK_KEY: source, FIRST_LOOK_TEXT_KEY: text},
        },
        "image",
    )


def view_points_layer(view: SpotView, name: str, pixel_size_um: float | None = None) -> tuple:
    """The spots' Points layer, empty until markers of the spots in view are shown."""
    return (
        np.empty((0, 2)),
        {
            "name": name,
            **_points_style(view.spots, pixel_size_um),
            "features": {"barcode": np.empty(0, dtype=object)},
            "metadata": {SPOTS_KEY: view.spots, VIEW_KEY: view},
        },
        "points",
    )


def roi_layer(rois: list[Roi], name: str = "ROIs", pixel_size_um: float | None = None,
              edge_width: float = 24.0) -> tuple:
    """A Shapes layer of ROI outlines, classes shown by edge colour."""
    sh = shapes_from_rois(rois)
    return (
        sh["data"],
        {
            "name": name,
            "shape_type": sh["shape_type"] or "polygon",
            "edge_color": [class_colour_rgba(c) for c in sh["class"]] or "red",
            "face_color": [0, 0, 0, 0],
            "edge_width": edge_width,
            **_frame(pixel_size_um),
            # text columns even when empty (an empty list would become float and refuse names)
            "features": pd.DataFrame({k: pd.Series(sh[k], dtype=object) for k in ("name", "class", "holes")}),
            "text": {"string": "{name} {class}", "color": "white", "size": 14,
                     "anchor": "upper_left"},
            "metadata": {"roiscore_rois": True},
        },
        "shapes",
    )
