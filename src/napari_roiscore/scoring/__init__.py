"""Gene-signature scoring: from raw counts to one number per spot and per ROI.

Where to look
-------------
``signature.py`` / ``signature_files.py``
    A signature (up/down genes, weights) and reading GMT, YAML, JSON files.
``methods.py``
    The scoring methods offered (mean z-score, scanpy, UCell, singscore,
    GeoMx-style pseudobulk) and how spot scores become ROI scores.
``normalise.py``
    Counts per 10k, ``log1p``, library sizes.
``control_genes.py``
    scanpy's control-gene score (``tl.score_genes``).
``rank_scores.py``
    UCell and singscore: the rank-based scores.
``pseudobulk.py``
    Summed counts per ROI, CPM and Q3 normalisation (GeoMx style).
``gene_notes.py``
    Which signature genes carry no information, in plain words.
``scorer.py``
    :class:`RoiScorer`: the one object the widget, CLI and API share.
"""
