"""Budgets: limits at their edges, periods in time zones, groups, overrides, cost changes, API."""

import datetime as dt

import pytest

from conftest import ADA, API_KEY, BOB, JWT_SECRET, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.auth import create_token

CAROL = {"id": "carol-1", "email": "carol@example.com", "name": "Carol", "role": "user"}
ENG = "eng"


class Clock:
    def __init__(self, when: dt.datetime):
        self.t = when.timestamp()

    def __call__(self):
        return self.t

    def set(self, when: dt.datetime):
        self.t = when.timestamp()


@pytest.fixture
def now(monkeypatch):
    frozen = Clock(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc))
    monkeypatch.setattr(clock, "time_fn", frozen)
    return frozen


@pytest.fixture
def app(data_dir, now):
    app = create_app(make_settings(data_dir))
    yield app
    app.config["METER"].stop()


@pytest.fixture
def admin(now):
    return {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}


H = {"Authorization": f"Bearer {API_KEY}"}


def spend(client, user, usd, key):
    response = client.post("/api/v1/outlet", json=outlet_body(key=key, user=user, cost=usd, timestamp=clock.now()), headers=H)
    assert response.status_code == 202
    return response.get_json()


def inlet(client, user):
    return client.post("/api/v1/inlet", json={"user": user, "model": "m"}, headers=H).get_json()


def budget(client, admin, **body):
    response = client.post("/api/v1/budgets", json={"period": "month"} | body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def groups(meter, members):
    with meter.db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES (?, 'Engineering', 0)", (ENG,))
        for user in members:
            conn.execute("INSERT INTO users (id, name, first_seen, last_seen) VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING", (user["id"], user["name"]))
            conn.execute("INSERT INTO group_members (group_id, user_id) VALUES (?, ?)", (ENG, user["id"]))


def test_just_under_at_and_over_the_limit(client, admin):
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=20)
    spend(client, ADA, 19.99, "a1")
    assert inlet(client, ADA)["allow"] is True  # just under
    spend(client, ADA, 0.01, "a2")
    decision = inlet(client, ADA)  # exactly at the limit
    assert decision["allow"] is False
    assert decision["message"] == "You have used $20.00 of your $20.00 monthly budget. It renews on 1 December."
    spend(client, ADA, 1.00, "a3")  # an answer already under way went over
    assert "$21.00 of your $20.00" in inlet(client, ADA)["message"]
    assert inlet(client, BOB)["allow"] is True  # someone else's budget


def test_warn_only_budgets_never_block(client, admin):
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=1, action="warn")
    answer = spend(client, ADA, 1.5, "w1")
    assert inlet(client, ADA)["allow"] is True
    assert "⚠ 150% of your budget used" in answer["notice"]


def test_periods_roll_over_in_the_meter_time_zone(data_dir, now):
    app = create_app(make_settings(data_dir, METER_TIMEZONE="Pacific/Auckland"))  # UTC+13 in November
    client = app.test_client()
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
    budget(client, admin, scope="user", scope_id=ADA["id"], period="day", limit_usd=1)
    now.set(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc))  # 23:00 on the 20th in Auckland
    spend(client, ADA, 1, "d1")
    assert inlet(client, ADA)["allow"] is False
    assert "renews on 21 November" in inlet(client, ADA)["message"]
    now.set(dt.datetime(2026, 11, 20, 11, 0, tzinfo=dt.timezone.utc))  # midnight in Auckland: a new day
    assert inlet(client, ADA)["allow"] is True
    app.config["METER"].stop()


def test_week_and_month_boundaries(client, admin, now):
    budget(client, admin, scope="user", scope_id=ADA["id"], period="week", limit_usd=5)
    now.set(dt.datetime(2026, 11, 29, 23, 0, tzinfo=dt.timezone.utc))  # Sunday
    spend(client, ADA, 5, "wk")
    assert inlet(client, ADA)["allow"] is False
    now.set(dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.timezone.utc))  # Monday: a new week
    assert inlet(client, ADA)["allow"] is True


def test_one_off_allowance_never_renews_and_says_so_plainly(client, admin, now):
    budget(client, admin, scope="user", scope_id=ADA["id"], period="none", limit_usd=2)
    spend(client, ADA, 2, "x")
    now.set(dt.datetime(2027, 6, 1, tzinfo=dt.timezone.utc))
    decision = inlet(client, ADA)
    assert decision["allow"] is False
    assert decision["message"] == "You have used $2.00 of your one-off allowance of $2.00. It does not renew: ask your administrator for more."


def test_one_off_allowance_counts_from_its_creation(client, meter, admin, now):
    """Ada spent $30 a year ago; a new $10 allowance lets her chat until she spends $10 more."""
    spend(client, ADA, 30, "last-year")
    groups(meter, [ADA, BOB])
    now.set(dt.datetime(2027, 11, 20, 12, 0, tzinfo=dt.timezone.utc))
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
    created = budget(client, admin, scope="user", scope_id=ADA["id"], period="none", limit_usd=10)
    shared = budget(client, admin, scope="group", scope_id=ENG, period="none", limit_usd=100, group_mode="shared")
    assert inlet(client, ADA)["allow"] is True
    late = outlet_body(key="queued", user=ADA, cost=50, timestamp=clock.now() - 3600)  # given before the allowance began
    assert client.post("/api/v1/outlet", json=late, headers=H).status_code == 202
    spend(client, ADA, 6, "a")
    shown = {b["budget_id"]: b for b in client.get(f"/api/v1/users/{ADA['id']}/budgets", headers=admin).get_json()["budgets"]}
    assert shown[created["id"]]["spent_usd"] == 6.0 and shown[created["id"]]["renews"] is None
    assert shown[shared["id"]]["spent_usd"] == 6.0
    assert inlet(client, ADA)["allow"] is True
    spend(client, ADA, 4, "b")
    decision = inlet(client, ADA)
    assert decision["allow"] is False and decision["message"].startswith("You have used $10.00 of your one-off allowance of $10.00.")
    # raising the limit keeps what was spent; the counter is the allowance's, not the limit's
    client.put(f"/api/v1/budgets/{created['id']}", json={"scope": "user", "scope_id": ADA["id"], "period": "none", "limit_usd": 15}, headers=admin)
    assert inlet(client, ADA)["allow"] is True
    spend(client, BOB, 90, "bob")
    decision = inlet(client, BOB)
    assert decision["message"] == "Your group's one-off allowance of $100.00 is used up."


def test_per_member_group_budget_counts_each_member_alone(client, meter, admin):
    groups(meter, [ADA, BOB])
    budget(client, admin, scope="group", scope_id=ENG, limit_usd=10, group_mode="per_member")
    spend(client, ADA, 10, "a")
    assert inlet(client, ADA)["allow"] is False
    assert inlet(client, BOB)["allow"] is True


def test_shared_group_budget_counts_the_group_and_hides_its_total(client, meter, admin):
    groups(meter, [ADA, BOB])
    budget(client, admin, scope="group", scope_id=ENG, limit_usd=10, group_mode="shared")
    spend(client, ADA, 6, "a")
    answer = spend(client, BOB, 4, "b")
    assert "left" not in answer["notice"]  # what is left of a shared budget would reveal others' spend
    for user in (ADA, BOB):
        decision = inlet(client, user)
        assert decision["allow"] is False
        assert decision["message"] == "Your group's monthly budget of $10.00 is used up. It renews on 1 December."
    assert inlet(client, CAROL)["allow"] is True  # not a member


def test_user_budget_replaces_per_member_allowances_but_not_shared_ones(client, meter, admin):
    groups(meter, [ADA, BOB])
    budget(client, admin, scope="all", limit_usd=5)  # everyone: $5 each
    budget(client, admin, scope="group", scope_id=ENG, limit_usd=5, group_mode="per_member")
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=50)  # Ada gets more
    spend(client, ADA, 20, "a")
    assert inlet(client, ADA)["allow"] is True
    spend(client, BOB, 5, "b")
    assert inlet(client, BOB)["allow"] is False
    budget(client, admin, scope="group", scope_id=ENG, limit_usd=24, group_mode="shared")  # still applies to Ada
    assert inlet(client, ADA)["allow"] is False


def test_strictest_applicable_budget_wins(client, admin):
    budget(client, admin, scope="all", limit_usd=100, group_mode="shared")
    budget(client, admin, scope="user", scope_id=ADA["id"], period="day", limit_usd=1)
    spend(client, ADA, 1, "a")
    decision = inlet(client, ADA)
    assert decision["allow"] is False and "daily" in decision["message"]


def test_confirmed_cost_that_differs_moves_the_counters(client, meter, admin):
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=1)
    event_id = spend(client, ADA, 0.9, "a")["event_id"]
    assert inlet(client, ADA)["allow"] is True
    with meter.db.write() as conn:  # OpenRouter confirms a higher figure
        meter.ledger.set_cost(conn, event_id, 1_000_000_000, "generation", "confirmed")
    assert inlet(client, ADA)["allow"] is False
    with meter.db.write() as conn:
        meter.ledger.set_cost(conn, event_id, 500_000_000, "generation", "confirmed")
    assert inlet(client, ADA)["allow"] is True
    row = meter.db.query_one("SELECT cost_nano FROM spend WHERE user_id = ? AND period = 'month'", (ADA["id"],))
    assert row["cost_nano"] == 500_000_000


def test_reserve_caps_the_overshoot(data_dir, now):
    app = create_app(make_settings(data_dir, METER_BUDGET_RESERVE_USD="0.50"))
    client = app.test_client()
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=10)
    spend(client, ADA, 9.60, "a")
    assert inlet(client, ADA)["allow"] is False  # $0.40 left is less than the reserve
    app.config["METER"].stop()


def test_notice_shows_what_is_left_and_warns(client, admin):
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=10, warn_percent=80)
    first = spend(client, ADA, 1.2345, "a")
    assert first["notice"].endswith("· $8.77 left this month")
    second = spend(client, ADA, 7, "b")
    assert "$1.77 left this month · ⚠ 82% of your budget used" in second["notice"]


@pytest.mark.parametrize(
    "lang, words",
    [("de", "übrig diesen Monat"), ("fr", "restants ce mois-ci"), ("es", "este mes"), ("zh", "本月剩余"), ("en", "left this month"), ("xx", "left this month")],
)
def test_notice_languages(client, admin, lang, words):
    budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=10)
    answer = client.post("/api/v1/outlet", json=outlet_body(key="l", user=ADA, cost=1, language=lang), headers=H).get_json()
    assert words in answer["notice"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"scope": "planet", "limit_usd": 1}, "scope"),
        ({"scope": "user", "limit_usd": 1}, "scope_id"),
        ({"scope": "all", "scope_id": "x", "limit_usd": 1}, "scope_id must be empty"),
        ({"scope": "all", "limit_usd": -1}, "limit_usd must be between"),
        ({"scope": "all", "limit_usd": "lots"}, "limit_usd must be a number"),
        ({"scope": "all"}, "limit_usd is required"),
        ({"scope": "all", "limit_usd": 1, "period": "year"}, "period"),
        ({"scope": "all", "limit_usd": 1, "warn_percent": 0}, "warn_percent"),
        ({"scope": "all", "limit_usd": 1, "warn_percent": 50.5}, "warn_percent"),
        ({"scope": "all", "limit_usd": 1, "action": "shout"}, "action"),
        ({"scope": "all", "limit_usd": 1, "group_mode": "split"}, "group_mode"),
        ({"scope": "all", "limit_usd": 1, "colour": "red"}, "unknown field colour"),
        ("a budget", "JSON object"),
    ],
)
def test_bad_budgets_are_400_and_change_nothing(client, meter, admin, body, fragment):
    response = client.post("/api/v1/budgets", json=body, headers=admin)
    assert response.status_code == 400 and fragment in response.get_json()["error"]
    assert meter.db.query("SELECT * FROM budgets") == []


def test_budget_api_round_trip_and_audit(client, meter, admin):
    created = budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=20)
    assert client.get("/api/v1/budgets", headers=admin).get_json()["budgets"] == [created]
    changed = client.put(f"/api/v1/budgets/{created['id']}", json={"scope": "user", "scope_id": ADA["id"], "limit_usd": 30, "period": "week"}, headers=admin)
    assert changed.status_code == 200 and changed.get_json()["limit_usd"] == 30.0
    assert client.put("/api/v1/budgets/999", json={"scope": "all", "limit_usd": 1}, headers=admin).status_code == 404
    assert client.delete(f"/api/v1/budgets/{created['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/budgets/{created['id']}", headers=admin).status_code == 404
    actions = [r["action"] for r in meter.db.query("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["budget.create", "budget.update", "budget.delete"]
    assert all(r["actor"] == "admin" for r in meter.db.query("SELECT actor FROM audit_log"))


def test_budget_api_needs_an_admin(client):
    assert client.get("/api/v1/budgets", headers=H).status_code == 401
    assert client.post("/api/v1/budgets", json={"scope": "all", "limit_usd": 1}, headers=H).status_code == 401


def test_plugin_raises_the_meters_message_at_inlet(live_meter, admin):
    import asyncio

    import requests

    from test_plugin import make_filter

    requests.post(live_meter.url + "/api/v1/budgets", json={"scope": "user", "scope_id": ADA["id"], "limit_usd": 1}, headers=admin, timeout=5)
    requests.post(live_meter.url + "/api/v1/outlet", json=outlet_body(key="big", user=ADA, cost=2, timestamp=clock.now()), headers=H, timeout=5)
    plugin = make_filter(live_meter.url)
    with pytest.raises(Exception, match=r"You have used \$2\.00 of your \$1\.00 monthly budget"):
        asyncio.run(plugin.inlet({"model": "m", "messages": []}, __user__=ADA, __metadata__={"chat_id": "c"}))
    body = asyncio.run(plugin.inlet({"model": "m", "messages": []}, __user__=BOB, __metadata__={"chat_id": "c"}))
    assert body["user"] == BOB["id"]  # Bob may chat


def test_alert_webhook_once_per_budget_and_period(data_dir, now):
    import http.server
    import json
    import threading
    import time

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = create_app(make_settings(data_dir, METER_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_address[1]}/hook"))
    meter, client = app.config["METER"], app.test_client()
    meter.budgets.alerts.start()
    try:
        admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
        budget(client, admin, scope="user", scope_id=ADA["id"], limit_usd=10, warn_percent=50)
        for i, usd in enumerate((4, 2, 1, 5, 1)):  # crosses 50% once, then 100% once
            spend(client, ADA, usd, f"s{i}")
        deadline = time.monotonic() + 5
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        texts = [r["text"] for r in received]
        assert len(texts) == 2
        assert "Ada Admin has used 60%" in texts[0] and "Ada Admin is blocked" in texts[1]
    finally:
        meter.stop()
        server.shutdown()


def test_upgrading_recounts_one_off_allowances_and_balances(tmp_path):
    """Migration 0005 on a database of schema 4: allowances count from creation, balances deduct
    every answer recorded after they began (the first ones the old rule missed included)."""
    from owui_meter import db as dbmod

    path = str(tmp_path / "old.db")
    conn = dbmod.connect(path)
    for number, _, sql in dbmod.migrations():
        if number <= 4:
            with conn:
                conn.execute(sql)
                conn.execute(f"PRAGMA user_version = {number}")
    created = 1_790_000_000_000
    with conn:
        conn.execute("INSERT INTO users (id, first_seen, last_seen) VALUES ('ada', 0, 0), ('bob', 0, 0)")
        conn.execute("INSERT INTO budgets (scope, scope_id, period, limit_nano, created, updated) VALUES ('user', 'ada', 'none', 10, ?, ?)", (created, created))
        conn.execute("INSERT INTO budgets (scope, scope_id, period, limit_nano, created, updated) VALUES ('all', NULL, 'month', 10, 5, 5)")
        for key, user, ts, received, cost in (("old", "ada", created - 10**10, created - 10**10, 30), ("new", "ada", created + 5, created + 9, 4),
                                              ("bob-first", "bob", created + 999_000, created + 1_000_300, 2), ("bob-next", "bob", created + 2_000_000, created + 2_000_000, 3)):
            conn.execute("INSERT INTO events (key, ts, received, user_id, model, source, cost_nano, cost_source) VALUES (?, ?, ?, ?, 'm', 'ui', ?, 'inline')",
                         (key, ts, received, user, cost))
        conn.execute("INSERT INTO spend VALUES ('ada', 'none', 'all', 34)")
        # Bob's balance began at 1,000,200 ms; his first answer, stamped in whole seconds, was never deducted
        conn.execute("INSERT INTO balances (user_id, since, spent_nano) VALUES ('bob', ?, 3)", (created + 1_000_200,))
    conn.close()
    upgraded = dbmod.Database(path)
    try:
        assert upgraded.applied_migrations[0] == "0005_allowances_and_balances.sql"
        # a counter per user from each allowance's start (whom it applies to is decided at inlet)
        assert upgraded.query("SELECT user_id, start, cost_nano FROM spend WHERE period = 'none' ORDER BY user_id") == [
            {"user_id": "ada", "start": str(created), "cost_nano": 4}, {"user_id": "bob", "start": str(created), "cost_nano": 5}]
        assert upgraded.query_one("SELECT since FROM budgets WHERE period = 'month'")["since"] is None
        assert upgraded.query_one("SELECT spent_nano FROM balances WHERE user_id = 'bob'")["spent_nano"] == 5
    finally:
        upgraded.close()


def test_erasing_a_user_drops_the_counters_of_their_one_off_allowance(client, meter, admin):
    """Found by the randomised test: erasure (delete) removed the allowance but left its counters."""
    from conftest import assert_invariants

    spend(client, ADA, 1, "a")
    budget(client, admin, scope="user", scope_id=BOB["id"], period="none", limit_usd=5)
    spend(client, ADA, 2, "b")
    assert meter.db.query_one("SELECT count(*) AS n FROM spend WHERE period = 'none'")["n"] == 1  # Ada's, from the allowance's start
    assert client.delete(f"/api/v1/users/{BOB['id']}?mode=delete", headers=admin).status_code in (200, 404)
    spend(client, BOB, 1, "bob")
    assert client.delete(f"/api/v1/users/{BOB['id']}?mode=delete", headers=admin).status_code == 200
    assert meter.db.query("SELECT * FROM spend WHERE period = 'none'") == []
    assert_invariants(meter)
