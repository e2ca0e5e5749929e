"""Importing an owui-metering database, built here from its known schema."""

import sqlite3

import pytest

from test_cli import run


@pytest.fixture
def old_db(tmp_path):
    path = tmp_path / "data.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, email TEXT, role TEXT, source TEXT)")
        conn.execute("""CREATE TABLE activities (id TEXT PRIMARY KEY, timestamp INTEGER, user_id TEXT, model TEXT, prompt_token INTEGER,
                        completion_token INTEGER, reasoning_token INTEGER, cost REAL, cached_tokens INTEGER, provider TEXT, chat_id TEXT, source TEXT)""")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, 'openwebui')", [("u1", "Ada", "ada@example.com", "admin"), ("u2", "Bob", "bob@example.com", "user"), ("u3", "Idle", "idle@example.com", "user")])
        conn.executemany("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'OpenAI', ?, ?)", [
            ("act-1", 1_790_000_000, "u1", "openai/gpt-4o-mini", 10, 20, 0, 9.15e-06, 0, "chat-1", "ui"),
            ("act-2", 1_790_000_100, "u2", "anthropic/claude-3.5-haiku", 100, 200, 5, 0.0012, 3, "", "api"),
            ("act-3", 1_790_000_200_000, "u2", "openai/gpt-4o-mini", 1, 2, None, None, None, None, None),
        ])
    return path


def test_import_is_exact_and_idempotent(data_dir, old_db):
    first = run(data_dir, "import-owui-metering", str(old_db))
    assert first.returncode == 0, first.stderr
    assert "users: 3, activities: 3, imported: 3, already there: 0" in first.stdout
    second = run(data_dir, "import-owui-metering", str(old_db))
    assert "imported: 0, already there: 3" in second.stdout
    with sqlite3.connect(data_dir / "meter.db") as conn:
        rows = conn.execute("SELECT key, user_id, cost_nano, cost_source, ts, source, prompt_tokens FROM events ORDER BY key").fetchall()
        users = {r[0] for r in conn.execute("SELECT email FROM users")}
    assert rows == [
        ("act-1", "u1", 9150, "inline", 1_790_000_000_000, "ui", 10),
        ("act-2", "u2", 1_200_000, "inline", 1_790_000_100_000, "api", 100),
        ("act-3", "u2", 0, "unpriced", 1_790_000_200_000, "ui", 1),
    ]
    assert users == {"ada@example.com", "bob@example.com", "idle@example.com"}


def test_import_of_something_else_fails_cleanly(data_dir, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("nope")
    result = run(data_dir, "import-owui-metering", str(junk))
    assert result.returncode == 1 and "not an owui-metering database" in result.stderr and "Traceback" not in result.stderr
