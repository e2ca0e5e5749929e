"""The overview: the period's totals, cost per day, top users and models, and where costs came from."""

from __future__ import annotations

from flask import render_template

from ..access import require_login
from ..charts import bar_chart
from ..params import meter
from . import bp, daily_points, picked_period, resolver_banner, totals


@bp.get("/")
@require_login
def overview():
    period, picker = picked_period()
    db = meter().db
    top_users = db.query(
        """SELECT d.user_id, coalesce(u.name, u.email, d.user_id) AS name, d.cost, d.answers
           FROM (SELECT user_id, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_day_user
                 WHERE day BETWEEN ? AND ? GROUP BY user_id ORDER BY cost DESC LIMIT 10) d
           LEFT JOIN users u ON u.id = d.user_id ORDER BY d.cost DESC""",
        period.days,
    )
    top_models = db.query(
        "SELECT model, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_day_model WHERE day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC LIMIT 10",
        period.days,
    )
    sources = {r["source"]: r for r in db.query(
        "SELECT source, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_day_source WHERE day BETWEEN ? AND ? GROUP BY source",
        period.days)}
    return render_template(
        "dashboard/overview.html", **picker, total=totals(period), chart=bar_chart(daily_points(period)),
        top_users=top_users, top_models=top_models, sources=sources,
        banner=resolver_banner(),
    )
