"""OpenRouter Broadcast on POST /v1/traces: OTLP exports built with opentelemetry-proto, in
protobuf and in OTLP/JSON, shaped like OpenRouter's own (a generation span and its child spans
per provider attempt), billed once each, joined with the plugin's answers, content never stored.
"""

import base64
import gzip
import json

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from conftest import ADA, API_KEY, BOB, assert_invariants, make_settings, outlet_body
from owui_meter import clock, create_app, settings
from owui_meter.ledger import UNATTRIBUTED, UserInfo
from owui_meter.settings import SettingsError

TOKEN = "otlp-token-0123456789abcdef"
T0 = 1_796_000_000.0  # 2026-11-30, the tests' now
WINDOW = 120
PROTOBUF, JSON = "application/x-protobuf", "application/json"
ENCODINGS = [PROTOBUF, JSON]
# text that must never reach the database: prompts, answers, tool output, exception messages
SECRETS = {
    "gen_ai.prompt": "PROMPT-SECRET-7f3a",
    "gen_ai.completion": "ANSWER-SECRET-91bc",
    "span.input": "SPANINPUT-SECRET-55de",
    "span.output": "SPANOUTPUT-SECRET-0a12",
    "trace.input": "TRACEINPUT-SECRET-c4d4",
    "trace.output": "TRACEOUTPUT-SECRET-e8f0",
    "gen_ai.input.messages": "INMESSAGES-SECRET-3b3b",
    "gen_ai.output.messages": "OUTMESSAGES-SECRET-6c6c",
}
EXCEPTION_SECRET = "EXCEPTION-SECRET-aa77"


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def now(monkeypatch):
    moment = Clock()
    monkeypatch.setattr(clock, "time_fn", moment)
    return moment


@pytest.fixture
def app(data_dir, now, request):
    app = create_app(make_settings(data_dir, METER_OTLP_TOKEN=TOKEN, METER_BROADCAST_WINDOW_SECONDS=WINDOW))
    app.config["TESTING"] = True
    yield app
    try:
        if not getattr(request.node, "failed_call", False):
            assert_invariants(app.config["METER"])  # every derived figure still adds up (owui-meter check)
    finally:
        app.config["METER"].stop()


# --- building exports with the library ------------------------------------------------------------


def kv(key, value) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = AnyValue(double_value=value)
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def generation(gen_id, *, user=None, model="openai/gpt-4o-mini", prompt=10, completion=20, cost=0.0000123, reasoning=0,
               cached=0, app="owui key", secrets=False, children=True, ended=None, extra=()):
    """One request as OpenRouter traces it: (resource attributes, spans) with the generation span
    last and, before it with ``children``, a provider attempt and the stream span (given usage figures too,
    so counting a child would show)."""
    trace_id = bytes.fromhex(f"{abs(hash(gen_id)) % (1 << 64):016x}" * 2)
    root_id = trace_id[:8]
    ended_ns = int((ended if ended is not None else T0 - 5) * 1e9)
    attrs = [kv("trace.name", "OpenRouter Request"), kv("span.type", "generation"), kv("gen_ai.operation.name", "chat"),
             kv("gen_ai.request.model", model), kv("gen_ai.response.model", model), kv("gen_ai.response.id", gen_id),
             kv("gen_ai.usage.input_tokens", prompt), kv("gen_ai.usage.output_tokens", completion),
             kv("gen_ai.usage.output_tokens.reasoning", reasoning), kv("gen_ai.usage.input_tokens.cached", cached),
             kv("trace.metadata.openrouter.api_key_name", app), kv("trace.metadata.openrouter.provider_slug", "openai")]
    if cost is not None:
        attrs.append(kv("gen_ai.usage.total_cost", cost))
    if user is not None:
        attrs.append(kv("openrouter.user.id", user))
    if secrets:
        attrs += [kv(key, text) for key, text in SECRETS.items()]
    attrs += [kv(k, v) for k, v in extra]
    root = Span(trace_id=trace_id, span_id=root_id, name="LLM Generation", kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=ended_ns - 2_000_000_000, end_time_unix_nano=ended_ns, attributes=attrs)
    if secrets:
        root.events.add(time_unix_nano=ended_ns, name="exception", attributes=[kv("exception.message", EXCEPTION_SECRET)])
    spans = []  # children first: an export need not keep any order
    if children:
        for n, (name, suffix) in enumerate((("provider attempt 1: OpenAI", "attempt-0"), ("generation", "generation"))):
            spans.append(Span(trace_id=trace_id, span_id=bytes([n + 1]) * 8, parent_span_id=root_id, name=name,
                              kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=ended_ns - 1_000_000_000, end_time_unix_nano=ended_ns,
                              attributes=[kv("span.type", "span"), kv("gen_ai.response.id", f"{gen_id}:{suffix}"),
                                          kv("gen_ai.response.model", model), kv("gen_ai.usage.input_tokens", prompt),
                                          kv("gen_ai.usage.output_tokens", completion), kv("gen_ai.usage.total_cost", 0.5)]))
    spans.append(root)
    return [kv("service.name", "openrouter"), kv("openrouter.trace.id", gen_id)], spans


def export(*requests) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    for resource_attrs, spans in requests:
        resource = message.resource_spans.add()
        resource.resource.attributes.extend(resource_attrs)
        scope = resource.scope_spans.add()
        scope.scope.name = "openrouter"
        scope.spans.extend(spans)
    return message


def otlp_json(message) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping, but trace and span ids in hex (not base64)."""
    data = json_format.MessageToDict(message)
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return json.dumps(data).encode()


def encode(message, encoding) -> bytes:
    return message.SerializeToString() if encoding == PROTOBUF else otlp_json(message)


def post(client, body, encoding=JSON, token=TOKEN, **headers):
    headers = {"Content-Type": encoding, **headers}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/v1/traces", data=body, headers=headers)


def send(client, *requests, encoding=JSON, **headers):
    response = post(client, encode(export(*requests), encoding), encoding, **headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return answer(response, encoding)


def answer(response, encoding) -> ExportTraceServiceResponse:
    assert response.mimetype == encoding
    parsed = ExportTraceServiceResponse()
    if encoding == PROTOBUF:
        parsed.ParseFromString(response.data)
    else:
        json_format.Parse(response.data, parsed)
    return parsed


def events(meter):
    return meter.db.query("SELECT * FROM events ORDER BY id")


def window_passes(meter, now):
    now.now += WINDOW + 1
    meter.broadcast.sweep()


def plugin_answer(client, key="msg-1", user=ADA, cost=0.00001, **extra):
    extra.setdefault("timestamp", T0 - 4)
    response = client.post("/api/v1/outlet", json=outlet_body(key=key, user=user, cost=cost, **extra),
                           headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def ada(meter):
    """Ada is a user the meter knows (the plugin's inlet saw her)."""
    meter.ledger.see_user(UserInfo(**ADA))


# --- one generation, once ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_only_the_generation_span_is_billed_not_its_provider_attempts(client, meter, now, ada, encoding):
    reply = send(client, generation("gen-one-1", user=ADA["id"], prompt=1200, completion=340, cost=0.013542, reasoning=40, cached=1024,
                                    extra=[("session.id", "session-77")]), encoding=encoding)
    assert not reply.HasField("partial_success")
    assert events(meter) == []  # it waits for the plugin's answer first
    window_passes(meter, now)
    [event] = events(meter)
    assert (event["key"], event["user_id"], event["model"], event["source"]) == ("broadcast:gen-one-1", ADA["id"], "openai/gpt-4o-mini", "api")
    assert (event["prompt_tokens"], event["completion_tokens"], event["reasoning_tokens"], event["cached_tokens"]) == (1200, 340, 40, 1024)
    assert (event["cost_nano"], event["cost_source"], event["inline_cost_nano"]) == (13_542_000, "generation", 13_542_000)
    assert (event["ts"], event["session_id"]) == (int((T0 - 5) * 1000), "session-77")
    daily = meter.db.query("SELECT answers, cost_nano, confirmed_cost_nano FROM usage_daily")
    assert daily == [{"answers": 1, "cost_nano": 13_542_000, "confirmed_cost_nano": 13_542_000}]
    row = meter.db.query_one("SELECT state, app, provider, model, event_id, user_id, session_id FROM broadcast_generations")
    assert row == {"state": "event", "app": "owui key", "provider": "openai", "model": "openai/gpt-4o-mini",
                   "event_id": event["id"], "user_id": None, "session_id": None}  # they live on the event
    spend = meter.db.query_one("SELECT cost_nano FROM spend WHERE user_id = ? AND period = 'month'", (ADA["id"],))
    assert spend["cost_nano"] == 13_542_000  # her budgets count it


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_redelivery_changes_nothing(client, meter, now, ada, encoding):
    request = generation("gen-again-1", user=ADA["id"], cost=0.002)
    send(client, request, encoding=encoding)
    send(client, request, encoding=encoding)
    window_passes(meter, now)
    send(client, request, encoding=encoding)  # after it was billed, too
    window_passes(meter, now)
    assert [(e["key"], e["cost_nano"]) for e in events(meter)] == [("broadcast:gen-again-1", 2_000_000)]
    assert meter.db.query_one("SELECT count(*) AS n FROM broadcast_generations")["n"] == 1
    assert meter.db.query_one("SELECT sum(answers) AS a, sum(cost_nano) AS c FROM usage_daily") == {"a": 1, "c": 2_000_000}


def test_spans_of_one_export_and_several_exports_each_count_once(client, meter, now, ada):
    send(client, generation("gen-a-1", user=ADA["id"], cost=0.001), generation("gen-b-1", user=ADA["id"], cost=0.002))
    send(client, generation("gen-c-1", user=ADA["id"], cost=0.004), encoding=PROTOBUF)
    window_passes(meter, now)
    assert sorted((e["key"], e["cost_nano"]) for e in events(meter)) == [
        ("broadcast:gen-a-1", 1_000_000), ("broadcast:gen-b-1", 2_000_000), ("broadcast:gen-c-1", 4_000_000)]


# --- who ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_without_a_user_or_with_an_unknown_one_it_is_not_attributed(client, meter, now, ada, encoding):
    send(client, generation("gen-nouser-1", user=None, model="openai/gpt-4o", cost=0.003, app="title generator"),
         generation("gen-stranger-1", user="someone-from-another-app", model="anthropic/claude-haiku-4.5", cost=0.005),
         encoding=encoding)
    window_passes(meter, now)
    rows = {e["key"]: e for e in events(meter)}
    assert {k: (e["user_id"], e["model"], e["cost_nano"]) for k, e in rows.items()} == {
        "broadcast:gen-nouser-1": (UNATTRIBUTED, "openai/gpt-4o", 3_000_000),
        "broadcast:gen-stranger-1": (UNATTRIBUTED, "anthropic/claude-haiku-4.5", 5_000_000),
    }
    assert meter.db.query_one("SELECT 1 AS x FROM users WHERE id = 'someone-from-another-app'") is None
    apps = {r["id"]: r["app"] for r in meter.db.query("SELECT id, app FROM broadcast_generations")}
    assert apps == {"gen-nouser-1": "title generator", "gen-stranger-1": "owui key"}
    assert meter.db.query("SELECT * FROM spend WHERE user_id = ?", (UNATTRIBUTED,)) == []  # no budget counts it


def test_the_user_may_come_as_user_id_too(client, meter, now, ada):
    """OpenRouter's documentation names the request's user `user.id`; OWUI-Metering read `openrouter.user.id`."""
    send(client, generation("gen-userid-1", user=None, cost=0.001, extra=[("user.id", ADA["id"])]))
    window_passes(meter, now)
    assert [(e["user_id"], e["cost_nano"]) for e in events(meter)] == [(ADA["id"], 1_000_000)]


def test_a_user_known_only_from_the_open_webui_sync_is_the_generations_user(client, meter, now):
    with meter.db.write() as conn:  # what owui_sync writes for a user who has not chatted yet
        conn.execute("INSERT INTO users (id, email, name, role, first_seen, last_seen) VALUES (?, ?, ?, ?, 0, 0)",
                     (BOB["id"], BOB["email"], BOB["name"], BOB["role"]))
    send(client, generation("gen-bob-1", user=BOB["id"], cost=0.001))
    window_passes(meter, now)
    assert [(e["user_id"], e["cost_nano"]) for e in events(meter)] == [(BOB["id"], 1_000_000)]


def test_the_read_api_shows_it_under_its_model_and_as_not_attributed(client, meter, now, admin_headers):
    send(client, generation("gen-task-1", user=None, model="openai/gpt-4o", cost=0.004))
    window_passes(meter, now)
    by_user = client.get("/api/v1/usage?group_by=user", headers=admin_headers).get_json()["rows"]
    assert [(r["label"], r["cost_nano"]) for r in by_user] == [("Not attributed to a user", 4_000_000)]
    by_model = client.get("/api/v1/usage?group_by=model", headers=admin_headers).get_json()["rows"]
    assert [(r["key"], r["cost_nano"]) for r in by_model] == [("openai/gpt-4o", 4_000_000)]


# --- never prompts or answers ----------------------------------------------------------------------


def test_no_content_attribute_reaches_the_database_file(client, meter, now, ada, data_dir):
    send(client, generation("gen-private-1", user=ADA["id"], secrets=True, app="APPNAME-kept-4242"), encoding=PROTOBUF)
    send(client, generation("gen-private-2", user=None, secrets=True), encoding=JSON)
    body = gzip.compress(otlp_json(export(generation("gen-private-3", user=ADA["id"], secrets=True))))
    assert post(client, body, JSON, **{"Content-Encoding": "gzip"}).status_code == 200
    window_passes(meter, now)
    assert len(events(meter)) == 3
    files = [data_dir / "meter.db", data_dir / "meter.db-wal"]
    contents = b"".join(path.read_bytes() for path in files if path.exists())
    assert (data_dir / "meter.db-wal").exists()
    assert b"APPNAME-kept-4242" in contents  # the scan does see what was stored
    for text in [*SECRETS.values(), EXCEPTION_SECRET]:
        assert text.encode() not in contents, text


# --- the answer OTLP expects ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_refused_spans_are_a_partial_success_and_the_rest_is_kept(client, meter, now, ada, encoding, caplog):
    no_model_attrs, no_model_spans = generation("gen-nomodel-1", user=ADA["id"], children=False)
    del no_model_spans[-1].attributes[:]
    no_model_spans[-1].attributes.extend([kv("span.type", "generation"), kv("gen_ai.response.id", "gen-nomodel-1"),
                                         kv("gen_ai.usage.total_cost", 0.1)])
    reply = send(client, generation("gen-good-1", user=ADA["id"], cost=0.001),
                 generation("gen-negative-1", user=ADA["id"], cost=-0.5), (no_model_attrs, no_model_spans), encoding=encoding)
    assert reply.partial_success.rejected_spans == 2
    assert "gen-negative-1" in reply.partial_success.error_message and "total_cost" in reply.partial_success.error_message
    assert "2 generation span(s) refused; first: generation gen-negative-1" in caplog.text
    window_passes(meter, now)
    assert [e["key"] for e in events(meter)] == ["broadcast:gen-good-1"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_openrouters_connection_test_is_accepted_and_stores_nothing(client, meter, now, encoding):
    assert post(client, b"", encoding, **{"X-Test-Connection": "true"}).status_code == 200
    if encoding == JSON:
        assert post(client, b"{}", encoding).get_json() == {}
    test_span = Span(trace_id=b"\0" * 15 + b"\1", span_id=b"\0" * 7 + b"\1", name="openrouter-connection-test", kind=Span.SPAN_KIND_INTERNAL)
    reply = send(client, ([kv("service.name", "openrouter")], [test_span]), encoding=encoding)
    assert not reply.HasField("partial_success")
    window_passes(meter, now)
    assert events(meter) == [] and meter.db.query("SELECT * FROM broadcast_generations") == []


def test_a_generation_without_usage_bills_nothing(client, meter, now, ada):
    """An upstream error ("The client has disconnected") comes with no tokens and no cost."""
    attrs, spans = generation("gen-error-1", user=ADA["id"], children=False)
    kept = [a for a in spans[-1].attributes if not a.key.startswith("gen_ai.usage.")]
    del spans[-1].attributes[:]
    spans[-1].attributes.extend(kept)
    reply = send(client, (attrs, spans))
    assert not reply.HasField("partial_success")
    window_passes(meter, now)
    assert events(meter) == []


def test_other_scopes_are_ignored(client, meter, now, ada):
    message = export(generation("gen-other-scope-1", user=ADA["id"]))
    message.resource_spans[0].scope_spans[0].scope.name = "my-own-app"
    assert post(client, message.SerializeToString(), PROTOBUF).status_code == 200
    window_passes(meter, now)
    assert events(meter) == []


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_gzip_bodies_are_read(client, meter, now, ada, encoding):
    body = gzip.compress(encode(export(generation("gen-zipped-1", user=ADA["id"], cost=0.007)), encoding))
    response = post(client, body, encoding, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200
    answer(response, encoding)
    window_passes(meter, now)
    assert [(e["key"], e["cost_nano"]) for e in events(meter)] == [("broadcast:gen-zipped-1", 7_000_000)]


# --- who may send ----------------------------------------------------------------------------------


def test_a_wrong_or_missing_token_is_refused(client, meter, now, ada):
    body = otlp_json(export(generation("gen-token-1", user=ADA["id"])))
    for token in ("wrong-token-0123456789", None, API_KEY):
        response = post(client, body, token=token)
        assert response.status_code == 401
        assert response.get_json()["error"] == "missing or wrong METER_OTLP_TOKEN"
    basic = client.post("/v1/traces", data=body, headers={"Content-Type": JSON, "Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    window_passes(meter, now)
    assert meter.db.query("SELECT * FROM broadcast_generations") == [] and events(meter) == []


def test_without_a_token_the_endpoint_is_off(data_dir, now):
    app = create_app(make_settings(data_dir))
    try:
        response = app.test_client().post("/v1/traces", data=b"{}", headers={"Content-Type": JSON, "Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404 and response.get_json()["status"] == 404
        assert app.config["METER"].broadcast.health()["broadcast"]["enabled"] is False
    finally:
        app.config["METER"].stop()


def test_a_short_token_stops_the_start():
    with pytest.raises(SettingsError, match="METER_OTLP_TOKEN must be at least 16"):
        settings.load({"METER_OTLP_TOKEN": "short"})


# --- bad input ---------------------------------------------------------------------------------------


def _bad_hex():
    data = json.loads(otlp_json(export(generation("gen-badhex-1"))))
    data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "not-hex!"
    return json.dumps(data).encode()


GARBAGE = [
    pytest.param(PROTOBUF, {}, b"\xff\xff\xff\xff", "not an OTLP ExportTraceServiceRequest in protobuf", id="protobuf-corrupt"),
    pytest.param(PROTOBUF, {}, b"\x12\x03abc", "it has no resource_spans", id="protobuf-other-message"),
    pytest.param(JSON, {}, b"resourceSpans: yes", "body is not valid JSON", id="json-not-json"),
    pytest.param(JSON, {}, b"\xff\xfe{}", "body is not valid JSON", id="json-not-utf8"),
    pytest.param(JSON, {}, b"[1, 2]", "must be a JSON object", id="json-array"),
    pytest.param(JSON, {}, b'{"hello": "world"}', "it has no resourceSpans", id="json-other-object"),
    pytest.param(JSON, {}, b'{"resourceSpans": "all of them"}', "not an OTLP ExportTraceServiceRequest", id="json-wrong-shape"),
    pytest.param(JSON, {}, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "a", "value": {"intValue": "many"}}]}]}]}]}',
                 "not an OTLP ExportTraceServiceRequest", id="json-wrong-type"),
    pytest.param(JSON, {}, _bad_hex(), "resourceSpans[0].scopeSpans[0].spans[0].traceId must be a hex string", id="json-bad-hex"),
    pytest.param(JSON, {}, b"[" * 100_000, "body is not valid JSON", id="json-deeply-nested"),
    pytest.param(JSON, {"Content-Encoding": "gzip"}, gzip.compress(b"{}")[:10] + b"\xff" * 16, "not valid gzip", id="gzip-corrupt"),
    pytest.param(JSON, {"Content-Encoding": "gzip"}, gzip.compress(b'{"resourceSpans": []}')[:-6], "truncated gzip", id="gzip-truncated"),
    pytest.param(JSON, {"Content-Encoding": "br"}, b"{}", "Content-Encoding must be gzip or identity", id="encoding-unknown"),
]


@pytest.mark.parametrize("encoding, headers, body, message", GARBAGE)
def test_garbage_is_a_400_with_a_json_error_and_stores_nothing(client, meter, now, encoding, headers, body, message):
    response = post(client, body, encoding, **headers)
    assert response.status_code == 400
    assert response.mimetype == JSON
    assert message in response.get_json()["error"]
    window_passes(meter, now)
    assert meter.db.query("SELECT * FROM broadcast_generations") == [] and events(meter) == []


def test_an_unsupported_content_type_is_a_415(client, meter, now):
    response = post(client, b"{}", "text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf or application/json" in response.get_json()["error"]


def test_a_gzip_bomb_is_refused(client, meter, now):
    bomb = gzip.compress(b"{" + b" " * (33 * 1024 * 1024) + b"}")
    response = post(client, bomb, JSON, **{"Content-Encoding": "gzip"})
    assert response.status_code == 400 and "larger than" in response.get_json()["error"]


# --- the join with the plugin's answers --------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_plugin_first_then_broadcast_confirms_its_cost(client, meter, now, encoding):
    recorded = plugin_answer(client, cost=0.00001, generation_ids=["gen-joined-1"])
    assert recorded["cost_source"] == "inline"
    send(client, generation("gen-joined-1", user=ADA["id"], cost=0.0000123), encoding=encoding)
    [event] = events(meter)  # confirmed at once: the answer was there
    assert (event["key"], event["cost_nano"], event["cost_source"], event["inline_cost_nano"], event["lookup_state"]) == \
        ("msg-1", 12_300, "generation", 10_000, "confirmed")
    assert event["chat_id"] == "chat-1"  # the plugin's answer, with what only it knows
    window_passes(meter, now)
    assert len(events(meter)) == 1
    assert meter.db.query_one("SELECT state, event_id FROM broadcast_generations") == {"state": "joined", "event_id": event["id"]}
    assert meter.db.query_one("SELECT cost_nano FROM spend WHERE user_id = ? AND period = 'day'", (ADA["id"],))["cost_nano"] == 12_300
    assert meter.db.query_one("SELECT cost_nano, confirmed_cost_nano FROM usage_daily") == {"cost_nano": 12_300, "confirmed_cost_nano": 12_300}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_broadcast_first_then_plugin_is_one_answer(client, meter, now, ada, encoding):
    send(client, generation("gen-early-1", user=ADA["id"], cost=0.0000123), encoding=encoding)
    recorded = plugin_answer(client, cost=0.00001, generation_ids=["gen-early-1"])
    assert recorded["duplicate"] is False  # the plugin's answer is the one recorded
    meter.broadcast.sweep()  # the job joins it (every METER_WORKER_POLL_MS)
    [event] = events(meter)
    assert (event["key"], event["user_id"], event["cost_nano"], event["cost_source"]) == ("msg-1", ADA["id"], 12_300, "generation")
    window_passes(meter, now)
    assert len(events(meter)) == 1
    assert meter.db.query_one("SELECT sum(answers) AS a, sum(cost_nano) AS c FROM usage_daily") == {"a": 1, "c": 12_300}


def test_a_plugin_answer_after_the_window_is_a_duplicate_of_the_broadcast_event(client, meter, now, ada):
    send(client, generation("gen-late-1", user=ADA["id"], cost=0.0000123))
    window_passes(meter, now)
    [billed] = events(meter)
    recorded = plugin_answer(client, cost=0.00001, generation_ids=["gen-late-1"])
    assert (recorded["duplicate"], recorded["event_id"], recorded["cost_usd"]) == (True, billed["id"], 0.0000123)
    assert len(events(meter)) == 1


def test_a_late_answer_with_more_generations_is_recorded_for_the_rest(client, meter, now, ada):
    send(client, generation("gen-part-1", user=ADA["id"], prompt=100, completion=50, cost=0.001))
    window_passes(meter, now)
    plugin_answer(client, cost=0.003, prompt=300, completion=150, generation_ids=["gen-part-1", "gen-part-2"])
    rows = {e["key"]: e for e in events(meter)}
    assert set(rows) == {"broadcast:gen-part-1", "msg-1"}
    rest = rows["msg-1"]
    assert (rest["prompt_tokens"], rest["completion_tokens"], rest["cost_nano"]) == (200, 100, 2_000_000)
    owners = {r["id"]: r["event_id"] for r in meter.db.query("SELECT id, event_id FROM generations")}
    assert owners == {"gen-part-1": rows["broadcast:gen-part-1"]["id"], "gen-part-2": rest["id"]}


@pytest.mark.parametrize("order", ["plugin-first", "broadcast-first"])
def test_a_non_streamed_answer_without_generation_ids_is_recognised(client, meter, now, ada, order):
    """A non-streamed call shows the plugin no generation id: same user, model, tokens and cost."""
    if order == "plugin-first":
        plugin_answer(client, cost=0.00001, prompt=10, completion=20, model="openai/gpt-4o-mini")
        send(client, generation("gen-quiet-1", user=ADA["id"], prompt=10, completion=20, cost=0.00001))
    else:
        send(client, generation("gen-quiet-1", user=ADA["id"], prompt=10, completion=20, cost=0.00001))
        plugin_answer(client, cost=0.00001, prompt=10, completion=20, model="openai/gpt-4o-mini")
        meter.broadcast.sweep()
    window_passes(meter, now)
    [event] = events(meter)
    assert (event["key"], event["cost_nano"], event["cost_source"]) == ("msg-1", 10_000, "generation")
    assert meter.db.query_one("SELECT id, event_id FROM generations") == {"id": "gen-quiet-1", "event_id": event["id"]}


def test_a_non_streamed_answer_after_the_window_is_a_duplicate(client, meter, now, ada):
    send(client, generation("gen-quiet-2", user=ADA["id"], prompt=10, completion=20, cost=0.00001))
    window_passes(meter, now)
    [billed] = events(meter)
    recorded = plugin_answer(client, cost=0.00001, prompt=10, completion=20)  # queued by the plugin, sent late
    assert (recorded["duplicate"], recorded["event_id"]) == (True, billed["id"])
    assert len(events(meter)) == 1


def test_a_different_answer_is_not_taken_for_the_generation(client, meter, now, ada):
    plugin_answer(client, cost=0.00002, prompt=10, completion=20)  # same tokens, another cost
    send(client, generation("gen-other-1", user=ADA["id"], prompt=10, completion=20, cost=0.00001))
    window_passes(meter, now)
    assert sorted((e["key"], e["cost_nano"]) for e in events(meter)) == [("broadcast:gen-other-1", 10_000), ("msg-1", 20_000)]


def test_a_lookup_that_confirmed_first_is_kept(client, meter, now):
    plugin_answer(client, cost=0.00001, generation_ids=["gen-looked-up-1"])
    event_id = events(meter)[0]["id"]
    with meter.db.write() as conn:  # what the resolver stores from GET /generation
        conn.execute("UPDATE generations SET state = 'done', total_cost_nano = 11000 WHERE id = 'gen-looked-up-1'")
        meter.resolver.settle(conn, event_id)
    send(client, generation("gen-looked-up-1", user=ADA["id"], cost=0.0000123))
    [event] = events(meter)
    assert (event["cost_nano"], event["cost_source"]) == (11_000, "generation")


def test_health_reports_what_broadcast_did(client, meter, now, ada):
    send(client, generation("gen-h-1", user=ADA["id"]), generation("gen-h-2", user=None))
    plugin_answer(client, generation_ids=["gen-h-1"])
    meter.broadcast.sweep()
    health = client.get("/healthcheck").get_json()["broadcast"]
    assert (health["enabled"], health["waiting"], health["joined"], health["own_events"]) == (True, 1, 1, 0)
    window_passes(meter, now)
    health = client.get("/healthcheck").get_json()["broadcast"]
    assert (health["waiting"], health["joined"], health["own_events"], health["last_received"]) == (0, 1, 1, int(T0 * 1000))


def test_over_real_http_with_the_job_running(live_meter, meter, now, ada):
    """A real waitress server and the Broadcast job's own thread: a gzip protobuf export, then the
    plugin's answer naming its generation; the job joins them without being called."""
    import time

    import requests

    meter.broadcast.start()
    try:
        body = gzip.compress(encode(export(generation("gen-live-1", user=ADA["id"], cost=0.0000123)), PROTOBUF))
        response = requests.post(f"{live_meter.url}/v1/traces", data=body, timeout=10, headers={
            "Content-Type": PROTOBUF, "Content-Encoding": "gzip", "Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and response.headers["Content-Type"] == PROTOBUF
        reply = ExportTraceServiceResponse()
        reply.ParseFromString(response.content)
        assert not reply.HasField("partial_success")
        outlet = requests.post(f"{live_meter.url}/api/v1/outlet", timeout=10, headers={"Authorization": f"Bearer {API_KEY}"},
                               json=outlet_body(key="msg-live", cost=0.00001, timestamp=T0 - 4, generation_ids=["gen-live-1"]))
        assert outlet.status_code == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and events(meter)[0]["cost_source"] != "generation":
            time.sleep(0.05)
        [event] = events(meter)
        assert (event["key"], event["cost_nano"], event["cost_source"]) == ("msg-live", 12_300, "generation")
    finally:
        meter.broadcast.stop()


def test_bodies_over_the_limit_are_a_413_and_gzip_keeps_prompts_under_it(client, meter, now, ada):
    """Without privacy mode a delivery carries the prompt: gzip keeps it small; a body over
    METER_MAX_BODY_BYTES (1 MiB, waitress's limit too) is refused."""
    big = "x" * (2 * 1024 * 1024)
    body = encode(export(generation("gen-big-1", user=ADA["id"], cost=0.001, extra=[("gen_ai.prompt", big)])), PROTOBUF)
    assert len(body) > 2 * 1024 * 1024
    too_big = post(client, body, PROTOBUF)
    assert too_big.status_code == 413
    assert too_big.get_json()["error"] == "request body too large (limit 1048576 bytes)"
    assert post(client, gzip.compress(body), PROTOBUF, **{"Content-Encoding": "gzip"}).status_code == 200
    window_passes(meter, now)
    assert [e["key"] for e in events(meter)] == ["broadcast:gen-big-1"]


def test_per_app_and_model_with_the_part_not_attributed(client, meter, now, ada, admin_headers):
    send(client, generation("gen-app-1", user=ADA["id"], model="openai/gpt-4o", cost=0.001, app="open-webui"),
         generation("gen-app-2", user=None, model="openai/gpt-4o", cost=0.002, app="open-webui"),
         generation("gen-app-3", user=None, model="openai/gpt-4o-mini", cost=0.0005, app="open-webui"),
         generation("gen-app-4", user="a-stranger", model="openai/gpt-4o", cost=0.004, app="crm-bot"))
    window_passes(meter, now)
    reply = client.get("/api/v1/broadcast/usage?from=2026-11-01&to=2026-11-30", headers=admin_headers).get_json()
    rows = [(r["app"], r["model"], r["generations"], r["cost_nano"], r["unattributed_generations"], r["unattributed_cost_nano"])
            for r in reply["rows"]]
    assert rows == [("crm-bot", "openai/gpt-4o", 1, 4_000_000, 1, 4_000_000),
                    ("open-webui", "openai/gpt-4o", 2, 3_000_000, 1, 2_000_000),
                    ("open-webui", "openai/gpt-4o-mini", 1, 500_000, 1, 500_000)]
    assert (reply["total"]["generations"], reply["total"]["cost_usd"], reply["total"]["unattributed_cost_nano"]) == (4, 0.0075, 6_500_000)
    # the same figures as the ledger's spend not attributed to a user
    ledger = client.get("/api/v1/usage?group_by=user", headers=admin_headers).get_json()["rows"]
    assert {r["key"]: r["cost_nano"] for r in ledger} == {UNATTRIBUTED: 6_500_000, ADA["id"]: 1_000_000}
    before = client.get("/api/v1/broadcast/usage?to=2026-11-28", headers=admin_headers).get_json()
    assert before["rows"] == [] and before["total"]["generations"] == 0
    bad = client.get("/api/v1/broadcast/usage?from=2026-12-01&to=2026-11-01", headers=admin_headers)
    assert bad.status_code == 400 and bad.get_json()["error"] == "from must be before to"
    assert client.get("/api/v1/broadcast/usage?from=yesterday", headers=admin_headers).status_code == 400


def test_a_byok_answer_is_left_to_the_lookup(client, meter, now):
    """Bring-your-own-key: the provider bills the team directly; a trace does not carry that charge."""
    usage = {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.000002, "is_byok": True,
             "cost_details": {"upstream_inference_cost": 0.00004}}
    plugin_answer(client, usage=usage, generation_ids=["gen-byok-1"])
    before = events(meter)[0]
    send(client, generation("gen-byok-1", user=ADA["id"], cost=0.000002))
    window_passes(meter, now)
    [event] = events(meter)
    assert (event["cost_nano"], event["cost_source"], event["provider_nano"]) == (before["cost_nano"], "inline", 40_000)
    assert meter.db.query_one("SELECT state FROM generations WHERE id = 'gen-byok-1'")["state"] == "pending"
    assert meter.db.query_one("SELECT state FROM broadcast_generations")["state"] == "joined"


def test_absurd_figures_are_refused_like_an_answers(client, meter, now, ada):
    reply = send(client, generation("gen-huge-1", user=ADA["id"], cost=5000.0),
                 generation("gen-tokens-1", user=ADA["id"], prompt=10**12), generation("gen-fine-1", user=ADA["id"]))
    assert reply.partial_success.rejected_spans == 2
    assert "METER_MAX_ANSWER_USD" in reply.partial_success.error_message
    window_passes(meter, now)
    assert [e["key"] for e in events(meter)] == ["broadcast:gen-fine-1"]


@pytest.mark.parametrize("order", ["passthrough-first", "broadcast-first"])
def test_with_the_pass_through_each_generation_is_billed_once(client, meter, now, ada, order):
    """The pass-through records the same generations (METER_PASSTHROUGH): whichever of the two
    bills a generation first owns it, the other joins it."""
    from owui_meter.ingest import parse_usage
    from owui_meter.passthrough import Capture

    def pass_through():
        usage = parse_usage({"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.00001})
        meter.passthrough.capture(Capture("gen-both-1", int((T0 - 5) * 1000), UserInfo(**ADA), None, "openai/gpt-4o-mini", True, True, usage))
        meter.passthrough.flush()

    if order == "passthrough-first":
        pass_through()
        now.now += WINDOW + 1
        meter.passthrough.sweep()
        send(client, generation("gen-both-1", user=ADA["id"], cost=0.0000123))
        expected = ("passthrough:gen-both-1", 12_300, "generation")  # Broadcast's cost confirms it
    else:
        send(client, generation("gen-both-1", user=ADA["id"], cost=0.0000123))
        window_passes(meter, now)
        pass_through()
        now.now += WINDOW + 1
        meter.passthrough.sweep()
        expected = ("broadcast:gen-both-1", 12_300, "generation")
    window_passes(meter, now)
    assert [(e["key"], e["cost_nano"], e["cost_source"]) for e in events(meter)] == [expected]
    assert meter.db.query_one("SELECT sum(answers) AS a FROM usage_daily")["a"] == 1
