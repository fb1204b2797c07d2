"""Session files: everything needed to reproduce a set of ROI scores.

A session is a JSON file that records

* the **data files** (spots, optional image, optional ROI file) with their
  paths and SHA-256 checksums, so that opening a session on changed data
  fails loudly instead of giving different numbers;
* the **ROIs** themselves, as QuPath-style GeoJSON features with their names
  and classes (the ROIs as drawn, which may differ from any ROI file);
* the **signature**, the scoring **method** and its **parameters**, plus any
  **thresholds** the user set;
* the **software versions** that produced it, and (optionally) the resulting
  ROI table, so that a reopened session can be checked number by number.

The widget saves and opens sessions; ``roiscore score --session FILE`` scores
one headless.  Both go through :func:`score_session`, which uses the same
:class:`~napari_roiscore.scoring.scorer.RoiScorer` as everything else, so the numbers
are identical.

Functions
---------
:func:`save_session`   write a session from paths, ROIs and a signature;
:func:`load_session`   read one back and verify the checksums;
:func:`score_session`  recompute its ROI table.

Modules
-------
``contents``    what a session holds (:class:`Session`, :class:`DataFile`) and its JSON form;
``save_load``   saving and opening session files;
``checksums``   SHA-256 of files and folders, software versions;
``rescoring``   scoring a session again, comparing ROI tables exactly.

:func:`read_spots` (:mod:`napari_roiscore.spots.reading`) and
:func:`marker_restriction` (:mod:`napari_roiscore.images.markers`) are
re-exported here for existing callers.
"""

from __future__ import annotations

from napari_roiscore.images.spot_footprints import marker_restriction
from napari_roiscore.session.checksums import sha256_path, software_versions
from napari_roiscore.session.contents import (
    FORMAT,
    FORMAT_VERSION,
    DataFile,
    Session,
    table_from_records,
    table_to_records,
)
from napari_roiscore.session.rescoring import read_session_spots, same_numbers, score_session, session_scorer
from napari_roiscore.session.save_load import check_session, load_session, make_session, save_session
from napari_roiscore.spots.reading import read_spots

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "DataFile",
    "Session",
    "check_session",
    "load_session",
    "make_session",
    "marker_restriction",
    "read_session_spots",
    "read_spots",
    "save_session",
    "same_numbers",
    "score_session",
    "session_scorer",
    "sha256_path",
    "software_versions",
    "table_from_records",
    "table_to_records",
]
