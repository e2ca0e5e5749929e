"""Budgets and balances over HTTP: the admin JSON API and each user's own page (/me/<token>)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, current_app, g, jsonify, render_template

from . import audit, budgets, clock
from .api import event_json, json_body
from .auth import Unauthorized, create_token, decode_token, require_admin
from .budgets import PERIODS, open_balance, save_budget
from .ingest import BadInput
from .money import nano_to_usd, usd_to_nano

bp = Blueprint("budgets_api", __name__)

SELF_SCOPE = "self"
SELF_TOKEN_DAYS = 7
MAX_USD = Decimal(1_000_000)


def meter():
    return current_app.config["METER"]


def _usd(body: dict, name: str, *, allow_negative: bool = False) -> int:
    value = body.get(name)
    if value is None:
        raise BadInput(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadInput(f"{name} must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadInput(f"{name} must be a number") from None
    if not amount.is_finite() or abs(amount) > MAX_USD or (amount < 0 and not allow_negative):
        raise BadInput(f"{name} must be between {'-' if allow_negative else ''}{'1000000' if allow_negative else '0'} and 1000000")
    return usd_to_nano(amount)


def parse_budget(body) -> dict:
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    allowed = {"scope", "scope_id", "period", "limit_usd", "warn_percent", "action", "group_mode"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInput(f"unknown field {unknown[0]}")
    scope = body.get("scope")
    if scope not in ("user", "group", "all"):
        raise BadInput("scope must be 'user', 'group' or 'all'")
    scope_id = body.get("scope_id")
    if scope == "all":
        if scope_id not in (None, ""):
            raise BadInput("scope_id must be empty when scope is 'all'")
        scope_id = None
    elif not isinstance(scope_id, str) or not scope_id.strip() or len(scope_id) > 256:
        raise BadInput(f"scope_id must be the {scope}'s id")
    period = body.get("period", "month")
    if period not in PERIODS:
        raise BadInput("period must be 'day', 'week', 'month' or 'none'")
    warn = body.get("warn_percent", 80)
    if isinstance(warn, bool) or not isinstance(warn, int) or not 1 <= warn <= 100:
        raise BadInput("warn_percent must be a whole number from 1 to 100")
    action = body.get("action", "block")
    if action not in ("block", "warn"):
        raise BadInput("action must be 'block' or 'warn'")
    mode = body.get("group_mode", "per_member")
    if mode not in ("per_member", "shared"):
        raise BadInput("group_mode must be 'per_member' or 'shared'")
    if scope == "user":
        mode = "per_member"
    return {"scope": scope, "scope_id": scope_id, "period": period, "limit_nano": _usd(body, "limit_usd"),
            "warn_percent": warn, "action": action, "group_mode": mode}


def budget_json(row: dict) -> dict:
    return {"id": row["id"], "scope": row["scope"], "scope_id": row["scope_id"], "period": row["period"],
            "limit_usd": nano_to_usd(row["limit_nano"]), "warn_percent": row["warn_percent"],
            "action": row["action"], "group_mode": row["group_mode"]}


@bp.get("/api/v1/budgets")
@require_admin
def list_budgets():
    return jsonify({"budgets": [budget_json(r) for r in meter().db.query("SELECT * FROM budgets ORDER BY id")]})


@bp.post("/api/v1/budgets")
@require_admin
def create_budget():
    row = save_budget(meter(), parse_budget(json_body()), g.admin_name)
    return jsonify(budget_json(row)), 201


@bp.put("/api/v1/budgets/<int:budget_id>")
@require_admin
def update_budget(budget_id):
    row = save_budget(meter(), parse_budget(json_body()), g.admin_name, budget_id)
    if row is None:
        abort(404)
    return jsonify(budget_json(row))


@bp.delete("/api/v1/budgets/<int:budget_id>")
@require_admin
def delete_budget(budget_id):
    if not budgets.delete_budget(meter(), budget_id, g.admin_name):
        abort(404)
    return "", 204


@bp.post("/api/v1/users/<user_id>/topups")
@require_admin
def top_up(user_id):
    body = json_body()
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    amount = _usd(body, "amount_usd", allow_negative=True)
    if amount == 0:
        raise BadInput("amount_usd must not be zero")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        raise BadInput("note must be a string of at most 500 characters")
    m = meter()
    if m.db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (user_id,)) is None:
        abort(404)
    with m.db.write() as conn:
        open_balance(conn, user_id, amount, g.admin_name, note)
        audit.record(conn, g.admin_name, "balance.topup", {"user_id": user_id, "amount_nano": amount})
    return jsonify({"user_id": user_id, "balance_usd": nano_to_usd(m.budgets.balance(m.db.query, user_id))}), 201


@bp.get("/api/v1/users/<user_id>/budgets")
@require_admin
def user_budgets(user_id):
    m = meter()
    if m.db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (user_id,)) is None:
        abort(404)
    balance = m.budgets.balance(m.db.query, user_id)
    return jsonify({"user_id": user_id, "budgets": [s.json() for s in m.budgets.states(m.db.query, user_id)],
                    "balance_usd": nano_to_usd(balance)})


# --- each user's own page --------------------------------------------------------------------------


def self_link(user_id: str) -> str | None:
    """A signed, expiring link to the user's own page, when METER_PUBLIC_URL is set."""
    m = meter()
    if not m.settings.METER_PUBLIC_URL:
        return None
    token = create_token(m.settings.JWT_SECRET, days=SELF_TOKEN_DAYS, name=user_id, scope=SELF_SCOPE)
    return f"{m.settings.METER_PUBLIC_URL}/me/{token}"


@bp.get("/me/<token>")
def my_usage(token):
    """One user's spend this period, budgets, balance and latest answers. Nothing about anyone else."""
    m = meter()
    try:
        user_id = decode_token(token, m.settings.JWT_SECRET, scope=SELF_SCOPE)["sub"]
    except Unauthorized:
        return render_template("me_invalid.html"), 403
    user = m.db.query_one("SELECT id, name, email FROM users WHERE id = ?", (user_id,))
    if user is None:
        return render_template("me_invalid.html"), 403
    states = [s for s in m.budgets.states(m.db.query, user_id) if not s.shared]
    month_start = m.budgets.local_day(clock.now_ms()).replace(day=1).isoformat()
    month = m.db.query_one(
        "SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(answers), 0) AS answers FROM usage_daily WHERE user_id = ? AND day >= ?",
        (user_id, month_start),
    )
    latest = m.db.query(
        "SELECT e.*, NULL AS generation_ids FROM events e WHERE e.user_id = ? ORDER BY e.ts DESC, e.id DESC LIMIT 20", (user_id,)
    )
    return render_template(
        "me.html", user=user, states=states, month=month, balance=m.budgets.balance(m.db.query, user_id),
        latest=[event_json(r) | {"cost_nano": r["cost_nano"]} for r in latest],
    )


@bp.post("/api/v1/sync/openwebui")
@require_admin
def sync_openwebui():
    """Sync users, groups and memberships from Open WebUI now."""
    from .owui_sync import SyncError

    sync = meter().owui_sync
    if not sync.configured:
        raise BadInput("set OPENWEBUI_URL and OPENWEBUI_API_KEY first")
    try:
        return jsonify(sync.sync())
    except SyncError as exc:
        return jsonify({"error": str(exc), "status": 502}), 502
