"""Spend not attributed to a user: counted everywhere under its own name, never a person.

Recorded the way the importer (and OpenRouter Broadcast) records it: an event whose user is
``ledger.unattributed_user()``.
"""

import csv
import io
import re
import zipfile

import pytest

from conftest import ADA, API_KEY, JWT_SECRET, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.auth import create_token
from owui_meter.ledger import UNATTRIBUTED, NewEvent, unattributed_user
from owui_meter.me_links import link_for
from test_dashboard import csrf_of, log_in
from test_reports import NOV, pdf_text

H = {"Authorization": f"Bearer {API_KEY}"}
LABEL = "Not attributed to a user"


@pytest.fixture
def app(data_dir, monkeypatch):
    monkeypatch.setattr(clock, "time_fn", lambda: NOV + 86400)
    app = create_app(make_settings(data_dir, METER_PUBLIC_URL="https://meter.example.com"))
    app.config["TESTING"] = True
    yield app
    app.config["METER"].stop()


@pytest.fixture
def seeded(client, meter):
    assert client.post("/api/v1/outlet", json=outlet_body(key="a1", user=ADA, cost=1.5, timestamp=NOV), headers=H).status_code == 202
    meter.ledger.record(NewEvent(key="trace-1", user=unattributed_user(), model="openai/gpt-4o", ts=int(NOV * 1000), source="api",
                                 prompt_tokens=50, completion_tokens=100, inline_cost_nano=520_000_000))


def test_read_api_names_it(client, seeded, admin_headers):
    usage = client.get("/api/v1/usage?group_by=user", headers=admin_headers).get_json()
    rows = {r["key"]: r for r in usage["rows"]}
    assert rows[UNATTRIBUTED]["label"] == LABEL and rows[UNATTRIBUTED]["cost_nano"] == 520_000_000
    assert rows[ADA["id"]]["cost_nano"] == 1_500_000_000
    assert usage["total"]["cost_nano"] == 2_020_000_000  # it is spend: in every total
    events = client.get(f"/api/v1/events?user={UNATTRIBUTED}", headers=admin_headers).get_json()["events"]
    assert [(e["key"], e["user_name"], e["user_email"]) for e in events] == [("trace-1", LABEL, None)]


def test_dashboard_lists_csv_and_user_page(client, meter, seeded):
    log_in(client, meter)
    users = client.get("/users?period=month").get_data(as_text=True)
    assert f'href="/users/{UNATTRIBUTED}?' in users or f'href="/users/{UNATTRIBUTED}"' in users
    assert LABEL in users
    overview = client.get("/?period=month").get_data(as_text=True)
    assert LABEL in overview  # among the top spenders
    assert re.search(r'Active users</span><span class="figure" id="total-users">1<', overview)  # only Ada is a user
    rows = list(csv.reader(io.StringIO(client.get("/events.csv").get_data(as_text=True))))
    header = rows[0]
    by_key = {r[header.index("user_id")]: r for r in rows[1:]}
    assert by_key[UNATTRIBUTED][header.index("user_name")] == LABEL
    page = client.get(f"/users/{UNATTRIBUTED}?period=month").get_data(as_text=True)
    assert LABEL in page and "$0.52" in page
    assert "Statement (PDF)" not in page and "Top up balance" not in page and "Erase this user" not in page
    assert "Statement (PDF)" in client.get(f"/users/{ADA['id']}?period=month").get_data(as_text=True)
    budgets = client.get("/budgets").get_data(as_text=True)
    assert f'value="{UNATTRIBUTED}"' not in budgets and f'value="{ADA["id"]}"' in budgets


def test_summary_lists_it_unbilled_and_it_has_no_statement(client, seeded, admin_headers):
    summary = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin_headers).data)
    assert re.search(r"Total 1 \$1\.50 \$1\.50 Not attributed to a user 1 \$0\.52 not billed", summary)  # no Fees column: none set
    assert client.get(f"/api/v1/reports/user/{UNATTRIBUTED}.pdf?month=2026-11", headers=admin_headers).status_code == 404
    names = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/reports/statements.zip?month=2026-11", headers=admin_headers).data)).namelist()
    assert len(names) == 2 and not any(UNATTRIBUTED in n for n in names)


def test_it_gets_no_budget_balance_link_or_erasure(client, meter, seeded, admin_headers):
    response = client.post("/api/v1/budgets", json={"scope": "user", "scope_id": UNATTRIBUTED, "limit_usd": 5}, headers=admin_headers)
    assert response.status_code == 400 and "scope_id" in response.get_json()["error"]
    response = client.post(f"/api/v1/users/{UNATTRIBUTED}/topups", json={"amount_usd": 5}, headers=admin_headers)
    assert response.status_code == 400 and "balance" in response.get_json()["error"]
    assert client.delete(f"/api/v1/users/{UNATTRIBUTED}?mode=anonymise", headers=admin_headers).status_code == 404
    assert meter.db.query("SELECT count(*) AS n FROM budgets")[0]["n"] == 0
    assert meter.db.query("SELECT count(*) AS n FROM balance_entries")[0]["n"] == 0
    assert meter.db.query_one("SELECT name FROM users WHERE id = ?", (UNATTRIBUTED,))["name"] == LABEL
    log_in(client, meter)
    form = {"amount_usd": "5", "csrf_token": csrf_of(client, f"/users/{ADA['id']}")}
    assert client.post(f"/users/{UNATTRIBUTED}/topup", data=form).status_code == 400
    # a self-service link made for it anyway opens nothing
    token = create_token(JWT_SECRET, days=1, name=UNATTRIBUTED, scope="self")
    assert client.get(f"/me/{token}").status_code == 403
    assert link_for(meter, UNATTRIBUTED) is None
    assert link_for(meter, ADA["id"]).startswith("https://meter.example.com/me/")


def test_it_counts_toward_no_budget(client, meter, admin_headers):
    """A shared budget for everyone is the users' spend: no one's $5 does not exhaust it."""
    assert client.post("/api/v1/budgets", json={"scope": "all", "period": "month", "limit_usd": 1, "group_mode": "shared"},
                       headers=admin_headers).status_code == 201
    meter.ledger.record(NewEvent(key="trace-big", user=unattributed_user(), model="openai/gpt-4o", ts=int(NOV * 1000), source="api",
                                 inline_cost_nano=5_000_000_000))
    inlet = client.post("/api/v1/inlet", json={"user": ADA, "model": "openai/gpt-4o-mini"}, headers=H).get_json()
    assert inlet["allow"] is True
    assert meter.db.query("SELECT count(*) AS n FROM spend WHERE user_id = ?", (UNATTRIBUTED,))[0]["n"] == 0
    assert client.get(f"/api/v1/users/{UNATTRIBUTED}/budgets", headers=admin_headers).get_json()["budgets"] == []


@pytest.mark.parametrize("path, body", [
    ("/api/v1/inlet", {"user": {"id": UNATTRIBUTED}, "model": "m"}),
    ("/api/v1/outlet", outlet_body(key="x", user={"id": UNATTRIBUTED})),
])
def test_no_one_can_post_as_it(client, meter, path, body):
    response = client.post(path, json=body, headers=H)
    assert response.status_code == 400 and "user.id" in response.get_json()["error"]
    alias = client.post("/api/v1/metering/record", headers={"Authorization": API_KEY}, json={
        "user": {"id": UNATTRIBUTED, "name": "x", "email": "x@example.com", "role": "user"},
        "activity": {"id": "y", "timestamp": NOV, "model": "m", "prompt_token": 1, "completion_token": 1, "cost": 1.0}})
    assert alias.status_code == 400 and "user.id" in alias.get_json()["error"]
    assert meter.db.query("SELECT count(*) AS n FROM events")[0]["n"] == 0
    assert meter.db.query("SELECT count(*) AS n FROM users")[0]["n"] == 0


def test_a_time_zone_change_keeps_it_out_of_the_counters(data_dir, app, client, meter, seeded):
    from owui_meter.meter import Meter

    meter.stop()
    moved = Meter.open(make_settings(data_dir, METER_TIMEZONE="Pacific/Auckland"), serving=True)
    try:
        spend = moved.db.query("SELECT user_id, period, cost_nano FROM spend WHERE period = 'month' ORDER BY user_id")
        assert spend == [{"user_id": ADA["id"], "period": "month", "cost_nano": 1_500_000_000}]  # rebuilt, and only Ada's
        days = moved.db.query("SELECT user_id, cost_nano FROM usage_daily ORDER BY user_id")
        assert {r["user_id"]: r["cost_nano"] for r in days} == {ADA["id"]: 1_500_000_000, UNATTRIBUTED: 520_000_000}
    finally:
        moved.stop()
