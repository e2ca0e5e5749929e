"""Importing an OWUI-Metering database built here with its schema: the filter's rows and its OTLP
receiver's rows, seconds timestamps; the dry run against what the import then stores."""

import datetime as dt
import re
import sqlite3
from decimal import Decimal

import pytest

from conftest import API_KEY
from test_cli import run

ADA = ("3f1c2a9e-0b5d-4c1e-9f7a-1d2e3f4a5b6c", "Ada", "ada@example.com", "admin")
BOB = ("7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", "Bob", "bob@example.com", "user")
IDLE = ("0c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f", "Idle", "idle@example.com", "user")

# OWUI-Metering's tables as its drizzle schema creates them (src/lib/server/db/schema.ts), with
# the source and chat id columns of the versions that have its OTLP receiver.
USERS_SQL = "CREATE TABLE users (id text PRIMARY KEY NOT NULL, name text NOT NULL, email text NOT NULL, role text NOT NULL)"
ACTIVITIES_SQL = """CREATE TABLE activities (id text PRIMARY KEY NOT NULL, timestamp integer NOT NULL, user_id text NOT NULL,
    model text NOT NULL, prompt_token integer NOT NULL, completion_token integer NOT NULL, reasoning_token integer,
    cost real NOT NULL, cached_tokens integer, provider text, reason text{extra})"""

# (id, timestamp in seconds, user, model, prompt, completion, reasoning, cost, cached, chat id, source)
FILTER_ROWS = [
    ("msg-ada-1", 1_790_000_000, ADA[0], "openai/gpt-4o-mini", 10, 20, None, 9.15e-06, None, "chat-1", "openwebui"),
    ("msg-bob-1", 1_790_000_100, BOB[0], "anthropic/claude-3.5-haiku", 100, 200, 5, 0.0012, 3, "chat-2", "openwebui"),
    ("msg-bob-2", 1_790_500_000, BOB[0], "openai/gpt-4o-mini", 7, 9, None, -0.5, None, "chat-2", "openwebui"),  # a broken cost
]
TRACE_ROWS = [  # ids are base64(trace id) + base64(span id), as its receiver makes them
    ("q83vEjRWeJCrze8SNFZ4kA==AQIDBAUGBwg=", 1_790_003_600, "nouserid", "openai/gpt-4o", 50, 100, 10, 0.02, 20, None, "otlp"),
    ("ERERERERERERERERERERSA==AgICAgICAgI=", 1_790_090_000, BOB[0], "google/gemini-2.5-flash", 30, 40, None, 0.000345, None, None, "otlp"),
    ("IiIiIiIiIiIiIiIiIiIiIg==AwMDAwMDAwM=", 1_790_200_000, "user-of-another-app", "openai/gpt-4o", 1000, 2000, None, 0.5, None, None, "otlp"),
]


def make_db(path, rows, *, with_source=True):
    extra = ", chat_id text, source text" if with_source else ""
    with sqlite3.connect(path) as conn:
        conn.execute(USERS_SQL)
        conn.execute(ACTIVITIES_SQL.format(extra=extra))
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", [ADA, BOB, IDLE])
        if with_source:
            conn.executemany("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'openai', 'stop', ?, ?)", rows)
        else:
            conn.executemany("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'openai', 'stop')", [r[:9] for r in rows])
    conn.close()
    return path


@pytest.fixture
def old_db(tmp_path):
    return make_db(tmp_path / "data.db", FILTER_ROWS + TRACE_ROWS)


def ledger(data_dir, sql, params=()):
    with sqlite3.connect(data_dir / "meter.db") as conn:
        rows = conn.execute(sql, params).fetchall()
    conn.close()
    return rows


def files(data_dir):
    """Bytes of the meter's database files (the WAL holds what is not checkpointed yet)."""
    return {p.name: p.read_bytes() for p in sorted(data_dir.iterdir()) if p.name.startswith("meter.db") and not p.name.endswith("-shm")}


def usd(text):
    return int(Decimal(text) * 10**9)


def report(stdout):
    """The figures of a dry run or an import, verbs made equal."""
    lines = stdout.replace("would import", "imported").splitlines()
    return lines[1:]  # after "DRY RUN: …" / "Import done."


def test_dry_run_changes_nothing_and_matches_what_the_import_stores(data_dir, old_db, client):
    # the old filter posted one answer to the alias while both ran (Open WebUI 0.6)
    alias = client.post("/api/v1/metering/record", headers={"Authorization": API_KEY}, json={
        "user": {"id": ADA[0], "name": ADA[1], "email": ADA[2], "role": ADA[3]},
        "activity": {"id": "msg-ada-1", "timestamp": 1_790_000_000, "user_id": ADA[0], "model": "openai/gpt-4o-mini",
                     "prompt_token": 10, "completion_token": 20, "cost": 9.15e-06}})
    assert alias.status_code == 200
    before = files(data_dir)

    dry = run(data_dir, "import-owui-metering", "--dry-run", str(old_db))
    assert dry.returncode == 0, dry.stderr
    assert files(data_dir) == before
    out = dry.stdout
    assert out.startswith("DRY RUN: nothing was changed.")
    assert "source: 3 users, 6 activities" in out
    assert "would import users: 2 new to the meter" in out  # Bob and Idle; Ada came through the alias
    assert "would import answers: 4 (2 by 1 users, 2 not attributed to a user)" in out
    assert "  already in the meter: 1 (e.g. activity 'msg-ada-1')" in out
    assert "  cost is not a non-negative number: 1 (e.g. activity 'msg-bob-2')" in out
    assert "skipped: 2" in out
    assert "nouserid" not in out

    answers = int(re.search(r"would import answers: (\d+)", out).group(1))
    total, nobody = (usd(v) for v in re.search(r"total cost: \$([\d.]+) \(\$([\d.]+) of it not attributed", out).groups())
    first, last = re.search(r"date range: (\S+) to (\S+)", out).groups()
    per_user = {label: (int(n), usd(cost)) for label, n, cost in re.findall(r"^  (.+): (\d+) answers, \$([\d.]+)$", out, re.M)}

    done = run(data_dir, "import-owui-metering", str(old_db))
    assert done.returncode == 0, done.stderr
    assert report(done.stdout) == report(out)

    keys = [r[0] for r in FILTER_ROWS + TRACE_ROWS if r[0] not in ("msg-ada-1", "msg-bob-2")]
    marks = ",".join("?" * len(keys))
    count, cost, start, end = ledger(data_dir, f"SELECT count(*), sum(cost_nano), min(ts), max(ts) FROM events WHERE key IN ({marks})", keys)[0]
    assert (count, cost) == (answers, total)
    assert (start, end) == (1_790_000_100_000, 1_790_200_000_000)
    assert [dt.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000 for t in (first, last)] == [start, end]
    stored = {name or user_id: (n, c) for user_id, name, n, c in ledger(
        data_dir, f"""SELECT e.user_id, u.name, count(*), sum(e.cost_nano) FROM events e JOIN users u ON u.id = e.user_id
                      WHERE e.key IN ({marks}) GROUP BY e.user_id""", keys)}
    assert per_user == {"Bob <bob@example.com>": stored["Bob"], "Not attributed to a user": stored["Not attributed to a user"]}
    assert stored["Not attributed to a user"] == (2, nobody) == (2, 20_000_000 + 500_000_000)
    assert stored["Bob"] == (2, 1_200_000 + 345_000)
    # the ledger's daily totals (charts, statements) took exactly the same
    assert ledger(data_dir, "SELECT sum(answers), sum(cost_nano) FROM usage_daily")[0] == (answers + 1, total + 9150)


def test_who_and_what_each_row_becomes(data_dir, old_db):
    assert run(data_dir, "import-owui-metering", str(old_db)).returncode == 0
    rows = ledger(data_dir, "SELECT key, user_id, source, cost_nano, cost_source, prompt_tokens, reasoning_tokens, cached_tokens, chat_id FROM events ORDER BY ts")
    assert rows == [
        ("msg-ada-1", ADA[0], "ui", 9150, "inline", 10, 0, 0, "chat-1"),
        ("msg-bob-1", BOB[0], "ui", 1_200_000, "inline", 100, 5, 3, "chat-2"),
        (TRACE_ROWS[0][0], "unattributed", "api", 20_000_000, "inline", 50, 10, 20, None),
        (TRACE_ROWS[1][0], BOB[0], "api", 345_000, "inline", 30, 0, 0, None),  # a trace of a known user stays theirs
        (TRACE_ROWS[2][0], "unattributed", "api", 500_000_000, "inline", 1000, 0, 0, None),
    ]
    users = {r[0]: r[1:] for r in ledger(data_dir, "SELECT id, name, email, first_seen, last_seen FROM users")}
    assert set(users) == {ADA[0], BOB[0], IDLE[0], "unattributed"}  # no "nouserid", no other app's user
    assert users["unattributed"][:2] == ("Not attributed to a user", None)
    assert users[BOB[0]] == ("Bob", "bob@example.com", 1_790_000_100_000, 1_790_090_000_000)  # seen when they chatted
    assert users[IDLE[0]] == ("Idle", "idle@example.com", 0, 0)  # never chatted
    # no one's spend counts toward any budget
    assert ledger(data_dir, "SELECT count(*) FROM spend WHERE user_id = 'unattributed'") == [(0,)]
    assert ledger(data_dir, "SELECT sum(cost_nano) FROM spend WHERE user_id = ? AND period = 'month'", (BOB[0],)) == [(1_545_000,)]


def test_reimport_changes_nothing(data_dir, old_db):
    first = run(data_dir, "import-owui-metering", str(old_db))
    assert "imported answers: 5 (3 by 2 users, 2 not attributed to a user)" in first.stdout
    snapshot = ledger(data_dir, "SELECT * FROM usage_daily ORDER BY day, user_id, model"), ledger(data_dir, "SELECT count(*), sum(cost_nano) FROM events")
    second = run(data_dir, "import-owui-metering", str(old_db))
    assert second.returncode == 0, second.stderr
    assert "imported answers: 0 (0 by 0 users, 0 not attributed to a user)" in second.stdout
    assert "imported users: 0 new to the meter" in second.stdout
    assert "  already in the meter: 5 (e.g. activity 'msg-ada-1')" in second.stdout
    assert (ledger(data_dir, "SELECT * FROM usage_daily ORDER BY day, user_id, model"), ledger(data_dir, "SELECT count(*), sum(cost_nano) FROM events")) == snapshot
    dry = run(data_dir, "import-owui-metering", "--dry-run", str(old_db))
    assert "would import answers: 0" in dry.stdout and "total cost: $0.000000000" in dry.stdout


@pytest.mark.parametrize("bad, shown", [
    (1_790_000_200_000, "1790000200000"),  # milliseconds
    (1_790_000_200_000_000_000, "1790000200000000000"),  # nanoseconds, as an OTLP span gives them
    (0, "0"),
    ("2026-09-21 12:00:00", "'2026-09-21 12:00:00'"),  # SQLite lets text into an integer column
    (4_102_444_800, "4102444800"),  # 2100: not yet
])
def test_timestamps_that_are_not_seconds_refuse_the_whole_import(data_dir, tmp_path, bad, shown):
    rows = FILTER_ROWS[:2] + [("msg-odd", bad, ADA[0], "openai/gpt-4o-mini", 1, 2, None, 0.001, None, None, "openwebui")]
    path = make_db(tmp_path / "odd.db", rows)
    for args in (("--dry-run", str(path)), (str(path),)):
        result = run(data_dir, "import-owui-metering", *args)
        assert result.returncode == 1
        assert f"activity 'msg-odd' has timestamp {shown}" in result.stderr
        assert "Unix seconds" in result.stderr and "Nothing was imported." in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert ledger(data_dir, "SELECT count(*) FROM events") == [(0,)]
    assert ledger(data_dir, "SELECT count(*) FROM users") == [(0,)]


def test_many_bad_timestamps_are_summed_up(data_dir, tmp_path):
    rows = [(f"ms-{i}", 1_790_000_000_000 + i, ADA[0], "m", 1, 1, None, 0.0, None, None, "openwebui") for i in range(8)]
    result = run(data_dir, "import-owui-metering", "--dry-run", str(make_db(tmp_path / "ms.db", rows)))
    assert result.returncode == 1
    assert "but 8 of them are not" in result.stderr and "(and 3 more)" in result.stderr
    assert result.stderr.count("has timestamp") == 5


def test_the_published_schema_without_a_source_column(data_dir, tmp_path):
    path = make_db(tmp_path / "v0.3.db", FILTER_ROWS[:2] + TRACE_ROWS[:1], with_source=False)
    result = run(data_dir, "import-owui-metering", str(path))
    assert result.returncode == 0, result.stderr
    rows = ledger(data_dir, "SELECT key, user_id, source, chat_id FROM events ORDER BY ts")
    assert rows == [("msg-ada-1", ADA[0], "ui", None), ("msg-bob-1", BOB[0], "ui", None), (TRACE_ROWS[0][0], "unattributed", "api", None)]


def test_a_dry_run_on_a_fresh_data_directory_creates_nothing(data_dir, old_db):
    result = run(data_dir, "import-owui-metering", "--dry-run", str(old_db))
    assert result.returncode == 0, result.stderr
    assert "would import answers: 5 (3 by 2 users, 2 not attributed to a user)" in result.stdout
    assert "would import users: 3 new to the meter" in result.stdout
    assert "total cost: $0.521554150 ($0.520000000 of it not attributed to a user)" in result.stdout
    assert list(data_dir.iterdir()) == []  # no database, no generated secrets


def test_other_files_fail_cleanly(data_dir, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("nope")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE activities (id TEXT, timestamp INTEGER)")
    conn.close()
    for path, message in ((junk, "is not an OWUI-Metering database"), (other, "activities has no column user_id"),
                          (tmp_path / "missing.db", "no such file")):
        for args in (("--dry-run", str(path)), (str(path),)):
            result = run(data_dir, "import-owui-metering", *args)
            assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_traces_from_when_the_plugin_went_live_are_left_out(data_dir, old_db):
    """A chat both traced to OWUI-Metering and recorded by the plugin would count twice."""
    late = [r for r in FILTER_ROWS + TRACE_ROWS if r[-1] == "otlp" and r[1] >= dt.datetime(2026, 9, 23, tzinfo=dt.timezone.utc).timestamp()]
    assert [r[0] for r in late] == [TRACE_ROWS[2][0]]
    dry = run(data_dir, "import-owui-metering", "--dry-run", "--traces-before", "2026-09-23", str(old_db))
    assert f"  traced at or after --traces-before: 1 (e.g. activity {TRACE_ROWS[2][0]!r})" in dry.stdout
    done = run(data_dir, "import-owui-metering", "--traces-before", "2026-09-23T00:00:00Z", str(old_db))
    assert done.returncode == 0, done.stderr
    assert report(done.stdout) == report(dry.stdout)
    keys = {r[0] for r in ledger(data_dir, "SELECT key FROM events")}
    assert keys == {"msg-ada-1", "msg-bob-1", TRACE_ROWS[0][0], TRACE_ROWS[1][0]}  # the filter's rows all stay
    bad = run(data_dir, "import-owui-metering", "--traces-before", "last tuesday", str(old_db))
    assert bad.returncode == 2 and "--traces-before must be an ISO 8601 date or datetime" in bad.stderr
    assert {r[0] for r in ledger(data_dir, "SELECT key FROM events")} == keys
