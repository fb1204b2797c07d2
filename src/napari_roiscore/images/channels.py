"""Image channels: which stain shows what, and in which colour.

Roles follow the study's multiplex panel: nuclei (blue), cancer cells
(turquoise/cyan), vessels (yellow), macrophages (magenta).  A channel's role
is guessed from its name and can be changed by the user.
"""

from __future__ import annotations

import re

__all__ = ["ROLE_COLOURMAPS", "ROLE_LABELS", "ROLES", "role_for_name"]

ROLES = ("nuclei", "cancer cells", "vessels", "macrophages", "other")

#: napari colormap name per role
ROLE_COLOURMAPS = {
    "nuclei": "blue",
    "cancer cells": "cyan",
    "vessels": "yellow",
    "macrophages": "magenta",
    "other": "gray",
}

ROLE_LABELS = {
    "nuclei": "nuclei",
    "cancer cells": "cancer cells",
    "vessels": "vessels",
    "macrophages": "macrophages",
    "other": "other",
}

_PATTERNS = [
    ("nuclei", r"^(dapi|hoechst|hoechst\s*33342|nuclei|nuclear|dna|sytox)"),
    ("cancer cells", r"^(pan[-_ ]?ck|panck|ck\d*|cytokeratin|krt\d*|epcam|e[-_ ]?cadherin|cdh1)"),
    ("vessels", r"^(cd31|pecam1?|cd34|vwf|erg)"),
    ("macrophages", r"^(cd68|cd163|cd206|mrc1|stab1|clever[-_ ]?1|iba1|aif1|cd14)"),
]


def role_for_name(name: str) -> str:
    """Guess a channel's role from its name (case-insensitive); "other" if unknown."""
    n = name.strip().lower()
    for role, pat in _PATTERNS:
        if re.match(pat, n):
            return role
    return "other"
