"""Small helpers shared by the GUI tests (tests/_qt)."""

from __future__ import annotations


def scores_ready(widget) -> bool:
    """True once the ROI scores widget shows a score (or a final status) for every ROI."""
    t = widget.last_table
    return not t.empty and not t["status"].eq("computing…").any()
