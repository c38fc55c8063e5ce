"""User-facing errors.

Every problem a user can fix (a wrong path, a bad ``--set`` value, a table that cannot be
trained on) raises a subclass of :class:`NnrecipeError`. The CLI prints its message on one
line and exits with code 2; anything else that escapes is a bug (exit 1).
"""

from __future__ import annotations

__all__ = ["NnrecipeError", "DataError", "PlanError", "RunError"]


class NnrecipeError(Exception):
    """A problem with the user's input. The message says what was given, what was
    expected and how to fix it."""

    exit_code = 2


class DataError(NnrecipeError):
    """The data cannot be read, or cannot be trained on as given."""


class PlanError(NnrecipeError):
    """An unknown plan key or an invalid value for one."""


class RunError(NnrecipeError):
    """A run directory is missing, incomplete, or already taken."""
