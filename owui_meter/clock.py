"""The meter's idea of now. Tests patch ``time_fn``; nothing else reads the wall clock."""

from __future__ import annotations

import datetime as dt
import time

time_fn = time.time


def now() -> float:
    """Unix seconds."""
    return time_fn()


def now_ms() -> int:
    return int(time_fn() * 1000)


def utcnow() -> dt.datetime:
    return dt.datetime.fromtimestamp(time_fn(), tz=dt.timezone.utc)


def ms_to_iso(ms: int) -> str:
    """Unix milliseconds -> ISO 8601 in UTC with a Z."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
