"""Short links to a chat user's own page: ``/me/<random id>``, stored with the user and an expiry.

The line under each answer carries one. A user's newest link is reused for a day, so most
answers write nothing; a link stays valid for :data:`LINK_DAYS`. An admin can revoke all of a
user's links (the JWT links of older versions cannot be revoked: they expire within a week).
"""

from __future__ import annotations

import secrets

from . import audit, clock
from .ledger import is_unattributed

LINK_DAYS = 7
REUSE_MS = 24 * 3600 * 1000  # hand out the same link for a day


def link_for(meter, user_id: str) -> str | None:
    """The user's current link, made when there is none fresh; None without METER_PUBLIC_URL."""
    base = meter.settings.METER_PUBLIC_URL
    if not base or is_unattributed(user_id):
        return None
    now = clock.now_ms()
    row = meter.db.query_one(
        "SELECT id FROM me_links WHERE user_id = ? AND revoked IS NULL AND created > ? AND expires > ? ORDER BY created DESC LIMIT 1",
        (user_id, now - REUSE_MS, now),
    )
    if row is not None:
        return f"{base}/me/{row['id']}"
    link_id = secrets.token_urlsafe(12)
    with meter.db.write() as conn:
        conn.execute("DELETE FROM me_links WHERE user_id = ? AND expires <= ?", (user_id, now))
        conn.execute("INSERT INTO me_links (id, user_id, created, expires) VALUES (?, ?, ?, ?)",
                     (link_id, user_id, now, now + LINK_DAYS * 86400 * 1000))
    return f"{base}/me/{link_id}"


def user_of(db, link_id: str) -> str | None:
    """The user a link opens, or None when it is unknown, expired or revoked."""
    row = db.query_one("SELECT user_id FROM me_links WHERE id = ? AND revoked IS NULL AND expires > ?", (link_id, clock.now_ms()))
    return row["user_id"] if row else None


def revoke(meter, user_id: str, actor: str) -> int:
    """Revoke every link of the user (audited); how many were live."""
    now = clock.now_ms()
    with meter.db.write() as conn:
        count = len(conn.execute("UPDATE me_links SET revoked = ? WHERE user_id = ? AND revoked IS NULL AND expires > ? RETURNING id",
                                 (now, user_id, now)).fetchall())
        audit.record(conn, actor, "links.revoke", {"user_id": user_id, "links": count})
    return count
