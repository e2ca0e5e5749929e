"""Admin JSON API for costs: prices (synced and admin-set) and reconciliation with OpenRouter."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ... import prices
from ...clock import now_ms
from ...errors import BadInput
from ...money import nano_to_usd
from ...periods import parse_instant
from ...reconcile import reconcile
from ..access import require_admin
from ..params import json_body, meter

bp = Blueprint("costs", __name__, url_prefix="/api/v1")


@bp.get("/prices")
@require_admin
def list_prices():
    """Every known price; ``applies`` marks the one used for estimates (admin beats OpenRouter)."""
    rows = meter().db.query("SELECT * FROM prices ORDER BY model, source = 'admin' DESC")
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
    model_id = prices.parse_model_id(model_id)
    price = prices.parse_admin_price(json_body())
    row = prices.set_admin_price(meter(), model_id, price, g.admin_name)
    return jsonify(prices.price_json(row))


@bp.delete("/prices/<path:model_id>")
@require_admin
def delete_price(model_id):
    if not prices.delete_admin_price(meter(), prices.parse_model_id(model_id), g.admin_name):
        return jsonify({"error": "no admin price for that model", "status": 404}), 404
    return "", 204


@bp.get("/reconciliation")
@require_admin
def reconciliation():
    """``?from=&to=``: the ledger against OpenRouter's own usage of the key."""
    start = parse_instant("from", request.args.get("from"), end=False)
    end = parse_instant("to", request.args.get("to"), end=True) or now_ms()
    if start is None:
        raise BadInput("from is required")
    if start >= end:
        raise BadInput("from must be before to")
    result = reconcile(meter(), start, end)
    for name in ("ledger", "confirmed", "openrouter", "unattributed", "byok_provider"):
        result[f"{name}_usd"] = nano_to_usd(result[f"{name}_nano"])
    return jsonify(result)
