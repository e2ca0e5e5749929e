"""Prepaid balances: top-ups are rows, usage deducts, at or below zero the user is blocked."""

import re

import pytest

from conftest import ADA, API_KEY, BOB, JWT_SECRET, make_settings, outlet_body
from owui_meter import create_app
from owui_meter.auth import create_token

H = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def app(data_dir):
    app = create_app(make_settings(data_dir, METER_BALANCES_ENABLED="true", METER_INITIAL_BALANCE="1.00"))
    yield app
    app.config["METER"].stop()


def inlet(client, user):
    return client.post("/api/v1/inlet", json={"user": user, "model": "m"}, headers=H).get_json()


def test_new_users_start_with_the_initial_balance_and_usage_deducts(client, meter, admin_headers):
    assert inlet(client, ADA)["allow"] is True
    answer = client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=0.4), headers=H).get_json()
    assert "balance $0.60" in answer["notice"]
    client.post("/api/v1/outlet", json=outlet_body(key="b", user=ADA, cost=0.6), headers=H)
    decision = inlet(client, ADA)
    assert decision["allow"] is False and "balance is used up" in decision["message"]
    topped = client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 5, "note": "November"}, headers=admin_headers)
    assert topped.status_code == 201 and topped.get_json()["balance_usd"] == 5.0
    assert inlet(client, ADA)["allow"] is True
    entries = meter.db.query("SELECT amount_nano, actor, note FROM balance_entries WHERE user_id = ? ORDER BY id", (ADA["id"],))
    assert entries == [{"amount_nano": 1_000_000_000, "actor": "system", "note": "initial balance"},
                       {"amount_nano": 5_000_000_000, "actor": "tester", "note": "November"}]


def test_adjustments_can_be_negative_and_are_audited(client, meter, admin_headers):
    inlet(client, BOB)
    response = client.post(f"/api/v1/users/{BOB['id']}/topups", json={"amount_usd": "-1.00", "note": "refund reversed"}, headers=admin_headers)
    assert response.status_code == 201 and response.get_json()["balance_usd"] == 0.0
    assert inlet(client, BOB)["allow"] is False
    [entry] = meter.db.query("SELECT action, detail FROM audit_log")
    assert entry["action"] == "balance.topup" and "refund" not in entry["detail"]


@pytest.mark.parametrize("body, fragment", [({}, "amount_usd is required"), ({"amount_usd": 0}, "not be zero"), ({"amount_usd": "x"}, "number"),
                                            ({"amount_usd": 5, "note": 7}, "note"), ({"amount_usd": 1e9}, "between")])
def test_bad_topups_are_400(client, meter, admin_headers, body, fragment):
    inlet(client, ADA)
    response = client.post(f"/api/v1/users/{ADA['id']}/topups", json=body, headers=admin_headers)
    assert response.status_code == 400 and fragment in response.get_json()["error"]
    assert meter.db.query_one("SELECT count(*) AS n FROM balance_entries")["n"] == 1  # only the initial credit


def test_topup_for_an_unknown_user_is_404(client, admin_headers):
    assert client.post("/api/v1/users/nobody/topups", json={"amount_usd": 1}, headers=admin_headers).status_code == 404


def test_balances_off_means_no_blocking(data_dir):
    app = create_app(make_settings(data_dir))
    client = app.test_client()
    client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=100), headers=H)
    assert inlet(client, ADA) == {"allow": True, "message": None}
    app.config["METER"].stop()


def test_a_new_users_first_answer_is_deducted_from_the_balance(data_dir, monkeypatch):
    """The balance starts at the inlet (in ms); Open WebUI stamps the answer in whole seconds."""
    from owui_meter import clock

    monkeypatch.setattr(clock, "time_fn", lambda: 1_795_000_000.75)  # 750 ms into a second
    app = create_app(make_settings(data_dir, METER_BALANCES_ENABLED="true", METER_INITIAL_BALANCE="1.00"))
    client = app.test_client()
    assert inlet(client, ADA)["allow"] is True
    answer = client.post("/api/v1/outlet", json=outlet_body(key="first", user=ADA, cost=0.4, timestamp=1_795_000_000), headers=H).get_json()
    assert answer["notice"].endswith("balance $0.60")
    token = create_token(JWT_SECRET, days=1, name=ADA["id"], scope="self")
    assert "Prepaid balance $0.60" in " ".join(re.sub(r"<[^>]+>", " ", client.get(f"/me/{token}").get_data(as_text=True)).split())
    app.config["METER"].stop()


def test_an_answer_that_arrives_before_any_inlet_opens_the_balance_and_is_deducted(data_dir):
    """When the meter missed the inlet (it was down), the answer itself starts the balance."""
    app = create_app(make_settings(data_dir, METER_BALANCES_ENABLED="true", METER_INITIAL_BALANCE="1.00"))
    client = app.test_client()
    answer = client.post("/api/v1/outlet", json=outlet_body(key="early", user=BOB, cost=0.25), headers=H).get_json()
    assert answer["notice"].endswith("balance $0.75")
    assert inlet(client, BOB)["allow"] is True
    entries = app.config["METER"].db.query("SELECT amount_nano FROM balance_entries WHERE user_id = ?", (BOB["id"],))
    assert entries == [{"amount_nano": 1_000_000_000}]  # granted once
    app.config["METER"].stop()


def test_concurrent_first_requests_grant_the_initial_balance_once(data_dir):
    """Real concurrent HTTP requests on a waitress server: 40 new users, 5 first inlets each at once."""
    import concurrent.futures
    import threading

    import requests

    from conftest import LiveMeter

    app = create_app(make_settings(data_dir, METER_BALANCES_ENABLED="true", METER_INITIAL_BALANCE="2.50"))
    live = LiveMeter(app).start()
    users = [{"id": f"new-{i}", "name": f"New {i}"} for i in range(40)]
    try:
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            for user in users:
                together = threading.Barrier(5)

                def first_inlet(user=user, together=together):
                    session = requests.Session()
                    together.wait()
                    return session.post(live.url + "/api/v1/inlet", json={"user": user, "model": "m"}, headers=H, timeout=10).json()

                assert all(r["allow"] for r in pool.map(lambda _: first_inlet(), range(5)))
        for user in users:
            shown = live.get_json(f"/api/v1/users/{user['id']}/budgets")["balance_usd"]
            assert shown == 2.5, (user, shown)
        granted = app.config["METER"].db.query("SELECT user_id, count(*) AS n FROM balance_entries GROUP BY user_id HAVING n > 1")
        assert granted == []
    finally:
        live.stop()
        app.config["METER"].stop()
