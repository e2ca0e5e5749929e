"""The running meter: settings, database and every domain object, built in one place.

``Meter.open(settings, serving=True)`` is what ``owui-meter serve`` (and the app factory) use;
``Meter.open(settings)`` is what maintenance commands use. Only the server follows a changed
``METER_TIMEZONE`` (rebuilding the figures kept per local day) and makes the first admin; a
command run beside it reads the server's stored time zone and never rewrites derived data.
Workers are built here but only ``start()`` runs them, so tests and commands have no threads.
"""

from __future__ import annotations

import logging
import os
import time

import apsw

from . import first_run
from .alerts import Alerts
from .backup import DailyBackups
from .budgets import Budgets
from .costs import Resolver
from .db import Database, get_meta, set_meta
from .errors import CannotStart
from .ledger import BYOK_COST_KEY, Ledger
from .me_links import link_for
from .notices import outlet_notice
from .otlp import Broadcast
from .owui_sync import OpenWebUISync
from .passthrough import Passthrough
from .prices import PriceSync, make_estimator
from .reconcile import KeySampler
from .retention import Retention

log = logging.getLogger("owui_meter")

TIMEZONE_KEY = "usage_daily.timezone"  # the zone the stored daily totals and spend counters are in


class Meter:
    """Everything one meter process holds. The web app keeps it in ``app.config["METER"]``."""

    def __init__(self, settings, db: Database, *, serving: bool):
        self.settings = settings
        self.db = db
        self.serving = serving
        self.generated: list[str] = []  # names of secrets made on this start
        self.generated_password: str | None = None  # the first admin's password, shown once
        self.ledger = Ledger(db, settings.METER_TIMEZONE, settings.METER_BYOK_COST)
        self.ledger.estimator = make_estimator()
        self.budgets = Budgets(self)
        self.ledger.cost_listeners.append(self.budgets.on_cost)
        if settings.METER_ALERT_WEBHOOK_URL:
            self.budgets.alerts = Alerts(self)
        self.resolver = Resolver(self)
        self.price_sync = PriceSync(self)
        self.key_sampler = KeySampler(self) if settings.OPENROUTER_API_KEY else None
        self.owui_sync = OpenWebUISync(self)
        # always built: its join keeps late plugin answers from doubling what it billed before
        self.passthrough = Passthrough(self)
        # background jobs (objects with start() and stop()), started only by serve
        self.workers: list = [self.resolver, self.price_sync, self.key_sampler, self.budgets.alerts, self.owui_sync,
                              Retention(self), DailyBackups(self) if settings.METER_BACKUP_KEEP else None, self.passthrough]
        self.workers = [w for w in self.workers if w is not None]
        # callables returning a dict merged into /healthcheck and the Status page
        self.health = [self.resolver.health, self.owui_sync.health, self.passthrough.health]
        # OpenRouter Broadcast (/v1/traces); always built: its join keeps late answers from doubling
        self.broadcast = Broadcast(self)
        self.workers.append(self.broadcast)
        self.health.append(self.broadcast.health)
        self._started = False

    @classmethod
    def open(cls, settings, *, serving: bool = False) -> "Meter":
        """Open (and migrate) the database in ``METER_DATA_DIR`` and build the meter on it."""
        # the database first: a file the meter refuses must not get a secrets.json beside it
        db = Database(os.path.join(settings.METER_DATA_DIR, "meter.db"))
        try:
            settings, generated = first_run.complete_secrets(settings)
            settings = _settle_byok_cost(db, _settle_timezone(db, settings, serving), serving)
            meter = cls(settings, db, serving=serving)
            meter.generated = generated
            if serving:
                try:
                    meter.generated_password = first_run.ensure_admin(db, settings)
                except apsw.FullError:
                    pass  # said just below; the admin stays as stored
                try:
                    meter.ledger.follow_byok_cost()  # first: a time zone rebuild then starts from the new costs
                except apsw.FullError:
                    _refuse_to_start_split(db, BYOK_COST_KEY, "METER_BYOK_COST", settings.METER_BYOK_COST)
                meter._follow_timezone()
                full = db.space_problem()
                if full:
                    log.error("%s: starting read-only (reads, the dashboard and budget checks work; writes answer 503 until space is freed)", full)
        except BaseException:
            db.close()
            raise
        return meter

    # --- what the plugin endpoints ask ----------------------------------------------------------

    def inlet_policy(self, parsed_inlet) -> tuple[bool, str | None]:
        """May this user chat now? (allow, message to show when not)."""
        return self.budgets.inlet_policy(parsed_inlet)

    def record_answer(self, event) -> tuple:
        """Record an outlet answer (:meth:`Ledger.record`); (recorded, what its notice needs).

        The budgets' states and the balance are read in the same write job, right after the
        answer counted, on the writer's connection: its pages are in cache, where a read
        connection would start a read transaction and fetch again what the commit just changed.
        None instead of the figures when the key names another answer (no notice then).
        """
        def job(conn):
            recorded = self.ledger.record_in(conn, event)
            if recorded.conflict:
                return recorded, None
            query, user_id = (lambda sql, params=(): conn.execute(sql, params).fetchall()), recorded.row["user_id"]
            return recorded, (self.budgets.states(query, user_id), self.budgets.balance(query, user_id))

        return self.db.submit(job)

    def outlet_notice(self, row: dict, lang: str, figures: tuple) -> str:
        """The line shown above an answer: its cost and what is left of the user's budgets;
        ``figures`` as :meth:`record_answer` gives them."""
        states, balance = figures
        return outlet_notice(row, lang, states, balance, link_for(self, row["user_id"]))

    # --- time zone ------------------------------------------------------------------------------

    def _follow_timezone(self) -> None:
        """The server's start: figures kept per local day follow a changed METER_TIMEZONE."""
        stored = get_meta(self.db, TIMEZONE_KEY)
        zone = self.settings.METER_TIMEZONE
        if stored == zone:
            return
        try:
            with self.db.write() as conn:
                if stored is not None:
                    count = self.ledger.rebuild_daily(conn)
                    self.budgets.rebuild_spend(conn)
                    log.info("time zone changed from %s to %s: daily totals and spend rebuilt from %d events", stored, zone, count)
                set_meta(conn, TIMEZONE_KEY, zone)
        except apsw.FullError:
            _refuse_to_start_split(self.db, TIMEZONE_KEY, "METER_TIMEZONE", zone)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        self._started = True

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Stop the workers (all asked at once, waited for ``timeout`` seconds in all) and close
        the database. Returns the names of workers still stuck in a step (a network call)."""
        stuck = []
        if self._started:
            for worker in self.workers:
                worker.worker.request_stop()
            deadline = time.monotonic() + timeout
            for worker in reversed(self.workers):
                if not worker.worker.join(max(0.0, deadline - time.monotonic())):
                    stuck.append(worker.name)
            self._started = False
        self.db.close()
        return stuck


def _refuse_to_start_split(db: Database, key: str, name: str, value: str) -> None:
    """A full disk kept the server from moving stored figures to a changed setting: running on
    figures kept under the old one would split them, so refuse (CannotStart) unless nothing was
    stored yet."""
    stored = get_meta(db, key)
    if stored is not None and stored != value:
        raise CannotStart(f"cannot move the stored figures from {name}={stored} to {value}: the disk is full; free space or set {name}={stored}")


def _settle_timezone(db: Database, settings, serving: bool):
    """Settings whose METER_TIMEZONE is the one the stored figures are kept in.

    The server's own setting wins (it rebuilds on start); any other process uses the stored zone,
    so a cron job with another ``TZ`` or an unset ``METER_TIMEZONE`` cannot split the days.
    """
    stored = get_meta(db, TIMEZONE_KEY)
    if serving or stored is None or stored == settings.METER_TIMEZONE:
        return settings
    if settings.origin("METER_TIMEZONE") != "default":
        log.warning("METER_TIMEZONE=%s ignored: the meter's figures are kept in %s (change it on the server)",
                    settings.METER_TIMEZONE, stored)
    return settings.replace(origin="database", METER_TIMEZONE=stored)


def _settle_byok_cost(db: Database, settings, serving: bool):
    """Settings whose METER_BYOK_COST is the one the stored costs follow: as for the time zone,
    the server's setting wins (it re-costs BYOK answers on start), other processes use the stored one."""
    stored = get_meta(db, BYOK_COST_KEY)
    if serving or stored is None or stored == settings.METER_BYOK_COST:
        return settings
    if settings.origin("METER_BYOK_COST") != "default":
        log.warning("METER_BYOK_COST=%s ignored: the meter's costs follow %s (change it on the server)", settings.METER_BYOK_COST, stored)
    return settings.replace(origin="database", METER_BYOK_COST=stored)
