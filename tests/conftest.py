from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DIR = REPO / "sample_images"


@pytest.fixture(scope="session")
def sample_paths() -> dict[str, Path]:
    return {
        "image": SAMPLE_DIR / "sample_slide.ome.tif",
        "spots": SAMPLE_DIR / "sample_spots.h5ad",
        "rois": SAMPLE_DIR / "sample_rois.geojson",
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only present next to the CI checkout)")
    return SHARED_DATA
