"""A new signature from a differential-expression table, saved with its provenance.

Genes are either chosen (``genes=``, their direction taken from the sign of
their log2FC) or the top ``n_up`` / ``n_down`` by adjusted p.  The file says
where the signature came from: which ROIs, which test, which date.

* GMT: ``NAME_UP`` / ``NAME_DN`` lines (a lone up set is one ``NAME`` line),
  the description field holding a one-line provenance — what
  :func:`napari_roiscore.scoring.signature.load_signatures` reads back as one
  signature with up and down sets.
* YAML: the signature mapping plus a ``provenance`` mapping (full ROI lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from napari_roiscore._atomic import atomic_write_text
from napari_roiscore.analysis.differential import RESEARCH_ONLY, DEResult
from napari_roiscore.errors import RoiScoreError
from napari_roiscore.scoring.signature import Signature

__all__ = ["describe_origin", "signature_from_de", "write_signature"]


def signature_from_de(result: DEResult, *, n_up: int = 5, n_down: int = 0, genes: Sequence[str] | None = None,
                      name: str = "discovered signature", alpha: float | None = None,
                      how: str | None = None) -> Signature:
    """Build a signature from ``result``.

    Parameters
    ----------
    result : DEResult
    n_up, n_down : int
        Top genes by adjusted p with log2FC > 0 (up) and < 0 (down).
    genes : sequence of str, optional
        Explicit selection instead of the top genes.
    name : str
    alpha : float, optional
        Keep only genes with adjusted p below it.
    how : str, optional
        How the genes were chosen, for the provenance (default: said from the arguments).

    Raises
    ------
    RoiScoreError
        A chosen gene is not in the table, or no gene qualifies.
    """
    table = result.table.set_index("gene")
    if genes is not None:
        missing = [g for g in genes if g not in table.index]
        if missing:
            raise RoiScoreError(f"Gene(s) {missing[:5]} are not in the differential-expression table.",
                                "Choose genes from the table.")
        up = [g for g in genes if table.loc[g, "log2FC"] > 0]
        down = [g for g in genes if table.loc[g, "log2FC"] < 0]
    else:
        up = result.top_genes(n_up, "up", alpha) if n_up else []
        down = result.top_genes(n_down, "down", alpha) if n_down else []
    if not up and not down:
        raise RoiScoreError(f"No gene qualifies for a signature from {result.label}"
                            + (f" at adjusted p < {alpha}" if alpha is not None else "") + ".",
                            "Lower the requirement (alpha) or choose genes.")
    how = how or ("chosen genes" if genes is not None else f"top {n_up} up / {n_down} down by adjusted p")
    desc = describe_origin(result, how)
    return Signature(name=name, up=tuple(up), down=tuple(down), description=desc)


def describe_origin(result: DEResult, how: str) -> str:
    """One line saying where a signature came from: genes, comparison, ROIs, test, design, software, date."""
    prov = result.provenance()
    rois = prov["rois"]
    shown = ", ".join(map(str, rois[:12])) + (f" (+{len(rois) - 12} more)" if len(rois) > 12 else "")
    software = ", ".join(f"{k} {prov['software'][k]}" for k in ("napari-roiscore", "pydeseq2", "anndata")
                         if k in prov["software"])
    return (("EXPLORATORY; " if result.exploratory else "")
            + f"{how}; {result.label}; ROIs {shown}; PyDESeq2 Wald test, BH-adjusted; design {result.design_label};"
            f" units {result.units_per_group}; {software}; {result.params.get('date', '')}")


def write_signature(signature: Signature, path: str | Path, result: DEResult | None = None) -> Path:
    """Save ``signature`` as ``.gmt`` or ``.yaml``/``.yml`` with the provenance of ``result``.

    Raises
    ------
    RoiScoreError
        Unknown extension, or a down-only signature as GMT (GMT would read it back as an up set).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gmt":
        if not signature.up:
            raise RoiScoreError("A signature with only down genes cannot be written as GMT "
                                "(it would be read back as an up set).", "Save it as .yaml.")
        desc = " ".join(signature.description.split()) or "discovered signature"
        desc = desc.replace("\t", " ") + f"; {RESEARCH_ONLY}"
        if signature.down:
            lines = [f"{signature.name}_UP\t{desc}\t" + "\t".join(signature.up),
                     f"{signature.name}_DN\t{desc}\t" + "\t".join(signature.down)]
        else:
            lines = [f"{signature.name}\t{desc}\t" + "\t".join(signature.up)]
        return atomic_write_text(path, "\n".join(lines) + "\n")
    if suffix in (".yaml", ".yml"):
        import yaml

        data = signature.to_dict()
        data["research_use_only"] = True
        if result is not None:
            data["provenance"] = result.provenance()
        return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    raise RoiScoreError(f"Unknown signature file extension {suffix!r} for {str(path)!r}.", "Use .gmt or .yaml.")
