"""Files the meter finds on disk: refused when not its own, private, scrubbed after an erasure,
and no backup copies left behind.

Refusals run the real ``owui-meter serve`` (and a maintenance command) as a child process: one
line on stderr naming the file and what is wrong, exit code 2, the file's bytes unchanged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time

import apsw
import pytest
import requests

from conftest import ADA, API_KEY, BOB, REPO, free_port, make_settings, meter_env, outlet_body
from owui_meter import db as dbmod
from owui_meter.backup import check
from owui_meter.meter import Meter

PLUGIN = {"Authorization": f"Bearer {API_KEY}"}


def run_meter(data_dir, *args, without_secrets=False, **extra) -> subprocess.CompletedProcess:
    """``owui-meter`` (serve by default) as a child process; root runs it without the capability
    to override file permissions, so an unreadable directory is unreadable to it too."""
    env = {**os.environ, **meter_env(data_dir, METER_PORT=free_port(), **extra), "PYTHONPATH": str(REPO)}
    if without_secrets:
        env.pop("API_KEY")
        env.pop("JWT_SECRET")
    command = [sys.executable, "-m", "owui_meter", *(args or ("serve",))]
    if os.getuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)


def snapshot(directory) -> dict:
    """Every file in ``directory`` with its bytes."""
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def assert_refused(result, *words):
    """Exit 2 with one line on stderr holding each of ``words``, nothing on stdout, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert result.stdout == ""


def made_meter_db(data_dir, users=0) -> None:
    """A real meter database with ``users`` users, closed (its WAL folded back in)."""
    meter = Meter.open(make_settings(data_dir))
    with meter.db.write() as conn:
        for n in range(users):
            conn.execute("INSERT INTO users (id, email, name, first_seen, last_seen) VALUES (?, ?, ?, 0, 0)", (f"user-{n}", f"u{n}@example.com", "x" * 200))
    meter.stop()


# --- files that are not the meter's own ---------------------------------------------------------


def test_a_database_from_a_newer_schema_is_refused_untouched(data_dir):
    made_meter_db(data_dir)
    conn = apsw.Connection(str(data_dir / "meter.db"))
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = snapshot(data_dir)
    result = run_meter(data_dir, without_secrets=True)
    assert_refused(result, str(data_dir / "meter.db"), "newer owui-meter", "999")
    assert snapshot(data_dir) == before  # same bytes, no WAL, no lock file, no secrets.json
    # a maintenance command refuses it the same way
    assert_refused(run_meter(data_dir, "report", "--month", "2026-11", "--out", str(data_dir.parent / "out")), "newer owui-meter")
    assert snapshot(data_dir) == before


def test_another_applications_sqlite_file_is_refused_untouched(data_dir):
    other = sqlite3.connect(data_dir / "meter.db")
    other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    other.execute("INSERT INTO notes (text) VALUES ('not yours')")
    other.commit()
    other.close()
    before = snapshot(data_dir)
    result = run_meter(data_dir, without_secrets=True)
    assert_refused(result, str(data_dir / "meter.db"), "not an owui-meter database", "notes")
    assert snapshot(data_dir) == before
    assert before["meter.db"][18:20] == b"\x01\x01"  # still a rollback-journal file: no switch to WAL


def test_a_garbage_database_is_refused_untouched(data_dir):
    (data_dir / "meter.db").write_bytes(os.urandom(8192))
    before = snapshot(data_dir)
    assert_refused(run_meter(data_dir), str(data_dir / "meter.db"), "not an SQLite database")
    assert snapshot(data_dir) == before


def test_a_truncated_database_is_refused_untouched(data_dir):
    made_meter_db(data_dir, users=500)
    path = data_dir / "meter.db"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    before = snapshot(data_dir)
    assert_refused(run_meter(data_dir), str(path), "truncated", str(len(whole) // 2))
    assert snapshot(data_dir) == before


def test_a_database_cut_inside_its_header_is_refused(data_dir):
    made_meter_db(data_dir)
    path = data_dir / "meter.db"
    path.write_bytes(path.read_bytes()[:60])
    assert_refused(run_meter(data_dir), str(path), "truncated")


def test_an_unreadable_data_directory_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0)
    try:
        result = run_meter(data)
    finally:
        data.chmod(0o700)
    assert_refused(result, str(data), "permission denied")
    assert os.listdir(data) == []


def test_a_data_directory_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "data"
    path.write_text("a file")
    assert_refused(run_meter(path), str(path), "not a directory")
    assert path.read_text() == "a file"


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", ["not valid JSON", "line 1"]),
        ('["API_KEY", "JWT_SECRET"]', ["JSON object", "list"]),
        ('{"API_KEY": 12345}', ["API_KEY", "non-empty string"]),
        (b"\xff\xfe{}", ["not valid JSON"]),
    ],
    ids=["invalid-json", "a-list", "a-number-as-key", "not-utf8"],
)
def test_a_bad_secrets_file_is_refused_and_kept(data_dir, content, words):
    secrets = data_dir / "secrets.json"
    if isinstance(content, bytes):
        secrets.write_bytes(content)
    else:
        secrets.write_text(content)
    before = secrets.read_bytes()
    for command in (("serve",), ("api-key",)):
        assert_refused(run_meter(data_dir, *command, without_secrets=True), str(secrets), *words)
        assert secrets.read_bytes() == before  # never replaced with new keys


def test_a_good_secrets_file_is_still_used(data_dir):
    stored = {"API_KEY": "om_" + "k" * 40, "JWT_SECRET": "j" * 48}
    (data_dir / "secrets.json").write_text(json.dumps(stored))
    result = run_meter(data_dir, "api-key", without_secrets=True)
    assert result.returncode == 0 and result.stdout.strip() == stored["API_KEY"]


# --- private files ----------------------------------------------------------------------------


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_files_are_private(meter_process, data_dir):
    meter = meter_process()
    assert requests.post(meter.url + "/api/v1/outlet", json=outlet_body(key="private"), headers=PLUGIN, timeout=5).status_code == 202
    assert mode(data_dir) == 0o700
    for name in ("meter.db", "meter.db-wal", "meter.db-shm"):
        assert mode(data_dir / name) == 0o600, name


def test_files_left_open_by_an_older_version_are_made_private(meter_process, data_dir):
    made_meter_db(data_dir)
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "meter.db", 0o644)
    meter = meter_process()
    assert requests.post(meter.url + "/api/v1/outlet", json=outlet_body(key="private"), headers=PLUGIN, timeout=5).status_code == 202
    assert mode(data_dir) == 0o700
    for name in ("meter.db", "meter.db-wal", "meter.db-shm"):
        assert mode(data_dir / name) == 0o600, name


# --- erasure leaves nothing in the files --------------------------------------------------------


@pytest.mark.parametrize("erase_mode", ["anonymise", "delete"])
def test_an_erased_user_is_in_neither_the_database_nor_the_wal(client, meter, plugin_headers, admin_headers, data_dir, erase_mode):
    for n in range(40):  # enough rows to fill pages, and both users on the same pages
        for user in (ADA, BOB):
            response = client.post("/api/v1/outlet", json=outlet_body(key=f"{user is ADA}-{n}", user=user), headers=plugin_headers)
            assert response.status_code == 202
    meter.db.checkpoint()  # Ada's rows are in the database file itself, not only in the WAL
    path = data_dir / "meter.db"
    assert ADA["email"].encode() in path.read_bytes() and ADA["id"].encode() in path.read_bytes()

    response = client.delete(f"/api/v1/users/{ADA['id']}?mode={erase_mode}", headers=admin_headers)
    assert response.status_code == 200 and response.get_json()["answers"] == 40

    files = [path, data_dir / "meter.db-wal"]
    content = b"".join(f.read_bytes() for f in files if f.exists())
    for secret in (ADA["id"], ADA["email"], ADA["name"]):
        assert secret.encode() not in content, secret
    assert BOB["email"].encode() in content  # the others are still there
    assert client.get("/api/v1/events?limit=1000", headers=admin_headers).get_json()["events"]


# --- backups to download ------------------------------------------------------------------------


def test_backup_downloads_leave_nothing_in_the_temp_directory(live_meter, tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    auth = {"Authorization": f"Bearer {live_meter.admin_token}"}
    for n in range(3):
        assert requests.post(live_meter.url + "/api/v1/outlet", json=outlet_body(key=f"b-{n}"), headers=PLUGIN, timeout=5).status_code == 202
    for n in range(4):
        response = requests.get(live_meter.url + "/api/v1/backup", headers=auth, timeout=10)
        assert response.status_code == 200
        copy = tmp_path / f"download-{n}.db"
        copy.write_bytes(response.content)
        check(str(copy))
        conn = apsw.Connection(str(copy))
        assert {row[0] for row in conn.execute("SELECT key FROM events")} == {"b-0", "b-1", "b-2"}
        conn.close()
    for _ in range(2):  # clients that go away mid-download
        with requests.get(live_meter.url + "/api/v1/backup", headers=auth, timeout=10, stream=True) as response:
            assert response.status_code == 200
            next(response.iter_content(1024))
    assert os.listdir(temp) == []


def test_migrate_refuses_a_newer_version_found_only_in_the_wal(tmp_path):
    # inspect_file reads the file as it is; the writer sees the WAL too and checks once more
    path = str(tmp_path / "meter.db")
    db = dbmod.Database(path)
    conn = db._writer
    conn.execute("PRAGMA user_version = 999")
    with pytest.raises(dbmod.CannotStart, match="newer owui-meter"):
        dbmod.migrate(conn)
    db.close()


def test_a_command_beside_a_server_reads_the_database_after_an_erasure_emptied_the_wal(meter_process, data_dir, tmp_path):
    from conftest import JWT_SECRET
    from owui_meter.auth import create_token

    meter = meter_process()
    for user in (ADA, BOB):
        assert requests.post(meter.url + "/api/v1/outlet", json=outlet_body(key=user["id"], user=user), headers=PLUGIN, timeout=5).status_code == 202
    token = create_token(JWT_SECRET, days=1)
    erased = requests.delete(f"{meter.url}/api/v1/users/{ADA['id']}?mode=delete", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert erased.status_code == 200
    assert (data_dir / "meter.db-wal").stat().st_size == 0  # the checkpoint emptied it; the server still runs
    result = run_meter(data_dir, "report", "--month", time.strftime("%Y-%m", time.gmtime()), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = result.stdout.split()
    assert written and all(path.endswith(".pdf") and open(path, "rb").read(5) == b"%PDF-" for path in written)
