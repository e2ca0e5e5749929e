"""The cost resolver: confirms each answer's cost with OpenRouter's record of its generations.

The queue is the ``generations`` table, so a restart or an OpenRouter outage loses nothing.
For each due generation it asks ``GET /generation?id=…``:

- 200: the generation's ``total_cost`` is kept; when every generation of an answer is known, the
  answer's cost becomes their sum with source ``generation`` (the inline figure stays recorded).
- 404 (OpenRouter has not written it yet), 5xx, timeouts, no connection: try again after a delay
  that doubles from METER_LOOKUP_FIRST_RETRY_MS up to METER_LOOKUP_MAX_RETRY_SECONDS; 429 waits at
  least its Retry-After. After METER_LOOKUP_GIVE_UP_HOURS the generation is given up.
- 401/402/403: the key is refused; lookups pause for METER_LOOKUP_PAUSE_MINUTES and the reason is
  reported, instead of burning tries.

An answer some of whose generations were given up keeps its inline (or estimated) cost: a sum of
only the confirmed part would under-bill. Its lookup state says ``gave_up``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

from . import clock
from .ledger import NewEvent, UserInfo
from .money import usd_to_nano
from .openrouter import OpenRouter, OpenRouterError
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
        stop = threading.Event()  # set when OpenRouter is unreachable or refuses the key

        def fetch(gen):
            if stop.is_set():
                return gen, None
            self._wait_for_slot(s.METER_LOOKUP_RATE)
            try:
                return gen, self.client.generation(gen["id"])
            except OpenRouterError as exc:
                if exc.status is None or exc.status in KEY_REFUSED:
                    stop.set()
                return gen, exc

        with concurrent.futures.ThreadPoolExecutor(s.METER_LOOKUP_CONCURRENCY, thread_name_prefix="owui-meter-lookup") as pool:
            results = [r for r in pool.map(fetch, due) if r[1] is not None]
        self._apply(results)
        return len(due)

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
        s = self.meter.settings
        now = clock.now_ms()
        give_up_after = s.METER_LOOKUP_GIVE_UP_HOURS * 3600 * 1000
        touched = set()
        for _, outcome in results:
            name = "ok" if not isinstance(outcome, OpenRouterError) else (str(outcome.status) if outcome.status else "unreachable")
            self.outcomes[name] = self.outcomes.get(name, 0) + 1
        with self.meter.db.write() as conn:
            for gen, outcome in results:
                if isinstance(outcome, OpenRouterError):
                    self.last_error = str(outcome)
                    if outcome.status in KEY_REFUSED:
                        self.paused_until = clock.now() + s.METER_LOOKUP_PAUSE_MINUTES * 60
                        self.paused_reason = f"OpenRouter refused the key ({outcome.status}); lookups paused, next try in {s.METER_LOOKUP_PAUSE_MINUTES} min"
                        log.warning("%s", self.paused_reason)
                        continue  # not the generation's fault: no try is counted
                    gave_up = now - gen["created"] >= give_up_after
                    conn.execute(
                        "UPDATE generations SET attempts = attempts + 1, last_error = ?, state = ?, next_try = ? WHERE id = ?",
                        (str(outcome), "gave_up" if gave_up else "pending", now + self._retry_delay_ms(gen["attempts"], outcome.retry_after), gen["id"]),
                    )
                    if gave_up:
                        log.warning("gave up looking up %s: %s", gen["id"], outcome)
                        touched.add(gen["event_id"])
                    continue
                data = outcome
                conn.execute(
                    """UPDATE generations SET state = 'done', attempts = attempts + 1, last_error = NULL,
                           total_cost_nano = :cost, model = :model, provider_name = :provider,
                           tokens_prompt = :tp, tokens_completion = :tc, native_tokens_prompt = :ntp,
                           native_tokens_completion = :ntc, native_tokens_reasoning = :ntr,
                           native_tokens_cached = :ntk, latency_ms = :latency
                       WHERE id = :id""",
                    {
                        "id": gen["id"], "cost": usd_to_nano(data.get("total_cost") or 0), "model": data.get("model"),
                        "provider": data.get("provider_name"), "tp": data.get("tokens_prompt"), "tc": data.get("tokens_completion"),
                        "ntp": data.get("native_tokens_prompt"), "ntc": data.get("native_tokens_completion"),
                        "ntr": data.get("native_tokens_reasoning"), "ntk": data.get("native_tokens_cached"),
                        "latency": data.get("latency"),
                    },
                )
                touched.add(gen["event_id"])
            for event_id in touched:
                self._settle(conn, event_id)
        if results and not any(isinstance(o, OpenRouterError) for _, o in results):
            self.last_error = None

    def _settle(self, conn, event_id: int) -> None:
        """Give the answer its confirmed cost once every generation is known."""
        state = conn.execute(
            """SELECT count(*) AS total, sum(state = 'done') AS done, sum(state = 'pending') AS pending,
                      coalesce(sum(total_cost_nano), 0) AS cost
               FROM generations WHERE event_id = ?""",
            (event_id,),
        ).fetchall()[0]
        if state["pending"]:
            return
        if state["done"] == state["total"]:
            self.meter.ledger.set_cost(conn, event_id, state["cost"], "generation", "confirmed")
            return
        event = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchall()[0]
        if event["cost_source"] == "pending":  # nothing inline: fall back to an estimate
            estimate = self.meter.ledger.estimator(conn, _as_new_event(event)) if self.meter.ledger.estimator else None
            if estimate is not None:
                self.meter.ledger.set_cost(conn, event_id, estimate, "estimate", "gave_up")
            else:
                self.meter.ledger.set_cost(conn, event_id, 0, "unpriced", "gave_up")
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


def _as_new_event(row: dict) -> NewEvent:
    return NewEvent(
        key=row["key"], user=UserInfo(row["user_id"]), model=row["model"], base_model=row["base_model"], ts=row["ts"],
        source=row["source"], prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
        reasoning_tokens=row["reasoning_tokens"], cached_tokens=row["cached_tokens"],
    )
