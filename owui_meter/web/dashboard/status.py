"""The status page: health of the workers, the plugin's settings to copy, the audit log, backups."""

from __future__ import annotations

import json
import os

from flask import render_template, request

from ... import audit
from ...budgets import PERIOD_WORDS
from ...money import format_usd
from ..access import require_login
from ..params import meter
from . import bp


@bp.get("/status")
@require_login
def status():
    m = meter()
    health = {}
    for report in m.health:
        health.update(report())
    size = sum(os.path.getsize(m.db.path + s) for s in ("", "-wal") if os.path.exists(m.db.path + s))
    awaiting = m.db.query_one("SELECT count(*) AS n FROM events WHERE lookup_state = 'pending'")["n"]
    last_error = health["resolver"]["last_error"]
    not_yet = bool(last_error and last_error.startswith("OpenRouter 404"))  # OpenRouter writes a generation a little after it
    entries = audit.latest(m.db, 50)
    return render_template("dashboard/status.html", health=health, api_key=m.settings.API_KEY, public_url=m.settings.METER_PUBLIC_URL,
                           here_url=request.host_url.rstrip("/"), port=m.settings.METER_PORT, host=m.settings.METER_HOST,
                           db_size=size, audit=[(a, audit_sentence(a, audit_names(m.db, entries))) for a in entries],
                           openrouter=bool(m.settings.OPENROUTER_API_KEY), awaiting=awaiting, last_error=None if not_yet else last_error)


def audit_names(db, entries) -> dict:
    """Names of the users and groups the entries mention (the log keeps ids only)."""
    ids = {str(a["detail"].get(k)) for a in entries for k in ("user_id", "scope_id") if a["detail"].get(k)}
    if not ids:
        return {}
    rows = db.query("""SELECT id, coalesce(name, email, id) AS name FROM users WHERE id IN (SELECT value FROM json_each(:ids))
                       UNION ALL SELECT id, name FROM groups WHERE id IN (SELECT value FROM json_each(:ids))""", {"ids": json.dumps(sorted(ids))})
    return {r["id"]: r["name"] for r in rows}


def _per_million(pico) -> str:
    return "–" if pico is None else format_usd(pico * 1000, 2 if pico * 1000 % 10**7 == 0 else 4)


def audit_sentence(entry: dict, names: dict) -> str:
    """An audit entry as a sentence: "admin set a $12.00 monthly budget for José Martínez"."""
    who, action, d = entry["actor"], entry["action"], entry["detail"]
    name = names.get(d.get("scope_id") or d.get("user_id"), d.get("scope_id") or d.get("user_id"))
    if action in ("budget.create", "budget.update"):
        target = {"user": name, "group": f"the group {name}", "all": "everyone"}.get(d.get("scope"), name)
        if d.get("scope") != "user" and d.get("group_mode") == "shared":
            target += " (shared)"
        elif d.get("scope") != "user":
            target = ("each member of " + target[4:]) if d.get("scope") == "group" else "each user"
        kind = PERIOD_WORDS["en"].get(d.get("period"), "")
        verb = "set" if action == "budget.create" else "changed budget #" + str(d.get("budget_id")) + " to"
        warn = " (warning only)" if d.get("action") == "warn" else ""
        return f"{who} {verb} a {format_usd(d.get('limit_nano'), 2)} {kind} budget{warn} for {target}"
    if action == "budget.delete":
        return f"{who} deleted budget #{d.get('budget_id')}"
    if action == "balance.topup":
        amount = d.get("amount_nano") or 0
        return (f"{who} added {format_usd(amount, 2)} to {name}'s balance" if amount >= 0
                else f"{who} took {format_usd(-amount, 2)} from {name}'s balance")
    if action == "admin.login":
        return f"{who} logged in" + (f" from {d['address']}" if d.get("address") else "")
    if action == "admin.login_failed":
        return f"A login as “{d.get('username', '')}” failed" + (f" from {d['address']}" if d.get("address") else "")
    if action == "price.set":
        return (f"{who} set the price of {d.get('model')} to {_per_million(d.get('prompt_pico'))} in / "
                f"{_per_million(d.get('completion_pico'))} out per million tokens")
    if action == "price.delete":
        return f"{who} removed the price set for {d.get('model')}"
    if action in ("user.anonymise", "user.delete"):
        done = "anonymised" if action == "user.anonymise" else "deleted"
        return f"{who} {done} a user ({d.get('answers', 0):,} answers)"
    if action == "token.create":
        return f"{who} made an API token “{d.get('name')}”"
    if action == "token.revoke":
        return f"{who} revoked an API token"
    if action == "links.revoke":
        return f"{who} revoked {name}'s usage links"
    if action.startswith("admin."):
        return f"{who} ran admin {action[6:]} for “{d.get('username')}”"
    return f"{who}: {action} {json.dumps(d, sort_keys=True)}"
