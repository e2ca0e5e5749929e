"""Prices: OpenRouter's synced list, admin prices, workspace-model inheritance, the prices API."""

import pytest

from conftest import API_KEY, outlet_body
from test_costs import costed_app


@pytest.fixture
def app(data_dir, fake):
    app = costed_app(data_dir, fake)
    app.config["METER"].price_sync.sync()
    yield app
    app.config["METER"].stop()


def record(client, **body):
    answer = client.post("/api/v1/outlet", json=outlet_body(**body), headers={"Authorization": f"Bearer {API_KEY}"}).get_json()
    return answer


def test_sync_stores_openrouter_prices_exactly(meter, fake):
    row = meter.db.query_one("SELECT * FROM prices WHERE model = 'openai/gpt-4o-mini'")
    assert (row["source"], row["prompt_pico"], row["completion_pico"], row["cache_read_pico"]) == ("openrouter", 150_000, 600_000, 75_000)
    assert meter.db.query_one("SELECT count(*) AS n FROM prices")["n"] == len(fake.models)


def test_sync_replaces_the_old_list_and_skips_odd_prices(meter, fake):
    fake.set_models([{"id": "new/model", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
                     {"id": "router/auto", "pricing": {"prompt": "-1", "completion": "-1"}}])
    assert meter.price_sync.sync() == 1
    assert [r["model"] for r in meter.db.query("SELECT model FROM prices")] == ["new/model"]


def test_answer_without_cost_is_estimated_from_tokens(client, meter):
    # 1000 cached of 4000 in: 3000 × 0.15 + 1000 × 0.075; 500 out × 0.60 (USD per million)
    answer = record(client, key="e", cost=None, usage={"prompt_tokens": 4000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 1000}})
    assert answer["cost_source"] == "estimate"
    assert meter.db.query_one("SELECT cost_nano FROM events")["cost_nano"] == 450_000 + 75_000 + 300_000
    assert answer["notice"].startswith("≈$")


def test_reasoning_tokens_use_the_reasoning_price(client, meter):
    record(client, key="r", cost=None, model="deepseek/deepseek-r1", usage={"prompt_tokens": 100, "completion_tokens": 1000, "completion_tokens_details": {"reasoning_tokens": 800}})
    # 100 × 0.4 + 200 × 2.0 + 800 × 2.0 (internal_reasoning) per million
    assert meter.db.query_one("SELECT cost_nano FROM events")["cost_nano"] == 40_000 + 400_000 + 1_600_000


def test_admin_price_wins_and_workspace_models_inherit(client, meter, admin_headers):
    response = client.put("/api/v1/prices/openai/gpt-4o-mini", json={"prompt_usd_per_mtok": 1, "completion_usd_per_mtok": "2.5"}, headers=admin_headers)
    assert response.status_code == 200 and response.get_json()["source"] == "admin"
    record(client, key="own", cost=None, prompt=1000, completion=1000)
    record(client, key="ws", cost=None, model="my-helpdesk-bot", base_model="openai/gpt-4o-mini", prompt=1000, completion=1000)
    client.put("/api/v1/prices/my-special-bot", json={"prompt_usd_per_mtok": 10, "completion_usd_per_mtok": 10}, headers=admin_headers)
    record(client, key="ws-own", cost=None, model="my-special-bot", base_model="openai/gpt-4o-mini", prompt=1000, completion=1000)
    costs = {r["key"]: r["cost_nano"] for r in meter.db.query("SELECT key, cost_nano FROM events")}
    assert costs == {"own": 3_500_000, "ws": 3_500_000, "ws-own": 20_000_000}
    listed = client.get("/api/v1/prices", headers=admin_headers).get_json()["prices"]
    mini = [p for p in listed if p["model"] == "openai/gpt-4o-mini"]
    assert [(p["source"], p["applies"]) for p in mini] == [("admin", True), ("openrouter", False)]
    assert mini[0]["completion_usd_per_mtok"] == 2.5
    assert meter.db.query_one("SELECT count(*) AS n FROM audit_log WHERE action = 'price.set'")["n"] == 2


def test_deleting_an_admin_price_falls_back_to_openrouter(client, meter, admin_headers):
    client.put("/api/v1/prices/openai/gpt-4o-mini", json={"prompt_usd_per_mtok": 1, "completion_usd_per_mtok": 1}, headers=admin_headers)
    assert client.delete("/api/v1/prices/openai/gpt-4o-mini", headers=admin_headers).status_code == 204
    assert client.delete("/api/v1/prices/openai/gpt-4o-mini", headers=admin_headers).status_code == 404
    record(client, key="after", cost=None, prompt=1000, completion=1000)
    assert meter.db.query_one("SELECT cost_nano FROM events")["cost_nano"] == 750_000


def test_unknown_model_is_unpriced(client, meter):
    answer = record(client, key="u", cost=None, model="ollama/llama3")
    assert answer["cost_source"] == "unpriced" and answer["cost_usd"] == 0.0
    assert "no price" in answer["notice"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"completion_usd_per_mtok": 1}, "prompt_usd_per_mtok is required"),
        ({"prompt_usd_per_mtok": "cheap", "completion_usd_per_mtok": 1}, "must be a number"),
        ({"prompt_usd_per_mtok": -1, "completion_usd_per_mtok": 1}, "between 0"),
        ({"prompt_usd_per_mtok": True, "completion_usd_per_mtok": 1}, "must be a number"),
        ({"prompt_usd_per_mtok": 1, "completion_usd_per_mtok": 1, "colour": "red"}, "unknown field colour"),
        ([1], "JSON object"),
    ],
)
def test_bad_price_bodies_are_400_and_change_nothing(client, meter, admin_headers, body, fragment):
    response = client.put("/api/v1/prices/some/model", json=body, headers=admin_headers)
    assert response.status_code == 400 and fragment in response.get_json()["error"]
    assert meter.db.query("SELECT * FROM prices WHERE source = 'admin'") == []


def test_prices_api_needs_an_admin(client, plugin_headers):
    assert client.get("/api/v1/prices", headers=plugin_headers).status_code == 401
    assert client.put("/api/v1/prices/x", json={}, headers=plugin_headers).status_code == 401
