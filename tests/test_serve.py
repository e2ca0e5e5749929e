"""The real server process: first run, restarts, SIGKILL durability, SIGTERM, healthcheck."""

import concurrent.futures
import os
import signal
import stat

import requests

from conftest import API_KEY, JWT_SECRET, MeterProcess, outlet_body
from owui_meter.auth import create_token


def post_outlet(url, key):
    return requests.post(url + "/api/v1/outlet", json=outlet_body(key=key), headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)


def all_keys(url):
    token = create_token(JWT_SECRET, days=1)
    keys, cursor = [], None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = requests.get(url + "/api/v1/events", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        keys += [e["key"] for e in page["events"]]
        cursor = page["next"]
        if not cursor:
            return keys


def test_acknowledged_events_survive_sigkill_exactly_once(meter_process):
    meter = meter_process()
    acknowledged = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for key, response in zip(range(300), pool.map(lambda k: post_outlet(meter.url, f"kill-{k}"), range(300))):
            assert response.status_code == 202
            acknowledged.append(f"kill-{key}")
    meter.proc.send_signal(signal.SIGKILL)
    meter.wait()
    restarted = meter_process()
    # the plugin retries what it is unsure of: a retry after the crash must not count twice
    for key in acknowledged[:50]:
        assert post_outlet(restarted.url, key).json()["duplicate"] is True
    keys = all_keys(restarted.url)
    assert sorted(keys) == sorted(acknowledged)
    assert len(keys) == len(set(keys)) == 300


def test_sigterm_stops_cleanly(meter_process):
    meter = meter_process()
    assert post_outlet(meter.url, "before-stop").status_code == 202
    meter.proc.send_signal(signal.SIGTERM)
    assert meter.wait() == 0
    assert b"stopped" in meter.output
    assert b"Traceback" not in meter.output
    restarted = meter_process()
    assert all_keys(restarted.url) == ["before-stop"]


def test_first_run_generates_and_keeps_secrets(tmp_path):
    data = tmp_path / "fresh"
    env_less = MeterProcess(data)
    for name in ("API_KEY", "JWT_SECRET"):
        env_less.env.pop(name)
    env_less.start()
    env_less.proc.send_signal(signal.SIGTERM)
    assert env_less.wait() == 0
    first = env_less.output.decode()
    secrets_file = data / "secrets.json"
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    import json

    stored = json.loads(secrets_file.read_text())
    assert f"API_KEY = {stored['API_KEY']}" in first
    assert "password = " in first
    assert stored["JWT_SECRET"] not in first  # only what the admin must paste or type is shown
    # a new folder says it made a new, empty meter, where, and what to do next
    assert f"Created a new, empty meter in {data.resolve()} (no meter.db was there)." in first
    assert f"1. Dashboard: {env_less.url}  (user 'admin')" in first
    assert f"meter_url = {env_less.url} (Open WebUI in a container: restart with METER_HOST=0.0.0.0, then http://host.docker.internal:{env_less.port})" in first
    assert f"listening on {env_less.url}; data in {data.resolve()}" in first

    again = MeterProcess(data)
    for name in ("API_KEY", "JWT_SECRET"):
        again.env.pop(name)
    again.start()
    response = requests.post(again.url + "/api/v1/inlet", json={"user": {"id": "u"}}, headers={"Authorization": f"Bearer {stored['API_KEY']}"}, timeout=5)
    assert response.status_code == 200  # the stored key still works after a restart
    again.proc.send_signal(signal.SIGTERM)
    again.wait()
    assert b"API_KEY =" not in again.output and b"password =" not in again.output
    assert b"new, empty meter" not in again.output and b"Next steps" not in again.output
    assert f"data in {data.resolve()}".encode() in again.output


def test_generated_password_is_stored_hashed(app):
    meter = app.config["METER"]
    from owui_meter.auth import verify_password

    [admin] = meter.db.query("SELECT username, password_hash FROM admins")
    assert admin["username"] == "admin"
    assert admin["password_hash"].startswith("$argon2id$")
    assert verify_password(admin["password_hash"], meter.generated_password)
    assert not verify_password(admin["password_hash"], meter.generated_password + "x")


def test_healthcheck_ok(client):
    response = client.get("/healthcheck")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["db"] == "ok" and body["version"]


def test_healthcheck_503_when_the_database_is_gone(app, client):
    app.config["METER"].db.close()
    response = client.get("/healthcheck")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert "Traceback" not in response.get_data(as_text=True)
