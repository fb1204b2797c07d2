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
``pseudobulk_samples.py`` / ``differential.py`` / ``volcano.py``
    ROI pseudobulk samples, differential expression between ROI groups (PyDESeq2), volcano plot.
``signature_from_de.py``
    A new signature from DE genes, saved with its provenance.
``cohort.py`` / ``synthetic_cohort.py``
    Patient-level validation (AUC, CI, no double dipping) and a seeded test cohort.
``cohort_run.py``
    A cohort validation run from a batch manifest (what the dock's Cohort tab runs).
``manifest.py``
    The cohort manifest (one row per slide, with patient and response) and its checks.
``slide_scoring.py``
    One slide's ROIs scored: what ``roiscore score``, every batch task and the Cohort tab run.
"""
