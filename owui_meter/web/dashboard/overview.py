"""The overview: who needs attention, the period's totals against the previous period, cost per
day by model, top users and models, and where costs came from."""

from __future__ import annotations

import calendar

from flask import render_template

from ...ledger import UNATTRIBUTED, user_rows_sql
from ..access import require_login
from ..charts import OTHERS, TOP_SERIES, cost_chart, model_label, unit
from ..params import meter, today
from . import bp, change, model_names, picked_period, previous_period, resolver_banner
from .standing import TeamStanding


@bp.get("/")
@require_login
def overview():
    period, picker = picked_period()
    db = meter().db
    per_model = {r["model"]: r for r in db.query(
        "SELECT model, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_day_model WHERE day BETWEEN ? AND ? GROUP BY model",
        period.days)}
    sources = {r["source"]: r for r in db.query(
        "SELECT source, sum(cost_nano) AS cost, sum(answers) AS answers FROM usage_day_source WHERE day BETWEEN ? AND ? GROUP BY source",
        period.days)}
    ranked = sorted(per_model.values(), key=lambda m: (-m["cost"], m["model"]))
    names = model_names([m["model"] for m in ranked[:10]])
    for m in ranked[:10]:
        m["name"] = names.get(m["model"])
    # per day: the totals, and the chart's top models (the rest summed as "Other models")
    drawn = [m["model"] for m in ranked[:TOP_SERIES]]
    per_day = db.query(
        f"""SELECT day, sum(cost_nano) AS cost, sum(confirmed_cost_nano) AS confirmed, sum(answers) AS answers,
                   sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion
                   {"".join(f", sum(CASE WHEN model = ? THEN cost_nano END) AS m{i}" for i in range(len(drawn)))}
            FROM usage_day_model WHERE day BETWEEN ? AND ? GROUP BY day""",
        (*drawn, *period.days),
    )
    total = {k: sum(r[k] for r in per_day) for k in ("cost", "confirmed", "answers", "prompt", "completion")}
    days = period.day_list()
    by_day = {r["day"]: r for r in per_day}
    series = [(model_label(model, names), [(by_day[d][f"m{i}"] or 0) if d in by_day else 0 for d in days]) for i, model in enumerate(drawn)]
    if len(ranked) > len(drawn):
        series.append((OTHERS, [by_day[d]["cost"] - sum(v[j] for _, v in series) if d in by_day else 0 for j, d in enumerate(days)]))
    per_user, params = user_rows_sql(period.days)
    users = db.query(
        f"""SELECT d.user_id, coalesce(u.name, u.email, d.user_id) AS name, d.cost, d.answers
            FROM (SELECT user_id, sum(cost_nano) AS cost, sum(answers) AS answers FROM ({per_user}) GROUP BY user_id) d
            LEFT JOIN users u ON u.id = d.user_id ORDER BY d.cost DESC, d.user_id""",
        params,
    )
    total["users"] = sum(1 for u in users if u["user_id"] != UNATTRIBUTED)
    before = previous_period(picker["period"], period)
    per_user, params = user_rows_sql(before.days)
    prev = db.query_one(
        f"""SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(answers), 0) AS answers, count(DISTINCT nullif(user_id, ?)) AS users
            FROM ({per_user})""",
        (UNATTRIBUTED, *params),
    )
    changes = {k: change(total[k], prev[k]) for k in ("cost", "answers", "users")}
    forecast = None
    if picker["period"] == "month":
        elapsed = (today() - period.start).days + 1
        month_days = calendar.monthrange(period.start.year, period.start.month)[1]
        forecast = total["cost"] * month_days // elapsed
    team = TeamStanding(meter())
    return render_template(
        "dashboard/overview.html", **picker, total=total, chart=cost_chart(days, series), chart_unit=unit(days),
        top_users=users[:10], more_users=len(users) > 10, top_models=ranked[:10], more_models=len(ranked) > 10,
        sources=sources, banner=resolver_banner(), before=before, changes=changes, forecast=forecast,
        attention=team.attention(db), balances_out=team.balances_out, any_budget=bool(team.budgets),
    )
