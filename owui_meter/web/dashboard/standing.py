"""Where each budget stands now: ok, warning or blocked, for the overview, Budgets, user pages and /me.

The inlet decides with :meth:`owui_meter.budgets.Budgets.states`; these helpers read the same
spend counters, in bulk for every budget at once, and name a state the way the inlet acts on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ... import clock
from ...budgets import PERIOD_WORDS, BudgetState, period_start
from ...ledger import UNATTRIBUTED

ORDER = {"blocked": 0, "warning": 1, "ok": 2}


def standing(state: BudgetState, reserve_nano: int) -> str:
    """'blocked' when the inlet refuses (a blocking budget with no room), 'warning' at or past the
    budget's threshold, else 'ok'."""
    if state.budget["action"] == "block" and state.remaining <= reserve_nano:
        return "blocked"
    if state.percent >= state.budget["warn_percent"]:
        return "warning"
    return "ok"


def day_month(day) -> str:
    return f"{day.day} {day:%B}"


def badge(state: BudgetState, word: str) -> str:
    """"Blocked until 1 December", "81% of monthly budget used"."""
    if word == "blocked":
        return f"Blocked until {day_month(state.renews)}" if state.renews else "Blocked: the one-off allowance is used up"
    return f"{int(state.percent)}% of {PERIOD_WORDS['en'][state.budget['period']]} budget used"


@dataclass
class Standing:
    """One budget as it applies to one user (or to a shared group or the team)."""

    state: BudgetState
    word: str  # ok, warning, blocked
    user_id: str | None = None
    name: str | None = None

    @property
    def badge(self) -> str:
        return badge(self.state, self.word)

    @property
    def description(self) -> str:
        return describe(self.state.budget)


def worst(standings: list[Standing]) -> Standing | None:
    """The standing to show first: blocked before warning before ok, then the fullest."""
    return min(standings, key=lambda s: (ORDER[s.word], -s.state.percent), default=None)


def for_user(meter, user_id: str, *, personal_only: bool = False) -> list[Standing]:
    """Every budget that applies to the user, each with its state (the inlet's own figures)."""
    reserve = meter.settings.METER_BUDGET_RESERVE_USD
    states = meter.budgets.states(meter.db.query, user_id)
    return [Standing(s, standing(s, reserve), user_id) for s in states if not (personal_only and s.shared)]


def describe(budget: dict) -> str:
    period = PERIOD_WORDS["en"][budget["period"]]
    if budget["scope"] == "user":
        return f"own {period} budget"
    whose = f"group {budget.get('scope_name') or budget['scope_id']}" if budget["scope"] == "group" else "everyone"
    kind = "shared" if budget["group_mode"] == "shared" else "each member"
    return f"{whose} ({kind}), {period}"


class TeamStanding:
    """Every budget's state now, read in bulk: a few queries whatever the number of users."""

    def __init__(self, meter):
        db = meter.db
        reserve = meter.settings.METER_BUDGET_RESERVE_USD
        self.budgets = db.query(
            """SELECT b.*, coalesce(u.name, u.email, g.name) AS scope_name FROM budgets b
               LEFT JOIN users u ON b.scope = 'user' AND u.id = b.scope_id
               LEFT JOIN groups g ON b.scope = 'group' AND g.id = b.scope_id ORDER BY b.id"""
        )
        self.rows: dict[int, dict] = {}  # budget id -> what the Budgets page shows
        self.people: dict[str, list[Standing]] = {}  # user id -> standings that are not ok
        self.balances_out: list[dict] = []
        if meter.settings.METER_BALANCES_ENABLED:
            self.balances_out = db.query(
                """SELECT b.user_id, coalesce(u.name, u.email, b.user_id) AS name,
                          (SELECT coalesce(sum(amount_nano), 0) FROM balance_entries e WHERE e.user_id = b.user_id) - b.spent_nano AS balance
                   FROM balances b LEFT JOIN users u ON u.id = b.user_id WHERE balance <= 0 ORDER BY balance"""
            )
        if not self.budgets:
            return
        today = meter.budgets.local_day(clock.now_ms())
        spend, starts = {}, {}
        for period in {b["period"] for b in self.budgets}:
            start, renews = period_start(period, today)
            starts[period] = (start, renews)
            spend[period] = {r["user_id"]: r["cost_nano"] for r in db.query(
                "SELECT user_id, cost_nano FROM spend WHERE period = ? AND start = ?", (period, start))}
        own = {b["scope_id"] for b in self.budgets if b["scope"] == "user"}
        members: dict[str, list[str]] = {}
        for r in db.query("SELECT group_id, user_id FROM group_members"):
            members.setdefault(r["group_id"], []).append(r["user_id"])
        everyone = None
        for b in self.budgets:
            start, renews = starts[b["period"]]
            counters = spend[b["period"]]
            if b["scope"] == "user":
                users = [b["scope_id"]]
            elif b["group_mode"] == "shared":
                users = members.get(b["scope_id"], []) if b["scope"] == "group" else list(counters)
                state = BudgetState(b, sum(counters.get(u, 0) for u in users if u != UNATTRIBUTED), start, renews)
                self.rows[b["id"]] = {"state": state, "word": standing(state, reserve), "members": None}
                continue
            elif b["scope"] == "group":
                users = [u for u in members.get(b["scope_id"], []) if u not in own]
            else:
                if everyone is None:
                    everyone = [r["id"] for r in db.query("SELECT id FROM users WHERE id != ?", (UNATTRIBUTED,))]
                users = [u for u in everyone if u not in own]
            counts = {"over": 0, "near": 0, "blocked": 0}
            fullest = None
            for user_id in users:
                state = BudgetState(b, counters.get(user_id, 0), start, renews)
                word = standing(state, reserve)
                counts["blocked"] += word == "blocked"
                counts["over" if state.percent >= 100 else "near"] += word != "ok"
                if fullest is None or state.spent > fullest.spent:
                    fullest = state
                if word != "ok":
                    self.people.setdefault(user_id, []).append(Standing(state, word, user_id))
            if b["scope"] == "user":
                self.rows[b["id"]] = {"state": fullest, "word": "ok" if fullest is None else standing(fullest, reserve), "members": None}
            else:
                self.rows[b["id"]] = {"state": fullest, "word": "blocked" if counts["blocked"] else "warning" if counts["over"] + counts["near"] else "ok",
                                      "members": counts | {"total": len(users)}}

    def attention(self, db) -> list[Standing]:
        """Users blocked or past a warning threshold, worst first, with their names; and shared
        budgets in trouble (user_id None)."""
        names = {}
        if self.people:
            ids = list(self.people)
            names = {r["id"]: r["name"] for r in db.query(
                "SELECT id, coalesce(name, email, id) AS name FROM users WHERE id IN (SELECT value FROM json_each(?))",
                (_json(ids),))}
        listed = []
        for user_id, standings in self.people.items():
            first = worst(standings)
            first.name = names.get(user_id, user_id)
            listed.append(first)
        for b in self.budgets:
            row = self.rows.get(b["id"])
            if row and row["members"] is None and b["scope"] != "user" and row["word"] != "ok":
                listed.append(Standing(row["state"], row["word"], None, describe(b)))
        return sorted(listed, key=lambda s: (ORDER[s.word], -s.state.percent, s.name or ""))


def _json(values) -> str:
    return json.dumps(list(values))
