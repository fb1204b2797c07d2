from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_autosave(tmp_path, monkeypatch):
    """GUI tests autosave into a temporary folder, never next to real data."""
    monkeypatch.setenv("NAPARI_ROISCORE_AUTOSAVE_DIR", str(tmp_path / "autosave"))
