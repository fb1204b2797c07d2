"""Plain-language notes about signature genes that carry no information.

A signature gene can be *matched* (its name is in the data) and still tell
nothing: it has no count in any spot (common when a human panel is typed on
mouse data, or a gene is not on the probe panel), or it has the same value in
every spot.  Calling such genes "used" would mislead, so every score carries
the list of them and :func:`gene_notice` says, per method, what was done with
them.

What each method does with a gene that has no count anywhere
-------------------------------------------------------------
``mean_z`` / pseudobulk ``mean_z``
    The gene has no z-score (standard deviation 0), so it is left out of the
    average of z-scores.
``scanpy``
    Kept, with expression 0 in every spot (``scanpy.tl.score_genes`` keeps it
    in the mean; ``tests/scoring/test_scoring.py`` compares with scanpy on the real
    Visium example where three of the five example genes have no counts).
``ucell`` / ``singscore``
    Kept, tied at the lowest rank in every spot (the rank methods' own rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from napari_roiscore.scoring.normalise import selected_columns

if TYPE_CHECKING:
    from napari_roiscore.scoring.methods import SpotScores
    from napari_roiscore.scoring.signature import GeneMatch

__all__ = ["gene_notice", "genes_without_counts", "informative_genes"]

#: what each method does with a gene that has no count / no variation
TREATMENT = {
    "mean_z": "left out of the mean of z-scores (no variation, so no z-score)",
    "scanpy": "kept at expression 0, as scanpy.tl.score_genes keeps it",
    "ucell": "kept, tied at the lowest rank in every spot",
    "singscore": "kept, tied at the lowest rank in every spot",
    "pseudobulk": "left out of the mean of z-scores (no variation, so no z-score)",
}


def genes_without_counts(counts: sp.spmatrix | np.ndarray, match: GeneMatch) -> tuple[str, ...]:
    """Matched signature genes whose column holds no positive count.

    Parameters
    ----------
    counts : sparse matrix or ndarray, shape (n_spots, n_genes)
    match : GeneMatch

    Returns
    -------
    tuple of str
        Dataset gene names, in signature order (up genes first).
    """
    cols = np.concatenate([match.up_index, match.down_index]).astype(np.int64)
    if cols.size == 0:
        return ()
    # only the signature's columns are read (no copy of the whole matrix)
    positive = np.asarray(selected_columns(counts, cols, None).max(axis=0).toarray()).ravel() > 0
    return tuple(g for g, p in zip(match.used, positive) if not p)


def informative_genes(scores: SpotScores) -> tuple[str, ...]:
    """Matched genes that have counts (and, for mean-z methods, vary)."""
    skip = set(scores.no_counts)
    if scores.method in ("mean_z", "pseudobulk") and scores.params.get("score", "mean_z") == "mean_z":
        skip |= set(scores.constant)
    return tuple(g for g in scores.match.used if g not in skip)


def gene_notice(scores: SpotScores, limit: int = 6) -> str | None:
    """One sentence naming the uninformative genes and what the method did.

    Returns ``None`` when every matched gene has counts and varies.

    Examples
    --------
    ``"Gapdh, Actb: no counts in any spot — left out of the mean of z-scores
    (no variation, so no z-score). 3 of 5 genes inform the score."``
    """
    zero = list(scores.no_counts)
    flat = [g for g in scores.constant if g not in zero]
    if not zero and not flat:
        return None
    method = scores.method
    if method == "pseudobulk" and scores.params.get("score") == "singscore":
        method = "singscore"
    parts = []
    if zero:
        parts.append(f"{_names(zero, limit)}: no counts in any spot")
    if flat:
        parts.append(f"{_names(flat, limit)}: the same value in every spot")
    n_inf = len(informative_genes(scores))
    n = scores.match.n_used
    return (f"{'; '.join(parts)} — {TREATMENT.get(method, 'kept')}. "
            f"{n_inf} of {n} matched gene{'s' if n != 1 else ''} inform the score.")


def _names(genes: list[str], limit: int) -> str:
    if len(genes) <= limit:
        return ", ".join(genes)
    return ", ".join(genes[:limit]) + f" and {len(genes) - limit} more"
