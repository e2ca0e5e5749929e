"""What every request goes through: one access-log line, and security headers on the response."""

from __future__ import annotations

import logging
import re
import time

from flask import g, request

access_log = logging.getLogger("owui_meter.access")
_TOKEN_IN_PATH = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a %0a in a URL must not start a forged log line

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

PAGE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # no-referrer would make browsers send "Origin: null" on our own forms
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def init_app(app) -> None:
    @app.before_request
    def start_timer():
        if access_log.isEnabledFor(logging.INFO):
            g.request_started = time.perf_counter()

    @app.after_request
    def finish(response):
        headers = response.headers
        if response.mimetype == "application/json":
            # JSON is never rendered as a page: nosniff is all it needs (and ingest stays lean)
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Cache-Control"] = "no-store"
        else:
            for name, value in PAGE_HEADERS:
                headers.setdefault(name, value)
            if response.mimetype == "text/html":
                headers["Cache-Control"] = "no-store"  # pages show spend, and /status the API key
        if access_log.isEnabledFor(logging.INFO):  # off at the default level: no line to make
            started = g.get("request_started")
            elapsed_ms = (time.perf_counter() - started) * 1000 if started else 0.0
            # the path only: query strings and bodies may carry tokens
            path = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", _TOKEN_IN_PATH.sub("[token]", request.path))
            access_log.info("%s %s %d %.1fms", request.method, path, response.status_code, elapsed_ms)
        return response
