"""Gene signatures: what to score, and which genes of the data they match.

A :class:`Signature` is a named set of "up" genes, an optional "down" set and
optional per-gene weights.  Signatures load from GMT, YAML or JSON files
(:mod:`napari_roiscore.scoring.signature_files`) and are matched against the genes of a dataset case-insensitively (``Cd68`` in a
mouse dataset matches ``CD68``), by symbol or by a ``var`` column such as
Ensembl ``gene_ids``.

The five genes of the published bexmarilimab response signature are not
public.  The panel shipped here is an **example panel** of macrophage genes,
and is always labelled as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_roiscore.errors import RoiScoreError

__all__ = [
    "EXAMPLE_PANEL",
    "GeneMatch",
    "Signature",
    "match_genes",
    "parse_gene_list",
]


@dataclass(frozen=True)
class Signature:
    """A named gene signature.

    Parameters
    ----------
    name : str
        Display name.
    up : tuple of str
        Genes whose high expression raises the score.
    down : tuple of str
        Genes whose high expression lowers the score (optional).
    weights : dict, optional
        Per-gene weights (gene -> float); genes without a weight get 1.
    description : str
        Free text (source, caveats).
    is_example : bool
        True for shipped example panels; shown next to the name in the GUI.
    """

    name: str
    up: tuple[str, ...]
    down: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    description: str = ""
    is_example: bool = False

    def __post_init__(self) -> None:
        up = tuple(_clean(g) for g in self.up if _clean(g))
        down = tuple(_clean(g) for g in self.down if _clean(g))
        object.__setattr__(self, "up", tuple(dict.fromkeys(up)))
        object.__setattr__(self, "down", tuple(dict.fromkeys(down)))
        if not self.up and not self.down:
            raise RoiScoreError(
                f"Signature {self.name!r} has no genes.",
                "Enter at least one gene symbol, e.g. 'CD68, CD163'.",
            )
        for gene, w in self.weights.items():
            if not np.isfinite(float(w)):
                raise RoiScoreError(
                    f"Signature {self.name!r}: weight of {gene!r} is {w!r}.",
                    "Use finite numbers as weights.",
                )
        if self.weights:
            genes = {g.upper() for g in self.up + self.down}
            stray = [g for g in self.weights if str(g).upper() not in genes]
            if stray:  # a typo would silently weight nothing
                from napari_roiscore.outputs import limited_list

                raise RoiScoreError(f"Signature {self.name!r}: weights given for {len(stray)} gene(s) not in the "
                                    f"signature: {limited_list(stray)}.",
                                    "Weight only the signature's genes (check the spelling).")
            if all(float(self.weight(g)) == 0 for g in self.up + self.down):
                raise RoiScoreError(f"Signature {self.name!r}: every gene has weight 0, so every score would be 0.",
                                    "Give the genes non-zero weights (or leave weights out: each gets 1).")

    @property
    def genes(self) -> tuple[str, ...]:
        """All genes, up then down."""
        return self.up + self.down

    @property
    def label(self) -> str:
        """Name as shown to users; example panels say so."""
        return f"{self.name} (example panel)" if self.is_example else self.name

    def weight(self, gene: str) -> float:
        """Weight of ``gene`` (case-insensitive), 1 when none was given."""
        lookup = {k.upper(): float(v) for k, v in self.weights.items()}
        return lookup.get(gene.upper(), 1.0)

    def to_dict(self) -> dict:
        """Plain-data form (for JSON/YAML session files)."""
        return {
            "name": self.name,
            "up": list(self.up),
            "down": list(self.down),
            "weights": dict(self.weights),
            "description": self.description,
            "is_example": self.is_example,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "signature") -> Signature:
        """Build a signature from plain data (inverse of :meth:`to_dict`)."""
        if not isinstance(data, dict):
            raise RoiScoreError(
                f"{source}: expected a mapping with 'name' and 'up' (or 'genes'), "
                f"got {type(data).__name__}.",
                "Write the signature as {name: ..., up: [GENE, ...]}.",
            )
        for key in ("name", "description"):
            if isinstance(data.get(key), bool):
                raise RoiScoreError(
                    f"{source}: field {key!r} is {data[key]!r}, not text (YAML reads unquoted "
                    "yes/no/on/off/true/false as booleans).",
                    f"Quote it, e.g. {key}: \"NO\".",
                )
            if key in data and not isinstance(data[key], (str, int, float, type(None))):
                raise RoiScoreError(
                    f"{source}: field {key!r} must be text, not {type(data[key]).__name__}.",
                    f"Write the {key} as plain text, e.g. {key}: macrophage panel.",
                )
        name = str(data.get("name", "signature"))[:200]
        up = data.get("up", data.get("genes", []))
        down = data.get("down", [])
        weights = data.get("weights", {}) or {}
        for key, val in (("up", up), ("down", down)):
            if isinstance(val, str):
                val = parse_gene_list(val)
            bools = [g for g in val if isinstance(g, bool)] if isinstance(val, (list, tuple)) else []
            if bools:
                raise RoiScoreError(
                    f"{source}: field {key!r} of signature {name!r} holds {bools[0]!r}, not a gene symbol "
                    "(YAML reads unquoted NO, YES, ON, OFF, TRUE, FALSE as booleans).",
                    f"Quote such gene symbols, e.g. {key}: [\"NO\", CD68].",
                )
            if not isinstance(val, (list, tuple)) or not all(
                isinstance(g, (str, int)) for g in val
            ):
                raise RoiScoreError(
                    f"{source}: field {key!r} of signature {name!r} must be a list "
                    "of gene symbols.",
                    "Write e.g. up: [CD68, CD163].",
                )
            if key == "up":
                up = [str(g) for g in val]
            else:
                down = [str(g) for g in val]
        if isinstance(weights, (list, tuple)):  # weights aligned with up genes
            if len(weights) != len(up):
                raise RoiScoreError(
                    f"{source}: signature {name!r} has {len(up)} genes but "
                    f"{len(weights)} weights.",
                    "Give one weight per gene, or a mapping gene: weight.",
                )
            weights = dict(zip(up, weights))
        if not isinstance(weights, dict):
            raise RoiScoreError(
                f"{source}: 'weights' of signature {name!r} must be a mapping.",
                "Write weights: {CD68: 1.0, ...}.",
            )
        if any(isinstance(k, bool) for k in weights):
            raise RoiScoreError(
                f"{source}: a weight of signature {name!r} is keyed by a boolean, not a gene symbol "
                "(YAML reads unquoted NO, YES, ON, OFF, TRUE, FALSE as booleans).",
                "Quote such gene symbols, e.g. weights: {\"NO\": 1.0}.",
            )
        try:
            weights = {str(k): float(v) for k, v in weights.items()}
        except (TypeError, ValueError, OverflowError) as err:
            raise RoiScoreError(
                f"{source}: a weight of signature {name!r} is not a number ({str(err)[:80]}).",
                "Use numbers as weights.",
            ) from None
        try:
            return cls(
                name=name,
                up=tuple(up),
                down=tuple(down),
                weights=weights,
                description=str(data.get("description", "") or ""),
                is_example=bool(data.get("is_example", False)),
            )
        except RoiScoreError as err:  # name the file as well
            raise RoiScoreError(f"{source}: {err.problem}", err.fix) from None


def _clean(gene: object) -> str:
    return str(gene).strip().strip("\"'")


_SPLIT = re.compile(r"[\s,;]+")


def parse_gene_list(text: str) -> list[str]:
    """Split user text (commas, semicolons, spaces or new lines) into genes."""
    return [g for g in (_clean(t) for t in _SPLIT.split(text or "")) if g]


EXAMPLE_PANEL = Signature(
    name="Macrophage genes",
    up=("CD68", "CD163", "STAB1", "MRC1", "MSR1"),
    description=(
        "Example panel of macrophage genes (STAB1 encodes Clever-1, the target of "
        "bexmarilimab). This is NOT the published five-gene response signature, "
        "whose genes are not public; replace it with your own panel."
    ),
    is_example=True,
)


@dataclass(frozen=True)
class GeneMatch:
    """Result of matching a signature against the genes of a dataset.

    Attributes
    ----------
    up_index, down_index : ndarray of int
        Column indices (into ``var``) of the matched up / down genes.
    up_used, down_used : tuple of str
        Dataset gene names that were matched, in signature order.
    missing : tuple of str
        Signature genes not found in the data.
    weights_up, weights_down : ndarray of float
        Weights of the matched genes.
    missing_up, missing_down : tuple of str
        ``missing`` split by set (UCell counts them as unexpressed genes).
    """

    up_index: np.ndarray
    down_index: np.ndarray
    up_used: tuple[str, ...]
    down_used: tuple[str, ...]
    missing: tuple[str, ...]
    weights_up: np.ndarray
    weights_down: np.ndarray
    missing_up: tuple[str, ...] = ()
    missing_down: tuple[str, ...] = ()

    @property
    def n_used(self) -> int:
        return len(self.up_used) + len(self.down_used)

    @property
    def used(self) -> tuple[str, ...]:
        return self.up_used + self.down_used


def match_genes(
    signature: Signature,
    var_names: Sequence[str],
    extra_ids: Iterable[Sequence[str]] = (),
) -> GeneMatch:
    """Find the signature's genes among ``var_names`` (case-insensitive).

    Parameters
    ----------
    signature : Signature
    var_names : sequence of str
        Gene names of the dataset (e.g. ``adata.var_names``).
    extra_ids : iterable of sequences of str
        Other identifiers per gene, e.g. ``adata.var["gene_ids"]`` (Ensembl);
        a signature gene matches if it equals any of them.

    Raises
    ------
    RoiScoreError
        When none of the signature's genes is in the data.
    """
    lookup: dict[str, int] = {}
    columns = [list(map(str, var_names)), *[list(map(str, c)) for c in extra_ids]]
    for col in columns:
        for i, name in enumerate(col):
            lookup.setdefault(name.upper(), i)
    names = columns[0]

    def _match(genes: tuple[str, ...]) -> tuple[list[int], list[str], list[str], list[float]]:
        idx, used, missing, w = [], [], [], []
        seen: set[int] = set()
        for g in genes:
            j = lookup.get(g.upper())
            if j is None:
                missing.append(g)
            elif j not in seen:
                seen.add(j)
                idx.append(j)
                used.append(names[j])
                w.append(signature.weight(g))
        return idx, used, missing, w

    ui, uu, um, uw = _match(signature.up)
    di, du, dm, dw = _match(signature.down)
    if not ui and not di:
        shown = ", ".join(signature.genes[:10])
        raise RoiScoreError(
            f"None of the signature genes ({shown}) is in the data "
            f"({len(names)} genes, e.g. {', '.join(names[:3])}).",
            "Check the gene naming (symbols vs Ensembl ids, species) or choose "
            "another var column for matching.",
        )
    return GeneMatch(
        up_index=np.asarray(ui, dtype=np.int64),
        down_index=np.asarray(di, dtype=np.int64),
        up_used=tuple(uu),
        down_used=tuple(du),
        missing=tuple(um + dm),
        weights_up=np.asarray(uw, dtype=float),
        weights_down=np.asarray(dw, dtype=float),
        missing_up=tuple(um),
        missing_down=tuple(dm),
    )


def __getattr__(name: str):
    """``load_signatures`` and its size limits, kept importable from here for existing callers
    (they live in :mod:`napari_roiscore.scoring.signature_files`, which needs :class:`Signature`)."""
    if name in ("load_signatures", "MAX_SIGNATURE_BYTES", "MAX_YAML_BYTES"):
        from napari_roiscore.scoring import signature_files

        return getattr(signature_files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
