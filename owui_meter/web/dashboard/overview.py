"""The overview: who needs attention, the period's totals against the previous period, cost per
day by model, top users and models, and where costs came from."""

from __future__ import annotations

import calendar

from flask import render_template

from ...ledger import UNATTRIBUTED
from ..access import require_login
from ..charts import cost_chart
from ..params import meter, today
from . import bp, by_day_and_model, change, chart_series, model_names, picked_period, previous_period, resolver_banner
from .standing import TeamStanding


@bp.get("/")
@require_login
def overview():
    period, picker = picked_period()
    db = meter().db
    names = model_names()
    rows = by_day_and_model(period)
    total = {"cost": 0, "confirmed": 0, "answers": 0, "prompt": 0, "completion": 0}
    per_model: dict[str, dict] = {}
    for r in rows:
        for key in total:
            total[key] += r[key]
        m = per_model.setdefault(r["model"], {"model": r["model"], "cost": 0, "answers": 0})
        m["cost"] += r["cost"]
        m["answers"] += r["answers"]
    top_models = sorted(per_model.values(), key=lambda m: (-m["cost"], m["model"]))[:10]
    for m in top_models:
        m["name"] = names.get(m["model"])
    users = db.query(
        """SELECT d.user_id, coalesce(u.name, u.email, d.user_id) AS name, sum(d.cost_nano) AS cost, sum(d.answers) AS answers
           FROM usage_daily d LEFT JOIN users u ON u.id = d.user_id WHERE d.day BETWEEN ? AND ?
           GROUP BY d.user_id ORDER BY cost DESC""",
        period.days,
    )
    total["users"] = sum(1 for u in users if u["user_id"] != UNATTRIBUTED)
    sources = {r["source"]: r for r in db.query(
        "SELECT source, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY source", period.days)}
    before = previous_period(picker["period"], period)
    prev = db.query_one(
        """SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(answers), 0) AS answers, count(DISTINCT nullif(user_id, ?)) AS users
           FROM usage_daily WHERE day BETWEEN ? AND ?""",
        (UNATTRIBUTED, *before.days),
    )
    changes = {k: change(total[k], prev[k]) for k in ("cost", "answers", "users")}
    forecast = None
    if picker["period"] == "month":
        elapsed = (today() - period.start).days + 1
        month_days = calendar.monthrange(period.start.year, period.start.month)[1]
        forecast = total["cost"] * month_days // elapsed
    team = TeamStanding(meter())
    return render_template(
        "dashboard/overview.html", **picker, total=total, chart=cost_chart(*chart_series(period, rows, names)),
        top_users=users[:10], more_users=len(users) > 10, top_models=top_models, more_models=len(per_model) > 10,
        sources=sources, banner=resolver_banner(), before=before, changes=changes, forecast=forecast,
        attention=team.attention(db), balances_out=team.balances_out, any_budget=bool(team.budgets),
    )
