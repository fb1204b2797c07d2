"""Colour limits that follow the values being shown.

Spot colours must be recomputed whenever the coloured quantity changes (a new
signature, method, gene or restriction): limits kept from an earlier quantity
paint most spots one colour.  :func:`colour_limits` picks robust limits (2nd
and 98th percentiles of the finite values, so a few outliers do not wash the
map out) and makes them symmetric around 0 for centred quantities (z-score
means, scanpy scores, centred singscore, differences), so 0 sits at the
middle colour of a diverging colour map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColourScale", "colour_limits", "gene_scale", "is_centred_quantity", "score_scale"]

#: methods whose spot values are centred on 0
CENTRED_METHODS = frozenset({"mean_z", "scanpy", "singscore", "pseudobulk"})


@dataclass(frozen=True)
class ColourScale:
    """Limits, colour map and label of one coloured quantity.

    Attributes
    ----------
    low, high : float
        Colour limits (``low < high``).
    colormap : str
        A napari/matplotlib colour map name: diverging ``"coolwarm"`` for
        centred quantities, sequential ``"viridis"`` (scores) or ``"magma"``
        (counts) otherwise.
    label : str
        Quantity and units, for the colour bar ("mean z-score (example panel)",
        "CD68, log1p counts per 10k").
    centred : bool
    """

    low: float
    high: float
    colormap: str
    label: str
    centred: bool


def is_centred_quantity(method: str | None, params: dict | None = None) -> bool:
    """Whether spot values of ``method`` are centred on 0."""
    if method == "singscore":
        return bool((params or {}).get("center", True))
    return method in CENTRED_METHODS


def colour_limits(values: np.ndarray, centred: bool, percentiles: tuple[float, float] = (2.0, 98.0)) -> tuple[float, float]:
    """Robust colour limits of ``values``.

    Parameters
    ----------
    values : array of float
        NaN and infinite values are ignored.
    centred : bool
        Symmetric limits ``(-m, m)`` with ``m`` the larger absolute percentile.
    percentiles : (float, float)

    Returns
    -------
    (float, float)
        ``low < high`` always (a constant quantity gets a small band around
        its value; no finite value gives ``(0, 1)``).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if centred else (0.0, 1.0)
    lo, hi = (float(x) for x in np.percentile(v, percentiles))
    if centred:
        m = max(abs(lo), abs(hi))
        if m == 0:
            m = float(np.abs(v).max()) or 1.0
        return -m, m
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.5
        return lo - pad, hi + pad
    return lo, hi


def score_scale(values: np.ndarray, method: str, signature_name: str, params: dict | None = None) -> ColourScale:
    """The :class:`ColourScale` for spot scores of one signature and method."""
    centred = is_centred_quantity(method, params)
    lo, hi = colour_limits(values, centred)
    return ColourScale(lo, hi, "coolwarm" if centred else "viridis",
                       f"{signature_name} score ({method})", centred)


def gene_scale(values: np.ndarray, gene: str, normalised: bool = True) -> ColourScale:
    """The :class:`ColourScale` for one gene (log1p counts per 10k, or raw counts)."""
    lo, hi = colour_limits(values, centred=False)
    lo = min(lo, 0.0)
    unit = "log1p counts per 10k" if normalised else "counts"
    return ColourScale(lo, hi, "magma", f"{gene}, {unit}", False)
