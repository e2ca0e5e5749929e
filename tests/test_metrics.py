"""/metrics, parsed with Prometheus' own text parser."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADA, API_KEY, BOB, make_settings, outlet_body
from owui_meter import create_app

H = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def client(data_dir):
    app = create_app(make_settings(data_dir, METRICS_PUBLIC="true"))
    yield app.test_client()
    app.config["METER"].stop()


def samples(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_reflect_the_ledger(client):
    client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=0.5, model="m1"), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="b", user=BOB, cost=0.25, model="m1", generation_ids=["gen-1"]), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="c", user=BOB, cost=1, model="m2"), headers=H)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    s = samples(response.get_data(as_text=True))
    assert s[("owui_meter_answers_total", (("model", "m1"),))] == 2
    assert s[("owui_meter_cost_usd_total", (("model", "m2"),))] == 1.0
    assert s[("owui_meter_user_cost_usd_total", (("user", BOB["id"]),))] == 1.25
    assert s[("owui_meter_lookups_pending", ())] == 1
    assert s[("owui_meter_database_bytes", ())] > 0
    client.post("/api/v1/inlet", json=outlet_body(key="d", user=ADA), headers=H)
    s = samples(client.get("/metrics").get_data(as_text=True))
    # one latency series per method and route, each counting only its own requests
    assert s[("owui_meter_request_seconds_count", (("method", "POST"), ("route", "/api/v1/outlet")))] == 3
    assert s[("owui_meter_request_seconds_count", (("method", "POST"), ("route", "/api/v1/inlet")))] == 1
    assert s[("owui_meter_request_seconds_count", (("method", "GET"), ("route", "/metrics")))] == 1


def test_user_labels_are_bounded(client):
    for i in range(30):
        client.post("/api/v1/outlet", json=outlet_body(key=f"k{i}", user={"id": f"u{i}", "email": f"u{i}@example.com"}, cost=i + 1), headers=H)
    s = samples(client.get("/metrics").get_data(as_text=True))
    users = [dict(labels)["user"] for name, labels in s if name == "owui_meter_user_cost_usd_total"]
    assert len(users) == 21 and "other" in users
    assert s[("owui_meter_user_cost_usd_total", (("user", "other"),))] == sum(range(1, 11))


def test_metrics_token(data_dir):
    app = create_app(make_settings(data_dir, METRICS_TOKEN="scrape-me-please"))
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"}).status_code == 200
    app.config["METER"].stop()


def test_metrics_need_a_token_unless_declared_public(data_dir):
    app = create_app(make_settings(data_dir))
    response = app.test_client().get("/metrics")
    assert response.status_code == 401
    assert "set METRICS_TOKEN (or METRICS_PUBLIC=true) to scrape /metrics" in response.get_data(as_text=True)
    app.config["METER"].stop()
