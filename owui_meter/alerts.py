"""Budget alerts to a Slack-compatible webhook: a user crossed a warning threshold or is blocked.

At most one alert per budget, user, period and kind (kept in ``alerts_sent``). Alerts are decided
inside the ledger's write and sent afterwards by a worker, so a slow webhook never slows a chat.
"""

from __future__ import annotations

import logging
import queue
import time

import requests

from . import clock
from .money import format_usd
from .workers import Job

log = logging.getLogger("owui_meter.alerts")


class Alerts(Job):
    name = "alerts"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        self.url = meter.settings.METER_ALERT_WEBHOOK_URL
        self.outbox: queue.Queue = queue.Queue(maxsize=1000)
        self.sent = 0

    def check(self, conn, user_id: str, states) -> None:
        """Inside the write: note newly crossed thresholds and queue their messages."""
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
                try:
                    self.outbox.put_nowait({"text": text})
                except queue.Full:
                    log.warning("alert outbox full; dropping: %s", text)
        self.worker.wake()

    def step(self) -> float:
        while True:
            try:
                message = self.outbox.get_nowait()
            except queue.Empty:
                return 60.0
            for attempt in range(3):
                try:
                    response = requests.post(self.url, json=message, timeout=10)
                    if response.status_code < 400:
                        self.sent += 1
                        break
                    log.warning("alert webhook answered %d", response.status_code)
                except requests.RequestException as exc:
                    log.warning("alert webhook unreachable: %s", type(exc).__name__)
                time.sleep(2**attempt)
