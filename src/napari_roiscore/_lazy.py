"""Package names imported on first use (PEP 562).

napari imports the plugin when the user first opens a file, on its GUI thread.
Packages whose ``__init__`` re-exports names (``napari_roiscore``,
``napari_roiscore.readers``) use :func:`lazy_exports` so that this import does
not pull in pandas, anndata or scipy.stats: each name is imported when first
used, as usual for the caller (``from napari_roiscore import RoiScorer``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exporting ``names``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict
        Public name → ``"module:attribute"`` (``"module"`` alone when the
        attribute has the public name).

    Returns
    -------
    (__getattr__, __dir__)
        To assign in the package's ``__init__``; a name is cached in the
        package's namespace once imported.
    """
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = names[name].partition(":")
        value = getattr(import_module(module), attr or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
