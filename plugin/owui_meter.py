"""
title: owui-meter
author: owui-meter
version: 0.1.0
required_open_webui_version: 0.6.0
description: Reports every answer's usage to owui-meter, shows its cost, and stops over-budget users.
licence: MIT
"""

# One file, pasted into Open WebUI (Admin -> Functions), enabled globally.
#
# inlet  asks the meter whether the user may chat (raises only when the meter says no);
# stream collects OpenRouter generation ids ("gen-...") of the streamed chunks;
# outlet sends the answer's usage and those ids, and shows the meter's one-line notice.
# If the meter is down or slow, the chat goes on: answers wait in a bounded in-memory queue and
# are sent with the next successful call. The standard library does the HTTP, in a worker
# thread, so Open WebUI's event loop never waits longer than timeout_seconds.

import asyncio
import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Optional

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

IDS_KEY = "_owui_meter_generation_ids"  # on __metadata__: shared by inlet, stream and outlet
KEY_KEY = "_owui_meter_key"
QUEUE_LIMIT = 1000
FLUSH_PER_CALL = 50


class MeterError(Exception):
    """The meter could not be reached or answered with an error."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


class Filter:
    class Valves(BaseModel):
        meter_url: str = Field(default="http://owui-meter:45000", description="Where owui-meter listens.")
        api_key: str = Field(default="", description="The meter's API_KEY.")
        timeout_seconds: float = Field(default=3, description="Longest wait for the meter on any call.")
        show_status: bool = Field(default=True, description="Show each answer's cost above it.")
        priority: int = Field(default=0, description="Filter order in Open WebUI.")
        tag_user: bool = Field(default=True, description="Set the request's 'user' field to the Open WebUI user id, so OpenRouter's records name the user.")
        language: str = Field(default="en", description="Language of the line shown to users: en, de, fr, es, zh.")

    def __init__(self):
        self.valves = self.Valves()
        self._queue = collections.deque(maxlen=QUEUE_LIMIT)
        self._queue_lock = threading.Lock()

    # --- HTTP ---------------------------------------------------------------------------------

    def _post(self, path: str, payload: dict) -> dict:
        """POST JSON to the meter; the parsed answer. Raises MeterError on any failure."""
        url = self.valves.meter_url.rstrip("/") + path
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.valves.api_key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=float(self.valves.timeout_seconds)) as response:
                return json.loads(response.read().decode("utf-8") or "{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read().decode("utf-8")).get("error")
            except Exception:
                detail = None
            raise MeterError(f"meter answered {exc.code} on {path}: {detail or exc.reason}", exc.code) from None
        except Exception as exc:  # connection refused, timeout, bad JSON: all mean "not now"
            raise MeterError(f"meter unreachable on {path}: {type(exc).__name__}") from None

    async def _call(self, func: Callable, *args) -> Any:
        """Run blocking work in a thread; Open WebUI waits at most timeout_seconds for it.

        On a timeout the thread finishes on its own (its HTTP calls have the same timeout) and
        queues what it could not send.
        """
        work = asyncio.get_running_loop().run_in_executor(None, func, *args)
        return await asyncio.wait_for(work, timeout=float(self.valves.timeout_seconds))

    # --- the queue of unsent answers -----------------------------------------------------------

    def _keep(self, payload: dict) -> None:
        with self._queue_lock:
            if len(self._queue) == self._queue.maxlen:
                log.warning("owui-meter: queue full, dropping the oldest unsent answer")
            self._queue.append(payload)

    def _flush(self) -> bool:
        """Send queued answers, oldest first. False when the meter is still unreachable."""
        for _ in range(FLUSH_PER_CALL):
            with self._queue_lock:
                if not self._queue:
                    return True
                payload = self._queue[0]
            try:
                self._post("/api/v1/outlet", payload)
            except MeterError as exc:
                if exc.status is None or exc.status == 429 or exc.status >= 500:
                    return False  # try again with a later call
                log.warning("owui-meter: dropping an answer the meter refused: %s", exc)
            with self._queue_lock:
                if self._queue and self._queue[0] is payload:
                    self._queue.popleft()
        return True

    def _send_answer(self, payload: dict) -> Optional[dict]:
        """Queued answers first (keeps their order), then this one; queued if it cannot go now."""
        if not self._flush():
            self._keep(payload)
            return None
        try:
            return self._post("/api/v1/outlet", payload)
        except MeterError as exc:
            if exc.status is None or exc.status == 429 or exc.status >= 500:
                self._keep(payload)
            else:
                log.warning("owui-meter: the meter refused an answer: %s", exc)
            return None

    # --- hooks --------------------------------------------------------------------------------

    async def inlet(self, body: dict, __user__: Optional[dict] = None, __metadata__: Optional[dict] = None, __event_emitter__=None) -> dict:
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
            decision = await self._call(self._inlet_call, payload)
        except Exception as exc:  # the meter must never break the chat
            log.warning("owui-meter: inlet check skipped: %s", exc)
            return body
        if decision is not None and decision.get("allow") is False:
            raise Exception(decision.get("message") or "Your usage budget is used up.")
        return body

    def _inlet_call(self, payload: dict) -> Optional[dict]:
        try:
            decision = self._post("/api/v1/inlet", payload)
        except MeterError as exc:
            log.warning("owui-meter: %s; allowing the chat", exc)
            return None
        self._flush()  # the meter is back: send what waited
        return decision

    def stream(self, event: dict, __metadata__: Optional[dict] = None) -> dict:
        try:
            gen_id = event.get("id") if isinstance(event, dict) else None
            if isinstance(__metadata__, dict) and isinstance(gen_id, str) and gen_id.startswith("gen-"):
                ids = __metadata__.setdefault(IDS_KEY, [])
                if gen_id not in ids:
                    ids.append(gen_id)
        except Exception:
            pass
        return event

    async def outlet(self, body: dict, __user__: Optional[dict] = None, __metadata__: Optional[dict] = None, __event_emitter__=None) -> dict:
        try:
            payload = self._answer(body, __user__, __metadata__)
            if payload is None:
                return body
            answer = await self._call(self._send_answer, payload)
            notice = answer.get("notice") if isinstance(answer, dict) else None
            if notice and self.valves.show_status and __event_emitter__ is not None:
                await __event_emitter__({"type": "status", "data": {"description": notice, "done": True}})
        except Exception as exc:  # the meter must never break the chat
            log.warning("owui-meter: outlet reporting failed: %s", exc)
        return body

    def _answer(self, body: dict, user: Optional[dict], metadata: Optional[dict]) -> Optional[dict]:
        """The outlet payload for this answer, or None when there is nothing to report."""
        if not isinstance(body, dict):
            return None
        user_info = _user(user)
        if not user_info["id"]:
            return None
        metadata = metadata if isinstance(metadata, dict) else {}
        message = _answer_message(body)
        key = body.get("id") or metadata.get(KEY_KEY)
        if not key:
            key = metadata[KEY_KEY] = str(uuid.uuid4())
        usage = None
        if message is not None:
            usage = message.get("usage") or (message.get("info") or {}).get("usage")
        model_info = metadata.get("model") if isinstance(metadata.get("model"), dict) else {}
        base_model = (model_info.get("info") or {}).get("base_model_id") if isinstance(model_info.get("info"), dict) else None
        timestamp = message.get("timestamp") if message is not None else None
        return {
            "key": key,
            "user": user_info,
            "model": body.get("model") or model_info.get("id") or "unknown",
            "base_model": base_model,
            "chat_id": body.get("chat_id") or metadata.get("chat_id") or None,
            "message_id": body.get("id"),
            "session_id": body.get("session_id") or metadata.get("session_id"),
            "source": "ui" if (body.get("chat_id") or metadata.get("chat_id")) else "api",
            "timestamp": timestamp if isinstance(timestamp, (int, float)) else time.time(),
            "usage": usage if isinstance(usage, dict) else None,
            "generation_ids": list(metadata.get(IDS_KEY) or []),
            "language": self.valves.language,
        }


def _user(user: Optional[dict]) -> dict:
    user = user if isinstance(user, dict) else {}
    return {name: (str(user[name]) if user.get(name) is not None else None) for name in ("id", "email", "name", "role")}


def _model_id(body: dict, metadata: dict) -> Optional[str]:
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str):
        return model
    info = metadata.get("model")
    return info.get("id") if isinstance(info, dict) else None


def _answer_message(body: dict) -> Optional[dict]:
    """The assistant message this outlet is about: the one whose id is the body's id.

    Earlier assistant turns carry their own usage; counting them again would double-bill.
    """
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    answer_id = body.get("id")
    for message in messages:
        if answer_id and message.get("id") == answer_id:
            return message
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return message
    return None
