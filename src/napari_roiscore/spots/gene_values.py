"""One gene's value per spot, for colouring spots and for the hover read-out.

A gene is found by its name or any alternative identifier the spot table
carries (Ensembl id, symbol), case-insensitively, as signatures match genes.
Values are log1p counts per 10k (scanpy's ``normalize_total`` + ``log1p``) or
raw counts.
"""

from __future__ import annotations

import numpy as np

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import as_csr, library_sizes, log1p_cp10k_divisor
from napari_roiscore.spots.table import SpotTable

__all__ = ["gene_choices", "gene_index", "gene_values"]


def gene_choices(spots: SpotTable) -> list[str]:
    """Every name a gene can be asked by (var names, then symbols / ids), without repeats."""
    seen: dict[str, None] = {}
    for col in (spots.gene_names, *spots.gene_id_columns()):
        for name in col:
            seen.setdefault(name, None)
    return list(seen)


def gene_index(spots: SpotTable, name: str) -> int:
    """Column of gene ``name`` (a var name, symbol or id; case-insensitive).

    Raises
    ------
    RoiScoreError
        If no gene has that name.
    """
    want = str(name).strip().upper()
    for col in (spots.gene_names, *spots.gene_id_columns()):
        for i, n in enumerate(col):
            if n.upper() == want:
                return i
    raise RoiScoreError(f"No gene called {name!r} in these spots.",
                        "Type a gene name or id from the data (the box completes them).")


def gene_values(spots: SpotTable, index: int, normalised: bool = True,
                totals: np.ndarray | None = None) -> np.ndarray:
    """Values of gene column ``index`` in every spot (float64).

    Parameters
    ----------
    spots : SpotTable
    index : int
    normalised : bool
        log1p counts per 10k (True) or raw counts.
    totals : ndarray, optional
        Total counts per spot (computed when not given).
    """
    X = as_csr(spots.counts)
    col = np.asarray(X[:, index].toarray()).ravel().astype(np.float64)
    if not normalised:
        return col
    if totals is None:
        totals = library_sizes(X)
    return np.log1p(col / log1p_cp10k_divisor(totals))
