"""Small helpers shared by the instrument readers: find files, complain clearly."""

from __future__ import annotations

from pathlib import Path

from napari_roiscore.errors import RoiScoreError

__all__ = ["find_cosmx_files", "first_existing", "is_cosmx_folder", "require_dir", "require_file"]


def require_dir(path: str | Path, what: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it is a folder, else raise."""
    path = Path(path)
    if not path.is_dir():
        raise RoiScoreError(
            f"{what} folder {str(path)!r} does not exist or is not a folder.",
            "Check the path; point to the output folder itself.",
        )
    return path


def first_existing(folder: Path, names: list[str]) -> Path | None:
    """The first of ``names`` (relative to ``folder``) that exists, else ``None``."""
    for name in names:
        p = folder / name
        if p.exists():
            return p
    return None


def require_file(folder: Path, names: list[str], what: str, fix: str) -> Path:
    """The first of ``names`` that exists in ``folder``; raise naming them all if none does."""
    found = first_existing(folder, names)
    if found is None:
        listed = " or ".join(repr(n) for n in names)
        raise RoiScoreError(f"{what} {str(folder)!r}: {listed} is missing.", fix)
    return found


# -- CosMx flat files: recognised here (napari asks on its GUI thread), read in readers/cosmx.py --

def _one(folder: Path, suffix: str) -> Path | None:
    found = sorted(folder.glob(f"*_{suffix}.csv")) + sorted(folder.glob(f"*_{suffix}.csv.gz"))
    return found[0] if found else None


def find_cosmx_files(folder: str | Path) -> dict[str, Path | None]:
    """Paths of the expression, metadata and FOV position files (``None`` when absent)."""
    folder = Path(folder)
    return {"expression": _one(folder, "exprMat_file"), "metadata": _one(folder, "metadata_file"),
            "fov_positions": _one(folder, "fov_positions_file")}


def is_cosmx_folder(path: str | Path) -> bool:
    """True for a folder with a CosMx expression or metadata flat file."""
    p = Path(path)
    if not p.is_dir():
        return False
    files = find_cosmx_files(p)
    return files["expression"] is not None or files["metadata"] is not None
