"""Channel names carried by the pages of a plain multi-page TIFF.

Instrument exports that are neither OME-TIFF nor QPTIFF often still name
each page's marker:

* the TIFF ``PageName`` tag (ImageJ, many IMC/MIBI exporters);
* an ImageDescription holding JSON with the marker, as IONpath MIBItiff does
  (``"channel.target"``; also ``"channel_name"``, ``"target"``, ``"name"``,
  ``"marker"``);
* an ImageDescription that is one short line of plain text (the name itself).

XML descriptions (OME, QPI) and long free text are not names; they are left
to the readers of those formats.
"""

from __future__ import annotations

import json

__all__ = ["page_channel_name", "page_channel_names"]

#: JSON keys naming a page's marker, best first
_JSON_KEYS = ("channel.target", "channel_name", "channel.name", "target", "marker", "name", "channel")
#: a plain-text description longer than this is not a channel name
_MAX_NAME = 64


def _tag_text(page, tag: str) -> str | None:
    tags = getattr(page, "tags", None)
    if tags is None or tag not in tags:
        return None
    val = tags[tag].value
    if isinstance(val, bytes):
        val = val.decode("utf-8", "replace")
    text = str(val).strip().strip("\x00").strip()
    return text or None


def page_channel_name(page) -> str | None:
    """The marker name one TIFF page carries, or ``None`` (see the module docstring)."""
    name = _tag_text(page, "PageName")
    if name and len(name) <= _MAX_NAME:
        return name
    desc = _tag_text(page, "ImageDescription")
    if not desc or desc.startswith("<"):
        return None
    if desc.startswith("{"):
        try:
            meta = json.loads(desc)
        except ValueError:
            return None
        if isinstance(meta, dict):
            for key in _JSON_KEYS:
                val = meta.get(key)
                if isinstance(val, (str, int)) and str(val).strip():
                    return str(val).strip()
        return None
    if len(desc) <= _MAX_NAME and "\n" not in desc and "=" not in desc:
        return desc
    return None


def page_channel_names(pages) -> list[str] | None:
    """Names of all ``pages`` when every page has one and they are distinct, else ``None``."""
    names = [page_channel_name(p) for p in pages]
    if not names or any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return [str(n) for n in names]
