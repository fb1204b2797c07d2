"""Differential expression between two groups of ROIs (pseudobulk, PyDESeq2).

Method
------
1. Samples are ROI pseudobulks (:mod:`napari_roiscore.analysis.pseudobulk_samples`)
   split into a *test* and a *reference* group by any sample column (ROI
   class, slide attribute, GeoMx annotation column).
2. **Independent units.**  Two ROIs on one slide are not biological replicates.
   The ``unit`` column (slide, or patient in a cohort) names the independent
   units; each group needs at least ``min_units`` (3) distinct units, otherwise
   the test is refused with the reason — said plainly when all compared ROIs
   lie on one slide — (``descriptive=True`` runs it anyway and labels the
   result *exploratory*, :attr:`DEResult.exploratory`: fold changes describe
   these ROIs, p-values do not generalise).
3. **Pooling.**  With ``pool=True`` (default) the ROIs of one unit and one group
   are summed into one sample, so each unit counts once per group (the usual
   pseudobulk practice); ``pool=False`` keeps every ROI as a sample.
4. **Design.**  When units carry ROIs of both groups (tumour and stroma of each
   patient), the unit is a covariate: ``~ unit + group`` (a paired design);
   when each unit belongs to one group only (responders vs non-responders) the
   design is ``~ group``.
5. Counts are rounded to whole numbers (GeoMx probe counts are geometric means
   of probes), genes with fewer than ``min_total`` counts over the compared
   samples are dropped, and PyDESeq2 (``DeseqDataSet`` + ``DeseqStats``:
   median-of-ratios size factors, negative-binomial GLM, Wald test,
   Benjamini–Hochberg adjusted p, Cooks outlier filtering and independent
   filtering as in DESeq2) gives the table.

Research use only.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore._atomic import atomic_write
from napari_roiscore.analysis.pseudobulk_samples import PseudobulkSamples
from napari_roiscore.errors import RoiScoreError

__all__ = ["DE_COLUMNS", "DEResult", "differential_expression", "pool_by_unit"]

DE_COLUMNS = ["gene", "log2FC", "p", "adjusted_p", "base_mean", "lfc_se", "stat"]
RESEARCH_ONLY = "Research use only; not for diagnosis or treatment decisions."


@dataclass(frozen=True)
class DEResult:
    """A differential-expression table and how it was made.

    Attributes
    ----------
    table : DataFrame
        ``gene, log2FC, p, adjusted_p, base_mean, lfc_se, stat`` sorted by
        adjusted p then p; ``log2FC = log2(test / reference)``.
    group_column, test, reference : str
    design : str
        The PyDESeq2 design formula (factors ``group`` and ``unit``).
    counts, metadata : DataFrame
        Exactly what PyDESeq2 was given (whole counts; ``group``/``unit`` columns).
    units_per_group : dict
        Number of independent units in each group.
    descriptive : bool
        True when run with fewer than ``min_units`` units per group (the
        user's explicit choice); :attr:`exploratory` says the same.
    note : str
        What the reader must know (exploratory run, ROIs taken as units...).
    params : dict
    """

    table: pd.DataFrame
    group_column: str
    test: str
    reference: str
    design: str
    counts: pd.DataFrame
    metadata: pd.DataFrame
    units_per_group: dict
    descriptive: bool = False
    note: str = ""
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """One line naming the comparison, e.g. ``class: stroma vs tumour``."""
        return f"{self.group_column}: {self.test} vs {self.reference}"

    @property
    def exploratory(self) -> bool:
        """True when the test ran on too few independent units (by the user's choice): the fold
        changes describe these ROIs, the p-values do not generalise."""
        return bool(self.descriptive)

    @property
    def design_label(self) -> str:
        """The design as a reader names it, e.g. ``~ slide + group`` (``design`` is PyDESeq2's formula)."""
        unit = self.params.get("unit") or "sample"
        terms = [t.strip() for t in self.design.lstrip("~").split("+")]
        return "~ " + " + ".join(unit if t == "unit" else t for t in terms)

    @property
    def headline(self) -> str:
        """The comparison, its design and units; flagged EXPLORATORY when it is."""
        n = self.units_per_group
        unit = self.params.get("unit") or "ROI"
        text = (f"{self.label}, design {self.design_label}, {n[self.test]} vs {n[self.reference]} "
                f"independent {unit}(s)")
        return f"EXPLORATORY — {text}" if self.exploratory else text

    def top_genes(self, n: int, direction: str = "up", alpha: float | None = None) -> list[str]:
        """The ``n`` genes with the smallest adjusted p (then p) changing in ``direction`` ("up"/"down")."""
        t = self.table.dropna(subset=["log2FC", "p"])
        t = t[t["log2FC"] > 0] if direction == "up" else t[t["log2FC"] < 0]
        if alpha is not None:
            t = t[t["adjusted_p"] < alpha]
        t = t.assign(_padj=t["adjusted_p"].fillna(1.0)).sort_values(["_padj", "p"], kind="stable")
        return list(t["gene"].head(n))

    def provenance(self) -> dict:
        """Which ROIs and groups, which test and design, which date and software: for files and reports."""
        from importlib.metadata import PackageNotFoundError, version

        from napari_roiscore.analysis.report import software_versions

        software = software_versions()
        try:
            software["pydeseq2"] = version("pydeseq2")
        except PackageNotFoundError:  # pragma: no cover - PyDESeq2 ran, so it is installed
            pass
        return {
            "comparison": self.label,
            "group_column": self.group_column,
            "test_group": self.test,
            "reference_group": self.reference,
            "test": "PyDESeq2 Wald test (negative-binomial GLM, median-of-ratios size factors), BH-adjusted",
            "design": self.design_label,
            "design_formula": self.design,
            "independent_unit": self.params.get("unit") or "each ROI",
            "samples_test": [s for s, g in zip(self.metadata.index, self.metadata["group"]) if g == "test"],
            "samples_reference": [s for s, g in zip(self.metadata.index, self.metadata["group"]) if g != "test"],
            "rois": list(self.params.get("rois", [])),
            "units_per_group": dict(self.units_per_group),
            "exploratory": self.exploratory,
            "descriptive": self.descriptive,
            "pydeseq2": software.get("pydeseq2", ""),
            "software": software,
            "date": self.params.get("date", ""),
            "note": self.note,
            "research_use_only": RESEARCH_ONLY,
        }

    def to_csv(self, path: str | Path) -> Path:
        """Write the table as CSV (atomically), headed by comment lines naming the comparison."""
        head = [f"# differential expression {self.label}", f"# design {self.design_label}",
                f"# units per group {self.units_per_group}", f"# {RESEARCH_ONLY}"]
        if self.exploratory:
            head.append("# EXPLORATORY: fewer independent units than needed (run as exploratory by choice); "
                        "p-values do not generalise")
        if self.note:
            head.append(f"# note: {' '.join(self.note.split())}")
        head.append(f"# date {self.params.get('date', '')}; PyDESeq2 Wald test, BH-adjusted; "
                    f"rois {len(self.params.get('rois', []))}")

        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write("\n".join(head) + "\n")
                self.table.to_csv(fh, index=False)

        return atomic_write(path, write)


def _column(samples: pd.DataFrame, name: str, what: str) -> pd.Series:
    if name not in samples.columns:
        raise RoiScoreError(f"No sample column {name!r} to use as the {what}.",
                            f"Use one of {sorted(map(str, samples.columns))}.")
    return samples[name].astype(str)


def pool_by_unit(counts: pd.DataFrame, group: pd.Series, unit: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum the samples of each (unit, group) into one; returns counts and metadata (``unit``, ``group``)."""
    keys = list(zip(unit.astype(str), group.astype(str)))
    position = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    order = list(position)
    summed = counts.groupby(np.array([position[k] for k in keys])).sum()
    summed.index = pd.Index([f"{u} | {g}" for u, g in order], name="sample")
    meta = pd.DataFrame({"unit": [u for u, _ in order], "group": [g for _, g in order]}, index=summed.index)
    return summed, meta


def differential_expression(
    samples: PseudobulkSamples,
    group: str,
    test: str,
    reference: str,
    *,
    unit: str | None = "slide",
    pool: bool = True,
    min_units: int = 3,
    descriptive: bool = False,
    min_total: int = 10,
    n_cpus: int = 1,
) -> DEResult:
    """Differential expression of ``test`` vs ``reference`` samples (PyDESeq2).

    Parameters
    ----------
    samples : PseudobulkSamples
    group : str
        Sample column holding the groups (e.g. ``"class"``, ``"response"``).
    test, reference : str
        The two values of ``group`` compared; log2FC is test over reference.
    unit : str or None
        Column naming independent units (``"slide"``, ``"patient"``); ``None``
        treats every sample as independent (only when each ROI truly is, e.g.
        one per patient).
    pool : bool
        Sum the ROIs of one unit and group into one sample.
    min_units : int
        Independent units needed per group.
    descriptive : bool
        Run with fewer units anyway, labelled descriptive.
    min_total : int
        Genes with fewer counts over the compared samples are left out.
    n_cpus : int
        Processes PyDESeq2 may use.

    Raises
    ------
    RoiScoreError
        Unknown column or value, too few independent units (the reason), or
        too few samples for the design.
    """
    meta_all = samples.samples
    values = _column(meta_all, group, "group")
    for v in (test, reference):
        if v not in set(values):
            raise RoiScoreError(f"No sample has {group} = {v!r}.",
                                f"Use values of {group!r}: {sorted(set(values))[:12]}.")
    if str(test) == str(reference):
        raise RoiScoreError(f"Test and reference are both {test!r}.", "Compare two different groups.")
    keep = values.isin([test, reference]).to_numpy()
    counts = samples.counts.loc[keep]
    g = values[keep].map(lambda v: "test" if v == test else "reference")
    units = _column(meta_all, unit, "independent unit")[keep] if unit else pd.Series(counts.index, index=counts.index)
    n_units = {name: int(units[g == code].nunique()) for name, code in ((test, "test"), (reference, "reference"))}
    unit_word = unit or "sample"
    short = {k: v for k, v in n_units.items() if v < min_units}
    note = ""
    one_unit = units.nunique() == 1
    if short:
        why = "; ".join(f"{k!r} has {v} independent {unit_word}(s)" for k, v in short.items())
        if not descriptive:
            problem = (f"Too few replicates for differential expression: {why}; each group needs at least "
                       f"{min_units}. ROIs on one {unit_word} are not independent replicates.")
            if unit and one_unit:
                problem = (f"All {len(units)} compared ROIs lie on one {unit_word} ({units.iloc[0]!r}): ROIs of one "
                           f"{unit_word} are not independent replicates (they share its patient, tissue and "
                           f"processing), and differential expression needs at least {min_units} {unit_word}s "
                           f"per group ({why}).")
            raise RoiScoreError(
                problem,
                f"Add ROIs from at least {min_units} {unit_word}s per group; if each ROI comes from a different "
                "patient (e.g. TMA cores), make each ROI its own unit; or run it as exploratory (descriptive: "
                "fold changes of these ROIs only; p-values do not generalise).")
        note = (f"Exploratory (descriptive), run by choice: {why} (fewer than {min_units}); "
                "p-values do not generalise beyond these ROIs.")
        if unit and pool:
            pool = False  # keep the ROIs: pooling would leave too few samples to fit anything
    elif unit is None and "slide" in meta_all.columns and meta_all["slide"][keep].nunique() == 1:
        note = ("Each ROI was taken as an independent unit, as chosen: right only when every ROI comes from a "
                "different patient (e.g. TMA cores); ROIs of one tissue section are not replicates.")
    if np.any(~np.isfinite(counts.to_numpy())) or np.any(counts.to_numpy() < 0):
        raise RoiScoreError("Pseudobulk counts hold negative or non-finite values.",
                            "Use raw counts (spot tables of raw integer counts).")
    if unit and pool:
        counts, meta = pool_by_unit(counts, g, units)
    else:
        meta = pd.DataFrame({"unit": units.astype(str), "group": g}, index=counts.index)
    both = meta.groupby("unit")["group"].nunique()
    # a unit factor only with two or more units (one slide's ROIs have nothing to pair on)
    paired = bool(unit) and len(both) > 1 and (both == 2).any() and len(meta) > meta["unit"].nunique() + 1
    design = "~unit + group" if paired else "~group"
    whole = np.rint(counts.to_numpy()).astype(np.int64)
    keep_genes = whole.sum(axis=0) >= min_total
    if not keep_genes.any():
        raise RoiScoreError(f"No gene has {min_total} or more counts over the compared samples.",
                            "Check that the ROIs hold spots with counts.")
    int_counts = pd.DataFrame(whole[:, keep_genes], index=counts.index.astype(str),
                              columns=counts.columns[keep_genes])
    meta.index = int_counts.index
    n_params = (meta["unit"].nunique() if paired else 1) + 1
    if len(meta) <= n_params:
        raise RoiScoreError(f"{len(meta)} samples cannot fit the design {design} ({n_params} parameters).",
                            "Add ROIs or units.")
    table = _run_pydeseq2(int_counts, meta, design, n_cpus)
    if unit and not pool and not paired and not short and not note:
        note = f"ROIs of one {unit_word} were treated as independent samples (pool=False)."
    return DEResult(
        table=table, group_column=group, test=str(test), reference=str(reference), design=design,
        counts=int_counts, metadata=meta, units_per_group=n_units, descriptive=bool(short), note=note,
        params={"unit": unit, "pool": pool, "min_units": min_units, "min_total": min_total,
                "rois": list(samples.counts.index[keep]),
                "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")},
    )


def _run_pydeseq2(counts: pd.DataFrame, meta: pd.DataFrame, design: str, n_cpus: int) -> pd.DataFrame:
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    inference = DefaultInference(n_cpus=n_cpus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. "trend curve did not converge": a fallback, noted
        warnings.simplefilter("ignore", RuntimeWarning)
        dds = DeseqDataSet(counts=counts, metadata=meta, design=design, refit_cooks=True,
                           inference=inference, quiet=True)
        dds.deseq2()
        stats = DeseqStats(dds, contrast=["group", "test", "reference"], inference=inference, quiet=True)
        stats.summary()
    res = stats.results_df
    table = pd.DataFrame({
        "gene": res.index.astype(str),
        "log2FC": res["log2FoldChange"].to_numpy(),
        "p": res["pvalue"].to_numpy(),
        "adjusted_p": res["padj"].to_numpy(),
        "base_mean": res["baseMean"].to_numpy(),
        "lfc_se": res["lfcSE"].to_numpy(),
        "stat": res["stat"].to_numpy(),
    })
    order = np.lexsort((table["p"].fillna(2.0).to_numpy(), table["adjusted_p"].fillna(2.0).to_numpy()))
    return table.iloc[order].reset_index(drop=True)
