"""A fake OpenRouter: a real HTTP server on a loopback port, for tests and benchmarks.

``FakeOpenRouter().url`` is a base like ``http://127.0.0.1:PORT/api/v1`` serving

- ``GET /generation?id=gen-…``: 404 until a generation "appears" (after N misses or a delay),
  then ``{"data": {...}}`` with the fields OpenRouter sends; 400 without ``id``; or, for a
  generation registered with ``add_raw_generation``, exactly the reply the test chose (a record
  without ``data``, a cost that is no number, text that is not JSON);
- ``GET /models``: ``{"data": [...]}`` with prices as strings in USD per token (no key needed);
- ``GET /key``: the key's running usage;
- ``POST /chat/completions``: a tiny non-streamed answer whose generation is then registered;
  for a model set with ``set_byok`` it is paid with the team's own provider key (``usage.cost``
  is OpenRouter's fee, ``usage.cost_details.upstream_inference_cost`` the provider's charge); or
  with ``"stream": true`` a streamed one (``stream_words`` chunks, ``stream_delay`` seconds apart,
  or per request the ``X-Fake-Stream-Words`` / ``-Delay`` headers) ending in a usage chunk with
  the cost, as OpenRouter sends it.

Everything but ``/models`` needs ``Authorization: Bearer <api_key>``. Switches make it fail
(``fail_next``), fail or hang altogether (``set_mode("500"|"429"|"timeout")``) or go away and
come back on the same port (``set_mode("down")`` / ``set_mode("ok")``). Every request is logged
(``requests_seen``, ``count``) with its arrival time, and ``max_concurrent`` keeps the highest
number of requests in flight, so tests can prove rate and concurrency limits.

``LoopbackFake`` is the shared server machinery, also used by ``fake_openwebui``.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import errno
import http.server
import json
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from typing import NamedTuple


class Seen(NamedTuple):
    """One logged request. ``path`` is relative to the fake's ``.url``; ``time`` is
    ``time.monotonic()`` when the request arrived; ``status`` is what it was answered."""

    method: str
    path: str
    query: dict
    time: float
    status: int  # 0: the connection went away before an answer

    def startswith(self, prefix: str) -> bool:
        """So code that treats a logged request as its path (``p.startswith("/x")``) still reads."""
        return self.path.startswith(prefix)


class Response(NamedTuple):
    status: int  # 0: the connection went away before an answer
    body: object = None  # dict/list → JSON, str → text/plain, None → empty, Stream → chunked
    headers: dict | None = None


class Stream(NamedTuple):
    """A body sent with chunked transfer encoding, one chunk per item, each flushed at once."""

    chunks: object  # an iterable of bytes; it may sleep between items
    content_type: str = "text/event-stream"


# --- server machinery ---------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # SO_REUSEADDR: come back on the same port right after "down"
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address, handler, fake: LoopbackFake):
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop every open (keep-alive) connection, as a process that went away would."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def server_close(self):
        super().server_close()
        self.close_connections()

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client hung up or we dropped the connection: expected, not a bug
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real services
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _dispatch(self):
        try:
            self.server.fake._serve(self)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class LoopbackFake:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread, with modes and a request log.

    Subclasses set ``MODES`` and implement ``_route`` (and ``_mode_response`` for failure
    modes other than "timeout" and "down")."""

    MODES: tuple[str, ...] = ("ok", "timeout", "down")

    def __init__(self, api_key: str):
        self.api_key = api_key
        self.lock = threading.Lock()
        self.mode = "ok"
        self.timeout_seconds = 5.0
        self.requests_seen: list[Seen] = []
        self.in_flight = 0
        self.max_concurrent = 0
        self.server: _Server | None = None
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    # lifecycle

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Listen (on the same port as before, if it ran before) and serve in a daemon thread."""
        if self.server is not None:
            return self
        deadline = time.monotonic() + 5
        while True:
            try:
                server = _Server(("127.0.0.1", self.port or 0), _Handler, self)
                break
            except OSError as exc:
                if not self.port or exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = server.server_address[1]
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection; the port is then refused."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()  # and every open connection
        self._wake_sleepers()  # after the connections are gone: a hanging request gets no answer

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
        with self.lock:
            self.mode = mode
        if mode == "down":
            self.stop()
        else:
            self._wake_sleepers()  # requests hanging in "timeout" are answered now
            self.start()  # no-op when running; after "down" it binds the same port again

    def _wake_sleepers(self) -> None:
        with self.lock:
            old, self._wake = self._wake, threading.Event()
        old.set()

    # request log

    def count(self, path_prefix: str = "") -> int:
        """How many logged requests have a path (relative to ``.url``) starting with this."""
        with self.lock:
            return sum(1 for seen in self.requests_seen if seen.path.startswith(path_prefix))

    def clear_log(self) -> None:
        """Forget logged requests and reset ``max_concurrent``."""
        with self.lock:
            self.requests_seen.clear()
            self.max_concurrent = self.in_flight

    # serving

    def _log_path(self, path: str) -> str:
        return path

    def _authorized(self, headers) -> bool:
        return (headers.get("Authorization") or "").strip() == f"Bearer {self.api_key}"

    def _mode_response(self, mode: str) -> Response | None:
        return None

    def _route(self, method: str, path: str, query: dict, headers, body: bytes) -> Response:
        raise NotImplementedError

    def _serve(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        parsed = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        with self.lock:
            self.in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self.in_flight)
            mode, wake = self.mode, self._wake
        response = None
        try:
            if mode == "timeout":
                wake.wait(self.timeout_seconds)
                if handler.server is not self.server:
                    return  # went "down" meanwhile: the connection is gone, nothing is answered
            try:
                response = self._mode_response(mode) or self._route(handler.command, parsed.path, query, handler.headers, body)
            except Exception:  # a bug in the fake: say so loudly, answer 500
                traceback.print_exc()
                response = Response(500, "fake server error")
        finally:
            # Logged and out of flight before the first byte is sent: a client that has its answer
            # already sees it in requests_seen, and its next request never overlaps this one.
            with self.lock:
                self.in_flight -= 1
                status = response.status if response is not None else 0
                self.requests_seen.append(Seen(handler.command, self._log_path(parsed.path), query, arrived, status))
        self._send(handler, response)

    @staticmethod
    def _send(handler: _Handler, response: Response) -> None:
        if isinstance(response.body, Stream):
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.body.content_type)
            handler.send_header("Transfer-Encoding", "chunked")
            for name, value in (response.headers or {}).items():
                handler.send_header(name, str(value))
            handler.end_headers()
            handler.wfile.flush()
            for chunk in response.body.chunks:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
            return
        if isinstance(response.body, str):
            data, kind = response.body.encode(), "text/plain; charset=utf-8"
        elif response.body is None:
            data, kind = b"", None
        else:
            data, kind = json.dumps(response.body).encode(), "application/json"
        handler.send_response(response.status)
        if kind:
            handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (response.headers or {}).items():
            handler.send_header(name, str(value))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()


# --- OpenRouter ---------------------------------------------------------------------------------

API_PREFIX = "/api/v1"


def _pricing(prompt, completion, *, request="0", image="0", web_search="0", internal_reasoning="0", input_cache_read="0", **more):
    return {"prompt": prompt, "completion": completion, "request": request, "image": image, "web_search": web_search,
            "internal_reasoning": internal_reasoning, "input_cache_read": input_cache_read, **more}


def _model(model_id, name, pricing, context_length=128000, created=1721260800):
    return {
        "id": model_id, "canonical_slug": model_id, "name": name, "created": created,
        "description": f"Fake {name} for tests.", "context_length": context_length,
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                         "tokenizer": "Other", "instruct_type": None},
        "pricing": pricing,
        "top_provider": {"context_length": context_length, "max_completion_tokens": 16384, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop"],
    }


# Prices are strings in USD per token, as OpenRouter sends them.
DEFAULT_MODELS = [
    _model("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini",
           _pricing("0.00000015", "0.0000006", input_cache_read="0.000000075")),
    _model("anthropic/claude-3.5-haiku", "Anthropic: Claude 3.5 Haiku",
           _pricing("0.0000008", "0.000004", input_cache_read="0.00000008", input_cache_write="0.000001"), 200000),
    _model("deepseek/deepseek-r1", "DeepSeek: R1",
           _pricing("0.0000004", "0.000002", internal_reasoning="0.000002"), 163840),
    _model("meta-llama/llama-3.3-8b-instruct:free", "Meta: Llama 3.3 8B Instruct (free)",
           _pricing("0", "0"), 128000),
]

PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic", "deepseek": "DeepSeek", "meta-llama": "Meta"}

_KEY_ERRORS = {401: "User not found.", 402: "Insufficient credits. Add more using https://openrouter.ai/credits",
               403: "Key is disabled.", 429: "Rate limit exceeded", 500: "Internal Server Error"}


class _Generation:
    __slots__ = ("record", "misses_left", "visible_at", "raw")

    def __init__(self, record: dict, misses_left: int, visible_at: float, raw: Response | None = None):
        self.record, self.misses_left, self.visible_at, self.raw = record, misses_left, visible_at, raw


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(status, {"error": {"code": status, "message": message}}, headers)


class FakeOpenRouter(LoopbackFake):
    MODES = ("ok", "500", "429", "timeout", "down")

    def __init__(self, api_key: str = "sk-or-test"):
        super().__init__(api_key)
        self.models: list[dict] = copy.deepcopy(DEFAULT_MODELS)
        self.key_usage = {"usage": 0.0, "usage_daily": 0.0, "usage_weekly": 0.0, "usage_monthly": 0.0}
        self.key_limit: float | None = None
        self.key_status = 200
        self.mode_retry_after: float | None = None
        self._generations: dict[str, _Generation] = {}
        self._failures: list[tuple[str, int, float | None]] = []
        self._model_errors: dict[str, tuple[int, str]] = {}
        self._byok: dict[str, decimal.Decimal] = {}
        self.stream_words = 8  # content chunks of a streamed answer
        self.stream_delay = 0.0  # seconds before each chunk of a streamed answer
        self.chat_requests: list[dict] = []  # headers and raw body of each /chat/completions request

    @property
    def url(self) -> str:
        return f"{self.root}{API_PREFIX}"

    # state

    def add_generation(self, gen_id: str, total_cost: float, *, model: str = "openai/gpt-4o-mini", provider_name: str = "OpenAI",
                       tokens_prompt: int = 10, tokens_completion: int = 20, native_tokens_prompt: int | None = None,
                       native_tokens_completion: int | None = None, native_tokens_reasoning: int = 0, native_tokens_cached: int = 0,
                       latency: int = 250, external_user: str | None = None, available_after: float = 0.0,
                       not_found_times: int = 0, byok_provider_cost: float | None = None, **extra) -> dict:
        """Register a generation. ``/generation?id=`` answers 404 for the first ``not_found_times``
        requests and until ``available_after`` seconds from now, then 200. ``extra`` overrides or
        adds fields (``streamed``, ``cache_discount``, ``cancelled``, ...). ``total_cost=None`` is a
        record whose cost OpenRouter does not know yet (``"total_cost": null``). Registering the
        same id again replaces the record. Returns the record.

        As OpenRouter does: ``upstream_inference_cost`` is filled on every generation, equal to
        ``total_cost`` unless ``byok_provider_cost`` is given: then the generation was paid with the
        team's own provider key, ``is_byok`` is true, ``total_cost`` is only OpenRouter's fee and
        ``upstream_inference_cost`` the provider's charge."""
        total_cost = None if total_cost is None else float(total_cost)
        upstream = total_cost if byok_provider_cost is None else float(byok_provider_cost)
        record = {
            "id": gen_id, "upstream_id": "chatcmpl-" + gen_id.removeprefix("gen-"), "total_cost": total_cost,
            "cache_discount": None, "upstream_inference_cost": upstream,
            "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "model": model, "app_id": None, "streamed": True, "cancelled": False, "provider_name": provider_name,
            "latency": latency, "moderation_latency": None, "generation_time": latency,
            "finish_reason": "stop", "native_finish_reason": "stop",
            "tokens_prompt": tokens_prompt, "tokens_completion": tokens_completion,
            "native_tokens_prompt": tokens_prompt if native_tokens_prompt is None else native_tokens_prompt,
            "native_tokens_completion": tokens_completion if native_tokens_completion is None else native_tokens_completion,
            "native_tokens_completion_images": 0, "native_tokens_reasoning": native_tokens_reasoning,
            "native_tokens_cached": native_tokens_cached, "num_media_prompt": None, "num_media_completion": None,
            "num_search_results": None, "origin": "", "usage": total_cost, "is_byok": byok_provider_cost is not None,
            "external_user": external_user, "api_type": "completions",
        }
        record.update(extra)
        with self.lock:
            self._generations[gen_id] = _Generation(record, int(not_found_times), time.monotonic() + available_after)
        return copy.deepcopy(record)

    def add_raw_generation(self, gen_id: str, body: object, status: int = 200) -> None:
        """Make ``/generation?id=gen_id`` answer exactly ``body`` (dict/list: JSON, str: text) with
        ``status``: for replies OpenRouter should never send (no ``data``, a cost that is no number)."""
        with self.lock:
            self._generations[gen_id] = _Generation({}, 0, 0.0, Response(status, copy.deepcopy(body)))

    def generation(self, gen_id: str) -> dict | None:
        """The stored record of a generation (visible yet or not), or None."""
        with self.lock:
            entry = self._generations.get(gen_id)
            return copy.deepcopy(entry.record) if entry else None

    def fail_next(self, n: int, status: int = 429, retry_after: float | None = None, *, path: str = "/generation") -> None:
        """The next ``n`` authorised requests to ``path`` get ``status`` (with Retry-After when given)."""
        with self.lock:
            self._failures.extend([(path, status, retry_after)] * n)

    def set_mode(self, mode: str, *, retry_after: float | None = None) -> None:
        """"ok"; "500" or "429" for every request (``retry_after`` adds Retry-After to 429s);
        "timeout": each request waits ``timeout_seconds`` before it is answered normally;
        "down": the port is closed (connections refused); any other mode binds it again."""
        self.mode_retry_after = retry_after
        super().set_mode(mode)

    def set_models(self, models: list[dict]) -> None:
        with self.lock:
            self.models = copy.deepcopy(models)

    def set_model_error(self, model: str, status: int | None = 404, message: str | None = None) -> None:
        """Make ``/chat/completions`` for ``model`` fail with ``status`` (None: answer again)."""
        with self.lock:
            if status is None:
                self._model_errors.pop(model, None)
            else:
                self._model_errors[model] = (status, message or f"No endpoints found for {model}.")

    def set_byok(self, model: str, fee_rate: str | None = "0.05") -> None:
        """Answer ``model`` through the team's own provider key (bring your own key): the provider
        charges the model's price, OpenRouter only ``fee_rate`` of it. None: OpenRouter's credits again."""
        with self.lock:
            if fee_rate is None:
                self._byok.pop(model, None)
            else:
                self._byok[model] = decimal.Decimal(fee_rate)

    def set_key_usage(self, total: float | None = None, daily: float | None = None, weekly: float | None = None,
                      monthly: float | None = None) -> None:
        """USD figures ``/key`` reports; None leaves a figure as it is."""
        with self.lock:
            for name, value in (("usage", total), ("usage_daily", daily), ("usage_weekly", weekly), ("usage_monthly", monthly)):
                if value is not None:
                    self.key_usage[name] = float(value)

    def set_key_status(self, status: int) -> None:
        """``/key`` answers this error status (401, 402, 403, ...); 200 makes it answer normally."""
        with self.lock:
            self.key_status = status

    # serving

    def _log_path(self, path: str) -> str:
        return path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path

    def _mode_response(self, mode: str) -> Response | None:
        if mode == "500":
            return _error(500, "Internal Server Error")
        if mode == "429":
            headers = {"Retry-After": _seconds(self.mode_retry_after)} if self.mode_retry_after is not None else None
            return _error(429, "Rate limit exceeded", headers)
        return None

    def _route(self, method, path, query, headers, body) -> Response:
        if not path.startswith(API_PREFIX + "/"):
            return _error(404, "Not Found")
        path = path[len(API_PREFIX):]
        routes = {"/generation": ("GET", self._get_generation), "/models": ("GET", self._get_models),
                  "/key": ("GET", self._get_key), "/chat/completions": ("POST", self._post_chat)}
        if path not in routes:
            return _error(404, "Not Found")
        allowed, route = routes[path]
        if method != allowed:
            return _error(405, "Method Not Allowed")
        if path == "/chat/completions":
            with self.lock:
                self.chat_requests.append({"headers": dict(headers.items()), "body": body})
        if path != "/models" and not self._authorized(headers):
            return _error(401, "No auth credentials found")
        with self.lock:
            failure = next((f for f in self._failures if f[0] == path), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            _, status, retry_after = failure
            return _error(status, _KEY_ERRORS.get(status, "Injected failure"),
                          {"Retry-After": _seconds(retry_after)} if retry_after is not None else None)
        if path == "/chat/completions":
            return self._post_chat(query, body, headers)
        return route(query, body)

    def _get_generation(self, query, body) -> Response:
        gen_id = query.get("id")
        if not gen_id:
            return _error(400, "Invalid query: id is required")
        with self.lock:
            entry = self._generations.get(gen_id)
            if entry is not None and entry.misses_left > 0:
                entry.misses_left -= 1
                entry = None
            if entry is not None and time.monotonic() < entry.visible_at:
                entry = None
            if entry is not None and entry.raw is not None:
                return entry.raw
            if entry is not None:
                return Response(200, {"data": copy.deepcopy(entry.record)})
        return _error(404, "Generation not found")

    def _get_models(self, query, body) -> Response:
        with self.lock:
            return Response(200, {"data": copy.deepcopy(self.models)})

    def _get_key(self, query, body) -> Response:
        with self.lock:
            if self.key_status != 200:
                return _error(self.key_status, _KEY_ERRORS.get(self.key_status, "Key error"))
            usage = dict(self.key_usage)
            limit = self.key_limit
        return Response(200, {"data": {
            "label": "sk-or-v1-tes...test", "limit": limit,
            "limit_remaining": None if limit is None else limit - usage["usage"], "limit_reset": None,
            "include_byok_in_limit": False, **usage,
            "byok_usage": 0.0, "byok_usage_daily": 0.0, "byok_usage_weekly": 0.0, "byok_usage_monthly": 0.0,
            "is_free_tier": False, "is_provisioning_key": False,
        }})

    def _post_chat(self, query, body, headers=None) -> Response:
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(request, dict) or not isinstance(request.get("model"), str) or not isinstance(request.get("messages"), list):
            return _error(400, "Input required: specify \"model\" and \"messages\"")
        model_id = request["model"]
        with self.lock:
            model = next((m for m in self.models if m.get("id") == model_id), None)
            model_error = self._model_errors.get(model_id)
        if model is None:
            return _error(400, f"{model_id} is not a valid model ID")
        if model_error is not None:
            return _error(*model_error)
        text = "".join(m.get("content") if isinstance(m.get("content"), str) else "" for m in request["messages"] if isinstance(m, dict))
        prompt_tokens = max(1, len(text) // 4) + 4 * len(request["messages"])
        max_tokens = request.get("max_tokens")
        if request.get("stream") is True:
            # a caller (the benchmark) may ask for its own pace: X-Fake-Stream-Words / -Delay
            try:
                words = int(headers.get("X-Fake-Stream-Words")) if headers and headers.get("X-Fake-Stream-Words") else self.stream_words
                delay = float(headers.get("X-Fake-Stream-Delay")) if headers and headers.get("X-Fake-Stream-Delay") else self.stream_delay
            except ValueError:
                return _error(400, "X-Fake-Stream-Words / -Delay must be numbers")
            return self._stream_chat(model, prompt_tokens, words, delay)
        completion_tokens = 1
        pricing = model.get("pricing") or {}
        price = _price(pricing, "prompt") * prompt_tokens + _price(pricing, "completion") * completion_tokens + _price(pricing, "request")
        with self.lock:
            fee_rate = self._byok.get(model_id)
        # with the team's own key the provider bills the price and OpenRouter only its fee
        cost, provider_cost = (float(price), None) if fee_rate is None else (float(price * fee_rate), float(price))
        gen_id = "gen-" + uuid.uuid4().hex[:24]
        self.add_generation(gen_id, cost, model=model_id, provider_name=PROVIDERS.get(model_id.split("/")[0], "Fake"),
                            tokens_prompt=prompt_tokens, tokens_completion=completion_tokens, latency=10, streamed=False,
                            finish_reason="length" if max_tokens == 1 else "stop", native_finish_reason="length" if max_tokens == 1 else "stop",
                            byok_provider_cost=provider_cost)
        return Response(200, {
            "id": gen_id, "provider": PROVIDERS.get(model_id.split("/")[0], "Fake"), "model": model_id,
            "object": "chat.completion", "created": int(time.time()),
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "length" if max_tokens == 1 else "stop",
                         "native_finish_reason": "length" if max_tokens == 1 else "stop",
                         "message": {"role": "assistant", "content": "OK", "refusal": None, "reasoning": None}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens, "cost": cost, "is_byok": provider_cost is not None,
                      "cost_details": {"upstream_inference_cost": cost if provider_cost is None else provider_cost},
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        })

    def _stream_chat(self, model: dict, prompt_tokens: int, words: int, delay: float) -> Response:
        """A streamed answer shaped like OpenRouter's (see the fixtures' api-stream.response-lines):
        a processing comment, one chunk per word with the generation id, a finish chunk, a usage
        chunk with the cost, ``[DONE]``. The generation is registered before the first byte."""
        model_id = model["id"]
        provider = PROVIDERS.get(model_id.split("/")[0], "Fake")
        pricing = model.get("pricing") or {}
        cost = float(_price(pricing, "prompt") * prompt_tokens + _price(pricing, "completion") * words + _price(pricing, "request"))
        gen_id = "gen-" + uuid.uuid4().hex[:24]
        self.add_generation(gen_id, cost, model=model_id, provider_name=provider, tokens_prompt=prompt_tokens,
                            tokens_completion=words, latency=10, streamed=True)
        created = int(time.time())

        def chunk(delta: dict, finish=None, usage=None) -> bytes:
            body = {"id": gen_id, "provider": provider, "model": model_id, "object": "chat.completion.chunk", "created": created,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish, "logprobs": None}]}
            if usage is not None:
                body["usage"] = usage
            return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

        def chunks():
            yield b": OPENROUTER PROCESSING\n\n"
            for i in range(words):
                if delay:
                    time.sleep(delay)
                yield chunk({"role": "assistant", "content": f"word{i} "})
            yield chunk({"role": "assistant", "content": ""}, "stop")
            yield chunk({"role": "assistant", "content": ""}, usage={
                "prompt_tokens": prompt_tokens, "completion_tokens": words, "total_tokens": prompt_tokens + words, "cost": cost,
                "is_byok": False, "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0},
                "cost_details": {"upstream_inference_cost": None}, "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}})
            yield b"data: [DONE]\n\n"

        return Response(200, Stream(chunks()))


def _price(pricing: dict, name: str) -> decimal.Decimal:
    try:
        return max(decimal.Decimal(str(pricing.get(name) or "0")), decimal.Decimal(0))
    except decimal.InvalidOperation:
        return decimal.Decimal(0)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
