"""Fixtures of the command-line tests: one generated slide, and no input left protected."""

from __future__ import annotations

import pytest

from napari_roiscore.outputs import clear_protected
from napari_roiscore.spots.synthetic import make_slide, write_slide


@pytest.fixture(scope="module")
def slide(tmp_path_factory) -> dict:
    """A small generated slide (spots, ROIs, image) and a three-gene signature file."""
    folder = tmp_path_factory.mktemp("slide")
    paths = write_slide(make_slide(size=512, n_genes=120, seed=3), folder, stem="S", levels=1)
    (folder / "sig.json").write_text('{"name": "MACRO", "up": ["CD68", "CD163", "STAB1"]}')
    return {**paths, "signature": folder / "sig.json", "folder": folder}


@pytest.fixture(autouse=True)
def _fresh_protected_inputs():
    """Each command starts with no input remembered from another test's run."""
    clear_protected()
    yield
    clear_protected()
