"""Admin endpoints for running the meter: a fresh backup to download, erasing a user."""

from __future__ import annotations

import os
import tempfile

from flask import Blueprint, abort, after_this_request, current_app, g, jsonify, request, send_file

from .auth import require_admin
from .backup import backup
from .erasure import MODES, erase_user
from .ingest import BadInput

bp = Blueprint("operations_api", __name__, url_prefix="/api/v1")


@bp.get("/backup")
@require_admin
def download_backup():
    """A consistent copy of the database, made now."""
    meter = current_app.config["METER"]
    folder = tempfile.mkdtemp(prefix="owui-meter-backup-")
    path = backup(meter.db.path, os.path.join(folder, "meter-backup.db"))

    @after_this_request
    def _clean(response):
        response.call_on_close(lambda: (os.remove(path), os.rmdir(folder)))
        return response

    return send_file(path, as_attachment=True, download_name="owui-meter-backup.db", mimetype="application/vnd.sqlite3")


@bp.delete("/users/<user_id>")
@require_admin
def erase(user_id):
    """``?mode=anonymise`` (totals kept, identity gone) or ``?mode=delete`` (rows gone)."""
    mode = request.args.get("mode")
    if mode not in MODES:
        raise BadInput("mode must be 'anonymise' or 'delete'")
    result = erase_user(current_app.config["METER"], user_id, mode, g.admin_name)
    if result is None:
        abort(404)
    return jsonify(result)
