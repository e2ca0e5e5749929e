"""Dates, months and periods as people type them: the one parser for every page, API and command.

A :class:`Period` is a run of local days (both included) in the meter's time zone, with the
matching unix-ms window. Everything that takes a date, a month or a period from outside goes
through here, so every place accepts the same forms and refuses them with the same words.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from .errors import BadInput

MAX_DAYS = 3660  # ten years: a longer statement or chart is a typo, and costs minutes of CPU
FIRST_YEAR, LAST_YEAR = 1970, 9998  # inside what datetime and unix-ms can add a day to

PRESETS = {"today": "Today", "7d": "Last 7 days", "month": "This month", "last_month": "Last month", "custom": "Custom"}


def parse_date(name: str, value: str | None) -> dt.date:
    """``2026-11-01`` -> a date; BadInput naming ``name`` for anything else."""
    try:
        day = dt.date.fromisoformat(value or "")
        if len(value) != 10:
            raise ValueError
    except (ValueError, TypeError):
        raise BadInput(f"{name} must be a date like 2026-11-01") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise BadInput(f"{name} must be between {FIRST_YEAR} and {LAST_YEAR}")
    return day


def parse_month(name: str, value: str | None) -> tuple[dt.date, dt.date]:
    """``2026-11`` -> (first day, last day)."""
    if not isinstance(value, str) or len(value) != 7:
        raise BadInput(f"{name} must look like 2026-11")
    first = parse_date(name, value + "-01")
    return first, next_month(first) - dt.timedelta(days=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def parse_instant(name: str, value: str | None, *, end: bool) -> int | None:
    """ISO 8601 date or datetime -> unix ms; None when empty. UTC unless an offset is given.

    A bare date as an end means the end of that day, so ``from=2026-11-01&to=2026-11-30`` is the
    whole of November.
    """
    if value is None or value == "":
        return None
    if len(value) == 10:
        day = parse_date(name, value)
        if end:
            day += dt.timedelta(days=1)
        moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    else:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"{name} must be an ISO 8601 date or datetime, e.g. 2026-11-01") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise BadInput(f"{name} must be between {FIRST_YEAR} and {LAST_YEAR}")
    return int(moment.timestamp() * 1000)


class Period:
    """Local days [start, end] in ``timezone`` and the matching unix-ms window [start_ms, end_ms)."""

    def __init__(self, start: dt.date, end: dt.date, timezone: str):
        if start > end:
            raise BadInput("from must not be after to")
        if (end - start).days >= MAX_DAYS:
            raise BadInput("a period can be at most ten years long")
        self.start, self.end, self.timezone = start, end, timezone
        zone = zoneinfo.ZoneInfo(timezone)
        self.start_ms = int(dt.datetime.combine(start, dt.time(), zone).timestamp() * 1000)
        self.end_ms = int(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).timestamp() * 1000)

    @classmethod
    def month(cls, text: str, timezone: str) -> "Period":
        return cls(*parse_month("month", text), timezone)

    @property
    def days(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()

    @property
    def slug(self) -> str:
        """``2026-11`` for a whole month, else ``2026-11-01_2026-11-15``: for file names."""
        if self.start.day == 1 and self.end == next_month(self.start) - dt.timedelta(days=1):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}_{self.end.isoformat()}"

    def day_list(self) -> list[str]:
        return [(self.start + dt.timedelta(days=i)).isoformat() for i in range((self.end - self.start).days + 1)]

    def __str__(self) -> str:
        return f"{self.start:%d %B %Y} – {self.end:%d %B %Y}"


def from_query(args, today: dt.date, timezone: str, default: str = "month") -> tuple[str, Period]:
    """The period a page or download asks for, and its preset's name.

    ``period`` names a preset: today, 7d, month (so far), last_month, or custom with ``from`` and
    ``to`` dates. Without ``period``, ``from``/``to`` make a custom period and ``month=2026-11``
    one month; with nothing at all, ``default`` applies.
    """
    name = args.get("period") or ""
    if name == "custom" or (not name and (args.get("from") or args.get("to"))):
        if not (args.get("from") and args.get("to")):
            raise BadInput("custom periods need from and to dates (YYYY-MM-DD)")
        return "custom", Period(parse_date("from", args.get("from")), parse_date("to", args.get("to")), timezone)
    if not name and args.get("month"):
        return "custom", Period.month(args["month"], timezone)
    name = name if name in PRESETS else default
    if name == "today":
        return name, Period(today, today, timezone)
    if name == "7d":
        return name, Period(today - dt.timedelta(days=6), today, timezone)
    if name == "last_month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return name, Period(end.replace(day=1), end, timezone)
    if name == "whole_month":  # the current calendar month to its last day (statements)
        return "month", Period(today.replace(day=1), next_month(today) - dt.timedelta(days=1), timezone)
    return "month", Period(today.replace(day=1), today, timezone)
