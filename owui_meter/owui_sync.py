"""Users, groups and memberships from Open WebUI's admin API (OPENWEBUI_URL, OPENWEBUI_API_KEY).

Synced every METER_OWUI_SYNC_MINUTES and on demand. Users appear in the meter before their first
answer. A failed sync changes nothing: the last known memberships stay, and the failure is shown.
"""

from __future__ import annotations

import json
import logging

import requests

from . import clock
from .db import get_meta, set_meta
from .workers import Job

log = logging.getLogger("owui_meter.sync")

PAGE_LIMIT = 1000  # pages of users; far more than any small team has


class SyncError(Exception):
    pass


class OpenWebUISync(Job):
    name = "openwebui-sync"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        s = meter.settings
        self.base = (s.OPENWEBUI_URL or "").rstrip("/")
        self.key = s.OPENWEBUI_API_KEY
        self.session = requests.Session()

    @property
    def configured(self) -> bool:
        return bool(self.base and self.key)

    def start(self) -> None:
        if self.configured:
            super().start()

    def step(self) -> float:
        try:
            self.sync()
        except SyncError:
            pass  # recorded in meta by sync(); shown on /healthcheck
        return self.meter.settings.METER_OWUI_SYNC_MINUTES * 60

    def _get(self, path: str, **params):
        try:
            response = self.session.get(self.base + path, params=params, headers={"Authorization": f"Bearer {self.key}"}, timeout=15)
        except requests.RequestException as exc:
            raise SyncError(f"Open WebUI unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise SyncError(f"Open WebUI answered {response.status_code} on {path}")
        try:
            return response.json()
        except ValueError:
            raise SyncError(f"Open WebUI sent something that is not JSON on {path}") from None

    def fetch(self) -> tuple[list[dict], list[dict]]:
        users, page = [], 1
        while page <= PAGE_LIMIT:
            data = self._get("/api/v1/users/", page=page)
            batch = data.get("users", []) if isinstance(data, dict) else data
            if not batch:
                break
            users += batch
            total = data.get("total") if isinstance(data, dict) else None
            if total is not None and len(users) >= total:
                break
            page += 1
        groups = self._get("/api/v1/groups/")
        if not isinstance(groups, list) or not all(isinstance(u, dict) and u.get("id") for u in users):
            raise SyncError("Open WebUI's answer did not have the expected shape")
        return users, groups

    def sync(self) -> dict:
        """Fetch everything first, then replace memberships in one transaction (all or nothing)."""
        now = clock.now_ms()
        try:
            users, groups = self.fetch()
        except SyncError as exc:
            log.warning("Open WebUI sync failed: %s", exc)
            with self.meter.db.write() as conn:
                set_meta(conn, "owui_sync.error", json.dumps({"at": now, "error": str(exc)}))
            raise
        with self.meter.db.write() as conn:
            for user in users:
                conn.execute(
                    """INSERT INTO users (id, email, name, role, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, role = excluded.role""",
                    (user["id"], user.get("email"), user.get("name"), user.get("role"), now, now),
                )
            conn.execute("DELETE FROM group_members")
            conn.execute("DELETE FROM groups WHERE id NOT IN (%s)" % ",".join("?" * len(groups)) if groups else "DELETE FROM groups", [g["id"] for g in groups])
            for group in groups:
                conn.execute(
                    """INSERT INTO groups (id, name, description, synced) VALUES (?, ?, ?, ?)
                       ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, synced = excluded.synced""",
                    (group["id"], group.get("name") or group["id"], group.get("description"), now),
                )
            known = {g["id"] for g in groups}
            for user in users:
                for group_id in user.get("group_ids") or []:
                    if group_id in known:
                        conn.execute("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)", (group_id, user["id"]))
            result = {"at": now, "users": len(users), "groups": len(groups)}
            set_meta(conn, "owui_sync.last", json.dumps(result))
            conn.execute("DELETE FROM meta WHERE key = 'owui_sync.error'")
        return result

    def health(self) -> dict:
        if not self.configured:
            return {"openwebui_sync": {"state": "not configured"}}
        last = get_meta(self.meter.db, "owui_sync.last")
        error = get_meta(self.meter.db, "owui_sync.error")
        return {"openwebui_sync": {"state": "failing" if error else "ok", "last": json.loads(last) if last else None,
                                   "error": json.loads(error) if error else None}}
