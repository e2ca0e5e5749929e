"""The users list, one user's page, and what an admin does to a user: top up, erase, revoke links."""

from __future__ import annotations

import datetime as dt
import json

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ... import budgets, clock, me_links
from ...erasure import erase_user
from ...errors import BadInput
from ...ledger import by_months_sql, is_unattributed, user_rows_sql
from ...budgets import PERIOD_WORDS
from ...money import MAX_INPUT_USD, format_usd, parse_usd_nano
from ..access import require_login
from ..charts import cost_chart, unit
from ..params import meter
from ..search import matching_user_ids
from . import bp, form_error, model_names, picked_period, sort_order, stacked_by_day, url_each, user_totals
from .standing import for_user, worst

SORTS = {  # column -> (SQL order, first click descending?)
    "name": ("lower(coalesce(u.name, u.email, u.id))", False),
    "email": ("lower(coalesce(u.email, ''))", False),
    "answers": ("answers", True),
    "cost": ("cost", True),
    "seen": ("last_answer", True),
}


@bp.get("/users")
@require_login
def users():
    period, picker = picked_period()
    search = request.args.get("q", "").strip()[:200]
    sort, direction, order = sort_order(request.args, SORTS, "cost")
    db = meter().db
    ids = matching_user_ids(db, search) if search else None
    per_user, params = user_rows_sql(period.days)
    rows = db.query(
        f"""SELECT u.id, u.name, u.email, u.role, (SELECT max(e.ts) FROM events e WHERE e.user_id = u.id) AS last_answer,
                   coalesce(d.cost, 0) AS cost, coalesce(d.answers, 0) AS answers
            FROM (SELECT user_id, sum(cost_nano) AS cost, sum(answers) AS answers FROM ({per_user}) GROUP BY user_id) d
                 RIGHT JOIN users u ON u.id = d.user_id  -- every user, with usage or not; d needs no index of its own
            WHERE ? OR u.id IN (SELECT value FROM json_each(?))
            ORDER BY {order}, u.id LIMIT 500""",
        (*params, ids is None, json.dumps(ids or [])),
    )
    return render_template("dashboard/users.html", **picker, users=rows, q=search, sort=sort, direction=direction,
                           user_url=url_each("dashboard.user", "user_id", **picker["period_args"]))


def user_page(user_id, error: dict | None = None, status: int = 200):
    period, picker = picked_period()
    m = meter()
    person = m.db.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
    if person is None:
        abort(404)
    # the models table and the sources table in one query, per model and source, folded here; whole
    # months from usage_month_user_model (a heavy user's year is tens of thousands of daily rows)
    rows_sql, params = by_months_sql(period.days, "model, source, answers, prompt_tokens, completion_tokens, cost_nano", "usage_daily",
                                     "usage_month_user_model", "user_id = ?", (user_id,))
    per_model, sources = {}, {}
    for r in m.db.query(
            f"""SELECT model, source, sum(answers) AS answers, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion, sum(cost_nano) AS cost
                FROM ({rows_sql}) GROUP BY model, source""", params):
        row = per_model.setdefault(r["model"], dict.fromkeys(("answers", "prompt", "completion", "cost"), 0) | {"model": r["model"]})
        for k in ("answers", "prompt", "completion", "cost"):
            row[k] += r[k]
        by_source = sources.setdefault(r["source"], {"source": r["source"], "answers": 0, "cost": 0})
        by_source["answers"] += r["answers"]
        by_source["cost"] += r["cost"]
    models = sorted(per_model.values(), key=lambda r: (-r["cost"], r["model"]))
    names = model_names([r["model"] for r in models])
    latest = m.db.query("SELECT * FROM events WHERE user_id = ? ORDER BY ts DESC, id DESC LIMIT 25", (user_id,))
    groups = m.db.query("SELECT g.id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ?", (user_id,))
    standings = for_user(m, user_id)
    line = budget_line(standings)
    live_links = m.db.query_one("SELECT count(*) AS n FROM me_links WHERE user_id = ? AND revoked IS NULL AND expires > ?",
                                (user_id, clock.now_ms()))["n"]
    topups = m.db.query("SELECT ts, actor, amount_nano, note FROM balance_entries WHERE user_id = ? ORDER BY ts DESC, id DESC LIMIT 100", (user_id,))
    return render_template(
        "dashboard/user.html", **picker, person=person, models=models, sources=sources, latest=latest, groups=groups, names=names,
        person_is_user=not is_unattributed(user_id),
        total=user_totals(period, user_id),
        chart=cost_chart(*stacked_by_day(period, [r["model"] for r in models], names, user_id), budget_line=line), chart_unit=unit(period.day_list()),
        standings=standings, headline=worst(standings), balance=m.budgets.balance(m.db.query, user_id), topups=topups,
        balances_on=m.settings.METER_BALANCES_ENABLED, live_links=live_links, error=error, form=request.form if error else {},
    ), status


def budget_line(standings) -> tuple[int, str] | None:
    """The user's tightest calendar budget as a line on the cost-per-day chart: a daily budget as
    it is, a weekly or monthly one spread evenly over its days (the pace that just fits)."""
    lines = []
    for s in standings:
        budget, renews = s.state.budget, s.state.renews
        if renews is None or s.state.shared:
            continue  # a one-off allowance has no pace; a shared one is not this user's pace
        days = {"day": 1, "week": 7}.get(budget["period"]) or (renews - dt.date.fromisoformat(s.state.start)).days
        caption = ("daily budget" if days == 1 else f"{PERIOD_WORDS['en'][budget['period']]} budget ÷ {days} days") + f" ({format_usd(budget['limit_nano'] // days, 2)} a day)"
        lines.append((budget["limit_nano"] // days, caption))
    return min(lines, default=None)


@bp.get("/users/<user_id>")
@require_login
def user(user_id):
    return user_page(user_id)


@bp.post("/users/<user_id>/topup")
@require_login
def top_up(user_id):
    try:
        amount = parse_usd_nano("amount_usd", request.form.get("amount_usd"), low=-MAX_INPUT_USD)
        found = budgets.top_up(meter(), user_id, amount, current_user.username, request.form.get("note", ""))
    except BadInput as exc:
        return user_page(user_id, form_error(exc, {"amount_usd": "Amount (USD)", "note": "Note"}) | {"form": "topup"}, 400)
    if not found:
        abort(404)
    flash("Balance updated.")
    return redirect(url_for("dashboard.user", user_id=user_id))


@bp.post("/users/<user_id>/links/revoke")
@require_login
def revoke_links(user_id):
    """End every link to the user's own page (a link forwarded to someone else, say)."""
    if meter().db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (user_id,)) is None:
        abort(404)
    count = me_links.revoke(meter(), user_id, current_user.username)
    flash(f"{count} link{'s' if count != 1 else ''} to this user's page revoked; the next answer brings a new one.")
    return redirect(url_for("dashboard.user", user_id=user_id))


@bp.post("/users/<user_id>/erase")
@require_login
def erase(user_id):
    """Forget a user (GDPR) after the admin ticked the confirmation."""
    mode = request.form.get("mode")
    try:
        if request.form.get("confirm") != "yes":
            raise BadInput("confirm: tick the box to confirm: erasing cannot be undone")
        result = erase_user(meter(), user_id, mode, current_user.username)
    except BadInput as exc:
        return user_page(user_id, form_error(exc, {"confirm": "Confirm", "mode": "How"}) | {"form": "erase"}, 400)
    if result is None:
        abort(404)
    flash(f"User erased ({mode}): {result['answers']} answers {'kept anonymously' if mode == 'anonymise' else 'deleted'}.")
    return redirect(url_for("dashboard.users"))
