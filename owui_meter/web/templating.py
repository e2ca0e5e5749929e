"""Jinja filters for people: $12.34, 1.2 M tokens, dates in METER_TIMEZONE, cost states in words."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from ..money import format_usd


def human_count(n: int | None) -> str:
    """12,345 -> "12.3 k"; below 10,000 every digit shows ("9,999")."""
    if n is None:
        return "–"
    # 999,950 reads "1 M", not "1000 k": each threshold is where the smaller unit would round to 1000
    for threshold, unit, suffix in ((999_950_000, 1_000_000_000, " B"), (999_950, 1_000_000, " M"), (10_000, 1_000, " k")):
        if abs(n) >= threshold:
            return f"{n / unit:.1f}{suffix}".replace(".0 ", " ")
    return f"{n:,}"


# where an answer's cost stands, in the words the Events page shows and filters by
COST_STATES = {"confirmed": "Confirmed by OpenRouter", "reported": "Reported", "estimated": "Estimated",
               "awaiting": "Awaiting OpenRouter", "unpriced": "No price"}


def cost_state_key(row) -> str:
    """An event row's cost state: awaiting while a lookup is pending (whatever figure it has now),
    else by where the figure came from."""
    if row["lookup_state"] == "pending" or row["cost_source"] == "pending":
        return "awaiting"
    return {"generation": "confirmed", "inline": "reported", "estimate": "estimated"}.get(row["cost_source"], "unpriced")


def cost_state(row) -> str:
    words = COST_STATES[cost_state_key(row)]
    return words + " (OpenRouter never confirmed it)" if row["lookup_state"] == "gave_up" else words


def usd(nano: int | None, places: int | None = None) -> str:
    """format_usd, except an amount too small to show at six places reads "< $0.000001", not $0.000000."""
    if nano is not None and places is None and 0 < abs(nano) < 500:
        return "< $0.000001" if nano > 0 else "> -$0.000001"
    return format_usd(nano, places)


def init_app(app, timezone: str) -> None:
    zone = zoneinfo.ZoneInfo(timezone)

    def local_time(value, fmt="%Y-%m-%d %H:%M") -> str:
        if value is None:
            return "–"
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif isinstance(value, (int, float)):
            value = dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)
        return value.astimezone(zone).strftime(fmt)

    app.jinja_env.filters["usd"] = usd
    app.jinja_env.filters["count"] = human_count
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["cost_state"] = cost_state
