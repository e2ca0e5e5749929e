"""A fake Open WebUI admin API on a loopback port: /api/v1/users/ (paged) and /api/v1/groups/."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

PAGE_SIZE = 30
ENGINEERING = "1de82ddf-ddfd-46d4-a29b-a711f5171bc7"
DEFAULT_USERS = [
    {"id": "22d1d051-00a9-4e78-a612-8ae9d4005987", "email": "bob@example.com", "name": "Bob User", "role": "user", "group_ids": [ENGINEERING]},
    {"id": "91742e30-b09f-44e6-83e0-f91d730df38c", "email": "ada@example.com", "name": "Ada Admin", "role": "admin", "group_ids": []},
]
DEFAULT_GROUPS = [{"id": ENGINEERING, "name": "Engineering", "description": "Engineering (harness)", "user_id": DEFAULT_USERS[1]["id"], "member_count": 1}]


class FakeOpenWebUI:
    def __init__(self, api_key: str = "owui-admin-key"):
        self.api_key = api_key
        self.users = [dict(u) for u in DEFAULT_USERS]
        self.groups = [dict(g) for g in DEFAULT_GROUPS]
        self.mode = "ok"
        self.requests_seen: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests_seen.append(self.path)
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                if fake.mode == "500":
                    return self._send(500, {"detail": "boom"})
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, {"detail": "Not authenticated"})
                if parsed.path == "/api/v1/users/":
                    page = int(query.get("page", 1))
                    chunk = fake.users[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
                    return self._send(200, {"users": chunk, "total": len(fake.users)})
                if parsed.path == "/api/v1/groups/":
                    return self._send(200, fake.groups)
                return self._send(404, {"detail": "Not Found"})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
