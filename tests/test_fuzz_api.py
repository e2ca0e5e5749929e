"""Hostile input, property-based: the plugin endpoints and the read API never answer 5xx, refuse
absurd values instead of storing them, and leave totals that make sense.

Bounded for CI; ``OWUI_METER_FUZZ_EXAMPLES=5000`` runs longer.
"""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ADA, API_KEY, JWT_SECRET, make_settings, outlet_body
from owui_meter import create_app
from owui_meter.auth import create_token

EXAMPLES = int(os.environ.get("OWUI_METER_FUZZ_EXAMPLES", "300"))
PLUGIN = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
ADMIN = {"Authorization": f"Bearer {create_token(JWT_SECRET, days=3650)}"}
MAX_TOKENS = 100_000_000
MAX_ANSWER_NANO = 1000 * 10**9  # METER_MAX_ANSWER_USD's default

HOSTILE_NUMBERS = [float("nan"), float("inf"), float("-inf"), -1e308, 1e308, 2**63, 2**63 - 1, -(2**63), 2**64, -1, -0.0,
                   1e-320, 9_000_000_000, 5e18, 10**30]
HOSTILE_TEXT = ["\ud800", "a\udfffb", "", " ", "x" * 5000, "1e999999", "NaN", "-1", "0x10", "\x00", "é" * 300, "😀" * 100]


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


hostile = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(HOSTILE_TEXT), st.booleans(), st.none(),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.builds(nested, st.sampled_from([1, 50, 1000])), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
PATHS = [("key",), ("user",), ("user", "id"), ("user", "email"), ("user", "name"), ("model",), ("chat_id",), ("message_id",),
         ("timestamp",), ("usage",), ("usage", "prompt_tokens"), ("usage", "completion_tokens"), ("usage", "cost"),
         ("usage", "completion_tokens_details"), ("usage", "prompt_tokens_details", "cached_tokens"), ("generation_ids",),
         ("source",), ("language",)]


def mutate(body: dict, path: tuple, value) -> dict:
    target = body
    for name in path[:-1]:
        if not isinstance(target.get(name), dict):
            target[name] = {}
        target = target[name]
    target[path[-1]] = value
    return body


def dumps(body) -> bytes:
    """JSON as a hostile client writes it: NaN and Infinity as bare words, lone surrogates escaped."""
    return json.dumps(body, allow_nan=True).encode()


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    app = create_app(make_settings(tmp_path_factory.mktemp("fuzz")))
    app.config["TESTING"] = True
    yield app
    app.config["METER"].stop()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(endpoint=st.sampled_from(["/api/v1/outlet", "/api/v1/inlet", "/api/v1/metering/record"]),
       changes=st.lists(st.tuples(st.sampled_from(PATHS), hostile), min_size=1, max_size=3),
       n=st.integers(0, 10**9))
def test_plugin_endpoints_never_answer_5xx_and_store_nothing_absurd(fuzz_app, endpoint, changes, n):
    body = outlet_body(key=f"fuzz-{n}", user=dict(ADA))
    if endpoint == "/api/v1/metering/record":
        body = {"user": dict(ADA), "activity": {"id": f"fuzz-{n}", "model": "m", "cost": 0.01, "timestamp": 1_790_000_000}}
    for path, value in changes:
        body = mutate(body, path, value)
    response = fuzz_app.test_client().post(endpoint, data=dumps(body), headers=PLUGIN)
    assert response.status_code < 500, (endpoint, body, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.is_json and response.get_json()["error"]
    db = fuzz_app.config["METER"].db
    worst = db.query_one("""SELECT max(prompt_tokens) AS p, max(completion_tokens) AS c, max(reasoning_tokens) AS r,
                                   max(cached_tokens) AS k, max(cost_nano) AS cost, min(cost_nano) AS low FROM events""")
    assert max(worst["p"] or 0, worst["c"] or 0, worst["r"] or 0, worst["k"] or 0) <= MAX_TOKENS
    assert 0 <= (worst["low"] or 0) and (worst["cost"] or 0) <= MAX_ANSWER_NANO


QUERY_VALUES = st.one_of(st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "2026-11", "9999-12", "-1", "1e9",
                                          "99999999999999999999999", "", "%ED%A0%80", "%00", "2026-11-01T25:00", "now",
                                          "MjAyNjo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "POST"]),
                         st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(["/api/v1/events", "/api/v1/usage", "/api/v1/reconciliation", "/api/v1/reports/summary.pdf",
                             "/api/v1/budgets", "/api/v1/prices", f"/api/v1/users/{ADA['id']}/budgets", "/healthcheck"]),
       params=st.dictionaries(st.sampled_from(["from", "to", "month", "cursor", "limit", "group_by", "user", "model", "source",
                                               "cost_source", "_method", "period"]), QUERY_VALUES, max_size=4))
def test_read_api_never_answers_5xx(fuzz_app, path, params):
    response = fuzz_app.test_client().get(path, query_string=params, headers=ADMIN)
    assert response.status_code < 500, (path, params, response.get_data(as_text=True)[:300])


def test_the_usage_api_still_answers_after_the_largest_answers_allowed(fuzz_app):
    """Sums of the largest answers the meter accepts cannot overflow SQLite's integers."""
    client = fuzz_app.test_client()
    for i in range(3):
        body = outlet_body(key=f"big-{i}", prompt=MAX_TOKENS, completion=MAX_TOKENS, cost=1000)
        assert client.post("/api/v1/outlet", data=dumps(body), headers=PLUGIN).status_code == 202
    for group_by in ("user", "model", "day", "source"):
        assert client.get("/api/v1/usage", query_string={"group_by": group_by}, headers=ADMIN).status_code == 200
