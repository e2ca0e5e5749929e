"""Budgets and balances: the inlet decision, running spend counters, what is left for a user.

The rules (README "Budgets and balances" has a worked example):

- A budget has a scope (one user, one group, or everyone), a calendar period in METER_TIMEZONE
  (day, week from Monday, month; or none: a one-off allowance), a limit, a warning threshold and
  an action (block, or warn only).
- Group and everyone budgets are per member (each member gets the amount) or shared (the group,
  or the whole team, together).
- A budget set on a user replaces the per-member allowances (of groups and of everyone) for that
  user. Every other applicable budget must still have room: the strictest wins.
- With balances on, a user whose prepaid balance is at or below zero is blocked too.

Spend is counted per user and period by a ledger cost listener, so the check at inlet reads a
handful of rows, never the ledger. Spend not attributed to a user (ledger.UNATTRIBUTED) is no
one's: it counts toward no budget (not even a shared one) and can hold no balance.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from . import audit, clock
from .ledger import UNATTRIBUTED, history_pruned, is_unattributed
from .errors import BadInput
from .money import format_usd, parse_usd_nano

PERIODS = ("day", "week", "month", "none")
CALENDAR_PERIODS = ("day", "week", "month")
PERIOD_WORDS = {
    "en": {"day": "daily", "week": "weekly", "month": "monthly", "none": "total"},
    "de": {"day": "Tages-", "week": "Wochen-", "month": "Monats-", "none": "Gesamt-"},
    "fr": {"day": "quotidien", "week": "hebdomadaire", "month": "mensuel", "none": "total"},
    "es": {"day": "diario", "week": "semanal", "month": "mensual", "none": "total"},
    "zh": {"day": "每日", "week": "每周", "month": "每月", "none": "总"},
}


def period_start(period: str, day: dt.date) -> tuple[str, dt.date | None]:
    """A calendar period's key (its first day) and the day it renews.

    One-off allowances ('none') have no calendar period: their counter is keyed by the time the
    allowance began (:func:`allowance_start`)."""
    if period == "day":
        return day.isoformat(), day + dt.timedelta(days=1)
    if period == "week":
        monday = day - dt.timedelta(days=day.weekday())
        return monday.isoformat(), monday + dt.timedelta(days=7)
    if period == "month":
        first = day.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        return first.isoformat(), following
    raise ValueError(f"{period} is not a calendar period")


def allowance_start(budget: dict) -> str:
    """The spend counter key of a one-off allowance: when it began, in unix ms."""
    return str(budget["since"])


@dataclass
class BudgetState:
    budget: dict
    spent: int
    start: str
    renews: dt.date | None

    @property
    def limit(self) -> int:
        return self.budget["limit_nano"]

    @property
    def remaining(self) -> int:
        return self.limit - self.spent

    @property
    def shared(self) -> bool:
        return self.budget["scope"] != "user" and self.budget["group_mode"] == "shared"

    @property
    def percent(self) -> float:
        return 100.0 * self.spent / self.limit if self.limit else 100.0

    def json(self) -> dict:
        from .money import nano_to_usd

        return {
            "budget_id": self.budget["id"], "scope": self.budget["scope"], "scope_id": self.budget["scope_id"],
            "period": self.budget["period"], "action": self.budget["action"], "shared": self.shared,
            "limit_usd": nano_to_usd(self.limit), "spent_usd": nano_to_usd(self.spent),
            "remaining_usd": nano_to_usd(self.remaining), "percent": round(self.percent, 1),
            "warn_percent": self.budget["warn_percent"], "period_start": self.start,
            "renews": self.renews.isoformat() if self.renews else None,
        }


def parse_budget(body) -> dict:
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    allowed = {"scope", "scope_id", "period", "limit_usd", "warn_percent", "action", "group_mode"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInput(f"unknown field {unknown[0]}")
    scope = body.get("scope")
    if scope not in ("user", "group", "all"):
        raise BadInput("scope must be 'user', 'group' or 'all'")
    scope_id = body.get("scope_id")
    if scope == "all":
        if scope_id not in (None, ""):
            raise BadInput("scope_id must be empty when scope is 'all'")
        scope_id = None
    elif not isinstance(scope_id, str) or not scope_id.strip() or len(scope_id) > 256:
        raise BadInput(f"scope_id must be the {scope}'s id")
    elif scope == "user" and is_unattributed(scope_id):
        raise BadInput("scope_id: spend not attributed to a user cannot have a budget")
    period = body.get("period", "month")
    if period not in PERIODS:
        raise BadInput("period must be 'day', 'week', 'month' or 'none'")
    warn = body.get("warn_percent", 80)
    if isinstance(warn, bool) or not isinstance(warn, int) or not 1 <= warn <= 100:
        raise BadInput("warn_percent must be a whole number from 1 to 100")
    action = body.get("action", "block")
    if action not in ("block", "warn"):
        raise BadInput("action must be 'block' or 'warn'")
    mode = body.get("group_mode", "per_member")
    if mode not in ("per_member", "shared"):
        raise BadInput("group_mode must be 'per_member' or 'shared'")
    if scope == "user":
        mode = "per_member"
    return {"scope": scope, "scope_id": scope_id, "period": period, "limit_nano": parse_usd_nano("limit_usd", body.get("limit_usd")),
            "warn_percent": warn, "action": action, "group_mode": mode}



class Budgets:
    def __init__(self, meter):
        self.meter = meter
        self.zone = zoneinfo.ZoneInfo(meter.settings.METER_TIMEZONE)
        self.alerts = None  # set when METER_ALERT_WEBHOOK_URL is: see alerts.py

    def local_day(self, ts_ms: int) -> dt.date:
        return dt.datetime.fromtimestamp(ts_ms / 1000, tz=self.zone).date()

    # --- counters (ledger cost listener) ---------------------------------------------------------

    def on_cost(self, conn, row: dict, delta: int, new: bool) -> None:
        if not delta or is_unattributed(row["user_id"]):
            return
        self._add_spend(conn, row["user_id"], self.local_day(row["ts"]), delta, CALENDAR_PERIODS)
        # every one-off allowance that had begun when the answer was given counts it (one statement:
        # this runs for every answer, inside the writer's lock)
        conn.execute(
            """INSERT INTO spend (user_id, period, start, cost_nano)
               SELECT ?, 'none', CAST(since AS TEXT), ? FROM budgets WHERE period = 'none' AND since <= ? GROUP BY since
               ON CONFLICT (user_id, period, start) DO UPDATE SET cost_nano = cost_nano + excluded.cost_nano""",
            (row["user_id"], delta, row["ts"]),
        )
        if new and self.meter.settings.METER_BALANCES_ENABLED:
            # an answer whose inlet the meter missed (it was down) starts the balance itself
            start_balance(conn, row["user_id"], self.meter.settings.METER_INITIAL_BALANCE, after_event=row["id"] - 1)
        conn.execute("UPDATE balances SET spent_nano = spent_nano + ? WHERE user_id = ? AND after_event < ?", (delta, row["user_id"], row["id"]))
        if self.alerts is not None:
            self.alerts.check(conn, row["user_id"], self.states(_rows(conn), row["user_id"], row["ts"]))

    def _add_spend(self, conn, user_id: str, day: dt.date, delta: int, periods) -> None:
        rows = [(user_id, period, period_start(period, day)[0], delta) for period in periods]
        conn.execute(  # one statement for all periods: this runs for every answer, inside the writer's lock
            f"""INSERT INTO spend (user_id, period, start, cost_nano) VALUES {", ".join(["(?, ?, ?, ?)"] * len(rows))}
                ON CONFLICT (user_id, period, start) DO UPDATE SET cost_nano = cost_nano + excluded.cost_nano""",
            [value for row in rows for value in row],
        )

    def rebuild_spend(self, conn) -> None:
        """Inside a write: recompute the day, week and month counters from the events, after a time
        zone change moved the days. One-off allowances have no days; pruned history stays."""
        if history_pruned(conn):
            return
        conn.execute("DELETE FROM spend WHERE period != 'none'")
        for row in conn.execute("SELECT user_id, ts, cost_nano FROM events WHERE cost_nano != 0 AND user_id != ?", (UNATTRIBUTED,)).fetchall():
            self._add_spend(conn, row["user_id"], self.local_day(row["ts"]), row["cost_nano"], CALENDAR_PERIODS)

    # --- what applies to a user --------------------------------------------------------------------

    def states(self, query, user_id: str, at_ms: int | None = None) -> list[BudgetState]:
        """Every budget that applies to the user, with what is spent of it in its current period."""
        if is_unattributed(user_id):
            return []
        at_ms = clock.now_ms() if at_ms is None else at_ms
        groups = [r["group_id"] for r in query("SELECT group_id FROM group_members WHERE user_id = ?", (user_id,))]
        marks = ",".join("?" * len(groups))
        budgets = query(
            f"""SELECT * FROM budgets WHERE (scope = 'user' AND scope_id = ?) OR scope = 'all'
                {f"OR (scope = 'group' AND scope_id IN ({marks}))" if groups else ""} ORDER BY id""",
            (user_id, *groups),
        )
        if any(b["scope"] == "user" for b in budgets):  # the user's own budget replaces allowances
            budgets = [b for b in budgets if b["scope"] == "user" or b["group_mode"] == "shared"]
        day = self.local_day(at_ms)
        states = []
        for budget in budgets:
            if budget["period"] == "none":
                start, renews = allowance_start(budget), None
            else:
                start, renews = period_start(budget["period"], day)
            if budget["scope"] == "user" or budget["group_mode"] == "per_member":
                row = query("SELECT cost_nano FROM spend WHERE user_id = ? AND period = ? AND start = ?", (user_id, budget["period"], start))
            elif budget["scope"] == "group":
                row = query(
                    """SELECT coalesce(sum(s.cost_nano), 0) AS cost_nano FROM group_members m
                       JOIN spend s ON s.user_id = m.user_id AND s.period = ? AND s.start = ? WHERE m.group_id = ?""",
                    (budget["period"], start, budget["scope_id"]),
                )
            else:
                row = query("SELECT coalesce(sum(cost_nano), 0) AS cost_nano FROM spend WHERE period = ? AND start = ?", (budget["period"], start))
            states.append(BudgetState(budget, row[0]["cost_nano"] if row else 0, start, renews))
        return states

    def balance(self, query, user_id: str) -> int | None:
        """Credit left in nano-USD, or None when the user has no balance."""
        row = query(
            """SELECT b.spent_nano, (SELECT coalesce(sum(amount_nano), 0) FROM balance_entries e WHERE e.user_id = b.user_id) AS credit
               FROM balances b WHERE b.user_id = ?""",
            (user_id,),
        )
        return row[0]["credit"] - row[0]["spent_nano"] if row else None

    def ensure_balance(self, user_id: str) -> None:
        """With balances on, a user seen for the first time starts with METER_INITIAL_BALANCE."""
        if self.meter.db.query_one("SELECT 1 AS x FROM balances WHERE user_id = ?", (user_id,)):
            return  # the common case, without taking the writer
        with self.meter.db.write() as conn:
            start_balance(conn, user_id, self.meter.settings.METER_INITIAL_BALANCE)

    # --- inlet ---------------------------------------------------------------------------------------

    def inlet_policy(self, parsed: dict) -> tuple[bool, str | None]:
        """(allow, message). The message names only the user's own figures."""
        settings = self.meter.settings
        user_id = parsed["user"].id
        query = self.meter.db.query
        blocking = [s for s in self.states(query, user_id) if s.budget["action"] == "block" and s.remaining <= settings.METER_BUDGET_RESERVE_USD]
        if blocking:
            # of several exhausted budgets, name the one that keeps the user out longest
            worst = max(blocking, key=lambda s: s.renews or dt.date.max)
            return False, self.block_message(worst)
        if settings.METER_BALANCES_ENABLED:
            self.ensure_balance(user_id)
            left = self.balance(query, user_id)
            if left is not None and left <= 0:
                return False, f"Your prepaid balance is used up ({format_usd(left, 2)} left). Please ask your administrator for a top-up."
        return True, None

    def block_message(self, state: BudgetState) -> str:
        settings = self.meter.settings
        if state.shared:
            whose = "Your group's" if state.budget["scope"] == "group" else "The team's"
            if state.renews is None:
                return f"{whose} one-off allowance of {format_usd(state.limit, 2)} is used up."
            renews = f"{state.renews.day} {state.renews.strftime('%B')}"
            return f"{whose} {PERIOD_WORDS['en'][state.budget['period']]} budget of {format_usd(state.limit, 2)} is used up. It renews on {renews}."
        if state.renews is None:
            return settings.METER_ALLOWANCE_BLOCK_MESSAGE.format(spent=format_usd(state.spent, 2), limit=format_usd(state.limit, 2))
        return settings.METER_BLOCK_MESSAGE.format(
            spent=format_usd(state.spent, 2), limit=format_usd(state.limit, 2),
            period=PERIOD_WORDS["en"][state.budget["period"]], renews=f"{state.renews.day} {state.renews.strftime('%B')}",
        )


def _rows(conn):
    return lambda sql, params=(): conn.execute(sql, params).fetchall()


def _balance_row(conn, user_id: str, after_event: int | None):
    """A balance deducts every answer recorded after it began (event ids above ``after_event``),
    whatever time the answer carries: Open WebUI stamps answers in whole seconds, so a first
    answer can bear a time just before the millisecond its balance began."""
    if after_event is None:
        after_event = conn.execute("SELECT coalesce(max(id), 0) AS id FROM events").fetchall()[0]["id"]
    return conn.execute(
        "INSERT INTO balances (user_id, since, after_event) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
        (user_id, clock.now_ms(), after_event),
    ).fetchall()


def start_balance(conn, user_id: str, initial_nano: int, after_event: int | None = None) -> bool:
    """Start a user's balance with the initial credit, unless it exists; inside a write
    transaction, so the check and the grant are one step (two first requests grant once)."""
    started = _balance_row(conn, user_id, after_event)
    if started and initial_nano:
        conn.execute(
            "INSERT INTO balance_entries (user_id, ts, amount_nano, actor, note) VALUES (?, ?, ?, 'system', 'initial balance')",
            (user_id, clock.now_ms(), initial_nano),
        )
    return bool(started)


def open_balance(conn, user_id: str, amount_nano: int, actor: str, note: str) -> None:
    """Start a user's balance (if not started) and credit it; inside a write transaction."""
    if is_unattributed(user_id):
        raise BadInput("spend not attributed to a user cannot have a balance")
    _balance_row(conn, user_id, None)
    if amount_nano:
        conn.execute(
            "INSERT INTO balance_entries (user_id, ts, amount_nano, actor, note) VALUES (?, ?, ?, ?, ?)",
            (user_id, clock.now_ms(), amount_nano, actor, note),
        )


def top_up(meter, user_id: str, amount_nano: int, actor: str, note: str) -> bool:
    """Credit (or, negative, debit) a known user's balance, audited; False for an unknown user."""
    if amount_nano == 0:
        raise BadInput("amount_usd must not be zero")
    if not isinstance(note, str) or len(note) > 500:
        raise BadInput("note must be a string of at most 500 characters")
    with meter.db.write() as conn:
        if not conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchall():
            return False
        open_balance(conn, user_id, amount_nano, actor, note)
        audit.record(conn, actor, "balance.topup", {"user_id": user_id, "amount_nano": amount_nano})
    return True


# --- changing budgets (admin API and dashboard) -------------------------------------------------------


def save_budget(meter, budget: dict, actor: str, budget_id: int | None = None) -> dict | None:
    """Create (no id) or replace a budget, audited; the stored row, or None for an unknown id."""
    now = clock.now_ms()
    values = budget | {"now": now, "id": budget_id, "since": now if budget["period"] == "none" else None}
    with meter.db.write() as conn:
        if budget_id is None:
            rows = conn.execute(
                """INSERT INTO budgets (scope, scope_id, period, limit_nano, warn_percent, action, group_mode, created, updated, since)
                   VALUES (:scope, :scope_id, :period, :limit_nano, :warn_percent, :action, :group_mode, :now, :now, :since) RETURNING *""",
                values,
            ).fetchall()
        else:
            # a one-off allowance that stays one-off keeps counting from when it began
            rows = conn.execute(
                """UPDATE budgets SET scope = :scope, scope_id = :scope_id, period = :period, limit_nano = :limit_nano,
                       warn_percent = :warn_percent, action = :action, group_mode = :group_mode, updated = :now,
                       since = CASE WHEN :since IS NULL THEN NULL ELSE coalesce(since, :since) END
                   WHERE id = :id RETURNING *""",
                values,
            ).fetchall()
        if not rows:
            return None
        follow_allowances(conn)
        audit.record(conn, actor, "budget.create" if budget_id is None else "budget.update", {"budget_id": rows[0]["id"], **budget})
        return rows[0]


def follow_allowances(conn) -> None:
    """Keep one spend counter per one-off allowance start: a new start counts the answers given
    since then (only ones stamped up to a few minutes ahead can exist); a start no allowance
    uses any more goes."""
    conn.execute(
        """INSERT INTO spend (user_id, period, start, cost_nano)
           SELECT e.user_id, 'none', CAST(b.since AS TEXT), sum(e.cost_nano)
           FROM (SELECT DISTINCT since FROM budgets WHERE period = 'none') b JOIN events e ON e.ts >= b.since
           WHERE NOT EXISTS (SELECT 1 FROM spend s WHERE s.period = 'none' AND s.start = CAST(b.since AS TEXT))
           GROUP BY e.user_id, b.since"""
    )
    conn.execute("DELETE FROM spend WHERE period = 'none' AND start NOT IN (SELECT CAST(since AS TEXT) FROM budgets WHERE period = 'none')")


def delete_budget(meter, budget_id: int, actor: str) -> bool:
    with meter.db.write() as conn:
        if not conn.execute("DELETE FROM budgets WHERE id = ? RETURNING id", (budget_id,)).fetchall():
            return False
        follow_allowances(conn)
        audit.record(conn, actor, "budget.delete", {"budget_id": budget_id})
        return True
