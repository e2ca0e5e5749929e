"""The plugin's endpoints (API key): may this user chat (inlet), this answer's usage (outlet),
and owui-metering's record endpoint for teams moving over."""

from __future__ import annotations

import logging

import apsw
from flask import Blueprint, jsonify, request

from ... import ingest
from ...auth import key_matches
from ...clock import ms_to_iso
from ...errors import Unauthorized
from ...money import nano_to_usd
from ..access import access, require_plugin_key
from ..params import json_body, meter

bp = Blueprint("plugin", __name__, url_prefix="/api/v1")
log = logging.getLogger("owui_meter")


@bp.post("/inlet")
@require_plugin_key
def inlet():
    """May this user chat now? Records the user; the budget rules decide."""
    parsed = ingest.parse_inlet(json_body())
    m = meter()
    try:
        m.ledger.see_user(parsed["user"])
    except apsw.FullError:
        pass  # a full disk (logged by the database) must not switch budgets off: decide anyway
    allow, message = m.inlet_policy(parsed)
    return jsonify({"allow": allow, "message": message})


@bp.post("/outlet")
@require_plugin_key
def outlet():
    """Record one answer (idempotent on ``key``) and return the line to show the user."""
    body = json_body()
    event = ingest.parse_outlet(body, meter().settings.METER_MAX_ANSWER_USD)
    m = meter()
    recorded, figures = m.record_answer(event)
    row = recorded.row
    if recorded.conflict:
        return conflict_answer(m, event, recorded)
    lang = body.get("language") if isinstance(body.get("language"), str) else "en"
    answer = {
        "event_id": recorded.event_id,
        "duplicate": recorded.duplicate,
        "cost_usd": nano_to_usd(row["cost_nano"]) if row["cost_source"] != "pending" else None,
        "cost_source": row["cost_source"],
        "notice": m.outlet_notice(row, lang, figures),
        "timestamp": ms_to_iso(row["ts"]),
        "timestamp_adjusted": event.timestamp_adjusted,
    }
    if event.timestamp_adjusted:  # more than 7 days old or 5 minutes ahead: recorded at receipt
        answer["timestamp_original"] = body["timestamp"]
    if recorded.duplicate:
        answer["generation_ids"] = stored_generation_ids(m, row["id"])
    return jsonify(answer), 202


def stored_generation_ids(m, event_id: int) -> list[str]:
    """Which generations a stored answer has: the plugin tells a retry (the same ids) from a
    "Continue" into the same message (other ids), which it then reports under its own key."""
    return [r["id"] for r in m.db.query("SELECT id FROM generations WHERE event_id = ? ORDER BY rowid", (event_id,))]


def conflict_answer(m, event, recorded):
    """409 for a key that names another answer. Nothing about anyone else goes back: the stored
    answer's generation ids only to its own user (so the plugin can re-send a continuation)."""
    log.warning("outlet refused: key of answer %d reported again with %s", recorded.event_id, recorded.conflict)
    answer = {"error": f"this key belongs to another answer ({recorded.conflict}); report each answer under its own key",
              "status": 409}
    if recorded.conflict != "another user":
        answer["generation_ids"] = stored_generation_ids(m, recorded.event_id)
    return jsonify(answer), 409


@bp.post("/metering/record")
@access("plugin")  # checks the key itself: owui-metering's filter sends it without "Bearer"
def metering_record():
    """owui-metering's filter endpoint, so its users can keep their old filter for a while.

    That filter sends the key as the whole Authorization header, without "Bearer".
    """
    header = request.headers.get("Authorization", "").strip()
    given = header[7:].strip() if header.lower().startswith("bearer ") else header
    if not key_matches(given, meter().settings.API_KEY):
        raise Unauthorized("missing or wrong API key")
    meter().ledger.record(ingest.parse_metering_record(json_body(), meter().settings.METER_MAX_ANSWER_USD))
    return jsonify({"success": True})
