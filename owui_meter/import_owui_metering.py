"""Import an owui-metering database: its users and activities become users and answers here.

Activities keep their ids as idempotency keys, so importing twice changes nothing. Their cost
(a REAL in USD) becomes nano-USD with source ``inline``.
"""

from __future__ import annotations

import apsw

from .errors import BadInput
from .ingest import parse_metering_record
from .money import usd_to_nano


def import_database(meter, path: str) -> dict:
    try:
        source = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        users = {r[0]: r for r in source.execute("SELECT id, name, email, role FROM users")}
        activities = source.execute(
            "SELECT id, timestamp, user_id, model, prompt_token, completion_token, reasoning_token, cost, cached_tokens, chat_id, source FROM activities ORDER BY timestamp"
        ).fetchall()
    except apsw.Error as exc:
        raise BadInput(f"{path} is not an owui-metering database: {exc}") from None
    counts = {"users": len(users), "activities": len(activities), "imported": 0, "already_there": 0, "skipped": 0}
    for row in activities:
        act_id, ts, user_id, model, prompt, completion, reasoning, cost, cached, chat_id, source = row
        user = users.get(user_id, (user_id, None, None, None))
        if ts is not None and ts > 1e11:  # milliseconds
            ts = ts / 1000
        try:
            event = parse_metering_record({
                "user": {"id": user_id, "name": user[1], "email": user[2], "role": user[3]},
                "activity": {"id": act_id, "timestamp": ts, "model": model or "unknown", "prompt_token": prompt,
                             "completion_token": completion, "reasoning_token": reasoning, "cached_tokens": cached,
                             "cost": repr(float(cost)) if cost is not None else None},
            })
        except BadInput:
            counts["skipped"] += 1
            continue
        event.ts = int(ts * 1000) if ts else event.ts  # imported history keeps its own time
        event.chat_id = chat_id or None
        event.source = "api" if source == "api" else "ui"
        if cost is not None:
            event.inline_cost_nano = usd_to_nano(float(cost))
        recorded = meter.ledger.record(event)
        counts["already_there" if recorded.duplicate else "imported"] += 1
    with meter.db.write() as conn:  # users without activities too
        for user_id, name, email, role in users.values():
            conn.execute(
                "INSERT INTO users (id, email, name, role, first_seen, last_seen) VALUES (?, ?, ?, ?, 0, 0) ON CONFLICT (id) DO NOTHING",
                (user_id, email, name, role),
            )
    return counts
