"""Reconciliation: the ledger against OpenRouter's running usage of the key."""

import pytest

from conftest import API_KEY, JWT_SECRET, outlet_body
from owui_meter import clock
from owui_meter.auth import create_token
from conftest import Clock
from test_costs import costed_app

HOUR = 3600


def test_unattributed_spend_between_samples(data_dir, fake, monkeypatch):
    now = Clock(1_800_000_000.0)
    monkeypatch.setattr(clock, "time_fn", now)
    app = costed_app(data_dir, fake)
    meter, client = app.config["METER"], app.test_client()
    fake.set_key_usage(total=10.0)
    meter.key_sampler.sample()  # t0: $10 so far
    now.advance(HOUR)
    for i, cost in enumerate((0.25, 0.5)):
        client.post("/api/v1/outlet", json=outlet_body(key=f"k{i}", cost=cost), headers={"Authorization": f"Bearer {API_KEY}"})
    now.advance(HOUR)
    fake.set_key_usage(total=11.0)  # OpenRouter billed $1; the answers account for $0.75
    meter.key_sampler.sample()
    token = create_token(JWT_SECRET)
    response = client.get("/api/v1/reconciliation", query_string={"from": clock.ms_to_iso(1_800_000_000_000), "to": clock.ms_to_iso(1_800_000_000_000 + 2 * HOUR * 1000)}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["openrouter_nano"] == 1_000_000_000
    assert body["ledger_nano"] == 750_000_000
    assert body["unattributed_nano"] == 250_000_000
    assert body["unattributed_usd"] == 0.25
    assert "samples" in body["precision"]
    stored = meter.db.query("SELECT usage_nano FROM key_usage ORDER BY ts")
    assert [r["usage_nano"] for r in stored] == [10_000_000_000, 11_000_000_000]
    meter.stop()


def test_unknown_without_a_sample_before_the_window(data_dir, fake, monkeypatch, admin_headers):
    app = costed_app(data_dir, fake)
    response = app.test_client().get("/api/v1/reconciliation", query_string={"from": "2020-01-01", "to": "2020-01-31"}, headers=admin_headers)
    body = response.get_json()
    assert response.status_code == 200
    assert body["openrouter_nano"] is None and body["unattributed_nano"] is None and body["ledger_nano"] == 0
    assert "unknown" in body["precision"]
    app.config["METER"].stop()


@pytest.mark.parametrize("params, fragment", [({}, "from is required"), ({"from": "soon"}, "from"), ({"from": "2026-02-01", "to": "2026-01-01"}, "before")])
def test_bad_reconciliation_queries(client, admin_headers, params, fragment):
    response = client.get("/api/v1/reconciliation", query_string=params, headers=admin_headers)
    assert response.status_code == 400 and fragment in response.get_json()["error"]
