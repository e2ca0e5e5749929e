"""Reconciliation: what OpenRouter billed the key versus what the ledger attributes to users.

OpenRouter's ``GET /key`` gives only running totals (all-time, and the current day/week/month).
The meter samples the all-time total every METER_KEY_SAMPLE_MINUTES; the difference between two
samples is what OpenRouter billed in between. A requested window is therefore widened to the
samples around it, and the ledger is summed over that same widened span, so like is compared with
like. Whatever OpenRouter billed that no answer accounts for (Open WebUI's title, tag and
follow-up generations, other apps on the key) is the unattributed remainder.

Only OpenRouter's charges are compared, since they are all ``GET /key`` counts: for a
bring-your-own-key answer that is OpenRouter's fee, while the provider's charge (billed by the
provider) is reported beside the comparison, never as unattributed.
"""

from __future__ import annotations

import logging

from . import clock
from .clock import ms_to_iso
from .money import usd_to_nano
from .openrouter import OpenRouter, OpenRouterError
from .workers import Job

log = logging.getLogger("owui_meter.reconcile")


class KeySampler(Job):
    """Samples OpenRouter's running usage of the key into ``key_usage``."""

    name = "key-sampler"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        s = meter.settings
        self.client = OpenRouter.from_settings(s)
        self.last_error: str | None = None

    def step(self) -> float:
        try:
            self.sample()
        except OpenRouterError as exc:
            self.last_error = str(exc)
            log.warning("sampling the key's usage failed: %s", exc)
        return self.meter.settings.METER_KEY_SAMPLE_MINUTES * 60

    def sample(self) -> dict:
        data = self.client.key()

        def nano(name):
            value = data.get(name)
            return usd_to_nano(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        row = {"ts": clock.now_ms(), "usage": nano("usage") or 0, "daily": nano("usage_daily"), "weekly": nano("usage_weekly"), "monthly": nano("usage_monthly")}
        with self.meter.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO key_usage (ts, usage_nano, daily_nano, weekly_nano, monthly_nano) VALUES (:ts, :usage, :daily, :weekly, :monthly)",
                row,
            )
        self.last_error = None
        return row


def _ledger_totals(db, start: int, end: int) -> dict:
    """OpenRouter's charges in the ledger (all, and confirmed), and BYOK providers' apart."""
    return db.query_one(
        """SELECT coalesce(sum(openrouter_nano), 0) AS total,
                  coalesce(sum(CASE WHEN cost_source = 'generation' THEN openrouter_nano ELSE 0 END), 0) AS confirmed,
                  coalesce(sum(provider_nano), 0) AS provider
           FROM events WHERE ts >= ? AND ts < ?""",
        (start, end),
    )


ONLY_OPENROUTER = ("Only OpenRouter's charges are compared (what GET /key counts); for bring-your-own-key answers "
                   "that is OpenRouter's fee, and the provider's charges (byok_provider_nano) are billed by the provider.")


def reconcile(meter, start_ms: int, end_ms: int) -> dict:
    """Compare the ledger with OpenRouter's own usage for a window (unix ms, end exclusive)."""
    db = meter.db
    before = db.query_one("SELECT ts, usage_nano FROM key_usage WHERE ts <= ? ORDER BY ts DESC LIMIT 1", (start_ms,))
    after = db.query_one("SELECT ts, usage_nano FROM key_usage WHERE ts >= ? ORDER BY ts LIMIT 1", (end_ms,))
    if after is None:  # the window reaches past the newest sample: use the newest one
        after = db.query_one("SELECT ts, usage_nano FROM key_usage WHERE ts > ? ORDER BY ts DESC LIMIT 1", (start_ms,))
    result = {
        "from": ms_to_iso(start_ms),
        "to": ms_to_iso(end_ms),
        "openrouter_nano": None,
        "unattributed_nano": None,
    }
    if before is None or after is None:
        ledger = _ledger_totals(db, start_ms, end_ms)
        result.update(
            ledger_nano=ledger["total"],
            confirmed_nano=ledger["confirmed"],
            byok_provider_nano=ledger["provider"],
            compared_from=None,
            compared_to=None,
            precision="OpenRouter's figure is unknown for this window: the meter has no sample of the key's usage "
            + ("from before its start." if before is None else "from after its start.")
            + " Samples are taken every METER_KEY_SAMPLE_MINUTES while OPENROUTER_API_KEY is set. " + ONLY_OPENROUTER,
        )
        return result
    ledger = _ledger_totals(db, before["ts"], after["ts"])
    openrouter = after["usage_nano"] - before["usage_nano"]
    result.update(
        ledger_nano=ledger["total"],
        confirmed_nano=ledger["confirmed"],
        byok_provider_nano=ledger["provider"],
        openrouter_nano=openrouter,
        unattributed_nano=openrouter - ledger["total"],
        compared_from=ms_to_iso(before["ts"]),
        compared_to=ms_to_iso(after["ts"]),
        precision=f"Compared between the key-usage samples at {ms_to_iso(before['ts'])} and {ms_to_iso(after['ts'])} "
        "(OpenRouter gives running totals only, so the window is widened to the nearest samples; "
        "answers billed across a sample time can fall on either side). " + ONLY_OPENROUTER,
    )
    return result
