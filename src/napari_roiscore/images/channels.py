"""Image channels: which stain shows what, and in which colour.

Roles follow the study's multiplex panel: nuclei (blue), cancer cells
(turquoise/cyan), vessels (yellow), macrophages (magenta).  A channel's role
is guessed from its name and can be changed by the user.

Real panels (MIBI, IMC, CODEX/PhenoCycler, CyCIF) carry 30-60 markers, several
of which fit one role (``Nuc`` and ``HH3``; ``PanKRT``, ``ECAD`` and ``CK7``;
``CD68``, ``CD14`` and ``CD11c``).  :func:`guess_roles` gives each role to the
one channel that fits it best (the order of the patterns below: a pan-keratin
before E-cadherin before a single keratin) and leaves every other channel
``"other"`` — shown hidden and grey, ready to be switched on.

Names are compared after removing what instruments add around a marker:
case, spaces, ``-``/``_``/``.``, and metal-isotope tags (``CD68(Tb159Di)``,
``159Tb_CD68``, ``Tb159-CD68``).  Iridium DNA intercalators (``Ir191``,
``191Ir``, ``Ir193Di``) count as nuclei.
"""

from __future__ import annotations

import re

__all__ = ["ROLE_COLOURMAPS", "ROLE_LABELS", "ROLES", "guess_roles", "normalise_marker_name", "role_for_name",
           "role_match"]

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

#: Per role, full-match patterns on the normalised name, best first.
_PATTERNS: dict[str, list[str]] = {
    "nuclei": [r"dapi", r"hoechst\d*", r"dna1?", r"ir191", r"191ir", r"nuc", r"nuclei|nuclear|nucleus",
               r"sytox\w*", r"draq[57]", r"dna2", r"ir193", r"193ir", r"hh3|histoneh3|h3"],
    "cancer cells": [r"panck|pankrt|pankeratin|pancytokeratin|cytokeratin|keratin|ck", r"ecad|ecadherin|cdh1",
                     r"epcam|cd326", r"krt\d+[a-z]?(krt\d+)*", r"ck\d+(ck\d+)*"],
    "vessels": [r"cd31|pecam1?", r"vwf|vonwillebrandfactor", r"cd34", r"erg|cdh5|vecadherin"],
    "macrophages": [r"cd68", r"cd163", r"cd206|mrc1", r"cd14", r"cd11c|itgax", r"iba1|aif1",
                    r"stab1|clever1", r"cd64|fcgr1a?"],
}

#: metal tags around a marker name: 159Tb_ / Tb159- prefixes, (Tb159Di) / _159Tb suffixes
_METAL = r"(?:\d{2,3}[A-Z][a-z]?|[A-Z][a-z]?\d{2,3})(?:Di)?"
_PREFIX = re.compile(rf"^{_METAL}[-_ .]+(?=\S)")
_SUFFIX = re.compile(rf"(?:[-_ .]+|[(\[]){_METAL}[)\]]?$")


def normalise_marker_name(name: str) -> str:
    """Lower-case marker name without metal tags and separators (``"CD68(Tb159Di)"`` → ``"cd68"``)."""
    n = str(name).strip()
    if re.fullmatch(_METAL, n):  # the name is only an isotope, e.g. "Ir191" or "191IrDi"
        return re.sub(r"di$", "", re.sub(r"[^a-z0-9]", "", n.lower()))
    n = _PREFIX.sub("", n)
    stripped = _SUFFIX.sub("", n)
    n = stripped if stripped else n
    return re.sub(r"[^a-z0-9]", "", n.lower())


def role_match(name: str) -> tuple[str, int] | None:
    """``(role, rank)`` of the first pattern a channel name fits (rank 0 = best), or ``None``."""
    n = normalise_marker_name(name)
    for role, pats in _PATTERNS.items():
        for rank, pat in enumerate(pats):
            if re.fullmatch(pat, n):
                return role, rank
    return None


def role_for_name(name: str) -> str:
    """Guess a channel's role from its name alone (case-insensitive); "other" if unknown."""
    hit = role_match(name)
    return hit[0] if hit else "other"


def guess_roles(names: list[str]) -> list[str]:
    """One channel per role — the best-fitting name — and ``"other"`` for every other channel.

    Ties (two channels of the same rank, e.g. ``CK5`` and ``CK7``) go to the
    first in panel order.
    """
    best: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(names):
        hit = role_match(name)
        if hit is None:
            continue
        role, rank = hit
        if role not in best or rank < best[role][0]:
            best[role] = (rank, i)
    roles = ["other"] * len(names)
    for role, (_, i) in best.items():
        roles[i] = role
    return roles
