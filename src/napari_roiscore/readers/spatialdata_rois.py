"""ROIs and their scores in a SpatialData store — optional extra ``spatialdata``.

:func:`write_rois_to_spatialdata` puts the ROIs into a ``.zarr`` store as a
**shapes** element (one polygon or multipolygon per ROI, holes kept, columns
``name`` and ``class``) annotated by a **table** (one row per ROI; ``obs``:
``name``, ``class``, ``status`` and every score column of the ROI table;
``X``: the numeric score columns), linked the SpatialData way
(``region`` / ``region_key`` / ``instance_key``).  That is what napari-spatialdata
lists and colours: open the store there and the ROIs appear with their class
and scores.

Coordinates: ROI outlines are level-0 image pixels, the frame the spots were
read in.  The shapes element gets the transformations of the element the
spots came from (``like``, e.g. the Visium ``*_shapes`` element, whose
intrinsic frame is full-resolution pixels), so ROIs and spots line up in
every coordinate system of the store; without one, an identity to
``"global"``.

:func:`read_rois_from_spatialdata` reads such an element back (or any shapes
element of polygons: names from a ``name`` column or the index, classes from a
``class`` column or the annotating table).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from napari_roiscore.errors import RoiScoreError
from napari_roiscore.readers.spatialdata_store import ROI_ELEMENT, _import_spatialdata, is_spatialdata_store
from napari_roiscore.rois.roi import Roi

__all__ = ["ROI_ELEMENT", "ROI_TABLE", "read_rois_from_spatialdata", "write_rois_to_spatialdata"]

#: default name of the ROI table (the shapes element is ``ROI_ELEMENT``)
ROI_TABLE = "roiscore_rois_table"


def _roi_table(rois: list[Roi], scores: pd.DataFrame | None, element: str):
    import anndata as ad

    obs = pd.DataFrame({"name": [r.name for r in rois], "class": [r.roi_class for r in rois]})
    numeric: list[str] = []
    if scores is not None and len(scores):
        if "roi" not in scores.columns:
            raise RoiScoreError("The score table has no 'roi' column.", "Pass the ROI table the scorer returned.")
        by_name = scores.drop_duplicates("roi").set_index("roi")
        missing = [r.name for r in rois if r.name not in by_name.index]
        if missing:
            raise RoiScoreError(f"The score table has no row for ROI(s) {missing}.",
                                "Score every ROI before writing, or write the ROIs without scores.")
        for col in by_name.columns:
            if col == "class":
                continue
            values = by_name.loc[obs["name"], col].to_numpy()
            if pd.api.types.is_numeric_dtype(by_name[col]):
                obs[col] = values.astype(np.float64)
                numeric.append(col)
            else:
                obs[col] = pd.Series(values, dtype=object).astype(str).to_numpy()
    obs["region"] = pd.Categorical([element] * len(rois))
    obs["instance_id"] = np.arange(len(rois))
    obs.index = [str(i) for i in range(len(rois))]
    x = obs[numeric].to_numpy(np.float64) if numeric else np.zeros((len(rois), 0))
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=numeric))


def write_rois_to_spatialdata(path: str | Path, rois: list[Roi], scores: pd.DataFrame | None = None, *,
                              element: str = ROI_ELEMENT, table: str = ROI_TABLE, like: str | None = None,
                              overwrite: bool = True) -> Path:
    """Write ROIs (and their scores) into a SpatialData store (see module docstring).

    Parameters
    ----------
    path : str or Path
        A SpatialData ``.zarr`` store (created when it does not exist).
    rois : list of Roi
    scores : DataFrame, optional
        The ROI table (``RoiScorer.table``): a row per ROI, column ``roi``.
    element, table : str
        Names of the shapes element and of its table.
    like : str, optional
        Element whose transformations the ROIs take (default: the spots'
        shapes element when the store's table annotates exactly one).
    overwrite : bool
        Replace an element or table of the same name.

    Raises
    ------
    RoiScoreError
        spatialdata missing, no ROI, a ROI without area, names clash, or the
        store cannot be written.
    """
    sd = _import_spatialdata("writing ROIs into a SpatialData store")
    import geopandas as gpd
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Identity, get_transformation

    p = Path(path)
    if not rois:
        raise RoiScoreError("There are no ROIs to write.", "Draw or propose ROIs first.")
    empty = [r.name for r in rois if r.geometry.is_empty or r.geometry.area <= 0]
    if empty:
        raise RoiScoreError(f"ROI(s) {empty} have no area.", "Delete them or redraw them before writing.")
    if len({r.name for r in rois}) != len(rois):
        raise RoiScoreError("Several ROIs share a name.", "Give each ROI its own name before writing.")
    if p.exists() and not is_spatialdata_store(p):
        raise RoiScoreError(f"{str(p)!r} exists and is not a SpatialData store.",
                            "Choose a new .zarr path or an existing SpatialData store.")
    sdata = sd.read_zarr(p) if p.exists() else sd.SpatialData()
    if like is None and p.exists():
        annotated = [r for t in sdata.tables.values()
                     for r in np.atleast_1d((t.uns.get("spatialdata_attrs") or {}).get("region") or [])
                     if r in sdata.shapes and r != element]
        like = annotated[0] if len(set(annotated)) == 1 else None
    gdf = gpd.GeoDataFrame({"name": [r.name for r in rois], "class": [r.roi_class for r in rois]},
                           geometry=[r.geometry for r in rois], index=np.arange(len(rois)))
    transforms = get_transformation(sdata.shapes[like], get_all=True) if like in sdata.shapes else \
        {"global": Identity()}
    shapes = ShapesModel.parse(gdf, transformations=dict(transforms))
    adata = TableModel.parse(_roi_table(rois, scores, element), region=element, region_key="region",
                             instance_key="instance_id")
    try:
        for name, kind in ((element, "shapes"), (table, "tables")):
            if name in sdata:
                if not overwrite:
                    raise RoiScoreError(f"The store already holds {name!r}.", "Pass overwrite=True or another name.")
                if sdata.is_backed():
                    sdata.delete_element_from_disk(name)
                del sdata[name]
        sdata.shapes[element] = shapes
        sdata.tables[table] = adata
        if sdata.is_backed() and sdata.path is not None and Path(sdata.path).resolve() == p.resolve():
            sdata.write_element([element, table])
        else:
            sdata.write(p)
    except RoiScoreError:
        raise
    except Exception as err:
        raise RoiScoreError(f"Could not write ROIs into {str(p)!r} ({type(err).__name__}: {str(err)[:160]}).",
                            "Check that the store is writable and was made by a compatible spatialdata.") from None
    return p


def read_rois_from_spatialdata(path: str | Path, element: str = ROI_ELEMENT,
                               table: str | None = None) -> tuple[list[Roi], pd.DataFrame | None]:
    """ROIs of a shapes element, and the ``obs`` of the table annotating it (or ``None``).

    Raises
    ------
    RoiScoreError
        spatialdata missing, no such element, or geometries that are not polygons.
    """
    sd = _import_spatialdata()
    p = Path(path)
    if not is_spatialdata_store(p):
        raise RoiScoreError(f"{str(p)!r} is not a SpatialData store.", "Open the .zarr written by spatialdata.")
    sdata = sd.read_zarr(p)
    if element not in sdata.shapes:
        raise RoiScoreError(f"SpatialData store {str(p)!r} has no shapes element {element!r}.",
                            f"Use one of {list(sdata.shapes.keys())}.")
    gdf = sdata.shapes[element]
    if not gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        raise RoiScoreError(f"Shapes {element!r} are not polygons (e.g. spot circles), so not ROIs.",
                            "Choose a shapes element of polygons.")
    obs = None
    names = [n for n, t in sdata.tables.items()
             if element in np.atleast_1d((t.uns.get("spatialdata_attrs") or {}).get("region") or [])]
    if table is not None or names:
        tname = table if table is not None else names[0]
        t = sdata.tables[tname]
        attrs = t.uns.get("spatialdata_attrs") or {}
        obs = t.obs.copy()
        if attrs.get("instance_key") in obs:
            obs = obs.set_index(attrs["instance_key"], drop=False).reindex(gdf.index)
    names_col = gdf["name"].astype(str) if "name" in gdf else pd.Series([str(i) for i in gdf.index], gdf.index)
    if "class" in gdf:
        classes = gdf["class"].astype(str)
    elif obs is not None and "class" in obs:
        classes = obs["class"].astype(str)
    else:
        classes = pd.Series(["unclassified"] * len(gdf), gdf.index)
    rois = [Roi(str(n), str(c), g) for n, c, g in zip(names_col, classes, gdf.geometry)]
    return rois, obs
