"""The whole cost of an answer: bring-your-own-key provider charges beside OpenRouter's fee,
stopped answers, cache savings; and reconciliation that compares only OpenRouter's charges.
Against the fake OpenRouter on loopback and a real SQLite file."""

import pytest
import requests
from conftest import ADA, API_KEY, JWT_SECRET, outlet_body
from test_costs import costed_app, event, post

from owui_meter import clock
from owui_meter.auth import create_token

HOUR = 3600
# OpenRouter's inline usage for a BYOK answer: cost is its 5 % fee, the provider charged $0.0021
BYOK_USAGE = {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.000105, "is_byok": True,
              "cost_details": {"upstream_inference_cost": 0.0021}}


@pytest.fixture
def app(data_dir, fake, now):
    app = costed_app(data_dir, fake)
    yield app
    app.config["METER"].stop()


def charges(meter, key):
    row = event(meter, key)
    return {k: row[k] for k in ("cost_nano", "openrouter_nano", "provider_nano", "byok", "cost_source")}


def totals(meter):
    daily = meter.db.query_one("SELECT sum(cost_nano) AS cost, sum(provider_cost_nano) AS provider, sum(cache_discount_nano) AS cache FROM usage_daily")
    month = meter.db.query_one("SELECT sum(cost_nano) AS cost FROM spend WHERE period = 'month'")
    return {"daily": daily["cost"], "daily_provider": daily["provider"], "daily_cache": daily["cache"], "month": month["cost"]}


def test_byok_answer_costs_provider_plus_fee_inline_then_confirmed(app, client, meter, fake, now):
    fake.add_generation("gen-byok", 0.000106, byok_provider_cost=0.00212)
    post(client, key="byok", usage=BYOK_USAGE, generation_ids=["gen-byok"])
    assert charges(meter, "byok") == {"cost_nano": 2_205_000, "openrouter_nano": 105_000, "provider_nano": 2_100_000, "byok": 1, "cost_source": "inline"}
    assert totals(meter) == {"daily": 2_205_000, "daily_provider": 2_100_000, "daily_cache": 0, "month": 2_205_000}

    meter.resolver.run_once()
    assert charges(meter, "byok") == {"cost_nano": 2_226_000, "openrouter_nano": 106_000, "provider_nano": 2_120_000, "byok": 1, "cost_source": "generation"}
    assert totals(meter) == {"daily": 2_226_000, "daily_provider": 2_120_000, "daily_cache": 0, "month": 2_226_000}
    gen = meter.db.query_one("SELECT total_cost_nano, upstream_cost_nano, byok FROM generations")
    assert gen == {"total_cost_nano": 106_000, "upstream_cost_nano": 2_120_000, "byok": 1}
    [listed] = client.get("/api/v1/events", headers={"Authorization": f"Bearer {create_token(JWT_SECRET)}"}).get_json()["events"]
    assert (listed["cost_nano"], listed["openrouter_cost_nano"], listed["provider_cost_nano"], listed["byok"]) == (2_226_000, 106_000, 2_120_000, True)


def test_fee_setting_bills_only_openrouters_fee(data_dir, fake, now):
    app = costed_app(data_dir, fake, METER_BYOK_COST="fee")
    meter, client = app.config["METER"], app.test_client()
    fake.add_generation("gen-byok", 0.000106, byok_provider_cost=0.00212)
    post(client, key="byok", usage=BYOK_USAGE, generation_ids=["gen-byok"])
    assert charges(meter, "byok") == {"cost_nano": 105_000, "openrouter_nano": 105_000, "provider_nano": 2_100_000, "byok": 1, "cost_source": "inline"}
    meter.resolver.run_once()
    assert charges(meter, "byok") == {"cost_nano": 106_000, "openrouter_nano": 106_000, "provider_nano": 2_120_000, "byok": 1, "cost_source": "generation"}
    # the provider's charge is stored, but counts nowhere
    assert totals(meter) == {"daily": 106_000, "daily_provider": 0, "daily_cache": 0, "month": 106_000}
    meter.stop()


def test_changing_the_byok_setting_moves_every_figure(data_dir, fake, now):
    app = costed_app(data_dir, fake)
    post(app.test_client(), key="byok", usage=BYOK_USAGE)
    post(app.test_client(), key="plain", cost=0.5)
    assert totals(app.config["METER"]) == {"daily": 502_205_000, "daily_provider": 2_100_000, "daily_cache": 0, "month": 502_205_000}
    app.config["METER"].stop()

    app = costed_app(data_dir, fake, METER_BYOK_COST="fee")  # restarted with the other definition
    meter = app.config["METER"]
    assert charges(meter, "byok")["cost_nano"] == 105_000
    assert totals(meter) == {"daily": 500_105_000, "daily_provider": 0, "daily_cache": 0, "month": 500_105_000}
    meter.stop()

    app = costed_app(data_dir, fake)  # and back
    meter = app.config["METER"]
    assert totals(meter) == {"daily": 502_205_000, "daily_provider": 2_100_000, "daily_cache": 0, "month": 502_205_000}
    meter.stop()


def test_non_byok_upstream_cost_is_not_counted_twice(app, client, meter, fake, now):
    usage = {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.002, "is_byok": False,
             "cost_details": {"upstream_inference_cost": 0.002}}
    record = fake.add_generation("gen-plain", 0.0021)
    assert record["upstream_inference_cost"] == 0.0021 and record["is_byok"] is False  # filled, as OpenRouter does
    post(client, key="plain", usage=usage, generation_ids=["gen-plain"])
    assert charges(meter, "plain") == {"cost_nano": 2_000_000, "openrouter_nano": 2_000_000, "provider_nano": 0, "byok": 0, "cost_source": "inline"}
    meter.resolver.run_once()
    assert charges(meter, "plain") == {"cost_nano": 2_100_000, "openrouter_nano": 2_100_000, "provider_nano": 0, "byok": 0, "cost_source": "generation"}
    assert totals(meter)["month"] == 2_100_000


def test_byok_answers_through_the_fakes_chat_endpoint(app, client, meter, fake, now):
    fake.set_byok("openai/gpt-4o-mini", "0.05")
    answer = requests.post(f"{fake.url}/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there, how are you?"}]},
                           headers={"Authorization": f"Bearer {fake.api_key}"}, timeout=5).json()
    usage = answer["usage"]
    # 10 prompt tokens × $0.15/M + 1 completion token × $0.60/M = $0.0000021 at the provider; 5 % fee
    assert (usage["is_byok"], usage["cost_details"]["upstream_inference_cost"], usage["cost"]) == (True, 2.1e-06, pytest.approx(1.05e-07))
    post(client, key="chat", usage=usage, generation_ids=[answer["id"]])
    meter.resolver.run_once()
    assert charges(meter, "chat") == {"cost_nano": 2_205, "openrouter_nano": 105, "provider_nano": 2_100, "byok": 1, "cost_source": "generation"}


def test_byok_fee_without_the_providers_charge_estimates_it_from_the_price(app, client, meter, fake, now):
    meter.price_sync.sync()
    usage = {"prompt_tokens": 1000, "completion_tokens": 2000, "cost": 0.0001, "is_byok": True, "cost_details": {}}
    post(client, key="est", usage=usage)
    # the provider's charge: 1000 × $0.15/M + 2000 × $0.60/M = $0.00135; plus the $0.0001 fee
    assert charges(meter, "est") == {"cost_nano": 1_450_000, "openrouter_nano": 100_000, "provider_nano": 1_350_000, "byok": 1, "cost_source": "estimate"}


def test_byok_generation_without_the_providers_charge_is_not_known_yet(app, client, meter, fake, now):
    fake.add_generation("gen-half", 0.0001, is_byok=True, upstream_inference_cost=None)
    post(client, key="half", usage=BYOK_USAGE, generation_ids=["gen-half"])
    meter.resolver.run_once()
    gen = meter.db.query_one("SELECT state, attempts, last_error FROM generations")
    assert (gen["state"], gen["attempts"]) == ("pending", 1) and "upstream_inference_cost" in gen["last_error"]
    assert charges(meter, "half")["cost_source"] == "inline"  # never confirmed at the fee alone
    fake.add_generation("gen-half", 0.0001, byok_provider_cost=0.002)
    now.advance(1)
    meter.resolver.run_once()
    assert charges(meter, "half") == {"cost_nano": 2_100_000, "openrouter_nano": 100_000, "provider_nano": 2_000_000, "byok": 1, "cost_source": "generation"}


def test_stopped_answer_is_billed_and_shown_as_stopped(app, client, meter, fake, now):
    fake.add_generation("gen-stop", 0.0007, cancelled=True, finish_reason=None, tokens_completion=35)
    post(client, key="stop", cost=None, generation_ids=["gen-stop"])  # a stopped stream reports no usage
    meter.resolver.run_once()
    row = event(meter, "stop")
    assert (row["cost_nano"], row["cost_source"], row["cancelled"]) == (700_000, "generation", 1)
    assert totals(meter)["month"] == 700_000
    [listed] = client.get("/api/v1/events", headers={"Authorization": f"Bearer {create_token(JWT_SECRET)}"}).get_json()["events"]
    assert listed["stopped"] is True and listed["cost_nano"] == 700_000


def test_cache_discount_is_kept_per_answer_and_day(app, client, meter, fake, now):
    fake.add_generation("gen-cache-1", 0.0009, cache_discount=0.0003)
    fake.add_generation("gen-cache-2", 0.0011, cache_discount=-0.00005)  # cache writes can cost more
    post(client, key="cache", cost=0.002, generation_ids=["gen-cache-1", "gen-cache-2"])
    meter.resolver.run_once()
    row = event(meter, "cache")
    assert (row["cost_nano"], row["cache_discount_nano"]) == (2_000_000, 250_000)
    assert totals(meter)["daily_cache"] == 250_000


def test_reconciliation_is_unchanged_by_byok_provider_charges(data_dir, fake, now):
    app = costed_app(data_dir, fake)
    meter, client = app.config["METER"], app.test_client()
    fake.set_key_usage(total=10.0)
    meter.key_sampler.sample()
    now.advance(HOUR)
    big_byok = {"cost": 0.05, "is_byok": True, "cost_details": {"upstream_inference_cost": 1.0}}
    post(client, key="byok", user=ADA, usage=big_byok)
    post(client, key="plain", cost=0.25)
    now.advance(HOUR)
    fake.set_key_usage(total=10.30)  # OpenRouter billed the key its fee and the plain answer, nothing more
    meter.key_sampler.sample()
    response = client.get("/api/v1/reconciliation", query_string={"from": clock.ms_to_iso(1_800_000_000_000), "to": clock.ms_to_iso(1_800_000_000_000 + 2 * HOUR * 1000)},
                          headers={"Authorization": f"Bearer {create_token(JWT_SECRET)}"})
    body = response.get_json()
    assert (body["openrouter_nano"], body["ledger_nano"], body["unattributed_nano"], body["byok_provider_nano"]) == (300_000_000, 300_000_000, 0, 1_000_000_000)
    assert "Only OpenRouter's charges are compared" in body["precision"]
    assert totals(meter)["month"] == 1_300_000_000  # the team still pays the provider's charge
    meter.stop()


def test_odd_byok_fields_in_usage_never_cost_the_answer(app, client, meter, now):
    odd = [
        {"cost": 0.001, "is_byok": "yes", "cost_details": {"upstream_inference_cost": 5}},  # not a boolean: not BYOK
        {"cost": 0.001, "is_byok": True, "cost_details": {"upstream_inference_cost": "lots"}},
        {"cost": 0.001, "is_byok": True, "cost_details": "nothing"},
    ]
    for i, usage in enumerate(odd):
        response = client.post("/api/v1/outlet", json=outlet_body(key=f"odd{i}", usage=usage), headers={"Authorization": f"Bearer {API_KEY}"})
        assert response.status_code == 202, usage
    rows = meter.db.query("SELECT openrouter_nano, provider_nano, byok FROM events ORDER BY id")
    assert rows == [{"openrouter_nano": 1_000_000, "provider_nano": 0, "byok": 0}] + [{"openrouter_nano": 1_000_000, "provider_nano": 0, "byok": 1}] * 2
    # a provider charge that is a number no answer can cost is refused, not stored
    absurd = {"cost": 0.001, "is_byok": True, "cost_details": {"upstream_inference_cost": -1}}
    response = client.post("/api/v1/outlet", json=outlet_body(key="odd-negative", usage=absurd), headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "usage.cost_details.upstream_inference_cost must not be negative"
    assert len(meter.db.query("SELECT id FROM events")) == 3


def test_statement_and_dashboard_show_the_byok_split_stops_and_cache_savings(app, client, meter, fake, now):
    from pypdf import PdfReader
    import io
    import re

    from test_dashboard import log_in

    fake.add_generation("gen-byok", 0.106, byok_provider_cost=2.12, cache_discount=0.04)
    fake.add_generation("gen-stop", 0.3, cancelled=True)
    post(client, key="byok", user=ADA, usage=BYOK_USAGE, generation_ids=["gen-byok"])
    post(client, key="plain", user=ADA, cost=1.0)
    post(client, key="stop", user=ADA, cost=None, generation_ids=["gen-stop"])
    meter.resolver.run_once()
    ledger = meter.db.query_one("SELECT sum(cost_nano) AS cost, sum(provider_nano) AS provider FROM events")
    assert ledger == {"cost": 3_526_000_000, "provider": 2_120_000_000}  # 2.226 + 1.0 + 0.3

    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
    month = clock.utcnow().strftime("%Y-%m")
    pdf = client.get(f"/api/v1/reports/user/{ADA['id']}.pdf", query_string={"month": month}, headers=admin)
    assert pdf.status_code == 200
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages).split())
    # $3.53 in all: $2.12 billed by the provider, the other $1.41 by OpenRouter
    assert "Usage $3.53 = provider $2.12 (answers through the team's own provider keys, billed by the providers) + OpenRouter $1.41" in text
    assert "Saved by prompt caching: $0.04." in text

    log_in(client, meter)
    models = client.get("/models", query_string={"period": "month"}).get_data(as_text=True)
    assert re.search(r"\$3\.53<br><span class=\"muted\">provider \$2\.12 \+ OpenRouter \$1\.41</span>", models)
    assert "Saved by prompt caching" in models and "$0.04" in models
    events = client.get("/events").get_data(as_text=True)
    assert events.count("stopped by the user") == 1 and events.count("own provider key") == 1


@pytest.mark.parametrize("usage, field", [({"cost": 1e300}, "usage.cost"), ({"cost": "1e30"}, "usage.cost"),
                                          ({"cost": 0.001, "is_byok": True, "cost_details": {"upstream_inference_cost": 1e300}},
                                           "usage.cost_details.upstream_inference_cost")])
def test_absurd_inline_amounts_are_refused_never_a_500(app, client, meter, now, usage, field):
    response = client.post("/api/v1/outlet", json=outlet_body(key="absurd", usage=usage), headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 400 and response.get_json()["error"].startswith(f"{field} must be at most $1,000 for one answer")
    assert meter.db.query("SELECT id FROM events") == []


def test_a_command_beside_the_server_keeps_the_servers_byok_setting(data_dir, fake, now):
    from conftest import make_settings
    from owui_meter.ingest import parse_outlet
    from owui_meter.meter import Meter

    server = costed_app(data_dir, fake)  # the server: provider + fee
    server.config["METER"].stop()
    command = Meter.open(make_settings(data_dir, METER_BYOK_COST="fee"))  # a maintenance command
    assert command.settings.METER_BYOK_COST == "provider+fee"
    command.ledger.record(parse_outlet(outlet_body(key="cli", usage=BYOK_USAGE)))
    assert charges(command, "cli")["cost_nano"] == 2_205_000
    command.stop()


def test_byok_setting_and_time_zone_changed_together_keep_daily_totals_whole(data_dir, fake, now):
    app = costed_app(data_dir, fake)
    post(app.test_client(), key="byok", usage=BYOK_USAGE)
    app.config["METER"].stop()
    app = costed_app(data_dir, fake, METER_BYOK_COST="fee", METER_TIMEZONE="Pacific/Auckland")
    meter = app.config["METER"]
    assert totals(meter) == {"daily": 105_000, "daily_provider": 0, "daily_cache": 0, "month": 105_000}
    meter.stop()
