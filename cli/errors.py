"""The command line's own error: a value the user can fix."""

from __future__ import annotations


class UsageError(Exception):
    """A command-line value the user can fix; reported as ``error: ...`` with exit code 2."""
