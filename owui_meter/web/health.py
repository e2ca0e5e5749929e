"""GET /healthcheck for probes: a real read, a write-lock check, disk space, and what the workers
report. 503 when the database cannot be read or written, or the disk is full."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from .. import __version__
from .access import access

bp = Blueprint("health", __name__)
log = logging.getLogger("owui_meter")


@bp.get("/healthcheck")
@access("public")
def healthcheck():
    meter = current_app.config["METER"]
    body = {"status": "ok", "version": __version__, "db": "ok"}
    try:
        meter.db.query_one("SELECT count(*) AS n FROM events WHERE id = (SELECT max(id) FROM events)")
        meter.db.can_write()
        space = meter.db.space_problem()
    except Exception as exc:  # any database failure makes the meter unhealthy, with the reason
        log.warning("healthcheck: database not usable: %s", exc)
        return jsonify({"status": "error", "version": __version__, "db": f"error: {type(exc).__name__}: {exc}"}), 503
    if space:  # the lock test above needs no space: a full disk shows only here
        return jsonify({"status": "error", "version": __version__, "db": "ok", "disk": space}), 503
    body["disk"] = "ok"
    for report in meter.health:
        body.update(report())
    return jsonify(body)
