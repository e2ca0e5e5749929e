"""Admin endpoints for running the meter: a fresh backup to download, erasing a user, syncing
users and groups from Open WebUI now."""

from __future__ import annotations

import os
import shutil
import tempfile

from flask import Blueprint, abort, g, jsonify, request, send_file

from ...backup import backup
from ...erasure import erase_user
from ...errors import BadInput
from ...owui_sync import SyncError
from ..access import require_admin
from ..params import meter

bp = Blueprint("operations", __name__, url_prefix="/api/v1")


@bp.get("/backup")
@require_admin
def download_backup():
    """A consistent copy of the database, made now.

    The copy's file is removed as soon as it is open, before a byte is sent: the download reads
    the open file, and nothing is left in the temp directory whatever the client does (a cleanup
    hook on the response never ran under waitress).
    """
    m = meter()
    folder = tempfile.mkdtemp(prefix="owui-meter-backup-")
    try:
        path = backup(m.db.path, os.path.join(folder, "meter-backup.db"))
        stream = open(path, "rb")
        os.remove(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return send_file(stream, as_attachment=True, download_name="owui-meter-backup.db", mimetype="application/vnd.sqlite3")


@bp.delete("/users/<user_id>")
@require_admin
def erase(user_id):
    """``?mode=anonymise`` (totals kept, identity gone) or ``?mode=delete`` (rows gone)."""
    mode = request.args.get("mode")
    result = erase_user(meter(), user_id, mode, g.admin_name)
    if result is None:
        abort(404)
    return jsonify(result)


@bp.post("/sync/openwebui")
@require_admin
def sync_openwebui():
    """Sync users, groups and memberships from Open WebUI now."""
    sync = meter().owui_sync
    if not sync.configured:
        raise BadInput("set OPENWEBUI_URL and OPENWEBUI_API_KEY first")
    try:
        return jsonify(sync.sync())
    except SyncError as exc:
        return jsonify({"error": str(exc), "status": 502}), 502
