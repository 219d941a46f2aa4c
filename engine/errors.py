"""Errors that carry a one-line, user-facing message.

Every bad input (a corrupt checkpoint, a malformed label file, an unreadable
image, an absurd setting) is raised as :class:`InputError` whose ``str`` names
the file (when there is one) and the problem.  The CLI prints it and exits 2;
the GUI shows it and keeps its previous state.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: a file, a folder or a setting the engine cannot use."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        message = problem if path is None else f"{path}: {problem}"
        super().__init__(message.replace("\n", " "))


class Cancelled(Exception):
    """Raised inside a long job when its cancel token was set."""
