"""OpenRouter Broadcast: OTLP trace exports in, every generation billed exactly once.

OpenRouter can push an OpenTelemetry trace of every request on the account ("Broadcast") to the
meter's ``POST /v1/traces`` (the HTTP side is ``web/otlp.py``). This module reads an export and
decides what each generation in it bills.

**Reading.** The body is an OTLP ``ExportTraceServiceRequest``, protobuf or JSON, gzip or not,
decoded with the ``opentelemetry-proto`` package's generated classes. Each request OpenRouter
traces yields, in scope ``openrouter``, one span for the generation (attribute ``span.type =
generation``; ``gen_ai.response.id`` is the ``gen-…`` id, and the resource attribute
``openrouter.trace.id``, the trace's request id, carries the same id) and child spans for each
provider attempt (``provider attempt 1: …``) and for the stream (``generation``), whose ids are
``gen-…:attempt-0`` and ``gen-…:generation``. Only the generation span is read; children, other
scopes and OpenRouter's connection test are accepted and ignored.

Of that span only the attributes in :data:`READ` are read: model, tokens, ``gen_ai.usage.total_cost``,
user, session, app (the API key's name) and provider. Every other attribute, the prompt and the
answer among them (``gen_ai.prompt``, ``gen_ai.completion``, ``span.input``, ``span.output``, …),
and every span event, is dropped while the export is read: none of it reaches the database or
the log.

**Billing, each generation once.** A generation is keyed by its ``gen-…`` id (a span without one
by its trace and span id), so a redelivered export changes nothing. The ``generations`` table
(the resolver's queue) says which answer owns a generation id, whoever recorded it first: the
plugin, the pass-through, or this module.

- The answer is already there (the plugin's outlet came first): the span's cost confirms or
  corrects that answer's, through the resolver's settle and the ledger's one cost-change path,
  exactly as a ``/generation`` lookup would (cost source ``generation``).
- It is not: the generation waits METER_BROADCAST_WINDOW_SECONDS for an answer that names it
  (:meth:`Broadcast.claim` runs before the ledger stores any answer). An answer arriving in time
  is recorded as usual and the waiting generation confirms it. A non-streamed answer carries no
  generation id: it is recognised by user, model, token counts and cost within the window.
- Nobody claimed it in time: it becomes an event of its own (key ``broadcast:<id>``, source
  ``api``, cost confirmed), under ``openrouter.user.id`` when that is a user the meter knows
  (synced from Open WebUI or seen by the plugin), else as spend not attributed to a user
  (:func:`ledger.unattributed_user`): Open WebUI's title and tag calls, other apps on the key.
  Its model and app are kept. An answer that arrives even later and names only generations
  billed this way is a duplicate of their event, so nothing counts twice.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import zlib
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from . import clock
from .errors import BadInput
from .ingest import DEFAULT_MAX_COST_NANO, MAX_FUTURE_MS, MAX_ID, MAX_PAST_MS, MAX_TOKENS
from .ledger import NewEvent, Recorded, UserInfo, claim_billed_alone, is_unattributed, unattributed_user
from .money import NANO, usd_to_nano
from .workers import Job

log = logging.getLogger("owui_meter.otlp")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024  # what a gzip body may expand to (the body itself: METER_MAX_BODY_BYTES)
KEY_PREFIX = "broadcast:"  # the key of an event made from one Broadcast generation
SCOPE = "openrouter"
GEN_ID = re.compile(r"^gen-[A-Za-z0-9_.-]{1,200}$")  # a generation's own id; children add ":attempt-0"
MAX_MODEL = 512
MAX_LABEL = 256

# the span attributes read; every other one is dropped unread
SPAN_TYPE = "span.type"
RESPONSE_ID = "gen_ai.response.id"
MODELS = ("gen_ai.response.model", "gen_ai.request.model")
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
REASONING_TOKENS = "gen_ai.usage.output_tokens.reasoning"
CACHED_TOKENS = "gen_ai.usage.input_tokens.cached"
TOTAL_COST = "gen_ai.usage.total_cost"
USERS = ("openrouter.user.id", "user.id")  # the request's `user` field (the plugin's tag_user valve)
SESSION = "session.id"
APPS = ("trace.metadata.openrouter.api_key_name", "openrouter.api_key_name")
PROVIDERS = ("trace.metadata.openrouter.provider_slug", "openrouter.provider.slug")
READ = frozenset({SPAN_TYPE, RESPONSE_ID, *MODELS, INPUT_TOKENS, OUTPUT_TOKENS, REASONING_TOKENS, CACHED_TOKENS,
                  TOTAL_COST, *USERS, SESSION, *APPS, *PROVIDERS})
TRACE_ID = "openrouter.trace.id"  # resource attribute: the trace's request id (the generation's id)
USAGE = (INPUT_TOKENS, OUTPUT_TOKENS, TOTAL_COST)


# --- reading an export ------------------------------------------------------------------------


def decompress(body: bytes, content_encoding: str | None) -> bytes:
    """The body without its Content-Encoding (identity or gzip), at most MAX_DECOMPRESSED_BYTES."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BadInput("Content-Encoding must be gzip or identity")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error:
        raise BadInput("body is not valid gzip (Content-Encoding: gzip)") from None
    if len(out) > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
        raise BadInput(f"body is larger than {MAX_DECOMPRESSED_BYTES} bytes once decompressed")
    if not inflater.eof:
        raise BadInput("body is a truncated gzip stream")
    return out


def decode(body: bytes, encoding: str) -> ExportTraceServiceRequest:
    """The export in ``body``, encoded as ``encoding`` (PROTOBUF or JSON). An empty body is an
    empty export (OpenRouter's connection test sends one)."""
    export = ExportTraceServiceRequest()
    if encoding == PROTOBUF:
        try:
            export.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError):
            raise BadInput("body is not an OTLP ExportTraceServiceRequest in protobuf") from None
        if body and not export.resource_spans:
            raise BadInput("body is not an OTLP ExportTraceServiceRequest: it has no resource_spans")
        return export
    if not body.strip():
        return export
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadInput("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object (an OTLP ExportTraceServiceRequest)")
    if data and "resourceSpans" not in data and "resource_spans" not in data:
        raise BadInput("body is not an OTLP ExportTraceServiceRequest: it has no resourceSpans")
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, export, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise BadInput(f"body is not an OTLP ExportTraceServiceRequest: {str(exc)[:200]}") from None
    return export


def _items(obj, *names) -> list:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else None
        if isinstance(value, list):
            return value
    return []


def _hex_ids_to_base64(data: dict) -> None:
    """OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping reads base64."""
    for i, resource in enumerate(_items(data, "resourceSpans", "resource_spans")):
        for j, scope in enumerate(_items(resource, "scopeSpans", "scope_spans")):
            for k, span in enumerate(_items(scope, "spans")):
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                _hex_fields(span, where, ("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))
                for n, link in enumerate(_items(span, "links")):
                    _hex_fields(link, f"{where}.links[{n}]", ("traceId", "trace_id"), ("spanId", "span_id"))


def _hex_fields(obj, where: str, *names: tuple[str, str]) -> None:
    if not isinstance(obj, dict):
        return
    for camel, snake in names:
        for name in (camel, snake):
            value = obj.get(name)
            if isinstance(value, str):
                try:
                    obj[name] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise BadInput(f"{where}.{camel} must be a hex string") from None


@dataclass
class TracedGeneration:
    """What one generation span says, and nothing else. ``key`` is its ``gen-…`` id, or
    ``span:<trace>:<span>`` for a span without one."""

    key: str
    gen_id: str | None
    ts: int  # unix ms, when the generation ended
    model: str
    user_id: str | None = None
    session_id: str | None = None
    app: str | None = None
    provider: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost_nano: int | None = None


@dataclass
class Reading:
    generations: list[TracedGeneration] = field(default_factory=list)
    rejected: int = 0  # generation spans refused (a field that cannot be billed)
    reasons: list[str] = field(default_factory=list)


def read(export: ExportTraceServiceRequest, received_ms: int, max_cost_nano: int = DEFAULT_MAX_COST_NANO) -> Reading:
    """The generation spans of an export; the rest is ignored, content is never copied. A cost
    above ``max_cost_nano`` (METER_MAX_ANSWER_USD) refuses the span, as it would an answer."""
    reading = Reading()
    for resource in export.resource_spans:
        trace_id = _attrs(resource.resource.attributes, {TRACE_ID}).get(TRACE_ID)
        for scope in resource.scope_spans:
            if scope.scope.name != SCOPE:
                continue
            for span in scope.spans:
                attrs = _attrs(span.attributes, READ)
                if not _is_generation(span, attrs):
                    continue
                try:
                    generation = _generation(span, attrs, trace_id, received_ms, max_cost_nano)
                except BadInput as exc:
                    reading.rejected += 1
                    reading.reasons.append(str(exc))
                    continue
                if generation is not None:
                    reading.generations.append(generation)
    if reading.rejected:  # the reasons name ids and fields, never content
        log.warning("OpenRouter Broadcast: %d generation span(s) refused; first: %s", reading.rejected, reading.reasons[0])
    return reading


def _attrs(key_values, wanted) -> dict:
    """The scalar values of the wanted attributes; nothing else is looked at."""
    found = {}
    for kv in key_values:
        if kv.key in wanted and kv.key not in found:
            kind = kv.value.WhichOneof("value")
            if kind in ("string_value", "int_value", "double_value", "bool_value"):
                found[kv.key] = getattr(kv.value, kind)
    return found


def _is_generation(span, attrs: dict) -> bool:
    """The generation's own span: ``span.type = generation`` (OpenRouter marks its children
    ``span``); a span that says nothing of its type counts when it has no parent."""
    span_type = attrs.get(SPAN_TYPE)
    if span_type is not None:
        return span_type == "generation"
    return not span.parent_span_id


def _first_text(attrs: dict, names, max_len: int) -> str | None:
    for name in names:
        value = attrs.get(name)
        if isinstance(value, str) and value.strip() and len(value) <= max_len:
            return value
    return None


def _tokens(key: str, attrs: dict, name: str) -> int:
    """A token count: 0 when absent or not a number; refused when no generation can have it
    (negative, not finite, more than ingest's MAX_TOKENS: sums must never overflow)."""
    value = attrs.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not math.isfinite(value) or not 0 <= value <= MAX_TOKENS:
        raise BadInput(f"generation {key}: {name} must be a count from 0 to {MAX_TOKENS:,}")
    return int(value)


def _generation(span, attrs: dict, trace_id, received_ms: int, max_cost_nano: int) -> TracedGeneration | None:
    """One generation span as a TracedGeneration; None when it bills nothing (no usage at all,
    e.g. an upstream error); raises BadInput for a span that cannot be billed."""
    if not any(name in attrs for name in USAGE):
        return None
    gen_id = next((v for v in (attrs.get(RESPONSE_ID), trace_id) if isinstance(v, str) and GEN_ID.match(v)), None)
    if gen_id is not None:
        key = gen_id
    elif span.trace_id and span.span_id:
        key = f"span:{span.trace_id.hex()}:{span.span_id.hex()}"
    else:
        raise BadInput("a generation span has neither a generation id (gen_ai.response.id) nor trace and span ids")
    model = _first_text(attrs, MODELS, MAX_MODEL)
    if model is None:
        raise BadInput(f"generation {key}: gen_ai.response.model is missing")
    cost_nano = None
    if TOTAL_COST in attrs:
        cost = attrs[TOTAL_COST]
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or not 0 <= cost * NANO <= max_cost_nano:
            raise BadInput(f"generation {key}: {TOTAL_COST} must be an amount from 0 to ${max_cost_nano // NANO:,} (METER_MAX_ANSWER_USD)")
        cost_nano = usd_to_nano(cost)
    ended = span.end_time_unix_nano or span.start_time_unix_nano
    ts = ended // 1_000_000
    if not received_ms - MAX_PAST_MS <= ts <= received_ms + MAX_FUTURE_MS:
        ts = received_ms  # no time, or one the meter cannot believe: when it arrived
    return TracedGeneration(
        key=key, gen_id=gen_id, ts=ts, model=model,
        user_id=_first_text(attrs, USERS, MAX_ID), session_id=_first_text(attrs, (SESSION,), MAX_ID),
        app=_first_text(attrs, APPS, MAX_LABEL), provider=_first_text(attrs, PROVIDERS, MAX_LABEL),
        prompt_tokens=_tokens(key, attrs, INPUT_TOKENS), completion_tokens=_tokens(key, attrs, OUTPUT_TOKENS),
        reasoning_tokens=_tokens(key, attrs, REASONING_TOKENS), cached_tokens=_tokens(key, attrs, CACHED_TOKENS),
        cost_nano=cost_nano,
    )


def response(reading: Reading, encoding: str) -> tuple[bytes, str]:
    """The OTLP answer to an export: an ExportTraceServiceResponse in the request's encoding,
    with a partial success when generation spans were refused."""
    answer = ExportTraceServiceResponse()
    if reading.rejected:
        answer.partial_success.rejected_spans = reading.rejected
        answer.partial_success.error_message = f"{reading.rejected} generation span(s) refused; first: {reading.reasons[0]}"[:1000]
    if encoding == PROTOBUF:
        return answer.SerializeToString(), PROTOBUF
    return json_format.MessageToJson(answer, indent=None).encode(), JSON


# --- billing --------------------------------------------------------------------------------------


class Broadcast(Job):
    """The generations Broadcast reported: storing them, the window, and the join with answers."""

    name = "broadcast"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        self.enabled = bool(meter.settings.METER_OTLP_TOKEN)
        self.window_ms = meter.settings.METER_BROADCAST_WINDOW_SECONDS * 1000
        meter.ledger.claims.append(self.claim)

    # --- receiving --------------------------------------------------------------------------------

    def receive(self, generations: list[TracedGeneration]) -> None:
        """Store an export's generations in one transaction. One stored before is a redelivery and
        changes nothing; one an answer already names joins it at once; the rest waits."""
        now = clock.now_ms()
        with self.meter.db.write() as conn:
            for g in generations:
                inserted = conn.execute(
                    """INSERT INTO broadcast_generations (id, gen_id, ts, received, user_id, session_id, model, app,
                           provider, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_nano, due)
                       VALUES (:key, :gen_id, :ts, :now, :user_id, :session_id, :model, :app, :provider, :prompt_tokens,
                           :completion_tokens, :reasoning_tokens, :cached_tokens, :cost_nano, :due)
                       ON CONFLICT (id) DO NOTHING RETURNING *""",
                    vars(g) | {"now": now, "due": now + self.window_ms},
                ).fetchall()
                if inserted:
                    self._settle(conn, inserted[0], final=False)

    # --- the window -------------------------------------------------------------------------------

    def step(self) -> float:
        self.sweep()
        return self.meter.settings.METER_WORKER_POLL_MS / 1000

    def sweep(self) -> int:
        """Settle the waiting generations that an answer now owns or whose window has passed."""
        now = clock.now_ms()
        due = """SELECT b.* FROM broadcast_generations b WHERE b.state = 'waiting'
                 AND (b.due <= :now OR EXISTS (SELECT 1 FROM generations g WHERE g.id = b.gen_id))
                 ORDER BY b.due LIMIT 500"""
        if not self.meter.db.query(due, {"now": now}):
            return 0
        with self.meter.db.write() as conn:
            rows = conn.execute(due, {"now": now}).fetchall()
            for row in rows:
                self._settle(conn, row, final=row["due"] <= now)
        return len(rows)

    def _settle(self, conn, row: dict, *, final: bool) -> None:
        """Join the row to the answer that owns (or matches) it; at the end of its window, make it
        an event of its own."""
        owner = conn.execute("SELECT event_id FROM generations WHERE id = ?", (row["gen_id"],)).fetchall() if row["gen_id"] else []
        event_id = owner[0]["event_id"] if owner else self._matching_answer(conn, row)
        if event_id is not None:
            self._confirm(conn, row, event_id)
            self._mark(conn, row, "joined", event_id)
            return
        if not final:
            return
        user = UserInfo(row["user_id"]) if self._known(conn, row["user_id"]) else unattributed_user()
        recorded = self.meter.ledger.record_in(conn, NewEvent(
            key=KEY_PREFIX + row["id"], user=user, model=row["model"], ts=row["ts"], source="api",
            session_id=row["session_id"], prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
            reasoning_tokens=row["reasoning_tokens"], cached_tokens=row["cached_tokens"],
            inline_cost_nano=row["cost_nano"], generation_ids=[row["gen_id"]] if row["gen_id"] else [],
        ))
        self._confirm(conn, row, recorded.event_id)
        self._mark(conn, row, "joined" if recorded.duplicate else "event", recorded.event_id)

    def _known(self, conn, user_id: str | None) -> bool:
        """A user the meter knows (synced from Open WebUI, or seen by the plugin)."""
        if not user_id or is_unattributed(user_id):
            return False
        return bool(conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchall())

    def _matching_answer(self, conn, row: dict) -> int | None:
        """A non-streamed answer of the plugin (no generation ids) that is this generation: same
        user, token counts, model and cost, within the window, not yet joined to another."""
        if not self._known(conn, row["user_id"]) or not (row["prompt_tokens"] or row["completion_tokens"]):
            return None
        candidates = conn.execute(
            """SELECT e.id, e.ts, e.model, e.base_model, e.inline_cost_nano FROM events e
               WHERE e.user_id = ? AND e.prompt_tokens = ? AND e.completion_tokens = ? AND e.ts BETWEEN ? AND ?
                 AND e.key NOT LIKE 'broadcast:%'
                 AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.event_id = e.id)
                 AND NOT EXISTS (SELECT 1 FROM broadcast_generations b WHERE b.event_id = e.id)""",
            (row["user_id"], row["prompt_tokens"], row["completion_tokens"], row["ts"] - self.window_ms, row["ts"] + self.window_ms),
        ).fetchall()
        found = sorted((e for e in candidates if _same_generation(e, row)), key=lambda e: abs(e["ts"] - row["ts"]))
        return found[0]["id"] if found else None

    def _confirm(self, conn, row: dict, event_id: int) -> None:
        """Give the generation Broadcast's cost, unless a lookup already confirmed it, and settle
        the answer as the resolver does (one cost-change path: the ledger's set_cost)."""
        if row["cost_nano"] is None or not row["gen_id"]:
            return
        if conn.execute("SELECT byok FROM events WHERE id = ?", (event_id,)).fetchall()[0]["byok"]:
            return  # a trace carries no BYOK provider's charge: the /generation lookup confirms it
        conn.execute(
            "INSERT OR IGNORE INTO generations (id, event_id, created, next_try) VALUES (?, ?, ?, ?)",
            (row["gen_id"], event_id, row["received"], row["received"]),
        )
        confirmed = conn.execute(
            """UPDATE generations SET state = 'done', total_cost_nano = ?, last_error = NULL,
                   model = coalesce(model, ?), provider_name = coalesce(provider_name, ?),
                   tokens_prompt = coalesce(tokens_prompt, ?), tokens_completion = coalesce(tokens_completion, ?)
               WHERE id = ? AND state != 'done' RETURNING event_id""",
            (row["cost_nano"], row["model"], row["provider"], row["prompt_tokens"], row["completion_tokens"], row["gen_id"]),
        ).fetchall()
        if confirmed:
            self.meter.resolver.settle(conn, confirmed[0]["event_id"])

    def _mark(self, conn, row: dict, state: str, event_id: int) -> None:
        # the user and session ids live on the event from now on; this row keeps none
        conn.execute("UPDATE broadcast_generations SET state = ?, event_id = ?, user_id = NULL, session_id = NULL WHERE id = ?",
                     (state, event_id, row["id"]))

    # --- the join (the ledger calls this before it stores a new answer) -------------------------

    def claim(self, conn, event: NewEvent) -> Recorded | None:
        """The event that already bills this answer, or None to record it (after narrowing it to
        what Broadcast has not billed on its own, or giving it the generation it matches)."""
        if event.key.startswith(KEY_PREFIX):
            return None
        if event.generation_ids:
            return claim_billed_alone(conn, event, KEY_PREFIX)
        if not self.enabled:
            return None  # no traces arrive to recognise an answer by (the plugin path stays lean)
        return self._claim_by_fingerprint(conn, event)

    def _claim_by_fingerprint(self, conn, event: NewEvent) -> Recorded | None:
        """A non-streamed answer (no generation ids) arriving after its generation was billed on
        its own is a duplicate of that event. (One arriving within the window is recorded, and the
        waiting generation joins it by the same fingerprint when it settles.)"""
        if not (event.prompt_tokens or event.completion_tokens):
            return None  # nothing to recognise it by
        rows = conn.execute(
            """SELECT b.ts, b.model, b.cost_nano, e.* FROM broadcast_generations b JOIN events e ON e.id = b.event_id
               WHERE b.state = 'event' AND b.ts BETWEEN ? AND ? AND b.prompt_tokens = ? AND b.completion_tokens = ?
                 AND e.user_id = ? AND e.key = 'broadcast:' || b.id""",
            (event.ts - self.window_ms, event.ts + self.window_ms, event.prompt_tokens, event.completion_tokens, event.user.id),
        ).fetchall()
        answer = {"model": event.model, "base_model": event.base_model, "inline_cost_nano": event.inline_cost_nano}
        found = sorted((r for r in rows if _same_generation(answer, r)), key=lambda r: abs(r["ts"] - event.ts))
        if not found:
            return None
        billed = conn.execute("SELECT * FROM events WHERE id = ?", (found[0]["id"],)).fetchall()[0]
        return Recorded(billed["id"], True, billed)

    # --- reporting --------------------------------------------------------------------------------

    def usage(self, start: int | None, end: int | None) -> tuple[list[dict], dict]:
        """What Broadcast reported per app (API key name) and model between ``start`` and ``end``
        (unix ms, end exclusive): generations and OpenRouter's cost, and the part not attributed
        to a user."""
        where, params = ["1 = 1"], {}
        if start is not None:
            where.append("b.ts >= :start")
            params["start"] = start
        if end is not None:
            where.append("b.ts < :end")
            params["end"] = end
        sums = """count(*) AS generations, coalesce(sum(b.cost_nano), 0) AS cost_nano,
                  coalesce(sum(e.user_id = :nobody), 0) AS unattributed_generations,
                  coalesce(sum(CASE WHEN e.user_id = :nobody THEN b.cost_nano ELSE 0 END), 0) AS unattributed_cost_nano"""
        params["nobody"] = unattributed_user().id
        sql = f"FROM broadcast_generations b LEFT JOIN events e ON e.id = b.event_id WHERE {' AND '.join(where)}"
        rows = self.meter.db.query(
            f"SELECT b.app, b.model, {sums} {sql} GROUP BY b.app, b.model ORDER BY cost_nano DESC, b.app, b.model", params)
        return rows, self.meter.db.query_one(f"SELECT {sums} {sql}", params)


    def health(self) -> dict:
        counts = {r["state"]: r["n"] for r in self.meter.db.query("SELECT state, count(*) AS n FROM broadcast_generations GROUP BY state")}
        last = self.meter.db.query_one("SELECT max(received) AS at FROM broadcast_generations")["at"]
        return {
            "broadcast": {
                "enabled": self.enabled,
                "waiting": counts.get("waiting", 0),
                "joined": counts.get("joined", 0),
                "own_events": counts.get("event", 0),
                "last_received": last,
            }
        }


def _same_generation(answer, generation) -> bool:
    """An answer and a traced generation with equal tokens are the same generation when the
    models agree (an Open WebUI model id may carry a connection prefix, "prefix.openai/gpt-4o")
    and the costs do, where both are known."""
    cost = answer["inline_cost_nano"]
    if cost is not None and generation["cost_nano"] is not None and cost != generation["cost_nano"]:
        return False
    models = {m for m in (answer["model"], answer["base_model"]) if m}
    return any(m == generation["model"] or m.endswith("." + generation["model"]) for m in models)
