"""Each chat user's own page, ``/me/<link>``: their spend, budgets, balance and latest answers.

The link is a short random id stored with its user and expiry (:mod:`owui_meter.me_links`); the
signed JWT links older versions put under answers keep working until they expire. The page
shows nothing about anyone else.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from .. import clock
from ..auth import decode_token
from ..errors import Unauthorized
from ..ledger import is_unattributed
from ..me_links import user_of
from ..notices import SELF_SCOPE
from .access import access
from .api.usage import event_json
from .dashboard.standing import for_user, worst
from .params import meter

bp = Blueprint("me", __name__)


@bp.get("/me/<token>")
@access("self")
def my_usage(token):
    """One user's spend this period, budgets, balance and latest answers. Nothing about anyone else."""
    m = meter()
    if token.count(".") == 2:  # a JWT link from an older version
        try:
            user_id = decode_token(token, m.settings.JWT_SECRET, scope=SELF_SCOPE)["sub"]
        except Unauthorized:
            return render_template("me/invalid.html"), 403
    else:
        user_id = user_of(m.db, token[:64])
    user = m.db.query_one("SELECT id, name, email FROM users WHERE id = ?", (user_id,))
    if user is None or is_unattributed(user_id):
        return render_template("me/invalid.html"), 403
    standings = for_user(m, user_id, personal_only=True)
    month_start = m.budgets.local_day(clock.now_ms()).replace(day=1).isoformat()
    month = m.db.query_one(
        "SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(answers), 0) AS answers FROM usage_day_user WHERE user_id = ? AND day >= ?",
        (user_id, month_start),
    )
    latest = m.db.query(
        "SELECT e.*, NULL AS generation_ids FROM events e WHERE e.user_id = ? ORDER BY e.ts DESC, e.id DESC LIMIT 20", (user_id,)
    )
    return render_template(
        "me/me.html", user=user, standings=standings, headline=worst(standings), month=month, balance=m.budgets.balance(m.db.query, user_id),
        latest=[event_json(r) | {"cost_nano": r["cost_nano"]} for r in latest],
    )
