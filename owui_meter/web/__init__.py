"""Everything HTTP: the Flask app over a :class:`~owui_meter.meter.Meter`.

``api/`` is the JSON API by resource, ``dashboard/`` the admin pages by page, ``me.py`` each
user's own page; the rest is plumbing every request goes through (access, login, errors,
middleware, templating, metrics).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask

from . import errors, health, login, me, metrics, middleware, otlp, passthrough, templating
from .api import broadcast, budgets, costs, operations, plugin, reports, usage
from .dashboard import bp as dashboard_bp

BLUEPRINTS = (health.bp, otlp.bp, plugin.bp, usage.bp, broadcast.bp, budgets.bp, costs.bp, operations.bp, reports.bp, me.bp, login.bp, dashboard_bp)


def create_app(meter) -> Flask:
    """The web app for ``meter``: configuration, request hooks and blueprints, nothing else."""
    settings = meter.settings
    app = Flask(__name__)
    app.config["METER"] = meter
    app.config["MAX_CONTENT_LENGTH"] = settings.METER_MAX_BODY_BYTES
    # the session key is derived from JWT_SECRET, so one secret rotates both
    app.config["SECRET_KEY"] = hmac.new(settings.JWT_SECRET.encode(), b"flask-session", hashlib.sha256).hexdigest()
    app.json.sort_keys = False
    templating.init_app(app, settings.METER_TIMEZONE)
    metrics.init_app(app, meter)
    login.init_app(app, meter)
    errors.init_app(app)
    middleware.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    if settings.METER_PASSTHROUGH:
        passthrough.init_app(app, meter)
    return app
