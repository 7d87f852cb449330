"""Errors the command line reports as one line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a missing prerequisite the user can fix; the message says what and how."""


class MissingBackendError(UserError):
    """An optional runtime is not installed; the message names the extra to install."""

    def __init__(self, backend: str, extra: str, detail: str = "") -> None:
        msg = f"{backend} is not installed; install it with: pip install 'hwdiffnas[{extra}]'"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
        self.backend = backend
        self.extra = extra


class ValidationError(Exception):
    """An exported model does not reproduce the source network within tolerance."""
