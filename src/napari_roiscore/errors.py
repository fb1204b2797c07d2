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
        self.problem = cap_message(str(problem))
        self.fix = cap_message(str(fix))
        super().__init__(f"{self.problem} Fix: {self.fix}" if self.fix else self.problem)


#: longest message part kept (a message listing 10,000 names would be 500 KB)
MAX_MESSAGE = 2000


def cap_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters left out)"
