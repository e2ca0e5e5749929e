"""Budget alerts survive restarts: the message is stored with the "sent" mark, and the worker of
``serve`` delivers it to a real webhook receiver on loopback, retrying until it answers."""

import datetime as dt
import json
import time

import pytest
from conftest import ADA, API_KEY, JWT_SECRET, make_settings, outlet_body

from fake_openrouter import LoopbackFake, Response
from owui_meter import clock, create_app
from owui_meter.auth import create_token

H = {"Authorization": f"Bearer {API_KEY}"}


class Webhook(LoopbackFake):
    """A Slack-compatible webhook: keeps what it was posted; ``fail_next`` answers an error status."""

    def __init__(self):
        super().__init__(api_key="")
        self.received: list[dict] = []
        self._failures: list[int] = []

    @property
    def url(self) -> str:
        return f"{self.root}/hook"

    def fail_next(self, n: int, status: int = 500) -> None:
        with self.lock:
            self._failures.extend([status] * n)

    def _route(self, method, path, query, headers, body) -> Response:
        with self.lock:
            if self._failures:
                return Response(self._failures.pop(0), "no")
            self.received.append(json.loads(body))
        return Response(200, "ok")


@pytest.fixture
def webhook():
    with Webhook() as server:
        yield server


class Clock:
    def __init__(self):
        self.t = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc).timestamp()

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def alerting_app(data_dir, webhook):
    app = create_app(make_settings(data_dir, METER_ALERT_WEBHOOK_URL=webhook.url))
    return app, app.config["METER"], app.test_client()


def cross_both_thresholds(client):
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
    made = client.post("/api/v1/budgets", json={"scope": "user", "scope_id": ADA["id"], "period": "month", "limit_usd": 10, "warn_percent": 50}, headers=admin)
    assert made.status_code == 201
    for i, usd in enumerate((6, 5)):  # 60 %, then 110 %: a warning, then a block
        assert client.post("/api/v1/outlet", json=outlet_body(key=f"s{i}", user=ADA, cost=usd, timestamp=clock.now()), headers=H).status_code == 202


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_alerts_decided_without_a_worker_are_sent_after_a_restart(data_dir, webhook):
    # a CLI command (create_app, no workers) records answers that cross the thresholds
    app, meter, client = alerting_app(data_dir, webhook)
    cross_both_thresholds(client)
    assert meter.db.query_one("SELECT count(*) AS n FROM alerts_sent")["n"] == 2
    meter.stop()
    assert webhook.received == []

    # the server starts later on the same data directory: its worker sends both, in order, once
    app, meter, client = alerting_app(data_dir, webhook)
    meter.budgets.alerts.start()
    try:
        assert wait_for(lambda: len(webhook.received) == 2)
        time.sleep(0.2)  # nothing more arrives
        texts = [r["text"] for r in webhook.received]
        assert texts == ["owui-meter: Ada Admin has used 60% of the month budget ($6.00 of $10.00).",
                         "owui-meter: Ada Admin is blocked of the month budget ($11.00 of $10.00)."]
        assert wait_for(lambda: meter.db.query_one("SELECT count(*) AS n FROM alert_outbox")["n"] == 0)
        assert meter.budgets.alerts.sent == 2
    finally:
        meter.budgets.alerts.stop()  # started by hand, so meter.stop() would leave it running
        meter.stop()


def test_a_running_worker_sends_at_once_after_the_commit(data_dir, webhook):
    app, meter, client = alerting_app(data_dir, webhook)
    meter.budgets.alerts.start()
    try:
        started = time.monotonic()
        cross_both_thresholds(client)
        assert wait_for(lambda: len(webhook.received) == 2)
        assert time.monotonic() - started < 5  # woken by the commit, not by its minute-long idle poll
    finally:
        meter.budgets.alerts.stop()  # started by hand, so meter.stop() would leave it running
        meter.stop()


def test_a_failing_webhook_is_retried_with_growing_delays(data_dir, webhook, monkeypatch):
    now = Clock()
    monkeypatch.setattr(clock, "time_fn", now)
    app, meter, client = alerting_app(data_dir, webhook)
    alerts = meter.budgets.alerts
    webhook.fail_next(2, status=503)
    cross_both_thresholds(client)

    assert alerts.step() == 5.0  # first try: 503, again in 5 s; the block waits behind the warning
    assert webhook.received == [] and webhook.count() == 1
    now.advance(4)
    assert alerts.step() == pytest.approx(1.0) and webhook.count() == 1  # not due: nothing posted
    now.advance(1)
    assert alerts.step() == 10.0  # second 503: the delay doubles
    row = meter.db.query_one("SELECT attempts, last_error FROM alert_outbox ORDER BY id LIMIT 1")
    assert row == {"attempts": 2, "last_error": "webhook answered 503"}
    now.advance(10)
    alerts.step()
    assert [r["text"].split(" of the")[0] for r in webhook.received] == ["owui-meter: Ada Admin has used 60%", "owui-meter: Ada Admin is blocked"]
    assert meter.db.query_one("SELECT count(*) AS n FROM alert_outbox")["n"] == 0
    meter.stop()


def test_a_restart_while_the_webhook_is_down_loses_nothing(data_dir, webhook, monkeypatch):
    now = Clock()
    monkeypatch.setattr(clock, "time_fn", now)
    webhook.set_mode("down")
    app, meter, client = alerting_app(data_dir, webhook)
    cross_both_thresholds(client)
    meter.budgets.alerts.step()  # connection refused: kept for later
    assert meter.db.query_one("SELECT attempts FROM alert_outbox ORDER BY id LIMIT 1")["attempts"] == 1
    meter.stop()

    webhook.set_mode("ok")
    app, meter, client = alerting_app(data_dir, webhook)
    now.advance(5)
    meter.budgets.alerts.step()
    assert len(webhook.received) == 2
    meter.stop()


def test_a_rejected_message_is_dropped_and_the_next_one_sent(data_dir, webhook, monkeypatch):
    monkeypatch.setattr(clock, "time_fn", Clock())
    app, meter, client = alerting_app(data_dir, webhook)
    webhook.fail_next(1, status=400)
    cross_both_thresholds(client)
    meter.budgets.alerts.step()
    assert [r["text"][:32] for r in webhook.received] == ["owui-meter: Ada Admin is blocked"]
    assert meter.db.query_one("SELECT count(*) AS n FROM alert_outbox")["n"] == 0
    meter.stop()


@pytest.mark.parametrize("mode", ["anonymise", "delete"])
def test_erasure_drops_alerts_not_sent_yet(data_dir, webhook, mode):
    from owui_meter.erasure import erase_user

    app, meter, client = alerting_app(data_dir, webhook)
    cross_both_thresholds(client)
    erase_user(meter, ADA["id"], mode, "tester")
    assert meter.db.query("SELECT * FROM alert_outbox") == []
    meter.budgets.alerts.step()
    assert webhook.received == []
    meter.stop()
