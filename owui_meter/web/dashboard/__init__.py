"""The admin dashboard, one module per page: overview, users (and one user), models, events,
budgets, reports, status. They share this blueprint and the helpers below."""

from __future__ import annotations

from flask import Blueprint

from ... import __version__
from ...ledger import UNATTRIBUTED
from ...periods import PRESETS, Period
from ..params import meter, period_from_request

bp = Blueprint("dashboard", __name__)


@bp.app_context_processor
def navigation():
    return {"version": __version__}


def picked_period() -> tuple[Period, dict]:
    """The period the page shows, and what the period picker needs to draw itself."""
    name, period = period_from_request()
    return period, {"periods": PRESETS, "period": name, "start": period.start, "end": period.end}


def totals(period: Period, user_id: str | None = None) -> dict:
    """The period's cost, confirmed part, answers, tokens and active users (of one user, or all).

    Read from the rollups: days × sources for everyone, days for one user, however many answers."""
    db = meter().db
    if user_id:
        table, where, params = "usage_day_user", "user_id = ? AND ", (user_id,)
    else:
        table, where, params = "usage_day_source", "", ()
    row = db.query_one(
        f"""SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(confirmed_cost_nano), 0) AS confirmed,
                   coalesce(sum(answers), 0) AS answers, coalesce(sum(prompt_tokens), 0) AS prompt,
                   coalesce(sum(completion_tokens), 0) AS completion
            FROM {table} WHERE {where}day BETWEEN ? AND ?""",
        (*params, *period.days),
    )
    row["users"] = db.query_one(
        f"SELECT count(DISTINCT nullif(user_id, ?)) AS n FROM usage_day_user WHERE {where}day BETWEEN ? AND ?",
        (UNATTRIBUTED, *params, *period.days),
    )["n"]
    return row


def daily_points(period: Period, user_id: str | None = None) -> list[tuple[str, int]]:
    """Cost per day of the period (of one user, or all), every day present."""
    if user_id:
        sql, params = "SELECT day, sum(cost_nano) AS cost FROM usage_day_user WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY day", (user_id,)
    else:
        sql, params = "SELECT day, sum(cost_nano) AS cost FROM usage_day_source WHERE day BETWEEN ? AND ? GROUP BY day", ()
    by_day = {r["day"]: r["cost"] for r in meter().db.query(sql, (*params, *period.days))}
    return [(day, by_day.get(day, 0)) for day in period.day_list()]


def resolver_banner() -> str | None:
    state = meter().resolver.health()["resolver"]
    if state["state"] == "paused":
        return f"Cost confirmation is paused: {state['paused_reason']}"
    if state["pending"] >= 1000 or (state["oldest_pending_seconds"] or 0) > 6 * 3600:
        return f"{state['pending']} costs are waiting for OpenRouter (oldest {int((state['oldest_pending_seconds'] or 0) // 60)} min)."
    return None


from . import budgets, events, models, overview, reports, status, users  # noqa: E402,F401  (the pages)
