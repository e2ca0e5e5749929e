"""The meter's own exceptions: bad requests (the web layer turns them into 400 and 401), and what
it finds on disk that it will not start on (the CLI prints it and exits 2)."""

from __future__ import annotations


class BadInput(ValueError):
    """A field is missing, has the wrong type or is out of range; ``str(exc)`` names it."""


class Unauthorized(Exception):
    """Missing or wrong credentials."""


class CannotStart(Exception):
    """A file or directory the meter will not use, or not touch; ``str(exc)`` is one line that
    names it and says what is wrong."""
