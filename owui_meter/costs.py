"""The cost resolver: confirms each answer's cost with OpenRouter's record of its generations.

The queue is the ``generations`` table, so a restart or an OpenRouter outage loses nothing.
For each due generation it asks ``GET /generation?id=…``:

- 200: the generation's ``total_cost`` is kept; when every generation of an answer is known, the
  answer's cost becomes their sum with source ``generation`` (the inline figure stays recorded).
- 404 (OpenRouter has not written it yet), 5xx, timeouts, no connection: try again after a delay
  that doubles from METER_LOOKUP_FIRST_RETRY_MS up to METER_LOOKUP_MAX_RETRY_SECONDS. After
  METER_LOOKUP_GIVE_UP_HOURS the generation is given up.
- 429: OpenRouter's limit is the account's, so every lookup pauses until its Retry-After (or the
  first backoff when it sends none), not only the one that got it.
- 401/402/403: the key is refused; lookups pause for METER_LOOKUP_PAUSE_MINUTES and the reason is
  reported, instead of burning tries.
- A reply without a cost (``total_cost: null``) is "not known yet": tried again like a 404. A
  malformed reply (not JSON, no ``data``, a cost that is no amount) is a failed try of that one
  generation, given up in time like any other; it never stops the round.

Each answer's lookups are stored in a savepoint of their own: one that fails, or whose answer was
erased while its lookup was in flight, leaves every other answer's confirmation intact.

An answer some of whose generations were given up keeps its inline (or estimated) cost: a sum of
only the confirmed part would under-bill. Its lookup state says ``gave_up``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

from . import clock
from .ingest import MAX_ANSWER_COST_NANO
from .ledger import NewEvent, UserInfo
from .money import usd_to_nano
from .openrouter import MalformedReply, OpenRouter, OpenRouterError
from .workers import Job

log = logging.getLogger("owui_meter.costs")

KEY_REFUSED = (401, 402, 403)


class Resolver(Job):
    name = "resolver"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        s = meter.settings
        self.client = OpenRouter.from_settings(s)
        self.enabled = bool(s.OPENROUTER_API_KEY)
        self.last_error: str | None = None
        self.paused_until: float | None = None  # clock seconds
        self.paused_reason: str | None = None
        self.outcomes: dict[str, int] = {}  # lookups by outcome since start, for /metrics
        self._rate_lock = threading.Lock()
        self._next_start = 0.0

    # --- worker ----------------------------------------------------------------------------------

    def step(self) -> float:
        poll = self.meter.settings.METER_WORKER_POLL_MS / 1000
        if not self.enabled:
            return 3600.0
        if self.paused_until is not None and clock.now() < self.paused_until:
            return min(poll * 10, self.paused_until - clock.now())
        return 0.0 if self.run_once() else poll

    def settle(self, conn, event_id: int) -> None:
        """Inside a write: give an answer its confirmed cost once every generation of it is known,
        for generations confirmed without a lookup (OpenRouter Broadcast, ``otlp.py``)."""
        self._settle(conn, event_id)

    # --- one round -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Look up every generation due now (at most a few rounds of the concurrency); how many."""
        s = self.meter.settings
        if not self.enabled:
            return 0
        if self.paused_until is not None:
            if clock.now() < self.paused_until:
                return 0
            self.paused_until = self.paused_reason = None
        due = self.meter.db.query(
            "SELECT id, event_id, attempts, created FROM generations WHERE state = 'pending' AND next_try <= ? ORDER BY next_try LIMIT ?",
            (clock.now_ms(), s.METER_LOOKUP_CONCURRENCY * 4),
        )
        if not due:
            return 0
        stop = threading.Event()  # set when OpenRouter is unreachable

        def fetch(gen):
            if stop.is_set() or self._paused():
                return gen, None
            self._wait_for_slot(s.METER_LOOKUP_RATE)
            if stop.is_set() or self._paused():  # a 429 or a refused key came while this one waited
                return gen, None
            try:
                return gen, parse_generation(self.client.generation(gen["id"]))
            except OpenRouterError as exc:
                if exc.status == 429:  # the limit is the account's: every lookup waits, not just this one
                    seconds = exc.retry_after if exc.retry_after is not None else self._retry_delay_ms(gen["attempts"], None) / 1000
                    self._pause(seconds, f"OpenRouter is rate limiting lookups (429); paused for {seconds:g} s")
                elif exc.status in KEY_REFUSED:
                    minutes = s.METER_LOOKUP_PAUSE_MINUTES
                    self._pause(minutes * 60, f"OpenRouter refused the key ({exc.status}); lookups paused, next try in {minutes} min")
                elif exc.status is None:
                    stop.set()
                return gen, exc
            except Exception as exc:  # a bug of ours on one reply must not stop the others
                log.exception("looking up %s failed", gen["id"])
                return gen, MalformedReply(None, f"could not read OpenRouter's reply: {type(exc).__name__}")

        with concurrent.futures.ThreadPoolExecutor(s.METER_LOOKUP_CONCURRENCY, thread_name_prefix="owui-meter-lookup") as pool:
            results = [r for r in pool.map(fetch, due) if r[1] is not None]
        self._apply(results)
        return len(due)

    def _paused(self) -> bool:
        return self.paused_until is not None and clock.now() < self.paused_until

    def _pause(self, seconds: float, reason: str) -> None:
        """Stop every lookup for ``seconds`` (the longest pause asked for wins)."""
        until = clock.now() + seconds
        with self._rate_lock:
            if self.paused_until is None or until > self.paused_until:
                self.paused_until, self.paused_reason = until, reason
                log.warning("%s", reason)

    def _wait_for_slot(self, per_second: int) -> None:
        """At most ``per_second`` lookups start in any second, whatever the concurrency."""
        with self._rate_lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / per_second
        if start > now:
            time.sleep(start - now)

    def _retry_delay_ms(self, attempts: int, retry_after: float | None) -> int:
        s = self.meter.settings
        delay = min(s.METER_LOOKUP_FIRST_RETRY_MS * 2 ** min(attempts, 30), s.METER_LOOKUP_MAX_RETRY_SECONDS * 1000)
        if retry_after is not None:
            delay = max(delay, int(retry_after * 1000))
        return delay

    def _apply(self, results) -> None:
        """Store a round's outcomes. Each answer's generations are applied in a savepoint of their
        own, so one that fails (or whose answer was erased meanwhile) leaves the others' intact."""
        for _, outcome in results:
            name = "ok" if not isinstance(outcome, OpenRouterError) else (outcome.outcome or (str(outcome.status) if outcome.status else "unreachable"))
            self.outcomes[name] = self.outcomes.get(name, 0) + 1
        by_event: dict[int, list] = {}
        for gen, outcome in results:
            by_event.setdefault(gen["event_id"], []).append((gen, outcome))
        now = clock.now_ms()
        with self.meter.db.write() as conn:
            for event_id, lookups in by_event.items():
                conn.execute("SAVEPOINT lookup")
                try:
                    self._apply_answer(conn, event_id, lookups, now)
                except Exception:
                    conn.execute("ROLLBACK TO lookup")
                    log.exception("storing the lookups of answer %d failed; they are tried again later", event_id)
                    for gen, _ in lookups:
                        conn.execute(
                            "UPDATE generations SET attempts = attempts + 1, last_error = 'internal error', next_try = ? WHERE id = ?",
                            (now + self._retry_delay_ms(gen["attempts"], None), gen["id"]),
                        )
                conn.execute("RELEASE lookup")
        errors = [o for _, o in results if isinstance(o, OpenRouterError)]
        if errors:
            self.last_error = str(errors[-1])
        elif results:
            self.last_error = None

    def _apply_answer(self, conn, event_id: int, lookups, now: int) -> None:
        give_up_after = self.meter.settings.METER_LOOKUP_GIVE_UP_HOURS * 3600 * 1000
        settle = False
        for gen, outcome in lookups:
            if isinstance(outcome, OpenRouterError):
                if outcome.status in KEY_REFUSED:
                    continue  # not the generation's fault: no try is counted
                gave_up = now - gen["created"] >= give_up_after
                updated = conn.execute(
                    "UPDATE generations SET attempts = attempts + 1, last_error = ?, state = ?, next_try = ? WHERE id = ? RETURNING id",
                    (str(outcome), "gave_up" if gave_up else "pending", now + self._retry_delay_ms(gen["attempts"], outcome.retry_after), gen["id"]),
                ).fetchall()
                if gave_up and updated:
                    log.warning("gave up looking up %s: %s", gen["id"], outcome)
                    settle = True
                continue
            updated = conn.execute(
                """UPDATE generations SET state = 'done', attempts = attempts + 1, last_error = NULL,
                       total_cost_nano = :cost, model = :model, provider_name = :provider,
                       tokens_prompt = :tp, tokens_completion = :tc, native_tokens_prompt = :ntp,
                       native_tokens_completion = :ntc, native_tokens_reasoning = :ntr,
                       native_tokens_cached = :ntk, latency_ms = :latency, upstream_cost_nano = :upstream,
                       byok = :byok, cancelled = :cancelled, cache_discount_nano = :cache
                   WHERE id = :id RETURNING id""",
                outcome | {"id": gen["id"]},
            ).fetchall()
            settle = settle or bool(updated)  # no row: the answer was erased while we looked
        if settle:
            self._settle(conn, event_id)

    def _settle(self, conn, event_id: int) -> None:
        """Give the answer its confirmed cost once every generation is known."""
        state = conn.execute(
            """SELECT count(*) AS total, sum(state = 'done') AS done, sum(state = 'pending') AS pending,
                      coalesce(sum(total_cost_nano), 0) AS openrouter,
                      coalesce(sum(CASE WHEN byok THEN upstream_cost_nano ELSE 0 END), 0) AS provider,
                      coalesce(max(byok), 0) AS byok, coalesce(max(cancelled), 0) AS cancelled,
                      sum(cache_discount_nano) AS cache_discount
               FROM generations WHERE event_id = ?""",
            (event_id,),
        ).fetchall()[0]
        if not state["total"] or state["pending"]:
            return
        ledger = self.meter.ledger
        if state["done"] == state["total"]:
            # OpenRouter's charge is total_cost; a BYOK provider's is upstream_inference_cost (on
            # other generations that figure is OpenRouter's own cost again: never added)
            ledger.set_cost(conn, event_id, state["openrouter"], "generation", "confirmed", provider_nano=state["provider"],
                            byok=bool(state["byok"]), cancelled=bool(state["cancelled"]), cache_discount_nano=state["cache_discount"])
            return
        event = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchall()[0]
        if event["cost_source"] == "pending":  # nothing inline: fall back to an estimate
            estimate = ledger.estimator(conn, _as_new_event(event)) if ledger.estimator else None
            if estimate is None:
                ledger.set_cost(conn, event_id, 0, "unpriced", "gave_up")
            elif event["byok"]:  # the model's price stands for the provider's charge
                ledger.set_cost(conn, event_id, 0, "estimate", "gave_up", provider_nano=estimate, byok=True)
            else:
                ledger.set_cost(conn, event_id, estimate, "estimate", "gave_up")
        else:
            conn.execute("UPDATE events SET lookup_state = 'gave_up' WHERE id = ?", (event_id,))

    # --- reporting -------------------------------------------------------------------------------

    def health(self) -> dict:
        db = self.meter.db
        pending = db.query_one("SELECT count(*) AS n, min(created) AS oldest FROM generations WHERE state = 'pending'")
        gave_up = db.query_one("SELECT count(*) AS n FROM generations WHERE state = 'gave_up'")["n"]
        if not self.enabled:
            state = "disabled"
        elif self.paused_until is not None and clock.now() < self.paused_until:
            state = "paused"
        else:
            state = "running" if self.worker.running else "stopped"
        return {
            "resolver": {
                "state": state,
                "pending": pending["n"],
                "oldest_pending_seconds": round((clock.now_ms() - pending["oldest"]) / 1000, 1) if pending["oldest"] else None,
                "gave_up": gave_up,
                "last_error": self.last_error,
                "paused_reason": self.paused_reason if state == "paused" else None,
                "note": None if self.enabled else "OPENROUTER_API_KEY is not set: costs stay inline or estimated",
            }
        }


class CostNotKnownYet(OpenRouterError):
    """OpenRouter has the generation but no cost for it yet (``total_cost: null``): tried again
    later like a 404, never taken for a confirmed $0."""

    outcome = "no_cost"


def parse_generation(data: dict) -> dict:
    """The columns kept from one ``/generation`` record.

    Raises CostNotKnownYet when it has no cost yet, MalformedReply when the cost is not an amount
    (a word, an object, a boolean, negative, absurdly large); for a BYOK generation the same holds for the
    provider's charge (``upstream_inference_cost``). Counts that are not whole numbers are stored
    as unknown.
    """
    byok = data.get("is_byok") is True
    cost_nano = _cost(data, "total_cost")
    # BYOK: total_cost is only OpenRouter's fee; the provider's charge, the bulk, must be known too
    upstream_nano = _cost(data, "upstream_inference_cost", required=byok)
    cache = data.get("cache_discount")
    try:
        cache_nano = usd_to_nano(cache) if isinstance(cache, (int, float, str)) else None  # negative: cache writes cost more
    except ValueError:
        cache_nano = None
    if cache_nano is not None and abs(cache_nano) > MAX_ANSWER_COST_NANO:
        cache_nano = None
    return {
        "cost": cost_nano, "upstream": upstream_nano, "byok": int(byok), "cancelled": int(data.get("cancelled") is True),
        "cache": cache_nano, "model": _text(data.get("model")), "provider": _text(data.get("provider_name")),
        "tp": _count(data.get("tokens_prompt")), "tc": _count(data.get("tokens_completion")),
        "ntp": _count(data.get("native_tokens_prompt")), "ntc": _count(data.get("native_tokens_completion")),
        "ntr": _count(data.get("native_tokens_reasoning")), "ntk": _count(data.get("native_tokens_cached")),
        "latency": _count(data.get("latency")),
    }


def _cost(data: dict, name: str, required: bool = True) -> int | None:
    """A charge of the record in nano-USD. Not required: None for anything but an amount."""
    value = data.get(name)
    if value is None:
        if required:
            raise CostNotKnownYet(200, f"OpenRouter has no {name} for this generation yet")
        return None
    try:
        nano = usd_to_nano(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        nano = None
    if nano is None or not 0 <= nano <= MAX_ANSWER_COST_NANO:
        if required:
            raise MalformedReply(200, f"OpenRouter sent a malformed generation record: {name} is {str(value)[:40]!r}")
        return None
    return nano


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _as_new_event(row: dict) -> NewEvent:
    return NewEvent(
        key=row["key"], user=UserInfo(row["user_id"]), model=row["model"], base_model=row["base_model"], ts=row["ts"],
        source=row["source"], prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
        reasoning_tokens=row["reasoning_tokens"], cached_tokens=row["cached_tokens"],
    )
