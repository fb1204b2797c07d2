"""Spots (or bins, cells, AOIs): the sample model the scores are computed on.

Where to look
-------------
``table.py``
    :class:`SpotTable`: counts, centres, spot size and µm scale.
``raw_counts.py``
    Are the counts raw (whole, finite, non-negative), and where are they
    (``X``, ``layers["counts"]``, ``.raw``)?
``reading.py``
    One entry point that reads any supported file or folder.
``index.py`` / ``outline_cells.py``
    The spatial index that finds the spots inside an ROI fast.
``raster.py`` / ``view.py`` / ``view_build.py``
    Millions of spots drawn as rasters (exact bins or tile means) plus markers
    in view; built step by step (totals in blocks, preview, full raster) so a
    worker thread can do it.
``colour_scale.py``
    Colour limits that follow the values shown.
``sample.py`` / ``synthetic.py``
    The shipped sample slide and the generator that made it.
"""
