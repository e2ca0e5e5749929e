"""
title: owui-meter
author: owui-meter
version: 0.2.0
required_open_webui_version: 0.6.0
tested_open_webui_versions: 0.6.43, 0.12.4
description: Reports every answer's usage to owui-meter, shows its cost, and stops over-budget users. Supports Open WebUI 0.6.x and 0.12.x.
licence: MIT
"""

# One file, pasted into Open WebUI (Admin -> Functions), enabled globally.
#
# inlet  asks the meter whether the user may chat (raises only to block: over budget, or the
#        meter unreachable with on_meter_down = "block"). Nothing else happens on that path.
# stream collects OpenRouter generation ids ("gen-..."). Two shapes of event arrive:
#        - dicts (web chats on every version, API calls on 0.12): the ids are kept on
#          __metadata__ and, for 0.6 web chats whose outlet gets a fresh __metadata__, in a
#          bounded map keyed by the message id; outlet reports the answer.
#        - raw SSE bytes (API calls on 0.6, which never run outlet): the stream is parsed as it
#          passes, and the answer (gen id + the final usage chunk with its cost) is reported
#          from here. Which hook reports is decided per request by the shape of its events.
# outlet sends the answer's usage and ids, and shows the meter's one-line notice.
#
# Answers go to the meter through the plugin's own worker threads and queue, never through the
# chat: a slow or unreachable meter delays them, a refused API key (401/403) holds them until the
# key is fixed, and they drain in the background as soon as the meter answers again. Only a
# permanent refusal (400, 409, 413, 422) or a full queue (QUEUE_LIMIT) drops one, and says so.

import asyncio
import collections
import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Literal, Optional

try:
    from pydantic import BaseModel, Field
except ImportError:  # Open WebUI always has pydantic; this keeps the file importable anywhere

    class BaseModel:  # type: ignore[no-redef]
        def __init__(self, **values):
            for name in dir(type(self)):
                if not name.startswith("_") and not callable(getattr(type(self), name)):
                    setattr(self, name, values.get(name, getattr(type(self), name)))

    def Field(default=None, **_):  # type: ignore[no-redef]
        return default


log = logging.getLogger("owui_meter.plugin")

# on __metadata__ (one dict per request and hook set; shared by inlet, stream and outlet on 0.12)
IDS_KEY = "_owui_meter_generation_ids"
KEY_KEY = "_owui_meter_key"
SSE_KEY = "_owui_meter_sse"  # the raw-stream parser's state of this request

QUEUE_LIMIT = 10_000  # answers kept while the meter cannot take them (about 1 KB each)
SENDERS = 4  # threads sending answers
CHECKERS = 8  # threads asking for budget decisions
IDLE_SECONDS = 30  # an idle worker thread ends; a new one starts with the next job
SEND_TIMEOUT_SECONDS = 30  # answers are sent off the chat path: a slow meter still gets them
MAX_BACKOFF_SECONDS = 30  # longest pause between tries while the meter is unreachable
MAX_RETRY_AFTER_SECONDS = 300  # a meter's Retry-After is honoured up to this
REFUSED_RETRY_SECONDS = 60  # a refused key is tried again this often (or at once when it changes)
LINK_TTL_SECONDS = 3600  # how long a 0.6 web chat's stream ids wait for its outlet
LINK_LIMIT = 10_000  # message ids remembered at most (oldest forgotten first)
MAX_IDS = 200  # generation ids per answer, as the meter accepts
MAX_SSE_LINE = 1_000_000  # a longer partial line is not an OpenRouter chunk: dropped
PERMANENT = {400, 409, 413, 422}  # this answer is refused as it is: resending it cannot succeed

DOWN_MESSAGE = (
    "Chats are paused: the usage meter cannot be reached, and this server stops chats until it "
    "can check budgets again. Please try again in a minute, or tell your admin."
)


class MeterError(Exception):
    """The meter could not be reached or answered with an error."""

    def __init__(self, message: str, status: Optional[int] = None, retry_after: float = 0.0, answer: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds the meter asked to wait (429, 503 on a full disk)
        self.answer = answer  # the meter's JSON error body


# --- background work ------------------------------------------------------------------------------


class _Job:
    """One piece of work for a worker thread; whoever handed it in may wait for its result."""

    def __init__(self, payload: dict, deadline: float = 0.0):
        self.payload = payload
        self.deadline = deadline
        self._lock = threading.Lock()
        self._done = False
        self._result: Any = None
        self._callbacks: list = []

    def finish(self, result: Any) -> None:
        with self._lock:
            if self._done:
                return
            self._done, self._result = True, result
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(result)
            except Exception:
                pass

    def on_done(self, callback: Callable[[Any], None]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self._result)


def _settle(waiter: "asyncio.Future", result: Any) -> None:
    if not waiter.done():
        waiter.set_result(result)


async def _wait(job: _Job, timeout: float) -> Any:
    """The job's result, or None when it is not there within ``timeout`` (the job goes on)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(result):
        try:
            loop.call_soon_threadsafe(_settle, waiter, result)
        except RuntimeError:  # the event loop is gone: nobody is waiting any more
            pass

    job.on_done(wake)
    try:
        return await asyncio.wait_for(waiter, max(0.0, timeout))
    except asyncio.TimeoutError:
        return None


class _Checks:
    """Budget questions, asked by up to CHECKERS threads of the plugin's own.

    A question whose asker has stopped waiting (past its deadline) is not asked at all.
    """

    def __init__(self, ask: Callable[[dict, float], Optional[dict]]):
        self._ask = ask
        self._jobs: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._threads = 0
        self._idle = 0

    def submit(self, payload: dict, deadline: float) -> _Job:
        job = _Job(payload, deadline)
        with self._cond:
            self._jobs.append(job)
            if len(self._jobs) > self._idle and self._threads < CHECKERS:
                self._threads += 1
                threading.Thread(target=self._run, name="owui-meter-check", daemon=True).start()
            self._cond.notify()
        return job

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._jobs:
                    self._idle += 1
                    self._cond.wait(IDLE_SECONDS)
                    self._idle -= 1
                    if not self._jobs:
                        self._threads -= 1
                        return
                job = self._jobs.popleft()
            remaining = job.deadline - time.monotonic()
            result = None
            if remaining > 0.05:
                try:
                    result = self._ask(job.payload, remaining)
                except Exception as exc:
                    log.warning("owui-meter: budget check failed: %s", type(exc).__name__)
            job.finish(result)


class _Outbox:
    """Answers on their way to the meter, sent by up to SENDERS threads of the plugin's own.

    An answer leaves only when the meter has stored it, or refused it for good (PERMANENT
    statuses: resending cannot help), or when QUEUE_LIMIT answers wait and it is the oldest.
    Unreachable, slow, 429 and 5xx: it stays and is tried again after a pause (1 s doubling to
    MAX_BACKOFF_SECONDS, ended early by ``wake``, and never before the meter's Retry-After). 401/403: it stays until the API key changes
    (or every REFUSED_RETRY_SECONDS, in case the meter's key was changed back).
    """

    def __init__(self, send: Callable[[dict], dict], current_key: Callable[[], str]):
        self._send = send
        self._current_key = current_key
        self._jobs: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._threads = 0
        self._idle = 0
        self._in_flight = 0
        self._paused_until = 0.0  # our own pause: backoff, or a refused key
        self._asked_until = 0.0  # the meter's Retry-After; a successful inlet does not end it
        self._backoff = 0.0
        self._refused: Optional[tuple] = None  # (status, fingerprint of the refused key)
        self.dropped = 0

    # what the hooks use

    def put(self, payload: dict, *, urgent: bool = False) -> _Job:
        """Queue an answer. ``urgent`` (an outlet waiting to show its notice) goes first."""
        job = _Job(payload)
        dropped = None
        with self._cond:
            if len(self._jobs) >= QUEUE_LIMIT:
                dropped = self._jobs.popleft()  # the one that has waited longest
                self.dropped += 1
            if urgent:
                self._jobs.appendleft(job)
            else:
                self._jobs.append(job)
            self._start_sender_locked()
            self._cond.notify()
        if dropped is not None:
            log.error("owui-meter: %d answers wait for the meter; dropped one (key %s)", QUEUE_LIMIT, dropped.payload.get("key"))
            dropped.finish(None)
        return job

    def wake(self) -> None:
        """The meter answered (an inlet): end any pause, so waiting answers go now."""
        with self._cond:
            self._paused_until = 0.0
            self._backoff = 0.0
            self._refused = None
            if self._jobs:
                self._start_sender_locked()
                self._cond.notify_all()

    def note_refused(self, status: int) -> None:
        """The meter refused the API key on some call (inlet too): remember it for the admin."""
        with self._cond:
            self._refused_locked(status, _fingerprint(self._current_key()))

    def _refused_locked(self, status: int, key: str) -> None:
        if self._refused is None or self._refused[1] != key:
            log.error(
                "owui-meter: the meter refused the plugin's API key (HTTP %d); %d answers are kept "
                "until the api_key valve matches the meter's API_KEY", status, len(self._jobs) + self._in_flight,
            )
        self._refused = (status, key)

    def refused_status(self) -> Optional[int]:
        with self._cond:
            return self._refused[0] if self._refused else None

    def paused(self) -> bool:
        """True while sending waits out a pause (meter unreachable, or the key refused)."""
        with self._cond:
            return time.monotonic() < max(self._paused_until, self._asked_until)

    def pending(self) -> int:
        """Answers not yet stored by the meter (waiting or being sent)."""
        with self._cond:
            return len(self._jobs) + self._in_flight

    # the sender threads

    def _start_sender_locked(self) -> None:
        if len(self._jobs) > self._idle and self._threads < SENDERS:
            self._threads += 1
            threading.Thread(target=self._run, name="owui-meter-send", daemon=True).start()

    def _next_locked(self) -> Optional[_Job]:
        """The next answer to send, waiting out any pause; None after IDLE_SECONDS of no work."""
        idle_since = time.monotonic()
        while True:
            now = time.monotonic()
            if self._refused is not None and _fingerprint(self._current_key()) != self._refused[1]:
                self._paused_until = 0.0  # the admin changed the key: try it at once
            until = max(self._paused_until, self._asked_until)
            if self._jobs and now >= until:
                return self._jobs.popleft()
            if not self._jobs and now - idle_since >= IDLE_SECONDS:
                return None
            # while paused, look again every second: a changed key is only seen by looking
            wait = min(1.0, until - now) if self._jobs else IDLE_SECONDS
            self._idle += 1
            self._cond.wait(max(0.01, wait))
            self._idle -= 1

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next_locked()
                if job is None:
                    self._threads -= 1
                    return
                self._in_flight += 1
            key = _fingerprint(self._current_key())
            try:
                answer, error = self._send(job.payload), None
            except MeterError as exc:
                answer, error = None, exc
            except Exception as exc:  # a bug must not kill the sender and strand the queue
                answer, error = None, MeterError(f"sending failed: {type(exc).__name__}")
            finished = self._settle_locked_outcome(job, answer, error, key)
            if finished:
                job.finish(answer)

    def _settle_locked_outcome(self, job: _Job, answer: Optional[dict], error: Optional[MeterError], key: str) -> bool:
        """Record how the send went; True when the job is over (sent or refused for good)."""
        status = error.status if error is not None else None
        with self._cond:
            self._in_flight -= 1
            if error is None:
                self._backoff = 0.0
                self._refused = None
                return True
            if status in PERMANENT:
                log.warning("owui-meter: the meter refused an answer for good: %s", error)
                return True
            self._jobs.appendleft(job)  # keep its place: it goes again first
            now = time.monotonic()
            if status in (401, 403):
                self._refused_locked(status, key)
                self._paused_until = max(self._paused_until, now + REFUSED_RETRY_SECONDS)
            else:
                self._backoff = min(MAX_BACKOFF_SECONDS, max(1.0, self._backoff * 2))
                self._paused_until = max(self._paused_until, now + self._backoff)
                asked = min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
                self._asked_until = max(self._asked_until, now + asked)
                wait = max(self._backoff, asked)
                log.warning("owui-meter: %s; %d answers wait, next try in %.0f s", error, len(self._jobs) + self._in_flight, wait)
            return False


def _retry_after(headers) -> float:
    """Retry-After in seconds (the meter sends a number), 0 when absent or unreadable."""
    try:
        value = float(headers.get("Retry-After") or 0)
    except (TypeError, ValueError, AttributeError):
        return 0.0
    return value if 0 < value < float("inf") else 0.0


def _fingerprint(secret: str) -> str:
    """Compare keys without keeping another copy of one."""
    return hashlib.sha256((secret or "").encode("utf-8")).hexdigest()


class _Expiring:
    """A bounded, thread-safe map whose entries expire ``ttl`` seconds after their last change."""

    def __init__(self, ttl: float, limit: int):
        self._ttl = ttl
        self._limit = limit
        self._items: "collections.OrderedDict[str, tuple]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def _prune_locked(self, now: float) -> None:
        while self._items:
            oldest = next(iter(self._items))
            if self._items[oldest][0] > now and len(self._items) <= self._limit:
                return
            del self._items[oldest]

    def add_id(self, name: str, value: str) -> None:
        """Append ``value`` to the list under ``name`` (once; at most MAX_IDS)."""
        now = time.monotonic()
        with self._lock:
            _, values = self._items.pop(name, (0.0, []))
            if value not in values and len(values) < MAX_IDS:
                values.append(value)
            self._items[name] = (now + self._ttl, values)
            self._prune_locked(now)

    def put(self, name: str, value: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self._items.pop(name, None)
            self._items[name] = (now + self._ttl, value)
            self._prune_locked(now)

    def take(self, name: str) -> Any:
        """The value under ``name`` (None if absent or expired), removed."""
        now = time.monotonic()
        with self._lock:
            expires, value = self._items.pop(name, (0.0, None))
            return value if expires > now else None

    def get(self, name: str) -> Any:
        """The value under ``name``, or None if absent or expired."""
        now = time.monotonic()
        with self._lock:
            expires, value = self._items.get(name, (0.0, None))
            return value if expires > now else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# --- the filter -------------------------------------------------------------------------------------


class Filter:
    class Valves(BaseModel):
        meter_url: str = Field(default="http://owui-meter:45000", description="Where owui-meter listens.")
        api_key: str = Field(default="", description="The meter's API_KEY.")
        timeout_seconds: float = Field(default=3, description="Longest wait for the meter on the chat's path (inlet and outlet).")
        on_meter_down: Literal["allow", "block"] = Field(
            default="allow",
            description="When the meter cannot be reached at the start of a chat: 'allow' lets it through (budgets are not enforced meanwhile), 'block' stops it with a message (no chats while the meter is down).",
        )
        show_status: bool = Field(default=True, description="Show each answer's cost above it.")
        priority: int = Field(default=0, description="Filter order in Open WebUI.")
        tag_user: bool = Field(default=True, description="Set the request's 'user' field to the Open WebUI user id, so OpenRouter's records name the user.")
        language: str = Field(default="en", description="Language of the line shown to users: en, de, fr, es, zh.")

    def __init__(self):
        self.valves = self.Valves()
        self._outbox = _Outbox(self._send_answer, lambda: str(self.valves.api_key or ""))
        self._checks = _Checks(self._ask_inlet)
        self._links = _Expiring(LINK_TTL_SECONDS, LINK_LIMIT)  # message id -> stream's gen ids (0.6 web chats)
        self._reported = _Expiring(LINK_TTL_SECONDS, LINK_LIMIT)  # message id -> {generation set: key}

    # --- HTTP ---------------------------------------------------------------------------------

    def _timeout(self) -> float:
        try:
            value = float(self.valves.timeout_seconds)
        except (TypeError, ValueError):
            return 3.0
        return value if 0 < value < 3600 else 3.0

    def _post(self, path: str, payload: dict, timeout: float) -> dict:
        """POST JSON to the meter; the parsed answer. Raises MeterError on any failure."""
        url = str(self.valves.meter_url).rstrip("/") + path
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.valves.api_key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read().decode("utf-8") or "{}")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read().decode("utf-8"))
                error = error if isinstance(error, dict) else None
            except Exception:
                error = None
            detail = error.get("error") if error else None
            raise MeterError(f"meter answered {exc.code} on {path}: {detail or exc.reason}", exc.code, _retry_after(exc.headers), error) from None
        except Exception as exc:  # connection refused, timeout, bad JSON: all mean "not now"
            raise MeterError(f"meter unreachable on {path}: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            raise MeterError(f"meter answered {path} with something other than a JSON object")
        return answer

    def _send_answer(self, payload: dict) -> dict:
        """Runs in a sender thread."""
        timeout = max(SEND_TIMEOUT_SECONDS, self._timeout())
        try:
            answer = self._post("/api/v1/outlet", payload, timeout)
        except MeterError as exc:
            # 409: the key holds a different answer. If it names that answer's generations and
            # they are not ours, ours is a continuation: report it under its own key.
            if exc.status != 409 or _continuation_key(payload, dict(exc.answer or {}, duplicate=True)) is None:
                raise
            answer = dict(exc.answer or {}, duplicate=True)
        other = _continuation_key(payload, answer)
        if other is not None:
            payload["key"] = other  # kept on the queued payload: a retry sends the same key
            message_id = payload.get("message_id")
            if isinstance(message_id, str):
                reported = self._reported.get(message_id) or {}
                self._reported.put(message_id, {**reported, _digest(payload["generation_ids"]): other})
            answer = self._post("/api/v1/outlet", payload, timeout)
        return answer

    def _ask_inlet(self, payload: dict, timeout: float) -> Optional[dict]:
        """Runs in a checker thread: the meter's decision, or None when there is none."""
        try:
            decision = self._post("/api/v1/inlet", payload, timeout)
        except MeterError as exc:
            if exc.status in (401, 403):
                self._outbox.note_refused(exc.status)
            log.warning("owui-meter: %s; no budget decision", exc)
            return None
        self._outbox.wake()  # the meter answers: whatever waited can go now, in the background
        return decision

    # --- hooks --------------------------------------------------------------------------------

    async def inlet(self, body: dict, __user__: Optional[dict] = None, __metadata__: Optional[dict] = None, __event_emitter__=None) -> dict:
        decision = None
        user = {"id": None}
        try:
            user = _user(__user__)
            metadata = __metadata__ if isinstance(__metadata__, dict) else {}
            if self.valves.tag_user and user["id"] and isinstance(body, dict) and not body.get("user"):
                body["user"] = user["id"]
            if not user["id"]:
                return body
            payload = {
                "user": user,
                "model": _model_id(body, metadata),
                "chat_id": metadata.get("chat_id") or None,
                "message_id": metadata.get("message_id"),
                "session_id": metadata.get("session_id"),
                "source": "ui" if metadata.get("chat_id") else "api",
            }
            timeout = self._timeout()
            job = self._checks.submit(payload, time.monotonic() + timeout)
            decision = await _wait(job, timeout)
        except Exception as exc:  # the meter must never break the chat
            log.warning("owui-meter: inlet check skipped: %s", type(exc).__name__)
        if not isinstance(decision, dict) or not isinstance(decision.get("allow"), bool):
            if user.get("id") and getattr(self.valves, "on_meter_down", "allow") == "block":
                raise Exception(DOWN_MESSAGE)
            return body
        if decision["allow"] is False:
            raise Exception(decision.get("message") or "Your usage budget is used up.")
        return body

    def stream(self, event: Any, __user__: Optional[dict] = None, __metadata__: Optional[dict] = None, __model__: Optional[dict] = None) -> Any:
        try:
            if isinstance(event, dict):
                self._stream_dict(event, __metadata__)
            elif isinstance(event, (bytes, bytearray, str)) and isinstance(__metadata__, dict):
                self._stream_bytes(event, __user__, __metadata__, __model__)
        except Exception as exc:  # the meter must never break the chat
            log.warning("owui-meter: stream event not read: %s", type(exc).__name__)
        return event

    def _stream_dict(self, event: dict, metadata: Optional[dict]) -> None:
        """A parsed chunk (web chats; API calls on 0.12): keep its generation id for outlet."""
        gen_id = event.get("id")
        if not (isinstance(gen_id, str) and gen_id.startswith("gen-") and isinstance(metadata, dict)):
            return
        ids = metadata.setdefault(IDS_KEY, [])
        if gen_id in ids or len(ids) >= MAX_IDS:
            return
        ids.append(gen_id)
        # 0.6 runs a web chat's outlet with a fresh __metadata__: link through the message id
        message_id = metadata.get("message_id")
        if isinstance(message_id, str) and message_id:
            self._links.add_id(message_id, gen_id)

    def _stream_bytes(self, event: Any, user: Optional[dict], metadata: dict, model: Optional[dict]) -> None:
        """Raw upstream SSE (API calls on 0.6, which get no outlet): report the answer from here.

        Chunks may end mid-line (or mid-character), so a partial line waits for the next one.
        """
        state = metadata.get(SSE_KEY)
        if not isinstance(state, dict):
            # only JSON-safe values: Open WebUI may serialise __metadata__
            state = metadata[SSE_KEY] = {"partial": "", "ids": [], "usage": None, "model": None, "reported": False}
        if state["reported"]:
            return
        # bytes as latin-1 (one character per byte, so a chunk may end mid-character); each
        # complete line is decoded as UTF-8 below
        text = event.decode("latin-1") if not isinstance(event, str) else event.encode("utf-8").decode("latin-1")
        lines = (state["partial"] + text).split("\n")
        state["partial"] = lines.pop()
        if len(state["partial"]) > MAX_SSE_LINE:
            state["partial"] = ""
        finished = False
        for raw in lines:
            line = raw.encode("latin-1").decode("utf-8", errors="replace").rstrip("\r")
            if not line.startswith("data:"):
                continue  # comments (": OPENROUTER PROCESSING"), blank lines, event: fields
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            if not isinstance(chunk, dict):
                continue
            gen_id = chunk.get("id")
            if isinstance(gen_id, str) and gen_id.startswith("gen-") and gen_id not in state["ids"] and len(state["ids"]) < MAX_IDS:
                state["ids"].append(gen_id)
            if isinstance(chunk.get("model"), str) and not state["model"]:
                state["model"] = chunk["model"]
            if isinstance(chunk.get("usage"), dict):
                state["usage"] = chunk["usage"]
                finished = True  # OpenRouter's usage chunk is the last one with content
        if finished and (state["ids"] or state["usage"]):
            state["reported"] = True
            payload = self._stream_answer(state, user, metadata, model)
            if payload is not None:
                self._outbox.put(payload)

    def _stream_answer(self, state: dict, user: Optional[dict], metadata: dict, model: Optional[dict]) -> Optional[dict]:
        user_info = _user(user)
        if not user_info["id"] and isinstance(metadata.get("user_id"), str):
            user_info["id"] = metadata["user_id"]
        if not user_info["id"]:
            return None
        model_info = model if isinstance(model, dict) else {}
        chat_id = metadata.get("chat_id") or None
        message_id = metadata.get("message_id") or None
        return {
            "key": _answer_key(None, state["ids"]) or str(uuid.uuid4()),
            "user": user_info,
            "model": model_info.get("id") if isinstance(model_info.get("id"), str) else (state["model"] or "unknown"),
            "base_model": _base_model(model_info),
            "chat_id": chat_id,
            "message_id": message_id,
            "session_id": metadata.get("session_id") or None,
            "source": "ui" if chat_id else "api",
            "timestamp": time.time(),
            "usage": state["usage"],
            "generation_ids": list(state["ids"]),
            "language": self.valves.language,
        }

    async def outlet(self, body: dict, __user__: Optional[dict] = None, __metadata__: Optional[dict] = None, __event_emitter__=None) -> dict:
        try:
            notice = None
            payload = self._answer(body, __user__, __metadata__)
            if payload is not None:
                job = self._outbox.put(payload, urgent=True)
                # during a pause no notice can come: do not hold the chat for timeout_seconds
                answer = None if self._outbox.paused() else await _wait(job, self._timeout())
                notice = answer.get("notice") if isinstance(answer, dict) else None
            refused = self._outbox.refused_status()
            if refused is not None and _user(__user__)["role"] == "admin":
                # the admin is the one who can fix the key: say so, whatever the meter said
                notice = (
                    f"owui-meter refuses this plugin's API key (HTTP {refused}): {self._outbox.pending()} "
                    "answers are kept and will be sent once the api_key valve matches the meter's API_KEY."
                )
            if notice and self.valves.show_status and __event_emitter__ is not None:
                await __event_emitter__({"type": "status", "data": {"description": notice, "done": True}})
        except Exception as exc:  # the meter must never break the chat
            log.warning("owui-meter: outlet reporting failed: %s", type(exc).__name__)
        return body

    def _answer(self, body: dict, user: Optional[dict], metadata: Optional[dict]) -> Optional[dict]:
        """The outlet payload for this answer, or None when there is nothing to report."""
        if not isinstance(body, dict):
            return None
        user_info = _user(user)
        if not user_info["id"]:
            return None
        metadata = metadata if isinstance(metadata, dict) else {}
        state = metadata.get(SSE_KEY)
        if isinstance(state, dict) and state.get("reported"):
            return None  # this request's stream hook already reported it
        chat_id = body.get("chat_id") or metadata.get("chat_id") or None
        message_id = metadata.get("message_id") or (body.get("id") if chat_id else None)
        message_id = message_id if isinstance(message_id, str) and message_id else None
        ids = [i for i in metadata.get(IDS_KEY) or [] if isinstance(i, str)]
        linked = self._links.take(message_id) if message_id else None
        if not ids and linked:
            ids = linked  # 0.6: this outlet's __metadata__ is not the one stream saw
        message = _answer_message(body)
        usage = None
        if message is not None:
            usage = message.get("usage") or (message.get("info") or {}).get("usage")
        usage = usage if isinstance(usage, dict) else None
        reported = (self._reported.get(message_id) if message_id else None) or {}
        if not ids and reported:
            # the same answer's outlet again (0.6's /api/chat/completed, 0.12's legacy call) with no
            # new generation: nothing new to bill. Without usage it is not worth a call; with usage,
            # the earlier key lets the meter answer "duplicate" (or refuse a different figure).
            if usage is None:
                return None
            key = list(reported.values())[-1]
        elif message_id and ids:
            # a message's first generation set keeps the message id as its key (what OWUI-Metering
            # and its import use); a later one ("Continue") gets its own key
            digest = _digest(ids)
            key = reported.get(digest) or (f"{message_id[:200]}:{digest}" if reported else message_id)
            self._reported.put(message_id, {**reported, digest: key})
        else:
            if usage is None and not ids and (message is None or not message.get("content")):
                return None  # the upstream call failed: nothing was generated
            key = _answer_key(message_id, ids) or body.get("id") or metadata.get(KEY_KEY)
            if not isinstance(key, str) or not key:
                key = metadata[KEY_KEY] = str(uuid.uuid4())
            if message_id:
                self._reported.put(message_id, {None: key})
        model_info = metadata.get("model") if isinstance(metadata.get("model"), dict) else {}
        timestamp = message.get("timestamp") if message is not None else None
        return {
            "key": key,
            "user": user_info,
            "model": body.get("model") or model_info.get("id") or "unknown",
            "base_model": _base_model(model_info),
            "chat_id": chat_id,
            "message_id": body.get("id"),
            "session_id": body.get("session_id") or metadata.get("session_id"),
            "source": "ui" if chat_id else "api",
            "timestamp": timestamp if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool) else time.time(),
            "usage": usage,
            "generation_ids": ids,
            "language": self.valves.language,
        }


def _digest(gen_ids: list) -> str:
    return hashlib.sha256("\n".join(sorted(set(gen_ids))).encode("utf-8")).hexdigest()[:24]


def _answer_key(message_id: Optional[str], gen_ids: list) -> Optional[str]:
    """The idempotency key of an answer that is not a web chat's first generation set.

    A retry of the same report sends the same key (the meter deduplicates it); "Continue", a
    second completion streamed into the same message, has other generation ids and so its own
    key. Without generation ids (non-streamed calls) the message id is the key. API calls have
    no stable message id (0.12 makes a fresh one at outlet), so their key is the ids' alone.
    """
    if not gen_ids:
        return message_id
    return f"{(message_id or 'gen')[:200]}:{_digest(gen_ids)}"


def _continuation_key(payload: dict, answer: dict) -> Optional[str]:
    """The key to report this answer under when the meter holds another generation set of the
    same message under its key (a "Continue" the plugin could not tell from a first answer:
    Open WebUI restarted, or the first one is older than LINK_TTL_SECONDS); else None."""
    ids = payload.get("generation_ids") or []
    held = answer.get("generation_ids") if answer.get("duplicate") is True else None
    key = payload.get("key")
    if not ids or not isinstance(held, list) or not held or not isinstance(key, str) or ":" in key:
        return None
    if not set(ids).isdisjoint(held):
        return None  # the same generations: a true duplicate
    return f"{key[:200]}:{_digest(ids)}"


def _user(user: Optional[dict]) -> dict:
    user = user if isinstance(user, dict) else {}
    return {name: (str(user[name]) if user.get(name) is not None else None) for name in ("id", "email", "name", "role")}


def _model_id(body: dict, metadata: dict) -> Optional[str]:
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str):
        return model
    info = metadata.get("model")
    return info.get("id") if isinstance(info, dict) else None


def _base_model(model_info: dict) -> Optional[str]:
    info = model_info.get("info") if isinstance(model_info, dict) else None
    base = info.get("base_model_id") if isinstance(info, dict) else None
    return base if isinstance(base, str) else None


def _answer_message(body: dict) -> Optional[dict]:
    """The assistant message this outlet is about: the one whose id is the body's id.

    Earlier assistant turns carry their own usage; counting them again would double-bill.
    """
    messages = body.get("messages")
    messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    answer_id = body.get("id")
    for message in messages:
        if answer_id and message.get("id") == answer_id:
            return message
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return message
    return None
