"""GET /metrics in Prometheus text format (prometheus-client), read from the database at scrape time.

Per-user series are bounded: the TOP_USERS users with the highest cost get their own label (their
Open WebUI id, not their email: monitoring systems keep data long), everyone else is summed under
user="other", so a large team cannot blow up the series count.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..auth import key_matches
from ..errors import Unauthorized
from .access import access

TOP_USERS = 20
NANO = 1e9

bp = Blueprint("metrics", __name__)


class MeterCollector:
    def __init__(self, meter):
        self.meter = meter

    def collect(self):
        db = self.meter.db
        answers = CounterMetricFamily("owui_meter_answers", "Answers recorded", labels=["model"])
        cost = CounterMetricFamily("owui_meter_cost_usd", "Cost of recorded answers in USD", labels=["model"])
        for row in db.query("SELECT model, sum(answers) AS answers, sum(cost_nano) AS cost FROM usage_day_model GROUP BY model"):
            answers.add_metric([row["model"]], row["answers"])
            cost.add_metric([row["model"]], row["cost"] / NANO)
        yield answers
        yield cost
        user_cost = CounterMetricFamily("owui_meter_user_cost_usd", f"Cost per user in USD (top {TOP_USERS}, the rest as 'other')", labels=["user"])
        user_answers = CounterMetricFamily("owui_meter_user_answers", f"Answers per user (top {TOP_USERS}, the rest as 'other')", labels=["user"])
        rows = db.query(
"SELECT user_id AS user, sum(answers) AS answers, sum(cost_nano) AS cost FROM usage_day_user GROUP BY user_id ORDER BY cost DESC"
        )
        for row in rows[:TOP_USERS]:
            user_cost.add_metric([row["user"]], row["cost"] / NANO)
            user_answers.add_metric([row["user"]], row["answers"])
        if len(rows) > TOP_USERS:
            user_cost.add_metric(["other"], sum(r["cost"] for r in rows[TOP_USERS:]) / NANO)
            user_answers.add_metric(["other"], sum(r["answers"] for r in rows[TOP_USERS:]))
        yield user_cost
        yield user_answers
        pending = GaugeMetricFamily("owui_meter_lookups_pending", "Generation lookups waiting for OpenRouter")
        oldest = GaugeMetricFamily("owui_meter_lookups_oldest_pending_seconds", "Age of the oldest pending lookup")
        by_state = GaugeMetricFamily("owui_meter_lookups", "Generation lookups by state", labels=["state"])
        for row in db.query("SELECT state, count(*) AS n FROM generations GROUP BY state"):
            by_state.add_metric([row["state"]], row["n"])
        resolver = self.meter.resolver.health()["resolver"]
        pending.add_metric([], resolver["pending"])
        oldest.add_metric([], resolver["oldest_pending_seconds"] or 0)
        yield pending
        yield oldest
        yield by_state
        outcomes = CounterMetricFamily("owui_meter_lookup_results", "Generation lookups by outcome since start", labels=["outcome"])
        for outcome, count in sorted(self.meter.resolver.outcomes.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        size = GaugeMetricFamily("owui_meter_database_bytes", "Size of the database files (with WAL)")
        size.add_metric([], sum(os.path.getsize(self.meter.db.path + s) for s in ("", "-wal") if os.path.exists(self.meter.db.path + s)))
        yield size


def init_app(app, meter) -> None:
    registry = CollectorRegistry()
    registry.register(MeterCollector(meter))
    latency = Histogram("owui_meter_request_seconds", "Request latency", ["method", "route"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
    app.config["METRICS_REGISTRY"] = registry
    series = {}  # (method, route) -> its histogram: labels() checks and locks on every call

    @app.before_request
    def _start():
        request.environ["owui_meter.started"] = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = request.environ.get("owui_meter.started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"  # bounded: rules, not paths
            key = (request.method, route)
            histogram = series.get(key)
            if histogram is None:
                histogram = series[key] = latency.labels(*key)
            histogram.observe(time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


@bp.get("/metrics")
@access("metrics")
def metrics():
    settings = current_app.config["METER"].settings
    token = settings.METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        if not (header.lower().startswith("bearer ") and key_matches(header[7:].strip(), token)):
            raise Unauthorized("missing or wrong metrics token")
    elif not settings.METRICS_PUBLIC:  # per-user spend is not for anyone who can reach the port
        raise Unauthorized("set METRICS_TOKEN (or METRICS_PUBLIC=true) to scrape /metrics")
    return Response(generate_latest(current_app.config["METRICS_REGISTRY"]), mimetype="text/plain; version=0.0.4")
