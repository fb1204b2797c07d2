"""Control-gene signature score, compatible with ``scanpy.tl.score_genes``.

The algorithm (Tirosh et al. 2016 / Seurat ``AddModuleScore``, as implemented
in scanpy 1.11 and reproduced here step by step, without importing scanpy):

1. Gene pool = all genes.  Each gene's mean expression over **all spots of
   the slide** is computed.
2. Genes are ranked by that mean (ties get the lowest rank, pandas
   ``rank(method="min")``) and cut into expression bins:
   ``bin = rank // round(n_genes / (n_bins - 1))``.
3. For each bin holding a signature gene (in increasing bin order), the genes
   of that bin are listed in data order; if there are more than ``ctrl_size``
   of them, ``ctrl_size`` are drawn with ``numpy.random.RandomState(seed)
   .choice(n, ctrl_size, replace=False)`` (what pandas ``Series.sample`` does
   under ``np.random.seed(seed)``); then signature genes are removed from the
   draw.  The control set is the union over bins.
4. Spot score = mean expression of the signature genes − mean expression of
   the control genes.

Control genes depend on which spots are in the data, so they are chosen once
on the whole slide and then kept ("frozen"): ROI scores aggregate these
per-spot scores and do not change when an ROI is redrawn.  With a frozen
control set the score is linear in expression, so the mean of the spot
scores in an ROI equals the score of the ROI's mean expression profile.

Extensions beyond scanpy (identical to scanpy when unused): per-gene weights
(weighted mean of the signature genes) and a down set (score of the up set
minus score of the down set, each with its own control genes drawn with the
same seed, i.e. two independent ``score_genes`` calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.normalise import as_csr, gene_means_and_divisor, normalised_weights, weighted_row_sums

__all__ = ["ControlGeneScore", "choose_control_genes", "control_gene_score"]


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_settings(ctrl_size: object, n_bins: object, random_state: object) -> None:
    """scanpy's settings must be whole numbers in range (else numpy fails obscurely)."""
    if not (_is_int(ctrl_size) and ctrl_size >= 1):
        raise RoiScoreError(f"Control-gene score: ctrl_size is {ctrl_size!r}, not a whole number >= 1.",
                            "Use e.g. ctrl_size=50 (scanpy's default).")
    if not (_is_int(n_bins) and n_bins >= 2):
        raise RoiScoreError(f"Control-gene score: n_bins is {n_bins!r}, not a whole number >= 2 "
                            "(genes are cut into n_bins - 1 expression bins).",
                            "Use e.g. n_bins=25 (scanpy's default).")
    if random_state is not None and not (_is_int(random_state) and 0 <= random_state < 2**32):
        raise RoiScoreError(f"Control-gene score: random_state is {random_state!r}, not a whole number "
                            "from 0 to 2**32 - 1 (or None).", "Use e.g. random_state=0 (scanpy's default).")


def choose_control_genes(
    means: np.ndarray,
    signature: np.ndarray,
    *,
    ctrl_size: int = 50,
    n_bins: int = 25,
    random_state: int | None = 0,
) -> np.ndarray:
    """Indices of the control genes for ``signature`` (indices into ``means``).

    Parameters
    ----------
    means : ndarray, shape (n_genes,)
        Mean expression of every gene over all spots (the gene pool).
    signature : ndarray of int
        Indices of the signature genes.
    ctrl_size, n_bins, random_state
        As in ``scanpy.tl.score_genes`` (same defaults).

    Returns
    -------
    ndarray of int, sorted
    """
    _check_settings(ctrl_size, n_bins, random_state)
    means = np.asarray(means, dtype=np.float64)
    signature = np.unique(np.asarray(signature, dtype=np.int64))
    finite = np.flatnonzero(np.isfinite(means))
    pool_means = means[finite]
    n_items = int(np.round(len(pool_means) / (n_bins - 1)))
    ranks = rankdata(pool_means, method="min").astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cuts = np.floor_divide(ranks, n_items)  # inf for n_items == 0, as in scanpy
    # map signature genes to positions in the (finite) pool
    pos = np.full(len(means), -1, dtype=np.int64)
    pos[finite] = np.arange(len(finite))
    sig_pos = pos[signature]
    sig_pos = sig_pos[sig_pos >= 0]
    rng = np.random.RandomState(random_state)
    is_sig = np.zeros(len(means), dtype=bool)
    is_sig[signature] = True
    chosen: list[np.ndarray] = []
    for cut in np.unique(cuts[sig_pos]):
        members = finite[cuts == cut]
        if ctrl_size < len(members):
            members = members[rng.choice(len(members), ctrl_size, replace=False)]
        chosen.append(members[~is_sig[members]])
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(chosen))


@dataclass(frozen=True)
class ControlGeneScore:
    """Per-spot control-gene scores and what they were computed from.

    Attributes
    ----------
    values : ndarray, shape (n_spots,)
    control_up, control_down : ndarray of int
        Control gene indices chosen for the up / down set.
    zero_genes : ndarray of int
        Signature genes with no expression anywhere on the slide.
    """

    values: np.ndarray
    control_up: np.ndarray
    control_down: np.ndarray
    zero_genes: np.ndarray


def control_gene_score(
    matrix: sp.spmatrix | np.ndarray,
    up: np.ndarray,
    down: np.ndarray | None = None,
    *,
    weights_up: np.ndarray | None = None,
    weights_down: np.ndarray | None = None,
    ctrl_size: int = 50,
    n_bins: int = 25,
    random_state: int | None = 0,
    log_normalise: bool = True,
) -> ControlGeneScore:
    """Score every spot like ``scanpy.tl.score_genes`` (see module docstring).

    Parameters
    ----------
    matrix : sparse or dense (n_spots, n_genes)
        Raw counts when ``log_normalise`` (values become
        ``log1p(count / (total / 1e4))``), otherwise expression values used as
        they are (e.g. an already log-normalised ``adata.raw.X``).
    up, down : ndarray of int
        Column indices of the up / down signature genes.
    weights_up, weights_down : ndarray, optional
        Per-gene weights (weighted mean instead of the plain mean).
    ctrl_size, n_bins, random_state
        As in scanpy (defaults 50, 25, 0).

    Raises
    ------
    RoiScoreError
        When no control gene can be drawn (tiny gene pools).
    """
    _check_settings(ctrl_size, n_bins, random_state)
    X = as_csr(matrix)
    up = np.asarray(up, dtype=np.int64)
    down = np.zeros(0, dtype=np.int64) if down is None else np.asarray(down, dtype=np.int64)
    # pass 1 over the counts: gene means (and per-spot divisors) on the whole slide
    means, divisor = gene_means_and_divisor(X, log_normalise=log_normalise)

    weight = np.zeros(X.shape[1], dtype=np.float64)
    controls = []
    for genes, w, sign in ((up, weights_up, 1.0), (down, weights_down, -1.0)):
        if len(genes) == 0:
            controls.append(np.zeros(0, dtype=np.int64))
            continue
        ctrl = choose_control_genes(
            means, genes, ctrl_size=ctrl_size, n_bins=n_bins, random_state=random_state
        )
        if len(ctrl) == 0:
            raise RoiScoreError(
                f"No control genes could be drawn for {len(genes)} signature gene(s): "
                f"the data hold only {X.shape[1]} genes.",
                "Use a dataset with more genes, or the 'mean_z' / rank-based methods.",
            )
        controls.append(ctrl)
        # sum of |w| normalisation keeps the plain mean when all weights are 1
        np.add.at(weight, genes, sign * normalised_weights(w, len(genes)))
        np.add.at(weight, ctrl, -sign / len(ctrl))

    # pass 2: only the stored entries of signature and control genes
    values = weighted_row_sums(X, weight, divisor)
    sig = np.concatenate([up, down])
    return ControlGeneScore(
        values=np.asarray(values, dtype=np.float64).ravel(),
        control_up=controls[0],
        control_down=controls[1],
        zero_genes=sig[means[sig] == 0],
    )
