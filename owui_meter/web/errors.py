"""Error responses: JSON for the API, a short readable page elsewhere; never a traceback."""

from __future__ import annotations

import logging

import apsw
from flask import jsonify, make_response, render_template, request, url_for
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from ..errors import BadInput, Unauthorized

log = logging.getLogger("owui_meter")

DISK_FULL_RETRY_SECONDS = 30

DISK_FULL_RETRY_SECONDS = 30


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/v1/")) or request.accept_mimetypes.best == "application/json"


TITLES = {400: "That did not work", 401: "Please log in", 403: "Not allowed", 404: "Page not found",
          405: "Not allowed here", 413: "Too large", 429: "Too many requests", 500: "Something went wrong"}


def error_response(status: int, message: str):
    """JSON for the API; for a browser, the page inside the dashboard's layout (with the
    navigation when logged in), falling back to bare HTML if even that fails."""
    if wants_json():
        response = jsonify({"error": message, "status": status})
        response.status_code = status
        return response
    if request.path in ("/metrics", "/healthcheck"):  # probes read text, not pages
        return make_response((message + "\n", status, {"Content-Type": "text/plain; charset=utf-8"}))
    if status == 404 and message == "not found":
        message = "there is nothing at this address: a mistyped link, or a user or budget that was removed"
    try:
        back = request.referrer if request.referrer and request.referrer.startswith(request.host_url) else url_for("dashboard.overview")
        html = render_template("error.html", title=f"{TITLES.get(status, 'Error')} ({status})", message=message,
                               back=back, back_label="Back" if back != url_for("dashboard.overview") else "Go to the overview")
    except Exception:  # a broken template or session must not hide the error itself
        log.exception("the error page could not be drawn")
        html = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(message)}</p>"
    return make_response((html, status, {"Content-Type": "text/html; charset=utf-8"}))


def init_app(app) -> None:
    @app.errorhandler(BadInput)
    def bad_input(exc):
        return error_response(400, str(exc))

    @app.errorhandler(Unauthorized)
    def unauthorized(exc):
        response = error_response(401, str(exc))
        if wants_json():
            response.headers["WWW-Authenticate"] = 'Bearer realm="owui-meter"'
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc):
        messages = {
            400: "bad request",
            404: "not found",
            405: f"method {request.method} not allowed here",
            413: f"request body too large (limit {app.config.get('MAX_CONTENT_LENGTH')} bytes)",
        }
        return error_response(exc.code or 500, messages.get(exc.code, exc.description or exc.name))

    @app.errorhandler(apsw.FullError)
    def disk_full(exc):
        # nothing was stored; the database logs the full disk once a minute, so no line here
        response = error_response(503, "the meter's disk is full: nothing was stored, try again later")
        response.headers["Retry-After"] = str(DISK_FULL_RETRY_SECONDS)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; the meter's log has the details")
