"""The HTTP server: waitress, made to hold up against clients that keep connections and send nothing.

waitress alone stops accepting at its connection limit (100) and closes a connection only after
``channel_timeout`` (120 s) without a byte, a timer each trickled byte restarts: a hundred idle
sockets lock the plugin out, its inlet times out, and an over-budget user chats on. Here:

- At ``METER_CONNECTION_LIMIT`` a new connection is still accepted, and the connection that has
  waited longest without a complete request is closed to make room. A connection whose request
  is being answered is never chosen, so a plugin call that got in is answered.
- A connection is closed once it has waited ``METER_CLIENT_TIMEOUT_SECONDS`` for its next
  complete request, counted from when it opened or its last request was answered, however many
  bytes it trickles meanwhile.
- Sockets are watched with poll(), not select(), which breaks past file descriptor 1024; the
  open-files limit is raised to what the connection limit needs.
- :meth:`MeterServer.run` returns on SIGTERM (SystemExit) within about a second: listening
  stops at once, requests already received are answered, every other connection is closed.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger("owui_meter")

SHUTDOWN_GRACE_SECONDS = 1.0  # what in-flight requests get to finish after SIGTERM
# With pass-through on, hundreds of stream threads wake at once for each burst of chunks, and a
# plugin request waits its turn for the interpreter behind all of them, every time it needs it:
# with Python's default 5 ms turns, inlet and outlet p99 reach 100-240 ms under 200 streams
# (bench/passthrough.py). 0.2 ms turns bring that to about 7 ms, for 3-9% less plugin throughput
# at saturation, which a small team's meter never reaches.
STREAMING_SWITCH_INTERVAL_S = 0.0002
FILES_HELD_BACK = 64  # file descriptors kept for the database, logs and outgoing requests
LIMIT_LOG_SECONDS = 60  # at most one log line a minute about connections closed to make room


class _JsonError:
    """An error waitress answers itself (before the app), in the API's shape: JSON, and the
    connection closed afterwards (waitress's error task does that)."""

    def __init__(self, error):
        self.code, self.reason, self.body = error.code, error.reason, error.body

    def to_response(self, ident=None):
        body = json.dumps({"error": _MESSAGES.get(self.code, self.body or self.reason), "status": self.code}).encode()
        return f"{self.code} {self.reason}", [("Content-Type", "application/json")], body


_MESSAGES: dict[int, str] = {}  # set by the server: the body limit goes into the 413's message
_LIMITS = {"body": 0, "passthrough": 0}  # set by the server: exact body limits (Content-Length)
CHUNK_FRAMING_ROOM = 8192  # waitress counts a chunked body with its framing; the app counts the bytes


class _Parser(HTTPRequestParser):
    """waitress's parser, stricter: a body of exactly the limit is accepted, a larger one refused
    before any "100 Continue", and a request with both Content-Length and Transfer-Encoding (the
    request-smuggling pair) refused; every refusal answers JSON and closes the connection."""

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            raise ParsingError("a request must not carry both Content-Length and Transfer-Encoding")
        limit = _LIMITS["passthrough"] if _LIMITS["passthrough"] and self.path.startswith("/openrouter/") else _LIMITS["body"]
        if self.content_length > limit:
            self.expect_continue = False  # the 413 goes out instead of inviting the body
            self.content_length = self.adj.max_request_body_size  # waitress's own check refuses it

    def received(self, data):
        consumed = super().received(data)
        if self.error is not None and not isinstance(self.error, _JsonError):
            self.error = _JsonError(self.error)
        return consumed


class _Channel(HTTPChannel):
    """A client connection that knows since when it has been waiting for a complete request."""

    parser_class = _Parser

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waiting_since = self.creation_time

    def service(self):
        try:
            super().service()
        finally:
            self.waiting_since = time.time()  # answered: the wait for the next request starts now

    @property
    def busy(self) -> bool:
        """A request received and not yet fully answered."""
        return bool(self.requests) or bool(self.total_outbufs_len)


class _Listener(TcpWSGIServer):
    """One listening socket: accepts past the limit by closing the longest-waiting idle connection."""

    channel_class = _Channel
    limit_logged = -LIMIT_LOG_SECONDS

    def readable(self):
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return self.accepting  # never stop accepting: handle_accept makes room instead

    def handle_accept(self):
        super().handle_accept()
        if len(self.active_channels) > self.adj.connection_limit:
            self._make_room()

    def _make_room(self) -> None:
        idle = [c for c in self.active_channels.values() if not c.busy and not c.will_close]
        if not idle:
            return  # everyone is being answered: the newest connection waits its turn like them
        oldest = min(idle, key=lambda c: c.waiting_since)
        oldest.handle_close()
        now = time.monotonic()
        if now - self.limit_logged >= LIMIT_LOG_SECONDS:
            self.limit_logged = now
            log.warning("%d connections open (METER_CONNECTION_LIMIT): closing the ones waiting longest without a request", self.adj.connection_limit)

    def maintenance(self, now):
        cutoff = now - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            if channel.requests:
                continue  # being answered
            if channel.total_outbufs_len:
                stalled = channel.last_activity < cutoff  # an answer the client does not read
            else:
                stalled = channel.waiting_since < cutoff
            if stalled:
                channel.will_close = True


def _files_needed(connection_limit: int) -> int:
    """Raise the soft open-files limit as far as the connection limit needs; what it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connection_limit + FILES_HELD_BACK
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
        except (ValueError, OSError):
            pass
    return soft


class MeterServer:
    """The listening sockets (one per address METER_HOST resolves to) and waitress's threads."""

    def __init__(self, app, settings):
        streams = settings.METER_PASSTHROUGH_STREAMS if settings.METER_PASSTHROUGH else 0
        self.switch_interval = STREAMING_SWITCH_INTERVAL_S if streams else None
        limit = settings.METER_CONNECTION_LIMIT
        files = _files_needed(limit)
        if files != resource.RLIM_INFINITY and files - FILES_HELD_BACK < limit:
            log.warning("METER_CONNECTION_LIMIT=%d lowered to %d: the open-files limit is %d", limit, files - FILES_HELD_BACK, files)
            limit = max(10, files - FILES_HELD_BACK)
        _MESSAGES[413] = f"request body too large (limit {settings.METER_MAX_BODY_BYTES} bytes)"
        _LIMITS.update(body=settings.METER_MAX_BODY_BYTES, passthrough=settings.METER_PASSTHROUGH_MAX_BODY_BYTES if streams else 0)
        self.adj = Adjustments(
            host=settings.METER_HOST,
            port=settings.METER_PORT,
            # pass-through streams hold a thread each for minutes: they get their own, so WORKER
            # threads stay free for the plugin and the dashboard
            threads=settings.WORKER + streams,
            # waitress's own ceiling, above ours: the parser above refuses a Content-Length over
            # our limit, the app (MAX_CONTENT_LENGTH) a chunked body over it, both as JSON
            max_request_body_size=max(settings.METER_MAX_BODY_BYTES, settings.METER_PASSTHROUGH_MAX_BODY_BYTES if streams else 0)
            + CHUNK_FRAMING_ROOM,
            ident="owui-meter",
            # behind a trusted proxy its X-Forwarded-* reach the app (ProxyFix in web/login.py)
            clear_untrusted_proxy_headers=not settings.METER_TRUSTED_PROXY,
            connection_limit=limit,
            channel_timeout=settings.METER_CLIENT_TIMEOUT_SECONDS,
            cleanup_interval=1,
            asyncore_use_poll=True,
        )
        self.map: dict = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.set_thread_count(self.adj.threads)
        self.listeners = []
        try:
            for sockinfo in self.adj.listen:
                self.listeners.append(_Listener(app, self.map, dispatcher=self.dispatcher, adj=self.adj, sockinfo=sockinfo))
        except OSError:
            self.close()
            raise
        self.effective_port = self.listeners[0].effective_port

    def run(self) -> None:
        """Serve until SystemExit or KeyboardInterrupt (raised by the signal handlers), then stop."""
        before = sys.getswitchinterval()
        if self.switch_interval is not None:
            sys.setswitchinterval(self.switch_interval)
        try:
            wasyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self.map, use_poll=True)
        except (SystemExit, KeyboardInterrupt):
            self._stop(time.monotonic() + SHUTDOWN_GRACE_SECONDS)
        finally:
            sys.setswitchinterval(before)  # the process's own again (tests run servers in theirs)

    def _stop(self, deadline: float) -> None:
        for listener in self.listeners:
            listener.accepting = False
            wasyncore.dispatcher.close(listener)  # refuse new connections now; the trigger stays
        wasyncore.poll2(0.0, self.map)  # take in what clients already sent
        while time.monotonic() < deadline:
            channels = [c for c in self.map.values() if isinstance(c, _Channel)]
            for channel in channels:
                if not channel.busy:
                    channel.handle_close()  # idle, or its request never arrived whole: close
            if not any(c.busy for c in channels):
                break
            wasyncore.poll2(0.05, self.map)  # let answers in progress go out
        self.close()

    def close(self) -> None:
        self.dispatcher.shutdown(cancel_pending=True, timeout=0.2)
        wasyncore.close_all(self.map)
