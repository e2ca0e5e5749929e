"""A fake Open WebUI admin API: a real HTTP server on a loopback port, for tests and benchmarks.

``FakeOpenWebUI().url`` is ``http://127.0.0.1:PORT`` serving, as Open WebUI 0.12.4 does
(shapes from ``fixtures/owui-0.12.4/admin.users.json`` and ``admin.groups.json``):

- ``GET /api/v1/users/?page=N``: ``{"users": [... with "group_ids"], "total": N}``, 30 users a
  page, page 1 when ``page`` is missing or below 1, an empty list past the end, ``query=``
  filters on name and email;
- ``GET /api/v1/users/all``: every user, ``{"users": [...], "total": N}``, without ``group_ids``;
- ``GET /api/v1/groups/``: a JSON list of groups; ``member_count`` is counted from the users'
  ``group_ids`` (the users are the one source of membership).

A path without its trailing slash is redirected (307) like FastAPI does. Every endpoint needs
``Authorization: Bearer <api_key>`` (401 ``{"detail": ...}`` otherwise). ``users`` and ``groups``
are plain lists a test may replace or edit in place; the fake serves them live.
"""

from __future__ import annotations

import copy
import urllib.parse

from fake_openrouter import LoopbackFake, Response

PAGE_SIZE = 30  # Open WebUI's PAGE_ITEM_COUNT
ENGINEERING = "1de82ddf-ddfd-46d4-a29b-a711f5171bc7"
ADA = "91742e30-b09f-44e6-83e0-f91d730df38c"
BOB = "22d1d051-00a9-4e78-a612-8ae9d4005987"

_USER_FIELDS = ("id", "email", "username", "role", "name", "profile_image_url", "profile_banner_image_url", "bio",
                "gender", "date_of_birth", "timezone", "presence_state", "status_emoji", "status_message",
                "status_expires_at", "info", "settings", "oauth", "scim", "last_active_at", "updated_at", "created_at",
                "group_ids")


def make_user(user_id: str, email: str, name: str, role: str = "user", group_ids=(), created_at: int = 1795502264, **fields) -> dict:
    """A user shaped like one of ``GET /api/v1/users/``; ``fields`` override any field."""
    user = dict.fromkeys(_USER_FIELDS)
    user.update(id=user_id, email=email, name=name, role=role, profile_image_url="/user.png",
                last_active_at=created_at, updated_at=created_at, created_at=created_at, group_ids=list(group_ids))
    user.update(fields)
    return user


def make_group(group_id: str, name: str, *, user_id: str = ADA, description: str = "", created_at: int = 1795502264, **fields) -> dict:
    """A group shaped like one of ``GET /api/v1/groups/``; ``user_id`` is its creator."""
    group = {"parent_group_id": None, "id": group_id, "user_id": user_id, "name": name, "description": description,
             "data": {"config": {"share": "members"}}, "meta": None, "permissions": None,
             "created_at": created_at, "updated_at": created_at, "member_count": 0}
    group.update(fields)
    return group


# Newest first, as Open WebUI lists them.
DEFAULT_USERS = [
    make_user(BOB, "bob@example.com", "Bob User", "user", [ENGINEERING], created_at=1795502264),
    make_user(ADA, "ada@example.com", "Ada Admin", "admin", [], created_at=1795502251),
]
DEFAULT_GROUPS = [make_group(ENGINEERING, "Engineering", user_id=ADA, description="Engineering (harness)")]


class FakeOpenWebUI(LoopbackFake):
    MODES = ("ok", "500", "timeout", "down")

    def __init__(self, api_key: str = "owui-admin-key"):
        super().__init__(api_key)
        self.users: list[dict] = copy.deepcopy(DEFAULT_USERS)
        self.groups: list[dict] = copy.deepcopy(DEFAULT_GROUPS)

    @property
    def url(self) -> str:
        return self.root

    def set_users(self, users: list[dict]) -> None:
        """Serve these users (in this order); missing fields get Open WebUI's defaults."""
        filled = [{**make_user(u["id"], u.get("email", ""), u.get("name", ""), u.get("role", "user")), **u} for u in users]
        with self.lock:
            self.users = copy.deepcopy(filled)

    def set_groups(self, groups: list[dict]) -> None:
        """Serve these groups; missing fields get defaults. Membership stays on the users."""
        filled = [{**make_group(g["id"], g.get("name", "")), **g} for g in groups]
        with self.lock:
            self.groups = copy.deepcopy(filled)

    # serving

    def _mode_response(self, mode: str) -> Response | None:
        if mode == "500":
            return Response(500, "Internal Server Error")  # uvicorn's plain-text answer to a crash
        return None

    def _route(self, method, path, query, headers, body) -> Response:
        routes = {"/api/v1/users/": self._users, "/api/v1/users/all": self._all_users, "/api/v1/groups/": self._groups}
        if path + "/" in routes:
            location = path + "/" + (f"?{urllib.parse.urlencode(query)}" if query else "")
            return Response(307, None, {"Location": f"{self.root}{location}"})
        if path not in routes:
            return Response(404, {"detail": "Not Found"})
        if method != "GET":
            return Response(405, {"detail": "Method Not Allowed"})
        authorization = (headers.get("Authorization") or "").strip()
        if not authorization.startswith("Bearer "):
            return Response(401, {"detail": "Not authenticated"})
        if not self._authorized(headers):
            return Response(401, {"detail": "Your session has expired or the token is invalid. Please sign in again."})
        return routes[path](query)

    def _users(self, query) -> Response:
        try:
            page = int(query.get("page", 1))
        except ValueError:
            return Response(422, {"detail": [{"type": "int_parsing", "loc": ["query", "page"],
                                              "msg": "Input should be a valid integer, unable to parse string as an integer",
                                              "input": query["page"]}]})
        page = max(1, page)
        needle = (query.get("query") or "").lower()
        with self.lock:
            users = [u for u in self.users if not needle or needle in (u.get("name") or "").lower() or needle in (u.get("email") or "").lower()]
            chunk = copy.deepcopy(users[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])
        for user in chunk:
            user.setdefault("group_ids", [])
        return Response(200, {"users": chunk, "total": len(users)})

    def _all_users(self, query) -> Response:
        with self.lock:
            users = [{k: v for k, v in u.items() if k != "group_ids"} for u in copy.deepcopy(self.users)]
        return Response(200, {"users": users, "total": len(users)})

    def _groups(self, query) -> Response:
        with self.lock:
            groups = copy.deepcopy(self.groups)
            for group in groups:
                group["member_count"] = sum(1 for u in self.users if group.get("id") in (u.get("group_ids") or ()))
        return Response(200, groups)
