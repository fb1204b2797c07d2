"""10x Xenium output: cells with their transcript counts.

A Xenium output folder holds ``cell_feature_matrix.h5`` (10x HDF5; or the
``cell_feature_matrix/`` Matrix Market folder), ``cells.parquet`` or
``cells.csv.gz`` (``cell_id``, ``x_centroid``, ``y_centroid`` in µm,
``cell_area``...), ``experiment.xenium`` (JSON, ``pixel_size`` in µm) and the
morphology OME-TIFF (``morphology_focus/`` or ``morphology_focus.ome.tif``).

Cell centres are converted to morphology-image pixels (µm / pixel size, 0.2125
µm by default), so they land on the morphology image read with its pixel size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import limited_list
from napari_roiscore.spots.checks import check_positive
from napari_roiscore.spots.table import SpotTable
from napari_roiscore.readers._files import first_existing, require_dir
from napari_roiscore.readers.tenx import read_10x_h5, read_10x_mtx

__all__ = ["XENIUM_PIXEL_SIZE_UM", "find_morphology_image", "read_xenium"]

#: Pixel size of Xenium morphology images (µm), used when experiment.xenium is absent.
XENIUM_PIXEL_SIZE_UM = 0.2125
#: Drawn diameter of a cell when cells.* has no ``cell_area``.
DEFAULT_CELL_DIAMETER_UM = 10.0

_FIX = ("Point to the Xenium output folder (it holds cell_feature_matrix.h5 and cells.parquet) "
        "and copy the missing file from the run.")


def find_morphology_image(folder: str | Path) -> Path | None:
    """The morphology OME-TIFF of a Xenium folder (focus stack first), if any."""
    folder = Path(folder)
    for name in ("morphology_focus/morphology_focus_0000.ome.tif", "morphology_focus.ome.tif",
                 "morphology_mip.ome.tif", "morphology.ome.tif"):
        if (folder / name).is_file():
            return folder / name
    return None


def _pixel_size(folder: Path) -> tuple[float, str]:
    exp = folder / "experiment.xenium"
    if exp.is_file():
        try:
            meta = json.loads(exp.read_text(encoding="utf-8-sig"))
            return check_positive(meta["pixel_size"], repr(str(exp)), "'pixel_size'", upper=1e3), str(exp)
        except RoiScoreError:
            raise
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return XENIUM_PIXEL_SIZE_UM, "Xenium default 0.2125 µm"


def read_xenium(path: str | Path, pixel_size_um: float | None = None) -> SpotTable:
    """Read a Xenium output folder into a :class:`SpotTable` of cells.

    Parameters
    ----------
    path : str or Path
        The Xenium output folder.
    pixel_size_um : float, optional
        Morphology-image pixel size; default from ``experiment.xenium`` or 0.2125 µm.

    Notes
    -----
    Only ``Gene Expression`` features are kept as genes; the counts of control
    probes and codewords go to ``obs["control_counts"]``.  Cells are drawn as
    circles of the median cell's equivalent diameter.

    Raises
    ------
    RoiScoreError
        A file is missing (named in the message) or malformed.
    """
    import anndata as ad

    folder = require_dir(path, "Xenium")
    h5, mtx = folder / "cell_feature_matrix.h5", folder / "cell_feature_matrix"
    if h5.is_file():
        cm, matrix_path = read_10x_h5(h5), h5
    elif mtx.is_dir():
        cm, matrix_path = read_10x_mtx(mtx), mtx
    else:
        raise RoiScoreError(f"Xenium folder {str(folder)!r}: 'cell_feature_matrix.h5' is missing.", _FIX)
    cells_path = first_existing(folder, ["cells.parquet", "cells.csv.gz", "cells.csv"])
    if cells_path is None:
        raise RoiScoreError(f"Xenium folder {str(folder)!r}: 'cells.parquet' (or 'cells.csv.gz') is missing.",
                            _FIX)
    try:
        cells = pd.read_parquet(cells_path) if cells_path.suffix == ".parquet" else pd.read_csv(cells_path)
    except Exception as err:  # pyarrow / pandas raise many types for corrupt files
        raise RoiScoreError(f"{str(cells_path)!r} is not a readable cells table ({type(err).__name__}).",
                            "Copy the cells file again from the Xenium run.") from None
    missing = [c for c in ("cell_id", "x_centroid", "y_centroid") if c not in cells.columns]
    if missing:
        raise RoiScoreError(f"{str(cells_path)!r}: column(s) {missing} missing.",
                            "Xenium cells tables need cell_id, x_centroid and y_centroid (µm).")
    cells["cell_id"] = [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in cells["cell_id"]]
    dup = cells["cell_id"][cells["cell_id"].duplicated()]
    if len(dup):
        raise RoiScoreError(f"{str(cells_path)!r}: {len(dup):,} cell id(s) appear twice, e.g. "
                            f"{limited_list(dict.fromkeys(dup), 3)}.", "Copy the cells file again from the Xenium run.")
    for col in ("x_centroid", "y_centroid"):
        if not pd.api.types.is_numeric_dtype(cells[col]):
            raise RoiScoreError(f"{str(cells_path)!r}: column {col!r} holds text, not µm.",
                                "Copy the cells file again from the Xenium run.")
    cells = cells.set_index("cell_id")
    absent = pd.Index(cm.barcodes).difference(cells.index)
    if len(absent):
        raise RoiScoreError(
            f"{str(cells_path)!r}: {len(absent)} cell(s) of the count matrix are not in the cells table, "
            f"e.g. {list(absent[:3])}.",
            "Use cells.parquet and cell_feature_matrix.h5 of the same Xenium run.",
        )
    genes = cm.features["feature_types"] == "Gene Expression"
    control = cm.counts[:, np.flatnonzero(~genes.to_numpy())].sum(axis=1).A1 if (~genes).any() else None
    cm = cm.only_feature_type("Gene Expression")
    px, px_source = ((check_positive(pixel_size_um, "Xenium", "the pixel size", upper=1e3), "given")
                     if pixel_size_um is not None else _pixel_size(folder))
    c = cells.loc[cm.barcodes]
    obs = pd.DataFrame({"in_tissue": np.ones(len(c), dtype=bool)}, index=pd.Index(cm.barcodes))
    for col in ("cell_area", "nucleus_area", "transcript_counts"):
        if col in c.columns:
            obs[col] = c[col].to_numpy()
    if control is not None:
        obs["control_counts"] = control
    var = cm.features.copy()
    var.index = ad.utils.make_index_unique(pd.Index(var["gene_symbols"].to_numpy(dtype=str)))
    adata = ad.AnnData(X=cm.counts, obs=obs, var=var)
    adata.obsm["spatial"] = np.column_stack([c["x_centroid"].to_numpy(float) / px,
                                             c["y_centroid"].to_numpy(float) / px])
    area = pd.to_numeric(c["cell_area"], errors="coerce").to_numpy(float) if "cell_area" in c.columns else None
    if area is not None and (np.isfinite(area) & (area > 0)).any():
        diameter_um = 2.0 * np.sqrt(float(np.median(area[np.isfinite(area) & (area > 0)])) / np.pi)
    else:
        diameter_um = DEFAULT_CELL_DIAMETER_UM
    morph = find_morphology_image(folder)
    return SpotTable(
        adata=adata, diameter_px=diameter_um / px, shape="circle", pixel_size_um=px,
        provenance={
            "reader": "xenium", "path": str(folder), "matrix": str(matrix_path),
            "cells": str(cells_path), "pixel_size_source": px_source,
            "morphology_image": str(morph) if morph else None,
        },
    )
