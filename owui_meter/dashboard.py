"""The admin dashboard: login, overview, users, models, events (+CSV), budgets, status."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required, login_user

from . import __version__, audit, clock, login, prices
from .api import parse_filters, parse_int
from .budgets import delete_budget, save_budget
from .budgets_api import parse_budget
from .charts import bar_chart
from .ingest import BadInput
from .ledger import decode_cursor, encode_cursor
from .money import usd_to_nano

bp = Blueprint("dashboard", __name__)

PERIODS = {"today": "Today", "7d": "Last 7 days", "month": "This month", "last_month": "Last month", "custom": "Custom"}


def meter():
    return current_app.config["METER"]


def today() -> dt.date:
    return meter().budgets.local_day(clock.now_ms())


def period_days() -> tuple[str, dt.date, dt.date]:
    """The picked period as local days, both inclusive."""
    period = request.args.get("period", "month")
    now = today()
    if period == "today":
        return period, now, now
    if period == "7d":
        return period, now - dt.timedelta(days=6), now
    if period == "last_month":
        end = now.replace(day=1) - dt.timedelta(days=1)
        return period, end.replace(day=1), end
    if period == "custom":
        try:
            start = dt.date.fromisoformat(request.args.get("from", ""))
            end = dt.date.fromisoformat(request.args.get("to", ""))
        except ValueError:
            raise BadInput("custom periods need from and to dates (YYYY-MM-DD)") from None
        if start > end or (end - start).days > 3660:
            raise BadInput("from must be before to, and at most ten years apart")
        return period, start, end
    return "month", now.replace(day=1), now


def day_range(start: dt.date, end: dt.date) -> list[str]:
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def totals(where: str, params: tuple) -> dict:
    return meter().db.query_one(
        f"""SELECT coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(confirmed_cost_nano), 0) AS confirmed,
                   coalesce(sum(answers), 0) AS answers, coalesce(sum(prompt_tokens), 0) AS prompt,
                   coalesce(sum(completion_tokens), 0) AS completion, count(DISTINCT user_id) AS users
            FROM usage_daily WHERE {where}""",
        params,
    )


def daily_points(start: dt.date, end: dt.date, where: str = "1 = 1", params: tuple = ()) -> list[tuple[str, int]]:
    rows = meter().db.query(
        f"SELECT day, sum(cost_nano) AS cost FROM usage_daily WHERE day BETWEEN ? AND ? AND {where} GROUP BY day",
        (start.isoformat(), end.isoformat(), *params),
    )
    by_day = {r["day"]: r["cost"] for r in rows}
    return [(day, by_day.get(day, 0)) for day in day_range(start, end)]


def resolver_banner() -> str | None:
    state = meter().resolver.health()["resolver"]
    if state["state"] == "paused":
        return f"Cost confirmation is paused: {state['paused_reason']}"
    if state["pending"] >= 1000 or (state["oldest_pending_seconds"] or 0) > 6 * 3600:
        return f"{state['pending']} costs are waiting for OpenRouter (oldest {int((state['oldest_pending_seconds'] or 0) // 60)} min)."
    return None


@bp.app_context_processor
def navigation():
    return {"version": __version__}


# --- login ----------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    if request.method == "GET":
        return render_template("login.html", next=login.safe_next(request.args.get("next")))
    limiter = current_app.login_limiter
    username = request.form.get("username", "")[:200]
    keys = (f"ip:{login.client_address()}", f"user:{username.lower()}")
    if limiter.blocked(*keys):
        return render_template("login.html", error="Too many failed attempts. Wait 15 minutes and try again.", next=None), 429
    admin_id = login.authenticate(meter(), username, request.form.get("password", ""))
    if admin_id is None:
        limiter.fail(*keys)
        return render_template("login.html", error="Wrong username or password.", next=login.safe_next(request.form.get("next"))), 401
    limiter.clear(*keys)
    login_user(login.start_session(meter(), admin_id, username))
    return redirect(login.safe_next(request.form.get("next")) or url_for("dashboard.overview"))


@bp.post("/logout")
@login_required
def logout():
    login.end_session(meter())
    return redirect(url_for("dashboard.login"))


# --- pages ------------------------------------------------------------------------------------------


@bp.get("/")
@login_required
def overview():
    period, start, end = period_days()
    span = ("day BETWEEN ? AND ?", (start.isoformat(), end.isoformat()))
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
        "overview.html", periods=PERIODS, period=period, start=start, end=end, total=totals(*span),
        chart=bar_chart(daily_points(start, end)), top_users=top_users, top_models=top_models, sources=sources,
        banner=resolver_banner(),
    )


@bp.get("/users")
@login_required
def users():
    period, start, end = period_days()
    search = request.args.get("q", "").strip()[:200]
    sort = request.args.get("sort", "cost")
    order = {"cost": "cost DESC", "name": "lower(coalesce(u.name, u.email, u.id))", "answers": "answers DESC", "seen": "u.last_seen DESC"}.get(sort, "cost DESC")
    like = f"%{search}%"
    rows = meter().db.query(
        f"""SELECT u.id, u.name, u.email, u.role, u.last_seen, coalesce(sum(d.cost_nano), 0) AS cost,
                   coalesce(sum(d.answers), 0) AS answers
            FROM users u LEFT JOIN usage_daily d ON d.user_id = u.id AND d.day BETWEEN ? AND ?
            WHERE (? = '' OR u.name LIKE ? OR u.email LIKE ? OR u.id = ?)
            GROUP BY u.id ORDER BY {order} LIMIT 500""",
        (start.isoformat(), end.isoformat(), search, like, like, search),
    )
    return render_template("users.html", periods=PERIODS, period=period, start=start, end=end, users=rows, q=search, sort=sort)


@bp.get("/users/<user_id>")
@login_required
def user(user_id):
    period, start, end = period_days()
    m = meter()
    person = m.db.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
    if person is None:
        abort(404)
    span = (start.isoformat(), end.isoformat())
    models = m.db.query(
        """SELECT model, sum(answers) AS answers, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion, sum(cost_nano) AS cost
           FROM usage_daily WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC""",
        (user_id, *span),
    )
    latest = m.db.query("SELECT * FROM events WHERE user_id = ? ORDER BY ts DESC, id DESC LIMIT 25", (user_id,))
    groups = m.db.query("SELECT g.id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ?", (user_id,))
    return render_template(
        "user.html", periods=PERIODS, period=period, start=start, end=end, person=person, models=models, latest=latest, groups=groups,
        total=totals("user_id = ? AND day BETWEEN ? AND ?", (user_id, *span)),
        chart=bar_chart(daily_points(start, end, "user_id = ?", (user_id,))),
        states=m.budgets.states(m.db.query, user_id), balance=m.budgets.balance(m.db.query, user_id),
    )


@bp.get("/models")
@login_required
def models():
    period, start, end = period_days()
    rows = meter().db.query(
        """SELECT model, sum(answers) AS answers, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
                  sum(cost_nano) AS cost, sum(confirmed_cost_nano) AS confirmed
           FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC""",
        (start.isoformat(), end.isoformat()),
    )
    price_rows = [prices.price_json(r) for r in meter().db.query(
        "SELECT * FROM prices WHERE source = 'admin' OR model IN (SELECT DISTINCT model FROM usage_daily) ORDER BY model, source")]
    return render_template("models.html", periods=PERIODS, period=period, start=start, end=end, rows=rows, prices=price_rows,
                           tested=getattr(current_app, "model_test_results", None))


@bp.post("/models/prices")
@login_required
def set_price():
    model = request.form.get("model", "").strip()
    if not model or len(model) > 512:
        raise BadInput("model id must be 1 to 512 characters")
    fields = {k: request.form.get(k) or None for k in ("prompt_usd_per_mtok", "completion_usd_per_mtok")}
    price = prices.parse_admin_price(fields)
    prices.set_admin_price(meter(), model, price, current_user.username)
    flash(f"Price for {model} saved.")
    return redirect(url_for("dashboard.models"))


@bp.post("/models/test")
@login_required
def test_models():
    """Send each model the team used a one-token request through OpenRouter; shows which answer."""
    import concurrent.futures
    import time

    from .openrouter import OpenRouter, OpenRouterError

    s = meter().settings
    if not s.OPENROUTER_API_KEY:
        raise BadInput("set OPENROUTER_API_KEY to test models")
    client = OpenRouter(s.OPENROUTER_BASE_URL, s.OPENROUTER_API_KEY, s.OPENROUTER_TIMEOUT_SECONDS)
    names = [r["model"] for r in meter().db.query("SELECT DISTINCT model FROM usage_daily ORDER BY model LIMIT 50")]

    def probe(model):
        started = time.perf_counter()
        try:
            client.chat(model, [{"role": "user", "content": "Say OK."}], max_tokens=1)
            return {"model": model, "ok": True, "ms": round((time.perf_counter() - started) * 1000), "error": None}
        except OpenRouterError as exc:
            return {"model": model, "ok": False, "ms": round((time.perf_counter() - started) * 1000), "error": str(exc)}

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        current_app.model_test_results = list(pool.map(probe, names))
    return redirect(url_for("dashboard.models"))


@bp.get("/events")
@login_required
def events():
    filters = parse_filters(request.args)
    limit = parse_int(request.args, "limit", 50, 1, 500)
    cursor = None
    if request.args.get("cursor"):
        try:
            cursor = decode_cursor(request.args["cursor"])
        except ValueError:
            raise BadInput("that page link is not valid") from None
    rows, following = meter().ledger.events(filters, limit, cursor)
    kept = {k: v for k, v in request.args.items() if k not in ("cursor",) and v}
    return render_template("events.html", rows=rows, next_cursor=encode_cursor(following), args=kept)


CSV_COLUMNS = ("time_utc", "user_id", "user_email", "user_name", "model", "source", "prompt_tokens", "completion_tokens",
               "reasoning_tokens", "cached_tokens", "cost_usd", "cost_source", "lookup_state", "chat_id", "message_id")


def csv_safe(value) -> str:
    """Spreadsheets run cells that start with = + - @ (or tab/CR) as formulas: quote them."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


@bp.get("/events.csv")
@login_required
def events_csv():
    """Every event of the current filter, streamed row by row (constant memory)."""
    where, params = parse_filters(request.args).sql()
    sql = f"""SELECT e.*, u.email AS user_email, u.name AS user_name FROM events e JOIN users u ON u.id = e.user_id
              {"WHERE " + " AND ".join(where) if where else ""} ORDER BY e.ts DESC, e.id DESC"""
    db = meter().db

    def generate():
        buffer = io.StringIO()
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


@bp.get("/budgets")
@login_required
def budgets():
    m = meter()
    rows = m.db.query(
        """SELECT b.*, coalesce(u.name, u.email, g.name) AS scope_name FROM budgets b
           LEFT JOIN users u ON b.scope = 'user' AND u.id = b.scope_id
           LEFT JOIN groups g ON b.scope = 'group' AND g.id = b.scope_id ORDER BY b.id"""
    )
    users_list = m.db.query("SELECT id, coalesce(name, email, id) AS name FROM users ORDER BY lower(coalesce(name, email, id)) LIMIT 2000")
    groups_list = m.db.query("SELECT id, name FROM groups ORDER BY name")
    return render_template("budgets.html", budgets=rows, users=users_list, groups=groups_list)


@bp.post("/budgets")
@login_required
def create_budget():
    form = request.form
    body = {"scope": form.get("scope"), "scope_id": form.get(f"scope_id_{form.get('scope')}") or None, "period": form.get("period"),
            "limit_usd": form.get("limit_usd") or None, "action": form.get("action"), "group_mode": form.get("group_mode")}
    try:
        body["warn_percent"] = int(form.get("warn_percent") or 80)
    except ValueError:
        raise BadInput("warn_percent must be a whole number") from None
    save_budget(meter(), parse_budget(body), current_user.username)
    flash("Budget created.")
    return redirect(url_for("dashboard.budgets"))


@bp.post("/budgets/<int:budget_id>/delete")
@login_required
def remove_budget(budget_id):
    if not delete_budget(meter(), budget_id, current_user.username):
        abort(404)
    flash("Budget deleted.")
    return redirect(url_for("dashboard.budgets"))


@bp.post("/users/<user_id>/topup")
@login_required
def top_up(user_id):
    from .budgets import open_balance

    try:
        amount = usd_to_nano(Decimal(request.form.get("amount_usd", "")))
    except (InvalidOperation, ValueError):
        raise BadInput("amount must be a number such as 10.00") from None
    if amount == 0 or abs(amount) > 10**15:
        raise BadInput("amount must not be zero and at most 1000000")
    if meter().db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (user_id,)) is None:
        abort(404)
    with meter().db.write() as conn:
        open_balance(conn, user_id, amount, current_user.username, request.form.get("note", "")[:500])
        audit.record(conn, current_user.username, "balance.topup", {"user_id": user_id, "amount_nano": amount})
    flash("Balance updated.")
    return redirect(url_for("dashboard.user", user_id=user_id))


@bp.post("/users/<user_id>/erase")
@login_required
def erase(user_id):
    """Forget a user (GDPR) after the admin ticked the confirmation."""
    from .erasure import MODES, erase_user

    mode = request.form.get("mode")
    if mode not in MODES:
        raise BadInput("choose anonymise or delete")
    if request.form.get("confirm") != "yes":
        raise BadInput("tick the box to confirm: erasing cannot be undone")
    result = erase_user(meter(), user_id, mode, current_user.username)
    if result is None:
        abort(404)
    flash(f"User erased ({mode}): {result['answers']} answers {'kept anonymously' if mode == 'anonymise' else 'deleted'}.")
    return redirect(url_for("dashboard.users"))


@bp.get("/status")
@login_required
def status():
    m = meter()
    health = {}
    for report in m.health:
        health.update(report())
    size = sum(os.path.getsize(m.db.path + s) for s in ("", "-wal") if os.path.exists(m.db.path + s))
    return render_template("status.html", health=health, api_key=m.settings.API_KEY, meter_url=request.host_url.rstrip("/"),
                           db_size=size, audit=audit.latest(m.db, 50), openrouter=bool(m.settings.OPENROUTER_API_KEY))
