from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from npe2 import PluginManifest


def test_manifest_valid_via_cli():
    exe = shutil.which("npe2") or str(Path(sys.executable).with_name("npe2"))
    out = subprocess.run([exe, "validate", "napari-roiscore"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout.lower()


def test_manifest_contributions():
    pm = PluginManifest.from_distribution("napari-roiscore")
    c = pm.contributions
    assert {"ROI scores", "Channel roles", "Align spots"} <= {w.display_name for w in c.widgets}
    assert [s.key for s in c.sample_data] == ["multiplex_visium"]
    assert any("*.h5ad" in r.filename_patterns for r in c.readers)
    assert any("*.qptiff" in r.filename_patterns and "*.ome.tif" in r.filename_patterns for r in c.readers)
    assert any(".geojson" in w.filename_extensions for w in c.writers)
    # every command resolves to a real python object
    for cmd in c.commands:
        assert cmd.python_name
        mod, attr = cmd.python_name.split(":")
        __import__(mod)
        assert hasattr(sys.modules[mod], attr), cmd.python_name


def test_manifest_reached_through_symlink():
    import napari_roiscore

    pkg = Path(napari_roiscore.__file__).parent
    assert (pkg / "napari.yaml").is_file()
    assert (pkg / "sample_images" / "sample_spots.h5ad").is_file()


REPO = Path(__file__).resolve().parents[1]


def test_package_manifest_and_sample_images_are_symlinks_to_the_top_level_files():
    pkg = REPO / "src" / "napari_roiscore"
    for name in ("napari.yaml", "sample_images"):
        link = pkg / name
        assert link.is_symlink(), f"{link} must be a symlink to ../../{name}, not a copy"
        assert link.resolve() == (REPO / name).resolve(), f"{link} points to {link.resolve()}"


def test_installed_manifest_is_the_top_level_file():
    """The manifest napari loads (through the entry point) equals the one in the repository root."""
    installed = PluginManifest.from_distribution("napari-roiscore")
    top_level = PluginManifest.from_file(REPO / "napari.yaml")
    assert installed.model_dump(exclude={"package_metadata"}) == \
        top_level.model_dump(exclude={"package_metadata"})
    patterns = {p for r in installed.contributions.readers for p in r.filename_patterns}
    assert {"*.h5", "*.xlsx", "*.zarr", "*.h5ad"} <= patterns
