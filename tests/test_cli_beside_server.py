"""Maintenance commands run beside a live server never change what the server keeps.

A cron ``owui-meter report`` (or ``token create``, ``backup``) started without the server's
METER_TIMEZONE must read the server's stored zone: the stored zone, the daily totals and the
budget counters stay as they are, and a cost confirmed afterwards lands on the server's day.
"""

import datetime as dt
import os
import subprocess
import sys
import time
import zoneinfo

import requests

from conftest import ADA, API_KEY, REPO, meter_env, outlet_body
from fake_openrouter import FakeOpenRouter
from owui_meter.db import connect

BERLIN = "Europe/Berlin"


def snapshot(data_dir) -> dict:
    conn = connect(str(data_dir / "meter.db"), readonly=True)
    try:
        return {
            "zone": conn.execute("SELECT value FROM meta WHERE key = 'usage_daily.timezone'").fetchall()[0]["value"],
            "daily": conn.execute("SELECT day, user_id, cost_nano, answers FROM usage_daily ORDER BY day").fetchall(),
            "spend": conn.execute("SELECT period, start, cost_nano FROM spend WHERE user_id = ? ORDER BY period, start", (ADA["id"],)).fetchall(),
        }
    finally:
        conn.close()


def run_cli(data_dir, fake_url, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, **meter_env(data_dir, OPENROUTER_API_KEY="sk-or-test", OPENROUTER_BASE_URL=fake_url),
           "PYTHONPATH": str(REPO), "TZ": "America/New_York"}
    env.pop("METER_TIMEZONE", None)  # the cron job does not know the server's zone
    return subprocess.run([sys.executable, "-m", "owui_meter", *args], env=env, capture_output=True, text=True, timeout=60)


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_report_token_and_backup_beside_the_server_leave_its_figures_alone(data_dir, tmp_path, meter_process):
    with FakeOpenRouter() as fake:
        server = meter_process(METER_TIMEZONE=BERLIN, OPENROUTER_API_KEY="sk-or-test", OPENROUTER_BASE_URL=fake.url,
                               METER_LOOKUP_FIRST_RETRY_MS=200, METER_LOOKUP_MAX_RETRY_SECONDS=1, METER_WORKER_POLL_MS=50)
        # 23:30 UTC yesterday is already today in Berlin: the two zones disagree about its day
        now = dt.datetime.now(dt.timezone.utc)
        answered = dt.datetime.combine(now.date(), dt.time(), dt.timezone.utc) - dt.timedelta(minutes=30)
        berlin_day = answered.astimezone(zoneinfo.ZoneInfo(BERLIN)).date()
        assert berlin_day != answered.date()
        body = outlet_body(key="late-evening", cost=1.0, timestamp=answered.timestamp(), generation_ids=["gen-late"])
        response = requests.post(server.url + "/api/v1/outlet", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        assert response.status_code == 202
        before = snapshot(data_dir)
        assert before["zone"] == BERLIN
        assert [(r["day"], r["cost_nano"]) for r in before["daily"]] == [(berlin_day.isoformat(), 1_000_000_000)]
        month_start = berlin_day.replace(day=1).isoformat()
        assert {"period": "month", "start": month_start, "cost_nano": 1_000_000_000} in before["spend"]

        out = tmp_path / "reports"
        utc_month = f"{answered:%Y-%m}"
        report = run_cli(data_dir, fake.url, "report", "--month", utc_month, "--out", str(out))
        assert report.returncode == 0, report.stderr
        statements = sorted(p.name for p in out.iterdir() if p.name.startswith("statement-"))
        # in Berlin the answer belongs to berlin_day's month: a report of the UTC day's month has it only then
        assert statements == (["statement-ada-example.com-" + utc_month + ".pdf"] if berlin_day.month == answered.month else [])
        token = run_cli(data_dir, fake.url, "token", "create", "--days", "1")
        assert token.returncode == 0 and token.stdout.strip().count(".") == 2, token.stderr
        backup = run_cli(data_dir, fake.url, "backup", str(tmp_path / "copy.db"))
        assert backup.returncode == 0, backup.stderr
        assert snapshot(data_dir) == before

        # the confirmed cost ($3) replaces the inline one on the server's day, not split across two
        fake.add_generation("gen-late", 3.0)
        after = wait_for(lambda: (s := snapshot(data_dir))["daily"][0]["cost_nano"] == 3_000_000_000 and s)
        assert [(r["day"], r["cost_nano"], r["answers"]) for r in after["daily"]] == [(berlin_day.isoformat(), 3_000_000_000, 1)]
        assert {"period": "month", "start": month_start, "cost_nano": 3_000_000_000} in after["spend"]
        assert after["zone"] == BERLIN


def test_server_start_with_a_new_zone_moves_daily_totals_and_budget_counters_together(data_dir, meter_process):
    """The server (only the server) follows a changed METER_TIMEZONE: every figure kept per day moves."""
    server = meter_process(METER_TIMEZONE="UTC")
    now = dt.datetime.now(dt.timezone.utc)
    answered = dt.datetime.combine(now.date(), dt.time(), dt.timezone.utc) - dt.timedelta(minutes=30)
    body = outlet_body(key="tz-move", cost=3.0, timestamp=answered.timestamp())
    assert requests.post(server.url + "/api/v1/outlet", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).status_code == 202
    server.proc.terminate()
    assert server.wait() == 0
    meter_process(METER_TIMEZONE="Pacific/Auckland")  # UTC+12/13: 23:30 UTC is the next day there
    auckland_day = answered.astimezone(zoneinfo.ZoneInfo("Pacific/Auckland")).date()
    moved = snapshot(data_dir)
    assert moved["zone"] == "Pacific/Auckland"
    assert [(r["day"], r["cost_nano"]) for r in moved["daily"]] == [(auckland_day.isoformat(), 3_000_000_000)]
    assert {"period": "day", "start": auckland_day.isoformat(), "cost_nano": 3_000_000_000} in moved["spend"]
    assert not [r for r in moved["spend"] if r["period"] == "day" and r["start"] == answered.date().isoformat()]
