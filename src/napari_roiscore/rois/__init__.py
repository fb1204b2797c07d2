"""Regions of interest: outlines, classes, files and proposals.

Where to look
-------------
``roi.py``
    :class:`Roi` (name, class, outline) and outline repair.
``classes.py``
    Class names (tumour, stroma, user classes) and their colours.
``shapes.py``
    napari Shapes layer data <-> ROIs.
``geojson.py``
    QuPath GeoJSON import and export.
``autosave.py``
    The autosave sidecar and the bin of deleted ROIs.
``autosave_guard.py`` / ``autosave_merge.py``
    One writer per sidecar (lock, per-process sidecars); ROIs of crashed
    sessions merged into the restore offer.
``compartments.py``
    Tumour / stroma compartments proposed from a cancer-cell channel.
``annotation_groups.py``
    ROIs from annotation values (GeoMx AOIs) instead of drawing.
"""
