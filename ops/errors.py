"""The error of every AWS operation a user can cause to fail."""

from __future__ import annotations


class OperationError(RuntimeError):
    """A pipeline, registry or deployment operation could not be done; the message says why."""
