"""The status page: health of the workers, the plugin's settings to copy, the audit log, backups."""

from __future__ import annotations

import os

from flask import render_template, request

from ... import audit
from ..access import require_login
from ..params import meter
from . import bp


@bp.get("/status")
@require_login
def status():
    m = meter()
    health = {}
    for report in m.health:
        health.update(report())
    size = sum(os.path.getsize(m.db.path + s) for s in ("", "-wal") if os.path.exists(m.db.path + s))
    return render_template("dashboard/status.html", health=health, api_key=m.settings.API_KEY, meter_url=request.host_url.rstrip("/"),
                           db_size=size, audit=audit.latest(m.db, 50), openrouter=bool(m.settings.OPENROUTER_API_KEY))
