"""SpatialData ``.zarr`` stores — an optional extra (``pip install napari-roiscore[spatialdata]``).

spatialdata is not a base dependency: it pins dask and pandas versions that
the rest of the plugin does not need.  :func:`is_spatialdata_store` recognises
a store with zarr alone (a zarr group holding a ``tables``, ``points``,
``shapes``, ``images`` or ``labels`` group, as the SpatialData on-disk format
lays them out); :func:`read_spatialdata` imports spatialdata only when called
and says how to install it when it is missing.

Conversion to a :class:`~napari_roiscore.spots.table.SpotTable`: the chosen table's
counts (``layers["counts"]`` if present, else ``X``); spot centres and sizes
from the shapes element the table annotates (circles: centre and ``radius``;
polygons: centroid and the diameter of a circle of equal area; an
axis-aligned 4-corner polygon is drawn as a square bin), in that element's own
(intrinsic) coordinates — for stores written by spatialdata-io from Space
Ranger these are full-resolution image pixels.  Without such shapes,
``obsm["spatial"]`` and the scale factors in ``uns["spatial"]`` are used as for
``.h5ad``.

Other elements: :func:`read_spatialdata_image` opens an image element (single
or multiscale, lazily) as a :class:`~napari_roiscore.images.multiplex.MultiplexImage`
whose ``provenance["affine"]`` is its transformation to a coordinate system
(napari draws it there); :func:`read_spatialdata_points` reads a points
element; ROIs (shapes of polygons) and their table are read and written by
:mod:`napari_roiscore.readers.spatialdata_rois`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_roiscore.errors import RoiScoreError

if TYPE_CHECKING:  # pandas/anndata: imported when a store is read, not to recognise one
    from napari_roiscore.spots.table import SpotTable

__all__ = ["ELEMENT_GROUPS", "INSTALL_HINT", "is_spatialdata_store", "read_spatialdata", "read_spatialdata_image",
           "read_spatialdata_points", "spatialdata_available", "store_elements"]

#: top-level groups of a SpatialData zarr store
ELEMENT_GROUPS = ("tables", "points", "shapes", "images", "labels")
#: the shapes element ROIs are written to (see :mod:`napari_roiscore.readers.spatialdata_rois`)
ROI_ELEMENT = "roiscore_rois"
INSTALL_HINT = 'pip install "napari-roiscore[spatialdata]"  (or: pip install "spatialdata>=0.2")'


def is_spatialdata_store(path: str | Path) -> bool:
    """True if ``path`` is a zarr group with a ``tables``/``points``/``shapes``/``images``/``labels`` group.

    Uses zarr only (no spatialdata import), so it is cheap enough for napari's
    reader lookup.
    """
    p = Path(path)
    if not p.is_dir() or not any((p / m).is_file() for m in (".zgroup", "zarr.json")):
        return False
    import zarr

    try:
        root = zarr.open_group(str(p), mode="r")
        groups = {name for name, _ in root.groups()}
    except Exception:  # not a readable zarr group: not ours
        return False
    return bool(groups & set(ELEMENT_GROUPS))


def spatialdata_available() -> bool:
    """Whether the optional package ``spatialdata`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("spatialdata") is not None


def _import_spatialdata(doing: str = "reading a SpatialData .zarr store"):
    try:
        import spatialdata
    except ImportError as err:
        raise RoiScoreError(
            f"{doing} needs the optional package 'spatialdata', which is not installed ({err}).",
            f"Install the extra: {INSTALL_HINT}; or convert the store to .h5ad.",
        ) from None
    return spatialdata


def _pick(names: list[str], wanted: str | None, what: str, src: str) -> str:
    if wanted is not None:
        if wanted not in names:
            raise RoiScoreError(f"SpatialData store {src!r}: {what} {wanted!r} not found.", f"Use one of {names}.")
        return wanted
    if len(names) == 1:
        return names[0]
    if not names:
        raise RoiScoreError(f"SpatialData store {src!r} has no {what}.",
                            "Open a store with an AnnData table of counts (sdata.tables).")
    raise RoiScoreError(f"SpatialData store {src!r} has several {what}s: {names}.",
                        f"Choose one ({what}=...).")


def _from_shapes(gdf, ids) -> tuple[np.ndarray, float, str]:
    gdf = gdf.loc[ids] if ids is not None else gdf
    geom = gdf.geometry
    if "radius" in gdf.columns and (geom.geom_type == "Point").all():
        return np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()]), 2 * float(np.median(gdf["radius"])), "circle"
    cent = geom.centroid
    area = geom.area.to_numpy()
    xy = np.column_stack([cent.x.to_numpy(), cent.y.to_numpy()])
    boxes = geom.envelope.area.to_numpy()
    square = bool(np.allclose(area, boxes, rtol=1e-6)) and all(
        len(g.exterior.coords) == 5 for g in geom if g.geom_type == "Polygon")
    if square:
        return xy, float(np.median(np.sqrt(area))), "square"
    return xy, float(np.median(2 * np.sqrt(area / np.pi))), "circle"


def read_spatialdata(path: str | Path, table: str | None = None, region: str | None = None) -> SpotTable:
    """Read spots (one per table row) from a SpatialData ``.zarr`` store.

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` store.
    table : str, optional
        Table name, when the store has several.
    region : str, optional
        Annotated element (e.g. ``"<sample>_shapes"``), when the table annotates several.

    Raises
    ------
    RoiScoreError
        spatialdata not installed (with the install command), not a store,
        no table/region, or no spot positions.
    """
    p = Path(path)
    src = str(p)
    if not p.is_dir():
        raise RoiScoreError(f"SpatialData store {src!r} does not exist or is not a folder.", "Check the path.")
    sd = _import_spatialdata()
    if not is_spatialdata_store(p):
        raise RoiScoreError(f"{src!r} is not a SpatialData store (no tables/points/shapes/images/labels group).",
                            "Open the .zarr folder written by spatialdata (sdata.write).")
    try:
        sdata = sd.read_zarr(p)
    except Exception as err:  # spatialdata raises many kinds for bad stores
        raise RoiScoreError(f"SpatialData store {src!r} cannot be read ({type(err).__name__}: {str(err)[:120]}).",
                            "Check that it was written by a compatible spatialdata version.") from None
    names = list(sdata.tables.keys())
    if table is None:  # the ROI table this plugin writes into a store is not a table of spots
        spot_tables = [n for n in names if (sdata.tables[n].uns.get("spatialdata_attrs") or {}).get("region")
                       != ROI_ELEMENT]
        names = spot_tables or names
    name = _pick(names, table, "table", src)
    adata = sdata.tables[name].copy()
    from napari_roiscore.spots.table import SpotTable, select_raw_counts

    adata, _ = select_raw_counts(adata, f"SpatialData store {src!r}, table {name!r}")
    attrs = adata.uns.get("spatialdata_attrs", {}) or {}
    regions = attrs.get("region")
    regions = [regions] if isinstance(regions, str) else list(regions or [])
    region_key, instance_key = attrs.get("region_key"), attrs.get("instance_key")
    diameter = None
    shape = "circle"
    chosen = None
    if regions:
        chosen = _pick(regions, region, "annotated region", src)
        if region_key in adata.obs and len(regions) > 1:
            adata = adata[adata.obs[region_key].astype(str).to_numpy() == chosen].copy()
    if chosen is not None and chosen in sdata.shapes:
        ids = adata.obs[instance_key].to_numpy() if instance_key in adata.obs else None
        xy, diameter, shape = _from_shapes(sdata.shapes[chosen], ids)
        adata.obsm["spatial"] = xy
    elif "spatial" in adata.obsm:
        from napari_roiscore.spots.table import _scale_info

        diameter, _ = _scale_info(adata, src)
    if "spatial" not in adata.obsm or diameter is None or not diameter > 0:
        raise RoiScoreError(f"SpatialData store {src!r}: table {name!r} has no spot positions and sizes "
                            "(no annotated shapes element, nor obsm['spatial'] with scale factors).",
                            "Link the table to its shapes (spot circles) or add obsm['spatial'].")
    adata.obs_names_make_unique()
    if not adata.var_names.is_unique:
        adata.var_names_make_unique()
    return SpotTable(adata=adata, diameter_px=float(diameter), shape=shape, pixel_size_um=None,
                     provenance={"reader": "spatialdata", "path": src, "table": name, "region": chosen,
                                 "coordinates": f"intrinsic coordinates of shapes {chosen!r}"
                                 if chosen is not None and chosen in sdata.shapes else "obsm['spatial']"})


def store_elements(path: str | Path) -> dict[str, list[str]]:
    """Element names per group (``images``, ``shapes``…) of a store, with zarr alone."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    out: dict[str, list[str]] = {}
    for group in ELEMENT_GROUPS:
        if group in root:
            out[group] = sorted(name for name, _ in root[group].groups())
    return out


def _read_store(path: str | Path):
    p = Path(path)
    sd = _import_spatialdata()
    if not is_spatialdata_store(p):
        raise RoiScoreError(f"{str(p)!r} is not a SpatialData store.", "Open the .zarr folder written by spatialdata.")
    try:
        return sd.read_zarr(p)
    except Exception as err:
        raise RoiScoreError(f"SpatialData store {str(p)!r} cannot be read ({type(err).__name__}: {str(err)[:120]}).",
                            "Check that it was written by a compatible spatialdata version.") from None


def _affine(element, coordinate_system: str) -> np.ndarray:
    """3 x 3 (y, x) affine of an element into ``coordinate_system`` (identity when it has none)."""
    from spatialdata.transformations import get_transformation

    transforms = get_transformation(element, get_all=True) or {}
    if coordinate_system not in transforms:
        return np.eye(3)
    return np.asarray(transforms[coordinate_system].to_affine_matrix(input_axes=("y", "x"), output_axes=("y", "x")),
                      dtype=np.float64)


def _spot_frame(sdata, element) -> str:
    """The coordinate system the spots are drawn in: one where a shapes element has an
    identity transformation (its intrinsic pixels) and ``element`` has one too; else
    ``"global"`` when the element has it; else the element's first."""
    from spatialdata.transformations import Identity, get_transformation

    own = get_transformation(element, get_all=True) or {}
    for shapes in sdata.shapes.values():
        for cs, tr in (get_transformation(shapes, get_all=True) or {}).items():
            if isinstance(tr, Identity) and cs in own:
                return cs
    return "global" if "global" in own or not own else next(iter(own))


def read_spatialdata_image(path: str | Path, element: str | None = None, coordinate_system: str | None = None):
    """One image element as a lazy :class:`MultiplexImage` with its transformation.

    Multiscale images keep their levels; channel names come from the ``c``
    coordinate.  ``provenance["affine"]`` maps level-0 (y, x) pixels into
    ``coordinate_system`` — by default the frame of the spots (see
    :func:`read_spatialdata`), e.g. for stores written by spatialdata-io from
    Space Ranger the low-res image scaled back onto full-resolution pixels.
    """
    from napari_roiscore.images.multiplex import MultiplexImage

    sdata = _read_store(path)
    name = _pick(list(sdata.images.keys()), element, "image", str(path))
    el = sdata.images[name]
    if coordinate_system is None:
        coordinate_system = _spot_frame(sdata, el)
    if hasattr(el, "children") and len(el.children):  # multiscale: a DataTree of scale0, scale1, ...
        arrays = [next(iter(el[k].ds.data_vars.values())) for k in sorted(el.children, key=lambda k: int(k[5:]))]
    else:
        arrays = [el]
    levels = [a.transpose("c", "y", "x").data for a in arrays]
    names = [str(c) for c in arrays[0].coords["c"].values] if "c" in arrays[0].coords else \
        [f"channel {i}" for i in range(levels[0].shape[0])]
    return MultiplexImage(levels=levels, channel_names=names, pixel_size_um=None,
                          provenance={"reader": "spatialdata", "path": str(path), "element": name,
                                      "coordinate_system": coordinate_system,
                                      "affine": _affine(el, coordinate_system).tolist()})


def read_spatialdata_points(path: str | Path, element: str | None = None, coordinate_system: str | None = None):
    """A points element as a pandas DataFrame (``x``, ``y`` and its other columns) and its
    3 x 3 (y, x) affine into ``coordinate_system`` (default: the spots' frame)."""
    sdata = _read_store(path)
    name = _pick(list(sdata.points.keys()), element, "points element", str(path))
    points = sdata.points[name]
    cs = coordinate_system if coordinate_system is not None else _spot_frame(sdata, points)
    return points.compute(), _affine(points, cs)
