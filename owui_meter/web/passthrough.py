"""``/openrouter/v1/*`` (METER_PASSTHROUGH=true): Open WebUI's OpenRouter connection, through the meter.

Each request goes to ``OPENROUTER_BASE_URL`` + the rest of the path, with the caller's own
``Authorization`` (the meter adds no key and contacts no other host). Its answer comes back as
it arrives, status, headers and bytes as OpenRouter sent them; a watcher reads the bytes on the
way for the generation's id, model and usage, and hands them to :mod:`owui_meter.passthrough`.

Who is asking comes from the headers Open WebUI forwards (``ENABLE_FORWARD_USER_INFO_HEADERS``):
``X-OpenWebUI-User-Id/-Email/-Name/-Role`` and ``X-OpenWebUI-Chat-Id``, or, with
``METER_FORWARD_JWT_SECRET`` set, only the signed ``X-OpenWebUI-User-Jwt``. With that secret a
request that could make a generation (anything but GET) is refused 401 without a valid token and
never forwarded; a GET (the model list, which Open WebUI fetches without a user) goes through
without one, since it costs nothing and the meter adds no credentials. Those headers are for the
meter: they are not passed on to OpenRouter.

Errors the meter makes itself use OpenAI's shape, so Open WebUI shows their message: 402 for a
user over budget (before anything is forwarded), 401 for a missing or bad JWT, 502 when
OpenRouter cannot be reached, 503 when METER_PASSTHROUGH_STREAMS requests are already in flight.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse

import jwt
import urllib3
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import clock
from ..ledger import UserInfo
from ..passthrough import Capture, Watcher, is_task_prompt
from .access import access
from .params import meter

log = logging.getLogger("owui_meter.passthrough")

bp = Blueprint("passthrough", __name__, url_prefix="/openrouter/v1")

PREFIX = "/openrouter/v1/"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# never forwarded either way: about one connection, not the message (RFC 9110 7.6.1), or recomputed
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
USER_HEADERS = "x-openwebui-"  # what Open WebUI tells the meter; OpenRouter has no use for it
CHUNK = 65536
MAX_HEADER = 256
JWT_LEEWAY_S = 30  # clocks of Open WebUI and the meter may differ a little


class Refused(Exception):
    """The request is refused with ``status`` before anything is forwarded."""

    def __init__(self, status: int, message: str, kind: str):
        super().__init__(message)
        self.status = status
        self.kind = kind


def openai_error(status: int, message: str, kind: str):
    """An error in OpenAI's shape (what Open WebUI shows the user)."""
    response = jsonify({"error": {"message": message, "type": kind, "param": None, "code": status}})
    response.status_code = status
    return response


class Forwarder:
    """The app's connection pool to OpenRouter and its limit of requests in flight.

    urllib3 rather than requests: a third of a millisecond less per request (no cookie jar, hooks
    or environment merging), and no proxy taken from the environment: only OPENROUTER_BASE_URL.
    """

    def __init__(self, settings):
        parsed = urllib.parse.urlsplit(settings.OPENROUTER_BASE_URL)
        self.base_path = parsed.path.rstrip("/")
        self.slots = threading.BoundedSemaphore(settings.METER_PASSTHROUGH_STREAMS)
        self.limit = settings.METER_PASSTHROUGH_STREAMS
        self.pool = urllib3.connection_from_url(
            f"{parsed.scheme}://{parsed.netloc}", maxsize=settings.METER_PASSTHROUGH_STREAMS, block=False, retries=False,
            timeout=urllib3.Timeout(connect=settings.OPENROUTER_TIMEOUT_SECONDS, read=settings.METER_PASSTHROUGH_TIMEOUT_SECONDS),
        )


def init_app(app, meter) -> None:
    app.extensions["passthrough"] = Forwarder(meter.settings)
    app.register_blueprint(bp)


# --- who is asking ----------------------------------------------------------------------------------


def _header(name: str) -> str | None:
    value = request.headers.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > MAX_HEADER:
        raise Refused(400, f"{name} must be at most {MAX_HEADER} characters", "invalid_request_error")
    return value.strip()


def _claim(claims: dict, name: str) -> str | None:
    value = claims.get(name)
    return value[:MAX_HEADER] if isinstance(value, str) and value else None


def identify(secret: str | None, *, required: bool) -> UserInfo | None:
    """The Open WebUI user this request is for, or None when it names none (and need not)."""
    if secret:
        token = request.headers.get("X-OpenWebUI-User-Jwt")
        if not token:
            if required:
                raise Refused(401, "X-OpenWebUI-User-Jwt is missing: set FORWARD_USER_INFO_HEADER_JWT_SECRET in Open WebUI "
                                   "to the meter's METER_FORWARD_JWT_SECRET", "authentication_error")
            return None
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], issuer="open-webui",
                                options={"require": ["sub", "exp", "iss"], "verify_exp": False, "verify_iat": False})
        except jwt.PyJWTError as exc:
            raise Refused(401, f"X-OpenWebUI-User-Jwt is not valid ({type(exc).__name__})", "authentication_error") from None
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, (int, float)) or exp + JWT_LEEWAY_S <= clock.now():
            raise Refused(401, "X-OpenWebUI-User-Jwt has expired", "authentication_error")
        user_id = _claim(claims, "sub")
        if user_id is None:
            raise Refused(401, "X-OpenWebUI-User-Jwt names no user (sub)", "authentication_error")
        return UserInfo(user_id, _claim(claims, "email"), _claim(claims, "name"), _claim(claims, "role"))
    user_id = _header("X-OpenWebUI-User-Id")
    if user_id is None:
        return None
    name = _header("X-OpenWebUI-User-Name")
    # Open WebUI percent-encodes the name (HTTP headers are Latin-1)
    return UserInfo(user_id, _header("X-OpenWebUI-User-Email"), urllib.parse.unquote(name) if name else None,
                    _header("X-OpenWebUI-User-Role"))


def _over_budget(m, user: UserInfo, chat_id: str | None) -> str | None:
    """The block message when this user may not chat now; None to go ahead (also when the
    check itself fails: the meter's trouble must not stop a chat)."""
    try:
        allow, message = m.inlet_policy({"user": user, "model": None, "chat_id": chat_id, "message_id": None,
                                         "session_id": None, "source": "ui" if chat_id else "api"})
    except Exception:
        log.exception("pass-through: budget check failed; the request goes ahead")
        return None
    return None if allow else (message or "You are over budget.")


# --- the route --------------------------------------------------------------------------------------


@bp.route("/<path:rest>", methods=METHODS)
@access("passthrough")
def forward(rest: str):
    """Forward one request to OpenRouter and its answer back, recording the generation it made."""
    m = meter()
    settings = m.settings
    try:
        if any(part in (".", "..") for part in rest.split("/")):
            raise Refused(400, "path must not contain '.' or '..' segments", "invalid_request_error")
        makes = request.method not in ("GET", "HEAD")  # reads cost nothing and need no user
        user = identify(settings.METER_FORWARD_JWT_SECRET, required=makes)
        chat_id = _header("X-OpenWebUI-Chat-Id")
        if makes and user is None:
            m.passthrough.count("unidentified")
        if makes and user is not None:
            blocked = _over_budget(m, user, chat_id)
            if blocked:
                raise Refused(402, blocked, "insufficient_quota")
        request.max_content_length = settings.METER_PASSTHROUGH_MAX_BODY_BYTES
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raise Refused(413, f"request body too large (limit {settings.METER_PASSTHROUGH_MAX_BODY_BYTES} bytes)",
                          "invalid_request_error") from None
    except Refused as exc:
        return openai_error(exc.status, str(exc), exc.kind)

    forwarder: Forwarder = current_app.extensions["passthrough"]
    if not forwarder.slots.acquire(blocking=False):
        return openai_error(503, f"the meter is already passing {forwarder.limit} requests through; try again shortly", "server_error")
    m.passthrough.count("in_flight")
    released = False
    try:
        path = forwarder.base_path + "/" + urllib.parse.quote(rest, safe="/:@!$&'()*+,;=-._~")
        if request.query_string:
            path += "?" + request.query_string.decode("latin-1")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP and not k.lower().startswith(USER_HEADERS)}
        headers["Accept-Encoding"] = "identity"  # plain bytes to watch; the hop to Open WebUI is local
        try:
            upstream = forwarder.pool.urlopen(request.method, path, body=body or None, headers=headers,
                                              preload_content=False, decode_content=False, redirect=False, assert_same_host=True)
        except urllib3.exceptions.HTTPError as exc:
            log.warning("pass-through: OpenRouter unreachable: %s", type(exc).__name__)
            return openai_error(502, f"OpenRouter could not be reached through the meter ({type(exc).__name__})", "upstream_error")
        kind = upstream.headers.get("Content-Type", "")
        watcher = None
        if makes and upstream.status == 200 and ("text/event-stream" in kind or "json" in kind):
            watcher = Watcher(streamed="text/event-stream" in kind)
        # whether it was a task prompt is read when the answer has gone out, off the first byte's path
        relay = Relay(upstream, watcher, forwarder, m.passthrough, user, chat_id, body if chat_id and watcher else None)
        released = True  # the relay releases the slot when the answer has gone out (or the client left)
        response = Response(relay, status=upstream.status,
                            headers=[(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP or k.lower() == "content-length"])
        return response
    finally:
        if not released:
            m.passthrough.count("in_flight", -1)
            forwarder.slots.release()


class Relay:
    """The answer's bytes as they arrive; on close, the record of what they carried.

    A class rather than a generator: the server calls ``close()`` even when the client left
    before the first byte, so the upstream connection and the slot are always given back.
    """

    def __init__(self, upstream, watcher: Watcher | None, forwarder: Forwarder, passthrough, user, chat_id, request_body: bytes | None):
        self.upstream = upstream
        self.watcher = watcher
        self.forwarder = forwarder
        self.passthrough = passthrough
        self.user = user
        self.chat_id = chat_id
        self.request_body = request_body  # kept only to tell a task prompt, never stored
        self._closed = False
        self._complete = False  # read to its end: the connection can serve another request

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            chunk = self.upstream.read1(CHUNK, decode_content=False)
        except Exception as exc:  # OpenRouter went away or stalled mid-answer: end it here
            log.warning("pass-through: answer cut off: %s", type(exc).__name__)
            chunk = b""
        if not chunk:
            self._complete = True
            self.close()
            raise StopIteration
        if self.watcher is not None:
            try:
                self.watcher.feed(chunk)
            except Exception:  # reading along must never break the stream
                log.exception("pass-through: could not read the answer along; it goes on unrecorded")
                self.watcher = None
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if not self._complete:
                self.upstream.close()  # the client left mid-answer: this connection is done
            self.upstream.release_conn()
            self._record()
        finally:  # recorded before the slot is given back: in_flight 0 means every record is buffered
            self.passthrough.count("in_flight", -1)
            self.forwarder.slots.release()

    def _record(self) -> None:
        if self.watcher is None:
            return
        try:
            gen_id, model, usage = self.watcher.finish()
            if gen_id is None:
                return
            self.passthrough.capture(Capture(gen_id=gen_id, ts=clock.now_ms(), user=self.user, chat_id=self.chat_id,
                                             model=model or "unknown", streamed=self.watcher.streamed,
                                             task=self.request_body is not None and is_task_prompt(self.request_body), usage=usage))
        except Exception:
            log.exception("pass-through: a generation could not be recorded")
