"""The Open WebUI filter, driven with the payloads real Open WebUI 0.12.4 and 0.6.43 handed to its
hooks, against a real meter (waitress on loopback) whose cost resolver asks the fake OpenRouter."""

import asyncio
import copy
import http.server
import importlib.util
import json
import logging
import random
import threading
import time

import pytest
import requests
from waitress.server import create_server

from conftest import ADA, API_KEY, JWT_SECRET, REPO, free_port, load_fixture, make_settings
from owui_meter import create_app
from owui_meter.auth import create_token

VERSIONS = ("0.12.4", "0.6.43")
ANSWERED = ("api-nonstream", "api-stream", "api-stream-reasoning", "ui", "ui-followup", "user2", "user2-api-stream")


def load_plugin():
    spec = importlib.util.spec_from_file_location("owui_meter_plugin", REPO / "plugin" / "owui_meter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_filter(url, **valves):
    plugin = load_plugin().Filter()
    plugin.valves.meter_url = url
    plugin.valves.api_key = valves.pop("api_key", API_KEY)
    plugin.valves.timeout_seconds = valves.pop("timeout_seconds", 3)
    for name, value in valves.items():
        setattr(plugin.valves, name, value)
    return plugin


def fixture_or_none(name, version):
    try:
        return load_fixture(name, version)
    except FileNotFoundError:
        return None


def generations(version):
    """What the fake OpenRouter generated during the recording, by generation id."""
    return {g["id"]: g for g in load_fixture("fake-openrouter.generations.json", version)}


def usage_line(case, version, gen_id):
    """The SSE line with the usage chunk, as the fake sent it.

    The stream-chunks recordings keep the first and last three calls; for raw-byte streams the
    usage chunk falls in the trimmed middle. ``api-stream.response-lines.json`` has the real line;
    for the other cases it is built from the generation's recorded usage (the same object, which
    test_reconstructed_usage_chunk_matches_the_recorded_one checks on api-stream).
    """
    if case == "api-stream":
        lines = load_fixture("api-stream.response-lines.json", version)
        return next(line for line in lines if isinstance(line, str) and '"usage"' in line) + "\n"
    gen = generations(version)[gen_id]
    chunk = {"id": gen_id, "provider": gen["provider_name"], "model": gen["model"], "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}], "usage": gen["usage"]}
    return "data: " + json.dumps(chunk) + "\n"


def stream_calls(case, version):
    """Each stream call of a case: (event, __user__, recorded __metadata__, metadata object id).

    Raw-byte events (0.6 API calls) are handed over as bytes, as Open WebUI does.
    """
    chunks = fixture_or_none(f"{case}.stream-chunks.json", version) or []
    recorded = [c for c in chunks if "event" in c]
    calls = []
    for chunk in chunks:
        if "_trimmed" in chunk:
            first = recorded[0]
            if first["event_type"] == "bytes":
                gen_id = next(i for i in sse_ids(recorded))
                for text in (usage_line(case, version, gen_id), "\n"):
                    calls.append((text.encode(), first["__user__"], first["__metadata__"], first["metadata_object_id"]))
            continue
        event = chunk["event"].encode() if chunk["event_type"] == "bytes" else chunk["event"]
        calls.append((event, chunk["__user__"], chunk["__metadata__"], chunk["metadata_object_id"]))
    return calls


def sse_ids(chunks):
    for chunk in chunks:
        event = chunk["event"]
        if isinstance(event, str) and event.startswith("data: {"):
            yield json.loads(event[6:])["id"]


def stream_ids(case, version):
    ids = []
    for event, *_ in stream_calls(case, version):
        if isinstance(event, bytes):
            text = event.decode()
            gen = json.loads(text[6:])["id"] if text.startswith("data: {") else None
        else:
            gen = event.get("id")
        if gen and gen not in ids:
            ids.append(gen)
    return ids


def stream_usage(case, version):
    """The usage of the stream's last chunk (what a 0.6 API call's stream hook sees)."""
    usage = None
    for event, *_ in stream_calls(case, version):
        if isinstance(event, bytes) and event.startswith(b"data: {"):
            usage = json.loads(event[6:]).get("usage") or usage
        elif isinstance(event, dict):
            usage = event.get("usage") or usage
    return usage


def replay(plugin, case, version, *, emitted=None, objects=None):
    """inlet, every stream call, outlet, handing the plugin ONE metadata dict wherever Open WebUI
    passed one object (same recorded metadata_object_id: inlet, stream and outlet on 0.12) and
    separate dicts where it did not (0.6: inlet, stream and outlet each get their own)."""
    objects = {} if objects is None else objects

    def metadata(recorded, object_id):
        if object_id not in objects:
            objects[object_id] = copy.deepcopy(recorded)
        return objects[object_id]

    async def emitter(event):
        if emitted is not None:
            emitted.append(event)

    async def go():
        inlet = load_fixture(f"{case}.inlet.json", version)
        await plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"],
                           __metadata__=metadata(inlet["__metadata__"], inlet["metadata_object_id"]), __event_emitter__=emitter)
        for event, user, recorded, object_id in stream_calls(case, version):
            assert plugin.stream(event, __user__=user, __metadata__=metadata(recorded, object_id)) is event
        outlet = fixture_or_none(f"{case}.outlet.json", version)
        if outlet is not None:
            await plugin.outlet(copy.deepcopy(outlet["body"]), __user__=outlet["__user__"],
                                __metadata__=metadata(outlet["__metadata__"], outlet["metadata_object_id"]), __event_emitter__=emitter)
        return outlet

    return asyncio.run(go())


def answer_usage(outlet):
    body = outlet["body"]
    return next(m for m in body["messages"] if m.get("id") == body["id"])["usage"]


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def all_events(meter):
    return meter.db.query("SELECT * FROM events ORDER BY id")


# --- a meter whose cost resolver asks the fake OpenRouter --------------------------------------------


@pytest.fixture
def app(data_dir, fake):
    app = create_app(make_settings(data_dir, OPENROUTER_API_KEY=fake.api_key, OPENROUTER_BASE_URL=fake.url, METER_LOOKUP_RATE=1000))
    app.config["TESTING"] = True
    yield app
    app.config["METER"].stop()


def seed(fake, version):
    for gen_id, gen in generations(version).items():
        fake.add_generation(gen_id, gen["cost"], model=gen["model"], provider_name=gen["provider_name"])


class SlowMeter:
    """The real meter app behind a delay on chosen paths; counts requests in flight per path."""

    def __init__(self, app, delays):
        self.app = app
        self.delays = delays
        self.lock = threading.Lock()
        self.in_flight = {}
        self.most = {}
        self.seen = {}

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        with self.lock:
            self.in_flight[path] = self.in_flight.get(path, 0) + 1
            self.most[path] = max(self.most.get(path, 0), self.in_flight[path])
            self.seen[path] = self.seen.get(path, 0) + 1
        try:
            time.sleep(self.delays.get(path, 0))
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.in_flight[path] -= 1


class Served:
    """A WSGI app on a loopback port (a chosen one, to bring a meter "back" where it was)."""

    def __init__(self, wsgi, port=0, threads=16):
        self.server = create_server(wsgi, host="127.0.0.1", port=port, threads=threads)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self):
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve():
    started = []

    def start(wsgi, port=0):
        served = Served(wsgi, port)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


def synthetic_answers(n, user=None, version="0.12.4"):
    """``n`` distinct web-chat answers shaped like the recorded ``ui`` outlet (each its own message)."""
    outlet = load_fixture("ui.outlet.json", version)
    answers = []
    for i in range(n):
        body = copy.deepcopy(outlet["body"])
        message = next(m for m in body["messages"] if m.get("id") == body["id"])
        body["id"] = message["id"] = f"synthetic-{i:04d}"
        message["usage"] = {"prompt_tokens": 100 + i, "completion_tokens": 7, "cost": 0.000001 * (i + 1)}
        answers.append((body, user or outlet["__user__"], {"chat_id": body["chat_id"], "message_id": body["id"]}))
    return answers


async def outlets(plugin, answers):
    return await asyncio.gather(*(plugin.outlet(copy.deepcopy(b), __user__=u, __metadata__=dict(m)) for b, u, m in answers))


# --- every recorded answer, both versions ------------------------------------------------------------


# on 0.6 no hook sees a non-streamed API call: test_06_non_streamed_api_calls_reach_only_the_inlet
SEEN = [(v, c) for v in VERSIONS for c in ANSWERED if (v, c) != ("0.6.43", "api-nonstream")]


@pytest.mark.parametrize("version,case", SEEN)
def test_each_answer_is_metered_once_for_its_user_with_its_usage_and_confirmed_cost(live_meter, fake, version, case):
    seed(fake, version)
    plugin = make_filter(live_meter.url)
    outlet = replay(plugin, case, version)
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    [event] = live_meter.get_json("/api/v1/events")["events"]
    inlet = load_fixture(f"{case}.inlet.json", version)
    usage = answer_usage(outlet) if outlet is not None else stream_usage(case, version)
    ids = stream_ids(case, version)
    assert event["user_id"] == inlet["__user__"]["id"]
    assert event["model"] == inlet["body"]["model"]
    assert (event["prompt_tokens"], event["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert event["reasoning_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"]
    assert event["cost_usd"] == pytest.approx(usage["cost"]) and event["cost_source"] == "inline"
    assert event["source"] == ("api" if case.startswith(("api", "user2-api")) else "ui")
    assert event["generation_ids"] == ids
    if outlet is None:  # 0.6 API call, reported from the stream hook
        assert version == "0.6.43" and ids and event["key"].startswith("gen:")
    elif event["source"] == "ui":  # a message's first generation set: the message id is the key
        assert event["key"] == event["message_id"] == outlet["body"]["id"]
    else:  # API calls have no stable message id: the key is the generations' (or the outlet's fresh id)
        assert event["key"].startswith("gen:") if ids else event["key"] == outlet["body"]["id"]

    live_meter.meter.resolver.run_once()
    [event] = live_meter.get_json("/api/v1/events")["events"]
    if ids:  # the generation ids reached the meter, so OpenRouter's record confirms the cost
        assert (event["cost_source"], event["lookup_state"]) == ("generation", "confirmed")
        assert event["cost_usd"] == pytest.approx(sum(generations(version)[i]["cost"] for i in ids))
    else:  # a non-streamed call shows no id to any hook: its inline cost stays
        assert (event["cost_source"], event["lookup_state"]) == ("inline", "none")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_whole_recorded_run_bills_every_answer_once_to_its_user(live_meter, fake, version):
    seed(fake, version)
    plugin = make_filter(live_meter.url)
    expected = {}
    for case in ANSWERED + ("legacy-completed", "api-stream-upstream-429", "ui-upstream-429"):
        if case == "legacy-completed":
            legacy = load_fixture("legacy-completed.outlet.json", version)
            asyncio.run(plugin.outlet(copy.deepcopy(legacy["body"]), __user__=legacy["__user__"], __metadata__=copy.deepcopy(legacy["__metadata__"])))
            continue
        outlet = replay(plugin, case, version)
        if case.endswith("upstream-429") or (version, case) == ("0.6.43", "api-nonstream"):
            continue
        usage = answer_usage(outlet) if outlet is not None else stream_usage(case, version)
        user = load_fixture(f"{case}.inlet.json", version)["__user__"]["id"]
        expected[user] = [a + b for a, b in zip(expected.get(user, [0, 0, 0]), [1, usage["prompt_tokens"], usage["completion_tokens"]])]
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    rows = live_meter.get_json("/api/v1/usage", group_by="user")["rows"]
    got = {r["key"]: [r["answers"], r["prompt_tokens"], r["completion_tokens"]] for r in rows}
    assert got == expected
    assert sum(a for a, _, _ in expected.values()) == (7 if version == "0.12.4" else 6)


def test_reconstructed_usage_chunk_matches_the_recorded_one():
    """The usage line put back into trimmed 0.6 streams is the generation's usage, as sent."""
    recorded = json.loads(usage_line("api-stream", "0.6.43", None)[6:])
    assert recorded["usage"] == generations("0.6.43")[recorded["id"]]["usage"]


def test_06_non_streamed_api_calls_reach_only_the_inlet(live_meter):
    plugin = make_filter(live_meter.url)
    assert replay(plugin, "api-nonstream", "0.6.43") is None  # no outlet recorded
    assert plugin._outbox.pending() == 0
    assert all_events(live_meter.meter) == []
    assert live_meter.meter.db.query_one("SELECT count(*) AS n FROM users")["n"] == 1  # the inlet saw the user


@pytest.mark.parametrize("version", VERSIONS)
def test_followup_counts_only_the_new_answer(live_meter, version):
    plugin = make_filter(live_meter.url)
    replay(plugin, "ui", version)
    followup = replay(plugin, "ui-followup", version)
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    first, second = answer_usage(load_fixture("ui.outlet.json", version)), answer_usage(followup)
    events = {e["message_id"]: e for e in live_meter.get_json("/api/v1/events")["events"]}
    assert (events[followup["body"]["id"]]["prompt_tokens"], events[followup["body"]["id"]]["completion_tokens"]) == (second["prompt_tokens"], second["completion_tokens"])
    total = live_meter.get_json("/api/v1/usage", group_by="user")["total"]
    assert (total["answers"], total["prompt_tokens"], total["completion_tokens"]) == (
        2, first["prompt_tokens"] + second["prompt_tokens"], first["completion_tokens"] + second["completion_tokens"])


@pytest.mark.parametrize("version", VERSIONS)
def test_legacy_chat_completed_neither_adds_nor_changes(live_meter, version):
    plugin = make_filter(live_meter.url)
    replay(plugin, "ui", version)
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    before = live_meter.get_json("/api/v1/events")["events"]
    assert len(before) == 1
    legacy = load_fixture("legacy-completed.outlet.json", version)
    asyncio.run(plugin.outlet(legacy["body"], __user__=legacy["__user__"], __metadata__=legacy["__metadata__"]))
    assert plugin._outbox.pending() == 0
    assert live_meter.get_json("/api/v1/events")["events"] == before


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", ["api-stream-upstream-429", "ui-upstream-429"])
def test_failed_upstream_records_no_answer(live_meter, version, case):
    plugin = make_filter(live_meter.url)
    replay(plugin, case, version)
    assert plugin._outbox.pending() == 0
    assert all_events(live_meter.meter) == []
    # the inlet still introduced the user to the meter
    assert live_meter.meter.db.query_one("SELECT count(*) AS n FROM users")["n"] == 1


# --- Continue: a second completion into the same message ---------------------------------------------


def continuation(version, gen_id, usage):
    """A "Continue" of the recorded ``ui`` answer: a new request streaming into the same message id.

    Open WebUI hands it a new __metadata__ (a new request); its outlet carries the message with
    the continuation's usage.
    """
    inlet = load_fixture("ui.inlet.json", version)
    chunks = [c for c in load_fixture("ui.stream-chunks.json", version) if "event" in c]
    events = []
    for chunk in chunks:
        event = copy.deepcopy(chunk["event"])
        event["id"] = gen_id
        if "usage" in event:
            event["usage"] = usage
        events.append(event)
    outlet = load_fixture("ui.outlet.json", version)
    body = copy.deepcopy(outlet["body"])
    message = next(m for m in body["messages"] if m.get("id") == body["id"])
    message["usage"] = usage
    message.pop("info", None)
    return inlet, events, chunks[0]["__metadata__"], body, outlet


@pytest.mark.parametrize("restarted", [False, True], ids=["same-process", "open-webui-restarted"])
@pytest.mark.parametrize("version", VERSIONS)
def test_continue_is_billed_once_each_and_retries_still_deduplicate(live_meter, fake, version, restarted):
    seed(fake, version)
    fake.add_generation("gen-continue0001", 0.00002)
    plugin = make_filter(live_meter.url)
    replay(plugin, "ui", version)
    if restarted:  # the plugin no longer remembers the first answer: the meter tells it
        assert wait_until(lambda: plugin._outbox.pending() == 0)
        plugin = make_filter(live_meter.url)
    usage = {"prompt_tokens": 40, "completion_tokens": 25, "cost": 0.000019}
    inlet, events, stream_meta, body, outlet = continuation(version, "gen-continue0001", usage)
    shared = version == "0.12.4"  # 0.12: one dict per request; 0.6: stream and outlet get their own

    async def go():
        request_meta = copy.deepcopy(inlet["__metadata__"])
        await plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__=request_meta)
        meta = request_meta if shared else copy.deepcopy(stream_meta)
        for event in events:
            plugin.stream(event, __user__=inlet["__user__"], __metadata__=meta)
        outlet_meta = request_meta if shared else copy.deepcopy(outlet["__metadata__"])
        await plugin.outlet(copy.deepcopy(body), __user__=outlet["__user__"], __metadata__=outlet_meta)
        # the same report again: 0.12 re-running the request's outlet, 0.6's browser posting
        # /api/chat/completed twice
        again = request_meta if shared else copy.deepcopy(outlet["__metadata__"])
        await plugin.outlet(copy.deepcopy(body), __user__=outlet["__user__"], __metadata__=again)

    asyncio.run(go())
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    live_meter.meter.resolver.run_once()
    rows = sorted(live_meter.get_json("/api/v1/events")["events"], key=lambda e: e["id"])
    assert len(rows) == 2
    first, second = rows
    assert (first["key"], first["message_id"], second["message_id"]) == (body["id"], body["id"], body["id"])
    assert second["key"].startswith(body["id"] + ":")
    assert first["generation_ids"] == stream_ids("ui", version)
    assert second["generation_ids"] == ["gen-continue0001"]
    assert (second["prompt_tokens"], second["completion_tokens"]) == (40, 25)
    assert [r["cost_source"] for r in rows] == ["generation", "generation"]
    assert second["cost_nano"] == 20_000
    assert first["cost_nano"] == round(generations(version)[stream_ids("ui", version)[0]]["cost"] * 1e9)


@pytest.mark.parametrize("plugin_first", [True, False], ids=["plugin-first", "old-filter-first"])
def test_06_answer_reported_by_owui_metering_and_the_plugin_counts_once(live_meter, plugin_first):
    """While both filters run on 0.6 (README: moving from OWUI-Metering), the activity id and the
    plugin's key are the same message id."""
    outlet = load_fixture("ui.outlet.json", "0.6.43")
    usage = answer_usage(outlet)
    record = {"user": {"id": outlet["__user__"]["id"]}, "activity": {"id": outlet["body"]["id"], "model": outlet["body"]["model"],
              "cost": usage["cost"], "prompt_token": usage["prompt_tokens"], "completion_token": usage["completion_tokens"]}}

    def old_filter():
        assert requests.post(live_meter.url + "/api/v1/metering/record", json=record, headers={"Authorization": API_KEY}, timeout=5).status_code == 200

    plugin = make_filter(live_meter.url)
    if not plugin_first:
        old_filter()
    replay(plugin, "ui", "0.6.43")
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    if plugin_first:
        old_filter()
    [event] = all_events(live_meter.meter)
    assert (event["key"], event["prompt_tokens"], event["completion_tokens"]) == (outlet["body"]["id"], usage["prompt_tokens"], usage["completion_tokens"])


class _Conflict(http.server.BaseHTTPRequestHandler):
    """A stand-in meter that answers a reused key with 409 naming the stored answer's generations
    (as a meter refusing "same key, other usage" can), and records what it stored."""

    stored = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        held = _Conflict.stored.get(body["key"])
        if held is not None and held["usage"] != body["usage"]:
            status, answer = 409, {"error": "key holds another answer", "generation_ids": held["generation_ids"]}
        else:
            _Conflict.stored.setdefault(body["key"], body)
            status, answer = 202, {"duplicate": held is not None, "notice": "ok"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_409_naming_other_generations_sends_the_continuation_under_its_own_key():
    _Conflict.stored = {"msg-1": {"usage": {"prompt_tokens": 1}, "generation_ids": ["gen-first"]}}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Conflict)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plugin = make_filter(f"http://127.0.0.1:{server.server_port}")
        body = {"id": "msg-1", "chat_id": "c", "model": "m", "messages": [{"id": "msg-1", "role": "assistant", "content": "more", "usage": {"prompt_tokens": 2}}]}
        metadata = {"chat_id": "c", "message_id": "msg-1", "_owui_meter_generation_ids": ["gen-second"]}
        asyncio.run(plugin.outlet(copy.deepcopy(body), __user__=ADA, __metadata__=metadata))
        assert wait_until(lambda: plugin._outbox.pending() == 0)
        continuation = [k for k in _Conflict.stored if k.startswith("msg-1:")]
        assert len(continuation) == 1 and _Conflict.stored[continuation[0]]["generation_ids"] == ["gen-second"]
        # a 409 about the same generations (another figure for the same answer) is not re-keyed
        metadata = {"chat_id": "c", "message_id": "msg-1", "_owui_meter_generation_ids": ["gen-first"]}
        fresh = make_filter(f"http://127.0.0.1:{server.server_port}")
        asyncio.run(fresh.outlet(copy.deepcopy(body), __user__=ADA, __metadata__=metadata))
        assert wait_until(lambda: fresh._outbox.pending() == 0)
        assert len(_Conflict.stored) == 2
    finally:
        server.shutdown()


def test_the_key_is_per_generation_set_and_order_free():
    key = load_plugin()._answer_key
    assert key("m1", ["gen-b", "gen-a"]) == key("m1", ["gen-a", "gen-b", "gen-a"])
    assert key("m1", ["gen-a"]) != key("m1", ["gen-b"])
    assert key("m1", []) == "m1"
    assert key(None, ["gen-a"]).startswith("gen:")
    assert len(key("x" * 256, ["gen-a"])) <= 256


# --- 0.6 raw SSE streams -----------------------------------------------------------------------------


def sse_text(gen_id="gen-sse0001", content="naïve ✓ answer", usage=None):
    usage = usage or {"prompt_tokens": 11, "completion_tokens": 13, "cost": 0.00000945,
                      "completion_tokens_details": {"reasoning_tokens": 2}}
    lines = [": OPENROUTER PROCESSING", ""]
    for piece in (content[:6], content[6:]):
        lines += ["data: " + json.dumps({"id": gen_id, "model": "openai/gpt-4o-mini", "choices": [{"delta": {"content": piece}}]}, ensure_ascii=False), ""]
    lines += ["data: " + json.dumps({"id": gen_id, "model": "openai/gpt-4o-mini", "choices": [], "usage": usage}), "", "data: [DONE]", ""]
    return "\r\n".join(lines).encode("utf-8")


def test_raw_stream_split_anywhere_is_reported_once_from_the_stream_hook(live_meter):
    data = sse_text()
    plugin = make_filter(live_meter.url)
    rng = random.Random(7)
    for run in range(3):
        metadata = {"chat_id": None, "message_id": None, "session_id": None, "user_id": ADA["id"]}
        cuts = sorted(rng.sample(range(1, len(data)), 40)) if run else list(range(1, len(data)))  # run 0: byte by byte
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        assert b"".join(pieces) == data
        for piece in pieces:
            assert plugin.stream(piece, __user__={"id": ADA["id"]}, __metadata__=metadata) is piece
        json.dumps(metadata)  # what the plugin keeps there stays JSON-safe: Open WebUI may serialise it
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    [event] = live_meter.get_json("/api/v1/events")["events"]  # three replays of one generation: one answer
    assert (event["user_id"], event["model"], event["source"]) == (ADA["id"], "openai/gpt-4o-mini", "api")
    assert (event["prompt_tokens"], event["completion_tokens"], event["reasoning_tokens"]) == (11, 13, 2)
    assert event["cost_nano"] == 9450 and event["generation_ids"] == ["gen-sse0001"]


def test_raw_stream_without_usage_is_reported_at_done_with_its_ids(live_meter, fake):
    fake.add_generation("gen-nousage01", 0.0000321)
    plugin = make_filter(live_meter.url)
    text = sse_text("gen-nousage01").decode().split("\r\n")
    text = [line for line in text if '"usage"' not in line]
    metadata = {"user_id": ADA["id"]}
    for line in text:
        plugin.stream((line + "\n").encode(), __metadata__=metadata)
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    live_meter.meter.resolver.run_once()
    [event] = live_meter.get_json("/api/v1/events")["events"]
    assert (event["user_id"], event["cost_source"], event["cost_nano"]) == (ADA["id"], "generation", 32_100)


def test_a_request_whose_stream_reported_is_not_reported_again_by_outlet(live_meter):
    """Should a version give both raw bytes and an outlet to one request, it is one answer."""
    plugin = make_filter(live_meter.url)
    metadata = {"user_id": ADA["id"]}
    for line in sse_text("gen-both00001").split(b"\r\n"):
        plugin.stream(line + b"\n", __user__=ADA, __metadata__=metadata)
    outlet = load_fixture("api-stream.outlet.json")
    asyncio.run(plugin.outlet(copy.deepcopy(outlet["body"]), __user__=ADA, __metadata__=metadata))
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    assert len(all_events(live_meter.meter)) == 1


def test_stream_hook_never_raises_and_returns_every_event_unchanged():
    plugin = load_plugin().Filter()
    plugin.valves.meter_url = f"http://127.0.0.1:{free_port()}"
    odd = [None, 3, "not sse", b"\xff\xfe", b"data: {not json}\n", b"data: [1, 2]\n", {"id": 5}, {"id": "gen-x", "usage": "?"}, b"data: " + b"x" * 2_000_000]
    for metadata in (None, {}, {"user_id": None}, {"_owui_meter_sse": "garbage"}):
        for event in odd:
            assert plugin.stream(event, __metadata__=metadata) is event


def test_stream_keeps_ids_in_order_without_duplicates():
    plugin = load_plugin().Filter()
    metadata = {}
    for gen in ("gen-a", "gen-a", "gen-b", None, "chatcmpl-x", "gen-a"):
        event = {"id": gen, "choices": []}
        assert plugin.stream(event, __metadata__=metadata) is event
    assert metadata["_owui_meter_generation_ids"] == ["gen-a", "gen-b"]
    assert plugin.stream("not a dict", __metadata__=None) == "not a dict"


# --- 0.6 web chats: the link from stream to a fresh-metadata outlet ----------------------------------


def test_links_are_bounded_and_expire(monkeypatch):
    module = load_plugin()
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    links = module._Expiring(ttl=60, limit=3)
    for name in ("m1", "m2", "m3", "m4"):
        links.add_id(name, "gen-" + name)
    assert len(links) == 3 and links.take("m1") is None  # the oldest went first
    assert links.take("m2") == ["gen-m2"] and links.take("m2") is None  # taken once
    now[0] += 61
    assert links.take("m3") is None and links.get("m4") is None  # expired
    links.add_id("m5", "gen-1")
    assert len(links) == 1  # expired entries are pruned when others arrive


def test_links_take_concurrent_streams_safely():
    links = load_plugin()._Expiring(ttl=60, limit=10_000)

    def add(worker):
        for i in range(150):
            links.add_id(f"m{i % 10}", f"gen-{worker}-{i}")

    threads = [threading.Thread(target=add, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [links.take(f"m{i}") for i in range(10)]
    assert sorted(len(ids) for ids in taken) == [120] * 10  # 8 workers x 15 ids each, none lost
    assert len({i for ids in taken for i in ids}) == 1200


def test_06_outlet_after_the_link_expired_is_still_billed_with_its_inline_cost(live_meter, monkeypatch):
    module = load_plugin()
    plugin = module.Filter()
    plugin.valves.meter_url, plugin.valves.api_key = live_meter.url, API_KEY
    real = time.monotonic
    replay_calls = stream_calls("ui", "0.6.43")
    metadata = copy.deepcopy(replay_calls[0][2])
    for event, user, _, _ in replay_calls:
        plugin.stream(event, __user__=user, __metadata__=metadata)
    monkeypatch.setattr(module.time, "monotonic", lambda: real() + module.LINK_TTL_SECONDS + 1)
    outlet = load_fixture("ui.outlet.json", "0.6.43")
    asyncio.run(plugin.outlet(copy.deepcopy(outlet["body"]), __user__=outlet["__user__"], __metadata__=copy.deepcopy(outlet["__metadata__"])))
    monkeypatch.setattr(module.time, "monotonic", real)
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    [event] = live_meter.get_json("/api/v1/events")["events"]
    assert (event["key"], event["generation_ids"], event["cost_source"]) == (outlet["body"]["id"], [], "inline")


# --- the plugin's own worker: nothing lost --------------------------------------------------------


def test_slow_meter_more_answers_than_threads_all_arrive_once(app, serve):
    slow = SlowMeter(app, {"/api/v1/outlet": 0.15})
    meter = serve(slow)
    plugin = make_filter(meter.url, timeout_seconds=0.2)
    answers = synthetic_answers(40)
    started = time.monotonic()
    asyncio.run(outlets(plugin, answers))
    assert time.monotonic() - started < 1.5  # the chats waited timeout_seconds, not for the meter
    assert plugin._outbox.pending() > 0  # most were still on their way
    assert wait_until(lambda: plugin._outbox.pending() == 0, timeout=30)
    rows = all_events(app.config["METER"])
    assert sorted(r["message_id"] for r in rows) == sorted(b["id"] for b, _, _ in answers)
    assert sum(r["prompt_tokens"] for r in rows) == sum(100 + i for i in range(40))
    assert slow.most["/api/v1/outlet"] <= load_plugin().SENDERS  # bounded: the plugin's own threads


def test_meter_down_then_back_the_backlog_drains_in_the_background_once(app, serve):
    port = free_port()
    plugin = make_filter(f"http://127.0.0.1:{port}", timeout_seconds=0.5)
    inlet = load_fixture("ui.inlet.json")
    body = asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert body["messages"] == inlet["body"]["messages"]  # allowed, unchanged
    answers = synthetic_answers(120)
    asyncio.run(outlets(plugin, answers))
    assert plugin._outbox.pending() == 120

    serve(app, port=port)  # the meter comes back on its port
    # one chat starts: its inlet gets the decision, and the backlog goes on its own afterwards
    asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert wait_until(lambda: plugin._outbox.pending() == 0, timeout=30)
    rows = all_events(app.config["METER"])
    assert len(rows) == 120 and len({r["key"] for r in rows}) == 120
    # sent again (a retry): still 120
    asyncio.run(outlets(plugin, answers[:10]))
    assert wait_until(lambda: plugin._outbox.pending() == 0)
    assert len(all_events(app.config["METER"])) == 120


def test_refused_key_keeps_answers_tells_the_admin_and_sends_them_once_fixed(live_meter, caplog):
    plugin = make_filter(live_meter.url, api_key="wrong-key-wrong-key")
    with caplog.at_level(logging.ERROR, logger="owui_meter.plugin"):
        for case in ("api-stream", "api-nonstream", "user2"):
            replay(plugin, case, "0.12.4")
        asyncio.run(outlets(plugin, synthetic_answers(28, user=load_fixture("user2.outlet.json")["__user__"])))
    assert wait_until(lambda: plugin._outbox.refused_status() == 401)
    assert plugin._outbox.pending() == 31
    started = time.monotonic()
    asyncio.run(outlets(plugin, synthetic_answers(29)[28:]))  # no notice can come: the chat does not wait for one
    assert time.monotonic() - started < 0.5
    assert all_events(live_meter.meter) == []
    assert any("refused the plugin's API key (HTTP 401)" in r.getMessage() for r in caplog.records)

    # the next notice an admin sees says so; a plain user sees no such line
    emitted = []
    replay(plugin, "ui", "0.12.4", emitted=emitted)
    [status] = [e for e in emitted if e["type"] == "status"]
    assert "refuses this plugin's API key (HTTP 401)" in status["data"]["description"]
    assert "33 answers are kept" in status["data"]["description"]
    user_emitted = []
    bob = load_fixture("user2.outlet.json")
    asyncio.run(plugin.outlet(copy.deepcopy(bob["body"]), __user__=bob["__user__"], __metadata__={}, __event_emitter__=_collect(user_emitted)))
    assert user_emitted == []

    plugin.valves.api_key = API_KEY  # the admin fixes the valve
    assert wait_until(lambda: plugin._outbox.pending() == 0, timeout=10)
    rows = all_events(live_meter.meter)
    assert len(rows) == 33 and len({r["key"] for r in rows}) == 33
    assert plugin._outbox.refused_status() is None


def _collect(into):
    async def emitter(event):
        into.append(event)

    return emitter


def test_answers_the_meter_refuses_for_good_are_dropped_not_retried(live_meter, caplog):
    plugin = make_filter(live_meter.url)
    body, user, metadata = synthetic_answers(1)[0]
    body["model"] = "m" * 600  # the meter answers 400: model too long
    with caplog.at_level(logging.WARNING, logger="owui_meter.plugin"):
        asyncio.run(plugin.outlet(body, __user__=user, __metadata__=metadata))
        assert wait_until(lambda: plugin._outbox.pending() == 0)
    assert all_events(live_meter.meter) == []
    assert any("refused an answer for good" in r.getMessage() and "400" in r.getMessage() for r in caplog.records)


class _Busy(http.server.BaseHTTPRequestHandler):
    """A stand-in meter whose first outlets get 503 with Retry-After (a full disk), then 202."""

    refusals = 2
    outlets = []  # arrival times

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/api/v1/inlet":
            status, headers, answer = 200, {}, {"allow": True, "message": None}
        else:
            _Busy.outlets.append(time.monotonic())
            busy = len(_Busy.outlets) <= _Busy.refusals
            status, headers = (503, {"Retry-After": "2"}) if busy else (202, {})
            answer = {"error": "disk full"} if busy else {"notice": "ok"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_the_meters_retry_after_is_honoured_even_when_an_inlet_succeeds():
    _Busy.outlets = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plugin = make_filter(f"http://127.0.0.1:{server.server_port}", timeout_seconds=0.5)
        body, user, metadata = synthetic_answers(1)[0]
        asyncio.run(plugin.outlet(body, __user__=user, __metadata__=metadata))
        assert wait_until(lambda: len(_Busy.outlets) == 1)
        inlet = load_fixture("ui.inlet.json")
        asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
        assert wait_until(lambda: plugin._outbox.pending() == 0, timeout=10)
        gaps = [b - a for a, b in zip(_Busy.outlets, _Busy.outlets[1:])]
        assert len(_Busy.outlets) == 3 and all(gap >= 1.9 for gap in gaps)  # not before Retry-After
    finally:
        server.shutdown()


def test_the_queue_is_bounded_and_logs_what_it_drops(caplog):
    module = load_plugin()
    plugin = make_filter(f"http://127.0.0.1:{free_port()}")  # nothing listens
    with caplog.at_level(logging.ERROR, logger="owui_meter.plugin"):
        for i in range(module.QUEUE_LIMIT + 5):
            plugin._outbox.put({"key": f"k{i}"})
    # senders hold at most one answer each while they try; the queue holds QUEUE_LIMIT
    assert module.QUEUE_LIMIT <= plugin._outbox.pending() <= module.QUEUE_LIMIT + module.SENDERS
    assert 1 <= plugin._outbox.dropped <= 5
    dropped = [r.getMessage() for r in caplog.records if "dropped one" in r.getMessage()]
    assert len(dropped) == plugin._outbox.dropped
    assert all(any(f"(key k{i})" in m for i in range(10)) for m in dropped)  # the longest waiting went


def test_the_api_key_is_never_logged(caplog):
    plugin = make_filter(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    with caplog.at_level(logging.DEBUG):
        replay(plugin, "ui", "0.12.4")
        time.sleep(0.3)
    assert caplog.records, "the failures should have been logged"
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


# --- inlet: the budget decision first, within timeout_seconds --------------------------------------


def test_over_budget_user_is_blocked_even_with_a_backlog_and_a_slow_meter(app, serve):
    """Issue 12 item 14: after an outage, inlet used to send 50 queued answers before deciding."""
    meter = app.config["METER"]
    client = app.test_client()
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET, days=1, name='tester')}"}
    ada = load_fixture("ui.inlet.json")["__user__"]
    assert client.post("/api/v1/budgets", json={"period": "month", "scope": "user", "scope_id": ada["id"], "limit_usd": 1}, headers=admin).status_code == 201
    spent = client.post("/api/v1/outlet", json={"key": "spent", "user": {"id": ada["id"]}, "model": "m", "usage": {"cost": 2}}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert spent.status_code == 202

    port = free_port()
    plugin = make_filter(f"http://127.0.0.1:{port}", timeout_seconds=1)
    bob = load_fixture("user2.outlet.json")["__user__"]
    asyncio.run(outlets(plugin, synthetic_answers(200, user=bob)))  # the outage: 200 answers wait
    assert plugin._outbox.pending() == 200

    slow = SlowMeter(app, {"/api/v1/outlet": 0.05, "/api/v1/inlet": 0.2})
    serve(slow, port=port)  # back, but slow: 50 answers would take 2.5 s
    inlet = load_fixture("ui.inlet.json")
    started = time.monotonic()
    with pytest.raises(Exception, match=r"You have used \$2\.00 of your \$1\.00 monthly budget"):
        asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=ada, __metadata__={}))
    assert time.monotonic() - started < 1.0
    assert wait_until(lambda: plugin._outbox.pending() == 0, timeout=30)  # and the backlog still arrives
    assert meter.db.query_one("SELECT count(*) AS n FROM events WHERE user_id = ?", (bob["id"],))["n"] == 200


class _Stub(http.server.BaseHTTPRequestHandler):
    """A stand-in meter on loopback that answers inlet with a fixed decision, slowly if asked."""

    decision = {"allow": False, "message": "You have used $20.00 of your $20.00 monthly budget."}
    delay = 0.0
    status = 200

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.delay)
        data = json.dumps(self.decision if self.status == 200 else {"error": "nope"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_meter():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    _Stub.delay, _Stub.status = 0.0, 200
    _Stub.decision = {"allow": False, "message": "You have used $20.00 of your $20.00 monthly budget."}


def test_blocked_user_sees_the_meters_message(stub_meter):
    plugin = make_filter(f"http://127.0.0.1:{stub_meter.server_port}")
    inlet = load_fixture("ui.inlet.json")
    with pytest.raises(Exception, match=r"You have used \$20\.00"):
        asyncio.run(plugin.inlet(inlet["body"], __user__=inlet["__user__"], __metadata__={}))


def test_slow_meter_does_not_stall_the_chat(stub_meter):
    _Stub.delay = 3.0
    plugin = make_filter(f"http://127.0.0.1:{stub_meter.server_port}", timeout_seconds=0.5)
    inlet = load_fixture("ui.inlet.json")
    started = time.monotonic()
    body = asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert time.monotonic() - started < 1.0  # well before the meter's 3 s answer
    assert body["messages"] == inlet["body"]["messages"]


def test_many_simultaneous_inlets_are_answered_by_a_bounded_pool(stub_meter):
    _Stub.delay, _Stub.decision = 0.2, {"allow": True, "message": None}
    plugin = make_filter(f"http://127.0.0.1:{stub_meter.server_port}", timeout_seconds=2)
    inlet = load_fixture("ui.inlet.json")
    before = threading.active_count()

    async def many():
        return await asyncio.gather(*(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}) for _ in range(24)))

    started = time.monotonic()
    bodies = asyncio.run(many())
    elapsed = time.monotonic() - started
    assert len(bodies) == 24 and all(b["messages"] == inlet["body"]["messages"] for b in bodies)
    assert 0.55 < elapsed < 1.8  # 24 checks of 0.2 s through 8 threads: three rounds, not one, not 24
    assert threading.active_count() - before <= load_plugin().CHECKERS


@pytest.mark.parametrize("how", ["down", "slow", "refused", "error"])
def test_on_meter_down_block_stops_the_chat_when_there_is_no_decision(stub_meter, how):
    url = f"http://127.0.0.1:{stub_meter.server_port}"
    if how == "down":
        url = f"http://127.0.0.1:{free_port()}"
    _Stub.delay = 2.0 if how == "slow" else 0.0
    _Stub.status = {"refused": 401, "error": 500}.get(how, 200)
    inlet = load_fixture("ui.inlet.json")
    blocking = make_filter(url, timeout_seconds=0.5, on_meter_down="block")
    started = time.monotonic()
    with pytest.raises(Exception, match="usage meter cannot be reached"):
        asyncio.run(blocking.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert time.monotonic() - started < 1.2
    allowing = make_filter(url, timeout_seconds=0.5)  # the default: "allow"
    assert asyncio.run(allowing.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))["messages"] == inlet["body"]["messages"]


def test_on_meter_down_block_lets_allowed_users_chat(live_meter):
    plugin = make_filter(live_meter.url, on_meter_down="block")
    inlet = load_fixture("ui.inlet.json")
    body = asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert body["messages"] == inlet["body"]["messages"]


# --- the notice and small valves ----------------------------------------------------------------------


def test_status_line_shows_the_meters_notice(live_meter):
    emitted = []
    replay(make_filter(live_meter.url), "ui", "0.12.4", emitted=emitted)
    [status] = [e for e in emitted if e["type"] == "status"]
    assert status["data"]["done"] is True
    assert "9 in / 13 out" in status["data"]["description"] and "$" in status["data"]["description"]


def test_no_status_line_when_switched_off(live_meter):
    emitted = []
    replay(make_filter(live_meter.url, show_status=False), "ui", "0.12.4", emitted=emitted)
    assert emitted == []
    assert len(all_events(live_meter.meter)) == 1


def test_tag_user_sets_the_openai_user_field(live_meter):
    inlet = load_fixture("api-stream.inlet.json")
    body = asyncio.run(make_filter(live_meter.url).inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert body["user"] == inlet["__user__"]["id"]
    untouched = asyncio.run(make_filter(live_meter.url, tag_user=False).inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert "user" not in untouched


def test_outlet_never_raises_on_odd_bodies(live_meter):
    plugin = make_filter(live_meter.url)
    for body in ({}, {"messages": "x"}, {"id": "m", "messages": [None, 3]}, None, {"id": 5, "chat_id": ["x"], "messages": [{"id": 5, "usage": 3}]}):
        assert asyncio.run(plugin.outlet(body, __user__=ADA, __metadata__={})) == body
    assert asyncio.run(plugin.outlet({"id": "m"}, __user__="nobody", __metadata__="x")) == {"id": "m"}


def test_the_plugin_header_states_the_supported_versions():
    header = (REPO / "plugin" / "owui_meter.py").read_text().split('"""')[1]
    fields = dict(line.split(": ", 1) for line in header.strip().splitlines())
    assert fields["required_open_webui_version"] == "0.6.0"
    assert fields["tested_open_webui_versions"] == "0.6.43, 0.12.4"
    readme = (REPO / "README.md").read_text()
    assert "0.6.43" in readme and "0.12.4" in readme
