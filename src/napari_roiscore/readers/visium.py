"""Space Ranger output for Visium (55 µm spots) and Visium HD (square bins).

A Space Ranger ``outs/`` folder holds:

* the count matrix, as ``filtered_feature_bc_matrix.h5`` or as the Matrix
  Market folder ``filtered_feature_bc_matrix/`` (both read, same result);
* ``spatial/tissue_positions.csv`` (Space Ranger ≥ 2, with a header) or
  ``spatial/tissue_positions_list.csv`` (older, no header), columns barcode,
  in_tissue, array_row, array_col, pxl_row_in_fullres, pxl_col_in_fullres;
  Visium HD writes ``spatial/tissue_positions.parquet`` per bin size;
* ``spatial/scalefactors_json.json`` (spot diameter in full-resolution
  pixels, scale factors of the hires/lowres images, for HD also
  ``microns_per_pixel`` and ``bin_size_um``);
* ``spatial/tissue_hires_image.png`` / ``tissue_lowres_image.png``.

The result is a :class:`~napari_roiscore.spots.table.SpotTable` with spot centres in
full-resolution pixels; the images are kept the scanpy/squidpy way in
``adata.uns["spatial"][library_id]`` (see :func:`tissue_images_from_uns`).
Matching millions of Visium HD bins to their positions through the bin grid
lives in :mod:`napari_roiscore.readers.visium_hd_grid`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.outputs import limited_list, require_regular_file
from napari_roiscore.spots.checks import check_positive
from napari_roiscore.spots.in_steps import make_anndata, rows_per_step
from napari_roiscore.spots.lattice import VISIUM_SPOT_DIAMETER_UM, check_bin_pitch, visium_pixel_size_um
from napari_roiscore.spots.table import MAX_DIAMETER_PX, SpotTable
from napari_roiscore.readers._files import require_dir, require_file
from napari_roiscore.readers.tenx import CountMatrix, read_10x_h5, read_10x_mtx
from napari_roiscore.readers.tissue_image import read_png
from napari_roiscore.readers.visium_hd_grid import hd_grid_indices, hd_positions_of_matrix

__all__ = [
    "POSITION_COLUMNS",
    "VISIUM_SPOT_DIAMETER_UM",
    "find_spaceranger_outs",
    "hd_grid_indices",
    "hd_positions_of_matrix",
    "read_scalefactors",
    "read_spaceranger",
    "read_tissue_positions",
    "read_visium_hd",
]

#: Column order of Space Ranger tissue position files.
POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col",
                    "pxl_row_in_fullres", "pxl_col_in_fullres"]
_POSITION_FILES = ["spatial/tissue_positions.csv", "spatial/tissue_positions_list.csv",
                   "spatial/tissue_positions.parquet"]
_OUTS_FIX = ("Point to the Space Ranger 'outs' folder (it holds filtered_feature_bc_matrix.h5 "
             "and spatial/) and copy the missing file from the run.")


def find_spaceranger_outs(path: str | Path) -> Path:
    """The ``outs`` folder given the run folder or ``outs`` itself."""
    path = require_dir(path, "Space Ranger")
    if not (path / "spatial").is_dir() and (path / "outs").is_dir():
        return path / "outs"
    return path


def read_scalefactors(path: Path) -> dict:
    """Read ``scalefactors_json.json``; it must hold ``spot_diameter_fullres``."""
    require_regular_file(path, "Scale factors")
    try:
        sf = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as err:
        raise RoiScoreError(f"{str(path)!r} is not valid JSON ({err}).",
                            "Copy scalefactors_json.json again from the Space Ranger run.") from None
    if not isinstance(sf, dict) or "spot_diameter_fullres" not in sf:
        raise RoiScoreError(f"{str(path)!r}: field 'spot_diameter_fullres' is missing.",
                            "Copy scalefactors_json.json again from the Space Ranger run.")
    d = sf["spot_diameter_fullres"]
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not (np.isfinite(d) and d > 0):
        raise RoiScoreError(f"{str(path)!r}: field 'spot_diameter_fullres' is {str(d)[:40]!r}, "
                            "not a positive number.",
                            "Copy scalefactors_json.json again from the Space Ranger run.")
    check_positive(d, repr(str(path)), "'spot_diameter_fullres'", upper=MAX_DIAMETER_PX)
    for key, value in sf.items():  # a scale factor of 0, NaN or 1e300 puts the image anywhere
        if key.endswith("_scalef") or key == "regist_target_img_scalef":
            check_positive(value, repr(str(path)), repr(key), upper=1e3)
    return {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in sf.items()}


def read_tissue_positions(path: str | Path) -> pd.DataFrame:
    """Read tissue positions (csv with or without header, or parquet), indexed by barcode."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except ImportError as err:  # pragma: no cover - pyarrow is a dependency
            raise RoiScoreError(f"{str(path)!r}: cannot read parquet ({err}).",
                                "Install pyarrow (pip install pyarrow).") from None
        except Exception as err:  # pyarrow raises its own types for corrupt files
            raise RoiScoreError(f"{str(path)!r} is not a readable parquet file ({type(err).__name__}).",
                                "Copy the tissue positions file again from the Space Ranger run.") from None
    else:
        require_regular_file(path, "Tissue positions")
        try:
            with open(path, encoding="utf-8-sig") as fh:
                first = fh.readline()
            # a header row names the columns (in any order); the old headerless file has Space Ranger's order
            has_header = bool({c.strip().strip('"').lower() for c in first.split(",")} & set(POSITION_COLUMNS))
            df = pd.read_csv(path, header=0 if has_header else None, encoding="utf-8-sig",
                             names=None if has_header else POSITION_COLUMNS)
            if has_header:
                df.columns = [str(c).strip().lower() for c in df.columns]
        except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
            raise RoiScoreError(f"{str(path)!r} is not a readable CSV file ({type(err).__name__}: "
                                f"{str(err)[:80]}).",
                                "Copy the tissue positions file again from the Space Ranger run.") from None
    missing = [c for c in POSITION_COLUMNS if c not in df.columns]
    if missing:
        raise RoiScoreError(f"{str(path)!r}: column(s) {missing} missing.",
                            f"Tissue positions need the columns {POSITION_COLUMNS}.")
    for col in ("pxl_row_in_fullres", "pxl_col_in_fullres"):
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise RoiScoreError(f"{str(path)!r}: column {col!r} holds text, not pixel numbers.",
                                "Copy the tissue positions file again from the Space Ranger run.")
    df["barcode"] = df["barcode"].astype(str)
    dup = df["barcode"][df["barcode"].duplicated()]
    if len(dup):
        raise RoiScoreError(f"{str(path)!r}: {len(dup):,} barcode(s) appear twice, e.g. "
                            f"{limited_list(dict.fromkeys(dup), 3)}.",
                            "Copy the tissue positions file again from the Space Ranger run.")
    return df.set_index("barcode")


def _read_matrix(outs: Path, folder_hint: str, matrix: str, layout: str) -> tuple[CountMatrix, Path]:
    stem = f"{matrix}_feature_bc_matrix"
    h5, mtx = outs / f"{stem}.h5", outs / stem
    if layout not in ("auto", "h5", "mtx"):
        raise RoiScoreError(f"unknown matrix layout {layout!r}.", "Use 'auto', 'h5' or 'mtx'.")
    if layout in ("auto", "h5") and h5.is_file():
        return read_10x_h5(h5), h5
    if layout in ("auto", "mtx") and mtx.is_dir():
        return read_10x_mtx(mtx), mtx
    wanted = {"auto": f"'{stem}.h5' (or the folder '{stem}/')", "h5": f"'{stem}.h5'",
              "mtx": f"'{stem}/'"}[layout]
    raise RoiScoreError(f"{folder_hint} {str(outs)!r}: {wanted} is missing.", _OUTS_FIX)


def _load_images(spatial: Path, sf: dict) -> tuple[dict, list[str]]:
    images, paths = {}, []
    for name in ("hires", "lowres"):
        p = spatial / f"tissue_{name}_image.png"
        if p.is_file() and f"tissue_{name}_scalef" in sf:
            images[name] = read_png(p)
            paths.append(str(p))
    return images, paths


def _centres_xy(positions: pd.DataFrame) -> np.ndarray:
    """Spot centres (x, y) in full-resolution pixels, copied a step at a time (11M bins:
    ``np.column_stack`` held the interpreter 0.1-0.3 s)."""
    xy = np.empty((len(positions), 2), dtype=float)
    x, y = positions["pxl_col_in_fullres"].to_numpy(), positions["pxl_row_in_fullres"].to_numpy()
    step = rows_per_step(xy)
    for start in range(0, len(xy), step):
        xy[start:start + step, 0] = x[start:start + step]
        xy[start:start + step, 1] = y[start:start + step]
    return xy


def _spot_table(cm: CountMatrix, pos: pd.DataFrame, pos_path: Path, sf: dict, *,
                diameter_px: float, shape: str, pixel_size_um: float | None,
                library_id: str, images: dict, provenance: dict) -> SpotTable:
    import anndata as ad

    missing = [] if pos.attrs.get("aligned_with_matrix") else pd.Index(cm.barcodes).difference(pos.index)
    if len(missing):
        raise RoiScoreError(
            f"{str(pos_path)!r}: {len(missing)} barcode(s) of the count matrix have no position, "
            f"e.g. {list(missing[:3])}.",
            "Use the tissue positions file of the same Space Ranger run as the matrix.",
        )
    p = pos if pos.attrs.get("aligned_with_matrix") else pos.loc[cm.barcodes]
    obs = pd.DataFrame({
        "in_tissue": p["in_tissue"].to_numpy().astype(bool),
        "array_row": p["array_row"].to_numpy(),
        "array_col": p["array_col"].to_numpy(),
    }, index=pd.Index(cm.barcodes, dtype=object, copy=False))  # no inference over every barcode
    var = cm.features.copy()
    var.index = ad.utils.make_index_unique(pd.Index(var["gene_symbols"].to_numpy(dtype=str)))
    adata = make_anndata(X=cm.counts, obs=obs, var=var)
    adata.obsm["spatial"] = _centres_xy(p)
    adata.uns["spatial"] = {library_id: {"images": images, "scalefactors": dict(sf),
                                         "metadata": {k: str(v) for k, v in cm.attrs.items()
                                                      if k in ("software_version",
                                                               "chemistry_description")}}}
    return SpotTable(adata=adata, diameter_px=float(diameter_px), shape=shape,
                     pixel_size_um=pixel_size_um, provenance=provenance)


def read_spaceranger(path: str | Path, matrix: str = "filtered", layout: str = "auto",
                     load_images: bool = True) -> SpotTable:
    """Read a Visium Space Ranger ``outs`` folder into a :class:`SpotTable`.

    Parameters
    ----------
    path : str or Path
        The ``outs`` folder (or the run folder that contains it).
    matrix : {"filtered", "raw"}
        Which count matrix: spots under tissue only, or all spots.
    layout : {"auto", "h5", "mtx"}
        ``auto`` takes the ``.h5`` file and falls back on the Matrix Market folder.
    load_images : bool
        Read ``tissue_hires_image.png`` / ``tissue_lowres_image.png`` into
        ``uns["spatial"][library_id]["images"]``.

    Notes
    -----
    Spot centres are ``(pxl_col_in_fullres, pxl_row_in_fullres)`` = (x, y).
    The pixel size comes from the spot lattice: 100 µm (the Visium pitch) over
    the median nearest-neighbour distance of all spot centres of the positions
    file, checked against ``spot_diameter_fullres`` (pixels across a theoretical
    65 µm spot; a warning when they disagree by more than 10 %); see
    :mod:`napari_roiscore.spots.lattice`.  Spots are drawn 55 µm wide and layers
    in micrometres.

    Raises
    ------
    RoiScoreError
        A file is missing (named in the message) or malformed.
    """
    outs = find_spaceranger_outs(path)
    cm, matrix_path = _read_matrix(outs, "Space Ranger folder", matrix, layout)
    cm = cm.only_feature_type("Gene Expression") if (
        cm.features["feature_types"] == "Gene Expression").any() else cm
    pos_path = require_file(outs, _POSITION_FILES, "Space Ranger folder", _OUTS_FIX)
    sf_path = require_file(outs, ["spatial/scalefactors_json.json"], "Space Ranger folder", _OUTS_FIX)
    sf = read_scalefactors(sf_path)
    pos = read_tissue_positions(pos_path)
    images, image_paths = _load_images(outs / "spatial", sf) if load_images else ({}, [])
    library_id = str((cm.attrs.get("library_ids") or [outs.parent.name or "visium"])[0])
    all_xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(dtype=float)
    px, how = visium_pixel_size_um(all_xy, float(sf["spot_diameter_fullres"]),
                                   source=f"Space Ranger folder {str(outs)!r}")
    if px is None:  # pragma: no cover - read_scalefactors guarantees a positive diameter
        raise RoiScoreError(f"Space Ranger folder {str(outs)!r}: no spot spacing or spot diameter.",
                            _OUTS_FIX)
    return _spot_table(
        cm, pos, pos_path, sf, diameter_px=VISIUM_SPOT_DIAMETER_UM / px, shape="circle",
        pixel_size_um=px, library_id=library_id, images=images,
        provenance={
            "reader": "spaceranger", "path": str(outs), "matrix": str(matrix_path),
            "positions": str(pos_path), "scalefactors": str(sf_path), "images": image_paths,
            "software_version": str(cm.attrs.get("software_version", "")),
            "pixel_size_source": how,
        },
    )


def _find_hd_bin_folder(path: Path, bin_size_um: int | None) -> Path:
    if (path / "spatial" / "tissue_positions.parquet").is_file() or path.name.startswith("square_"):
        return path
    base = path / "binned_outputs" if (path / "binned_outputs").is_dir() else (
        path / "outs" / "binned_outputs" if (path / "outs" / "binned_outputs").is_dir() else path)
    folders = sorted(p for p in base.glob("square_*um") if p.is_dir())
    if not folders:
        raise RoiScoreError(f"Visium HD folder {str(path)!r}: 'binned_outputs/square_XXXum/' is missing.",
                            "Point to the Visium HD 'outs' folder or to one binned_outputs/square_XXXum folder.")
    if bin_size_um is not None:
        want = base / f"square_{int(bin_size_um):03d}um"
        if not want.is_dir():
            raise RoiScoreError(f"Visium HD folder {str(base)!r}: {want.name!r} is missing.",
                                f"Choose one of {[p.name for p in folders]}.")
        return want
    for preferred in ("square_008um", "square_016um"):
        if (base / preferred).is_dir():
            return base / preferred
    return folders[-1]


def read_visium_hd(path: str | Path, bin_size_um: int | None = None, matrix: str = "filtered",
                   load_images: bool = True) -> SpotTable:
    """Read one bin size of a Visium HD run (``binned_outputs/square_XXXum``).

    Parameters
    ----------
    path : str or Path
        A ``square_XXXum`` folder, or the ``outs``/``binned_outputs`` folder
        above it (then ``bin_size_um`` picks the folder; default 8 µm, the
        resolution 10x recommends for analysis, else 16 µm, else the largest).
    bin_size_um : int, optional
    matrix : {"filtered", "raw"}
    load_images : bool

    Notes
    -----
    Bins are squares (``SpotTable.shape == "square"``) whose side is
    ``bin_size_um / microns_per_pixel`` full-resolution pixels (both from
    ``scalefactors_json.json``; the bin size else from the folder name).  Without
    ``microns_per_pixel`` the pixel size is the bin size over the median
    nearest-neighbour distance of the bin centres; with it, that distance is
    checked against the bin side (a warning beyond 10 %).
    """
    folder = _find_hd_bin_folder(require_dir(path, "Visium HD"), bin_size_um)
    fix = ("Point to a complete Visium HD binned_outputs/square_XXXum folder "
           "(filtered_feature_bc_matrix.h5, spatial/tissue_positions.parquet, "
           "spatial/scalefactors_json.json).")
    cm, matrix_path = _read_matrix(folder, "Visium HD bin folder", matrix, "auto")
    cm = cm.only_feature_type("Gene Expression") if (
        cm.features["feature_types"] == "Gene Expression").any() else cm
    pos_path = require_file(folder, ["spatial/tissue_positions.parquet", "spatial/tissue_positions.csv"],
                            "Visium HD bin folder", fix)
    sf_path = require_file(folder, ["spatial/scalefactors_json.json"], "Visium HD bin folder", fix)
    sf = read_scalefactors(sf_path)
    pos = hd_positions_of_matrix(pos_path, cm.barcodes)
    if pos is None:
        pos = read_tissue_positions(pos_path)
    um_per_px = sf.get("microns_per_pixel")
    bin_um = sf.get("bin_size_um")
    if bin_um is None and folder.name.startswith("square_"):
        try:
            bin_um = float(folder.name[len("square_"):-2])
        except ValueError:
            bin_um = None
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(dtype=float)
    source = f"Visium HD bin folder {str(folder)!r}"
    if bin_um and um_per_px:
        side_px = bin_um / um_per_px
        check_bin_pitch(xy, side_px, source=source)
        how = "bin_size_um / microns_per_pixel (scalefactors)"
    elif bin_um:
        pitch = check_bin_pitch(xy, float(sf["spot_diameter_fullres"]), source=source)
        side_px = pitch if pitch else float(sf["spot_diameter_fullres"])
        um_per_px = bin_um / side_px
        how = ("bin size / median nearest-neighbour bin distance" if pitch else
               "bin size / spot_diameter_fullres")
    else:
        side_px, how = float(sf["spot_diameter_fullres"]), "unknown (no bin size)"
    images, image_paths = {}, []
    if load_images:
        spatial = folder / "spatial"
        images, image_paths = _load_images(spatial, sf)
        if not images:  # images live in outs/spatial in some runs
            outs_spatial = folder.parent.parent / "spatial"
            if outs_spatial.is_dir():
                images, image_paths = _load_images(outs_spatial, sf)
    library_id = str((cm.attrs.get("library_ids") or [folder.parent.parent.name or "visium_hd"])[0])
    return _spot_table(
        cm, pos, pos_path, sf, diameter_px=side_px, shape="square", pixel_size_um=um_per_px,
        library_id=library_id, images=images,
        provenance={
            "reader": "visium_hd", "path": str(folder), "matrix": str(matrix_path),
            "positions": str(pos_path), "scalefactors": str(sf_path), "images": image_paths,
            "bin_size_um": bin_um, "pixel_size_source": how, "software_version": str(cm.attrs.get("software_version", "")),
        },
    )
