"""Forgetting a user (GDPR), through this one path.

- ``anonymise``: the user's identity goes (email, name, Open WebUI id, chat ids), their figures
  stay under a pseudonym, so totals and statements still add up.
- ``delete``: every row about the user goes, answers included.

Both are written to the audit log with a hash of the id only.
"""

from __future__ import annotations

import hashlib

from . import audit

MODES = ("anonymise", "delete")
# tables that name a user by id, and the column
USER_COLUMNS = (("events", "user_id"), ("usage_daily", "user_id"), ("spend", "user_id"), ("balances", "user_id"),
                ("balance_entries", "user_id"), ("alerts_sent", "user_id"))


def pseudonym(user_id: str) -> str:
    return "erased-" + hashlib.sha256(user_id.encode()).hexdigest()[:16]


def erase_user(meter, user_id: str, mode: str, actor: str) -> dict | None:
    """Erase one user; None when the meter does not know them."""
    if mode not in MODES:
        raise ValueError(mode)
    with meter.db.write() as conn:
        if not conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchall():
            return None
        counted = conn.execute("SELECT count(*) AS n FROM events WHERE user_id = ?", (user_id,)).fetchall()[0]["n"]
        conn.execute("DELETE FROM group_members WHERE user_id = ?", (user_id,))
        if mode == "delete":
            conn.execute("DELETE FROM generations WHERE event_id IN (SELECT id FROM events WHERE user_id = ?)", (user_id,))
            for table, column in USER_COLUMNS:
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))
            conn.execute("DELETE FROM budgets WHERE scope = 'user' AND scope_id = ?", (user_id,))
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        else:
            alias = pseudonym(user_id)
            conn.execute(
                "INSERT OR IGNORE INTO users (id, email, name, role, first_seen, last_seen) SELECT ?, NULL, 'Erased user', NULL, first_seen, last_seen FROM users WHERE id = ?",
                (alias, user_id),
            )
            conn.execute("UPDATE events SET user_id = ?, chat_id = NULL, message_id = NULL, session_id = NULL WHERE user_id = ?", (alias, user_id))
            for table, column in USER_COLUMNS[1:]:
                # merge into any rows the pseudonym already has (a second erasure of the same id)
                conn.execute(f"UPDATE OR IGNORE {table} SET {column} = ? WHERE {column} = ?", (alias, user_id))
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))
            conn.execute("UPDATE budgets SET scope_id = ? WHERE scope = 'user' AND scope_id = ?", (alias, user_id))
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        audit.record(conn, actor, f"user.{mode}", {"user": hashlib.sha256(user_id.encode()).hexdigest()[:16], "answers": counted})
    return {"mode": mode, "answers": counted}
