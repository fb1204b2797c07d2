"""Tissue images: lazy multichannel pyramids, channel roles, markers, alignment.

Where to look
-------------
``multiplex.py``
    :class:`MultiplexImage` and the OME-TIFF pyramid reader.
``tiff_metadata.py``
    Channel names and pixel size from OME-XML, QPTIFF, ImageJ and TIFF tags.
``channels.py``
    Which channel stains what (nuclei, cancer cells, vessels, macrophages)
    and its display colour.
``markers.py``
    Marker-positive masks (Otsu) and the marker restriction of spots.
``brightfield.py``
    Colour deconvolution of H&E / IHC images into stain channels.
``registration.py``
    Aligning spots to the image from landmarks.
"""
