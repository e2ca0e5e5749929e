"""Pass-through capture: every generation that goes through ``/openrouter/v1``, billed exactly once.

The web layer (``web/passthrough.py``) forwards Open WebUI's OpenRouter calls and hands each
finished response's *capture* here: generation id, model, streamed or not, tokens, inline cost,
the user and chat id Open WebUI forwarded. Never a prompt or an answer.

Captures go into a bounded in-memory buffer that a background job writes to
``passthrough_generations``; a write that fails (a full disk, a locked database) leaves them in
the buffer to be tried again, so the meter's troubles never touch the user's stream.

**Joining with the plugin.** A generation belongs to at most one event: the ``generations``
table (the resolver's queue) maps each id to its event, and whoever writes it there first owns
it. All of this happens in the one writer, so the orders cannot race:

- the plugin's answer arrives first (its ``generation_ids`` are in ``generations``): the
  pass-through row is marked ``claimed`` and adds nothing;
- the pass-through row arrives first: it waits ``METER_PASSTHROUGH_WINDOW_SECONDS`` for an answer
  to claim it; an answer arriving in time is recorded as usual and the row is then ``claimed``;
- no answer within the window: the row becomes its own event (key ``passthrough:<gen id>``,
  source ``task``/``ui`` with a chat id, ``api`` without), queued for /generation confirmation;
- an answer arriving after that (:meth:`Passthrough.claim`, run by the ledger before it stores a
  new answer): if every generation it names is already billed on its own, it is a duplicate of
  that event; if only some are, it is recorded for the rest, with those generations' tokens and
  cost taken off its own.

Non-streamed calls are the exception: the plugin never sees their generation id, so an answer
without ids claims the one unclaimed generation of the same user, model, token counts and cost
seen within the window (or is a duplicate of it, once billed on its own); and when the answer
arrives first (the capture still in the buffer), the generation goes to it as it is written.

A generation whose request named no user (Open WebUI without ENABLE_FORWARD_USER_INFO_HEADERS)
can only be billed through an answer that claims it; otherwise it is left ``unattributed``, part of
reconciliation's remainder, and counted in ``/healthcheck``.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass

from . import clock
from .errors import BadInput
from .ingest import GENERATION_ID, parse_usage
from .ledger import NewEvent, Recorded, UserInfo, claim_billed_alone
from .workers import Job

log = logging.getLogger("owui_meter.passthrough")

KEY_PREFIX = "passthrough:"  # the key of an event made from one pass-through generation
TASK_PREFIX = "### Task:"  # how Open WebUI's title, tag and follow-up prompts begin
BUFFER_LIMIT = 10_000  # captures kept in memory while the database cannot take them
MAX_JSON_BYTES = 8 * 1024 * 1024  # a non-streamed response larger than this is not parsed whole
MAX_SSE_LINE = 1024 * 1024
KEEP_DAYS = 7  # settled rows are kept this long (as long as the plugin's answers may be late)
PRUNE_EVERY_S = 3600.0


@dataclass
class Capture:
    """What one response told us. ``usage`` is the parsed form (:func:`ingest.parse_usage`)."""

    gen_id: str
    ts: int  # unix ms, when the response ended
    user: UserInfo | None
    chat_id: str | None
    model: str
    streamed: bool
    task: bool
    usage: dict


def is_task_prompt(body: bytes) -> bool:
    """True when a chat request's last user message is one of Open WebUI's task prompts.

    Read once and never kept. The cheap byte search spares parsing every chat's JSON.
    """
    if TASK_PREFIX.encode() not in body:
        return False
    try:
        request = json.loads(body)
        messages = request.get("messages") if isinstance(request, dict) else None
        last = next(m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user")
    except (ValueError, TypeError, StopIteration, UnicodeDecodeError):
        return False
    content = last.get("content")
    if isinstance(content, list):  # multimodal: the first text part
        content = next((p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"), None)
    return isinstance(content, str) and content.lstrip().startswith(TASK_PREFIX)


class Watcher:
    """Reads a response as its bytes go by, for the generation's id, model and usage.

    ``feed`` is given each chunk exactly as it is passed on; it never changes or holds one back.
    Server-sent events are read line by line (only the first ``data:`` line and lines carrying a
    usage are parsed); a JSON body is kept (up to MAX_JSON_BYTES) and parsed at the end.
    """

    def __init__(self, streamed: bool):
        self.streamed = streamed
        self.gen_id: str | None = None
        self.model: str | None = None
        self.usage = None
        self._partial = b""
        self._body = bytearray()
        self._overflow = False

    def feed(self, chunk: bytes) -> None:
        if self.streamed:
            lines = (self._partial + chunk).split(b"\n")
            self._partial = lines.pop()
            if len(self._partial) > MAX_SSE_LINE:
                self._partial = b""
            for line in lines:
                self._line(line.strip())
        elif not self._overflow:
            if len(self._body) + len(chunk) > MAX_JSON_BYTES:
                self._overflow = True
                return
            self._body += chunk

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return  # blank lines, ": OPENROUTER PROCESSING" comments, event: fields
        data = line[5:].strip()
        if self.gen_id is not None and b'"usage"' not in data:
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            return  # [DONE], or a line we cannot read: never the stream's problem
        self._take(chunk)

    def _take(self, obj) -> None:
        if not isinstance(obj, dict):
            return
        if self.gen_id is None and isinstance(obj.get("id"), str):
            self.gen_id = obj["id"]
        if self.model is None and isinstance(obj.get("model"), str):
            self.model = obj["model"]
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]

    def finish(self) -> tuple[str | None, str | None, dict]:
        """(generation id, model, parsed usage) once the response has ended."""
        if not self.streamed:
            if self._overflow:
                self._id_from_head(bytes(self._body[:4096]))
            else:
                try:
                    self._take(json.loads(bytes(self._body)))
                except ValueError:
                    pass
        elif self._partial:
            self._line(self._partial.strip())
        try:
            usage = parse_usage(self.usage)
        except BadInput:
            usage = parse_usage(None)
        gen_id = self.gen_id if self.gen_id and GENERATION_ID.match(self.gen_id) else None
        return gen_id, self.model, usage

    def _id_from_head(self, head: bytes) -> None:
        """A body too large to keep: its id is near the top (OpenRouter writes it first)."""
        marker = head.find(b'"id"')
        if marker < 0:
            return
        start = head.find(b'"', head.find(b":", marker) + 1)
        end = head.find(b'"', start + 1)
        if start > 0 and end > start:
            self.gen_id = head[start + 1:end].decode("ascii", "replace")


class Passthrough(Job):
    """The pass-through's records: the buffer, its writer, the window, and the join."""

    name = "passthrough"
    error_delay = 5.0

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        settings = meter.settings
        self.enabled = bool(settings.METER_PASSTHROUGH)
        self.window_ms = settings.METER_PASSTHROUGH_WINDOW_SECONDS * 1000
        self._buffer: collections.deque[Capture] = collections.deque()
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0  # time.monotonic() before which a failed write is not tried again
        self._pruned_at = 0.0
        self.dropped = 0  # captures lost because the buffer was full
        self.unidentified = 0  # requests forwarded without a user
        self.in_flight = 0  # pass-through requests being served (kept by the web layer)
        self.last_error: str | None = None
        meter.ledger.claims.append(self.claim)

    # --- the buffer -------------------------------------------------------------------------------

    def capture(self, capture: Capture) -> None:
        """Keep one finished response's record; the job writes it. Never blocks, never raises."""
        with self._lock:
            if len(self._buffer) >= BUFFER_LIMIT:
                self._buffer.popleft()
                self.dropped += 1
                log.error("pass-through buffer full (%d): dropped the oldest record", BUFFER_LIMIT)
            self._buffer.append(capture)
        self.worker.wake()

    def count(self, name: str, step: int = 1) -> None:
        """Move one of the counters the web layer keeps (``in_flight``, ``unidentified``)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + step)

    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    def step(self) -> float:
        poll = self.meter.settings.METER_WORKER_POLL_MS / 1000
        if time.monotonic() >= self._retry_at:
            self.flush()
        self.sweep()
        if self.buffered() and self._retry_at > time.monotonic():
            return min(poll, self._retry_at - time.monotonic())
        return poll

    def flush(self) -> int:
        """Write every buffered capture in one transaction; how many. On failure they stay."""
        with self._lock:
            batch = list(self._buffer)
            self._buffer.clear()
        if not batch:
            return 0
        now = clock.now_ms()
        try:
            for user in {c.user.id: c.user for c in batch if c.user is not None}.values():
                self.meter.ledger.see_user(user)
            with self.meter.db.write() as conn:
                for capture in batch:
                    self._store(conn, capture, now)
        except Exception as exc:
            with self._lock:
                self._buffer.extendleft(reversed(batch))
                while len(self._buffer) > BUFFER_LIMIT:
                    self._buffer.popleft()
                    self.dropped += 1
            self._failures += 1
            delay = min(30.0, 0.25 * 2 ** self._failures)
            self._retry_at = time.monotonic() + delay
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("pass-through: %d records not written (%s); trying again in %.1f s", len(batch), self.last_error, delay)
            return 0
        self._failures, self._retry_at, self.last_error = 0, 0.0, None
        return len(batch)

    def _store(self, conn, c: Capture, now: int) -> None:
        owner = conn.execute("SELECT event_id FROM generations WHERE id = ?", (c.gen_id,)).fetchall()
        event_id = owner[0]["event_id"] if owner else self._answer_reported_first(conn, c, now)
        conn.execute(
            """INSERT OR IGNORE INTO passthrough_generations (id, ts, user_id, chat_id, model, streamed, task,
                   prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, inline_cost_nano, byok,
                   inline_provider_nano, state, event_id, due)
               VALUES (:id, :ts, :user_id, :chat_id, :model, :streamed, :task, :p, :c, :r, :k, :cost, :byok, :provider,
                   :state, :event_id, :due)""",
            {
                "id": c.gen_id, "ts": c.ts, "user_id": c.user.id if c.user else None, "chat_id": c.chat_id,
                "model": c.model, "streamed": int(c.streamed), "task": int(c.task),
                "p": c.usage["prompt_tokens"], "c": c.usage["completion_tokens"], "r": c.usage["reasoning_tokens"],
                "k": c.usage["cached_tokens"], "cost": c.usage["cost_nano"],
                "byok": int(bool(c.usage.get("byok"))), "provider": c.usage.get("provider_nano"),
                "state": "claimed" if event_id is not None else "waiting", "event_id": event_id,
                "due": c.ts + self.window_ms,
            },
        )

    def _answer_reported_first(self, conn, c: Capture, now: int) -> int | None:
        """The answer this generation belongs to when the plugin reported it before the capture was
        written, without generation ids (a non-streamed call: the plugin never sees its id): same
        user, token counts, model and cost, within the window, holding no generation yet. It takes
        the generation, so the lookup confirms its cost; None when there is no such answer."""
        if c.user is None or not (c.usage["prompt_tokens"] or c.usage["completion_tokens"]):
            return None
        candidates = conn.execute(
            """SELECT e.id, e.ts, e.model, e.base_model, e.inline_cost_nano FROM events e
               WHERE e.user_id = ? AND e.prompt_tokens = ? AND e.completion_tokens = ? AND e.ts BETWEEN ? AND ?
                 AND substr(e.key, 1, ?) != ? AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.event_id = e.id)""",
            (c.user.id, c.usage["prompt_tokens"], c.usage["completion_tokens"], c.ts - self.window_ms, c.ts + self.window_ms,
             len(KEY_PREFIX), KEY_PREFIX),
        ).fetchall()
        found = sorted((e for e in candidates if same_generation(e, c.model, c.usage["cost_nano"])), key=lambda e: abs(e["ts"] - c.ts))
        if not found:
            return None
        event_id = found[0]["id"]
        conn.execute("INSERT INTO generations (id, event_id, created, next_try) VALUES (?, ?, ?, ?)", (c.gen_id, event_id, now, now))
        conn.execute("UPDATE events SET lookup_state = 'pending' WHERE id = ? AND lookup_state = 'none'", (event_id,))
        return event_id

    # --- the window -------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Settle every waiting row whose window has passed; how many."""
        now = clock.now_ms()
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._prune(now)
        if not self.meter.db.query_one("SELECT 1 AS due FROM passthrough_generations WHERE state = 'waiting' AND due <= ? LIMIT 1", (now,)):
            return 0
        with self.meter.db.write() as conn:
            rows = conn.execute(
                "SELECT * FROM passthrough_generations WHERE state = 'waiting' AND due <= ? ORDER BY due LIMIT 500", (now,)
            ).fetchall()
            for row in rows:
                self._settle(conn, row)
        return len(rows)

    def _settle(self, conn, row: dict) -> None:
        owner = conn.execute("SELECT event_id FROM generations WHERE id = ?", (row["id"],)).fetchall()
        if owner:
            state, event_id = "claimed", owner[0]["event_id"]
        elif row["user_id"] is None:
            state, event_id = "unattributed", None
        else:
            recorded = self.meter.ledger.record_in(conn, NewEvent(
                key=KEY_PREFIX + row["id"], user=UserInfo(row["user_id"]), model=row["model"], ts=row["ts"],
                source=source_of(row), chat_id=row["chat_id"], prompt_tokens=row["prompt_tokens"],
                completion_tokens=row["completion_tokens"], reasoning_tokens=row["reasoning_tokens"],
                cached_tokens=row["cached_tokens"], inline_cost_nano=row["inline_cost_nano"], byok=bool(row["byok"]),
                inline_provider_nano=row["inline_provider_nano"], generation_ids=[row["id"]],
            ))
            state, event_id = "event", recorded.event_id
        conn.execute("UPDATE passthrough_generations SET state = ?, event_id = ? WHERE id = ?", (state, event_id, row["id"]))

    def _prune(self, now: int) -> None:
        self._pruned_at = time.monotonic()
        with self.meter.db.write() as conn:
            conn.execute("DELETE FROM passthrough_generations WHERE state != 'waiting' AND ts < ?", (now - KEEP_DAYS * 86_400_000,))

    # --- the join (the ledger calls this before it stores a new answer) -------------------------

    def claim(self, conn, event: NewEvent) -> Recorded | None:
        """The event that already bills this answer, or None (after narrowing it, see the module)."""
        if event.key.startswith(KEY_PREFIX):
            return None
        if event.generation_ids:
            return claim_billed_alone(conn, event, KEY_PREFIX)
        if not self.enabled:
            return None  # no new captures to recognise an answer by (old ones were billed by id)
        return self._claim_by_fingerprint(conn, event)

    def _claim_by_fingerprint(self, conn, event: NewEvent) -> Recorded | None:
        if not (event.prompt_tokens or event.completion_tokens):
            return None  # nothing to recognise it by
        rows = conn.execute(
            """SELECT p.*, g.event_id AS owner FROM passthrough_generations p LEFT JOIN generations g ON g.id = p.id
               WHERE p.user_id = ? AND p.prompt_tokens = ? AND p.completion_tokens = ? AND p.ts BETWEEN ? AND ?
                 AND p.state IN ('waiting', 'event')""",
            (event.user.id, event.prompt_tokens, event.completion_tokens, event.ts - self.window_ms, event.ts + self.window_ms),
        ).fetchall()
        answer = {"model": event.model, "base_model": event.base_model, "inline_cost_nano": event.inline_cost_nano}

        def matches(row) -> bool:
            if row["state"] == "waiting" and row["owner"] is not None:
                return False  # another answer has it
            return same_generation(answer, row["model"], row["inline_cost_nano"])

        found = sorted((r for r in rows if matches(r)), key=lambda r: abs(r["ts"] - event.ts))
        if not found:
            return None
        row = found[0]
        if row["state"] == "event":
            billed = conn.execute("SELECT * FROM events WHERE id = ?", (row["event_id"],)).fetchall()
            return Recorded(billed[0]["id"], True, billed[0]) if billed else None
        event.generation_ids = [row["id"]]  # the answer takes the generation: it is confirmed with it
        return None

    # --- reporting --------------------------------------------------------------------------------

    def health(self) -> dict:
        counts = {r["state"]: r["n"] for r in self.meter.db.query("SELECT state, count(*) AS n FROM passthrough_generations GROUP BY state")}
        return {
            "passthrough": {
                "enabled": self.enabled,
                "in_flight": self.in_flight,
                "buffered": self.buffered(),
                "dropped": self.dropped,
                "last_error": self.last_error,
                "waiting": counts.get("waiting", 0),
                "unattributed": counts.get("unattributed", 0),
                "unidentified_requests": self.unidentified,
                "note": ("requests arrive without a user: set ENABLE_FORWARD_USER_INFO_HEADERS=true in Open WebUI"
                         if self.unidentified else None),
            }
        }


def same_generation(answer: dict, model: str, cost_nano: int | None) -> bool:
    """An answer without generation ids (``model``, ``base_model``, ``inline_cost_nano``) and a
    captured generation with the same user and token counts are one when the models agree (an
    Open WebUI model id may carry a connection prefix, "prefix.openai/gpt-4o-mini") and so do the
    costs, where both are known."""
    cost = answer["inline_cost_nano"]
    if cost is not None and cost_nano is not None and cost != cost_nano:
        return False
    return any(m == model or m.endswith("." + model) for m in (answer["model"], answer["base_model"]) if m)


def source_of(row: dict) -> str:
    """The source of an event made from one pass-through generation."""
    if not row["chat_id"]:
        return "api"
    return "task" if row["task"] else "ui"
