"""The ledger: every answer recorded once, its cost changed only through here, and usage queries.

Events are append-only. The one update is a cost change (a confirmed cost replacing the inline
figure, or an estimate); it goes through :meth:`Ledger.set_cost`, which tells the registered cost
listeners (budget counters) the difference inside the same transaction.

Spend not attributed to a user (a generation whose trace names no known Open WebUI user: imported
from OWUI-Metering's OTLP receiver, or received from OpenRouter Broadcast) is recorded like any
answer, under one reserved user row, :data:`UNATTRIBUTED`, named :data:`UNATTRIBUTED_LABEL`. So
every total, chart, export and reconciliation counts it, and every list of users shows it under
that name without special queries. It is not a person: the ingest endpoints refuse its id, and it
never gets a budget, a balance, a self-service link, a statement of its own or an erasure. Use
:func:`unattributed_user` for an event's ``user`` and :func:`is_unattributed` to test an id.

An answer's charges are kept apart: OpenRouter's (``openrouter_nano``, what GET /key counts) and,
for bring-your-own-key answers, the provider's (``provider_nano``). ``cost_nano``, which every
total, budget and statement uses, is the answer's cost to the team: OpenRouter's charge plus the
provider's, or OpenRouter's alone with METER_BYOK_COST=fee (:meth:`Ledger.team_cost`).
"""

from __future__ import annotations

import base64
import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Callable

from . import audit, clock
from .db import Database, get_meta, set_meta


UNATTRIBUTED = "unattributed"
UNATTRIBUTED_LABEL = "Not attributed to a user"


@dataclass
class UserInfo:
    id: str
    email: str | None = None
    name: str | None = None
    role: str | None = None


def unattributed_user() -> UserInfo:
    """The ``user`` of an event whose spend belongs to no known user."""
    return UserInfo(id=UNATTRIBUTED, name=UNATTRIBUTED_LABEL)


def is_unattributed(user_id: str | None) -> bool:
    return user_id == UNATTRIBUTED


@dataclass
class NewEvent:
    key: str
    user: UserInfo
    model: str
    ts: int  # unix ms
    source: str  # ui | api | task
    base_model: str | None = None
    chat_id: str | None = None
    message_id: str | None = None
    session_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    inline_cost_nano: int | None = None  # OpenRouter's charge as the chat reported it
    byok: bool = False  # paid with the team's own provider key
    inline_provider_nano: int | None = None  # BYOK: the provider's charge as the chat reported it
    generation_ids: list[str] = field(default_factory=list)
    received: int | None = None  # unix ms the meter got it (default: when recorded)
    timestamp_adjusted: bool = False  # the sender's time was implausible; ts is the receive time


def history_pruned(conn) -> bool:
    """True once retention has deleted old events: figures kept per day can no longer be rebuilt."""
    return bool(conn.execute("SELECT 1 FROM meta WHERE key = 'retention.pruned_before'").fetchall())


@dataclass
class Recorded:
    event_id: int
    duplicate: bool
    row: dict
    conflict: str | None = None  # the key names another answer: why it is not the same one


def conflict_with(stored: dict, event: "NewEvent") -> str | None:
    """Why a report under a stored answer's key is not that answer (None: it is the same one).

    A retry repeats user, model and usage. Open WebUI's legacy /api/chat/completed repeats the
    answer without usage: still the same answer. Anything else under the key is someone else's."""
    if stored["user_id"] != event.user.id:
        return "another user"
    if stored["model"] != event.model:
        return "another model"
    has_usage = event.inline_cost_nano is not None or any(
        (event.prompt_tokens, event.completion_tokens, event.reasoning_tokens, event.cached_tokens))
    if has_usage and ((stored["prompt_tokens"], stored["completion_tokens"], stored["inline_cost_nano"])
                      != (event.prompt_tokens, event.completion_tokens, event.inline_cost_nano)):
        return "other usage"
    return None


# (conn, event row after the change, cost delta in nano-USD, new) -> None; runs inside the
# write transaction. ``new`` is True when the event was just recorded (delta = its whole cost),
# False for a later cost change.
CostListener = Callable[[object, dict, int, bool], None]
# (conn, event fields) -> (cost_nano, "estimate") or None when no price is known.
Estimator = Callable[[object, NewEvent], "int | None"]
# (conn, new event) -> Recorded of the event that already bills it, or None to record it; runs
# inside the write transaction before a new key is stored, and may narrow the event to what is
# not billed yet (the pass-through's generations billed on their own, see passthrough.py).
Claim = Callable[[object, NewEvent], "Recorded | None"]


def _confirmed(cost_nano: int, cost_source: str) -> int:
    return cost_nano if cost_source == "generation" else 0


BYOK_COST_KEY = "events.byok_cost"  # the METER_BYOK_COST the stored costs follow


class Ledger:
    def __init__(self, db: Database, timezone: str = "UTC", byok_cost: str = "provider+fee"):
        self.db = db
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.byok_cost = byok_cost
        self.cost_listeners: list[CostListener] = []
        self.estimator: Estimator | None = None
        self.claims: list[Claim] = []

    def team_cost(self, openrouter_nano: int, provider_nano: int) -> int:
        """What an answer costs the team (METER_BYOK_COST): OpenRouter's charge, plus the BYOK
        provider's unless the provider's charges are billed elsewhere."""
        return openrouter_nano + self._provider_in_cost(provider_nano)

    def _provider_in_cost(self, provider_nano: int) -> int:
        return provider_nano if self.byok_cost == "provider+fee" else 0

    # --- users ------------------------------------------------------------------------------

    def _upsert_user(self, conn, user: UserInfo, now: int) -> None:
        conn.execute(
            """
            INSERT INTO users (id, email, name, role, first_seen, last_seen)
            VALUES (:id, :email, :name, :role, :now, :now)
            ON CONFLICT (id) DO UPDATE SET
                email = coalesce(excluded.email, users.email),
                name = coalesce(excluded.name, users.name),
                role = coalesce(excluded.role, users.role),
                last_seen = max(users.last_seen, excluded.last_seen)
            """,
            {"id": user.id, "email": user.email, "name": user.name, "role": user.role, "now": now},
        )

    def see_user(self, user: UserInfo) -> None:
        """Record that a user is chatting (inlet). Skips the write when nothing new is known."""
        now = clock.now_ms()
        row = self.db.query_one("SELECT email, name, role, last_seen FROM users WHERE id = ?", (user.id,))
        if row is not None and now - row["last_seen"] < 60_000 and all(
            new is None or new == row[name] for name, new in (("email", user.email), ("name", user.name), ("role", user.role))
        ):
            return  # seen within the minute, nothing changed: spare the writer
        with self.db.write() as conn:
            self._upsert_user(conn, user, now)

    # --- daily totals -----------------------------------------------------------------------

    def day_of(self, ts_ms: int) -> str:
        """The local date (METER_TIMEZONE) of a unix-ms time."""
        return dt.datetime.fromtimestamp(ts_ms / 1000, tz=self.zone).date().isoformat()

    def _add_daily(self, conn, row: dict, *, answers: int, tokens: bool, cost: int, confirmed: int,
                   provider: int = 0, cache_discount: int = 0) -> None:
        """Add to a day's totals; ``provider`` is the BYOK provider's part of ``cost``."""
        conn.execute(
            """
            INSERT INTO usage_daily (day, user_id, model, source, answers, prompt_tokens,
                completion_tokens, reasoning_tokens, cached_tokens, cost_nano, confirmed_cost_nano,
                provider_cost_nano, cache_discount_nano)
            VALUES (:day, :user_id, :model, :source, :answers, :p, :c, :r, :k, :cost, :confirmed, :provider, :cache)
            ON CONFLICT (day, user_id, model, source) DO UPDATE SET
                answers = answers + excluded.answers,
                prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                completion_tokens = completion_tokens + excluded.completion_tokens,
                reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
                cached_tokens = cached_tokens + excluded.cached_tokens,
                cost_nano = cost_nano + excluded.cost_nano,
                confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano,
                provider_cost_nano = provider_cost_nano + excluded.provider_cost_nano,
                cache_discount_nano = cache_discount_nano + excluded.cache_discount_nano
            """,
            {
                "day": self.day_of(row["ts"]), "user_id": row["user_id"], "model": row["model"],
                "source": row["source"], "answers": answers,
                "p": row["prompt_tokens"] if tokens else 0, "c": row["completion_tokens"] if tokens else 0,
                "r": row["reasoning_tokens"] if tokens else 0, "k": row["cached_tokens"] if tokens else 0,
                "cost": cost, "confirmed": confirmed, "provider": provider, "cache": cache_discount,
            },
        )

    def rebuild_daily(self, conn) -> int:
        """Inside a write: recompute usage_daily from the events (after a time zone change);
        returns events read.

        Only possible while every event is still stored: once retention has pruned events, the
        daily totals are the only record of those days and stay as they are.
        """
        if history_pruned(conn):
            return 0
        conn.execute("DELETE FROM usage_daily")
        count = 0
        for row in conn.execute("SELECT * FROM events").fetchall():
            self._add_daily(conn, row, answers=1, tokens=True, cost=row["cost_nano"],
                            confirmed=_confirmed(row["cost_nano"], row["cost_source"]),
                            provider=self._provider_in_cost(row["provider_nano"]), cache_discount=row["cache_discount_nano"] or 0)
            count += 1
        return count

    # --- events -----------------------------------------------------------------------------

    def record(self, event: NewEvent) -> Recorded:
        """Store one answer. The same key again returns the stored event with duplicate=True."""
        return self.db.submit(lambda conn: self._record(conn, event, clock.now_ms()))

    def record_many(self, events: list[NewEvent]) -> list[Recorded]:
        """Store several answers in one transaction (all or none), each as :meth:`record` would."""
        now = clock.now_ms()
        with self.db.write() as conn:
            return [self._record(conn, event, now) for event in events]

    def record_in(self, conn, event: NewEvent) -> Recorded:
        """:meth:`record` inside the caller's write transaction."""
        return self._record(conn, event, clock.now_ms())

    def _record(self, conn, event: NewEvent, now: int) -> Recorded:
        existing = conn.execute("SELECT * FROM events WHERE key = ?", (event.key,)).fetchall()
        if existing:
            conflict = conflict_with(existing[0], event)
            if conflict:
                audit.record(conn, "plugin", "answer.conflict", {"event_id": existing[0]["id"], "reason": conflict})
            return Recorded(existing[0]["id"], True, existing[0], conflict)
        for claim in self.claims:
            billed = claim(conn, event)
            if billed is not None:
                return billed
        self._upsert_user(conn, event.user, now)
        openrouter, provider = event.inline_cost_nano, event.inline_provider_nano if event.byok else 0
        if event.byok and openrouter is None and provider is not None:
            openrouter = 0  # the provider's charge without OpenRouter's fee: the fee is the unknown part
        if openrouter is not None and provider is not None:
            source = "inline"
        else:
            # nothing inline, or a BYOK fee without the provider's charge: the model's price
            # stands for what is missing (for BYOK that is the provider's charge)
            estimate = self.estimator(conn, event) if self.estimator else None
            if estimate is not None:
                source = "estimate"
                if event.byok:
                    openrouter, provider = openrouter or 0, estimate
                else:
                    openrouter = estimate
            else:
                source = "inline" if openrouter is not None else "pending" if event.generation_ids else "unpriced"
                openrouter, provider = openrouter or 0, provider or 0
        cost = self.team_cost(openrouter, provider)
        row = conn.execute(
            """
            INSERT INTO events (key, ts, received, user_id, model, base_model, chat_id,
                message_id, session_id, source, prompt_tokens, completion_tokens,
                reasoning_tokens, cached_tokens, cost_nano, cost_source, inline_cost_nano,
                lookup_state, openrouter_nano, provider_nano, byok, inline_provider_nano)
            VALUES (:key, :ts, :received, :user_id, :model, :base_model, :chat_id,
                :message_id, :session_id, :source, :prompt_tokens, :completion_tokens,
                :reasoning_tokens, :cached_tokens, :cost_nano, :cost_source, :inline_cost_nano,
                :lookup_state, :openrouter_nano, :provider_nano, :byok, :inline_provider_nano)
            RETURNING *
            """,
            {
                "key": event.key, "ts": event.ts, "received": event.received or now, "user_id": event.user.id,
                "model": event.model, "base_model": event.base_model, "chat_id": event.chat_id,
                "message_id": event.message_id, "session_id": event.session_id,
                "source": event.source, "prompt_tokens": event.prompt_tokens,
                "completion_tokens": event.completion_tokens,
                "reasoning_tokens": event.reasoning_tokens, "cached_tokens": event.cached_tokens,
                "cost_nano": cost, "cost_source": source,
                "inline_cost_nano": event.inline_cost_nano,
                "lookup_state": "pending" if event.generation_ids else "none",
                "openrouter_nano": openrouter, "provider_nano": provider, "byok": int(event.byok),
                "inline_provider_nano": event.inline_provider_nano,
            },
        ).fetchall()[0]
        self._add_daily(conn, row, answers=1, tokens=True, cost=cost, confirmed=_confirmed(cost, source),
                        provider=self._provider_in_cost(provider))
        for gen_id in event.generation_ids:
            conn.execute(
                "INSERT OR IGNORE INTO generations (id, event_id, created, next_try) VALUES (?, ?, ?, ?)",
                (gen_id, row["id"], now, now),
            )
        for listener in self.cost_listeners:
            listener(conn, row, cost, True)
        return Recorded(row["id"], False, row)

    def set_cost(self, conn, event_id: int, openrouter_nano: int, cost_source: str, lookup_state: str | None = None, *,
                 provider_nano: int = 0, byok: bool = False, cancelled: bool | None = None,
                 cache_discount_nano: int | None = None) -> dict:
        """Change an event's charges inside the caller's write transaction: OpenRouter's, and for
        BYOK the provider's; its cost follows (:meth:`team_cost`) and listeners see the delta.
        ``cancelled`` and ``cache_discount_nano`` stay as they are when None."""
        before = conn.execute("SELECT cost_nano, cost_source, provider_nano, cache_discount_nano FROM events WHERE id = ?", (event_id,)).fetchall()[0]
        provider_nano = provider_nano if byok else 0
        cost_nano = self.team_cost(openrouter_nano, provider_nano)
        row = conn.execute(
            """
            UPDATE events SET cost_nano = ?, cost_source = ?, lookup_state = coalesce(?, lookup_state),
                openrouter_nano = ?, provider_nano = ?, byok = ?, cancelled = coalesce(?, cancelled),
                cache_discount_nano = coalesce(?, cache_discount_nano)
            WHERE id = ? RETURNING *
            """,
            (cost_nano, cost_source, lookup_state, openrouter_nano, provider_nano, int(byok),
             None if cancelled is None else int(cancelled), cache_discount_nano, event_id),
        ).fetchall()[0]
        delta = cost_nano - before["cost_nano"]
        confirmed_delta = _confirmed(cost_nano, cost_source) - _confirmed(before["cost_nano"], before["cost_source"])
        provider_delta = self._provider_in_cost(provider_nano) - self._provider_in_cost(before["provider_nano"])
        cache_delta = (row["cache_discount_nano"] or 0) - (before["cache_discount_nano"] or 0)
        if delta or confirmed_delta or provider_delta or cache_delta:
            self._add_daily(conn, row, answers=0, tokens=False, cost=delta, confirmed=confirmed_delta,
                            provider=provider_delta, cache_discount=cache_delta)
        if delta:
            for listener in self.cost_listeners:
                listener(conn, row, delta, False)
        return row

    def follow_byok_cost(self) -> int:
        """After METER_BYOK_COST changed: every BYOK answer's cost, its daily totals and (through
        the listeners) the budget counters move to the new definition. Returns answers changed."""
        key = BYOK_COST_KEY
        stored = get_meta(self.db, key)
        if stored == self.byok_cost:
            return 0
        changed = 0
        with self.db.write() as conn:
            if stored is not None:
                rows = conn.execute("SELECT * FROM events WHERE byok = 1 AND provider_nano != 0").fetchall()
                for before in rows:
                    cost = self.team_cost(before["openrouter_nano"], before["provider_nano"])
                    row = conn.execute("UPDATE events SET cost_nano = ? WHERE id = ? RETURNING *", (cost, before["id"])).fetchall()[0]
                    delta = cost - before["cost_nano"]
                    confirmed = _confirmed(cost, row["cost_source"]) - _confirmed(before["cost_nano"], row["cost_source"])
                    self._add_daily(conn, row, answers=0, tokens=False, cost=delta, confirmed=confirmed,
                                    provider=self._provider_in_cost(row["provider_nano"]) - (row["provider_nano"] if stored == "provider+fee" else 0))
                    for listener in self.cost_listeners:
                        listener(conn, row, delta, False)
                    changed += 1
            set_meta(conn, key, self.byok_cost)
        return changed

    # --- queries ----------------------------------------------------------------------------

    def events(self, filters: "Filters", limit: int, cursor: tuple[int, int] | None) -> tuple[list[dict], tuple[int, int] | None]:
        """Newest first, keyset-paginated on (ts, id)."""
        where, params = filters.sql()
        if cursor is not None:
            where.append("(e.ts < :cursor_ts OR (e.ts = :cursor_ts AND e.id < :cursor_id))")
            params.update(cursor_ts=cursor[0], cursor_id=cursor[1])
        params["limit"] = limit + 1
        rows = self.db.query(
            f"""
            SELECT e.*, u.email AS user_email, u.name AS user_name,
                   (SELECT json_group_array(g.id) FROM generations g WHERE g.event_id = e.id) AS generation_ids
            FROM events e JOIN users u ON u.id = e.user_id
            {"WHERE " + " AND ".join(where) if where else ""}
            ORDER BY e.ts DESC, e.id DESC
            LIMIT :limit
            """,
            params,
        )
        following = None
        if len(rows) > limit:
            rows = rows[:limit]
            following = (rows[-1]["ts"], rows[-1]["id"])
        return rows, following

    def usage(self, filters: "Filters", group_by: str, timezone: str) -> tuple[list[dict], dict]:
        """Totals grouped by user, model, day (in ``timezone``) or source; and the grand total."""
        where, params = filters.sql()
        where_sql = "WHERE " + " AND ".join(where) if where else ""
        sums = """count(*) AS answers, coalesce(sum(e.prompt_tokens), 0) AS prompt_tokens,
                  coalesce(sum(e.completion_tokens), 0) AS completion_tokens,
                  coalesce(sum(e.reasoning_tokens), 0) AS reasoning_tokens,
                  coalesce(sum(e.cost_nano), 0) AS cost_nano,
                  coalesce(sum(CASE WHEN e.cost_source = 'generation' THEN e.cost_nano ELSE 0 END), 0) AS confirmed_cost_nano"""
        total = self.db.query_one(f"SELECT {sums} FROM events e {where_sql}", params)
        if group_by == "user":
            rows = self.db.query(
                f"""SELECT e.user_id AS key, coalesce(u.name, u.email, e.user_id) AS label, {sums}
                    FROM events e JOIN users u ON u.id = e.user_id {where_sql}
                    GROUP BY e.user_id ORDER BY cost_nano DESC, key""",
                params,
            )
        elif group_by in ("model", "source"):
            rows = self.db.query(
                f"""SELECT e.{group_by} AS key, e.{group_by} AS label, {sums}
                    FROM events e {where_sql} GROUP BY e.{group_by} ORDER BY cost_nano DESC, key""",
                params,
            )
        elif group_by == "day":
            rows = self._usage_by_day(where_sql, params, sums, timezone)
        else:
            raise ValueError(group_by)
        return rows, total

    def _usage_by_day(self, where_sql, params, sums, timezone) -> list[dict]:
        # SQLite knows no time zones: sum per quarter hour (every zone's offset is a multiple
        # of 15 minutes), then fold the quarters into local days here.
        quarters = self.db.query(
            f"SELECT e.ts / 900000 AS quarter, {sums} FROM events e {where_sql} GROUP BY quarter ORDER BY quarter",
            params,
        )
        zone = zoneinfo.ZoneInfo(timezone)
        days: dict[str, dict] = {}
        for q in quarters:
            day = dt.datetime.fromtimestamp(q["quarter"] * 900, tz=zone).date().isoformat()
            acc = days.setdefault(day, {"key": day, "label": day} | {k: 0 for k in q if k != "quarter"})
            for k, v in q.items():
                if k != "quarter":
                    acc[k] += v
        return list(days.values())


@dataclass
class Filters:
    """Filters shared by the event list and usage queries. Times are unix ms, ``end`` exclusive."""

    start: int | None = None
    end: int | None = None
    user: str | None = None
    model: str | None = None
    source: str | None = None
    cost_source: str | None = None

    def sql(self) -> tuple[list[str], dict]:
        where, params = [], {}
        if self.start is not None:
            where.append("e.ts >= :start")
            params["start"] = self.start
        if self.end is not None:
            where.append("e.ts < :end")
            params["end"] = self.end
        for name in ("user", "model", "source", "cost_source"):
            value = getattr(self, name)
            if value is not None:
                column = "user_id" if name == "user" else name
                where.append(f"e.{column} = :{name}")
                params[name] = value
        return where, params


USER_ROLLUP_COLUMNS = "user_id, answers, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_nano, confirmed_cost_nano"


def by_months_sql(days: tuple[str, str], columns: str, day_table: str, month_table: str, where: str = "1 = 1",
                  params: tuple = ()) -> tuple[str, tuple]:
    """A query of ``columns`` over the local days ``days`` (ISO, both included) to sum: the whole
    calendar months inside read from ``month_table`` (a row per month), only the ragged ends day by
    day from ``day_table``; ``where`` (with ``params``) narrows every part. A month's or a year's
    totals then read a row per month, not one per day."""
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[1])
    month_first = first if first.day == 1 else (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    month_last = last if (last + dt.timedelta(days=1)).day == 1 else last.replace(day=1) - dt.timedelta(days=1)
    by_day = f"SELECT {columns} FROM {day_table} WHERE {where} AND day BETWEEN ? AND ?"
    if month_first > month_last:  # no whole month inside
        return by_day, (*params, *days)
    return (f"""{by_day} UNION ALL SELECT {columns} FROM {month_table} WHERE {where} AND month BETWEEN ? AND ?
                UNION ALL {by_day}""",
            (*params, days[0], (month_first - dt.timedelta(days=1)).isoformat(), *params, month_first.isoformat()[:7],
             month_last.isoformat()[:7], *params, (month_last + dt.timedelta(days=1)).isoformat(), days[1]))


def user_rows_sql(days: tuple[str, str]) -> tuple[str, tuple]:
    """Every user's usage over ``days`` with usage_day_user's columns, to sum per user: whole months
    from usage_month_user (a row per user and month), the ragged ends from usage_day_user."""
    return by_months_sql(days, USER_ROLLUP_COLUMNS, "usage_day_user", "usage_month_user")


def encode_cursor(cursor: tuple[int, int] | None) -> str | None:
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(f"{cursor[0]}:{cursor[1]}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, int]:
    """Raises ValueError for anything that is not a cursor this meter made."""
    padded = text + "=" * (-len(text) % 4)
    ts, _, event_id = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    ts, event_id = int(ts), int(event_id)
    if not (0 <= ts < 2**62 and 0 <= event_id < 2**62):  # SQLite integers are 64-bit
        raise ValueError("cursor out of range")
    return ts, event_id


def claim_billed_alone(conn, event: NewEvent, key_prefix: str) -> "Recorded | None":
    """For the capture paths (pass-through, Broadcast), which bill a generation no answer claimed
    within their window as an event of its own, keyed ``key_prefix + generation id``: an answer
    naming such generations later is a duplicate of that event when it names nothing else, and is
    otherwise narrowed to the rest (its tokens and inline charges less theirs). None: record it."""
    marks = ", ".join("?" for _ in event.generation_ids)
    billed = conn.execute(
        f"""SELECT e.*, g.id AS gen_id FROM generations g JOIN events e ON e.id = g.event_id
            WHERE g.id IN ({marks}) AND e.key = ? || g.id ORDER BY e.id""",
        (*event.generation_ids, key_prefix),
    ).fetchall()
    if not billed:
        return None
    taken = {row["gen_id"] for row in billed}
    rest = [gen_id for gen_id in event.generation_ids if gen_id not in taken]
    if not rest:
        return Recorded(billed[0]["id"], True, {k: v for k, v in billed[0].items() if k != "gen_id"})
    event.generation_ids = rest
    for name in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens"):
        setattr(event, name, max(0, getattr(event, name) - sum(row[name] for row in billed)))
    if event.inline_cost_nano is not None:
        taken_nano = sum(row["inline_cost_nano"] if row["inline_cost_nano"] is not None else row["cost_nano"] for row in billed)
        event.inline_cost_nano = max(0, event.inline_cost_nano - taken_nano)
    if event.inline_provider_nano is not None:  # BYOK: the provider's charge of those generations too
        event.inline_provider_nano = max(0, event.inline_provider_nano - sum(row["inline_provider_nano"] or 0 for row in billed))
    return None

