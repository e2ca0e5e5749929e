"""The events page (every answer, newest first, in keyset pages) and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from flask import Response, render_template, request, stream_with_context

from ... import clock
from ...errors import BadInput
from ...ledger import encode_cursor
from ..access import require_login
from ..params import meter, parse_cursor, parse_filters, parse_int
from . import bp


@bp.get("/events")
@require_login
def events():
    filters = parse_filters(request.args)
    limit = parse_int(request.args, "limit", 50, 1, 500)
    cursor = parse_cursor(request.args, "that page link is not valid")
    rows, following = meter().ledger.events(filters, limit, cursor)
    kept = {k: v for k, v in request.args.items() if k not in ("cursor",) and v}
    return render_template("dashboard/events.html", rows=rows, next_cursor=encode_cursor(following), args=kept)


CSV_COLUMNS = ("time_utc", "user_id", "user_email", "user_name", "model", "source", "prompt_tokens", "completion_tokens",
               "reasoning_tokens", "cached_tokens", "cost_usd", "cost_source", "lookup_state", "chat_id", "message_id")


_FORMULA = re.compile(r"(^|;)(\s*)(?=[=+\-@\t\r])")


def csv_safe(value) -> str:
    """Spreadsheets run cells that start with = + - @ (or tab/CR) as formulas: quote them. German
    and French spreadsheets split on ";" as well, so a formula after a ";" is quoted too."""
    text = "" if value is None else str(value)
    return _FORMULA.sub(lambda m: f"{m.group(1)}{m.group(2)}'", text)


@bp.get("/events.csv")
@require_login
def events_csv():
    """Every event of the current filter, streamed row by row (constant memory). It starts with a
    UTF-8 byte-order mark, without which Excel on Windows garbles accented names; ``?bom=0`` leaves
    it out (for tools that read it as part of the first column's name)."""
    bom = request.args.get("bom", "1")
    if bom not in ("0", "1"):
        raise BadInput("bom must be 0 or 1")
    where, params = parse_filters(request.args).sql()
    sql = f"""SELECT e.*, u.email AS user_email, u.name AS user_name FROM events e JOIN users u ON u.id = e.user_id
              {"WHERE " + " AND ".join(where) if where else ""} ORDER BY e.ts DESC, e.id DESC"""
    db = meter().db

    def generate():
        buffer = io.StringIO()
        if bom == "1":
            buffer.write("\ufeff")
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in db.iterate(sql, params):
            writer.writerow([csv_safe(v) for v in (
                clock.ms_to_iso(row["ts"]), row["user_id"], row["user_email"], row["user_name"], row["model"], row["source"],
                row["prompt_tokens"], row["completion_tokens"], row["reasoning_tokens"], row["cached_tokens"],
                f"{Decimal(row['cost_nano']) / 10**9:f}", row["cost_source"], row["lookup_state"], row["chat_id"], row["message_id"])])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=owui-meter-events.csv"})
