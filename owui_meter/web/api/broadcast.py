"""What OpenRouter Broadcast reported, per app and model (admin): ``GET /api/v1/broadcast/usage``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ... import periods
from ...errors import BadInput
from ...money import nano_to_usd
from ..access import require_admin
from ..params import meter

bp = Blueprint("broadcast", __name__, url_prefix="/api/v1")


def _figures(row: dict) -> dict:
    return {
        "generations": row["generations"],
        "cost_usd": nano_to_usd(row["cost_nano"]),
        "cost_nano": row["cost_nano"],
        "unattributed_generations": row["unattributed_generations"],
        "unattributed_cost_nano": row["unattributed_cost_nano"],
    }


@bp.get("/broadcast/usage")
@require_admin
def usage():
    """``?from=&to=``: generations and OpenRouter's cost per app (API key name) and model."""
    start = periods.parse_instant("from", request.args.get("from"), end=False)
    end = periods.parse_instant("to", request.args.get("to"), end=True)
    if start is not None and end is not None and start >= end:
        raise BadInput("from must be before to")
    rows, total = meter().broadcast.usage(start, end)
    return jsonify({"rows": [{"app": r["app"], "model": r["model"]} | _figures(r) for r in rows], "total": _figures(total)})
