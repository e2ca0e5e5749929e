"""The users list, one user's page, and what an admin does to a user: top up, erase."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ... import budgets
from ...erasure import erase_user
from ...errors import BadInput
from ...ledger import is_unattributed
from ...money import MAX_INPUT_USD, parse_usd_nano
from ..access import require_login
from ..charts import bar_chart
from ..params import meter
from . import bp, daily_points, picked_period, totals


@bp.get("/users")
@require_login
def users():
    period, picker = picked_period()
    search = request.args.get("q", "").strip()[:200]
    sort = request.args.get("sort", "cost")
    order = {"cost": "cost DESC", "name": "lower(coalesce(u.name, u.email, u.id))", "answers": "answers DESC", "seen": "u.last_seen DESC"}.get(sort, "cost DESC")
    like = f"%{search}%"
    rows = meter().db.query(
        f"""SELECT u.id, u.name, u.email, u.role, u.last_seen, coalesce(sum(d.cost_nano), 0) AS cost,
                   coalesce(sum(d.answers), 0) AS answers
            FROM users u LEFT JOIN usage_day_user d ON d.user_id = u.id AND d.day BETWEEN ? AND ?
            WHERE (? = '' OR u.name LIKE ? OR u.email LIKE ? OR u.id = ?)
            GROUP BY u.id ORDER BY {order} LIMIT 500""",
        (*period.days, search, like, like, search),
    )
    return render_template("dashboard/users.html", **picker, users=rows, q=search, sort=sort)


@bp.get("/users/<user_id>")
@require_login
def user(user_id):
    period, picker = picked_period()
    m = meter()
    person = m.db.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
    if person is None:
        abort(404)
    models = m.db.query(
        """SELECT model, sum(answers) AS answers, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion, sum(cost_nano) AS cost
           FROM usage_daily WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC""",
        (user_id, *period.days),
    )
    latest = m.db.query("SELECT * FROM events WHERE user_id = ? ORDER BY ts DESC, id DESC LIMIT 25", (user_id,))
    groups = m.db.query("SELECT g.id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ?", (user_id,))
    return render_template(
        "dashboard/user.html", **picker, person=person, models=models, latest=latest, groups=groups,
        person_is_user=not is_unattributed(user_id),
        total=totals(period, user_id), chart=bar_chart(daily_points(period, user_id)),
        states=m.budgets.states(m.db.query, user_id), balance=m.budgets.balance(m.db.query, user_id),
    )


@bp.post("/users/<user_id>/topup")
@require_login
def top_up(user_id):
    amount = parse_usd_nano("amount_usd", request.form.get("amount_usd"), low=-MAX_INPUT_USD)
    if not budgets.top_up(meter(), user_id, amount, current_user.username, request.form.get("note", "")):
        abort(404)
    flash("Balance updated.")
    return redirect(url_for("dashboard.user", user_id=user_id))


@bp.post("/users/<user_id>/erase")
@require_login
def erase(user_id):
    """Forget a user (GDPR) after the admin ticked the confirmation."""
    mode = request.form.get("mode")
    if request.form.get("confirm") != "yes":
        raise BadInput("tick the box to confirm: erasing cannot be undone")
    result = erase_user(meter(), user_id, mode, current_user.username)
    if result is None:
        abort(404)
    flash(f"User erased ({mode}): {result['answers']} answers {'kept anonymously' if mode == 'anonymise' else 'deleted'}.")
    return redirect(url_for("dashboard.users"))
