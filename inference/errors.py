"""The client errors of a price request, and descriptions of client values bounded in cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Error messages show at most this many characters of a client's string: a message costs the
# same whatever the body holds.
PREVIEW_CHARS = 40


class RequestError(ValueError):
    """A client mistake: the HTTP status to answer with, a code, the field, a message."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """The error body the server sends."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


def cut(text: str) -> str:
    """``text`` as an error names it: its first PREVIEW_CHARS characters."""
    return text if len(text) <= PREVIEW_CHARS else f"{text[:PREVIEW_CHARS]}..."


def quoted(text: str) -> str:
    """``text`` in quotes, cut to PREVIEW_CHARS before repr so that the cost does not grow."""
    if len(text) <= PREVIEW_CHARS:
        return repr(text)
    return f"{text[:PREVIEW_CHARS]!r}... ({len(text)} characters)"


def plural(count: int, noun: str) -> str:
    """``3 items``, ``1 item``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe(value: Any) -> str:
    """A client's value for an error message, in time and size independent of the value.

    Containers are described by their type and length, never walked or repr'd: a body may hold
    a list of millions of items or 1,000 levels of nesting (orjson's limit is 1,024).
    """
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"str {quoted(value)}"
    if isinstance(value, bool | float):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, int):
        # repr of an int beyond 4,300 digits raises; orjson's stop at 64 bits, Python's do not.
        bits = value.bit_length()
        return f"int {value!r}" if bits <= 64 else f"an integer of {bits} bits"
    if isinstance(value, list | tuple):
        return f"a list of {plural(len(value), 'item')}"
    if isinstance(value, Mapping):
        return f"an object with {plural(len(value), 'key')}"
    return f"a {type(value).__name__}"
