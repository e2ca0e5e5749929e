"""Admin JSON API for costs: prices (synced and admin-set) and reconciliation with OpenRouter."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from . import prices
from .api import json_body, parse_time
from .auth import require_admin
from .clock import now_ms
from .ingest import BadInput
from .money import nano_to_usd
from .reconcile import reconcile

bp = Blueprint("costs_api", __name__, url_prefix="/api/v1")


def _model_id(model_id: str) -> str:
    if not model_id.strip() or len(model_id) > 512:
        raise BadInput("model id must be 1 to 512 characters")
    return model_id


@bp.get("/prices")
@require_admin
def list_prices():
    """Every known price; ``applies`` marks the one used for estimates (admin beats OpenRouter)."""
    rows = current_app.config["METER"].db.query("SELECT * FROM prices ORDER BY model, source = 'admin' DESC")
    seen, out = set(), []
    for row in rows:
        item = prices.price_json(row)
        item["applies"] = row["model"] not in seen
        seen.add(row["model"])
        out.append(item)
    return jsonify({"prices": out})


@bp.put("/prices/<path:model_id>")
@require_admin
def put_price(model_id):
    model_id = _model_id(model_id)
    price = prices.parse_admin_price(json_body())
    row = prices.set_admin_price(current_app.config["METER"], model_id, price, g.admin_name)
    return jsonify(prices.price_json(row))


@bp.delete("/prices/<path:model_id>")
@require_admin
def delete_price(model_id):
    if not prices.delete_admin_price(current_app.config["METER"], _model_id(model_id), g.admin_name):
        return jsonify({"error": "no admin price for that model", "status": 404}), 404
    return "", 204


@bp.get("/reconciliation")
@require_admin
def reconciliation():
    """``?from=&to=``: the ledger against OpenRouter's own usage of the key."""
    start = parse_time("from", request.args.get("from"), end=False)
    end = parse_time("to", request.args.get("to"), end=True) or now_ms()
    if start is None:
        raise BadInput("from is required")
    if start >= end:
        raise BadInput("from must be before to")
    result = reconcile(current_app.config["METER"], start, end)
    for name in ("ledger", "confirmed", "openrouter", "unattributed"):
        result[f"{name}_usd"] = nano_to_usd(result[f"{name}_nano"])
    return jsonify(result)
