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
    span = ("day BETWEEN ? AND ?", period.days)
    db = meter().db
    top_users = db.query(
        """SELECT d.user_id, coalesce(u.name, u.email, d.user_id) AS name, sum(d.cost_nano) AS cost, sum(d.answers) AS answers
           FROM usage_daily d LEFT JOIN users u ON u.id = d.user_id WHERE d.day BETWEEN ? AND ?
           GROUP BY d.user_id ORDER BY cost DESC LIMIT 10""",
        span[1],
    )
    top_models = db.query(
        "SELECT model, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC LIMIT 10",
        span[1],
    )
    sources = {r["source"]: r for r in db.query(
        "SELECT source, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY source", span[1])}
    return render_template(
        "dashboard/overview.html", **picker, total=totals(*span), chart=bar_chart(daily_points(period)), top_users=top_users, top_models=top_models, sources=sources,
        banner=resolver_banner(),
    )
