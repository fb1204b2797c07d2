"""Figures and reports: score distributions, and a PNG + PDF report of a session.

Uses matplotlib's object API with the Agg/PDF backends only (no pyplot, no
Qt), so reports can be written headless by the CLI as well as from napari.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.outputs import write_all
from napari_roiscore.rois.classes import DEFAULT_CLASSES, class_colour

__all__ = ["draw_distributions", "draw_distributions_on", "software_versions", "write_report"]


def software_versions() -> dict[str, str]:
    """Versions of the software that produced a result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("napari-roiscore", "napari", "numpy", "scipy", "pandas", "anndata",
                "shapely", "tifffile", "scikit-image"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def draw_distributions(fig, values: Mapping[str, np.ndarray], classes: Mapping[str, str]) -> None:
    """Box plots of spot scores per ROI (left) and per class (right) on ``fig``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    values : mapping ROI name -> spot scores of its spots
    classes : mapping ROI name -> class
    """
    fig.clear()
    ax_roi, ax_cls = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.25, top=0.88, wspace=0.25)
    draw_distributions_on(ax_roi, ax_cls, values, classes)


#: at most this many spots per ROI are drawn as dots, per class enter a violin's density
MAX_DOTS = 300
MAX_VIOLIN = 5000


def _thin(values: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """A seeded random subset of at most ``cap`` values (all of them if fewer)."""
    if len(values) <= cap:
        return values
    return np.random.default_rng(seed).choice(values, cap, replace=False)


def draw_distributions_on(ax_roi, ax_cls, values: Mapping[str, np.ndarray], classes: Mapping[str, str]) -> None:
    """:func:`draw_distributions` onto two given axes.

    Boxes use every spot.  To keep redraws fast on 10^5–10^6 spots, at most
    ``MAX_DOTS`` spots per ROI are drawn as dots and a class's violin density is
    estimated from at most ``MAX_VIOLIN`` spots (seeded random subsets).
    """
    names = [n for n, v in values.items() if len(v)]
    if not names:
        for ax in (ax_roi, ax_cls):
            ax.text(0.5, 0.5, "no spots in any ROI", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
        return
    data = [np.asarray(values[n], dtype=float) for n in names]
    bp = ax_roi.boxplot(data, patch_artist=True, widths=0.6, showfliers=False)
    for patch, n in zip(bp["boxes"], names):
        patch.set_facecolor((*class_colour(classes[n]), 0.6))
    for i, d in enumerate(data, start=1):
        d = _thin(d, MAX_DOTS, i)
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, len(d))
        ax_roi.scatter(np.full(len(d), i) + jitter, d, s=6, color="k", alpha=0.5, lw=0)
    ax_roi.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
    ax_roi.set_ylabel("spot score")
    ax_roi.set_title("per ROI", fontsize=9)
    by_class: dict[str, list[np.ndarray]] = {}
    for n, d in zip(names, data):
        by_class.setdefault(classes[n], []).append(d)
    # built-in classes first (tumour left of stroma, as the study reads), then the user's
    builtin = {c: i for i, c in enumerate(DEFAULT_CLASSES)}
    cls_names = sorted(by_class, key=lambda c: (builtin.get(c, len(builtin)), c))
    cls_data = [_thin(np.concatenate(by_class[c]), MAX_VIOLIN, 0) for c in cls_names]
    vp = ax_cls.violinplot(cls_data, showmedians=True)
    for body, c in zip(vp["bodies"], cls_names):
        body.set_facecolor(class_colour(c))
        body.set_alpha(0.6)
    tilt = {"rotation": 30, "ha": "right"} if len(cls_names) > 2 else {}  # long user class names
    ax_cls.set_xticks(range(1, len(cls_names) + 1), cls_names, fontsize=8, **tilt)
    ax_cls.set_title("per class", fontsize=9)


def write_report(stem: str | Path, *, view: np.ndarray | None, table: pd.DataFrame,
                 values: Mapping[str, np.ndarray], classes: Mapping[str, str],
                 metadata: Mapping[str, object], comparison_lines: list[str] | None = None,
                 inputs: Sequence[str | Path | None] = ()) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf``: view, table, plots and metadata.

    Parameters
    ----------
    stem : path without extension
    view : RGB(A) screenshot of the viewer (channels, spots, ROIs), optional
    table : ROI score table
    values, classes : per-ROI spot scores and classes (for the plots)
    metadata : signature, method, thresholds, data paths...; software versions are added
    comparison_lines : lines of the tumour-vs-stroma comparison, optional
    inputs : files read (neither output may replace one); both outputs are written or neither
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stem = Path(stem)
    fig = Figure(figsize=(11.7, 8.3), dpi=150)  # A4 landscape
    FigureCanvasAgg(fig)
    ax_view = fig.add_axes((0.02, 0.40, 0.46, 0.52))
    if view is not None:
        ax_view.imshow(view)
    else:
        ax_view.text(0.5, 0.5, "no view", ha="center", va="center")
    ax_view.set_axis_off()
    ax_view.set_title("view: channels, spots, ROIs", fontsize=9)

    ax_tab = fig.add_axes((0.52, 0.40, 0.46, 0.55))
    ax_tab.set_axis_off()
    columns = ["roi", "class", "spots", "score", "median", "status"]
    cells = _table_cells(table[columns]) if not table.empty else []
    first = cells
    if len(cells) > PAGE1_ROWS:  # the rest goes on the PDF's next pages; the PNG says so
        more = len(cells) - (PAGE1_ROWS - 1)
        first = cells[:PAGE1_ROWS - 1] + [["…", f"{more} more", "", "", "", "PDF p. 2+"]]
    text_top = 1.0
    if first:
        height = ROW_HEIGHT * (len(first) + 1)
        _draw_table(ax_tab, first, columns, height)
        text_top = 1.0 - height - 0.03
    lines = list(comparison_lines or [])
    meta = {**dict(metadata), "software": ", ".join(f"{k} {v}" for k, v in software_versions().items())}
    lines += [f"{k}: {_clip(str(v), 200)}" for k, v in meta.items()]
    wrapped = "\n".join(_wrap(line, 95) for line in lines).split("\n")
    room = max(1, int(text_top / TEXT_LINE))  # lines that fit above the plots
    if len(wrapped) > room:
        wrapped = wrapped[:room - 1] + ["… (the CSV export and the session file hold everything)"]
    ax_tab.text(0.0, text_top, "\n".join(wrapped), fontsize=6.5, va="top",
                transform=ax_tab.transAxes, family="monospace")
    ax_roi = fig.add_axes((0.07, 0.09, 0.50, 0.25))
    ax_cls = fig.add_axes((0.64, 0.09, 0.33, 0.25))
    draw_distributions_on(ax_roi, ax_cls, values, classes)
    fig.suptitle(f"napari-roiscore report — {metadata.get('signature', '')} — research use only", fontsize=10, y=0.995)
    png = stem.with_suffix(".png")
    pdf = stem.with_suffix(".pdf")
    # the whole table on the PDF's next pages when page 1 could not hold it
    pages = [cells[i:i + PAGE_ROWS] for i in range(0, len(cells), PAGE_ROWS)] if len(cells) > PAGE1_ROWS else []

    def write_pdf(p: Path) -> None:
        from matplotlib.backends.backend_pdf import PdfPages

        with PdfPages(p) as out:
            out.savefig(fig)
            for k, rows in enumerate(pages, start=1):
                page = Figure(figsize=(8.3, 11.7), dpi=150)  # A4 portrait
                FigureCanvasAgg(page)
                page.suptitle(f"ROI table, part {k} of {len(pages)} ({len(cells)} ROIs)", fontsize=10)
                ax = page.add_axes((0.06, 0.04, 0.88, 0.90))
                ax.set_axis_off()
                _draw_table(ax, rows, columns, min(1.0, 0.021 * (len(rows) + 1)))
                out.savefig(page)

    write_all([(png, lambda p: fig.savefig(p, format="png")), (pdf, write_pdf)], inputs)
    return png, pdf


#: table rows on the report's first page, and per further PDF page
PAGE1_ROWS = 10
PAGE_ROWS = 45
ROW_HEIGHT = 0.045  # of the table axes on page 1
TEXT_LINE = 0.026  # height of one 6.5 pt text line, in the same units


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _table_cells(table: pd.DataFrame) -> list[list[str]]:
    return [[str(r.roi), str(r._1), str(r.spots), "" if pd.isna(r.score) else f"{r.score:.3f}",
             "" if pd.isna(r.median) else f"{r.median:.3f}", str(r.status)]
            for r in table.itertuples(index=False)]


def _draw_table(ax, cells: list[list[str]], columns: list[str], height: float) -> None:
    tab = ax.table(cellText=cells, colLabels=columns, loc="upper center", bbox=(0.0, 1.0 - height, 1.0, height))
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)


def _wrap(line: str, width: int = 110) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(line, width)) or line
