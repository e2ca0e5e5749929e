"""The meter's own exceptions for bad requests; the web layer turns them into 400 and 401."""

from __future__ import annotations


class BadInput(ValueError):
    """A field is missing, has the wrong type or is out of range; ``str(exc)`` names it."""


class Unauthorized(Exception):
    """Missing or wrong credentials."""
