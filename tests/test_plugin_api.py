"""The plugin endpoints: inlet, outlet (idempotent), owui-metering's record; and their bad inputs."""

import pytest

from conftest import ADA, API_KEY, BOB, make_settings, outlet_body
from owui_meter import create_app


def events_of(meter):
    return meter.db.query("SELECT * FROM events ORDER BY id")


def test_inlet_allows_and_records_the_user(client, meter, plugin_headers):
    response = client.post("/api/v1/inlet", json={"user": BOB, "model": "openai/gpt-4o-mini", "chat_id": "c", "message_id": None, "session_id": None}, headers=plugin_headers)
    assert response.status_code == 200
    assert response.get_json() == {"allow": True, "message": None}
    user = meter.db.query_one("SELECT * FROM users WHERE id = ?", (BOB["id"],))
    assert (user["email"], user["name"], user["role"]) == (BOB["email"], BOB["name"], "user")


def test_outlet_records_one_event_with_inline_cost(client, meter, plugin_headers):
    body = outlet_body(key="m-1", cost=9.15e-06, prompt=9, completion=13, generation_ids=["gen-abc"])
    response = client.post("/api/v1/outlet", json=body, headers=plugin_headers)
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["duplicate"] is False
    assert answer["cost_source"] == "inline"
    assert answer["cost_usd"] == pytest.approx(9.15e-06)
    assert "9 in / 13 out" in answer["notice"]
    [row] = events_of(meter)
    assert row["cost_nano"] == 9150  # exact: no float rounding on the way in
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 13)
    assert row["lookup_state"] == "pending"
    assert [g["id"] for g in meter.db.query("SELECT id FROM generations WHERE event_id = ?", (row["id"],))] == ["gen-abc"]


def test_same_key_twice_is_one_event(client, meter, plugin_headers):
    first = client.post("/api/v1/outlet", json=outlet_body(key="k"), headers=plugin_headers).get_json()
    # a retry of the same answer does not count again
    second = client.post("/api/v1/outlet", json=outlet_body(key="k"), headers=plugin_headers).get_json()
    assert second["duplicate"] is True
    assert second["event_id"] == first["event_id"] and second["notice"] == first["notice"]
    [row] = events_of(meter)
    assert row["prompt_tokens"] == 10 and row["cost_nano"] == 10_000
    daily = meter.db.query("SELECT answers, cost_nano FROM usage_daily")
    assert daily == [{"answers": 1, "cost_nano": 10_000}]


@pytest.mark.parametrize("change, reason", [
    ({"user": BOB}, "another user"),
    ({"model": "anthropic/claude-3.5-haiku"}, "another model"),
    ({"cost": 5.0, "prompt": 999}, "other usage"),
])
def test_a_key_reused_for_another_answer_is_a_conflict_that_tells_nothing(client, meter, plugin_headers, change, reason):
    client.post("/api/v1/outlet", json=outlet_body(key="k", generation_ids=["gen-ada1"]), headers=plugin_headers)
    before = meter.db.query("SELECT * FROM usage_daily")
    answer = client.post("/api/v1/outlet", json=outlet_body(key="k", **change), headers=plugin_headers)
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error"] == f"this key belongs to another answer ({reason}); report each answer under its own key"
    assert "notice" not in body and "cost_usd" not in body and "event_id" not in body
    assert ("generation_ids" in body) == (reason != "another user")  # only the answer's own user learns its ids
    assert meter.db.query("SELECT * FROM usage_daily") == before and len(events_of(meter)) == 1
    audit = meter.db.query_one("SELECT action, detail FROM audit_log WHERE action = 'answer.conflict'")
    assert reason in audit["detail"] and ADA["id"] not in audit["detail"] and BOB["id"] not in audit["detail"]


@pytest.mark.parametrize("usage, field", [
    ({"prompt_tokens": -4, "completion_tokens": 2}, "usage.prompt_tokens must not be negative"),
    ({"prompt_tokens": 2**63 - 1}, "usage.prompt_tokens must be at most 100,000,000 tokens"),
    ({"completion_tokens": 1e308}, "usage.completion_tokens must be at most 100,000,000 tokens"),
    ({"input_tokens": 5, "prompt_tokens_details": {"cached_tokens": 5e18}}, "usage.prompt_tokens_details.cached_tokens must be at most"),
    ({"prompt_tokens": 5, "cost": -1000}, "usage.cost must not be negative"),
    ({"prompt_tokens": 5, "cost": 9_000_000_000}, "usage.cost must be at most $1,000 for one answer"),
    ({"prompt_tokens": 5, "cost": "1e999999"}, "usage.cost must be at most $1,000 for one answer"),
])
def test_absurd_usage_is_refused_not_stored(client, meter, plugin_headers, usage, field):
    answer = client.post("/api/v1/outlet", json=outlet_body(key="absurd", usage=usage), headers=plugin_headers)
    assert answer.status_code == 400 and answer.get_json()["error"].startswith(field)
    assert events_of(meter) == [] and meter.db.query("SELECT * FROM users") == []


def test_the_answer_cost_limit_is_a_setting(data_dir, plugin_headers):
    app = create_app(make_settings(data_dir, METER_MAX_ANSWER_USD="5"))
    client = app.test_client()
    assert client.post("/api/v1/outlet", json=outlet_body(key="a", cost=5), headers=plugin_headers).status_code == 202
    refused = client.post("/api/v1/outlet", json=outlet_body(key="b", cost=5.01), headers=plugin_headers)
    assert refused.status_code == 400 and refused.get_json()["error"].startswith("usage.cost must be at most $5 for one answer")
    app.config["METER"].stop()


@pytest.mark.parametrize("raw, error", [
    (b'{"key": "n", "usage": {"cost": NaN}}', "body must be valid JSON"),
    (b'{"key": "n", "timestamp": Infinity}', "body must be valid JSON"),
    (b'{"key": "n", "timestamp": -Infinity}', "body must be valid JSON"),
    (b'{"key": "\\ud800"}', "body holds text that is not valid Unicode (a lone surrogate)"),
    (b'{"key": "n", "user": {"id": "a\\udfffb"}}', "body holds text that is not valid Unicode (a lone surrogate)"),
    (b"[" * 1000 + b"]" * 1000, "body must not nest more than 32 levels deep"),
    (b'{"key": "\xff\xfe"}', "body must be valid JSON"),
    ('{"key": "\\ud800"}'.encode("utf-16"), "body must be valid JSON"),  # JSON is UTF-8 only
])
def test_json_that_is_not_strict_is_refused(client, meter, plugin_headers, raw, error):
    for path in ("/api/v1/outlet", "/api/v1/inlet", "/api/v1/metering/record"):
        answer = client.post(path, data=raw, headers={**plugin_headers, "Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.get_json()["error"] == error, path
    assert events_of(meter) == []


def test_a_duplicate_names_the_stored_answers_generations_to_its_own_user_only(client, meter, plugin_headers):
    first = client.post("/api/v1/outlet", json=outlet_body(key="msg-9", generation_ids=["gen-first1", "gen-first2"]), headers=plugin_headers)
    assert first.status_code == 202 and "generation_ids" not in first.get_json()  # nothing to compare with
    # the same key with other generations ("Continue" into the same message, reported by a plugin
    # that no longer knew the first one): the plugin needs the stored ids to tell it from a retry
    again = client.post("/api/v1/outlet", json=outlet_body(key="msg-9", generation_ids=["gen-second"]), headers=plugin_headers).get_json()
    assert (again["duplicate"], again["generation_ids"]) == (True, ["gen-first1", "gen-first2"])
    other_user = client.post("/api/v1/outlet", json=outlet_body(key="msg-9", user=BOB, generation_ids=["gen-second"]), headers=plugin_headers)
    assert "generation_ids" not in (other_user.get_json() or {})  # nothing about anyone else
    assert len(events_of(meter)) == 1


def test_usage_less_duplicate_never_overwrites(client, meter, plugin_headers):
    """Open WebUI's legacy /api/chat/completed runs outlet again with no usage."""
    client.post("/api/v1/outlet", json=outlet_body(key="m"), headers=plugin_headers)
    again = client.post("/api/v1/outlet", json=outlet_body(key="m", usage=None), headers=plugin_headers).get_json()
    assert again["duplicate"] is True
    assert events_of(meter)[0]["cost_nano"] == 10_000


@pytest.mark.parametrize(
    "usage, expected",
    [
        ({"prompt_tokens": 5, "completion_tokens": 7, "cost": 0.001, "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 3}}, (5, 7, 3, 2, 1_000_000)),
        ({"input_tokens": 11, "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 1}}, (11, 4, 1, 0, None)),
        ({"prompt_eval_count": 20, "eval_count": 30}, (20, 30, 0, 0, None)),
        ({"input_tokens": 8, "output_tokens": 2, "cache_read_input_tokens": 6, "cost": "0.5"}, (8, 2, 0, 6, 500_000_000)),
        ({"prompt_tokens": "many", "completion_tokens": "4", "cost": "free"}, (0, 0, 0, 0, None)),
    ],
)
def test_usage_shapes(client, meter, plugin_headers, usage, expected):
    client.post("/api/v1/outlet", json=outlet_body(key="u", usage=usage), headers=plugin_headers)
    row = events_of(meter)[0]
    assert (row["prompt_tokens"], row["completion_tokens"], row["reasoning_tokens"], row["cached_tokens"], row["inline_cost_nano"]) == expected
    assert row["cost_source"] == ("inline" if expected[4] is not None else "unpriced")


def test_answer_without_cost_but_with_generation_ids_is_pending(client, meter, plugin_headers):
    body = outlet_body(key="p", cost=None, generation_ids=["gen-1", "gen-2", "gen-1"])
    answer = client.post("/api/v1/outlet", json=body, headers=plugin_headers).get_json()
    assert answer["cost_source"] == "pending" and answer["cost_usd"] is None
    assert meter.db.query_one("SELECT count(*) AS n FROM generations")["n"] == 2


def test_source_is_derived_from_chat_id(client, meter, plugin_headers):
    client.post("/api/v1/outlet", json=outlet_body(key="api-1", chat_id=""), headers=plugin_headers)
    client.post("/api/v1/outlet", json=outlet_body(key="ui-1", chat_id="chat"), headers=plugin_headers)
    assert [r["source"] for r in events_of(meter)] == ["api", "ui"]


def test_implausible_client_timestamp_falls_back_to_receive_time(client, meter, plugin_headers):
    client.post("/api/v1/outlet", json=outlet_body(key="old", timestamp=1), headers=plugin_headers)
    row = events_of(meter)[0]
    assert row["ts"] == row["received"]


def test_plausible_client_timestamp_is_kept(client, meter, plugin_headers, monkeypatch):
    from owui_meter import clock

    monkeypatch.setattr(clock, "time_fn", lambda: 1_800_000_000.0)
    client.post("/api/v1/outlet", json=outlet_body(key="queued", timestamp=1_800_000_000 - 3600), headers=plugin_headers)
    row = events_of(meter)[0]
    assert row["ts"] == (1_800_000_000 - 3600) * 1000
    assert row["received"] == 1_800_000_000 * 1000


def test_owui_metering_record_is_accepted(client, meter):
    payload = {
        "user": {"id": "u-old", "name": "Old", "role": "user", "email": "old@example.com"},
        "activity": {"id": "act-1", "timestamp": None, "cost": 0.25, "model": "m", "user_id": "u-old", "prompt_token": 3, "completion_token": 4},
    }
    # owui-metering's filter sends the key without "Bearer"
    response = client.post("/api/v1/metering/record", json=payload, headers={"Authorization": API_KEY})
    assert response.status_code == 200 and response.get_json() == {"success": True}
    again = client.post("/api/v1/metering/record", json=payload, headers={"Authorization": API_KEY})
    assert again.status_code == 200
    [row] = events_of(meter)
    assert (row["key"], row["cost_nano"], row["cost_source"], row["prompt_tokens"]) == ("act-1", 250_000_000, "inline", 3)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user": ADA, "model": "m", "usage": None}, "key"),
        ({"key": "k", "model": "m"}, "user"),
        ({"key": "k", "user": {"email": "x"}, "model": "m"}, "user.id"),
        ({"key": "k", "user": ADA}, "model"),
        ({"key": 5, "user": ADA, "model": "m"}, "key"),
        ({"key": "k", "user": ADA, "model": ["m"]}, "model"),
        ({"key": "k", "user": ADA, "model": "m", "usage": [1, 2]}, "usage"),
        ({"key": "k", "user": ADA, "model": "m", "generation_ids": "gen-1"}, "generation_ids"),
        ({"key": "k", "user": ADA, "model": "m", "generation_ids": ["not-a-gen"]}, "generation_ids"),
        ({"key": "k", "user": ADA, "model": "m", "source": "tv"}, "source"),
        ({"key": "k", "user": ADA, "model": "m", "timestamp": "yesterday"}, "timestamp"),
        ({"key": "k" * 300, "user": ADA, "model": "m"}, "key"),
        ([1, 2, 3], "body"),
    ],
)
def test_bad_outlet_bodies_are_400_naming_the_field_and_change_nothing(client, meter, plugin_headers, body, field):
    response = client.post("/api/v1/outlet", json=body, headers=plugin_headers)
    assert response.status_code == 400
    assert field in response.get_json()["error"]
    assert events_of(meter) == []
    assert meter.db.query("SELECT * FROM users") == []


@pytest.mark.parametrize("data", [b"{", b"", b"\xff\xfe", b"null"])
def test_invalid_json_is_400(client, meter, plugin_headers, data):
    response = client.post("/api/v1/outlet", data=data, headers={**plugin_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.is_json and "JSON" in response.get_json()["error"]


def test_bad_inlet_is_400(client, plugin_headers):
    response = client.post("/api/v1/inlet", json={"user": {"id": ""}}, headers=plugin_headers)
    assert response.status_code == 400 and "user.id" in response.get_json()["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-wrong-key"}, {"Authorization": API_KEY}, {"Authorization": "Basic " + API_KEY}])
@pytest.mark.parametrize("path", ["/api/v1/inlet", "/api/v1/outlet"])
def test_wrong_or_missing_key_is_401(client, meter, headers, path):
    response = client.post(path, json=outlet_body(), headers=headers)
    assert response.status_code == 401
    assert response.is_json and "key" in response.get_json()["error"]
    assert events_of(meter) == []


def test_metering_record_wrong_key_is_401(client):
    assert client.post("/api/v1/metering/record", json={}, headers={"Authorization": "nope"}).status_code == 401


def test_plugin_key_opens_nothing_else(client, plugin_headers):
    for path in ("/api/v1/events", "/api/v1/usage"):
        response = client.get(path, headers=plugin_headers)
        assert response.status_code == 401, path


def test_too_large_body_is_413(data_dir):
    from conftest import make_settings
    from owui_meter import create_app

    app = create_app(make_settings(data_dir, METER_MAX_BODY_BYTES=2048))
    client = app.test_client()
    body = outlet_body(key="big", pad="x" * 4096)
    response = client.post("/api/v1/outlet", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 413
    assert response.is_json and "too large" in response.get_json()["error"]
    assert app.config["METER"].db.query("SELECT * FROM events") == []
    app.config["METER"].stop()


def test_unknown_path_and_wrong_method_are_json(client, plugin_headers):
    missing = client.get("/api/v1/nothing-here", headers=plugin_headers)
    assert missing.status_code == 404 and missing.get_json()["error"] == "not found"
    wrong = client.get("/api/v1/outlet", headers=plugin_headers)
    assert wrong.status_code == 405 and "GET" in wrong.get_json()["error"]


def test_an_answer_older_than_seven_days_is_recorded_now_and_the_reply_says_so(client, meter, plugin_headers, monkeypatch):
    from owui_meter import clock

    monkeypatch.setattr(clock, "time_fn", lambda: 1_800_000_000.25)
    old = 1_800_000_000 - 8 * 86400
    reply = client.post("/api/v1/outlet", json=outlet_body(key="stale", timestamp=old), headers=plugin_headers)
    assert reply.status_code == 202
    body = reply.get_json()
    assert body["timestamp_adjusted"] is True and body["timestamp_original"] == old
    assert body["timestamp"] == "2027-01-15T08:00:00.250Z"  # when the meter received it
    row = events_of(meter)[0]
    assert row["ts"] == row["received"] == 1_800_000_000_250
    ahead = client.post("/api/v1/outlet", json=outlet_body(key="ahead", timestamp="2027-01-15T09:00:00Z"), headers=plugin_headers).get_json()
    assert ahead["timestamp_adjusted"] is True and ahead["timestamp_original"] == "2027-01-15T09:00:00Z"
    # numbers too large for any clock (1e308 seconds overflowed to infinity and answered 500)
    for n, absurd in enumerate((1e308, -1e308, 10**30, 1e15)):
        far = client.post("/api/v1/outlet", json=outlet_body(key=f"far-{n}", timestamp=absurd), headers=plugin_headers)
        assert far.status_code == 202 and far.get_json()["timestamp_adjusted"] is True, (absurd, far.get_json())
        assert far.get_json()["timestamp"] == "2027-01-15T08:00:00.250Z"
    recent = client.post("/api/v1/outlet", json=outlet_body(key="recent", timestamp=1_800_000_000 - 6 * 86400), headers=plugin_headers).get_json()
    assert recent["timestamp_adjusted"] is False and "timestamp_original" not in recent
    assert recent["timestamp"] == "2027-01-09T08:00:00.000Z"
    again = client.post("/api/v1/outlet", json=outlet_body(key="stale", timestamp=old), headers=plugin_headers).get_json()
    assert again["duplicate"] is True and again["timestamp"] == body["timestamp"]  # what is stored, not a second guess
