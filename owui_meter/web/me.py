"""Each chat user's own page, ``/me/<token>``: their spend, budgets, balance and latest answers.

The signed token (made by :func:`owui_meter.notices.self_link`) names the user; the page shows
nothing about anyone else.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from .. import clock
from ..auth import decode_token
from ..errors import Unauthorized
from ..ledger import is_unattributed
from ..notices import SELF_SCOPE
from .access import access
from .api.usage import event_json
from .params import meter

bp = Blueprint("me", __name__)


@bp.get("/me/<token>")
@access("self")
def my_usage(token):
    """One user's spend this period, budgets, balance and latest answers. Nothing about anyone else."""
    m = meter()
    try:
        user_id = decode_token(token, m.settings.JWT_SECRET, scope=SELF_SCOPE)["sub"]
    except Unauthorized:
        return render_template("me/invalid.html"), 403
    user = m.db.query_one("SELECT id, name, email FROM users WHERE id = ?", (user_id,))
    if user is None or is_unattributed(user_id):
        return render_template("me/invalid.html"), 403
    states = [s for s in m.budgets.states(m.db.query, user_id) if not s.shared]
    month_start = m.budgets.local_day(clock.now_ms()).replace(day=1).isoformat()
    month = m.db.query_one(
        "SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(answers), 0) AS answers FROM usage_day_user WHERE user_id = ? AND day >= ?",
        (user_id, month_start),
    )
    latest = m.db.query(
        "SELECT e.*, NULL AS generation_ids FROM events e WHERE e.user_id = ? ORDER BY e.ts DESC, e.id DESC LIMIT 20", (user_id,)
    )
    return render_template(
        "me/me.html", user=user, states=states, month=month, balance=m.budgets.balance(m.db.query, user_id),
        latest=[event_json(r) | {"cost_nano": r["cost_nano"]} for r in latest],
    )
