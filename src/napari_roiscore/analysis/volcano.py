"""Volcano plot of a differential-expression table, and cohort score figures.

Uses matplotlib's object API with the Agg backend only (no pyplot, no Qt), so
the CLI writes the same figures headless that the dock shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_roiscore._atomic import atomic_write
from napari_roiscore.analysis.differential import RESEARCH_ONLY, DEResult

__all__ = ["draw_cohort", "draw_cohort_marker", "draw_volcano", "volcano_points", "write_figure", "write_volcano"]

UP_COLOUR = "#c0392b"
DOWN_COLOUR = "#2471a3"
GREY = "#9a9a9a"


def volcano_points(result: DEResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Genes, log2FC and −log10(p) of the genes with a p-value (the plotted points)."""
    t = result.table.dropna(subset=["log2FC", "p"])
    p = np.clip(t["p"].to_numpy(float), 1e-300, 1.0)
    return t["gene"].to_numpy(str), t["log2FC"].to_numpy(float), -np.log10(p)


def draw_volcano(ax, result: DEResult, *, n_labels: int = 10, alpha: float = 0.05, min_lfc: float = 1.0) -> list[str]:
    """Draw the volcano plot of ``result`` on ``ax``; returns the labelled genes.

    Points are −log10(p) against log2FC; red = up and blue = down with adjusted
    p < ``alpha`` and |log2FC| ≥ ``min_lfc``; the genes with the smallest
    adjusted p are named, half of ``n_labels`` on each side.
    """
    genes, lfc, y = volcano_points(result)
    padj = result.table.set_index("gene").loc[genes, "adjusted_p"].to_numpy(float)
    sig = np.nan_to_num(padj, nan=1.0) < alpha
    up, down = sig & (lfc >= min_lfc), sig & (lfc <= -min_lfc)
    rest = ~(up | down)
    ax.scatter(lfc[rest], y[rest], s=6, c=GREY, alpha=0.6, linewidths=0, label="not significant")
    ax.scatter(lfc[up], y[up], s=10, c=UP_COLOUR, linewidths=0, label=f"up in {result.test} ({int(up.sum())})")
    ax.scatter(lfc[down], y[down], s=10, c=DOWN_COLOUR, linewidths=0,
               label=f"up in {result.reference} ({int(down.sum())})")
    ax.axvline(0, color="k", lw=0.5)
    for x in (-min_lfc, min_lfc):
        ax.axvline(x, color="k", lw=0.5, ls=":")
    n_up = (n_labels + 1) // 2  # both sides named: half the labels each
    labelled = result.top_genes(n_up, "up") + result.top_genes(n_labels - n_up, "down")
    where = {g: i for i, g in enumerate(genes)}
    placed: list[tuple[float, float]] = []
    span_x = float(np.ptp(lfc)) if len(lfc) else 1.0
    span_y = float(np.ptp(y)) if len(y) else 1.0
    for g in sorted((g for g in labelled if g in where), key=lambda g: -y[where[g]]):
        i = where[g]
        crowded = any(abs(lfc[i] - px) < 0.08 * span_x and abs(y[i] - py) < 0.04 * span_y for px, py in placed)
        placed.append((lfc[i], y[i]))
        ax.annotate(g, (lfc[i], y[i]), xytext=(4 if lfc[i] >= 0 else -4, -10 if crowded else 3),
                    textcoords="offset points", ha="left" if lfc[i] >= 0 else "right", fontsize=7)
    ax.set_xlabel(f"log2 fold change ({result.test} / {result.reference})")
    ax.set_ylabel("−log10 p")
    n = result.units_per_group
    unit = result.params.get("unit") or "ROI"
    title = (f"{result.label} — {n[result.test]} vs {n[result.reference]} {unit}s, design {result.design_label}, "
             f"{len(result.metadata)} samples")
    if result.exploratory:
        title = f"EXPLORATORY (too few independent units; p-values do not generalise)\n{title}"
    ax.set_title(title, fontsize=8, **({"color": UP_COLOUR} if result.exploratory else {}))
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return labelled


def draw_cohort(fig, validation) -> None:
    """Score distributions by response (one panel per marker) with the AUC in each title."""
    fig.clear()
    perf = validation.performance.set_index("marker")
    axes = fig.subplots(1, len(perf), squeeze=False)[0]
    pts = validation.patients
    for ax, marker in zip(axes, perf.index):
        r = perf.loc[marker]
        groups = [pts.loc[pts["response"] == v, marker].dropna().to_numpy() for v in (0.0, 1.0)]
        ax.boxplot(groups, showfliers=False)
        ax.set_xticks([1, 2], ["non-responders", "responders"], fontsize=7)
        rng = np.random.default_rng(0)
        for k, vals in enumerate(groups):
            ax.scatter(k + 1 + rng.uniform(-0.12, 0.12, len(vals)), vals, s=10, c="k", alpha=0.7)
        ax.axhline(r["threshold"], color=UP_COLOUR, lw=0.7, ls="--")
        ax.set_title(f"{marker}: AUC {r['auc']:.2f} ({r['ci_low']:.2f}-{r['ci_high']:.2f})", fontsize=8)
    axes[0].set_ylabel("signature score (patient mean)")
    fig.suptitle(f"{validation.mode} — {RESEARCH_ONLY}", fontsize=8)


def draw_cohort_marker(fig, validations: dict, marker: str, threshold: float | None = None) -> None:
    """One marker (tumour, stroma or difference) of one or more validations: patient scores by
    response (left) and ROC curves (right, ``sklearn.metrics.roc_curve``), AUC in the legend.

    ``validations`` maps a label ("as given", "naive", "cross-validated") to a
    :class:`~napari_roiscore.analysis.cohort.CohortValidation`; ``threshold``
    draws a dashed line on the scores.
    """
    from napari_roiscore.analysis.cohort_run import roc_points

    fig.clear()
    dist, roc = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1.0]})
    short = {"cross-validated": "CV", "as given": "given"}
    rng = np.random.default_rng(0)
    ticks, names = [], []
    for k, (label, val) in enumerate(validations.items()):
        pts = val.patients
        for j, (value, who) in enumerate(((0.0, "NR"), (1.0, "R"))):
            x = 3 * k + j + 1
            vals = pts.loc[pts["response"] == value, marker].dropna().to_numpy(float)
            if len(vals):
                dist.boxplot([vals], positions=[x], widths=0.6, showfliers=False)
                dist.scatter(x + rng.uniform(-0.15, 0.15, len(vals)), vals, s=9, alpha=0.8,
                             c=UP_COLOUR if value else DOWN_COLOUR)
            ticks.append(x)
            names.append(f"{who}\n{short.get(label, label)}")
        perf = val.performance.set_index("marker")
        if marker in perf.index:
            fpr, tpr = roc_points(val, marker)
            roc.plot(fpr, tpr, drawstyle="steps-post", label=f"{label}: AUC {perf.loc[marker, 'auc']:.2f}")
    if threshold is not None:
        dist.axhline(threshold, color="0.5", lw=0.8, ls="--")
    dist.set_xticks(ticks, names, fontsize=6)
    dist.set_ylabel(f"{marker} score (patient mean)", fontsize=7)
    dist.set_title(f"{marker}: R vs NR", fontsize=8)
    roc.plot([0, 1], [0, 1], color="0.5", lw=0.6, ls=":")
    roc.set_xlabel("1 − specificity", fontsize=7)
    roc.set_ylabel("sensitivity", fontsize=7)
    roc.set_title("ROC by patient", fontsize=8)
    roc.legend(fontsize=6, loc="lower right", frameon=False)
    fig.text(0.99, 0.005, RESEARCH_ONLY, ha="right", va="bottom", fontsize=6, color="0.5")


def write_figure(path: str | Path, draw, *, size: tuple[float, float] = (7.0, 5.5), dpi: int = 150) -> Path:
    """Draw with ``draw(fig)`` on a headless figure and save it (PNG/PDF/SVG by extension), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    draw(fig)
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, bbox_inches="tight"))


def write_volcano(result: DEResult, path: str | Path, *, n_labels: int = 10, alpha: float = 0.05) -> Path:
    """Save the volcano plot of ``result`` (PNG/PDF/SVG by extension), noting research use only."""
    def draw(fig) -> None:
        draw_volcano(fig.add_subplot(), result, n_labels=n_labels, alpha=alpha)
        fig.text(0.99, 0.005, RESEARCH_ONLY, ha="right", va="bottom", fontsize=6, color="0.4")

    return write_figure(path, draw)
