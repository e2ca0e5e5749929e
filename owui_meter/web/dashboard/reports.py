"""The reports page: the period's statements and summary to download."""

from __future__ import annotations

from flask import render_template

from ... import reports as reports_module
from ..access import require_login
from ..params import meter, period_from_request
from . import bp


@bp.get("/reports")
@require_login
def reports():
    _, period = period_from_request("last_month")
    return render_template("dashboard/reports.html", period=period, rows=reports_module.summary_rows(meter(), period),
                           groups=meter().db.query("SELECT id, name FROM groups ORDER BY name"),
                           query={"from": period.start.isoformat(), "to": period.end.isoformat()})
