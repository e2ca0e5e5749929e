"""Cost lookups that go wrong one at a time: a malformed reply, a cost not known yet, an erasure
mid-lookup, a rate limit. Each touches its own generation (or, for a 429, pauses every lookup),
never the round. Against the fake OpenRouter on loopback and a real SQLite file."""

import threading
import time

import pytest
from conftest import ADA, BOB
from test_costs import costed_app, event, post

from owui_meter import clock
from owui_meter.erasure import erase_user, pseudonym

HOUR = 3600


@pytest.fixture
def app(data_dir, fake, now):
    app = costed_app(data_dir, fake)
    yield app
    app.config["METER"].stop()


def generation(meter, gen_id):
    return meter.db.query_one("SELECT * FROM generations WHERE id = ?", (gen_id,))


def confirmed(meter) -> dict:
    rows = meter.db.query("SELECT key, cost_nano FROM events WHERE cost_source = 'generation' ORDER BY key")
    return {r["key"]: r["cost_nano"] for r in rows}


MALFORMED = {
    "cost is a word": {"data": {"id": "gen-bad", "total_cost": "lots", "model": "openai/gpt-4o-mini"}},
    "cost is an object": {"data": {"id": "gen-bad", "total_cost": {"usd": 1}}},
    "cost is a boolean": {"data": {"id": "gen-bad", "total_cost": True}},
    "cost is negative": {"data": {"id": "gen-bad", "total_cost": -0.5}},
    "cost is astronomical": {"data": {"id": "gen-bad", "total_cost": 1e300}},
    "no data": {"error": None, "id": "gen-bad"},
    "data is a string": {"data": "gen-bad"},
    "a JSON list": [{"id": "gen-bad"}],
    "not JSON": "<html><body>502 Bad Gateway</body></html>",
}


@pytest.mark.parametrize("reply", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_reply_fails_only_its_own_generation(app, client, meter, fake, now, reply):
    fake.add_raw_generation("gen-bad", reply)
    fake.add_generation("gen-ada", 0.0021)
    fake.add_generation("gen-bob", 0.0032)
    post(client, key="bad", user=ADA, cost=0.004, generation_ids=["gen-bad"])
    post(client, key="ada", user=ADA, cost=0.002, generation_ids=["gen-ada"])
    post(client, key="bob", user=BOB, cost=0.003, generation_ids=["gen-bob"])

    assert meter.resolver.run_once() == 3
    assert confirmed(meter) == {"ada": 2_100_000, "bob": 3_200_000}
    bad = generation(meter, "gen-bad")
    assert (bad["state"], bad["attempts"], bad["total_cost_nano"]) == ("pending", 1, None)  # one failed try
    assert "malformed" in bad["last_error"] or "not JSON" in bad["last_error"] or "data" in bad["last_error"]
    assert event(meter, "bad")["cost_source"] == "inline"

    # later answers are still confirmed while the bad one keeps failing
    fake.add_generation("gen-later", 0.0055)
    post(client, key="later", user=BOB, cost=0.005, generation_ids=["gen-later"])
    now.advance(bad["next_try"] / 1000 - clock.now())
    meter.resolver.run_once()
    assert confirmed(meter) == {"ada": 2_100_000, "bob": 3_200_000, "later": 5_500_000}
    assert generation(meter, "gen-bad")["attempts"] == 2

    # and it is given up like any other lookup: the inline cost stays, flagged
    for _ in range(30):
        now.advance(HOUR)
        meter.resolver.run_once()
    row = event(meter, "bad")
    assert (row["cost_nano"], row["cost_source"], row["lookup_state"]) == (4_000_000, "inline", "gave_up")
    assert generation(meter, "gen-bad")["state"] == "gave_up"
    assert meter.resolver.outcomes["malformed"] == generation(meter, "gen-bad")["attempts"]
    assert meter.resolver.health()["resolver"]["state"] != "paused"


def test_cost_not_known_yet_is_retried_never_confirmed_at_zero(app, client, meter, fake, now):
    fake.add_generation("gen-null", None)
    post(client, key="null", cost=0.004, generation_ids=["gen-null"])
    meter.resolver.run_once()
    row, gen = event(meter, "null"), generation(meter, "gen-null")
    assert (row["cost_nano"], row["cost_source"], row["lookup_state"]) == (4_000_000, "inline", "pending")
    assert (gen["state"], gen["attempts"], gen["total_cost_nano"]) == ("pending", 1, None)
    assert gen["next_try"] - clock.now_ms() == 1000  # retried like a 404, with backoff

    fake.add_generation("gen-null", 0.0047)  # OpenRouter now knows the cost
    now.advance(1)
    meter.resolver.run_once()
    row = event(meter, "null")
    assert (row["cost_nano"], row["cost_source"], row["lookup_state"]) == (4_700_000, "generation", "confirmed")


def test_cost_never_known_gives_up_keeping_the_estimate(app, client, meter, fake, now):
    meter.price_sync.sync()
    fake.add_generation("gen-null", None)
    post(client, key="bare", cost=None, prompt=1000, completion=2000, generation_ids=["gen-null"])
    for _ in range(30):
        meter.resolver.run_once()
        now.advance(HOUR)
    row = event(meter, "bare")
    # 1000 × $0.15/M + 2000 × $0.60/M, never a confirmed $0
    assert (row["cost_nano"], row["cost_source"], row["lookup_state"]) == (1_350_000, "estimate", "gave_up")
    assert meter.db.query_one("SELECT sum(confirmed_cost_nano) AS c FROM usage_daily")["c"] == 0


@pytest.mark.parametrize("mode", ["delete", "anonymise"])
def test_erasing_a_user_mid_lookup_keeps_other_users_confirmations(app, client, meter, fake, now, mode):
    fake.add_generation("gen-ada", 0.0021)
    fake.add_generation("gen-bob", 0.0032)
    post(client, key="ada", user=ADA, cost=0.002, generation_ids=["gen-ada"])
    post(client, key="bob", user=BOB, cost=0.003, generation_ids=["gen-bob"])
    fake.set_mode("timeout")  # both lookups hang until the erasure is done
    errors = []

    def round_():
        try:
            meter.resolver.run_once()
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    lookups = threading.Thread(target=round_)
    lookups.start()
    deadline = time.monotonic() + 5
    while fake.in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert fake.in_flight == 2
    assert erase_user(meter, ADA["id"], mode, "tester") == {"mode": mode, "answers": 1}
    fake.set_mode("ok")  # the hanging lookups are answered now
    lookups.join(10)

    assert errors == []
    bob = event(meter, "bob")
    assert (bob["cost_nano"], bob["cost_source"]) == (3_200_000, "generation")
    spend = meter.db.query("SELECT user_id, cost_nano FROM spend WHERE period = 'month' ORDER BY cost_nano")
    if mode == "delete":
        assert event(meter, "ada") is None and generation(meter, "gen-ada") is None
        assert spend == [{"user_id": BOB["id"], "cost_nano": 3_200_000}]
    else:  # the pseudonym's answer is confirmed too, and its counters follow
        ada = event(meter, "ada")
        assert (ada["user_id"], ada["cost_nano"], ada["cost_source"]) == (pseudonym(meter, ADA["id"]), 2_100_000, "generation")
        assert spend == [{"user_id": pseudonym(meter, ADA["id"]), "cost_nano": 2_100_000}, {"user_id": BOB["id"], "cost_nano": 3_200_000}]


def test_429_pauses_every_lookup_until_its_retry_after(app, client, meter, fake, now):
    for i in range(60):
        fake.add_generation(f"gen-{i}", 0.001)
        post(client, key=f"a{i:02d}", user=ADA if i % 2 else BOB, generation_ids=[f"gen-{i}"])
    fake.fail_next(1, status=429, retry_after=3)
    meter.resolver.run_once()
    round_size = meter.settings.METER_LOOKUP_CONCURRENCY * 4
    first_round = fake.count("/generation")
    # the round stopped: only lookups started before the 429's reply was read went out (the
    # other workers' lookups in flight; exactly one with one worker, see the next test)
    assert 1 <= first_round < round_size
    health = meter.resolver.health()["resolver"]
    assert health["state"] == "paused" and "429" in health["paused_reason"]

    for _ in range(5):  # 0.5 s … 2.5 s after the 429: nothing goes out
        now.advance(0.5)
        assert meter.resolver.run_once() == 0
        assert meter.resolver.step() > 0
    assert fake.count("/generation") == first_round

    now.advance(0.5)  # Retry-After is over
    while meter.resolver.run_once():
        pass
    assert len(confirmed(meter)) == 60
    statuses = [seen.status for seen in fake.requests_seen if seen.path == "/generation"]
    assert statuses.count(429) == 1 and statuses.count(200) == 60


def test_429_without_retry_after_pauses_for_the_first_backoff(data_dir, fake, now):
    app = costed_app(data_dir, fake, METER_LOOKUP_CONCURRENCY=1)
    meter, client = app.config["METER"], app.test_client()
    for i in range(40):
        fake.add_generation(f"gen-{i}", 0.001)
        post(client, key=f"a{i:02d}", generation_ids=[f"gen-{i}"])
    fake.fail_next(1, status=429)
    meter.resolver.run_once()
    sent = fake.count("/generation")
    assert sent == 1  # one worker: nothing after the 429 in its round
    now.advance(0.9)
    assert meter.resolver.run_once() == 0 and fake.count("/generation") == sent
    now.advance(0.1)  # METER_LOOKUP_FIRST_RETRY_MS = 1000
    while meter.resolver.run_once():
        pass
    assert len(confirmed(meter)) == 40
    meter.stop()
