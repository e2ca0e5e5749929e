"""The reports page: the period's statements and summary to download."""

from __future__ import annotations

from flask import render_template

from ... import reports as reports_module
from ..access import require_login
from ..params import meter, period_from_request
from . import bp, url_each


@bp.get("/reports")
@require_login
def reports():
    _, period = period_from_request("last_month")
    query = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    rows = reports_module.summary_rows(meter(), period)
    statement_url = url_each("reports.user_pdf", "user_id", **query)
    for row in rows:
        row["statement_url"] = statement_url(row["user_id"])
    return render_template("dashboard/reports.html", period=period, rows=rows,
                           groups=meter().db.query("SELECT id, name FROM groups ORDER BY name"), query=query)
