"""Statements and the summary as downloads: admin API, dashboard Reports page, all as one ZIP."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import login_required

from . import clock, reports
from .auth import require_admin
from .ingest import BadInput

bp = Blueprint("reports", __name__)


def meter():
    return current_app.config["METER"]


def period_from_args() -> reports.Period:
    """``?month=2026-11`` or ``?from=2026-11-01&to=2026-11-30`` (local days, both included);
    the current month by default."""
    tz = meter().settings.METER_TIMEZONE
    args = request.args
    try:
        if args.get("from") or args.get("to"):
            try:
                return reports.Period(dt.date.fromisoformat(args.get("from", "")), dt.date.fromisoformat(args.get("to", "")), tz)
            except ValueError:
                raise BadInput("from and to must be dates like 2026-11-01") from None
        month = args.get("month") or meter().budgets.local_day(clock.now_ms()).strftime("%Y-%m")
        return reports.Period.month(month, tz)
    except reports.ReportError as exc:
        raise BadInput(str(exc)) from None


def pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-")[:60] or "user"


@bp.get("/api/v1/reports/user/<user_id>.pdf")
@require_admin
def user_pdf(user_id):
    period = period_from_args()
    try:
        data = reports.user_statement(meter(), user_id, period)
    except LookupError:
        abort(404)
    return pdf(data, f"statement-{slug(user_id)}-{period.start:%Y%m%d}.pdf")


@bp.get("/api/v1/reports/group/<group_id>.pdf")
@require_admin
def group_pdf(group_id):
    period = period_from_args()
    try:
        data = reports.group_statement(meter(), group_id, period)
    except LookupError:
        abort(404)
    return pdf(data, f"group-{slug(group_id)}-{period.start:%Y%m%d}.pdf")


@bp.get("/api/v1/reports/summary.pdf")
@require_admin
def summary_pdf():
    period = period_from_args()
    return pdf(reports.summary(meter(), period), f"summary-{period.start:%Y%m%d}.pdf")


def write_all(period: reports.Period):
    """(file name, PDF bytes) for the summary and every statement with usage in the period."""
    m = meter()
    yield f"summary-{period.start:%Y%m%d}.pdf", reports.summary(m, period)
    for row in reports.summary_rows(m, period):
        yield f"statement-{slug(row['email'] or row['user_id'])}-{period.start:%Y%m%d}.pdf", reports.user_statement(m, row["user_id"], period)


@bp.get("/api/v1/reports/statements.zip")
@require_admin
def statements_zip():
    period = period_from_args()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in write_all(period):
            archive.writestr(name, data)
    return Response(buffer.getvalue(), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="statements-{period.start:%Y%m%d}.zip"'})


@bp.get("/reports")
@login_required
def reports_page():
    period = period_from_args()
    return render_template("reports.html", period=period, rows=reports.summary_rows(meter(), period),
                           groups=meter().db.query("SELECT id, name FROM groups ORDER BY name"),
                           query={"from": period.start.isoformat(), "to": period.end.isoformat()})
