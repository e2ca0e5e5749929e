"""The Open WebUI filter, driven with the payloads a real Open WebUI 0.12.4 handed to its hooks."""

import asyncio
import copy
import http.server
import importlib.util
import json
import logging
import threading
import time

import pytest

from conftest import ADA, API_KEY, REPO, free_port, load_fixture


def load_plugin():
    spec = importlib.util.spec_from_file_location("owui_meter_plugin", REPO / "plugin" / "owui_meter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_filter(url, **valves):
    plugin = load_plugin().Filter()
    plugin.valves.meter_url = url
    plugin.valves.api_key = API_KEY
    plugin.valves.timeout_seconds = valves.pop("timeout_seconds", 3)
    for name, value in valves.items():
        setattr(plugin.valves, name, value)
    return plugin


def run_case(plugin, case, *, emitted=None, metadata=None):
    """inlet, every recorded stream chunk, outlet — sharing ONE metadata dict, as Open WebUI does."""
    inlet = load_fixture(f"{case}.inlet.json")
    metadata = metadata if metadata is not None else copy.deepcopy(inlet["__metadata__"])

    async def emitter(event):
        if emitted is not None:
            emitted.append(event)

    async def go():
        await plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__=metadata, __event_emitter__=emitter)
        try:
            chunks = load_fixture(f"{case}.stream-chunks.json")
        except FileNotFoundError:
            chunks = []
        for chunk in chunks:
            if "event" in chunk:
                plugin.stream(chunk["event"], __metadata__=metadata)
        try:
            outlet = load_fixture(f"{case}.outlet.json")
        except FileNotFoundError:
            return None
        await plugin.outlet(copy.deepcopy(outlet["body"]), __user__=outlet["__user__"], __metadata__=metadata, __event_emitter__=emitter)
        return outlet

    return asyncio.run(go()), metadata


def chunk_ids(case):
    ids = []
    for chunk in load_fixture(f"{case}.stream-chunks.json"):
        gen = chunk.get("event", {}).get("id")
        if gen and gen not in ids:
            ids.append(gen)
    return ids


def answer_usage(outlet):
    body = outlet["body"]
    return next(m for m in body["messages"] if m.get("id") == body["id"])["usage"]


@pytest.mark.parametrize("case", ["api-nonstream", "api-stream", "api-stream-reasoning", "ui", "ui-followup", "user2", "user2-api-stream"])
def test_each_recorded_case_is_metered_once_with_the_answers_usage(live_meter, case):
    plugin = make_filter(live_meter.url)
    outlet, _ = run_case(plugin, case)
    events = live_meter.get_json("/api/v1/events")["events"]
    assert len(events) == 1
    [event] = events
    usage = answer_usage(outlet)
    assert event["key"] == outlet["body"]["id"]
    assert event["user_id"] == outlet["__user__"]["id"]
    assert event["model"] == outlet["body"]["model"]
    assert (event["prompt_tokens"], event["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert event["reasoning_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"]
    assert event["cost_usd"] == pytest.approx(usage["cost"])
    assert event["cost_source"] == "inline"
    assert event["source"] == ("api" if case.startswith(("api", "user2-api")) else "ui")
    expected_ids = [] if case == "api-nonstream" else chunk_ids(case)
    assert event["generation_ids"] == expected_ids


def test_followup_counts_only_the_new_answer(live_meter):
    plugin = make_filter(live_meter.url)
    run_case(plugin, "ui")
    run_case(plugin, "ui-followup")
    events = {e["key"]: e for e in live_meter.get_json("/api/v1/events")["events"]}
    followup = events["ea85750c-f0de-4c86-98a5-7b24af66cc41"]
    assert (followup["prompt_tokens"], followup["completion_tokens"]) == (41, 12)
    usage = live_meter.get_json("/api/v1/usage", group_by="user")["total"]
    assert (usage["answers"], usage["prompt_tokens"], usage["completion_tokens"]) == (2, 9 + 41, 13 + 12)


def test_legacy_chat_completed_neither_adds_nor_changes(live_meter):
    plugin = make_filter(live_meter.url)
    _, metadata = run_case(plugin, "ui")
    before = live_meter.get_json("/api/v1/events")["events"]
    legacy = load_fixture("legacy-completed.outlet.json")
    asyncio.run(plugin.outlet(legacy["body"], __user__=legacy["__user__"], __metadata__=legacy["__metadata__"]))
    assert live_meter.get_json("/api/v1/events")["events"] == before


@pytest.mark.parametrize("case", ["api-stream-upstream-429", "ui-upstream-429"])
def test_failed_upstream_records_no_answer(live_meter, case):
    plugin = make_filter(live_meter.url)
    run_case(plugin, case)
    assert live_meter.get_json("/api/v1/events")["events"] == []
    # the inlet still introduced the user to the meter
    assert live_meter.meter.db.query_one("SELECT count(*) AS n FROM users")["n"] == 1


def test_status_line_shows_the_meters_notice(live_meter):
    emitted = []
    run_case(make_filter(live_meter.url), "ui", emitted=emitted)
    [status] = [e for e in emitted if e["type"] == "status"]
    assert status["data"]["done"] is True
    assert "9 in / 13 out" in status["data"]["description"] and "$" in status["data"]["description"]


def test_no_status_line_when_switched_off(live_meter):
    emitted = []
    run_case(make_filter(live_meter.url, show_status=False), "ui", emitted=emitted)
    assert emitted == []
    assert len(live_meter.get_json("/api/v1/events")["events"]) == 1


def test_tag_user_sets_the_openai_user_field(live_meter):
    inlet = load_fixture("api-stream.inlet.json")
    body = asyncio.run(make_filter(live_meter.url).inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert body["user"] == inlet["__user__"]["id"]
    untouched = asyncio.run(make_filter(live_meter.url, tag_user=False).inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert "user" not in untouched


def test_meter_down_chat_goes_on_and_answers_are_sent_later_exactly_once(app):
    port = free_port()
    plugin = make_filter(f"http://127.0.0.1:{port}", timeout_seconds=1)
    inlet = load_fixture("ui.inlet.json")
    body = asyncio.run(plugin.inlet(copy.deepcopy(inlet["body"]), __user__=inlet["__user__"], __metadata__={}))
    assert body["messages"] == inlet["body"]["messages"]  # allowed, unchanged
    run_case(plugin, "api-stream")
    run_case(plugin, "ui")
    assert len(plugin._queue) == 2

    # the meter comes up on that port; the next call sends what waited, then its own answer
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        run_case(plugin, "api-nonstream")
        run_case(plugin, "api-stream")  # the same answer again: a retry must not count twice
        keys = [r["key"] for r in app.config["METER"].db.query("SELECT key FROM events ORDER BY id")]
        assert keys == [load_fixture(f"{c}.outlet.json")["body"]["id"] for c in ("api-stream", "ui", "api-nonstream")]
        assert len(plugin._queue) == 0
    finally:
        server.close()


class _Stub(http.server.BaseHTTPRequestHandler):
    """A stand-in meter on loopback that answers inlet with a fixed decision, slowly if asked."""

    decision = {"allow": False, "message": "You have used $20.00 of your $20.00 monthly budget."}
    delay = 0.0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.delay)
        data = json.dumps(self.decision).encode()
        self.send_response(200)
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
    _Stub.delay = 0.0


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
    assert time.monotonic() - started < 2.5  # well before the meter's 3 s answer
    assert body["messages"] == inlet["body"]["messages"]


def test_refused_answers_are_dropped_not_retried_forever(live_meter):
    plugin = make_filter(live_meter.url)
    plugin.valves.api_key = "wrong-key-wrong-key"
    run_case(plugin, "ui")
    assert len(plugin._queue) == 0  # 401 will not get better by retrying


def test_the_api_key_is_never_logged(caplog):
    plugin = make_filter(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    with caplog.at_level(logging.DEBUG):
        run_case(plugin, "ui")
    assert caplog.records, "the failures should have been logged"
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


def test_stream_keeps_ids_in_order_without_duplicates():
    plugin = load_plugin().Filter()
    metadata = {}
    for gen in ("gen-a", "gen-a", "gen-b", None, "chatcmpl-x", "gen-a"):
        event = {"id": gen, "choices": []}
        assert plugin.stream(event, __metadata__=metadata) is event
    assert metadata["_owui_meter_generation_ids"] == ["gen-a", "gen-b"]
    assert plugin.stream("not a dict", __metadata__=None) == "not a dict"


def test_outlet_never_raises_on_odd_bodies(live_meter):
    plugin = make_filter(live_meter.url)
    for body in ({}, {"messages": "x"}, {"id": "m", "messages": [None, 3]}, None):
        assert asyncio.run(plugin.outlet(body, __user__=ADA, __metadata__={})) == body
