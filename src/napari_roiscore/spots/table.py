"""Spatial-transcriptomics spots: where they are and what they count.

A :class:`SpotTable` wraps an :class:`anndata.AnnData` of **raw counts**
(observations = spots or bins or cells, variables = genes) together with the
geometry needed to place the spots on the image:

* ``obsm["spatial"]`` holds spot centres as ``(x, y)`` in **level-0 image
  pixels** (the scanpy/squidpy convention); napari layers use ``(row, col)``,
  i.e. ``(y, x)`` — use :attr:`SpotTable.yx` for them;
* ``diameter_px`` is the spot diameter in the same pixels (Visium: 55 µm);
* ``shape`` is ``"circle"`` (Visium spots) or ``"square"`` (Visium HD bins).

Whether a matrix holds raw counts (whole, finite, non-negative) and where in
an AnnData they are found lives in :mod:`napari_roiscore.spots.raw_counts`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.spots.checks import canonical_csr, check_coordinates, first_duplicates
from napari_roiscore.spots.raw_counts import (  # noqa: F401  (re-exported: old import paths)
    check_raw_count_values,
    is_whole_numbers,
    select_raw_counts,
)

__all__ = ["SpotTable", "is_whole_numbers", "read_h5ad_spots", "select_raw_counts"]


#: ``var`` columns searched for alternative gene identifiers (Ensembl ids or symbols)
GENE_ID_COLUMNS = ("gene_ids", "gene_id", "ensembl_id", "gene_symbols", "gene_symbol", "gene_name",
                   "gene_names", "symbol", "feature_name")


#: spot diameters above this are a broken scale factor (a Visium spot is ~100-200 px)
MAX_DIAMETER_PX = 100_000


@dataclass
class SpotTable:
    """Spots with raw counts and their placement on the image.

    Parameters
    ----------
    adata : anndata.AnnData
        Raw integer counts in ``X``; centres in ``obsm["spatial"]`` as (x, y)
        level-0 pixels.
    diameter_px : float
        Spot diameter in level-0 pixels.
    shape : {"circle", "square"}
        How a spot is drawn and what its footprint is.
    pixel_size_um : float or None
        Size of one level-0 pixel in micrometres, when known.
    provenance : dict
        Where the data came from (reader, paths, checksums...).
    """

    adata: Any
    diameter_px: float
    shape: str = "circle"
    pixel_size_um: float | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # -- geometry ---------------------------------------------------------
    @property
    def n_spots(self) -> int:
        return int(self.adata.n_obs)

    @property
    def xy(self) -> np.ndarray:
        """Spot centres, shape (n, 2), columns (x, y) in level-0 pixels."""
        return np.asarray(self.adata.obsm["spatial"], dtype=np.float64)[:, :2]

    @property
    def yx(self) -> np.ndarray:
        """Spot centres as napari (row, col) coordinates."""
        return self.xy[:, ::-1].copy()

    # -- expression -------------------------------------------------------
    @property
    def counts(self) -> sp.csr_matrix:
        """Raw counts as CSR (spots x genes)."""
        X = self.adata.X
        if sp.issparse(X):
            return X.tocsr() if not sp.isspmatrix_csr(X) else X
        return sp.csr_matrix(np.asarray(X))

    @property
    def gene_names(self) -> list[str]:
        return [str(v) for v in self.adata.var_names]

    def gene_id_columns(self) -> list[list[str]]:
        """Alternative gene identifiers for matching: Ensembl ids or symbols, by their usual column names.

        Covers Space Ranger (``gene_ids``), scanpy (``gene_symbols`` when
        ``var_names`` are ids), CELLxGENE (``feature_name``) and the common
        ``gene_name`` / ``gene_symbol`` / ``symbol`` columns.
        """
        cols = []
        for name in GENE_ID_COLUMNS:
            if name in self.adata.var.columns:
                cols.append([str(v) for v in self.adata.var[name]])
        return cols

    def validate(self) -> None:
        """Check shapes and values; raise :class:`RoiScoreError` on bad input."""
        src = self.provenance.get("path", "spot table")
        ad = self.adata
        if "spatial" not in ad.obsm:
            raise RoiScoreError(
                f"{src}: obsm['spatial'] (spot centres) is missing.",
                "Store spot centres as obsm['spatial'] = (x, y) in full-resolution pixels.",
            )
        xy = np.asarray(ad.obsm["spatial"])
        if xy.ndim != 2 or xy.shape[1] < 2 or xy.shape[0] != ad.n_obs:
            raise RoiScoreError(
                f"{src}: obsm['spatial'] has shape {xy.shape}; expected ({ad.n_obs}, 2).",
                "Store one (x, y) pair per spot.",
            )
        check_coordinates(xy[:, :2], src, "spot centres in obsm['spatial']")  # finite, bounded
        try:
            ok = bool(np.isfinite(self.diameter_px) and 0 < self.diameter_px <= MAX_DIAMETER_PX)
        except TypeError:
            ok = False
        if not ok:
            raise RoiScoreError(
                f"{src}: spot diameter {self.diameter_px!r} px is not a positive number up to {MAX_DIAMETER_PX:,} px.",
                "Set the spot diameter (e.g. scalefactors 'spot_diameter_fullres').",
            )
        if self.shape not in ("circle", "square"):
            raise RoiScoreError(
                f"{src}: unknown spot shape {self.shape!r}.", "Use 'circle' or 'square'."
            )
        if ad.n_obs == 0 or ad.n_vars == 0:
            raise RoiScoreError(
                f"{src}: the count matrix is empty ({ad.n_obs} spots x {ad.n_vars} genes).",
                "Open a file with spots and genes.",
            )
        if dup := first_duplicates(ad.obs_names):
            raise RoiScoreError(
                f"{src}: duplicate spot barcodes, e.g. {dup}.",
                "Make barcodes unique (adata.obs_names_make_unique()).",
            )
        if not ad.var_names.is_unique:
            dup = list(dict.fromkeys(ad.var_names[ad.var_names.duplicated()].tolist()))[:3]
            raise RoiScoreError(
                f"{src}: duplicate gene names in var_names, e.g. {dup}.",
                "Make them unique (adata.var_names_make_unique(); read_h5ad_spots does this).",
            )
        X = ad.X
        if sp.issparse(X):  # indices in range (else a compiled scorer reads past an array), canonical
            X = canonical_csr(X, src)
            if X is not ad.X:
                ad.X = X
        check_raw_count_values(X, src)  # numeric, finite, non-negative, not all zero

    def to_layer_kwargs(self) -> dict:
        """Keyword arguments for a napari Points layer (pure data, no napari import)."""
        return {
            "size": self.diameter_px,
            "symbol": "disc" if self.shape == "circle" else "square",
        }


def read_h5ad_spots(path: str | Path, counts_layer: str | None = None) -> SpotTable:
    """Read spots from an ``.h5ad`` file (scanpy/squidpy convention).

    Spot diameter comes from ``uns["spatial"][library]["scalefactors"]
    ["spot_diameter_fullres"]``; the pixel size from ``uns["roiscore"]
    ["pixel_size_um"]`` when present.  Without it, spots that keep Space Ranger's
    array grid (``obs`` columns ``array_row``/``array_col``, as
    ``scanpy.read_visium`` writes) are scaled as the Space Ranger reader does
    (:func:`napari_roiscore.spots.lattice.space_ranger_scale`: 100 µm pitch, 55 µm
    spots), since their ``spot_diameter_fullres`` spans a theoretical 65 µm spot.  If ``X`` is not raw counts but
    ``layers["counts"]`` exists, the latter is used.  Duplicate gene names
    are made unique the anndata way (``CD68``, ``CD68-1``...; as
    ``adata.var_names_make_unique()``): a signature gene then matches the
    first copy, as in scanpy.

    Raises
    ------
    RoiScoreError
        File missing, not an h5ad, or without spot coordinates/counts.
    """
    import anndata as ad

    from napari_roiscore.outputs import require_regular_file
    from napari_roiscore.spots.h5ad_steps import read_h5ad_in_steps

    path = Path(path)
    if not path.exists():
        raise RoiScoreError(f"{str(path)!r} does not exist.", "Check the path.")
    require_regular_file(path, "Spots file")
    try:
        with warnings.catch_warnings():  # duplicate names are handled below
            warnings.filterwarnings("ignore", message=".*names are not unique", category=UserWarning)
            adata = read_h5ad_in_steps(path)
    except Exception as err:  # h5py / anndata raise many types for corrupt files
        raise RoiScoreError(
            f"{str(path)!r} is not a readable .h5ad file ({type(err).__name__}: {err}).",
            "Re-export it with anndata (adata.write_h5ad) or check the download.",
        ) from None
    adata, counts_from = select_raw_counts(adata, repr(str(path)), counts_layer)
    if not adata.var_names.is_unique:
        adata.var_names = ad.utils.make_index_unique(adata.var_names.astype(str))
    diameter, pixel_size = _scale_info(adata, str(path))
    if diameter is None:
        raise RoiScoreError(
            f"{str(path)!r}: no spot diameter in uns['spatial'][...]['scalefactors']"
            "['spot_diameter_fullres'].",
            "Add the scalefactors (as Space Ranger writes them) to uns['spatial'].",
        )
    provenance = {"reader": "h5ad", "path": str(path), "counts": counts_from}
    shape = "circle"
    if isinstance(meta := adata.uns.get("roiscore"), dict):
        shape = str(meta.get("spot_shape", "circle"))
    elif pixel_size is None and {"array_row", "array_col"} <= set(adata.obs.columns) \
            and "spatial" in adata.obsm:
        from napari_roiscore.spots.lattice import space_ranger_scale

        sf = next(lib["scalefactors"] for lib in adata.uns["spatial"].values()
                  if isinstance(lib, dict) and "spot_diameter_fullres" in lib.get("scalefactors", {}))
        scale = space_ranger_scale(np.asarray(adata.obsm["spatial"], dtype=float)[:, :2],
                                   dict(sf), source=repr(str(path)))
        if scale is not None:
            diameter, pixel_size, provenance["pixel_size_source"] = scale
            if "bin_size_um" in sf:
                shape = "square"
    return SpotTable(
        adata=adata,
        diameter_px=float(diameter),
        shape=shape,
        pixel_size_um=pixel_size,
        provenance=provenance,
    )


def _number(value: object, where: str, fix: str) -> float:
    """``value`` as a finite float, else a :class:`RoiScoreError` naming ``where``."""
    try:
        out = float(np.asarray(value).item()) if np.size(value) == 1 else float("nan")
    except (TypeError, ValueError, OverflowError):
        out = float("nan")
    if not np.isfinite(out):
        raise RoiScoreError(f"{where} is {str(value)[:60]!r}, not a number.", fix)
    return out


def _scale_info(adata, src: str = "h5ad") -> tuple[float | None, float | None]:
    diameter = None
    spatial = adata.uns.get("spatial", {})
    if isinstance(spatial, dict):
        for lib_id, lib in spatial.items():
            sf = lib.get("scalefactors", {}) if isinstance(lib, dict) else {}
            if isinstance(sf, dict) and "spot_diameter_fullres" in sf:
                diameter = _number(
                    sf["spot_diameter_fullres"],
                    f"{src!r}: uns['spatial'][{str(lib_id)!r}]['scalefactors']['spot_diameter_fullres']",
                    "Set it to the spot diameter in full-resolution pixels (Space Ranger's scalefactors).",
                )
                break
    meta = adata.uns.get("roiscore", {})
    pixel_size = meta.get("pixel_size_um") if isinstance(meta, dict) else None
    if pixel_size is not None:
        pixel_size = _number(pixel_size, f"{src!r}: uns['roiscore']['pixel_size_um']",
                             "Set the level-0 pixel size in micrometres (e.g. 0.5), or remove it.")
        if pixel_size <= 0:
            raise RoiScoreError(f"{src!r}: uns['roiscore']['pixel_size_um'] is {pixel_size}, not positive.",
                                "Set the level-0 pixel size in micrometres (e.g. 0.5), or remove it.")
    return diameter, pixel_size
