"""Import an OWUI-Metering database (its ``data.db``): its users and activities become users and
answers here. ``owui-meter import-owui-metering PATH [--dry-run]``.

What OWUI-Metering stores (checked against its schema): ``users (id, name, email, role)`` and
``activities (id, timestamp, user_id, model, prompt_token, completion_token, reasoning_token, cost,
cached_tokens, …)``; newer versions add columns (``provider``, ``reason``, ``chat_id``, ``source``),
which are read when present and not required.

- **Time.** ``activities.timestamp`` is Unix seconds (OWUI-Metering compares it with
  ``Date.getTime() / 1000`` and formats it with ``datetime(timestamp, 'unixepoch')``). A value
  that cannot be seconds from 2001-09-09 up to tomorrow (milliseconds, text, NULL) refuses the
  whole import with a message naming the rows: nothing is guessed and nothing is imported.
- **Idempotent.** An activity's id is its answer's key, so importing twice changes nothing. It is
  also the Open WebUI message id that the old filter posted to ``/api/v1/metering/record`` and the
  new plugin sends, so an answer both systems saw is counted once.
- **Cost.** The REAL dollars become exact nano-dollars (through ``str``: 9.15e-06 is 9150), with
  cost source ``inline``.
- **Who.** An activity belongs to its user when that user is known: in OWUI-Metering's users table
  (every user its filter reported, and every trace user it could look up in Open WebUI) or already
  in this meter. Otherwise (above all the rows its OTLP receiver stored with user ``nouserid``
  when the trace named no user) the spend is imported as **not attributed to a user**: the
  ledger's reserved row :data:`owui_meter.ledger.UNATTRIBUTED`, shown as "Not attributed to a
  user", which counts in every total but has no budget, balance, self-service link or statement
  (see ``ledger.py``). ``nouserid`` never becomes a user.
- **Source.** Rows from the OTLP receiver (``source = 'otlp'``, or user ``nouserid``) are
  generations OpenRouter traced, web chat or not: they are counted as ``api``. A row marked
  ``api`` stays ``api``; the rest are web chats (``ui``), which is all the old filter saw.
- **Skipped**, counted with the reason: activities already in the ledger, without a cost, with a
  negative or non-numeric cost, or with a model name or user id too long for the ledger.
- **Traces after the switch.** A chat that OpenRouter Broadcast traced to OWUI-Metering while
  owui-meter's plugin already recorded it has two rows with different keys (the trace's id, the
  message id). ``--traces-before WHEN`` (when the plugin went live) leaves out the trace rows from
  then on, so such a chat counts once; what those traces alone saw (task calls, other apps) stays
  in reconciliation's unattributed remainder.

:func:`plan` reads both databases and decides everything; the dry run prints the plan, the import
records it, so the dry run's figures are what the import stores.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import apsw

from . import clock
from .errors import BadInput
from .ingest import MAX_ID
from .ledger import UNATTRIBUTED_LABEL, NewEvent, UserInfo, is_unattributed, unattributed_user
from .money import NANO, usd_to_nano

NO_USER = "nouserid"  # OWUI-Metering's user id for a trace without a user
MIN_SECONDS = 1_000_000_000  # 2001-09-09: anything earlier is not a time this data can have
MAX_MODEL = 512
REQUIRED = ("id", "timestamp", "user_id", "model", "prompt_token", "completion_token", "cost")
OPTIONAL = ("reasoning_token", "cached_tokens", "chat_id", "source")
BATCH = 500  # answers per write transaction
SHOWN_BAD_ROWS = 5
TRACES_AFTER = "traced at or after --traces-before"


@dataclass
class Plan:
    """What an import would do: the answers to record, the users new here, what is skipped and why."""

    users_in_source: int = 0
    activities_in_source: int = 0
    events: list[NewEvent] = field(default_factory=list)
    new_users: dict[str, UserInfo] = field(default_factory=dict)  # users the meter does not know yet
    skipped: Counter = field(default_factory=Counter)  # reason -> activities
    skipped_example: dict[str, str] = field(default_factory=dict)  # reason -> first activity id
    labels: dict[str, str] = field(default_factory=dict)  # user id -> "name <email>" from OWUI-Metering

    def skip(self, reason: str, activity_id) -> None:
        self.skipped[reason] += 1
        self.skipped_example.setdefault(reason, str(activity_id))


def _read_source(path: str) -> tuple[dict[str, tuple], list[dict]]:
    """OWUI-Metering's users (id -> (name, email, role)) and activities, oldest first."""
    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such file")
    try:
        source = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            columns = {row[1] for row in source.execute("PRAGMA table_info(activities)")}
            missing = [name for name in REQUIRED if name not in columns]
            if missing or not any(source.execute("PRAGMA table_info(users)")):
                raise BadInput(f"{path} is not an OWUI-Metering database: "
                               + (f"activities has no column {missing[0]}" if missing else "it has no users table"))
            wanted = [*REQUIRED, *(name for name in OPTIONAL if name in columns)]
            users = {r[0]: (r[1], r[2], r[3]) for r in source.execute("SELECT id, name, email, role FROM users")}
            cursor = source.execute(f"SELECT {', '.join(wanted)} FROM activities ORDER BY timestamp, id")
            activities = [dict(zip(wanted, row)) for row in cursor]
        finally:
            source.close()
    except apsw.Error as exc:
        raise BadInput(f"{path} is not an OWUI-Metering database: {exc}") from None
    return users, activities


def _check_timestamps(activities: list[dict]) -> None:
    """Refuse the whole import when any timestamp is not Unix seconds."""
    latest = clock.now() + 86400
    bad = [a for a in activities
           if isinstance(a["timestamp"], bool) or not isinstance(a["timestamp"], (int, float))
           or not math.isfinite(a["timestamp"]) or not MIN_SECONDS <= a["timestamp"] <= latest]
    if not bad:
        return
    shown = "; ".join(f"activity {a['id']!r} has timestamp {a['timestamp']!r}" for a in bad[:SHOWN_BAD_ROWS])
    more = f" (and {len(bad) - SHOWN_BAD_ROWS} more)" if len(bad) > SHOWN_BAD_ROWS else ""
    raise BadInput(
        f"OWUI-Metering stores activities.timestamp in Unix seconds, but {len(bad)} of them are not "
        f"(expected a number between {MIN_SECONDS} and {int(latest)}, i.e. {_day(MIN_SECONDS)} to {_day(latest)}): "
        f"{shown}{more}. Nothing was imported."
    )


def _day(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).date().isoformat()


def _tokens(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return max(0, int(value))


def _cost_nano(value) -> int | None:
    """Nano-USD of a cost cell, or None when it is not a usable cost."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return usd_to_nano(float(value))


def plan(path: str, query=None, traces_before_ms: int | None = None) -> Plan:
    """Everything the import of ``path`` would do. ``query(sql, params) -> rows as dicts`` reads the
    meter's database (None: there is none yet, so everything is new). With ``traces_before_ms``,
    rows from OWUI-Metering's OTLP receiver from then on are left out (see ``--traces-before``)."""
    users, activities = _read_source(path)
    _check_timestamps(activities)
    known_users = {r["id"] for r in query("SELECT id FROM users", ())} if query else set()
    known_keys = set()
    if query:
        keys = [str(a["id"]) for a in activities]
        for start in range(0, len(keys), BATCH):
            chunk = keys[start:start + BATCH]
            known_keys.update(r["key"] for r in query(f"SELECT key FROM events WHERE key IN ({','.join('?' * len(chunk))})", chunk))
    result = Plan(users_in_source=len(users), activities_in_source=len(activities))
    for user_id, (name, email, role) in users.items():
        result.labels[user_id] = f"{name or user_id} <{email}>" if email else (name or user_id)
        if user_id not in known_users and user_id != NO_USER and not is_unattributed(user_id) and len(user_id) <= MAX_ID:
            result.new_users[user_id] = UserInfo(user_id, email=email, name=name, role=role)
    for a in activities:
        key = "" if a["id"] is None else str(a["id"])
        user_id = a["user_id"]
        if not key:
            result.skip("no id", "(none)")
            continue
        if key in known_keys:
            result.skip("already in the meter", key)
            continue
        if a["cost"] is None:
            result.skip("no cost", key)
            continue
        cost = _cost_nano(a["cost"])
        if cost is None:
            result.skip("cost is not a non-negative number", key)
            continue
        if len(a["model"] or "") > MAX_MODEL:
            result.skip(f"model name longer than {MAX_MODEL} characters", key)
            continue
        if isinstance(user_id, str) and len(user_id) > MAX_ID:
            result.skip(f"user id longer than {MAX_ID} characters", key)
            continue
        from_trace = a.get("source") == "otlp" or user_id == NO_USER
        if from_trace and traces_before_ms is not None and a["timestamp"] * 1000 >= traces_before_ms:
            result.skip(TRACES_AFTER, key)
            continue
        if user_id in result.new_users:
            user = result.new_users[user_id]
        elif user_id in known_users and not is_unattributed(user_id):
            user = UserInfo(user_id)  # the meter's own name and email for them stay as they are
        else:
            user = unattributed_user()
        result.events.append(NewEvent(
            key=key,
            user=user,
            model=a["model"] or "unknown",
            ts=int(round(a["timestamp"] * 1000)),
            source="api" if from_trace or a.get("source") == "api" else "ui",
            chat_id=a.get("chat_id") or None,
            prompt_tokens=_tokens(a["prompt_token"]),
            completion_tokens=_tokens(a["completion_token"]),
            reasoning_tokens=_tokens(a.get("reasoning_token")),
            cached_tokens=_tokens(a.get("cached_tokens")),
            inline_cost_nano=cost,
        ))
    return result


def figures(events: list[NewEvent]) -> dict:
    """Answers, cost, time range and per-user totals of ``events``: what the import adds."""
    per_user: dict[str, dict] = {}
    for e in events:
        row = per_user.setdefault(e.user.id, {"user_id": e.user.id, "answers": 0, "cost_nano": 0})
        row["answers"] += 1
        row["cost_nano"] += e.inline_cost_nano
    nobody = [e for e in events if is_unattributed(e.user.id)]
    return {
        "answers": len(events),
        "attributed_answers": len(events) - len(nobody),
        "unattributed_answers": len(nobody),
        "users_with_answers": len([u for u in per_user if not is_unattributed(u)]),
        "cost_nano": sum(e.inline_cost_nano for e in events),
        "unattributed_cost_nano": sum(e.inline_cost_nano for e in nobody),
        "first_ms": min((e.ts for e in events), default=None),
        "last_ms": max((e.ts for e in events), default=None),
        "per_user": sorted(per_user.values(), key=lambda r: (-r["cost_nano"], r["user_id"])),
    }


def run(meter, path: str, traces_before_ms: int | None = None) -> tuple[Plan, list[NewEvent]]:
    """Import ``path`` into the meter; the plan and the answers actually added."""
    todo = plan(path, meter.db.query, traces_before_ms)
    added = []
    for start in range(0, len(todo.events), BATCH):
        batch = todo.events[start:start + BATCH]
        for event, recorded in zip(batch, meter.ledger.record_many(batch)):
            if recorded.duplicate:  # recorded since the plan was made (the meter is running)
                todo.skip("already in the meter", event.key)
            else:
                added.append(event)
    seen: dict[str, list[int]] = {}
    for event in todo.events:
        seen.setdefault(event.user.id, []).append(event.ts)
    with meter.db.write() as conn:
        for user in todo.new_users.values():
            # new users carry their OWUI-Metering history's first and last answer (0: never)
            times = seen.get(user.id, [0])
            conn.execute(
                """INSERT INTO users (id, email, name, role, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen""",
                (user.id, user.email, user.name, user.role, min(times), max(times)),
            )
    return todo, added


def usd(nano: int) -> str:
    """Exact dollars, to the nano-dollar, as the ledger holds them."""
    return f"${Decimal(nano) / NANO:.9f}"


def describe(todo: Plan, events: list[NewEvent], *, dry_run: bool) -> str:
    """The report printed by the command: the same lines for the dry run and the import."""
    f = figures(events)
    verb = "would import" if dry_run else "imported"
    lines = [
        "DRY RUN: nothing was changed." if dry_run else "Import done.",
        f"source: {todo.users_in_source} users, {todo.activities_in_source} activities",
        f"{verb} users: {len(todo.new_users)} new to the meter",
        f"{verb} answers: {f['answers']} ({f['attributed_answers']} by {f['users_with_answers']} users, "
        f"{f['unattributed_answers']} not attributed to a user)",
    ]
    if f["answers"]:
        lines.append(f"date range: {clock.ms_to_iso(f['first_ms'])} to {clock.ms_to_iso(f['last_ms'])}")
    lines.append(f"total cost: {usd(f['cost_nano'])} ({usd(f['unattributed_cost_nano'])} of it not attributed to a user)")
    if f["per_user"]:
        lines.append("by user:")
    for row in f["per_user"]:
        label = UNATTRIBUTED_LABEL if is_unattributed(row["user_id"]) else todo.labels.get(row["user_id"], row["user_id"])
        lines.append(f"  {label}: {row['answers']} answers, {usd(row['cost_nano'])}")
    lines.append(f"skipped: {sum(todo.skipped.values())}")
    for reason, count in sorted(todo.skipped.items()):
        lines.append(f"  {reason}: {count} (e.g. activity {todo.skipped_example[reason]!r})")
    return "\n".join(lines)
