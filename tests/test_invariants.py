"""`owui-meter check`: every derived figure recomputed from the events; it tells what differs."""

import datetime as dt

import pytest

from conftest import ADA, API_KEY, BOB, assert_invariants, outlet_body
from owui_meter.invariants import check_file
from test_cli import run

H = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def seeded(client, meter, admin_headers):
    client.post("/api/v1/budgets", json={"scope": "all", "period": "none", "limit_usd": 100}, headers=admin_headers)
    for i, (user, cost) in enumerate(((ADA, 1.25), (BOB, 0.5), (ADA, 0.004))):
        assert client.post("/api/v1/outlet", json=outlet_body(key=f"k{i}", user=user, cost=cost), headers=H).status_code == 202
    with meter.db.write() as conn:
        conn.execute("INSERT INTO balances (user_id, since, after_event) VALUES (?, 0, 0)", (ADA["id"],))
        conn.execute("UPDATE balances SET spent_nano = (SELECT sum(cost_nano) FROM events WHERE user_id = ?)", (ADA["id"],))
    return meter


def test_a_consistent_meter_checks_ok(seeded, data_dir):
    assert_invariants(seeded)
    result = run(data_dir, "check")
    assert result.returncode == 0 and result.stdout == "ok\n", result.stdout + result.stderr


# each breaks one derived figure the way a bug would, and names what the check must say
BREAKAGES = [
    ("UPDATE usage_daily SET cost_nano = cost_nano + 1 WHERE user_id = :ada", "daily totals"),
    ("UPDATE usage_daily SET answers = answers - 1 WHERE user_id = :bob", "answers 0 ≠ events 1"),
    ("DELETE FROM usage_daily WHERE user_id = :bob", "daily totals"),
    ("UPDATE usage_day_model SET completion_tokens = completion_tokens + 1", "usage_day_model"),
    ("DELETE FROM usage_day_user WHERE user_id = :bob", "usage_day_user"),
    ("UPDATE usage_model_source_day SET cost_nano = cost_nano - 1", "usage_model_source_day"),
    ("DELETE FROM usage_model_source_day", "usage_model_source_day"),
    ("UPDATE usage_month_user SET answers = answers + 1 WHERE user_id = :ada", "usage_month_user"),
    ("DELETE FROM usage_month_user_model WHERE user_id = :bob", "usage_month_user_model"),
    ("UPDATE events_cost_quarter SET prompt_tokens = prompt_tokens + 1", "events_cost_quarter"),
    ("DELETE FROM events_cost_quarter WHERE cost_source = 'inline'", "events_cost_quarter inline"),
    ("UPDATE spend SET cost_nano = cost_nano + 7 WHERE user_id = :ada AND period = 'month'", "spend counter"),
    ("UPDATE spend SET cost_nano = 0 WHERE user_id = :bob AND period = 'none'", "one-off allowance counter"),
    ("INSERT INTO spend VALUES (:ada, 'none', '1', 5)", "no budget has"),
    ("UPDATE balances SET spent_nano = spent_nano - 1", "balance of user"),
    ("INSERT INTO balance_entries (user_id, ts, amount_nano, actor, note) VALUES (:ada, 0, 1, 'system', 'initial balance'), "
     "(:ada, 0, 1, 'system', 'initial balance')", "granted 2 times"),
    ("UPDATE events SET cost_nano = cost_nano + 1 WHERE key = 'k0'", "≠ its charges"),
    ("UPDATE events SET openrouter_nano = openrouter_nano + 1, cost_nano = cost_nano + 1 WHERE key = 'k0'", "inline cost"),
    ("UPDATE events SET cost_source = 'generation', lookup_state = 'confirmed' WHERE key = 'k1'", "0 of 0 generations"),
    ("INSERT INTO generations (id, event_id, state, created, next_try, total_cost_nano) SELECT 'gen-x', id, 'done', 0, 0, 3 FROM events WHERE key = 'k1'",
     "no lookup but 1 generations"),
]


@pytest.mark.breaks_figures
@pytest.mark.parametrize("sql, says", BREAKAGES)
def test_each_broken_figure_is_named_and_the_command_exits_1(seeded, data_dir, sql, says):
    with seeded.db.write() as conn:
        conn.execute(sql, {"ada": ADA["id"], "bob": BOB["id"]})
    problems = check_file(seeded.db.path, seeded.settings)
    assert any(says in p for p in problems), problems
    result = run(data_dir, "check", "--data-dir", str(data_dir))
    assert result.returncode == 1 and says in result.stdout and "difference" in result.stderr


@pytest.mark.breaks_figures
def test_a_statement_that_disagrees_with_the_events_is_named(seeded):
    # daily totals moved to another month: the month's statement no longer matches its events
    with seeded.db.write() as conn:
        conn.execute("UPDATE usage_daily SET day = '2001-01-01' WHERE user_id = ?", (BOB["id"],))
    problems = check_file(seeded.db.path, seeded.settings)
    assert any(p.startswith("statement ") and BOB["id"] in p for p in problems), problems


def test_check_only_reads(seeded, data_dir):
    before = (data_dir / "meter.db").stat().st_mtime_ns, seeded.db.query("SELECT * FROM usage_daily ORDER BY day, user_id, model")
    assert run(data_dir, "check").returncode == 0
    assert (data_dir / "meter.db").stat().st_mtime_ns == before[0]
    assert seeded.db.query("SELECT * FROM usage_daily ORDER BY day, user_id, model") == before[1]


def test_check_without_a_database_says_so(tmp_path):
    result = run(tmp_path / "nowhere", "check")
    assert result.returncode == 1 and "no database" in result.stdout


def test_pruned_days_are_not_recomputed(seeded, monkeypatch):
    """After retention, the daily totals of pruned days are the record: not a difference."""
    from owui_meter import clock
    from owui_meter.retention import prune

    monkeypatch.setattr(clock, "time_fn", lambda: (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).timestamp())
    seeded.settings = seeded.settings.replace(METER_RETENTION_DAYS=30)
    assert prune(seeded) == 3
    assert_invariants(seeded)
