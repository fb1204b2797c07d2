"""GeoMx DSP NGS readout: DCC files + PKC probe kits + annotation sheet.

One observation per AOI (area of illumination = one sequenced library).

* **DCC** (one per well/AOI): sections ``<Header>``, ``<Scan_Attributes>``,
  ``<NGS_Processing_Attributes>`` and ``<Code_Summary>`` (``RTS_ID,count``).
* **PKC** (JSON, one per probe kit; loose ``.pkc`` files or a ``.zip`` of
  them): ``Targets[].DisplayName`` (gene), ``CodeClass`` (Endogenous,
  Control, Negative) and ``Probes[].RTS_ID``.
* **Annotation sheet** (``.xlsx`` or ``.csv``): one row per DCC, keyed by
  ``Sample_ID``; ``slide name`` == "No Template Control" marks the NTC well.

Probes are combined per target gene by the rule GeomxTools documents for
``aggregateCounts`` (default ``ngeoMean``; tested by hand against that rule,
not against the R package itself): within one AOI, if any probe count of the gene is
below 0.5, 0.5 is added to all of that gene's probe counts, then the
geometric mean is taken.  The result is therefore a non-negative real count
(0 probes counted → 0.5), not an integer.  Probes missing from a DCC count 0;
DCC probes absent from every PKC are ignored (their number is kept in the
provenance).

Placement: a GeoMx NGS export carries no pixel coordinates.  When the
annotation sheet has ROI coordinate columns (``ROICoordinateX``/``Y``,
``roi_x``/``roi_y`` or ``x``/``y``) they are used as (x, y) pixels.  Otherwise
AOIs are laid out on a **grid**: one row per slide (in sheet order), AOIs
along the row in sheet order; spots are ``GRID_SPOT_DIAMETER_PX`` wide on a
``GRID_PITCH_PX`` pitch, and ``obs["has_coordinates"]`` is ``False`` so
nobody mistakes the grid for tissue positions.

No template control: the NTC well(s) are a sequencing control, not a
sample, so they are **left out** of the observations
(and so of every normalisation, z-score and ROI statistic).  Their ids and
number are kept in ``provenance["ntc_wells_left_out"]`` and
``provenance["n_ntc_wells_left_out"]``; every AOI keeps ``obs["ntc_count"]``
(total counts of its NTC well).

Parsing the DCC and PKC files themselves lives in
:mod:`napari_roiscore.readers.geomx_dcc_pkc`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import require_regular_file
from napari_roiscore.readers.geomx_dcc_pkc import MAX_PKC_BYTES, read_dcc, read_pkc
from napari_roiscore.spots.checks import reader_errors
from napari_roiscore.spots.table import SpotTable

__all__ = ["GRID_PITCH_PX", "GRID_SPOT_DIAMETER_PX", "MAX_PKC_BYTES", "combine_probes", "read_dcc",
           "read_geomx_ngs", "read_pkc"]

GRID_SPOT_DIAMETER_PX = 100.0
GRID_PITCH_PX = 150.0
_COORD_COLUMNS = [("roicoordinatex", "roicoordinatey"), ("roix", "roiy"), ("x", "y")]


def combine_probes(probe_counts: np.ndarray, targets: np.ndarray, thresh: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Combine probe counts per target by a thresholded geometric mean
    (the rule GeomxTools documents as ``ngeoMean``).

    Parameters
    ----------
    probe_counts : numpy.ndarray
        AOIs x probes.
    targets : numpy.ndarray
        Target (gene) of each probe.
    thresh : float
        Within one AOI and target, if any probe count is below ``thresh``,
        ``thresh`` is added to all of them before the geometric mean.

    Returns
    -------
    (values, target_names)
        AOIs x targets, targets sorted by name.
    """
    targets = np.asarray(targets, dtype=str)
    order = np.argsort(targets, kind="stable")
    t_sorted = targets[order]
    names, starts, sizes = np.unique(t_sorted, return_index=True, return_counts=True)
    x = np.asarray(probe_counts, dtype=float)[:, order]
    low = np.minimum.reduceat(x, starts, axis=1) < thresh  # AOIs x targets
    shift = np.repeat(low, sizes, axis=1) * thresh
    logs = np.add.reduceat(np.log(x + shift), starts, axis=1)
    return np.exp(logs / sizes), names


def _norm(col: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(col).lower())


def _find_inputs(folder: Path) -> tuple[list[Path], list[Path], Path]:
    dcc_dir = folder / "dcc" if (folder / "dcc").is_dir() else folder
    dccs = sorted(dcc_dir.glob("*.dcc"))
    if not dccs:
        raise RoiScoreError(f"GeoMx folder {str(folder)!r}: no '*.dcc' files (in it or in 'dcc/').",
                            "Copy the DCC files of the NGS readout into the folder.")
    pkcs = sorted(folder.glob("*.pkc")) or sorted(folder.glob("*.zip"))
    if not pkcs:
        raise RoiScoreError(f"GeoMx folder {str(folder)!r}: no '*.pkc' file (or .zip of them).",
                            "Copy the probe kit configuration (.pkc) files into the folder.")
    sheets = sorted(p for p in folder.glob("*.xlsx") if not p.name.startswith("~$"))
    if len(sheets) != 1:
        what = "no annotation sheet '*.xlsx'" if not sheets else f"several .xlsx files {[s.name for s in sheets]}"
        raise RoiScoreError(f"GeoMx folder {str(folder)!r}: {what}.",
                            "Keep exactly one annotation sheet, or pass annotations= explicitly.")
    return dccs, pkcs, sheets[0]


def _read_annotations(path: Path, sheet: str | int | None, id_column: str) -> pd.DataFrame:
    if not path.is_file():
        raise RoiScoreError(f"annotation sheet {str(path)!r} is missing.", "Give the GeoMx annotation .xlsx.")
    require_regular_file(path, "Annotation sheet")
    with reader_errors(f"annotation sheet {str(path)!r}", "Save the sheet again from Excel, or export it as CSV."):
        if path.suffix.lower() in (".csv", ".txt", ".tsv"):
            ann = pd.read_csv(path, sep=None, engine="python", encoding="utf-8-sig")
        else:
            ann = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0)
    cols = {_norm(c): c for c in ann.columns}
    key = cols.get(_norm(id_column))
    if key is None:
        raise RoiScoreError(f"annotation sheet {str(path)!r}: column {id_column!r} is missing.",
                            f"Name the DCC id column {id_column!r} (columns: {list(ann.columns)}).")
    ann = ann.rename(columns={key: "Sample_ID"})
    ann["Sample_ID"] = ann["Sample_ID"].astype(str).str.strip().str.replace(r"\.dcc$", "", regex=True)
    ann = ann[ann["Sample_ID"].ne("nan")]
    if ann["Sample_ID"].duplicated().any():
        dup = ann.loc[ann["Sample_ID"].duplicated(), "Sample_ID"].head(3).tolist()
        raise RoiScoreError(f"annotation sheet {str(path)!r}: duplicate Sample_ID {dup}.",
                            "Give each DCC one row.")
    return ann.reset_index(drop=True)


def _layout(obs: pd.DataFrame) -> tuple[np.ndarray, bool, str]:
    cols = {_norm(c): c for c in obs.columns}
    for cx, cy in _COORD_COLUMNS:
        if cx in cols and cy in cols:
            xy = obs[[cols[cx], cols[cy]]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
            if np.isfinite(xy).all():
                return xy, True, f"annotation columns {cols[cx]!r}, {cols[cy]!r}"
    slide_col = next((obs.columns[i] for i, c in enumerate(map(_norm, obs.columns)) if c == "slidename"), None)
    slides = (obs[slide_col].astype(str) if slide_col else pd.Series("slide", index=obs.index)).to_numpy()
    xy = np.zeros((len(obs), 2))
    for r, s in enumerate(dict.fromkeys(slides)):
        idx = np.flatnonzero(slides == s)
        xy[idx, 0] = np.arange(len(idx)) * GRID_PITCH_PX
        xy[idx, 1] = r * GRID_PITCH_PX
    return xy, False, "grid: one row per slide in sheet order (no ROI coordinates in the annotations)"


def read_geomx_ngs(path: str | Path | None = None, *, dcc: list | None = None, pkc: list | str | Path | None = None,
                   annotations: str | Path | None = None, sheet: str | int | None = None,
                   id_column: str = "Sample_ID",
                   progress: Callable[[int, int], None] | None = None) -> SpotTable:
    """Read a GeoMx DSP NGS readout into a :class:`SpotTable` (one spot per AOI).

    Parameters
    ----------
    path : str or Path, optional
        A folder with the DCC files (in it or in ``dcc/``), the ``.pkc`` files
        (or a ``.zip`` of them) and one annotation ``.xlsx``.
    dcc, pkc, annotations : optional
        Explicit inputs; they override what is found in ``path``.
    sheet : str or int, optional
        Sheet of the annotation workbook (default: the first).
    id_column : str
        Annotation column holding the DCC ids.
    progress : callable, optional
        Called as ``progress(done, total)`` after each DCC file is read
        (``total`` = number of DCC files to read), e.g. to drive a progress
        bar; reading a 96-well plate takes a few seconds.

    Raises
    ------
    RoiScoreError
        Missing inputs (named), malformed files, or no DCC matching the annotations.
    """
    import anndata as ad

    found_dcc = found_pkc = found_ann = None
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise RoiScoreError(f"GeoMx folder {str(folder)!r} does not exist.", "Check the path.")
        if dcc is None or pkc is None or annotations is None:
            found_dcc, found_pkc, found_ann = _find_inputs(folder)
    dcc_paths = [Path(p) for p in (dcc if dcc is not None else found_dcc or [])]
    pkc_paths = pkc if pkc is not None else found_pkc
    ann_path = Path(annotations) if annotations is not None else found_ann
    if not dcc_paths or pkc_paths is None or ann_path is None:
        raise RoiScoreError("GeoMx reader needs DCC files, PKC files and an annotation sheet.",
                            "Pass a folder holding all three, or dcc=, pkc= and annotations=.")
    probes = read_pkc(pkc_paths)
    ann = _read_annotations(ann_path, sheet, id_column)
    dccs = {p.stem: p for p in dcc_paths}
    no_file = [s for s in ann["Sample_ID"] if s not in dccs]
    no_annotation = sorted(set(dccs) - set(ann["Sample_ID"]))
    if no_file:
        warnings.warn(f"GeoMx: {len(no_file)} annotated AOI(s) have no DCC file and are left out, "
                      f"e.g. {no_file[:3]}", stacklevel=2)
    if no_annotation:
        warnings.warn(f"GeoMx: {len(no_annotation)} DCC file(s) have no annotation row and are left out, "
                      f"e.g. {no_annotation[:3]}", stacklevel=2)
    ann = ann[ann["Sample_ID"].isin(dccs)].reset_index(drop=True)
    if ann.empty:
        raise RoiScoreError(f"no DCC file matches a {id_column!r} of {str(ann_path)!r}.",
                            "Check that the annotation sheet belongs to these DCC files.")
    parsed = {}
    n_dcc = len(ann)
    for i, s in enumerate(ann["Sample_ID"]):
        parsed[s] = read_dcc(dccs[s])
        if progress is not None:
            progress(i + 1, n_dcc)
    empty = [s for s, d in parsed.items() if d["Code_Summary"].empty]
    ann = ann[~ann["Sample_ID"].isin(empty)].reset_index(drop=True)
    probe_ids = probes.index
    mat = np.zeros((len(ann), len(probe_ids)))
    unknown: set[str] = set()
    for i, s in enumerate(ann["Sample_ID"]):
        cs = parsed[s]["Code_Summary"]
        unknown |= set(cs.index.difference(probe_ids))
        mat[i] = cs.reindex(probe_ids, fill_value=0.0).to_numpy()
    values, genes = combine_probes(mat, probes["target"].to_numpy())
    first = probes.reset_index().drop_duplicates("target").set_index("target").loc[genes]
    var = pd.DataFrame({
        "gene_symbols": genes,
        "module": first["module"].to_numpy(dtype=str),
        "code_class": first["code_class"].to_numpy(dtype=str),
        "negative_probe": first["code_class"].str.contains("Negative").to_numpy(),
        "n_probes": probes["target"].value_counts().reindex(genes).to_numpy(),
    }, index=pd.Index(genes))
    # observations: annotation + DCC attributes
    obs = ann.copy()
    for c in obs.columns:
        if obs[c].dtype == object:
            obs[c] = obs[c].astype(str).replace("nan", "")
    slide_col = next((c for c in obs.columns if _norm(c) == "slidename"), None)
    is_ntc = (obs[slide_col].str.strip().str.lower() == "no template control").to_numpy() \
        if slide_col else np.zeros(len(obs), bool)
    totals = mat.sum(axis=1)
    ntc_rows = np.flatnonzero(is_ntc)
    if len(ntc_rows):
        prev = np.searchsorted(ntc_rows, np.arange(len(obs)), side="right") - 1
        obs["ntc_count"] = totals[ntc_rows[np.maximum(prev, 0)]]
    obs["probe_total"] = totals
    for s_i, s in enumerate(obs["Sample_ID"]):
        d = parsed[s]
        for sec in ("Scan_Attributes", "NGS_Processing_Attributes"):
            for k in ("Plate_ID", "Well", "Raw", "Trimmed", "Stitched", "Aligned", "DeduplicatedReads"):
                if k in d.get(sec, {}):
                    obs.loc[s_i, k] = d[sec][k]
    for k in ("Raw", "Trimmed", "Stitched", "Aligned", "DeduplicatedReads"):
        if k in obs:
            obs[k] = pd.to_numeric(obs[k], errors="coerce")
    obs.index = pd.Index(obs["Sample_ID"].to_numpy(dtype=str))
    ntc_wells = obs.index[is_ntc].tolist()
    if len(ntc_wells) == len(obs):
        raise RoiScoreError(f"GeoMx annotations {str(ann_path)!r}: every well is a No Template Control.",
                            "Check the slide name column: only the NTC well says 'No Template Control'.")
    obs, values = obs[~is_ntc].copy(), values[~is_ntc]  # the NTC is a control, not a sample
    obs["in_tissue"] = True
    xy, has_xy, how = _layout(obs)
    obs["has_coordinates"] = has_xy
    import scipy.sparse as sp

    adata = ad.AnnData(X=sp.csr_matrix(values), obs=obs, var=var)
    adata.obsm["spatial"] = xy
    return SpotTable(
        adata=adata, diameter_px=GRID_SPOT_DIAMETER_PX, shape="circle", pixel_size_um=None,
        provenance={
            "reader": "geomx_ngs", "path": str(path) if path is not None else str(ann_path.parent),
            "dcc": [str(dccs[s]) for s in obs["Sample_ID"]],
            "pkc": [str(p) for p in (pkc_paths if isinstance(pkc_paths, (list, tuple)) else [pkc_paths])],
            "annotations": str(ann_path), "coordinates": how,
            "probe_aggregation": "GeomxTools ngeoMean (thresh 0.5)",
            "dcc_probes_not_in_pkc": len(unknown), "dcc_without_annotation": no_annotation,
            "annotated_without_dcc": no_file, "dcc_without_counts": empty,
            "ntc_wells_left_out": ntc_wells, "n_ntc_wells_left_out": len(ntc_wells),
        },
    )
