"""The admin read API: answers (``/events``) and totals (``/usage``)."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from ...clock import ms_to_iso
from ...errors import BadInput
from ...ledger import encode_cursor
from ...money import nano_to_usd
from ..access import require_admin
from ..params import meter, parse_cursor, parse_filters, parse_int

bp = Blueprint("usage", __name__, url_prefix="/api/v1")


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
        "openrouter_cost_nano": row["openrouter_nano"],  # what OpenRouter charged (BYOK: its fee)
        "provider_cost_nano": row["provider_nano"],  # BYOK: what the provider charged
        "byok": bool(row["byok"]),
        "stopped": bool(row["cancelled"]),
        "cache_discount_nano": row["cache_discount_nano"],
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
    cursor = parse_cursor(args)
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
