"""JSON API under /api/v1: the plugin's endpoints (API key) and the admin read API (token/session)."""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, current_app, jsonify, request

from . import ingest
from .auth import Unauthorized, key_matches, require_admin, require_plugin_key
from .clock import ms_to_iso
from .ingest import BadInput
from .ledger import Filters, decode_cursor, encode_cursor
from .money import nano_to_usd

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def meter():
    return current_app.config["METER"]


def json_body():
    """The request body as parsed JSON; 400 when it is not JSON."""
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise BadInput("body must be valid JSON")
    return body


# --- plugin endpoints ---------------------------------------------------------------------------


@bp.post("/inlet")
@require_plugin_key
def inlet():
    """May this user chat now? Records the user; the budget rules decide."""
    parsed = ingest.parse_inlet(json_body())
    m = meter()
    m.ledger.see_user(parsed["user"])
    allow, message = True, None
    if m.inlet_policy is not None:
        allow, message = m.inlet_policy(parsed)
    return jsonify({"allow": allow, "message": message})


@bp.post("/outlet")
@require_plugin_key
def outlet():
    """Record one answer (idempotent on ``key``) and return the line to show the user."""
    body = json_body()
    event = ingest.parse_outlet(body)
    m = meter()
    recorded = m.ledger.record(event)
    row = recorded.row
    lang = body.get("language") if isinstance(body.get("language"), str) else "en"
    return (
        jsonify(
            {
                "event_id": recorded.event_id,
                "duplicate": recorded.duplicate,
                "cost_usd": nano_to_usd(row["cost_nano"]) if row["cost_source"] != "pending" else None,
                "cost_source": row["cost_source"],
                "notice": m.outlet_notice(row, lang),
            }
        ),
        202,
    )


@bp.post("/metering/record")
def metering_record():
    """owui-metering's filter endpoint, so its users can keep their old filter for a while.

    That filter sends the key as the whole Authorization header, without "Bearer".
    """
    header = request.headers.get("Authorization", "").strip()
    given = header[7:].strip() if header.lower().startswith("bearer ") else header
    if not key_matches(given, meter().settings.API_KEY):
        raise Unauthorized("missing or wrong API key")
    meter().ledger.record(ingest.parse_metering_record(json_body()))
    return jsonify({"success": True})


# --- admin read API -------------------------------------------------------------------------------


def parse_time(name: str, value: str | None, *, end: bool) -> int | None:
    """ISO 8601 date or datetime -> unix ms. UTC unless an offset is given.

    A bare date as ``to`` means the end of that day, so ``from=2026-11-01&to=2026-11-30`` is
    the whole of November.
    """
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            if end:
                day += dt.timedelta(days=1)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise BadInput(f"{name} must be an ISO 8601 date or datetime, e.g. 2026-11-01") from None
    return int(moment.timestamp() * 1000)


def parse_filters(args) -> Filters:
    filters = Filters(
        start=parse_time("from", args.get("from"), end=False),
        end=parse_time("to", args.get("to"), end=True),
        user=args.get("user") or None,
        model=args.get("model") or None,
        source=args.get("source") or None,
        cost_source=args.get("cost_source") or None,
    )
    if filters.source not in (None, "ui", "api"):
        raise BadInput("source must be 'ui' or 'api'")
    if filters.cost_source not in (None, "generation", "inline", "estimate", "pending", "unpriced"):
        raise BadInput("cost_source must be one of generation, inline, estimate, pending, unpriced")
    if filters.start is not None and filters.end is not None and filters.start >= filters.end:
        raise BadInput("from must be before to")
    return filters


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


def event_json(row: dict) -> dict:
    return {
        "id": row["id"],
        "key": row["key"],
        "ts": ms_to_iso(row["ts"]),
        "received": ms_to_iso(row["received"]),
        "user_id": row["user_id"],
        "user_email": row.get("user_email"),
        "user_name": row.get("user_name"),
        "model": row["model"],
        "base_model": row["base_model"],
        "chat_id": row["chat_id"],
        "message_id": row["message_id"],
        "session_id": row["session_id"],
        "source": row["source"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "cached_tokens": row["cached_tokens"],
        "cost_usd": nano_to_usd(row["cost_nano"]),
        "cost_nano": row["cost_nano"],
        "cost_source": row["cost_source"],
        "inline_cost_usd": nano_to_usd(row["inline_cost_nano"]),
        "lookup_state": row["lookup_state"],
        "generation_ids": json.loads(row["generation_ids"]) if row.get("generation_ids") else [],
    }


@bp.get("/events")
@require_admin
def events():
    """Answers, newest first: ``?from=&to=&user=&model=&source=&cost_source=&limit=&cursor=``."""
    args = request.args
    filters = parse_filters(args)
    limit = parse_int(args, "limit", 100, 1, 1000)
    cursor = None
    if args.get("cursor"):
        try:
            cursor = decode_cursor(args["cursor"])
        except ValueError:
            raise BadInput("cursor is not one this meter gave out") from None
    rows, following = meter().ledger.events(filters, limit, cursor)
    return jsonify({"events": [event_json(r) for r in rows], "next": encode_cursor(following)})


def totals_json(row: dict) -> dict:
    return {
        "answers": row["answers"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "cost_usd": nano_to_usd(row["cost_nano"]),
        "cost_nano": row["cost_nano"],
        "confirmed_cost_usd": nano_to_usd(row["confirmed_cost_nano"]),
    }


@bp.get("/usage")
@require_admin
def usage():
    """Totals: ``?from=&to=&group_by=user|model|day|source&user=&model=``."""
    group_by = request.args.get("group_by", "user")
    if group_by not in ("user", "model", "day", "source"):
        raise BadInput("group_by must be one of user, model, day, source")
    m = meter()
    rows, total = m.ledger.usage(parse_filters(request.args), group_by, m.settings.METER_TIMEZONE)
    return jsonify(
        {
            "group_by": group_by,
            "rows": [{"key": r["key"], "label": r["label"]} | totals_json(r) for r in rows],
            "total": totals_json(total),
        }
    )
