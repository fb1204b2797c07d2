"""GeoMx DSP analysis-suite exports: segment properties + target counts → one spot per AOI.

The DSP "Export data" workbook (``.xlsx``) holds, among other sheets,

* a **segment properties** table (sheet ``SegmentProperties``): one row per
  AOI (segment) with ``SegmentDisplayName`` (the AOI's unique name, e.g.
  ``"slide 1 | 004 | PanCK"``), ``SlideName``, ``ScanLabel``, ``ROILabel``,
  ``SegmentLabel``, ``AOISurfaceArea`` (µm²), ``AOINucleiCount``,
  ``ROICoordinateX``/``ROICoordinateY`` (the ROI's centre of mass on the scan)
  and QC columns;
* a **counts** table: ``TargetCountMatrix`` (one row per target gene,
  ``TargetName`` + one column per AOI named by its ``SegmentDisplayName``) or
  ``BioProbeCountMatrix`` (one row per probe, with ``ProbeName``/
  ``ProbeDisplayName``, ``TargetName``, ``CodeClass``… and the same AOI
  columns).  Normalised copies (e.g. ``Q3Norm_TargetCountMatrix``) have the
  same layout.

The two tables may also come as separate ``.csv``/``.tsv``/``.txt`` files
(e.g. ``Sample_Annotations.txt`` + ``Q3Norm_TargetCountMatrix.txt``).  Tables
are recognised by their header (``SegmentDisplayName``; ``TargetName`` plus
columns named like the AOIs), not by their name.

Probe rows of one target are combined by the thresholded geometric mean
of :func:`~napari_roiscore.readers.geomx.combine_probes` (GeomxTools' documented rule).

**Raw or normalised?**  ``counts_kind="auto"`` decides, in this order: a
``Q3`` in the sheet/file name → ``"q3"``; ``raw`` in the name, or whole
numbers only (negative-probe rows aside) → ``"raw"``; every AOI's 75th percentile equal (the fingerprint of
Q3 normalisation, which scales each AOI to the geometric mean of all AOIs'
third quartiles) → ``"q3"``; otherwise ``"normalised"`` with a warning (raw
*target* counts of a multi-probe panel are non-integer geometric means: pass
``counts_kind="raw"`` for them — unless the export also holds the raw
probe table and combining it gives these values, which settles it as
``"raw"``).  The result is stored in
``provenance["counts_kind"]`` and ``adata.uns["roiscore"]["counts_kind"]``.

What that means for scoring: nothing is silently converted.  ``X`` holds the
values as exported.  Pseudobulk and mean-of-z-scores run on them as they are
(for Q3 values, the per-AOI library-size step only rescales an already
scaled profile; rank methods — UCell, singscore — do not depend on scale).
Anything that needs raw counts (e.g. count models) should check
``provenance["counts_kind"] == "raw"`` first.

**Placement.**  With ``ROICoordinateX``/``Y`` the AOI is drawn at its ROI's
centre (in scan pixels), as a circle whose area is ``AOISurfaceArea`` (the
ROI outline is not in the export).  Segments of one ROI (e.g. PanCK+ and
PanCK− of ROI 004) share the centre and are drawn as concentric circles.
Several scans in one export share one coordinate frame per scan, so scans are
placed side by side along x (offset in ``obs["scan_offset_x"]``); pass
``scan=`` to read one scan at its own coordinates, to overlay on its image.
Without coordinates AOIs are laid out on a grid (one row per slide) and
``obs["has_coordinates"]`` is ``False``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.readers.geomx import GRID_SPOT_DIAMETER_PX, combine_probes
from napari_roiscore.readers.geomx_export_layout import _coordinates, _grid
from napari_roiscore.readers.geomx_export_tables import (_PROBE_COLUMNS, _Table, _column, _count_candidates, _norm,
                                                        _read_table, _segment_candidates, _tables_in,
                                                        find_geomx_export, is_geomx_export)

__all__ = [
    "COUNTS_KINDS",
    "DEFAULT_AOI_DIAMETER_UM",
    "GEOMX_SCAN_PIXEL_SIZE_UM",
    "detect_counts_kind",
    "find_geomx_export",
    "is_geomx_export",
    "read_geomx_export",
]

#: what the values of the counts table are
COUNTS_KINDS = ("raw", "q3", "normalised")
#: Pixel size assumed for ROI coordinates when none is given: GeoMx DSP scans are
#: written at 25 145 pixels/cm (TIFF resolution tag of a DSP raw scan), i.e. 0.3977 µm.
GEOMX_SCAN_PIXEL_SIZE_UM = 1e4 / 25145
#: diameter drawn when the export has no AOISurfaceArea (display only)
DEFAULT_AOI_DIAMETER_UM = 200.0

def detect_counts_kind(values: np.ndarray, name: str = "", negative: np.ndarray | None = None
                       ) -> tuple[str, str]:
    """Guess whether a features × AOIs table holds raw counts or Q3/other normalised values.

    Parameters
    ----------
    values : numpy.ndarray
        Features (rows) × AOIs (columns).
    name : str
        Sheet and/or file name (``Q3`` or ``raw`` in it decides).
    negative : numpy.ndarray of bool, optional
        Negative-probe rows, left out of the 75th-percentile check.

    Returns
    -------
    (kind, reason)
        ``kind`` is one of :data:`COUNTS_KINDS`; ``reason`` says why.
    """
    hint = _norm(name)
    if "q3" in hint:
        return "q3", f"'Q3' in the table name {name!r}"
    if "raw" in hint:
        return "raw", f"'raw' in the table name {name!r}"
    v = np.asarray(values, dtype=float)
    keep = ~np.asarray(negative, bool) if negative is not None and (~np.asarray(negative, bool)).any() \
        else np.ones(v.shape[0], bool)
    if np.allclose(v[keep], np.round(v[keep])):
        # negative probes of a target table are geometric means of many probes, hence not whole
        return "raw", "all values (negative probes aside) are whole numbers"
    for rows in (keep, slice(None)):  # Q3 taken without or with the negative probes
        q3 = np.percentile(v[rows], 75, axis=0)
        if v.shape[1] > 1 and np.all(q3 > 0) and np.ptp(q3) <= 1e-3 * np.max(q3):
            return "q3", "every AOI has the same 75th percentile (the mark of Q3 normalisation)"
    if "norm" in hint:
        return "normalised", f"'norm' in the table name {name!r}"
    return "normalised", "values are not whole numbers and not Q3-scaled"


def _segments(t: _Table) -> pd.DataFrame:
    seg = _read_table(t)
    key = _column(seg, "SegmentDisplayName")
    if key is None:  # pragma: no cover - the header said it was there
        raise RoiScoreError(f"{t.label!r}: column 'SegmentDisplayName' is missing.", "Use the DSP export.")
    seg = seg.rename(columns={key: "SegmentDisplayName"})
    seg["SegmentDisplayName"] = seg["SegmentDisplayName"].astype(str).str.strip()
    seg = seg[~seg["SegmentDisplayName"].isin(["", "nan"])]
    dup = seg["SegmentDisplayName"].duplicated()
    if dup.any():
        same = seg.drop_duplicates().shape[0] == (~dup).sum()
        if not same:
            names = seg.loc[dup, "SegmentDisplayName"].head(3).tolist()
            raise RoiScoreError(f"segment table {t.label!r}: SegmentDisplayName {names} appears on rows "
                                "with different properties.",
                                "Give each AOI one row (its SegmentDisplayName must be unique).")
        seg = seg[~dup]
    if seg.empty:
        raise RoiScoreError(f"segment table {t.label!r} has no AOI rows.", "Export the segment properties again.")
    return seg.reset_index(drop=True)


def _choose_counts(cands: list[_Table], segment_names: set[str], counts_kind: str, counts_sheet: str | None,
                   label: str) -> _Table:
    if counts_sheet is not None:
        chosen = [t for t in cands if _norm(t.sheet or t.file.stem) == _norm(counts_sheet)]
        if not chosen:
            raise RoiScoreError(f"GeoMx export {label!r}: counts sheet {counts_sheet!r} not found.",
                                f"Use one of {[t.sheet or t.file.name for t in cands]}.")
        return chosen[0]
    matching = [t for t in cands if segment_names & {h.strip() for h in t.header}]
    if not matching:
        raise RoiScoreError(f"GeoMx export {label!r}: no counts table has columns named like the AOIs "
                            f"(SegmentDisplayName, e.g. {sorted(segment_names)[:2]}).",
                            "Export the TargetCountMatrix (or BioProbeCountMatrix) with the segment properties.")

    def rank(t: _Table) -> tuple:
        hint = t.name_hint
        normalised = "q3" in hint or "norm" in hint
        want_q3 = counts_kind == "q3"
        return ((("q3" not in hint) if want_q3 else normalised),
                any(t.has(c) for c in _PROBE_COLUMNS),  # target table before probe table
                -len(segment_names & {h.strip() for h in t.header}))
    return sorted(matching, key=rank)[0]


def _counts(t: _Table, segment_names: list[str]) -> tuple[np.ndarray, pd.DataFrame, list[str], dict]:
    """AOIs x targets values, per-target annotations, AOIs found, notes."""
    df = _read_table(t)
    target_col = _column(df, "TargetName")
    df = df[df[target_col].notna()].copy()
    df[target_col] = df[target_col].astype(str).str.strip()
    present = [s for s in segment_names if s in df.columns]
    ann_cols = [c for c in df.columns if c not in set(segment_names)]
    values = df[present].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise RoiScoreError(f"counts table {t.label!r}: value {df[present].iat[r, c]!r} of target "
                            f"{df[target_col].iat[r]!r} in AOI {present[c]!r} is not a number "
                            f"({int(bad.sum())} such cells).", "Export the counts again; empty cells are not counts.")
    if (values < 0).any():
        r, c = np.argwhere(values < 0)[0]
        raise RoiScoreError(f"counts table {t.label!r}: negative value {values[r, c]} (target "
                            f"{df[target_col].iat[r]!r}, AOI {present[c]!r}) — log-scale values are not "
                            "supported.", "Export raw or Q3-normalised (linear) counts.")
    targets = df[target_col].to_numpy(dtype=str)
    code_col = _column(df, "CodeClass")
    negative = np.char.startswith(np.char.lower(targets.astype(str)), "negprobe")
    if code_col is not None:
        negative |= df[code_col].astype(str).str.contains("Negative", case=False).to_numpy()
    return values, df[ann_cols].rename(columns={target_col: "TargetName"}), present, {"negative": negative}


def _combine(values: np.ndarray, ann: pd.DataFrame, negative: np.ndarray) -> tuple[np.ndarray, pd.DataFrame, bool]:
    """Targets × AOIs from feature rows; probe rows of one target by thresholded geometric mean."""
    targets = ann["TargetName"].to_numpy(dtype=str)
    combined = len(np.unique(targets)) < len(targets)
    if combined:
        x, names = combine_probes(values.T, targets)
    else:
        order = np.argsort(targets, kind="stable")
        x, names = values.T[:, order], targets[order]
    first = ann.assign(_neg=negative).drop_duplicates("TargetName").set_index("TargetName").loc[names]
    var = pd.DataFrame(index=pd.Index(names, name=None))
    var["gene_symbols"] = names
    for c in first.columns:
        if c != "_neg" and _norm(c) not in _PROBE_COLUMNS:
            var[c] = first[c].astype(str).replace("nan", "").to_numpy()
    var["negative_probe"] = first["_neg"].to_numpy(bool)
    var["n_probes"] = pd.Series(targets).value_counts().reindex(names).to_numpy()
    return x, var, combined


def _check_against_probes(x: np.ndarray, var: pd.DataFrame, aois: list[str], tables: list[_Table],
                          chosen: _Table) -> tuple[str, str] | None:
    """``("raw", why)`` if a probe table of the same export, combined per target, gives ``x``."""
    for t in tables:
        if t == chosen or not any(t.has(c) for c in _PROBE_COLUMNS):
            continue
        try:
            pv, pann, ppresent, pextra = _counts(t, aois)
        except RoiScoreError:
            continue
        if ppresent != aois or not np.allclose(pv, np.round(pv)):
            continue
        px, pvar, _ = _combine(pv, pann, pextra["negative"])
        common = var.index.intersection(pvar.index)
        if len(common) == len(var.index) and np.allclose(
                x[:, var.index.get_indexer(common)], px[:, pvar.index.get_indexer(common)], rtol=1e-3, atol=1e-3):
            return "raw", f"equals the per-target geometric mean of the raw probe counts in {t.label!r}"
    return None


def read_geomx_export(path: str | Path | None = None, *, segments: str | Path | None = None,
                      counts: str | Path | None = None, segments_sheet: str | None = None,
                      counts_sheet: str | None = None, counts_kind: str = "auto", scan: str | None = None,
                      pixel_size_um: float | None = None) -> SpotTable:
    """Read a GeoMx DSP analysis-suite export into a :class:`SpotTable` (one spot per AOI).

    Parameters
    ----------
    path : str or Path, optional
        The export workbook (``.xlsx``), or a folder holding it or the two
        tables as ``.csv``/``.tsv``/``.txt`` files.
    segments, counts : str or Path, optional
        The segment-properties table and the counts table given explicitly
        (workbook or text file); they override what is found in ``path``.
    segments_sheet, counts_sheet : str, optional
        Sheet names, when the workbook has several candidates (default: the
        ``SegmentProperties`` sheet; a raw ``TargetCountMatrix`` before a
        ``BioProbeCountMatrix``, normalised sheets last unless
        ``counts_kind="q3"``).
    counts_kind : {"auto", "raw", "q3", "normalised"}
        What the counts table holds; ``"auto"`` detects it (see module notes).
    scan : str, optional
        Read only the AOIs of this ``ScanLabel`` (or ``SlideName``), at its own
        ROI coordinates.
    pixel_size_um : float, optional
        Size of one scan pixel in µm, used to draw AOIs at their area; default
        :data:`GEOMX_SCAN_PIXEL_SIZE_UM` (recorded as assumed).

    Raises
    ------
    RoiScoreError
        Missing or unrecognised tables (named), AOIs absent from the counts,
        non-numeric or negative values, unknown ``scan``/``counts_kind``.
    """
    import anndata as ad
    import scipy.sparse as sp

    if counts_kind not in ("auto", *COUNTS_KINDS):
        raise RoiScoreError(f"counts_kind {counts_kind!r} is not known.", f"Use 'auto' or one of {COUNTS_KINDS}.")
    if pixel_size_um is not None and not (np.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise RoiScoreError(f"pixel_size_um {pixel_size_um!r} is not a positive number.",
                            "Give the scan's pixel size in µm (e.g. 0.3977).")
    label = str(path if path is not None else segments)
    if path is not None and not Path(path).exists():
        raise RoiScoreError(f"GeoMx export {label!r} does not exist.", "Check the path.")
    found = _tables_in(Path(path)) if path is not None else []
    seg_tables = _segment_candidates(_tables_in(Path(segments)) if segments is not None else found)
    if segments_sheet is not None:
        seg_tables = [t for t in seg_tables if _norm(t.sheet or t.file.stem) == _norm(segments_sheet)]
    if not seg_tables:
        where = segments if segments is not None else path
        raise RoiScoreError(f"GeoMx export {str(where)!r}: no segment properties table (a sheet or file with a "
                            f"'SegmentDisplayName' column{f' named {segments_sheet!r}' if segments_sheet else ''}).",
                            "Export 'SegmentProperties' from the DSP, or pass segments=.")
    cnt_tables = _count_candidates(_tables_in(Path(counts)) if counts is not None else found)
    if not cnt_tables:
        where = counts if counts is not None else path
        raise RoiScoreError(f"GeoMx export {str(where)!r}: no counts table (a sheet or file with a 'TargetName' "
                            "column and one column per AOI).",
                            "Export 'TargetCountMatrix' or 'BioProbeCountMatrix' from the DSP, or pass counts=.")
    seg_t = seg_tables[0]
    seg = _segments(seg_t)
    names = seg["SegmentDisplayName"].tolist()
    cnt_t = _choose_counts(cnt_tables, set(names), counts_kind, counts_sheet, label)
    values, ann, present, extra = _counts(cnt_t, names)
    if not present:
        raise RoiScoreError(f"counts table {cnt_t.label!r}: no column matches a SegmentDisplayName of "
                            f"{seg_t.label!r} (e.g. {names[:2]}).",
                            "Use the counts and segment tables of the same export.")
    no_counts = [s for s in names if s not in set(present)]
    if no_counts:
        warnings.warn(f"GeoMx export: {len(no_counts)} AOI(s) of {seg_t.label!r} have no column in "
                      f"{cnt_t.label!r} and are left out, e.g. {no_counts[:3]}", stacklevel=2)
    seg = seg.set_index("SegmentDisplayName", drop=False).loc[present]
    x, var, combined = _combine(values, ann, extra["negative"])
    if counts_kind == "auto":
        kind, reason = detect_counts_kind(values, f"{cnt_t.file.stem} {cnt_t.sheet or ''}", extra["negative"])
        if kind == "normalised" and not combined:
            kind, reason = _check_against_probes(x, var, present, cnt_tables, cnt_t) or (kind, reason)
        if kind == "normalised":
            warnings.warn(f"GeoMx export {cnt_t.label!r}: {reason}; treated as normalised values, not counts. "
                          "If these are raw target counts (geometric means of several probes), pass "
                          "counts_kind='raw'.", stacklevel=2)
    else:
        kind, reason = counts_kind, "given by the caller"

    # -- observations ---------------------------------------------------------
    obs = seg.copy()
    for c in obs.columns:
        if obs[c].dtype == object:
            obs[c] = obs[c].astype(str).replace("nan", "")
    obs.index = pd.Index(obs["SegmentDisplayName"].to_numpy(dtype=str))
    scan_col = _column(obs, "ScanLabel") or _column(obs, "ScanName") or _column(obs, "SlideName")
    slide_col = _column(obs, "SlideName") or scan_col
    if scan is not None:
        keep = np.zeros(len(obs), bool)
        for c in {scan_col, slide_col} - {None}:
            keep |= obs[c].astype(str).str.strip().to_numpy() == str(scan).strip()
        if not keep.any():
            have = sorted(set(obs[scan_col].astype(str))) if scan_col else []
            raise RoiScoreError(f"GeoMx export {label!r}: no AOI of scan {scan!r}.",
                                f"Use one of {have}." if have else "This export has no ScanLabel/SlideName column.")
        obs, x = obs[keep], x[keep]
    obs["in_tissue"] = True
    xy, offsets, how = _coordinates(obs, None if scan is not None else scan_col)
    has_xy = xy is not None
    obs["has_coordinates"] = has_xy
    obs["scan_offset_x"] = offsets
    px = float(pixel_size_um) if pixel_size_um is not None else GEOMX_SCAN_PIXEL_SIZE_UM
    area_col = _column(obs, "AOISurfaceArea")
    area = pd.to_numeric(obs[area_col], errors="coerce").to_numpy(float) if area_col else np.full(len(obs), np.nan)
    from_area = np.isfinite(area) & (area > 0)
    d_um = np.where(from_area, 2.0 * np.sqrt(np.where(from_area, area, 1.0) / np.pi), DEFAULT_AOI_DIAMETER_UM)
    obs["aoi_diameter_um"] = d_um
    obs["aoi_diameter_from_area"] = from_area
    if has_xy:
        obs["aoi_diameter_px"] = d_um / px
    else:  # on the grid, sizes are relative: the largest AOI fills a grid spot
        xy = _grid(obs, slide_col)
        obs["aoi_diameter_px"] = GRID_SPOT_DIAMETER_PX * d_um / d_um.max()
        if not how.startswith("grid"):
            how = f"grid: one row per slide in table order ({how})"
    adata = ad.AnnData(X=sp.csr_matrix(x), obs=obs, var=var)
    adata.obsm["spatial"] = xy
    adata.uns["roiscore"] = {"counts_kind": kind, "reader": "geomx_export"}
    return SpotTable(
        adata=adata, diameter_px=float(np.median(obs["aoi_diameter_px"])), shape="circle",
        pixel_size_um=px if has_xy else None,
        provenance={
            "reader": "geomx_export", "path": label,
            "segments": seg_t.label, "segments_file": str(seg_t.file),
            "counts": cnt_t.label, "counts_file": str(cnt_t.file),
            "counts_kind": kind, "counts_kind_reason": reason,
            "probe_aggregation": "GeomxTools ngeoMean (thresh 0.5)" if combined else "none (one row per target)",
            "coordinates": how,
            "pixel_size_um": px if has_xy else None,
            "pixel_size_source": ("given" if pixel_size_um is not None else
                                  "assumed GeoMx DSP scan resolution (25 145 px/cm)") if has_xy else None,
            "aoi_size": "circle of area AOISurfaceArea" if from_area.all() else
                        f"circle of area AOISurfaceArea; {int((~from_area).sum())} AOI(s) without area drawn "
                        f"{DEFAULT_AOI_DIAMETER_UM:g} µm wide",
            "aois_without_counts": no_counts, "scan": scan,
        },
    )
