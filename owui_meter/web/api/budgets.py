"""Budgets and balances over the admin JSON API: budget rules, top-ups, a user's budget states."""

from __future__ import annotations

from flask import Blueprint, abort, g, jsonify

from ... import budgets
from ...budgets import parse_budget, save_budget
from ...money import MAX_INPUT_USD, nano_to_usd, parse_usd_nano
from ..access import require_admin
from ..params import json_object, meter

bp = Blueprint("budgets", __name__, url_prefix="/api/v1")


def budget_json(row: dict) -> dict:
    return {"id": row["id"], "scope": row["scope"], "scope_id": row["scope_id"], "period": row["period"],
            "limit_usd": nano_to_usd(row["limit_nano"]), "warn_percent": row["warn_percent"],
            "action": row["action"], "group_mode": row["group_mode"]}


@bp.get("/budgets")
@require_admin
def list_budgets():
    return jsonify({"budgets": [budget_json(r) for r in meter().db.query("SELECT * FROM budgets ORDER BY id")]})


@bp.post("/budgets")
@require_admin
def create_budget():
    row = save_budget(meter(), parse_budget(json_object()), g.admin_name)
    return jsonify(budget_json(row)), 201


@bp.put("/budgets/<int:budget_id>")
@require_admin
def update_budget(budget_id):
    row = save_budget(meter(), parse_budget(json_object()), g.admin_name, budget_id)
    if row is None:
        abort(404)
    return jsonify(budget_json(row))


@bp.delete("/budgets/<int:budget_id>")
@require_admin
def delete_budget(budget_id):
    if not budgets.delete_budget(meter(), budget_id, g.admin_name):
        abort(404)
    return "", 204


@bp.post("/users/<user_id>/topups")
@require_admin
def top_up(user_id):
    body = json_object()
    amount = parse_usd_nano("amount_usd", body.get("amount_usd"), low=-MAX_INPUT_USD)
    m = meter()
    if not budgets.top_up(m, user_id, amount, g.admin_name, body.get("note", "")):
        abort(404)
    return jsonify({"user_id": user_id, "balance_usd": nano_to_usd(m.budgets.balance(m.db.query, user_id))}), 201


@bp.get("/users/<user_id>/budgets")
@require_admin
def user_budgets(user_id):
    m = meter()
    if m.db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (user_id,)) is None:
        abort(404)
    balance = m.budgets.balance(m.db.query, user_id)
    return jsonify({"user_id": user_id, "budgets": [s.json() for s in m.budgets.states(m.db.query, user_id)],
                    "balance_usd": nano_to_usd(balance)})
