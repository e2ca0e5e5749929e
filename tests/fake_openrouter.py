"""A fake OpenRouter: a real HTTP server on a loopback port, for tests and benchmarks.

Serves ``/generation`` (404 until a generation "appears"), ``/models``, ``/key`` and
``/chat/completions``, with switches for 429, 5xx, slow answers and being down. It records every
request so tests can check concurrency and rate limits.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.parse
import uuid

DEFAULT_MODELS = [
    {"id": "openai/gpt-4o-mini", "name": "OpenAI: GPT-4o-mini",
     "pricing": {"prompt": "0.00000015", "completion": "0.0000006", "request": "0", "image": "0", "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.000000075"}},
    {"id": "anthropic/claude-3.5-haiku", "name": "Anthropic: Claude 3.5 Haiku",
     "pricing": {"prompt": "0.0000008", "completion": "0.000004", "request": "0", "image": "0", "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.00000008"}},
    {"id": "deepseek/deepseek-r1", "name": "DeepSeek: R1",
     "pricing": {"prompt": "0.0000004", "completion": "0.000002", "request": "0", "image": "0", "web_search": "0", "internal_reasoning": "0.000002"}},
    {"id": "meta-llama/llama-3.3-8b-instruct:free", "name": "Meta: Llama 3.3 8B (free)",
     "pricing": {"prompt": "0", "completion": "0", "request": "0"}},
]


class FakeOpenRouter:
    def __init__(self, api_key: str = "sk-or-test"):
        self.api_key = api_key
        self.lock = threading.Lock()
        self.generations: dict[str, dict] = {}
        self.models = [dict(m) for m in DEFAULT_MODELS]
        self.key_usage = {"usage": 0.0, "usage_daily": 0.0, "usage_weekly": 0.0, "usage_monthly": 0.0}
        self.key_status = 200
        self.mode = "ok"
        self.timeout_seconds = 5.0
        self.failures: list[tuple[int, float | None]] = []
        self.requests_seen: list[tuple[str, str, dict, float, int]] = []
        self.in_flight = 0
        self.max_concurrent = 0
        self._server = None
        self._thread = None
        self.port = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> "FakeOpenRouter":
        fake = self

        class Handler(_Handler):
            owner = fake

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler, bind_and_activate=False)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.daemon_threads = True
        server.server_bind()
        server.server_activate()
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- switches -------------------------------------------------------------------------------

    def add_generation(self, gen_id: str, total_cost: float, *, model="openai/gpt-4o-mini", provider_name="OpenAI",
                       tokens_prompt=10, tokens_completion=20, native_tokens_prompt=None, native_tokens_completion=None,
                       native_tokens_reasoning=0, native_tokens_cached=0, latency=250, external_user=None,
                       not_found_times: int = 0, available_after: float = 0.0) -> None:
        record = {
            "id": gen_id, "total_cost": total_cost, "model": model, "provider_name": provider_name,
            "tokens_prompt": tokens_prompt, "tokens_completion": tokens_completion,
            "native_tokens_prompt": tokens_prompt if native_tokens_prompt is None else native_tokens_prompt,
            "native_tokens_completion": tokens_completion if native_tokens_completion is None else native_tokens_completion,
            "native_tokens_reasoning": native_tokens_reasoning, "native_tokens_cached": native_tokens_cached,
            "latency": latency, "generation_time": latency, "external_user": external_user, "usage": total_cost,
            "is_byok": False, "streamed": True, "cancelled": False, "finish_reason": "stop", "api_type": "completions",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with self.lock:
            self.generations[gen_id] = {"record": record, "misses_left": not_found_times, "visible_at": time.monotonic() + available_after}

    def fail_next(self, n: int, status: int = 429, retry_after: float | None = None) -> None:
        with self.lock:
            self.failures.extend([(status, retry_after)] * n)

    def set_mode(self, mode: str) -> None:
        """ok, 500, 429, timeout (answer after timeout_seconds) or down (port closed)."""
        assert mode in ("ok", "500", "429", "timeout", "down")
        if mode == "down" and self._server is not None:
            self.stop()
        elif mode != "down" and self._server is None:
            self.start()  # the same port again
        self.mode = mode

    def set_models(self, models: list[dict]) -> None:
        with self.lock:
            self.models = models

    def set_key_usage(self, total=None, daily=None, weekly=None, monthly=None) -> None:
        with self.lock:
            for name, value in (("usage", total), ("usage_daily", daily), ("usage_weekly", weekly), ("usage_monthly", monthly)):
                if value is not None:
                    self.key_usage[name] = value

    def set_key_status(self, status: int) -> None:
        self.key_status = status

    def count(self, path_prefix: str) -> int:
        with self.lock:
            return sum(1 for _, path, _, _, _ in self.requests_seen if path.startswith(path_prefix))


class _Handler(http.server.BaseHTTPRequestHandler):
    owner: FakeOpenRouter
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict | None = None) -> int:
        self._send(status, {"error": {"code": status, "message": message}}, headers)
        return status

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.owner
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = parsed.path.removeprefix("/api/v1")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with fake.lock:
            fake.in_flight += 1
            fake.max_concurrent = max(fake.max_concurrent, fake.in_flight)
        try:
            status = self._route(method, path, query, body)
        finally:
            with fake.lock:
                fake.in_flight -= 1
                fake.requests_seen.append((method, path, query, time.monotonic(), status))

    def _route(self, method, path, query, body) -> int:
        fake = self.owner
        if fake.mode == "timeout":
            time.sleep(fake.timeout_seconds)
        if fake.mode == "500":
            return self._error(500, "Internal Server Error")
        if fake.mode == "429":
            return self._error(429, "Rate limit exceeded")
        if path == "/models" and method == "GET":
            with fake.lock:
                self._send(200, {"data": fake.models})
            return 200
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            return self._error(401, "No auth credentials found")
        with fake.lock:
            failure = fake.failures.pop(0) if fake.failures and path == "/generation" else None
        if failure is not None:
            status, retry_after = failure
            return self._error(status, "injected failure", {"Retry-After": str(retry_after)} if retry_after is not None else None)
        if path == "/generation" and method == "GET":
            gen_id = query.get("id")
            if not gen_id:
                return self._error(400, "id is required")
            with fake.lock:
                entry = fake.generations.get(gen_id)
                if entry is None:
                    found = None
                elif entry["misses_left"] > 0:
                    entry["misses_left"] -= 1
                    found = None
                elif time.monotonic() < entry["visible_at"]:
                    found = None
                else:
                    found = entry["record"]
            if found is None:
                return self._error(404, "Generation not found")
            self._send(200, {"data": found})
            return 200
        if path == "/key" and method == "GET":
            if fake.key_status != 200:
                return self._error(fake.key_status, "key problem")
            with fake.lock:
                data = {"label": "sk-or-v1-tes...t", "limit": None, "is_free_tier": False, **fake.key_usage}
            self._send(200, {"data": data})
            return 200
        if path == "/chat/completions" and method == "POST":
            request = json.loads(body or b"{}")
            model = request.get("model")
            with fake.lock:
                known = any(m["id"] == model for m in fake.models)
            if not known:
                return self._error(400, f"{model} is not a valid model ID")
            gen_id = "gen-" + uuid.uuid4().hex[:24]
            fake.add_generation(gen_id, 0.0000012, model=model, tokens_prompt=5, tokens_completion=1)
            self._send(200, {"id": gen_id, "model": model, "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "."}, "finish_reason": "length"}],
                             "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6, "cost": 0.0000012}})
            return 200
        return self._error(404, "Not Found")
