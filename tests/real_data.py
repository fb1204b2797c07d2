"""Where the real test data lives, and how a test skips without it.

The real files (a Space Ranger Visium output, a GeoMx NGS readout, two MIBI-TOF fields)
sit in ``../shared/data`` beside the checkout, never inside the project. A test that
needs one asks :func:`real_data` for it and is skipped, with the path it looked at, when
the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_data(*parts: str) -> Path:
    """Return ``../shared/data/<parts>``, or skip the calling test naming what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (only present next to the CI checkout)")
    return path
