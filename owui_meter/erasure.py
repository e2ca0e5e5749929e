"""Forgetting a user (GDPR), through this one path.

- ``anonymise``: the user's identity goes (email, name, Open WebUI id, chat and message ids,
  free-text top-up notes), their figures stay under a pseudonym, so totals and statements still
  add up.
- ``delete``: every row about the user goes, answers included.

The pseudonym is a keyed hash (HMAC-SHA256) of the Open WebUI id with a secret kept in the data
directory (``secrets.json``), not in the database: someone holding the database and Open WebUI's
user list cannot tell who a pseudonym was, while the same person erased twice still gets the same
pseudonym. In both modes the audit log's earlier entries about the user (budgets, top-ups) name
the pseudonym instead of the id, and the erasure itself is audited under the pseudonym only.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from . import audit
from .budgets import follow_allowances
from .errors import BadInput
from .first_run import pseudonym_key
from .ledger import is_unattributed

MODES = ("anonymise", "delete")
# tables that name a user by id (alert_outbox: messages not sent yet name the person: dropped)
USER_TABLES = ("events", "usage_daily", "spend", "balances", "balance_entries", "alerts_sent", "group_members", "alert_outbox",
               "passthrough_generations", "me_links")

# Moving a user's rows to the pseudonym: rows keyed by user adds up with any the pseudonym
# already holds (the same person anonymised twice), so no total is lost.
MERGE_INTO_PSEUDONYM = (
    """INSERT INTO usage_daily (day, user_id, model, source, answers, prompt_tokens, completion_tokens,
           reasoning_tokens, cached_tokens, cost_nano, confirmed_cost_nano, provider_cost_nano, cache_discount_nano)
       SELECT day, :alias, model, source, answers, prompt_tokens, completion_tokens, reasoning_tokens,
           cached_tokens, cost_nano, confirmed_cost_nano, provider_cost_nano, cache_discount_nano
       FROM usage_daily WHERE user_id = :user
       ON CONFLICT (day, user_id, model, source) DO UPDATE SET
           answers = answers + excluded.answers, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
           completion_tokens = completion_tokens + excluded.completion_tokens,
           reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
           cached_tokens = cached_tokens + excluded.cached_tokens, cost_nano = cost_nano + excluded.cost_nano,
           confirmed_cost_nano = confirmed_cost_nano + excluded.confirmed_cost_nano,
           provider_cost_nano = provider_cost_nano + excluded.provider_cost_nano,
           cache_discount_nano = cache_discount_nano + excluded.cache_discount_nano""",
    """INSERT INTO spend (user_id, period, start, cost_nano)
       SELECT :alias, period, start, cost_nano FROM spend WHERE user_id = :user
       ON CONFLICT (user_id, period, start) DO UPDATE SET cost_nano = cost_nano + excluded.cost_nano""",
    """INSERT INTO balances (user_id, since, after_event, spent_nano)
       SELECT :alias, since, after_event, spent_nano FROM balances WHERE user_id = :user
       ON CONFLICT (user_id) DO UPDATE SET since = min(since, excluded.since), after_event = min(after_event, excluded.after_event),
           spent_nano = spent_nano + excluded.spent_nano""",
    "INSERT OR IGNORE INTO alerts_sent SELECT budget_id, :alias, start, kind, ts FROM alerts_sent WHERE user_id = :user",
    "INSERT OR IGNORE INTO group_members (group_id, user_id) SELECT group_id, :alias FROM group_members WHERE user_id = :user",
    "UPDATE balance_entries SET user_id = :alias, note = '' WHERE user_id = :user",  # notes are free text about the person
    "UPDATE events SET user_id = :alias, chat_id = NULL, message_id = NULL, session_id = NULL WHERE user_id = :user",
    "UPDATE budgets SET scope_id = :alias WHERE scope = 'user' AND scope_id = :user",
)


def pseudonym(meter, user_id: str) -> str:
    """The id an anonymised user's figures are kept under: keyed, so not reversible from the id."""
    key = pseudonym_key(meter.settings.METER_DATA_DIR)
    return "erased-" + hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:16]


def _replace_id(value, user_id: str, alias: str):
    """``value`` (parsed JSON) with every string equal to ``user_id`` replaced by ``alias``."""
    if isinstance(value, dict):
        return {k: _replace_id(v, user_id, alias) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_id(v, user_id, alias) for v in value]
    return alias if value == user_id else value


def _scrub_audit(conn, user_id: str, alias: str) -> None:
    """Earlier audit entries (budget changes, top-ups) keep what was done, under the pseudonym."""
    needle = json.dumps(user_id)  # how the id appears in the stored JSON
    for row in conn.execute("SELECT id, detail FROM audit_log WHERE instr(detail, ?) > 0", (needle,)).fetchall():
        detail = _replace_id(json.loads(row["detail"]), user_id, alias)
        conn.execute("UPDATE audit_log SET detail = ? WHERE id = ?", (json.dumps(detail, sort_keys=True), row["id"]))


def erase_user(meter, user_id: str, mode: str, actor: str) -> dict | None:
    """Erase one user; None when the meter does not know them (or for unattributed spend)."""
    if mode not in MODES:
        raise BadInput("mode must be 'anonymise' or 'delete'")
    if is_unattributed(user_id):  # not a person: nothing to forget
        return None
    alias = pseudonym(meter, user_id)
    with meter.db.write() as conn:
        if not conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchall():
            return None
        counted = conn.execute("SELECT count(*) AS n FROM events WHERE user_id = ?", (user_id,)).fetchall()[0]["n"]
        if mode == "delete":
            conn.execute("DELETE FROM generations WHERE event_id IN (SELECT id FROM events WHERE user_id = ?)", (user_id,))
            conn.execute("DELETE FROM budgets WHERE scope = 'user' AND scope_id = ?", (user_id,))
            follow_allowances(conn)  # a one-off allowance that went with them takes its counters along
        else:
            conn.execute(
                "INSERT OR IGNORE INTO users (id, email, name, role, first_seen, last_seen) SELECT ?, NULL, 'Erased user', NULL, first_seen, last_seen FROM users WHERE id = ?",
                (alias, user_id),
            )
            for sql in MERGE_INTO_PSEUDONYM:
                conn.execute(sql, {"alias": alias, "user": user_id})
        for table in USER_TABLES:  # what is left under the real id goes (delete: all of it)
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        _scrub_audit(conn, user_id, alias)
        audit.record(conn, actor, f"user.{mode}", {"user": alias, "answers": counted})
    meter.db.checkpoint()  # the old rows live on in the WAL until it is copied back and emptied
    return {"mode": mode, "answers": counted}
