"""Confirming costs with OpenRouter: the resolver against a fake OpenRouter on loopback."""

import time

import pytest
from conftest import API_KEY, JWT_SECRET, make_settings, outlet_body
from owui_meter.auth import create_token
from owui_meter import clock, create_app


def costed_app(data_dir, fake, **extra):
    options = dict(OPENROUTER_API_KEY=fake.api_key, OPENROUTER_BASE_URL=fake.url, METER_LOOKUP_RATE=1000, OPENROUTER_TIMEOUT_SECONDS=2)
    options.update(extra)
    app = create_app(make_settings(data_dir, **options))
    return app


@pytest.fixture
def app(data_dir, fake, now):
    app = costed_app(data_dir, fake)
    yield app
    app.config["METER"].stop()


def post(client, **body):
    response = client.post("/api/v1/outlet", json=outlet_body(**body), headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 202
    return response.get_json()


def event(meter, key):
    return meter.db.query_one("SELECT * FROM events WHERE key = ?", (key,))


def test_lookup_that_404s_then_succeeds_confirms_the_cost(app, client, meter, fake, now):
    fake.add_generation("gen-late", 0.0000123, not_found_times=3, native_tokens_prompt=11, provider_name="Azure")
    post(client, key="a", cost=0.00001, generation_ids=["gen-late"])
    delays = []
    for _ in range(3):
        meter.resolver.run_once()
        gen = meter.db.query_one("SELECT * FROM generations")
        assert gen["state"] == "pending"
        delays.append(gen["next_try"] - clock.now_ms())
        now.advance(delays[-1] / 1000)
    assert delays == [1000, 2000, 4000]  # grows from about a second
    meter.resolver.run_once()
    row = event(meter, "a")
    assert (row["cost_nano"], row["cost_source"], row["inline_cost_nano"], row["lookup_state"]) == (12_300, "generation", 10_000, "confirmed")
    gen = meter.db.query_one("SELECT * FROM generations")
    assert (gen["state"], gen["provider_name"], gen["native_tokens_prompt"], gen["attempts"]) == ("done", "Azure", 11, 4)
    daily = meter.db.query_one("SELECT cost_nano, confirmed_cost_nano FROM usage_daily")
    assert daily == {"cost_nano": 12_300, "confirmed_cost_nano": 12_300}
    assert fake.count("/generation") == 4


def test_retry_after_is_honoured(app, client, meter, fake, now):
    fake.add_generation("gen-1", 0.001)
    fake.fail_next(1, status=429, retry_after=30)
    post(client, key="r", generation_ids=["gen-1"])
    meter.resolver.run_once()
    gen = meter.db.query_one("SELECT * FROM generations")
    assert gen["state"] == "pending" and gen["next_try"] - clock.now_ms() == 30_000
    now.advance(29)
    assert meter.resolver.run_once() == 0  # not due yet
    now.advance(1)
    meter.resolver.run_once()
    assert event(meter, "r")["cost_source"] == "generation"


def test_server_errors_back_off_and_recover(app, client, meter, fake, now):
    fake.add_generation("gen-5xx", 0.002)
    fake.fail_next(2, status=502)
    post(client, key="s", generation_ids=["gen-5xx"])
    for _ in range(2):
        meter.resolver.run_once()
        assert "502" in meter.resolver.health()["resolver"]["last_error"]
        now.advance(60)
    meter.resolver.run_once()
    assert event(meter, "s")["cost_nano"] == 2_000_000
    assert meter.resolver.health()["resolver"]["last_error"] is None


def test_outage_then_recovery_confirms_every_answer_exactly_once(app, client, meter, fake, now):
    for i in range(12):
        fake.add_generation(f"gen-{i}", 0.001 * (i + 1))
        post(client, key=f"o{i}", generation_ids=[f"gen-{i}"])
    fake.set_mode("down")
    meter.resolver.run_once()
    assert meter.db.query_one("SELECT count(*) AS n FROM events WHERE cost_source = 'generation'")["n"] == 0
    health = meter.resolver.health()["resolver"]
    assert health["pending"] == 12 and "unreachable" in health["last_error"]
    fake.set_mode("ok")
    for _ in range(5):
        now.advance(120)
        meter.resolver.run_once()
    rows = meter.db.query("SELECT key, cost_nano, cost_source FROM events ORDER BY id")
    assert [(r["cost_nano"], r["cost_source"]) for r in rows] == [(1_000_000 * (i + 1), "generation") for i in range(12)]
    assert meter.db.query_one("SELECT sum(cost_nano) AS s, sum(answers) AS a FROM usage_daily") == {"s": 78_000_000, "a": 12}
    assert fake.count("/generation") - sum(1 for r in fake.requests_seen if r[4] != 200) == 12  # each fetched once


def test_restart_with_lookups_pending_loses_nothing(data_dir, fake, now):
    first = costed_app(data_dir, fake)
    client = first.test_client()
    fake.add_generation("gen-r", 0.005, not_found_times=1)
    post(client, key="before-restart", cost=0.004, generation_ids=["gen-r"])
    first.config["METER"].resolver.run_once()  # 404: still pending
    first.config["METER"].stop()

    second = costed_app(data_dir, fake)
    meter = second.config["METER"]
    now.advance(5)
    meter.resolver.run_once()
    row = event(meter, "before-restart")
    assert (row["cost_nano"], row["cost_source"], row["inline_cost_nano"]) == (5_000_000, "generation", 4_000_000)
    meter.stop()


def test_several_generations_cost_their_sum(app, client, meter, fake, now):
    fake.add_generation("gen-tool-1", 0.0011)
    fake.add_generation("gen-tool-2", 0.0022, not_found_times=1)
    post(client, key="tools", cost=0.0011, generation_ids=["gen-tool-1", "gen-tool-2"])
    meter.resolver.run_once()
    assert event(meter, "tools")["cost_source"] == "inline"  # one still missing: no partial sum
    now.advance(2)
    meter.resolver.run_once()
    row = event(meter, "tools")
    assert (row["cost_nano"], row["cost_source"]) == (3_300_000, "generation")


def test_refused_key_pauses_the_resolver(data_dir, fake, now):
    app = costed_app(data_dir, fake, OPENROUTER_API_KEY="sk-or-revoked", METER_LOOKUP_PAUSE_MINUTES=10)
    meter = app.config["METER"]
    fake.add_generation("gen-p", 0.001)
    post(app.test_client(), key="p", generation_ids=["gen-p"])
    meter.resolver.run_once()
    health = meter.resolver.health()["resolver"]
    assert health["state"] == "paused" and "401" in health["paused_reason"]
    assert meter.db.query_one("SELECT attempts FROM generations")["attempts"] == 0  # no try burnt
    assert meter.resolver.run_once() == 0 and fake.count("/generation") == 1
    response = app.test_client().get("/healthcheck")
    assert response.status_code == 200 and response.get_json()["resolver"]["state"] == "paused"
    now.advance(601)
    meter.resolver.run_once()
    assert fake.count("/generation") == 2  # tries again after the pause
    meter.stop()


def test_giving_up_keeps_inline_cost_or_estimates(app, client, meter, fake, now):
    meter.price_sync.sync()
    post(client, key="inline", cost=0.004, generation_ids=["gen-never-1"])
    post(client, key="bare", cost=None, prompt=1000, completion=2000, generation_ids=["gen-never-2"])
    assert event(meter, "bare")["cost_source"] == "estimate"  # priced at once, confirmed later if ever
    for _ in range(30):
        meter.resolver.run_once()
        now.advance(3600)
    inline, bare = event(meter, "inline"), event(meter, "bare")
    assert (inline["cost_nano"], inline["cost_source"], inline["lookup_state"]) == (4_000_000, "inline", "gave_up")
    # 1000 × $0.15/M + 2000 × $0.60/M = $0.00135
    assert (bare["cost_nano"], bare["cost_source"], bare["lookup_state"]) == (1_350_000, "estimate", "gave_up")
    assert meter.resolver.health()["resolver"]["gave_up"] == 2
    token = create_token(JWT_SECRET)  # made now: a day has passed on the meter's clock
    events = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).get_json()["events"]
    assert {e["key"]: e["lookup_state"] for e in events} == {"inline": "gave_up", "bare": "gave_up"}


def test_unpriced_pending_answer_gives_up_as_unpriced(app, client, meter, fake, now):
    post(client, key="mystery", cost=None, model="local/llama", generation_ids=["gen-gone"])
    assert event(meter, "mystery")["cost_source"] == "pending"
    for _ in range(30):
        meter.resolver.run_once()
        now.advance(3600)
    row = event(meter, "mystery")
    assert (row["cost_nano"], row["cost_source"], row["lookup_state"]) == (0, "unpriced", "gave_up")


def test_without_openrouter_key_nothing_is_looked_up(data_dir, fake, now):
    app = create_app(make_settings(data_dir, OPENROUTER_BASE_URL=fake.url))
    meter = app.config["METER"]
    client = app.test_client()
    fake.add_generation("gen-x", 0.001)
    post(client, key="nokey", generation_ids=["gen-x"])
    assert meter.resolver.run_once() == 0 and fake.count("/generation") == 0
    health = client.get("/healthcheck")
    assert health.status_code == 200
    assert health.get_json()["resolver"]["state"] == "disabled"
    assert "OPENROUTER_API_KEY" in health.get_json()["resolver"]["note"]
    meter.stop()


def test_the_real_thread_confirms_in_the_background(data_dir, fake):
    app = costed_app(data_dir, fake, METER_WORKER_POLL_MS=20, METER_LOOKUP_FIRST_RETRY_MS=20)
    meter = app.config["METER"]
    fake.add_generation("gen-bg", 0.0042, not_found_times=2)
    post(app.test_client(), key="bg", cost=0.004, generation_ids=["gen-bg"])
    meter.resolver.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and event(meter, "bg")["cost_source"] != "generation":
            time.sleep(0.02)
        assert event(meter, "bg")["cost_nano"] == 4_200_000
        assert meter.resolver.health()["resolver"]["state"] == "running"
    finally:
        meter.stop()


def test_concurrency_and_rate_limits_hold(data_dir, fake):
    app = costed_app(data_dir, fake, METER_LOOKUP_CONCURRENCY=2, METER_LOOKUP_RATE=40)
    meter = app.config["METER"]
    client = app.test_client()
    for i in range(40):
        fake.add_generation(f"gen-rate-{i}", 0.001)
        post(client, key=f"rate{i}", generation_ids=[f"gen-rate-{i}"])
    while meter.resolver.run_once():
        pass
    starts = sorted(t for m, path, q, t, status in fake.requests_seen if path == "/generation")
    assert len(starts) == 40
    assert fake.max_concurrent <= 2
    # 40 lookups at 40/s: the first and last are at least ~39/40 s apart
    assert starts[-1] - starts[0] >= 39 / 40 - 0.05
    assert meter.db.query_one("SELECT count(*) AS n FROM events WHERE cost_source = 'generation'")["n"] == 40
    meter.stop()
