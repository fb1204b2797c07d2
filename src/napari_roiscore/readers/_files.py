"""Small helpers shared by the instrument readers: find files, complain clearly."""

from __future__ import annotations

from pathlib import Path

from napari_roiscore.errors import RoiScoreError

__all__ = ["first_existing", "require_dir", "require_file"]


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
