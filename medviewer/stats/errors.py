"""Errors raised while reading reader-study picks and computing their statistics.

Each error names the file it concerns in ``path`` and, where it can, the line
in ``line``; ``hint`` says how to fix the input.
"""

from __future__ import annotations

from pathlib import Path

from medviewer.errors import MedViewerError


class PicksTableError(MedViewerError):
    """A picks table (tidy CSV) is malformed or self-contradictory.

    Parameters
    ----------
    message : str
        The first problem found, in one sentence.
    path : str or Path, optional
        The CSV file (or a description of the source when not a file).
    hint : str, optional
        How to fix it.
    line : int, optional
        1-based line of the file the first problem is on (the header is line 1).
    problems : sequence of str, optional
        Every problem found (capped), first one included, for reports.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        hint: str = "",
        line: int | None = None,
        problems: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.line = line
        self.problems = tuple(problems) or (message,)
        extra = len(self.problems) - 1
        if extra > 0:
            message = f"{message} (and {extra} more problem{'s' if extra > 1 else ''})"
        super().__init__(message, path=path, hint=hint)
