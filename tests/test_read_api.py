"""The admin read API: events (keyset pagination, filters) and usage aggregates."""

import datetime as dt

import pytest

from conftest import ADA, BOB, outlet_body
from owui_meter import clock


@pytest.fixture
def seeded(client, plugin_headers, monkeypatch):
    """Six answers over two days: Ada 4 (2 models), Bob 2; timestamps one hour apart."""
    base = dt.datetime(2026, 11, 10, 22, 0, tzinfo=dt.timezone.utc).timestamp()
    monkeypatch.setattr(clock, "time_fn", lambda: base + 10 * 3600)
    plan = [(ADA, "openai/gpt-4o-mini", 0.001), (ADA, "anthropic/claude-3.5-haiku", 0.002), (BOB, "openai/gpt-4o-mini", 0.004),
            (ADA, "openai/gpt-4o-mini", 0.008), (BOB, "openai/gpt-4o-mini", 0.016), (ADA, "anthropic/claude-3.5-haiku", 0.032)]
    for i, (user, model, cost) in enumerate(plan):
        body = outlet_body(key=f"k{i}", user=user, model=model, cost=cost, prompt=i + 1, completion=10 * (i + 1), timestamp=base + i * 3600, chat_id="" if i == 4 else "c")
        assert client.post("/api/v1/outlet", json=body, headers=plugin_headers).status_code == 202
    return plan


def test_events_newest_first_with_cursor_pages(client, admin_headers, seeded):
    seen, cursor = [], None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/events", query_string=params, headers=admin_headers).get_json()
        seen += [e["key"] for e in page["events"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["k5", "k4", "k3", "k2", "k1", "k0"]


def test_event_fields(client, admin_headers, seeded):
    [event] = client.get("/api/v1/events", query_string={"limit": 1}, headers=admin_headers).get_json()["events"]
    assert event["key"] == "k5" and event["user_id"] == ADA["id"] and event["user_email"] == ADA["email"]
    assert event["cost_usd"] == pytest.approx(0.032) and event["cost_nano"] == 32_000_000
    assert event["cost_source"] == "inline" and event["lookup_state"] == "none"
    assert event["ts"] == "2026-11-11T03:00:00.000Z"


def test_event_filters(client, admin_headers, seeded):
    def keys(**params):
        return [e["key"] for e in client.get("/api/v1/events", query_string=params, headers=admin_headers).get_json()["events"]]

    assert keys(user=BOB["id"]) == ["k4", "k2"]
    assert keys(model="anthropic/claude-3.5-haiku") == ["k5", "k1"]
    assert keys(source="api") == ["k4"]
    assert keys(**{"from": "2026-11-11"}) == ["k5", "k4", "k3", "k2"]
    assert keys(to="2026-11-10") == ["k1", "k0"]  # a bare date includes that whole day
    assert keys(**{"from": "2026-11-11T01:00:00+01:00", "to": "2026-11-11T02:00:00Z"}) == ["k3", "k2"]  # to is exclusive


def test_usage_by_user_model_source(client, admin_headers, seeded):
    by_user = client.get("/api/v1/usage", query_string={"group_by": "user"}, headers=admin_headers).get_json()
    rows = {r["key"]: r for r in by_user["rows"]}
    assert rows[ADA["id"]]["answers"] == 4 and rows[ADA["id"]]["cost_usd"] == pytest.approx(0.043)
    assert rows[BOB["id"]]["label"] == "Bob User" and rows[BOB["id"]]["cost_usd"] == pytest.approx(0.020)
    assert by_user["total"]["answers"] == 6 and by_user["total"]["cost_nano"] == 63_000_000
    assert by_user["total"]["prompt_tokens"] == 21 and by_user["total"]["completion_tokens"] == 210
    by_model = client.get("/api/v1/usage", query_string={"group_by": "model", "user": ADA["id"]}, headers=admin_headers).get_json()
    assert {r["key"]: r["answers"] for r in by_model["rows"]} == {"anthropic/claude-3.5-haiku": 2, "openai/gpt-4o-mini": 2}
    by_source = client.get("/api/v1/usage", query_string={"group_by": "source"}, headers=admin_headers).get_json()
    assert {r["key"]: r["answers"] for r in by_source["rows"]} == {"ui": 5, "api": 1}


def test_usage_by_day_follows_the_meter_time_zone(data_dir, plugin_headers, admin_headers, monkeypatch):
    from conftest import make_settings
    from owui_meter import create_app

    base = dt.datetime(2026, 11, 10, 22, 0, tzinfo=dt.timezone.utc).timestamp()
    monkeypatch.setattr(clock, "time_fn", lambda: base + 3 * 3600)
    for tz, expected in (("UTC", {"2026-11-10": 2, "2026-11-11": 1}), ("Asia/Kolkata", {"2026-11-11": 3})):
        app = create_app(make_settings(data_dir / tz.replace("/", "-"), METER_TIMEZONE=tz))
        client = app.test_client()
        for i in range(3):  # 22:00, 23:00, 00:00 UTC
            client.post("/api/v1/outlet", json=outlet_body(key=f"d{i}", timestamp=base + i * 3600), headers=plugin_headers)
        rows = client.get("/api/v1/usage", query_string={"group_by": "day"}, headers=admin_headers).get_json()["rows"]
        assert {r["key"]: r["answers"] for r in rows} == expected
        daily = app.config["METER"].db.query("SELECT day, answers FROM usage_daily ORDER BY day")
        assert {d["day"]: d["answers"] for d in daily} == expected
        app.config["METER"].stop()


@pytest.mark.parametrize(
    "path, params, fragment",
    [
        ("/api/v1/events", {"from": "last tuesday"}, "from"),
        ("/api/v1/events", {"to": "2026-13-01"}, "to"),
        ("/api/v1/events", {"limit": "ten"}, "limit"),
        ("/api/v1/events", {"limit": "0"}, "limit"),
        ("/api/v1/events", {"limit": "100000"}, "limit"),
        ("/api/v1/events", {"cursor": "!!!"}, "cursor"),
        ("/api/v1/events", {"source": "fax"}, "source"),
        ("/api/v1/events", {"cost_source": "guess"}, "cost_source"),
        ("/api/v1/events", {"from": "2026-11-02", "to": "2026-11-01"}, "before"),
        ("/api/v1/usage", {"group_by": "planet"}, "group_by"),
    ],
)
def test_bad_query_parameters_are_400(client, admin_headers, path, params, fragment):
    response = client.get(path, query_string=params, headers=admin_headers)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]


def test_tokens_expired_forged_or_wrong_algorithm_are_401(client, monkeypatch):
    import jwt

    from conftest import JWT_SECRET
    from owui_meter.auth import create_token

    expired = create_token(JWT_SECRET, days=-1)
    forged = create_token("another-secret-another-secret-another-secret")
    unsigned = jwt.encode({"sub": "x", "scope": "admin", "iat": 1, "exp": 4_000_000_000}, key=None, algorithm="none")
    no_exp = jwt.encode({"sub": "x", "scope": "admin", "iat": 1}, JWT_SECRET, algorithm="HS256")
    wrong_scope = jwt.encode({"sub": "x", "scope": "self", "iat": 1, "exp": 4_000_000_000}, JWT_SECRET, algorithm="HS256")
    for token in (expired, forged, unsigned, no_exp, wrong_scope, "garbage"):
        response = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.is_json
