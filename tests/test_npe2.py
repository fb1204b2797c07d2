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
