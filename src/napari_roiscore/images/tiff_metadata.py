"""Channel names and pixel size from TIFF metadata (OME-XML, QPTIFF XML, ImageJ, TIFF tags).

* **OME-TIFF**: ``Channel/@Name`` and ``Pixels/@PhysicalSizeX`` (with its
  unit) of the first OME Image;
* **QPTIFF**: each page's ImageDescription XML names its stain
  (``<Biomarker>``, else ``<Name>``); pixel size from ``<ScanProfile>``
  (``PixelSizeMicrons``);
* **ImageJ**: ``Labels`` for channel names, ``unit`` for the resolution tags;
* **plain TIFF**: each page's ``PageName`` tag or short ImageDescription (see
  :mod:`napari_roiscore.images.tiff_pages`); pixel size from the resolution
  tags when their unit is centimetre (or ImageJ's micron).

Nothing here reads pixels; :func:`~napari_roiscore.images.multiplex.read_multiplex_tiff`
checks the pixel size found (finite, positive) and names the file when it is not.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

__all__ = ["channel_names_and_pixel_size"]

#: micrometres per unit of the OME PhysicalSizeXUnit
_OME_UNIT_UM = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}


def _ome_channels_and_pixel_size(ome_xml: str | None) -> tuple[list[str], float | None]:
    """Channel names and level-0 pixel size (µm) of the **first** OME Image.

    The first Image is the series that is read (``tif.series[0]``); further
    Images (a label or macro picture, other scenes) have channels of their own
    that must not be appended to its channel names.
    """
    if not ome_xml:
        return [], None
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return [], None

    def local(el: ET.Element) -> str:
        return el.tag.rsplit("}", 1)[-1]

    pixels = next((el for el in root.iter() if local(el) == "Pixels"), None)  # document order: first Image
    if pixels is None:
        return [], None
    px = None
    val = pixels.get("PhysicalSizeX")
    if val is not None:
        try:
            px = float(val) * _OME_UNIT_UM.get(pixels.get("PhysicalSizeXUnit", "µm"), 1.0)
        except ValueError:
            px = float("nan")  # refused by the caller, naming the file
    names: list[str] = []
    for el in pixels:
        if local(el) == "Channel":
            names.append(el.get("Name") or el.get("ID") or f"channel {len(names)}")
    return names, px


def _xml_text(root: ET.Element, *tags: str) -> str | None:
    """Text of the first non-empty descendant element among ``tags`` (in that order)."""
    for tag in tags:
        for el in root.iter(tag):
            if el.text and el.text.strip():
                return el.text.strip()
    return None


def _qptiff_page_info(description: str) -> tuple[str | None, float | None]:
    """Stain name and pixel size (µm) from one QPTIFF page's ImageDescription XML.

    The biomarker (``<Biomarker>``, written by newer PhenoImager software)
    is preferred over the fluorophore/filter ``<Name>`` ("Opal 570") because
    it is what the channel shows.  The pixel size is taken from
    ``<ScanProfile>`` (``PixelSizeMicrons``), which may hold nested XML or
    escaped XML/JSON text.
    """
    try:
        root = ET.fromstring(description.replace('encoding="utf-16"', 'encoding="utf-8"').encode())
    except ET.ParseError:
        return None, None
    name = _xml_text(root, "Biomarker", "BioMarker", "Name")
    px = None
    profile = root.find(".//ScanProfile")
    if profile is not None:
        text = ET.tostring(profile, encoding="unicode")
        m = re.search(r"PixelSizeMicrons\W{0,4}?([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)", html.unescape(text))
        if m:
            val = float(m.group(1))
            px = val if val > 0 else None
    return name, px


def _resolution_pixel_size(page, imagej_unit: str | None = None) -> float | None:
    """Pixel size (µm) from the TIFF XResolution tag, when its unit is meaningful.

    ResolutionUnit centimetre → 10,000 / pixels-per-cm; ImageJ files store
    pixels per ``unit`` (micron) with no TIFF unit.  Inch is ignored: most
    software writes a meaningless 72/96/300 dpi default there.
    """
    tags = getattr(page, "tags", None)
    if tags is None or "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    if not num or not den:
        return None
    per_unit = num / den
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    if unit == 3:  # centimetre
        return 1e4 / per_unit
    if unit == 1 and imagej_unit and imagej_unit.strip().lower() in ("micron", "um", "µm", "\\u00b5m", "microns"):
        return 1.0 / per_unit
    return None


def channel_names_and_pixel_size(tif, series, flavour: str, n_channels: int,
                                 channel_axis: str | None) -> tuple[list[str], float | None]:
    """Channel names and level-0 pixel size (µm) from the metadata of an open TIFF.

    Parameters
    ----------
    tif : tifffile.TiffFile
    series : tifffile.TiffPageSeries
        The series that is read (``tif.series[0]``).
    flavour : str
        ``"ome"``, ``"qptiff"``, ``"imagej"`` or ``"tiff"`` (see
        :func:`~napari_roiscore.images.multiplex.tiff_flavour`).
    n_channels : int
        Number of channels of the level-0 array.
    channel_axis : str or None
        The axis holding the channels (``"C"``, ``"S"``, ``"I"``, ``"Q"``).

    Returns
    -------
    (names, pixel_size_um)
        ``names`` may be shorter or longer than ``n_channels`` when the file
        names none or names them inconsistently (the caller then numbers
        them); ``pixel_size_um`` is None when the file does not say, NaN when
        it says something that is not a number.
    """
    page0 = series.keyframe
    names: list[str] = []
    px = None
    if flavour == "ome":
        names, px = _ome_channels_and_pixel_size(tif.ome_metadata)
    elif flavour == "qptiff":
        infos = [_qptiff_page_info(getattr(pg, "description", "") or "") for pg in series.pages]
        names = [n or f"channel {i}" for i, (n, _) in enumerate(infos)]
        px = next((p for _, p in infos if p), None)
    elif flavour == "imagej":
        labels = (tif.imagej_metadata or {}).get("Labels")
        if isinstance(labels, (list, tuple)) and len(labels) == n_channels:
            names = [str(v) for v in labels]
    if len(names) != n_channels and flavour in ("tiff", "imagej") and channel_axis in ("C", "I", "Q"):
        from napari_roiscore.images.tiff_pages import page_channel_names

        names = page_channel_names(list(series.pages)) or names
    if px is None and page0 is not None:
        unit = (tif.imagej_metadata or {}).get("unit") if flavour == "imagej" else None
        px = _resolution_pixel_size(page0, unit)
    if channel_axis == "S" and n_channels in (3, 4) and int(getattr(page0, "photometric", 0) or 0) == 2:
        names = ["red", "green", "blue", "alpha"][:n_channels]
    return names, px
