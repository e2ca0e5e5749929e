"""Budget alerts to a Slack-compatible webhook: a user crossed a warning threshold or is blocked.

At most one alert per budget, user, period and kind (kept in ``alerts_sent``). An alert is decided
inside the ledger's write and its message is written to the ``alert_outbox`` table in that same
transaction, so the "sent" mark never outlives its message: a restart, or a CLI command that
records answers with no worker running, loses nothing. The worker of ``serve`` posts the outbox in
order, deletes each message once the webhook took it, and retries failures (connection refused,
timeouts, 429, 5xx) with a growing delay for up to a day; a message the webhook rejects (other
4xx) is dropped with a warning. A slow webhook never slows a chat.
"""

from __future__ import annotations

import json
import logging

import requests

from . import clock
from .money import format_usd
from .workers import Job

log = logging.getLogger("owui_meter.alerts")

FIRST_RETRY_MS = 5_000
MAX_RETRY_MS = 15 * 60 * 1000
GIVE_UP_MS = 24 * 3600 * 1000
IDLE_SECONDS = 60.0  # look again this often when nothing is due (a CLI command may have added some)


class Alerts(Job):
    name = "alerts"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        self.url = meter.settings.METER_ALERT_WEBHOOK_URL
        self.sent = 0

    def check(self, conn, user_id: str, states) -> None:
        """Inside the write: note newly crossed thresholds and put their messages in the outbox."""
        for state in states:
            budget = state.budget
            if state.percent >= 100 and budget["action"] == "block":
                kind = "block"
            elif state.percent >= budget["warn_percent"]:
                kind = "warn"
            else:
                continue
            who = "" if state.shared else user_id
            fresh = conn.execute(
                "INSERT OR IGNORE INTO alerts_sent (budget_id, user_id, start, kind, ts) VALUES (?, ?, ?, ?, ?) RETURNING budget_id",
                (budget["id"], who, state.start, kind, clock.now_ms()),
            ).fetchall()
            if fresh:
                name = conn.execute("SELECT coalesce(name, email, id) AS n FROM users WHERE id = ?", (user_id,)).fetchall()
                subject = "A shared budget" if state.shared else (name[0]["n"] if name else user_id)
                verb = "is blocked" if kind == "block" else f"has used {int(state.percent)}%"
                text = f"owui-meter: {subject} {verb} of the {budget['period']} budget ({format_usd(state.spent, 2)} of {format_usd(state.limit, 2)})."
                now = clock.now_ms()
                conn.execute(
                    "INSERT INTO alert_outbox (created, user_id, message, next_try) VALUES (?, ?, ?, ?)",
                    (now, who, json.dumps({"text": text}), now),
                )
                self.meter.db.after_commit(self.worker.wake)  # woken before the commit, it would find nothing

    # --- the worker ------------------------------------------------------------------------------

    def step(self) -> float:
        """Post the outbox oldest first; seconds until the next message is due."""
        db = self.meter.db
        while True:
            head = db.query_one("SELECT * FROM alert_outbox ORDER BY id LIMIT 1")
            if head is None:
                return IDLE_SECONDS
            wait_ms = head["next_try"] - clock.now_ms()
            if wait_ms > 0:  # in order: later messages wait for the one being retried
                return min(wait_ms / 1000, IDLE_SECONDS)
            error, retry = self._post(json.loads(head["message"]))
            now = clock.now_ms()
            with db.write() as conn:
                if error is None:
                    conn.execute("DELETE FROM alert_outbox WHERE id = ?", (head["id"],))
                    self.sent += 1
                elif not retry or now - head["created"] >= GIVE_UP_MS:
                    conn.execute("DELETE FROM alert_outbox WHERE id = ?", (head["id"],))
                    log.warning("alert %d dropped after %d tries: %s", head["id"], head["attempts"] + 1, error)
                else:
                    delay = min(FIRST_RETRY_MS * 2 ** min(head["attempts"], 20), MAX_RETRY_MS)
                    conn.execute(
                        "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, next_try = ? WHERE id = ?",
                        (error, now + delay, head["id"]),
                    )
                    log.warning("alert webhook failed (%s); trying again in %d s", error, delay // 1000)

    def _post(self, message: dict) -> tuple[str | None, bool]:
        """(None, _) when the webhook took the message; else (what went wrong, worth retrying)."""
        try:
            response = requests.post(self.url, json=message, timeout=10)
        except requests.RequestException as exc:
            return f"webhook unreachable: {type(exc).__name__}", True
        if response.status_code < 400:
            return None, False
        return f"webhook answered {response.status_code}", response.status_code == 429 or response.status_code >= 500
