"""Analyses on ROI scores: statistics, measurements, reports and exports.

Where to look
-------------
``statistics.py`` / ``responder.py``
    Tumour vs stroma comparison, bootstrap CI, Mann-Whitney, responder call.
``roi_measurements.py``
    Area, UMIs and genes detected per ROI.
``report.py``
    The PNG/PDF report.
``export.py``
    CSV and annotated ``.h5ad`` exports.
"""
