"""What a request carries, parsed once: JSON bodies, whole numbers, filters, cursors, periods.

Every parser raises BadInput naming the field, which becomes a 400 (JSON) or a readable page.
"""

from __future__ import annotations

import json
import re

from flask import current_app, request

from .. import clock, periods
from ..errors import BadInput
from ..ledger import Filters, decode_cursor

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only an escape can put one in (UTF-8 cannot)
SOURCES = ("ui", "api", "task")  # task: Open WebUI's titles, tags, follow-ups (pass-through)
COST_SOURCES = ("generation", "inline", "estimate", "pending", "unpriced")


def meter():
    """The meter behind this app."""
    return current_app.config["METER"]


MAX_JSON_DEPTH = 32  # the plugin's deepest payload is 4 levels; 1,000 levels in 2 KB is an attack


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def json_body():
    """The request body as parsed JSON. 400 when it is not strict JSON (NaN and Infinity are
    not), nests deeper than MAX_JSON_DEPTH, or holds a string no UTF-8 can carry (a lone surrogate)."""
    try:
        raw = request.get_data(cache=True).decode("utf-8")  # JSON is UTF-8 (RFC 8259); no UTF-16 tricks
        body = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError:  # UnicodeDecodeError is a ValueError
        raise BadInput("body must be valid JSON") from None
    except RecursionError:
        raise BadInput(f"body must not nest more than {MAX_JSON_DEPTH} levels deep") from None
    # the walk is needed only when the raw text could hold either problem (rarely: it is cheap to tell)
    if raw.count("[") + raw.count("{") > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(raw):
        _check_json(body)
    return body


def _check_json(body) -> None:
    """Walk the parsed body once, without recursion, for depth and unencodable text."""
    pending = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadInput(f"body must not nest more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise BadInput("body holds text that is not valid Unicode (a lone surrogate)")


def json_object():
    """The request body as a JSON object."""
    body = json_body()
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    return body


def parse_int(args, name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise BadInput(f"{name} must be between {low} and {high}")
    return value


def parse_filters(args) -> Filters:
    """``from``, ``to``, ``user``, ``model``, ``source``, ``cost_source`` of the events and usage views."""
    filters = Filters(
        start=periods.parse_instant("from", args.get("from"), end=False),
        end=periods.parse_instant("to", args.get("to"), end=True),
        user=args.get("user") or None,
        model=args.get("model") or None,
        source=args.get("source") or None,
        cost_source=args.get("cost_source") or None,
    )
    if filters.source not in (None, *SOURCES):
        raise BadInput(f"source must be one of {', '.join(SOURCES)}")
    if filters.cost_source not in (None, *COST_SOURCES):
        raise BadInput(f"cost_source must be one of {', '.join(COST_SOURCES)}")
    if filters.start is not None and filters.end is not None and filters.start >= filters.end:
        raise BadInput("from must be before to")
    return filters


def parse_cursor(args, message: str = "cursor is not one this meter gave out"):
    """The keyset cursor of the next page, or None for the first."""
    if not args.get("cursor"):
        return None
    try:
        return decode_cursor(args["cursor"])
    except ValueError:
        raise BadInput(message) from None


def today():
    """Today in the meter's time zone."""
    return meter().budgets.local_day(clock.now_ms())


def period_from_request(default: str = "month") -> tuple[str, periods.Period]:
    """The period this request asks for (see :func:`owui_meter.periods.from_query`)."""
    return periods.from_query(request.args, today(), meter().settings.METER_TIMEZONE, default)
