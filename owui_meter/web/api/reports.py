"""Statements and the summary as PDF downloads for the admin API, and all of them as one ZIP.

Periods: ``?month=2026-11`` or ``?from=2026-11-01&to=2026-11-30`` (local days, both included);
the current month by default.
"""

from __future__ import annotations

import io
import zipfile

from flask import Blueprint, Response, abort

from ... import reports
from ...ledger import is_unattributed
from ..access import require_admin
from ..params import meter, period_from_request

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")


def pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/user/<user_id>.pdf")
@require_admin
def user_pdf(user_id):
    _, period = period_from_request("whole_month")
    m = meter()
    person = m.db.query_one("SELECT id, email FROM users WHERE id = ?", (user_id,))
    if person is None or is_unattributed(user_id):  # unattributed spend has no statement
        abort(404)
    return pdf(reports.user_statement(m, user_id, period), reports.user_file_name(person, period))


@bp.get("/group/<group_id>.pdf")
@require_admin
def group_pdf(group_id):
    _, period = period_from_request("whole_month")
    m = meter()
    group = m.db.query_one("SELECT id, name FROM groups WHERE id = ?", (group_id,))
    if group is None:
        abort(404)
    return pdf(reports.group_statement(m, group_id, period), reports.group_file_name(group, period))


@bp.get("/summary.pdf")
@require_admin
def summary_pdf():
    _, period = period_from_request("whole_month")
    return pdf(reports.summary(meter(), period), reports.file_name("summary", None, period))


@bp.get("/statements.zip")
@require_admin
def statements_zip():
    _, period = period_from_request("whole_month")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in reports.documents(meter(), period):
            archive.writestr(name, data)
    return Response(buffer.getvalue(), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="statements-{period.slug}.zip"'})
