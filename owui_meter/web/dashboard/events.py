"""The events page (every answer, newest first, in keyset pages) and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, fields
from decimal import Decimal

from flask import Response, render_template, request, stream_with_context

from ... import clock, periods
from ...errors import BadInput
from ...ledger import Filters, encode_cursor
from ..access import require_login
from ..params import meter, parse_cursor, parse_filters, parse_int, today
from ..search import matching_user_ids
from ..templating import COST_STATES
from . import bp, model_names, url_each


STATE_SOURCES = {"confirmed": "generation", "reported": "inline", "estimated": "estimate", "unpriced": "unpriced"}


def state_sql(state: str, cost_source: str, pending: str, not_pending: str) -> str:
    """The Events page's cost states (templating.COST_STATES) as a condition on a cost source
    column and "lookup pending" or not: awaiting while a lookup is pending (whatever figure the
    answer has now), else by where the figure came from. Events and events_cost_quarter name those
    differently; each part is one an index can seek."""
    if state == "awaiting":
        return f"({pending} OR ({not_pending} AND {cost_source} = 'pending'))"
    return f"{cost_source} = '{STATE_SOURCES[state]}' AND {not_pending}"


QUARTER_MS = 900_000  # events_cost_quarter's unit: every time zone's days start on a quarter hour


# every model used, in order: one seek per model along usage_daily's model index (a skip scan)
MODELS_USED = """WITH RECURSIVE used(model) AS (
                     SELECT min(model) FROM usage_daily
                     UNION ALL SELECT (SELECT min(model) FROM usage_daily WHERE model > used.model) FROM used WHERE used.model IS NOT NULL)
                 SELECT model FROM used WHERE model IS NOT NULL"""


@dataclass
class PageFilters(Filters):
    """The Events page's filters: the API's, plus users found by name or email and a cost state."""

    users: list[str] | None = None
    state: str | None = None
    days: tuple[str, str] | None = None  # From and To as local days, when given

    def sql(self):
        where, params = super().sql()
        if self.users is not None:
            where.append("e.user_id IN (SELECT value FROM json_each(:users))")
            params["users"] = json.dumps(self.users)
        if self.state is not None:
            where.append(state_sql(self.state, "e.cost_source", "e.lookup_state = 'pending'", "e.lookup_state != 'pending'"))
        return where, params


def page_filters(args) -> tuple[PageFilters, str | None]:
    """Filters from the page's form: "who" is a name, email or id (accents and case ignored);
    From and To are days in the meter's time zone, both included. The period, when it is a whole
    run of days with no cost state, is also where the daily totals can answer."""
    base = parse_filters({k: v for k, v in args.items() if k in ("model", "source", "cost_source")})
    filters = PageFilters(**{f.name: getattr(base, f.name) for f in fields(Filters)})
    if args.get("from") or args.get("to"):
        last = periods.parse_date("to", args["to"]) if args.get("to") else max(today(), periods.parse_date("from", args["from"]))
        first = periods.parse_date("from", args["from"]) if args.get("from") else last - dt.timedelta(days=periods.MAX_DAYS - 1)
        period = periods.Period(first, last, meter().settings.METER_TIMEZONE)
        filters.start, filters.end, filters.days = period.start_ms, period.end_ms, period.days
    if args.get("user"):  # an exact user id (links from other pages, and the API's name for it)
        filters.user = args["user"]
    who = (args.get("who") or "").strip()[:200]
    if who:
        found = matching_user_ids(meter().db, who)
        if len(found) == 1:
            filters.user = found[0]  # one person: the per-user index answers
        else:
            filters.users = found
    state = args.get("state") or None
    if state not in (None, *COST_STATES):
        raise BadInput(f"state must be one of {', '.join(COST_STATES)}")
    filters.state = state
    return filters, who


SUMS = """coalesce(sum(answers), 0) AS answers, coalesce(sum(prompt_tokens), 0) AS prompt,
          coalesce(sum(completion_tokens), 0) AS completion, coalesce(sum(cost_nano), 0) AS cost"""


EVENTS_SUMMED_AT_ONCE = 50_000  # a sum over more events than this (about half a second) waits to be asked for


def page_totals(filters: PageFilters, asked: bool = False) -> dict:
    """Answers, tokens and cost of everything the filter matches (not only the page shown).

    Without a cost state or source the daily totals answer, from the smallest table that can: the
    day × source rollup for days and source, day × model for a model, model × source × day for
    both, day × user for people, else the day × user × model × source rows. A cost state or source
    over a period (or all time) is summed from the quarter hours of events_cost_quarter. Only a
    cost state or source together with a person, model or source sums the events themselves, along
    the index of that person or model: that grows with their answers, so when the rollups say more
    than EVENTS_SUMMED_AT_ONCE answers are in the slice, the row offers the sum (``asked``) instead
    of making every page load wait for it: ``{"deferred": True, "answers": <the slice's answers>}``."""
    db = meter().db
    who = filters.users is not None or filters.user is not None
    if filters.state is None and filters.cost_source is None:
        table = ("usage_model_source_day" if not who and filters.model is not None and filters.source is not None
                 else "usage_daily" if sum((who, filters.model is not None, filters.source is not None)) > 1
                 else "usage_day_user" if who else "usage_day_model" if filters.model is not None else "usage_day_source")
        where, params = ["1 = 1"], {}
        if filters.days is not None:
            where.append("day BETWEEN :first AND :last")
            params.update(first=filters.days[0], last=filters.days[1])
        if filters.users is not None:
            where.append("user_id IN (SELECT value FROM json_each(:users))")
            params["users"] = json.dumps(filters.users)
        if filters.user is not None:
            where.append("user_id = :user")
            params["user"] = filters.user
        for name in ("model", "source"):
            if getattr(filters, name) is not None:
                where.append(f"{name} = :{name}")
                params[name] = getattr(filters, name)
        return db.query_one(f"SELECT {SUMS} FROM {table} WHERE {' AND '.join(where)}", params)
    whole_quarters = all(t is None or t % QUARTER_MS == 0 for t in (filters.start, filters.end))
    if not who and filters.model is None and filters.source is None and whole_quarters:
        where, params = ["1 = 1"], {}
        if filters.state is not None:
            where.append(state_sql(filters.state, "cost_source", "pending = 1", "pending = 0"))
        if filters.cost_source is not None:
            where.append("cost_source = :cost_source")
            params["cost_source"] = filters.cost_source
        if filters.start is not None:
            where.append("quarter >= :first")
            params["first"] = filters.start // QUARTER_MS
        if filters.end is not None:
            where.append("quarter < :last")
            params["last"] = filters.end // QUARTER_MS
        return db.query_one(f"SELECT {SUMS} FROM events_cost_quarter WHERE {' AND '.join(where)}", params)
    if not asked:
        whole = dict(vars(filters), state=None, cost_source=None)
        answers = page_totals(PageFilters(**whole))["answers"]  # every state: from the rollups
        if answers > EVENTS_SUMMED_AT_ONCE:
            return {"deferred": True, "answers": answers}
    where, params = filters.sql()
    return db.query_one(
        f"""SELECT count(*) AS answers, coalesce(sum(prompt_tokens), 0) AS prompt, coalesce(sum(completion_tokens), 0) AS completion,
                   coalesce(sum(cost_nano), 0) AS cost FROM events e WHERE {" AND ".join(where)}""", params)


@bp.get("/events")
@require_login
def events():
    filters, who = page_filters(request.args)
    limit = parse_int(request.args, "limit", 50, 1, 500)
    cursor = parse_cursor(request.args, "that page link is not valid")
    if filters.users == []:
        rows, following = [], None
    else:
        rows, following = meter().ledger.events(filters, limit, cursor)
    asked = request.args.get("totals")
    if asked not in (None, "all"):
        raise BadInput("totals must be all (to add up every matching answer)")
    kept = {k: v for k, v in request.args.items() if k not in ("cursor", "totals") and v}
    models = [r["model"] for r in meter().db.query(MODELS_USED)]
    return render_template("dashboard/events.html", rows=rows, next_cursor=encode_cursor(following), args=kept, who=who,
                           models=models, names=model_names(models), states=COST_STATES, no_match=filters.users == [],
                           total=page_totals(filters, asked == "all") if filters.users != [] else None,
                           user_url=url_each("dashboard.user", "user_id"))


CSV_COLUMNS = ("time_utc", "user_id", "user_email", "user_name", "model", "source", "prompt_tokens", "completion_tokens",
               "reasoning_tokens", "cached_tokens", "cost_usd", "cost_source", "lookup_state", "chat_id", "message_id")


_FORMULA = re.compile(r"(^|;)(\s*)(?=[=+\-@\t\r])")


def csv_safe(value) -> str:
    """Spreadsheets run cells that start with = + - @ (or tab/CR) as formulas: quote them. German
    and French spreadsheets split on ";" as well, so a formula after a ";" is quoted too."""
    text = "" if value is None else str(value)
    return _FORMULA.sub(lambda m: f"{m.group(1)}{m.group(2)}'", text)


@bp.get("/events.csv")
@require_login
def events_csv():
    """Every event of the current filter, streamed row by row (constant memory). It starts with a
    UTF-8 byte-order mark, without which Excel on Windows garbles accented names; ``?bom=0`` leaves
    it out (for tools that read it as part of the first column's name)."""
    bom = request.args.get("bom", "1")
    if bom not in ("0", "1"):
        raise BadInput("bom must be 0 or 1")
    where, params = page_filters(request.args)[0].sql()
    sql = f"""SELECT e.*, u.email AS user_email, u.name AS user_name FROM events e JOIN users u ON u.id = e.user_id
              {"WHERE " + " AND ".join(where) if where else ""} ORDER BY e.ts DESC, e.id DESC"""
    db = meter().db

    def generate():
        buffer = io.StringIO()
        if bom == "1":
            buffer.write("\ufeff")
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in db.iterate(sql, params):
            writer.writerow([csv_safe(v) for v in (
                clock.ms_to_iso(row["ts"]), row["user_id"], row["user_email"], row["user_name"], row["model"], row["source"],
                row["prompt_tokens"], row["completion_tokens"], row["reasoning_tokens"], row["cached_tokens"],
                f"{Decimal(row['cost_nano']) / 10**9:f}", row["cost_source"], row["lookup_state"], row["chat_id"], row["message_id"])])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=owui-meter-events.csv"})
