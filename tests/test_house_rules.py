"""The house stays livable: modules of at most ~400 lines, classes of at most ~25 methods.

Issue 10's rule, checked on every module of the package so that a new feature grows a new
module instead of an old one.  "About 400" is read as 420, to leave room for a docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import napari_roiscore

PACKAGE = Path(napari_roiscore.__file__).parent
MAX_LINES = 420
MAX_METHODS = 25


def _modules() -> list[Path]:
    mods = sorted(PACKAGE.rglob("*.py"))
    assert len(mods) > 50  # the walk found the package
    return mods


def test_no_module_above_about_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules by responsibility (lines): {long}"


def test_no_class_above_about_25_methods():
    big = {}
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                n = sum(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body)
                if n > MAX_METHODS:
                    big[f"{p.relative_to(PACKAGE)}:{node.name}"] = n
    assert not big, f"split these classes (methods): {big}"
