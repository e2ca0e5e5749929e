"""The running meter: settings, database, ledger, and the background workers of ``serve``."""

from __future__ import annotations

import logging
import os

from .db import Database, get_meta, set_meta
from .ledger import Ledger
from .notices import answer_notice

log = logging.getLogger("owui_meter")


class Meter:
    """Everything one meter process holds. The app keeps it in ``app.config["METER"]``.

    ``workers`` are objects with ``start()`` and ``stop()``; ``serve`` starts them, never import
    or create_app, so tests and CLI commands run without background threads.
    ``health`` holds callables returning a dict merged into /healthcheck.
    ``inlet_policy(parsed_inlet) -> (allow, message)`` decides at inlet (budgets set it);
    ``outlet_notice(event_row, language) -> str`` makes the line shown above an answer.
    """

    def __init__(self, settings):
        self.settings = settings
        self.db = Database(os.path.join(settings.METER_DATA_DIR, "meter.db"))
        self.ledger = Ledger(self.db, settings.METER_TIMEZONE)
        self._follow_timezone()
        self.workers: list = []
        self.health: list = []
        self.inlet_policy = None
        self.outlet_notice = answer_notice
        self.generated: list[str] = []  # names of secrets made on this start
        self.generated_password: str | None = None
        self._started = False

    def _follow_timezone(self) -> None:
        """Daily totals are kept in METER_TIMEZONE's days: rebuild them when it changes."""
        stored = get_meta(self.db, "usage_daily.timezone")
        if stored != self.settings.METER_TIMEZONE:
            if stored is not None:
                count = self.ledger.rebuild_daily()
                log.info("time zone changed from %s to %s: daily totals rebuilt from %d events", stored, self.settings.METER_TIMEZONE, count)
            with self.db.write() as conn:
                set_meta(conn, "usage_daily.timezone", self.settings.METER_TIMEZONE)

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            for worker in reversed(self.workers):
                try:
                    worker.stop()
                except Exception:  # one stuck worker must not keep the others running
                    log.exception("stopping %s failed", type(worker).__name__)
            self._started = False
        self.db.close()
