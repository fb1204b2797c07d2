"""The one error type the core raises for bad input."""

from __future__ import annotations


class RoiScoreError(ValueError):
    """Bad input the user can fix.

    Every message names the problem (file, field or value) and, in ``fix``,
    what to do about it.  Widgets show ``str(error)`` as a napari notification;
    the CLI prints it and exits with a non-zero code.

    Parameters
    ----------
    problem : str
        What is wrong, naming the file, field or value.
    fix : str, optional
        What the user can do about it.
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}" if fix else problem)
