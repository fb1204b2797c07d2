"""NanoString/Bruker CosMx SMI flat files (AtoMx export).

A CosMx flat-file folder holds, per run ``<run>``:

* ``<run>_exprMat_file.csv`` (optionally ``.gz``): one row per cell of each
  field of view — columns ``fov``, ``cell_ID`` and one column per target,
  including negative probes (``NegPrb*``) and system controls
  (``SystemControl*``, ``FalseCode*``); ``cell_ID`` 0 holds the transcripts
  outside any cell;
* ``<run>_metadata_file.csv``: per cell ``fov``, ``cell_ID``, ``Area`` (px²)
  and ``CenterX_global_px`` / ``CenterY_global_px`` (slide-wide pixels);
* ``<run>_fov_positions_file.csv``: each FOV's position (kept in provenance;
  global centres already include it).

The expression file is read in chunks straight into a sparse matrix, so a
slide of a million cells by a thousand targets never exists as a dense table.
Pixel size: 0.12028 µm (CosMx ReadMe) unless given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers._files import find_cosmx_files, is_cosmx_folder, require_dir  # noqa: F401 (re-exported)
from napari_roiscore.spots.table import SpotTable

__all__ = ["COSMX_PIXEL_SIZE_UM", "find_cosmx_files", "is_cosmx_folder", "read_cosmx"]

#: CosMx global-pixel size in micrometres (NanoString CosMx ReadMe)
COSMX_PIXEL_SIZE_UM = 0.12028
#: target-name prefixes that are controls, not genes
CONTROL_PREFIXES = ("NegPrb", "Negative", "SystemControl", "FalseCode")
_FIX = ("Point to the CosMx flat-file export folder holding <run>_exprMat_file.csv and "
        "<run>_metadata_file.csv (and <run>_fov_positions_file.csv).")
_CHUNK_ROWS = 50_000


def _cell_keys(fov: np.ndarray, cell: np.ndarray) -> np.ndarray:
    return (fov.astype(np.int64) << 32) | cell.astype(np.int64)


def _read_expression(path: Path) -> tuple[sp.csr_matrix, np.ndarray, list[str], np.ndarray]:
    """Counts of the genes (CSR), cell keys, gene names, control counts per cell."""
    try:
        reader = pd.read_csv(path, chunksize=_CHUNK_ROWS)
        blocks, keys, controls, genes = [], [], [], None
        for chunk in reader:
            if genes is None:
                cols = [str(c) for c in chunk.columns]
                missing = [c for c in ("fov", "cell_ID") if c not in cols]
                if missing:
                    raise RoiScoreError(f"{str(path)!r}: column(s) {missing} missing.",
                                        "CosMx expression files start with the columns fov, cell_ID.")
                targets = [c for c in cols if c not in ("fov", "cell_ID", "cell")]
                genes = [c for c in targets if not c.startswith(CONTROL_PREFIXES)]
                control_cols = [c for c in targets if c.startswith(CONTROL_PREFIXES)]
            chunk = chunk[chunk["cell_ID"].to_numpy() != 0]  # 0 = transcripts outside cells
            values = chunk[genes].to_numpy()
            if values.dtype.kind not in "iuf":
                raise RoiScoreError(f"{str(path)!r}: the target columns hold text, not counts.",
                                    "Copy the exprMat file again from the CosMx export.")
            blocks.append(sp.csr_matrix(values.astype(np.int32)))
            keys.append(_cell_keys(chunk["fov"].to_numpy(), chunk["cell_ID"].to_numpy()))
            controls.append(chunk[control_cols].to_numpy().sum(axis=1) if control_cols
                            else np.zeros(len(chunk)))
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        raise RoiScoreError(f"{str(path)!r} is not a readable CSV file ({type(err).__name__}: "
                            f"{str(err)[:80]}).", "Copy the exprMat file again from the CosMx export.") from None
    if not genes or not blocks:
        raise RoiScoreError(f"{str(path)!r}: no gene columns or no cells.", _FIX)
    return sp.vstack(blocks, format="csr"), np.concatenate(keys), genes, np.concatenate(controls)


def _read_metadata(path: Path) -> pd.DataFrame:
    want = ["fov", "cell_ID", "CenterX_global_px", "CenterY_global_px"]
    try:
        head = pd.read_csv(path, nrows=0)
        cols = [c for c in want + ["Area"] if c in head.columns]
        meta = pd.read_csv(path, usecols=cols)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        raise RoiScoreError(f"{str(path)!r} is not a readable CSV file ({type(err).__name__}).",
                            "Copy the metadata file again from the CosMx export.") from None
    missing = [c for c in want if c not in meta.columns]
    if missing:
        raise RoiScoreError(f"{str(path)!r}: column(s) {missing} missing.",
                            f"CosMx metadata files need the columns {want}.")
    for c in want[2:]:
        if not pd.api.types.is_numeric_dtype(meta[c]):
            raise RoiScoreError(f"{str(path)!r}: column {c!r} holds text, not pixel numbers.",
                                "Copy the metadata file again from the CosMx export.")
    meta.index = _cell_keys(meta["fov"].to_numpy(), meta["cell_ID"].to_numpy())
    return meta


def read_cosmx(path: str | Path, pixel_size_um: float | None = None) -> SpotTable:
    """Read a CosMx flat-file export into a :class:`SpotTable` (one spot per cell).

    Parameters
    ----------
    path : str or Path
        The export folder.
    pixel_size_um : float, optional
        Micrometres per global pixel; default :data:`COSMX_PIXEL_SIZE_UM`.

    Notes
    -----
    Cells are placed at ``(CenterX_global_px, CenterY_global_px)`` and drawn
    as circles of the median cell's equivalent diameter (from ``Area``).
    Barcodes are ``c_<fov>_<cell_ID>``.  Control targets (negative probes,
    system controls) are not genes; their total per cell goes to
    ``obs["control_counts"]``.

    Raises
    ------
    RoiScoreError
        A file is missing (named in the message) or malformed.
    """
    import anndata as ad

    folder = require_dir(path, "CosMx")
    files = find_cosmx_files(folder)
    for role, name in (("expression", "exprMat_file.csv"), ("metadata", "metadata_file.csv")):
        if files[role] is None:
            raise RoiScoreError(f"CosMx folder {str(folder)!r}: '<run>_{name}' is missing.", _FIX)
    counts, keys, genes, control = _read_expression(files["expression"])
    meta = _read_metadata(files["metadata"])
    absent = ~pd.Index(keys).isin(meta.index)
    if absent.any():
        k = keys[absent][:3]
        raise RoiScoreError(
            f"{str(files['metadata'])!r}: {int(absent.sum())} cell(s) of the expression file have no "
            f"metadata, e.g. fov/cell_ID {[(int(v >> 32), int(v & 0xFFFFFFFF)) for v in k]}.",
            "Use the exprMat and metadata files of the same CosMx export.")
    m = meta.loc[keys]
    px = float(pixel_size_um) if pixel_size_um else COSMX_PIXEL_SIZE_UM
    fov, cell = m["fov"].to_numpy(), m["cell_ID"].to_numpy()
    names = pd.Index(np.char.add(np.char.add(np.char.add("c_", fov.astype(str)), "_"), cell.astype(str)))
    obs = pd.DataFrame({"in_tissue": np.ones(len(m), dtype=bool), "fov": fov, "cell_ID": cell,
                        "control_counts": control}, index=names)
    if "Area" in m.columns:
        obs["cell_area_px"] = m["Area"].to_numpy()
    var = pd.DataFrame(index=ad.utils.make_index_unique(pd.Index(genes)))
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    adata.obsm["spatial"] = np.column_stack([m["CenterX_global_px"].to_numpy(float),
                                             m["CenterY_global_px"].to_numpy(float)])
    area = m["Area"].to_numpy(float) if "Area" in m.columns else np.array([np.nan])
    diameter_px = 2.0 * np.sqrt(np.nanmedian(area) / np.pi) if np.isfinite(area).any() else 10.0 / px
    return SpotTable(
        adata=adata, diameter_px=float(diameter_px), shape="circle", pixel_size_um=px,
        provenance={"reader": "cosmx", "path": str(folder),
                    **{k: (str(v) if v else None) for k, v in files.items()},
                    "pixel_size_source": "given" if pixel_size_um else "CosMx ReadMe (0.12028 µm)"},
    )
