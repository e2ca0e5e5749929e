"""owui-meter: what each Open WebUI user really costs on OpenRouter."""

from __future__ import annotations

import hashlib
import hmac

__version__ = "0.1.0"


def create_app(settings=None):
    """The application factory. ``settings`` defaults to the environment's.

    It opens (and migrates) the database and fills in generated secrets, but starts no threads:
    ``owui-meter serve`` does that.
    """
    from flask import Flask

    from . import api, errors, first_run, health, middleware
    from . import settings as settings_module
    from .meter import Meter

    if settings is None:
        settings = settings_module.load()
    settings, generated = first_run.complete_secrets(settings)
    meter = Meter(settings)
    meter.generated = generated
    meter.generated_password = first_run.ensure_admin(meter.db, settings)

    app = Flask(__name__)
    app.config["METER"] = meter
    app.config["MAX_CONTENT_LENGTH"] = settings.METER_MAX_BODY_BYTES
    # the session key is derived from JWT_SECRET, so one secret rotates both
    app.config["SECRET_KEY"] = hmac.new(settings.JWT_SECRET.encode(), b"flask-session", hashlib.sha256).hexdigest()
    app.json.sort_keys = False

    # costs: confirmed through OpenRouter, estimated from prices, reconciled with the key's usage
    from . import costs_api
    from .costs import Resolver
    from .prices import PriceSync, make_estimator
    from .reconcile import KeySampler

    meter.ledger.estimator = make_estimator()
    meter.resolver = Resolver(meter)
    meter.price_sync = PriceSync(meter)
    meter.workers += [meter.resolver, meter.price_sync]
    meter.health.append(meter.resolver.health)
    if settings.OPENROUTER_API_KEY:
        meter.key_sampler = KeySampler(meter)
        meter.workers.append(meter.key_sampler)
    app.register_blueprint(costs_api.bp)

    # budgets and balances: spend counters, the inlet decision, the notice, Open WebUI's groups
    from . import budgets_api, templating
    from .alerts import Alerts
    from .budgets import Budgets
    from .notices import budget_notice
    from .owui_sync import OpenWebUISync

    meter.budgets = Budgets(meter)
    meter.ledger.cost_listeners.append(meter.budgets.on_cost)
    meter.inlet_policy = meter.budgets.inlet_policy

    def outlet_notice(row, lang):
        query = meter.db.query
        states = meter.budgets.states(query, row["user_id"])
        return budget_notice(row, lang, states, meter.budgets.balance(query, row["user_id"]), budgets_api.self_link(row["user_id"]))

    meter.outlet_notice = outlet_notice
    if settings.METER_ALERT_WEBHOOK_URL:
        meter.budgets.alerts = Alerts(meter)
        meter.workers.append(meter.budgets.alerts)
    meter.owui_sync = OpenWebUISync(meter)
    meter.workers.append(meter.owui_sync)
    meter.health.append(meter.owui_sync.health)
    app.register_blueprint(budgets_api.bp)
    templating.init_app(app, settings.METER_TIMEZONE)

    # operations: backups, retention, metrics, erasure
    from . import metrics, operations_api
    from .backup import DailyBackups
    from .retention import Retention

    meter.workers.append(Retention(meter))
    if settings.METER_BACKUP_KEEP:
        meter.workers.append(DailyBackups(meter))
    app.register_blueprint(operations_api.bp)
    metrics.init_app(app, meter)

    # the dashboard: login sessions, CSRF, pages
    from . import dashboard, login

    login.init_app(app, meter)
    app.register_blueprint(dashboard.bp)

    # statements and reports
    from . import reports_api

    app.register_blueprint(reports_api.bp)

    errors.init_app(app)
    middleware.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    return app
