"""The budgets page: every budget rule with where it stands now, and the form to add one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ...budgets import delete_budget, parse_budget, save_budget
from ...errors import BadInput
from ...ledger import UNATTRIBUTED
from ..access import require_login
from ..params import meter
from . import bp, form_error
from .standing import TeamStanding, describe

FIELDS = {"scope": "Scope", "scope_id": "User or group", "period": "Period", "limit_usd": "Limit (USD)",
          "warn_percent": "Warn at %", "action": "Action", "group_mode": "Group / everyone"}


def budgets_page(error: dict | None = None, status: int = 200):
    m = meter()
    team = TeamStanding(m)
    for b in team.budgets:
        b["describe"] = describe(b)
    users_list = m.db.query("SELECT id, coalesce(name, email, id) AS name FROM users WHERE id != ? ORDER BY lower(coalesce(name, email, id)) LIMIT 2000",
                            (UNATTRIBUTED,))
    groups_list = m.db.query("SELECT id, name FROM groups ORDER BY name")
    return render_template("dashboard/budgets.html", budgets=team.budgets, standing=team.rows, users=users_list, groups=groups_list,
                           error=error, form=request.form if error else {}), status


@bp.get("/budgets")
@require_login
def budgets():
    return budgets_page()


@bp.post("/budgets")
@require_login
def create_budget():
    form = request.form
    body = {"scope": form.get("scope"), "scope_id": form.get(f"scope_id_{form.get('scope')}") or None, "period": form.get("period"),
            "limit_usd": form.get("limit_usd") or None, "action": form.get("action"), "group_mode": form.get("group_mode")}
    body = {k: v for k, v in body.items() if v is not None}  # a field left out takes the rule's default
    try:
        try:
            body["warn_percent"] = int(form.get("warn_percent") or 80)
        except ValueError:
            raise BadInput("warn_percent must be a whole number from 1 to 100") from None
        save_budget(meter(), parse_budget(body), current_user.username)
    except BadInput as exc:
        return budgets_page(form_error(exc, FIELDS), 400)
    flash("Budget created.")
    return redirect(url_for("dashboard.budgets"))


@bp.post("/budgets/<int:budget_id>/delete")
@require_login
def remove_budget(budget_id):
    if not delete_budget(meter(), budget_id, current_user.username):
        abort(404)
    flash("Budget deleted.")
    return redirect(url_for("dashboard.budgets"))
