"""The database layer: migrations, pragmas, one writer, group commit; the ledger's daily totals."""

import concurrent.futures
import threading

import apsw
import pytest

from conftest import ADA, make_settings, outlet_body
from owui_meter import create_app, db as dbmod, ingest


def test_migrations_apply_once_and_set_user_version(tmp_path):
    path = str(tmp_path / "m.db")
    first = dbmod.Database(path)
    last = dbmod.migrations()[-1][0]
    assert first.applied_migrations == [name for _, name, _ in dbmod.migrations()]
    assert first.query_one("PRAGMA user_version")["user_version"] == last
    first.close()
    again = dbmod.Database(path)
    assert again.applied_migrations == []
    again.close()


def test_pragmas(meter):
    writer = meter.db._writer
    assert writer.execute("PRAGMA journal_mode").fetchall()[0]["journal_mode"] == "wal"
    assert writer.execute("PRAGMA synchronous").fetchall()[0]["synchronous"] == 1  # NORMAL
    assert writer.execute("PRAGMA foreign_keys").fetchall()[0]["foreign_keys"] == 1
    assert meter.db.query_one("PRAGMA busy_timeout")["timeout"] >= 5000


def test_readers_cannot_write(meter):
    with pytest.raises(apsw.ReadOnlyError):
        meter.db.reader().execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")


def test_group_commit_isolates_a_failing_job(meter):
    barrier = threading.Barrier(8)

    def job(i):
        barrier.wait()

        def work(conn):
            conn.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (f"k{i}",))
            if i == 3:
                raise ValueError("job 3 fails")
            return i

        return meter.db.submit(work)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(job, i) for i in range(8)]
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result())
        except ValueError as exc:
            outcomes.append(str(exc))
    assert outcomes == [0, 1, 2, "job 3 fails", 4, 5, 6, 7]
    keys = {r["key"] for r in meter.db.query("SELECT key FROM meta WHERE key LIKE 'k%'")}
    assert keys == {f"k{i}" for i in range(8) if i != 3}


def test_write_rolls_back_on_error(meter):
    with pytest.raises(RuntimeError):
        with meter.db.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('half', 'done')")
            raise RuntimeError("boom")
    assert dbmod.get_meta(meter.db, "half") is None


def test_a_failed_commit_is_rolled_back_and_later_writes_go_on(tmp_path):
    """A COMMIT that fails (here a deferred foreign key; in life a full disk) must not leave the
    writer inside a transaction, where every later write would fail."""
    database = dbmod.Database(str(tmp_path / "c.db"))
    with database.write() as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(apsw.ConstraintError):
        with database.write() as conn:
            conn.execute("INSERT INTO child VALUES (7)")  # no parent 7: refused at COMMIT only
    with pytest.raises(apsw.ConstraintError):
        database.submit(lambda conn: conn.execute("INSERT INTO child VALUES (8)"))
    with database.write() as conn:
        conn.execute("INSERT INTO parent VALUES (1)")
    assert database.submit(lambda conn: conn.execute("INSERT INTO child VALUES (1) RETURNING parent").fetchall()) == [{"parent": 1}]
    assert database.query("SELECT parent FROM child") == [{"parent": 1}]
    database.close()


@pytest.mark.breaks_figures  # confirms a cost without any generation: set_cost alone, not the resolver
def test_cost_change_moves_daily_totals_and_tells_listeners(meter):
    seen = []
    meter.ledger.cost_listeners.append(lambda conn, row, delta, new: seen.append((row["key"], delta, new)))
    recorded = meter.ledger.record(ingest.parse_outlet(outlet_body(key="c1", cost=0.001)))
    with meter.db.write() as conn:
        meter.ledger.set_cost(conn, recorded.event_id, 1_250_000, "generation", "confirmed")
    assert seen == [("c1", 1_000_000, True), ("c1", 250_000, False)]
    [daily] = meter.db.query("SELECT answers, cost_nano, confirmed_cost_nano FROM usage_daily")
    assert daily == {"answers": 1, "cost_nano": 1_250_000, "confirmed_cost_nano": 1_250_000}
    row = meter.db.query_one("SELECT cost_nano, cost_source, inline_cost_nano, lookup_state FROM events")
    assert row == {"cost_nano": 1_250_000, "cost_source": "generation", "inline_cost_nano": 1_000_000, "lookup_state": "confirmed"}


def test_time_zone_change_rebuilds_daily_totals(data_dir, plugin_headers):
    import datetime as dt

    app = create_app(make_settings(data_dir))
    ts = dt.datetime(2026, 11, 10, 23, 30, tzinfo=dt.timezone.utc).timestamp()
    meter = app.config["METER"]
    from owui_meter import clock

    original = clock.time_fn
    clock.time_fn = lambda: ts + 60
    try:
        meter.ledger.record(ingest.parse_outlet(outlet_body(key="tz", timestamp=ts, user=ADA)))
    finally:
        clock.time_fn = original
    assert [r["day"] for r in meter.db.query("SELECT day FROM usage_daily")] == ["2026-11-10"]
    meter.stop()
    moved = create_app(make_settings(data_dir, METER_TIMEZONE="Europe/Berlin"))
    assert [r["day"] for r in moved.config["METER"].db.query("SELECT day, answers FROM usage_daily")] == ["2026-11-11"]
    moved.config["METER"].stop()


ROLLUPS = {"usage_day_user": "user_id", "usage_day_model": "model", "usage_day_source": "source", "usage_model_source_day": "model, source"}
SUMS = "sum(answers) AS answers, sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(reasoning_tokens) AS r, " \
       "sum(cached_tokens) AS k, sum(cost_nano) AS cost, sum(confirmed_cost_nano) AS confirmed"


def assert_rollups_match(db):
    """Each rollup holds exactly usage_daily grouped by day and its key, no row more or less; the
    cost-state rollup exactly the events grouped by cost source, lookup pending and quarter hour."""
    for table, key in ROLLUPS.items():
        expected = db.query(f"SELECT day, {key}, {SUMS} FROM usage_daily GROUP BY day, {key} ORDER BY day, {key}")
        kept = db.query(f"SELECT day, {key}, {SUMS} FROM {table} GROUP BY day, {key} ORDER BY day, {key}")
        assert kept == expected, table
    expected = db.query(f"SELECT substr(day, 1, 7) AS month, user_id, {SUMS} FROM usage_daily GROUP BY 1, 2 ORDER BY 1, 2")
    assert db.query(f"SELECT month, user_id, {SUMS} FROM usage_month_user GROUP BY 1, 2 ORDER BY 1, 2") == expected, "usage_month_user"
    expected = db.query(f"SELECT substr(day, 1, 7) AS month, user_id, model, source, {SUMS} FROM usage_daily GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
    kept = db.query(f"SELECT month, user_id, model, source, {SUMS} FROM usage_month_user_model GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
    assert kept == expected, "usage_month_user_model"
    expected = db.query("""SELECT cost_source, lookup_state = 'pending' AS pending, ts / 900000 AS quarter, count(*) AS answers,
                                  sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(cost_nano) AS cost FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""")
    kept = db.query("SELECT cost_source, pending, quarter, answers, prompt_tokens AS p, completion_tokens AS c, cost_nano AS cost FROM events_cost_quarter ORDER BY 1, 2, 3")
    assert kept == expected and expected, "events_cost_quarter"


def test_rollups_follow_every_change_of_the_daily_totals(data_dir, admin_headers, plugin_headers, monkeypatch):
    from owui_meter import clock
    from owui_meter.erasure import erase_user

    now = [1_795_900_000.0]  # 28 November: the answers cross into December (month rollup)
    monkeypatch.setattr(clock, "time_fn", lambda: now[0])
    app = create_app(make_settings(data_dir))
    meter, client = app.config["METER"], app.test_client()
    bob = {"id": "bob", "email": "bob@example.com"}
    eve = {"id": "eve", "email": "eve@example.com"}
    for i, (user, model) in enumerate([(ADA, "m1"), (ADA, "m2"), (bob, "m1"), (eve, "m2"), (eve, "m1")] * 3):
        now[0] += 3600 * 7  # spread over days
        body = outlet_body(key=f"k{i}", user=user, model=model, cost=0.25 * (i + 1), generation_ids=[f"gen-{i}"],
                           source="api" if i % 4 == 0 else None)
        assert client.post("/api/v1/outlet", json=body, headers=plugin_headers).status_code == 202
    assert_rollups_match(meter.db)
    # a confirmed cost replacing the inline one
    row = meter.db.query_one("SELECT * FROM events WHERE key = 'k3'")
    with meter.db.write() as conn:
        meter.ledger.set_cost(conn, row["id"], 9_000_000_000, "generation")
    assert_rollups_match(meter.db)
    # the lookup done: the answer leaves the awaiting ones for the confirmed ones
    row = meter.db.query_one("SELECT * FROM events WHERE key = 'k4'")
    with meter.db.write() as conn:
        meter.ledger.set_cost(conn, row["id"], 1_000_000_000, "generation", "confirmed")
    assert_rollups_match(meter.db)
    assert meter.db.query_one("SELECT answers FROM events_cost_quarter WHERE cost_source = 'generation' AND pending = 0")["answers"] == 1
    erase_user(meter, "bob", "anonymise", "test")
    assert_rollups_match(meter.db)
    erase_user(meter, "eve", "delete", "test")
    assert_rollups_match(meter.db)
    assert meter.db.query_one("SELECT count(*) AS n FROM usage_day_user WHERE user_id = 'eve'")["n"] == 0
    meter.stop()
    moved = create_app(make_settings(data_dir, METER_TIMEZONE="Pacific/Auckland"))  # rebuilt in another zone
    assert_rollups_match(moved.config["METER"].db)
    day_total = moved.config["METER"].db.query_one("SELECT sum(cost_nano) AS c FROM usage_day_source")["c"]
    assert day_total == moved.config["METER"].db.query_one("SELECT sum(cost_nano) AS c FROM events")["c"]
    moved.config["METER"].stop()
