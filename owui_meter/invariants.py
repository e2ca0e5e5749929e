"""Every derived figure checked against the events it comes from (``owui-meter check``).

The ledger's events are the record; the rest is derived and kept up to date as events arrive and
costs change: daily totals (and the pages' rollups of them), spend counters per budget period,
prepaid balances, confirmed costs, and the figures statements print. :func:`check` recomputes each from the events and returns what
differs, as sentences. It only reads, through a read-only connection inside one read transaction
(one consistent snapshot), so it is safe while the meter runs.

Once retention has pruned answers, figures that cover pruned time can no longer be recomputed:
days, periods and balances that began before ``retention.pruned_before`` are skipped.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections import defaultdict

from . import db as dbmodule
from .billing import charges
from .budgets import CALENDAR_PERIODS, period_start
from .ledger import BYOK_COST_KEY, UNATTRIBUTED

QUARTER_MS = 900_000  # every zone's offset is a multiple of 15 minutes


class Snapshot:
    """A read-only view of the database with the ``query`` methods reports use."""

    def __init__(self, conn):
        self.conn = conn

    def query(self, sql: str, params=()) -> list[dict]:
        return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params=()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None


def check_file(path: str, settings) -> list[str]:
    """Open ``path`` read-only and check it; a list of differences (empty: all is well)."""
    if not os.path.exists(path):
        return [f"no database at {path}"]
    conn = dbmodule.connect(path, readonly=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchall()[0]["user_version"]
        latest = dbmodule.migrations()[-1][0]
        if version < latest:
            return [f"the database is at schema {version}, this meter's is {latest}: start the meter once to migrate it, then check"]
        if version > latest:
            return [f"the database is at schema {version}, newer than this meter's {latest}: check it with the meter that wrote it"]
        conn.execute("BEGIN")  # one snapshot, whatever the running meter writes meanwhile
        try:
            return check(Snapshot(conn), settings)
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()


def check(db: Snapshot, settings) -> list[str]:
    """Every difference between a derived figure and the events; empty when all agree."""
    pruned = int((db.query_one("SELECT value FROM meta WHERE key = 'retention.pruned_before'") or {"value": 0})["value"])
    daily_zone = (db.query_one("SELECT value FROM meta WHERE key = 'usage_daily.timezone'") or {"value": settings.METER_TIMEZONE})["value"]
    byok_cost = (db.query_one("SELECT value FROM meta WHERE key = ?", (BYOK_COST_KEY,)) or {"value": settings.METER_BYOK_COST})["value"]
    provider_counts = byok_cost == "provider+fee"
    problems: list[str] = []
    problems += _events_costs(db, provider_counts)
    problems += _daily_totals(db, zoneinfo.ZoneInfo(daily_zone), pruned, provider_counts)
    problems += _rollups(db)
    problems += _spend_counters(db, zoneinfo.ZoneInfo(settings.METER_TIMEZONE), pruned)
    problems += _allowance_counters(db, pruned)
    problems += _balances(db, pruned)
    problems += _statements(db, settings, zoneinfo.ZoneInfo(daily_zone), pruned)
    return problems


def _day_start_ms(day: dt.date, zone) -> int:
    return int(dt.datetime.combine(day, dt.time(), zone).timestamp() * 1000)


def _local_day(quarter: int, zone) -> dt.date:
    return dt.datetime.fromtimestamp(quarter * QUARTER_MS / 1000, tz=zone).date()


# --- each event's cost against its source ---------------------------------------------------------


def _events_costs(db, provider_counts: bool) -> list[str]:
    """Each answer's cost is its charges (OpenRouter's, plus a BYOK provider's under
    METER_BYOK_COST=provider+fee), and a confirmed one is what its generations say."""
    problems = []
    rows = db.query(
        """SELECT e.id, e.key, e.cost_nano, e.cost_source, e.inline_cost_nano, e.lookup_state, e.openrouter_nano,
                  e.provider_nano, e.byok, count(g.id) AS gens, coalesce(sum(g.state = 'done'), 0) AS done,
                  coalesce(sum(g.state = 'pending'), 0) AS pending, coalesce(sum(g.state = 'gave_up'), 0) AS gave_up,
                  coalesce(sum(g.total_cost_nano), 0) AS gen_cost,
                  coalesce(sum(CASE WHEN g.byok THEN g.upstream_cost_nano ELSE 0 END), 0) AS gen_provider
           FROM events e LEFT JOIN generations g ON g.event_id = e.id
           GROUP BY e.id"""
    )
    for r in rows:
        where = f"answer {r['key']!r}"
        if r["cost_nano"] < 0:
            problems.append(f"{where}: negative cost {r['cost_nano']}")
        charges_ = r["openrouter_nano"] + (r["provider_nano"] if provider_counts else 0)
        if r["cost_nano"] != charges_:
            problems.append(f"{where}: cost {r['cost_nano']} ≠ its charges {charges_} (OpenRouter {r['openrouter_nano']}, provider {r['provider_nano']})")
        source, state = r["cost_source"], r["lookup_state"]
        if source == "generation":
            if state != "confirmed" or r["done"] != r["gens"] or not r["gens"]:
                problems.append(f"{where}: confirmed cost but {r['done']} of {r['gens']} generations known (lookup {state})")
            elif r["openrouter_nano"] != r["gen_cost"]:
                problems.append(f"{where}: confirmed OpenRouter charge {r['openrouter_nano']} ≠ its generations' total_cost {r['gen_cost']}")
            elif r["byok"] and r["provider_nano"] != r["gen_provider"]:
                problems.append(f"{where}: confirmed provider charge {r['provider_nano']} ≠ its generations' upstream cost {r['gen_provider']}")
        elif state == "confirmed":
            problems.append(f"{where}: lookup confirmed but the cost source is {source}")
        if source == "inline" and not r["byok"] and r["openrouter_nano"] != r["inline_cost_nano"]:
            problems.append(f"{where}: inline cost {r['openrouter_nano']} ≠ the reported {r['inline_cost_nano']}")
        if source in ("pending", "unpriced") and r["cost_nano"] != 0:
            problems.append(f"{where}: {source} but costs {r['cost_nano']}")
        if state == "pending" and not r["pending"]:
            problems.append(f"{where}: lookup pending but no generation is")
        if state in ("none", "confirmed", "gave_up") and r["pending"]:
            problems.append(f"{where}: lookup {state} but {r['pending']} generations are still pending")
        if state == "gave_up" and not r["gave_up"]:
            problems.append(f"{where}: lookup gave up but no generation did")
        if state == "none" and r["gens"]:
            problems.append(f"{where}: no lookup but {r['gens']} generations")
    return problems


# --- daily totals ---------------------------------------------------------------------------------------

ROLLUP_COLUMNS = ("answers", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "cost_nano", "confirmed_cost_nano")
DAILY_COLUMNS = ROLLUP_COLUMNS + ("provider_cost_nano", "cache_discount_nano")


def _daily_totals(db, zone, pruned: int, provider_counts: bool) -> list[str]:
    expected: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(DAILY_COLUMNS, 0))
    for q in db.query(
        f"""SELECT ts / 900000 AS quarter, user_id, model, source, count(*) AS answers,
                  sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
                  sum(reasoning_tokens) AS reasoning_tokens, sum(cached_tokens) AS cached_tokens, sum(cost_nano) AS cost_nano,
                  sum(CASE WHEN cost_source = 'generation' THEN cost_nano ELSE 0 END) AS confirmed_cost_nano,
                  {"sum(provider_nano)" if provider_counts else "0"} AS provider_cost_nano,
                  coalesce(sum(cache_discount_nano), 0) AS cache_discount_nano
           FROM events GROUP BY quarter, user_id, model, source"""
    ):
        acc = expected[(_local_day(q["quarter"], zone).isoformat(), q["user_id"], q["model"], q["source"])]
        for column in DAILY_COLUMNS:
            acc[column] += q[column]
    kept = {(r["day"], r["user_id"], r["model"], r["source"]): r for r in db.query("SELECT * FROM usage_daily")}
    problems = []
    for key in sorted(set(expected) | set(kept)):
        if _day_start_ms(dt.date.fromisoformat(key[0]), zone) < pruned:
            continue  # some of that day's answers were pruned; its totals are the record now
        want = expected.get(key, dict.fromkeys(DAILY_COLUMNS, 0))
        have = kept.get(key, dict.fromkeys(DAILY_COLUMNS, 0))
        for column in DAILY_COLUMNS:
            if want[column] != have[column]:
                problems.append(f"daily totals {key[0]} user {key[1]!r} model {key[2]!r} {key[3]}: {column} {have[column]} ≠ events {want[column]}")
    return problems


ROLLUPS = (("usage_day_user", "day", ("user_id",)), ("usage_day_model", "day", ("model",)), ("usage_day_source", "day", ("source",)),
           ("usage_model_source_day", "day", ("model", "source")), ("usage_month_user", "substr(day, 1, 7) AS month", ("user_id",)),
           ("usage_month_user_model", "substr(day, 1, 7) AS month", ("user_id", "model", "source")))
QUARTER_COLUMNS = ("answers", "prompt_tokens", "completion_tokens", "cost_nano")


def _rollups(db) -> list[str]:
    """The pages' rollups hold exactly usage_daily's sums (pruned days included: both outlive them),
    and events_cost_quarter exactly the events' (pruned events leave both)."""
    problems = []
    sums = ", ".join(f"sum({c}) AS {c}" for c in ROLLUP_COLUMNS)
    for table, when, columns in ROLLUPS:
        keys = ", ".join(columns)
        period = when.split()[-1]  # day, or month of the day
        expected = {(r[period], *(r[c] for c in columns)): r for r in db.query(f"SELECT {when}, {keys}, {sums} FROM usage_daily GROUP BY 1, {keys}")}
        kept = {(r[period], *(r[c] for c in columns)): r for r in db.query(f"SELECT * FROM {table}")}
        problems += _differences(expected, kept, ROLLUP_COLUMNS, lambda key, c, have, want: f"{table} {key[0]} {keys} {key[1:]!r}: {c} {have} ≠ daily totals {want}")
    expected = {(r["cost_source"], r["pending"], r["quarter"]): r for r in db.query(
        """SELECT cost_source, lookup_state = 'pending' AS pending, ts / 900000 AS quarter, count(*) AS answers, sum(prompt_tokens) AS prompt_tokens,
                  sum(completion_tokens) AS completion_tokens, sum(cost_nano) AS cost_nano FROM events GROUP BY 1, 2, 3""")}
    kept = {(r["cost_source"], r["pending"], r["quarter"]): r for r in db.query("SELECT * FROM events_cost_quarter")}
    problems += _differences(expected, kept, QUARTER_COLUMNS, lambda key, c, have, want:
                             f"events_cost_quarter {key[0]}{' pending' if key[1] else ''} quarter {key[2]}: {c} {have} ≠ events {want}")
    return problems


def _differences(expected: dict, kept: dict, columns, describe) -> list[str]:
    """Every column that differs between two tables of sums keyed alike (a missing row counts as zeros)."""
    zero = dict.fromkeys(columns, 0)
    problems = []
    for key in sorted(set(expected) | set(kept)):
        want, have = expected.get(key, zero), kept.get(key, zero)
        problems += [describe(key, c, have[c], want[c]) for c in columns if want[c] != have[c]]
    return problems


# --- spend counters -------------------------------------------------------------------------------------


def _spend_counters(db, zone, pruned: int) -> list[str]:
    expected: dict[tuple, int] = defaultdict(int)
    # spend not attributed to a user is no one's: it counts toward no budget
    for q in db.query("SELECT ts / 900000 AS quarter, user_id, sum(cost_nano) AS cost FROM events WHERE user_id != ? GROUP BY quarter, user_id",
                      (UNATTRIBUTED,)):
        day = _local_day(q["quarter"], zone)
        for period in CALENDAR_PERIODS:
            expected[(q["user_id"], period, period_start(period, day)[0])] += q["cost"]
    kept = {(r["user_id"], r["period"], r["start"]): r["cost_nano"] for r in db.query("SELECT * FROM spend WHERE period != 'none'")}
    problems = []
    for key in sorted(set(expected) | set(kept)):
        if _day_start_ms(dt.date.fromisoformat(key[2]), zone) < pruned:
            continue
        if expected.get(key, 0) != kept.get(key, 0):
            problems.append(f"spend counter user {key[0]!r} {key[1]} from {key[2]}: {kept.get(key, 0)} ≠ events {expected.get(key, 0)}")
    return problems


def _allowance_counters(db, pruned: int) -> list[str]:
    """One-off allowances count every answer given since they began."""
    starts = {r["since"] for r in db.query("SELECT DISTINCT since FROM budgets WHERE period = 'none'")}
    kept = {(r["user_id"], r["start"]): r["cost_nano"] for r in db.query("SELECT * FROM spend WHERE period = 'none'")}
    problems = [f"spend counter user {u!r} of a one-off allowance from {s} that no budget has" for u, s in sorted(kept) if not s.isdigit() or int(s) not in starts]
    for since in sorted(starts):
        if since < pruned:
            continue
        expected = {r["user_id"]: r["cost"] for r in db.query(
            "SELECT user_id, sum(cost_nano) AS cost FROM events WHERE ts >= ? AND user_id != ? GROUP BY user_id", (since, UNATTRIBUTED))}
        have = {u: c for (u, s), c in kept.items() if s == str(since)}
        for user in sorted(set(expected) | set(have)):
            if expected.get(user, 0) != have.get(user, 0):
                problems.append(f"one-off allowance counter user {user!r} from {since}: {have.get(user, 0)} ≠ events {expected.get(user, 0)}")
    return problems


# --- balances -------------------------------------------------------------------------------------------


def _balances(db, pruned: int) -> list[str]:
    problems = []
    for r in db.query(
        """SELECT b.user_id, b.since, b.after_event, b.spent_nano,
                  (SELECT coalesce(sum(e.cost_nano), 0) FROM events e WHERE e.user_id = b.user_id AND e.id > b.after_event) AS used
           FROM balances b"""
    ):
        if r["since"] >= pruned and r["spent_nano"] != r["used"]:
            problems.append(f"balance of user {r['user_id']!r}: {r['spent_nano']} spent ≠ the answers recorded since it began "
                            f"(after answer {r['after_event']}) {r['used']}")
    # (a pseudonym may hold several: the same person, erased and back as a new user, each time)
    for r in db.query("""SELECT user_id, count(*) AS n FROM balance_entries WHERE actor = 'system' AND note = 'initial balance'
                         AND user_id NOT LIKE 'erased-%' GROUP BY user_id HAVING n > 1"""):
        problems.append(f"balance of user {r['user_id']!r}: the initial balance was granted {r['n']} times")
    for r in db.query("SELECT DISTINCT user_id FROM balance_entries WHERE user_id NOT IN (SELECT user_id FROM balances)"):
        problems.append(f"balance entries of user {r['user_id']!r} without a balance")
    return problems


# --- statements -----------------------------------------------------------------------------------------


def _statements(db, settings, zone, pruned: int) -> list[str]:
    """Each month's summary (what statements print per user) against the events of that month."""
    from .reports import Period, summary_rows

    span = db.query_one("SELECT min(ts) AS first, max(ts) AS last FROM events")
    if span["first"] is None:
        return []
    meter = _ReportMeter(db, settings)
    problems = []
    month = dt.datetime.fromtimestamp(span["first"] / 1000, tz=zone).date().replace(day=1)
    last = dt.datetime.fromtimestamp(span["last"] / 1000, tz=zone).date()
    while month <= last:
        period = Period.month(month.strftime("%Y-%m"), zone.key)
        month = period.end + dt.timedelta(days=1)
        if period.start_ms < pruned:
            continue
        rows = {r["user_id"]: r for r in summary_rows(meter, period)}
        events = {r["user_id"]: r for r in db.query(
            "SELECT user_id, count(*) AS answers, sum(cost_nano) AS cost FROM events WHERE ts >= ? AND ts < ? AND user_id != ? GROUP BY user_id",
            (period.start_ms, period.end_ms, UNATTRIBUTED))}  # no one's spend has no statement
        for user in sorted(set(rows) | set(events)):
            row, want = rows.get(user), events.get(user, {"answers": 0, "cost": 0})
            if row is None:
                problems.append(f"statement {period.start:%Y-%m} of user {user!r}: missing, the events have {want['answers']} answers")
            elif (row["answers"], row["cost"]) != (want["answers"], want["cost"]):
                problems.append(f"statement {period.start:%Y-%m} of user {user!r}: {row['answers']} answers, {row['cost']} ≠ events "
                                f"{want['answers']} answers, {want['cost']}")
            elif row["charges"].total != charges(settings, want["cost"], want["answers"]).total:
                problems.append(f"statement {period.start:%Y-%m} of user {user!r}: total due {row['charges'].total} does not follow from the events")
    return problems


class _ReportMeter:
    """What reports.summary_rows reads from a meter: the database and the settings."""

    def __init__(self, db, settings):
        self.db, self.settings = db, settings
