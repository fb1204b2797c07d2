"""npe2 reader: spots from ``.h5ad`` or instrument folders, ROIs from (QuPath) GeoJSON,
multiplex images from OME-TIFF, QPTIFF or multi-page TIFF.

Folders recognised (dropped on napari or opened with File ▸ Open Folder):

* a Space Ranger ``outs`` folder (or its run folder) → slide image + spots;
* a Visium HD ``outs``/``binned_outputs``/``square_XXXum`` folder → image + square bins;
* a Xenium output folder → morphology image (if present) + cells;
* a CosMx flat-file export (``*_exprMat_file.csv``, ``*_metadata_file.csv``) → cells;
* a GeoMx NGS folder (DCC files, PKC, annotation sheet) → one spot per AOI
  (progress shown per DCC file);
* a GeoMx DSP export (``.xlsx`` with SegmentProperties + a count matrix, or a
  folder holding it or the two tables as text files) → one spot per AOI, drawn
  at its ROI centre with its own area;
* a SpatialData ``.zarr`` store → spots of its table (needs the optional
  ``spatialdata`` extra; without it a message says how to install it);
* a folder of one TIFF per marker (MIBI, IMC, CODEX exports) → one multiplex
  image; when the files do not store the pixel size, a dialog asks for it
  (cancel: the image is shown in pixels).

Images (``.ome.tif``, ``.ome.tiff``, ``.qptiff``, ``.tif``, ``.tiff``) open as one
additive layer per channel, coloured by the channel's role, as lazy pyramids.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.dispatch import (
    IMAGE_SUFFIXES,
    enclosing_instrument_folder,
    folder_kind,
    image_kind,
    is_geomx_export_workbook,
    is_tiff,
    spots_kind,
)

if TYPE_CHECKING:
    from napari_roiscore.spots.table import SpotTable

# Only path recognition is imported with this module (napari imports it on the GUI thread at the
# first File > Open); the readers and layer builders are imported when a file is read — in the
# worker thread when the file is opened from the running window (see _qt/background_open.py).

__all__ = ["IMAGE_SUFFIXES", "folder_kind", "get_reader", "is_tiff", "read_paths"]

def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for ``.h5ad`` spots, ``.geojson`` ROIs, a TIFF image or an
    instrument folder, else ``None``."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        return None
    resolved = []
    for p in paths:
        if str(p).lower().endswith((".h5ad", ".geojson")) or folder_kind(p) or image_kind(p) \
                or is_geomx_export_workbook(p):
            resolved.append(str(p))
            continue
        outs = enclosing_instrument_folder(p)  # one file of a Space Ranger / Xenium output
        if outs is None:
            return None
        if str(outs) not in resolved:
            resolved.append(str(outs))
    if resolved == [str(p) for p in paths]:
        return read_paths
    return lambda _path: read_paths(resolved)


def _spots_with_images(spots: SpotTable, name: str, first_look=None) -> list[tuple]:
    """Tissue image (hires if present, else lowres) under the spots."""
    from napari_roiscore._layer_data import spots_layers
    from napari_roiscore.readers.tissue_image import tissue_image_layer, tissue_images_from_uns

    layers = []
    images = tissue_images_from_uns(spots.adata)
    if images:
        layers.append(tissue_image_layer(images[0], spots.pixel_size_um))
    layers.extend(spots_layers(spots, name=name, first_look=first_look))
    return layers


def _read_spots(p: Path, kind: str, step: Callable[[int, int], None] | None = None) -> list[tuple]:
    """Layer data for spot data of ``kind`` (read by the core's
    :func:`~napari_roiscore.readers.dispatch.read_spots_of_kind`); ``step(done, total)``
    reports the progress of GeoMx NGS folders (default: a napari progress bar)."""
    from napari_roiscore._layer_data import image_layers, spots_layer, spots_layers
    from napari_roiscore.readers.dispatch import read_spots_of_kind

    if kind == "geomx":
        bar = _StepProgress(f"reading {p.name} DCC files") if step is None else None
        try:
            spots = read_spots_of_kind(p, kind, progress=bar or step)
        finally:
            if bar is not None:
                bar.close()
        return [spots_layer(spots, name=f"{p.name} AOIs")]
    look = _FIRST_LOOKS.pop(str(p), None)  # (taken before reading: not kept if the read fails)
    spots = read_spots_of_kind(p, kind)
    if kind == "visium":
        return _spots_with_images(spots, name=f"{p.name} spots")
    if kind == "visium_hd":
        return _spots_with_images(spots, name=f"{p.name} {spots.provenance.get('bin_size_um')} µm bins")
    if kind == "xenium":
        layers: list[tuple] = []
        morph = spots.provenance.get("morphology_image")
        if morph:
            from napari_roiscore.images.multiplex import read_multiplex_tiff

            try:
                layers.extend(image_layers(read_multiplex_tiff(morph)))
            except RoiScoreError as err:
                warnings.warn(f"Xenium morphology image not opened: {err}", stacklevel=2)
        layers.extend(spots_layers(spots, name=f"{p.name} cells"))
        return layers
    if kind == "cosmx":
        return spots_layers(spots, name=f"{p.name} cells")
    if kind == "geomx_export":
        return [_aoi_layer(spots, name=f"{p.stem} AOIs")]
    if kind == "spatialdata":
        return _spatialdata_layers(p, spots)
    return _spots_with_images(spots, name=p.stem, first_look=look)  # h5ad


def _spatialdata_layers(p: Path, spots: SpotTable) -> list[tuple]:
    """A SpatialData store: its images (placed by their transformations), spots, and ROIs written here."""
    from napari_roiscore._layer_data import image_layers, roi_layer, spots_layer
    from napari_roiscore.readers.spatialdata_rois import ROI_ELEMENT, read_rois_from_spatialdata
    from napari_roiscore.readers.spatialdata_store import read_spatialdata_image, store_elements

    elements = store_elements(p)
    layers: list[tuple] = []
    for name in elements.get("images", []):
        try:
            layers.extend(image_layers(read_spatialdata_image(p, name)))
        except RoiScoreError as err:
            warnings.warn(f"SpatialData image {name!r} not opened: {err}", stacklevel=2)
    layers.append(spots_layer(spots, name=f"{p.stem} spots"))
    if ROI_ELEMENT in elements.get("shapes", []):
        rois, _ = read_rois_from_spatialdata(p, ROI_ELEMENT)
        layers.append(roi_layer(rois, name=f"{p.stem} ROIs"))
    return layers


def _aoi_layer(spots: SpotTable, name: str) -> tuple:
    """GeoMx export AOIs as points, each drawn at its own diameter (its AOISurfaceArea)."""
    from napari_roiscore._layer_data import spots_layer

    data, kwargs, kind = spots_layer(spots, name=name)
    kwargs["size"] = spots.adata.obs["aoi_diameter_px"].to_numpy(dtype=float)
    return data, kwargs, kind


class _StepProgress:
    """A ``progress(done, total)`` callback for the core readers that drives a
    napari progress bar when napari is loaded (bar created on the first call);
    silent otherwise."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.done = 0
        self.total = 0
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None and "napari" in sys.modules:
            try:
                from napari.utils import progress

                self._bar = progress(total=total, desc=self.desc)
            except Exception:  # pragma: no cover - progress is a nicety
                self._bar = False
        if self._bar:
            self._bar.update(max(done - self.done, 0))
        self.done, self.total = done, total

    def close(self) -> None:
        if self._bar:
            self._bar.close()
        self._bar = False


class _Progress:
    """napari's progress bar when running inside napari; silent otherwise.

    napari is imported lazily and only when it is already loaded, so the core
    stays importable (and usable) without it.
    """

    def __init__(self, total: int, desc: str) -> None:
        self._bar = None
        if "napari" in sys.modules:
            try:
                from napari.utils import progress

                self._bar = progress(total=total, desc=desc)
            except Exception:  # pragma: no cover - progress is a nicety
                self._bar = None

    def step(self, desc: str) -> None:
        if self._bar is not None:
            self._bar.set_description(desc)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _read_image(p: Path) -> list[tuple]:
    from napari_roiscore._layer_data import image_layers
    from napari_roiscore.readers.dispatch import read_image

    image = read_image(p)
    if image.pixel_size_um is None and image.provenance.get("format") == "channel folder":
        px = _ask_pixel_size(p)
        if px:
            image.set_pixel_size(px)
    return image_layers(image)


def _ask_pixel_size(p: Path) -> float | None:
    """Ask for the pixel size in a dialog when a napari window is open; else ``None``.

    Cancelling shows the image in pixels, with a notification saying that
    areas and compartments need the pixel size.
    """
    if "napari" not in sys.modules:
        return None
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        return None
    from napari.utils.notifications import show_warning
    from qtpy.QtWidgets import QInputDialog

    value, ok = QInputDialog.getDouble(
        viewer.window._qt_window, "Pixel size",
        f"{p.name}: the TIFFs do not store their pixel size.\n"
        "Micrometres per pixel (MIBI-TOF / IMC fields: often 0.4–1.0):", 0.5, 0.001, 100.0, 4)
    if ok and value > 0:
        return float(value)
    show_warning(f"{p.name}: pixel size unknown, so the image is shown in pixels; proposing compartments "
                 "and areas in µm need it — open the folder again and enter it.")
    return None


def read_paths(path: str | list[str]) -> list[tuple]:
    """Read each path into layer data; bad files raise :class:`RoiScoreError`.

    Spot data opened from the running napari window (File ▸ Open, drag and drop)
    is read in a worker thread instead (``_qt/background_open.py``): the layers
    come when it is read, and this returns napari's "no layers" sentinel.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    viewer = _running_viewer()
    if viewer is not None and _worth_a_worker(paths):
        from napari_roiscore._qt.background_open import open_in_background
        from napari_roiscore._qt.warm_up import freeze_long_lived, glyph_warmer

        freeze_long_lived(viewer)
        open_in_background(viewer, [Path(p) for p in paths], _read_one, before_adding=_follow_camera_of,
                           prepare=_prepare_reading,  # the overlay's glyphs then rendered, a few per
                           prepared=lambda: glyph_warmer(viewer),  # loop turn, while the files are read
                           first_look=_first_look)
        return [(None,)]
    return read_now(paths)


def read_now(paths: list[str | Path]) -> list[tuple]:
    """Read ``paths`` into layer data here and now (see :func:`read_paths`)."""
    units = _units_in_background()
    layers = []
    bar = _Progress(len(paths), "napari-roiscore: opening")
    try:
        for p in paths:
            bar.step(f"opening {Path(p).name}")
            layers.extend(_read_one(Path(p)))
    finally:
        bar.close()
    _follow_camera_of(layers)
    if units is not None:
        units()  # ready before napari builds the layers (it must not find a half-built registry)
    return layers


def _worth_a_worker(paths: list) -> bool:
    """Spot data, with at most GeoJSON ROIs beside it (images open lazily, and a channel
    folder may ask for its pixel size in a dialog, which only the GUI thread can show)."""
    kinds = [spots_kind(p) for p in paths]
    return any(kinds) and all(k or str(p).lower().endswith(".geojson") for k, p in zip(kinds, paths))


def _running_viewer():
    """The napari viewer whose running event loop called this reader (a user's File ▸ Open), else ``None``."""
    if "napari" not in sys.modules:
        return None
    try:
        from napari_roiscore._qt.background_open import running_viewer
    except ImportError:  # pragma: no cover - napari without Qt
        return None
    return running_viewer()


def _prepare_reading(paths: list[Path]) -> None:
    """In the worker, before reading: napari's unit registry, every reader, the layer builders
    and the modules napari imports when it adds the first layer (0.8-1.0 s; loading compiled
    modules holds the interpreter, so the GUI thread's turns wait meanwhile: glyph warming
    starts after this)."""
    units = _units_in_background()
    import anndata  # noqa: F401 - the readers import these where used
    import h5py  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401 - (h5ad_steps: placeholder names)
    import scipy.sparse  # noqa: F401

    from napari_roiscore import readers

    for name in readers.__all__:
        getattr(readers, name)  # the package exports them lazily
    import napari_roiscore._layer_data  # noqa: F401
    import napari_roiscore._qt.spot_view  # noqa: F401
    import napari_roiscore.spots.h5ad_steps  # noqa: F401
    import napari_roiscore.spots.table  # noqa: F401
    from napari_roiscore._qt.warm_up import import_napari_lazy_modules

    import_napari_lazy_modules()
    if units is not None:
        units()  # ready before napari builds the layers (it must not find a half-built registry)


#: first looks computed in the reading worker, by path, until the table read from there takes them
_FIRST_LOOKS: dict[str, object] = {}


def _first_look(p: Path) -> list[tuple]:
    """In the worker, before ``p`` is read: the coarse preview of a large ``.h5ad`` slide's total
    counts (:mod:`~napari_roiscore.spots.first_look`), shown while its barcodes are read; else nothing."""
    if spots_kind(p) != "h5ad":
        return []
    from napari_roiscore._layer_data import first_look_layer
    from napari_roiscore.spots.first_look import first_look_h5ad

    look = first_look_h5ad(p)
    if look is None:
        return []
    _FIRST_LOOKS[str(p)] = look  # its totals and preview are reused by the view of the table read next
    return [first_look_layer(look, name=p.stem, source=str(p))]


def _follow_camera_of(layers: list[tuple]) -> None:
    """Large spot tables among ``layers``: attach the raster/markers switch (before they are added)."""
    from napari_roiscore._layer_data import holds_spot_view

    if holds_spot_view(layers):
        _follow_camera()


def _units_in_background() -> Callable[[], None] | None:
    """In napari: set up its unit registry (~0.4 s, once) in a thread while the files are read."""
    if "napari" not in sys.modules:
        return None
    from napari_roiscore._qt.warm_up import start_units, wait_units

    start_units()
    return wait_units


def _follow_camera() -> None:
    """Large spot tables: have the current viewer swap raster and markers as the user zooms."""
    if "napari" not in sys.modules:
        return
    try:
        import napari

        viewer = napari.current_viewer()
        if viewer is not None:
            from napari_roiscore._qt.spot_view import install_spot_views

            install_spot_views(viewer)
    except ImportError:  # pragma: no cover - napari without Qt: the raster alone is drawn
        pass


def _read_one(p: Path, step: Callable[[int, int], None] | None = None) -> list[tuple]:
    """Layer data for one path (spot data, .geojson or TIFF image)."""
    kind = spots_kind(p)
    if kind:
        return _read_spots(p, kind, step)
    if p.suffix.lower() == ".geojson":
        from napari_roiscore._layer_data import roi_layer
        from napari_roiscore.rois.geojson import read_geojson

        return [roi_layer(read_geojson(p), name=p.stem)]
    if str(p).lower().endswith(IMAGE_SUFFIXES) or image_kind(p) == "channel_folder":
        return _read_image(p)
    raise RoiScoreError(f"{str(p)!r}: unsupported file type.",  # pragma: no cover - get_reader filters these
                        "Open .h5ad, .geojson, an OME-TIFF/QPTIFF image or a Space Ranger / "
                        "Xenium / GeoMx folder.")
