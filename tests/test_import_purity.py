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


#: the layers below the command line: data flows readers -> spots -> scores -> analysis
CORE_BELOW_CLI = ("scoring", "rois", "images", "readers", "spots", "analysis", "session")


def test_core_layers_do_not_reach_up_into_the_command_line():
    """The core serves the CLI and the dock; it never imports either (not even inside a function)."""
    import ast
    from pathlib import Path

    root = Path(napari_roiscore.__file__).parent
    bad = []
    for pkg in CORE_BELOW_CLI:
        for path in sorted((root / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                bad += [f"{path.relative_to(root)}:{node.lineno} imports {n}" for n in names
                        if n.startswith(("napari_roiscore.cli", "napari_roiscore._qt"))]
    assert not bad, "core modules import the CLI or the dock: " + "; ".join(bad)


def test_napari_importing_the_reader_does_not_import_the_scoring_stack():
    """napari imports ``_reader`` on its GUI thread at the first File ▸ Open: recognising a path
    must not pull in pandas, anndata or scipy.stats (0.84 s measured before they were lazy)."""
    code = ("import sys, napari_roiscore._reader as r\n"
            "r.get_reader('x.h5ad'); r.get_reader('/nonexistent/folder')\n"
            "print(','.join(m for m in ('pandas', 'anndata', 'scipy.stats', 'shapely', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the reader's import pulled in: {out.stdout}"
    # and the detector can fail: reading a file does import them
    code = code.replace("print(", "import napari_roiscore; napari_roiscore.RoiScorer\nprint(")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pandas" in out.stdout


def test_the_public_names_still_import_from_the_package():
    import napari_roiscore as pkg
    from napari_roiscore import EXAMPLE_PANEL, RoiScorer, read_rois, read_spots  # noqa: F401
    from napari_roiscore.readers import read_spaceranger, spots_kind  # noqa: F401
    from napari_roiscore.rois.geojson import read_geojson

    assert read_rois is read_geojson
    assert set(pkg.__all__) <= set(dir(pkg))
    with __import__("pytest").raises(AttributeError, match="no attribute 'nope'"):
        pkg.nope  # noqa: B018


def test_after_the_readers_are_prepared_reading_a_file_imports_nothing(tmp_path):
    """The reader's worker imports first (``_reader._prepare_reading``): loading compiled modules
    holds the interpreter, and glyph warming on the GUI thread starts only after it."""
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    a = ad.AnnData(sp.csr_matrix(np.ones((3, 2), np.float32)))
    a.var_names = ["CD68", "STAB1"]
    a.obsm["spatial"] = np.arange(6.0).reshape(3, 2)
    a.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 10.0}}}
    path = tmp_path / "spots.h5ad"
    a.write_h5ad(path)
    code = (
        "import sys; from pathlib import Path; import napari_roiscore._reader as r\n"
        "r._prepare_reading([])\n"
        "new = []\n"
        "sys.addaudithook(lambda ev, args: new.append(args[0]) if ev == 'import' and args[0] not in sys.modules "
        "else None)\n"
        f"r._read_one(Path({str(path)!r}))\n"
        "print(sorted(set(new)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
