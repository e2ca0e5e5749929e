"""The reports page: the period's statements and summary to download."""

from __future__ import annotations

from urllib.parse import quote

from flask import render_template, url_for

from ... import reports as reports_module
from ..access import require_login
from ..params import meter, period_from_request
from . import bp

# what url_for does to a path segment (werkzeug's BaseConverter.to_url)
PATH_SAFE = "!$&'()*+,/:;=@"


@bp.get("/reports")
@require_login
def reports():
    _, period = period_from_request("last_month")
    query = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    rows = reports_module.summary_rows(meter(), period)
    # one url_for for the page, not one per user: on a team of hundreds it was most of the page's time
    before, _, after = url_for("reports.user_pdf", user_id="~", **query).rpartition("~")  # the last: a prefix may hold one
    for row in rows:
        row["statement_url"] = before + quote(row["user_id"], safe=PATH_SAFE) + after
    return render_template("dashboard/reports.html", period=period, rows=rows,
                           groups=meter().db.query("SELECT id, name FROM groups ORDER BY name"), query=query)
