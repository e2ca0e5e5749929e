"""The audit log: who changed what and when. Details never hold personal data."""

from __future__ import annotations

import json

from . import clock


def record(conn, actor: str, action: str, detail: dict | None = None) -> None:
    """Add an entry inside the caller's write transaction, so it commits with the change."""
    conn.execute(
        "INSERT INTO audit_log (ts, actor, action, detail) VALUES (?, ?, ?, ?)",
        (clock.now_ms(), actor, action, json.dumps(detail or {}, sort_keys=True, default=str)),
    )


def latest(db, limit: int = 100) -> list[dict]:
    rows = db.query("SELECT id, ts, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows
