"""Who may call which route: the plugin's API key, admin tokens, the dashboard session.

Every route declares one policy (``view.access_policy``), and a test walks the app's URL map to
check each one against every kind of credential, so a route without a policy cannot slip in:

- ``plugin``: the plugin's API key (``require_plugin_key``); nothing else.
- ``admin``: the admin JSON API, an admin token or a logged-in session (``require_admin``).
- ``session``: dashboard pages, a logged-in session (``require_login``).
- ``self``: a user's own page, the signed token in its path.
- ``metrics``: METRICS_TOKEN (or nothing with METRICS_PUBLIC=true).
- ``otlp``: METER_OTLP_TOKEN, OpenRouter Broadcast's traces (``require_otlp_token``); nothing else.
- ``public``: anyone (login page, health check).
- ``passthrough``: ``/openrouter/v1/*`` (METER_PASSTHROUGH=true), which lends no credential of its
  own: it forwards the caller's Authorization to OpenRouter. With METER_FORWARD_JWT_SECRET, only a
  valid ``X-OpenWebUI-User-Jwt`` gets anything but a GET forwarded (``web/passthrough.py``).
"""

from __future__ import annotations

import functools

from flask import current_app, g, request
from flask_login import login_required
from werkzeug.exceptions import NotFound

from ..auth import decode_token, key_matches, token_revoked
from ..errors import Unauthorized


def access(policy: str):
    """Declare the policy of a route that checks its credentials itself (or needs none)."""

    def mark(view):
        view.access_policy = policy
        return view

    return mark


def require_login(view):
    """Dashboard pages: a logged-in session, else a redirect to the login page."""
    return access("session")(login_required(view))


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def require_plugin_key(view):
    """The plugin's endpoints: ``Authorization: Bearer API_KEY``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not key_matches(_bearer(), current_app.config["METER"].settings.API_KEY):
            raise Unauthorized("missing or wrong API key")
        return view(*args, **kwargs)

    wrapper.access_policy = "plugin"
    return wrapper


def require_otlp_token(view):
    """``POST /v1/traces``: ``Authorization: Bearer METER_OTLP_TOKEN``; without the setting the
    endpoint is off (404)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = current_app.config["METER"].settings.METER_OTLP_TOKEN
        if not token:
            raise NotFound()
        if not key_matches(_bearer(), token):
            raise Unauthorized("missing or wrong METER_OTLP_TOKEN")
        return view(*args, **kwargs)

    wrapper.access_policy = "otlp"
    return wrapper


def _session_admin():
    """The logged-in dashboard admin, when flask-login is set up and someone is logged in."""
    if "login_manager" not in current_app.extensions and not hasattr(current_app, "login_manager"):
        return None
    from flask_login import current_user

    return current_user if current_user.is_authenticated else None


def require_admin(view):
    """Admin JSON API: a JWT bearer token or a logged-in session."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = _bearer()
        if token is not None:
            meter = current_app.config["METER"]
            claims = decode_token(token, meter.settings.JWT_SECRET)
            if token_revoked(meter.db, claims):
                raise Unauthorized("this token was revoked")
            g.admin_name = claims["sub"]
        else:
            admin = _session_admin()
            if admin is None:
                raise Unauthorized("log in or send an admin token")
            g.admin_name = admin.username
        return view(*args, **kwargs)

    wrapper.access_policy = "admin"
    return wrapper
