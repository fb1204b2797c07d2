"""The core must not import Qt or napari (it runs headless and on clusters)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import napari_roiscore


def core_modules() -> list[str]:
    mods = []
    for m in pkgutil.walk_packages(napari_roiscore.__path__, "napari_roiscore."):
        if "._qt" in m.name:
            continue
        mods.append(m.name)
    return mods


def test_core_imports_neither_qt_nor_napari():
    mods = core_modules()
    assert "napari_roiscore.scoring.methods" in mods and "napari_roiscore.spots.index" in mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'superqt', 'vispy'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core modules imported GUI packages: {out.stdout}"


def test_widget_package_does_import_qt():
    """Sanity check that the detector above can fail."""
    code = "import sys, napari_roiscore._qt.roi_scores; print('qtpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
