"""Exceptions raised by sigmaserve.

Every input error is an :class:`InvalidArgumentError`, a ``ValueError`` that names the offending
field; the gRPC server maps it to ``INVALID_ARGUMENT`` (``TooLargeError`` to
``RESOURCE_EXHAUSTED``) and the client raises the same classes from those statuses.
"""

from __future__ import annotations


class SigmaserveError(Exception):
    """Base class of every sigmaserve error."""


class InvalidArgumentError(SigmaserveError, ValueError):
    """A request argument is invalid; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class TooLargeError(InvalidArgumentError):
    """The request is valid but exceeds a size limit (elements, bytes)."""


class OverloadedError(SigmaserveError):
    """The server cannot take the request now (its memory budget is in use); retry later."""


def invalid(field: str, message: str) -> InvalidArgumentError:
    """Build an :class:`InvalidArgumentError` whose text starts with the field name."""
    return InvalidArgumentError(f"{field}: {message}", field)


__all__ = [
    "InvalidArgumentError",
    "OverloadedError",
    "SigmaserveError",
    "TooLargeError",
    "invalid",
]
