"""Backups under concurrent writes, the CLI, the download, and restore."""

import concurrent.futures
import sqlite3
import threading

import requests

from conftest import API_KEY, outlet_body
from owui_meter.backup import BackupError, backup, check
from test_cli import run

H = {"Authorization": f"Bearer {API_KEY}"}


def keys_in(path):
    with sqlite3.connect(path) as conn:
        return {k for (k,) in conn.execute("SELECT key FROM events")}


def test_backup_while_writing_holds_everything_acknowledged_before(live_meter, tmp_path):
    acknowledged = []
    for i in range(200):
        assert requests.post(live_meter.url + "/api/v1/outlet", json=outlet_body(key=f"pre-{i}"), headers=H, timeout=5).status_code == 202
        acknowledged.append(f"pre-{i}")
    stop = threading.Event()

    def keep_writing():
        n = 0
        session = requests.Session()
        while not stop.is_set():
            session.post(live_meter.url + "/api/v1/outlet", json=outlet_body(key=f"during-{n}"), headers=H, timeout=5)
            n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        writers = [pool.submit(keep_writing) for _ in range(2)]
        copy = backup(live_meter.meter.db.path, str(tmp_path / "copy.db"))
        stop.set()
        written = sum(w.result() for w in writers)
    assert written > 0
    assert check(copy) >= 1  # opens and passes quick_check
    assert set(acknowledged) <= keys_in(copy)


def test_backup_command_and_download(data_dir, live_meter, tmp_path):
    requests.post(live_meter.url + "/api/v1/outlet", json=outlet_body(key="one"), headers=H, timeout=5)
    result = run(data_dir, "backup")
    assert result.returncode == 0
    path = result.stdout.strip()
    assert path.startswith(str(data_dir / "backups")) and keys_in(path) == {"one"}
    response = requests.get(live_meter.url + "/api/v1/backup", headers={"Authorization": f"Bearer {live_meter.admin_token}"}, timeout=10)
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    downloaded = tmp_path / "downloaded.db"
    downloaded.write_bytes(response.content)
    assert keys_in(downloaded) == {"one"}
    assert requests.get(live_meter.url + "/api/v1/backup", headers=H, timeout=5).status_code == 401


def test_restore_refuses_while_running_and_checks_the_file(data_dir, meter_process, tmp_path):
    meter = meter_process()
    requests.post(meter.url + "/api/v1/outlet", json=outlet_body(key="kept"), headers=H, timeout=5)
    good = run(data_dir, "backup", str(tmp_path / "good.db"))
    assert good.returncode == 0
    refused = run(data_dir, "restore", str(tmp_path / "good.db"))
    assert refused.returncode == 1 and "already running" in refused.stderr
    requests.post(meter.url + "/api/v1/outlet", json=outlet_body(key="after-backup"), headers=H, timeout=5)
    meter.proc.terminate()
    meter.wait()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    bad = run(data_dir, "restore", str(junk))
    assert bad.returncode == 1 and "not" in bad.stderr
    restored = run(data_dir, "restore", str(tmp_path / "good.db"))
    assert restored.returncode == 0, restored.stderr
    assert keys_in(data_dir / "meter.db") == {"kept"}
    again = meter_process()
    assert requests.get(again.url + "/healthcheck", timeout=5).status_code == 200


def test_check_rejects_other_databases(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    try:
        check(str(other))
        raise AssertionError("accepted a foreign database")
    except BackupError as exc:
        assert "not an owui-meter database" in str(exc)


def test_daily_backups_keep_the_newest(data_dir, monkeypatch):
    from conftest import make_settings
    from owui_meter import clock, create_app
    from owui_meter.backup import DailyBackups

    now = [1_800_000_000.0]
    monkeypatch.setattr(clock, "time_fn", lambda: now[0])
    app = create_app(make_settings(data_dir, METER_BACKUP_KEEP=3))
    daily = DailyBackups(app.config["METER"])
    import os

    for day in range(5):
        daily.step()
        # pretend a day passed: the newest backup is a day old
        for name in os.listdir(daily.folder):
            os.utime(os.path.join(daily.folder, name), (now[0] - 86400, now[0] - 86400))
        now[0] += 86400
    names = sorted(os.listdir(daily.folder))
    assert len(names) == 3 and all(n.startswith("meter-") for n in names)
    app.config["METER"].stop()
