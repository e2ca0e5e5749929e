"""Retention: answers older than METER_RETENTION_DAYS are pruned daily; daily totals stay.

Statements for old months still add up because they read ``usage_daily``; ``meta`` keeps the
boundary (``retention.pruned_before``) so reports can say a period was pruned.
"""

from __future__ import annotations

import logging

from . import clock
from .db import get_meta, set_meta
from .workers import Job

log = logging.getLogger("owui_meter.retention")
BATCH = 10_000


def prune(meter) -> int:
    """Delete answers older than the retention period; returns how many."""
    days = meter.settings.METER_RETENTION_DAYS
    if not days:
        return 0
    cutoff = clock.now_ms() - days * 86400 * 1000
    removed = 0
    while True:  # in batches, so ingest never waits long for the writer
        with meter.db.write() as conn:
            ids = [r["id"] for r in conn.execute("SELECT id FROM events WHERE ts < ? ORDER BY ts LIMIT ?", (cutoff, BATCH)).fetchall()]
            if ids:
                marks = ",".join("?" * len(ids))
                conn.execute(f"DELETE FROM generations WHERE event_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
            previous = int(get_meta(meter.db, "retention.pruned_before") or 0)
            set_meta(conn, "retention.pruned_before", str(max(previous, cutoff)))
        removed += len(ids)
        if len(ids) < BATCH:
            break
    if removed:
        log.info("pruned %d answers older than %d days", removed, days)
    return removed


class Retention(Job):
    name = "retention"
    error_delay = 3600.0

    def __init__(self, meter):
        super().__init__()
        self.meter = meter

    def step(self) -> float:
        prune(self.meter)
        return 86400.0

    def start(self) -> None:
        if self.meter.settings.METER_RETENTION_DAYS:
            super().start()
