"""The admin dashboard, one module per page: overview, users (and one user), models, events,
budgets, reports, status. They share this blueprint and the helpers below."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from urllib.parse import quote

from flask import Blueprint, request, url_for

from ... import __version__
from ...errors import BadInput
from ...periods import PRESETS, Period, next_month, parse_date
from ..charts import OTHERS, TOP_SERIES, model_label
from ..params import meter, period_from_request

bp = Blueprint("dashboard", __name__)


@bp.app_context_processor
def navigation():
    return {"version": __version__}


PATH_SAFE = "!$&'()*+,/:;=@"  # what url_for leaves unquoted in a path segment (werkzeug's BaseConverter.to_url)


def url_each(endpoint: str, field: str, **args):
    """``url_for(endpoint, field=value, **args)`` for many values: one url_for, each value then
    quoted into it as url_for would. A table of hundreds of people spent most of its time in
    url_for, once per row."""
    mark = secrets.token_hex(8)  # in no path or argument
    before, _, after = url_for(endpoint, **{field: mark}, **args).partition(mark)
    return lambda value: before + quote(str(value), safe=PATH_SAFE) + after


def picked_period() -> tuple[Period, dict]:
    """The period the page shows, and what the period picker needs to draw itself.

    Dates given mean a custom period. The picker's form sends From and To with the preset, and
    ``shown`` with the dates the page showed: dates that differ from those were typed (with or
    without script), so they win; dates left as shown mean the preset chosen in the select."""
    args = request.args
    name, period = period_from_request()
    if name != "custom" and args.get("from") and args.get("to"):
        typed = (parse_date("from", args["from"]), parse_date("to", args["to"]))
        if typed != (period.start, period.end) and args.get("shown") != f"{args['from']}_{args['to']}":
            name, period = "custom", Period(*typed, period.timezone)
    return period, {"periods": PRESETS, "period": name, "start": period.start, "end": period.end,
                    "period_args": period_args(name, period)}


def period_args(name: str, period: Period) -> dict:
    """Query arguments that bring the same period to another page."""
    if name == "custom":
        return {"period": "custom", "from": period.start.isoformat(), "to": period.end.isoformat()}
    return {"period": name}


def previous_period(name: str, period: Period) -> Period:
    """What a period is compared with: the same days of the month before for a month (so far),
    else the same number of days just before."""
    if period.start.day == 1 and (name in ("month", "last_month") or period.end == next_month(period.start) - dt.timedelta(days=1)):
        start = (period.start - dt.timedelta(days=1)).replace(day=1)
        last = next_month(start) - dt.timedelta(days=1)
        whole = period.end == next_month(period.start) - dt.timedelta(days=1)
        return Period(start, last if whole else min(start + (period.end - period.start), last), period.timezone)
    length = period.end - period.start + dt.timedelta(days=1)
    return Period(period.start - length, period.end - length, period.timezone)


def change(now: int, before: int) -> dict:
    """± % of a figure against the previous period; None when there is nothing to compare with."""
    if not before:
        return {"percent": None, "word": "new" if now else "no change"}
    percent = round(100 * (now - before) / before)
    return {"percent": percent, "word": f"{percent:+d}%"}


def user_totals(period: Period, user_id: str) -> dict:
    """One user's cost, confirmed part, answers and tokens over the period, from usage_day_user."""
    return meter().db.query_one(
        """SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(confirmed_cost_nano), 0) AS confirmed,
                  coalesce(sum(answers), 0) AS answers, coalesce(sum(prompt_tokens), 0) AS prompt,
                  coalesce(sum(completion_tokens), 0) AS completion
           FROM usage_day_user WHERE user_id = ? AND day BETWEEN ? AND ?""",
        (user_id, *period.days),
    )


def stacked_by_day(period: Period, ranked: list[str], names: dict, user_id: str) -> tuple[list[str], list]:
    """One user's cost per day, the top models (``ranked`` by cost) each a series, the rest as
    "Other models": the drawn models' rows of usage_daily only (a heavy user's other models can be
    most of their rows), and the day's whole cost from usage_day_user, for "Other models"."""
    drawn = ranked[:TOP_SERIES]
    db = meter().db
    rows = db.query(
        f"""SELECT day {"".join(f", sum(CASE WHEN model = ? THEN cost_nano END) AS m{i}" for i in range(len(drawn)))}
            FROM usage_daily WHERE user_id = ? AND day BETWEEN ? AND ? AND model IN (SELECT value FROM json_each(?)) GROUP BY day""",
        (*drawn, user_id, *period.days, json.dumps(drawn)),
    )
    days = period.day_list()
    by_day = {r["day"]: r for r in rows}
    series = [(model_label(model, names), [(by_day[d][f"m{i}"] or 0) if d in by_day else 0 for d in days]) for i, model in enumerate(drawn)]
    if len(ranked) > len(drawn):
        whole = {r["day"]: r["cost_nano"] for r in db.query(
            "SELECT day, cost_nano FROM usage_day_user WHERE user_id = ? AND day BETWEEN ? AND ?", (user_id, *period.days))}
        series.append((OTHERS, [whole.get(d, 0) - sum(v[j] for _, v in series) for j, d in enumerate(days)]))
    return days, series


def model_names(wanted=None) -> dict[str, str]:
    """OpenRouter's display names of the models it lists (from the price sync): of ``wanted``, or all."""
    sql = "SELECT model, name FROM prices WHERE source = 'openrouter' AND name IS NOT NULL"
    if wanted is None:
        return {r["model"]: r["name"] for r in meter().db.query(sql)}
    return {r["model"]: r["name"] for r in meter().db.query(sql + " AND model IN (SELECT value FROM json_each(?))", (json.dumps(list(wanted)),))}


def resolver_banner() -> str | None:
    state = meter().resolver.health()["resolver"]
    if state["state"] == "paused":
        return f"Cost confirmation is paused: {state['paused_reason']}"
    if state["pending"] >= 1000 or (state["oldest_pending_seconds"] or 0) > 6 * 3600:
        return f"{state['pending']} costs are waiting for OpenRouter (oldest {int((state['oldest_pending_seconds'] or 0) // 60)} min)."
    return None


def sort_order(args, sorts: dict, default: str) -> tuple[str, str, str]:
    """(column, direction, SQL ORDER BY) from ?sort=column&dir=asc|desc; unknown names fall back."""
    column = args.get("sort") if args.get("sort") in sorts else default
    sql, descending = sorts[column]
    direction = args.get("dir") if args.get("dir") in ("asc", "desc") else ("desc" if descending else "asc")
    return column, direction, f"{sql} {direction.upper()} NULLS LAST" if direction == "desc" else f"{sql} ASC NULLS LAST"


def form_error(exc: BadInput, fields: dict[str, str]) -> dict:
    """A BadInput shown next to its form: which field, and the words for a person.

    ``fields`` maps form field names to their labels; the message names the field (parsers
    say "limit_usd must be a number like 10 or 10.50"), which becomes "Use a number like 10 or 10.50".
    """
    message = str(exc)
    field = next((f for f in fields if any(message.startswith(f + tail) for tail in (" must", " is", ":"))), None)
    text = message[len(field):].lstrip(" :") if field else message
    for plain, friendly in (("must be a number like", "Use a number like"), ("is required", "Required"),
                            ("must be a whole number", "Use a whole number"), ("must be between", "Use an amount between")):
        if text.startswith(plain):
            text = friendly + text[len(plain):]
            break
    text = text[:1].upper() + text[1:]
    return {"field": field, "label": fields.get(field), "message": text if not field else f"{fields[field]}: {text}"}


from . import budgets, events, models, overview, reports, status, users  # noqa: E402,F401  (the pages)
