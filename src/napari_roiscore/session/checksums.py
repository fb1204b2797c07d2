"""Checksums of data files and folders, and the software versions behind the numbers.

A session records both, so that reopening it on changed data or other
software is noticed instead of silently giving different scores.
"""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["VERSIONED_PACKAGES", "sha256_path", "software_versions"]


#: Packages whose versions are recorded in a session (those that shape the numbers).
VERSIONED_PACKAGES = ("napari-roiscore", "numpy", "scipy", "pandas", "anndata", "h5py",
                      "shapely", "tifffile", "scikit-image", "dask")

_CHUNK = 1 << 20


def sha256_path(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder (its files' relative paths and contents).

    Folders (e.g. a Space Ranger ``outs/``) are hashed over their files in
    sorted order, so the checksum changes when any file is added, removed,
    renamed or edited.  Symlinked files and subfolders are followed (a link
    back to a folder above it is not, so link loops end).
    """
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(_folder_files(path)):
            h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
            h.update(sha256_path(f).encode("ascii"))
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _folder_files(folder: Path) -> list[Path]:
    """Every file under ``folder``, following symlinked subfolders except those
    that lead back to a folder being walked (a loop)."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = os.path.realpath(root)
        keep = []
        for d in dirs:
            real = os.path.realpath(os.path.join(root, d))
            if not (here == real or here.startswith(real.rstrip(os.sep) + os.sep)):
                keep.append(d)
        dirs[:] = keep
        out += [p for p in (Path(root) / f for f in files) if p.is_file()]
    return out


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the numbers."""
    from napari_roiscore.analysis.report import software_versions as report_versions

    out = dict(report_versions())
    for pkg in VERSIONED_PACKAGES:
        if pkg not in out:
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                continue
    return out
