"""Pass-through capture (METER_PASSTHROUGH=true) against the fake OpenRouter, through a real waitress.

Every generation the fake makes must end up in the ledger once, for the right user, at the
fake's cost, whatever order the plugin's report and the pass-through's record arrive in.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.parse

import jwt
import pytest
import requests

from conftest import ADA, API_KEY, BOB, REPO, LiveMeter, assert_invariants, make_settings, outlet_body
from fake_openrouter import FakeOpenRouter
from owui_meter import clock, create_app
from owui_meter.ingest import parse_usage
from owui_meter.money import format_usd, usd_to_nano
from owui_meter.passthrough import BUFFER_LIMIT, Capture, Watcher
from test_dashboard import log_in

OPENROUTER_KEY = "sk-or-test"
FORWARD_SECRET = "forward-secret-0123456789-0123456789"
WINDOW = 120
MODEL = "openai/gpt-4o-mini"


# --- set-up -------------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.t = time.time()

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def now(monkeypatch):
    moved = Clock()
    monkeypatch.setattr(clock, "time_fn", lambda: moved.t)
    return moved


@pytest.fixture
def fake():
    with FakeOpenRouter(OPENROUTER_KEY) as fake:
        yield fake


@pytest.fixture
def start(data_dir, fake):
    started = []

    def start(**extra):
        app = create_app(make_settings(data_dir, METER_PASSTHROUGH="true", OPENROUTER_BASE_URL=fake.url, **extra))
        live = LiveMeter(app).start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
        live.meter.stop()


@pytest.fixture
def live(start):
    return start()


def owui_headers(user: dict | None, chat_id: str | None = None) -> dict:
    """What Open WebUI sends upstream with ENABLE_FORWARD_USER_INFO_HEADERS=true (name percent-encoded)."""
    headers = {"Authorization": f"Bearer {OPENROUTER_KEY}"}
    if user is not None:
        headers.update({"X-OpenWebUI-User-Name": urllib.parse.quote(user["name"], safe=" "), "X-OpenWebUI-User-Id": user["id"],
                        "X-OpenWebUI-User-Email": user["email"], "X-OpenWebUI-User-Role": user["role"]})
    if chat_id:
        headers["X-OpenWebUI-Chat-Id"] = chat_id
    return headers


def forward_jwt(user: dict, secret: str = FORWARD_SECRET, *, exp_in: int = 300, **override) -> str:
    claims = {"sub": user["id"], "email": user["email"], "name": user["name"], "role": user["role"], "iss": "open-webui",
              "iat": int(clock.now()), "exp": int(clock.now()) + exp_in} | override
    return jwt.encode(claims, secret, algorithm="HS256")


def chat(live, headers, *, stream=False, content="Hello", model=MODEL, **kw) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
    return requests.post(live.url + "/openrouter/v1/chat/completions", json=body, headers=headers, timeout=10, **kw)


def gen_id_of(response: requests.Response) -> str:
    if response.headers["Content-Type"].startswith("text/event-stream"):
        first = next(line for line in response.text.splitlines() if line.startswith("data: {"))
        return json.loads(first[6:])["id"]
    return response.json()["id"]


def outlet(live, key, gen_ids, *, user=ADA, cost=None, prompt=10, completion=20, model=MODEL, **extra) -> dict:
    response = requests.post(live.url + "/api/v1/outlet", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10,
                             json=outlet_body(key=key, user=user, model=model, cost=cost, prompt=prompt, completion=completion,
                                              generation_ids=gen_ids, **extra))
    assert response.status_code == 202, response.text
    return response.json()


def buffered(live) -> None:
    """Wait until every answer has been closed, and so its record buffered (the client may have
    read the last byte a moment before the server closed the response)."""
    deadline = time.monotonic() + 5
    while live.meter.passthrough.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.meter.passthrough.in_flight == 0


def settle(live, now) -> None:
    """Write what the pass-through buffered, let the window pass, bill what nobody claimed."""
    buffered(live)
    live.meter.passthrough.flush()
    now.advance(WINDOW + 1)
    live.meter.passthrough.sweep()


def events(live) -> list[dict]:
    return live.meter.db.query("SELECT * FROM events ORDER BY id")


def owner(live, gen_id) -> int | None:
    row = live.meter.db.query_one("SELECT event_id FROM generations WHERE id = ?", (gen_id,))
    return row["event_id"] if row else None


def fake_cost(fake, gen_id) -> int:
    return usd_to_nano(fake.generation(gen_id)["total_cost"])


def usage(response) -> dict:
    """The usage object of a response, streamed or not."""
    if response.headers["Content-Type"].startswith("text/event-stream"):
        lines = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        return next(chunk["usage"] for chunk in lines if "usage" in chunk)
    return response.json()["usage"]


# --- forwarding ---------------------------------------------------------------------------------------


def test_non_streamed_answer_comes_back_unchanged_and_is_billed_once_at_the_fakes_cost(live, fake, now):
    response = chat(live, owui_headers(ADA))
    assert response.status_code == 200
    gen_id = gen_id_of(response)
    assert response.json()["choices"][0]["message"]["content"] == "OK"
    sent = fake.chat_requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {OPENROUTER_KEY}"  # the caller's key, unchanged
    assert not any(name.lower().startswith("x-openwebui-") for name in sent["headers"])  # who asked stays with the meter
    assert json.loads(sent["body"])["messages"][0]["content"] == "Hello"

    buffered(live)
    live.meter.passthrough.flush()
    live.meter.passthrough.sweep()
    assert events(live) == []  # within the window: waiting for the plugin to claim it
    settle(live, now)
    [event] = events(live)
    assert (event["key"], event["user_id"], event["source"], event["model"]) == (f"passthrough:{gen_id}", ADA["id"], "api", MODEL)
    assert (event["cost_nano"], event["cost_source"]) == (fake_cost(fake, gen_id), "inline")
    assert (event["prompt_tokens"], event["completion_tokens"]) == (usage(response)["prompt_tokens"], 1)
    assert owner(live, gen_id) == event["id"]  # queued for /generation confirmation
    assert live.meter.db.query_one("SELECT state FROM generations WHERE id = ?", (gen_id,))["state"] == "pending"
    user = live.meter.db.query_one("SELECT * FROM users WHERE id = ?", (ADA["id"],))
    assert (user["email"], user["name"], user["role"]) == (ADA["email"], ADA["name"], ADA["role"])
    now.advance(WINDOW + 1)
    live.meter.passthrough.sweep()
    assert len(events(live)) == 1
    stored = live.meter.db.query_one("SELECT * FROM passthrough_generations")
    assert set(stored) >= {"id", "model", "prompt_tokens"} and "Hello" not in json.dumps(stored)  # never the prompt


def test_streamed_answer_arrives_as_it_is_made_with_the_fakes_bytes(live, fake, now):
    fake.stream_words, fake.stream_delay = 6, 0.15
    started = time.perf_counter()
    response = requests.post(live.url + "/openrouter/v1/chat/completions", headers=owui_headers(ADA, chat_id="chat-1"), stream=True,
                             timeout=10, json={"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "stream": True})
    arrivals, raw = [], b""
    for piece in response.raw.stream(65536, decode_content=False):
        arrivals.append((time.perf_counter() - started, piece))
        raw += piece
    assert response.headers["Content-Type"] == "text/event-stream"
    first_word = next(at for at, piece in arrivals if b"word0" in piece)
    # the first word was in our hands long before the last one was made (6 x 0.15 s)
    assert first_word < 0.4 and arrivals[-1][0] > 0.85
    assert len([1 for _, piece in arrivals if b"word" in piece]) == 6  # word by word, not one buffered lump
    text = raw.decode()
    gen_id = json.loads(next(line for line in text.splitlines() if line.startswith("data: {"))[6:])["id"]
    # the bytes are the fake's own: its processing comment, every word, the usage chunk and [DONE]
    assert text.startswith(": OPENROUTER PROCESSING\n\n") and text.endswith("data: [DONE]\n\n")
    assert [line for line in text.splitlines() if "word" in line] == [line for line in text.splitlines() if '"content":"word' in line]
    assert text.count(f'"id":"{gen_id}"') == 6 + 2

    settle(live, now)
    [event] = events(live)
    row = live.meter.db.query_one("SELECT * FROM passthrough_generations")
    assert row["streamed"] == 1 and row["chat_id"] == "chat-1"
    assert (event["user_id"], event["source"], event["chat_id"]) == (ADA["id"], "ui", "chat-1")
    assert (event["cost_nano"], event["completion_tokens"]) == (fake_cost(fake, gen_id), 6)


def test_task_prompt_with_chat_id_is_billed_as_a_task_and_shown_as_one(live, fake, now):
    # a long chat history in the prompt, as Open WebUI's task prompts carry: it costs cents
    title = chat(live, owui_headers(BOB, chat_id="chat-9"), model="anthropic/claude-3.5-haiku",
                 content="### Task:\nGenerate a concise title summarizing the chat history.\n" + "history " * 25_000)
    answer = chat(live, owui_headers(BOB, chat_id="chat-9"), stream=True, content="What is a task?")
    api = chat(live, owui_headers(BOB), content="### Task: not one: no chat id")
    settle(live, now)
    by_gen = {e["key"].removeprefix("passthrough:"): e for e in events(live)}
    assert by_gen[gen_id_of(title)]["source"] == "task"
    assert by_gen[gen_id_of(answer)]["source"] == "ui"
    assert by_gen[gen_id_of(api)]["source"] == "api"

    admin = {"Authorization": f"Bearer {live.admin_token}"}
    listed = requests.get(live.url + "/api/v1/events", params={"source": "task"}, headers=admin, timeout=10).json()["events"]
    assert [e["key"] for e in listed] == [f"passthrough:{gen_id_of(title)}"]
    by_source = requests.get(live.url + "/api/v1/usage", params={"group_by": "source"}, headers=admin, timeout=10).json()["rows"]
    assert {r["key"] for r in by_source} == {"task", "ui", "api"}
    # the dashboard's source table has its own line for tasks, with their cost
    client = live.app.test_client()
    assert log_in(client, live.meter).status_code == 302
    page = client.get("/", query_string={"period": "month"}).get_data(as_text=True)
    tasks = live.meter.db.query_one("SELECT count(*) AS n, sum(cost_nano) AS cost FROM events WHERE source = 'task'")
    assert tasks["n"] == 1 and tasks["cost"] == fake_cost(fake, gen_id_of(title)) and format_usd(tasks["cost"], 2) != "$0.00"
    row = page[page.index("Open WebUI tasks (titles, tags, follow-ups)"):].split("</tr>")[0]
    assert f">{format_usd(tasks['cost'], 2)}<" in row and ">1<" in row
    # and Bob's own page: his task line, his web-UI line and his API line, each linking to its events
    page = client.get(f"/users/{BOB['id']}", query_string={"period": "month"}).get_data(as_text=True)
    table = page[page.index('id="sources"'):].split("</table>")[0]
    for source, name in (("task", "Open WebUI tasks (titles, tags, follow-ups)"), ("ui", "Web UI"), ("api", "API")):
        mine = live.meter.db.query_one("SELECT count(*) AS n, sum(cost_nano) AS cost FROM events WHERE source = ? AND user_id = ?", (source, BOB["id"]))
        row = table[table.index(f">{name}</a>"):].split("</tr>")[0]
        assert mine["n"] == 1 and f">{format_usd(mine['cost'], 2)}<" in row and ">1<" in row
        link = re.search(r'href="([^"]+)"', table[:table.index(f">{name}</a>")].rsplit("<tr>", 1)[1]).group(1).replace("&amp;", "&")
        listed = client.get(link).get_data(as_text=True)
        assert f"source={source}" in link and f"user={BOB['id']}" in link and listed.count('<tr class="event"') == 1
    csv = client.get("/events.csv", query_string={"source": "task"}).get_data(as_text=True)
    assert csv.count("\n") == 2 and ",task," in csv
    assert requests.get(live.url + "/api/v1/events", params={"source": "tasks"}, headers=admin, timeout=10).status_code == 400


def test_model_list_and_other_paths_pass_through(live, fake):
    response = requests.get(live.url + "/openrouter/v1/models", timeout=10)  # Open WebUI lists models without a user
    assert response.status_code == 200
    assert response.json() == requests.get(fake.url + "/models", timeout=10).json()
    key = requests.get(live.url + "/openrouter/v1/key", headers={"Authorization": f"Bearer {OPENROUTER_KEY}"}, timeout=10)
    assert key.status_code == 200 and key.json()["data"]["label"].startswith("sk-or-")
    assert fake.count("/key") == 1


def test_upstream_errors_pass_through_unchanged_and_record_nothing(live, fake, now):
    fake.set_model_error(MODEL, 404, "No endpoints found for openai/gpt-4o-mini.")
    direct = requests.post(fake.url + "/chat/completions", json={"model": MODEL, "messages": []}, headers=owui_headers(None), timeout=10)
    through = chat(live, owui_headers(ADA))
    assert (through.status_code, through.json()) == (direct.status_code, direct.json()) == (404, direct.json())
    fake.set_model_error(MODEL, None)
    fake.fail_next(1, 429, retry_after=7, path="/chat/completions")
    limited = chat(live, owui_headers(ADA), stream=True)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {"error": {"code": 429, "message": "Rate limit exceeded"}}
    refused = chat(live, {**owui_headers(ADA), "Authorization": "Bearer sk-or-wrong"})
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "No auth credentials found"
    settle(live, now)
    assert events(live) == [] and live.meter.db.query("SELECT * FROM passthrough_generations") == []


def test_upstream_down_gives_502_json_at_once(live, fake):
    fake.set_mode("down")
    started = time.perf_counter()
    response = chat(live, owui_headers(ADA), stream=True)
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == 502 and error["type"] == "upstream_error" and "could not be reached" in error["message"]


# --- who ----------------------------------------------------------------------------------------------


def test_recorded_open_webui_headers_bill_the_right_user(live, fake, now):
    """Both recordings' forwarded headers, replayed: each generation billed to the user Open WebUI named."""
    expected = {}
    for version in ("owui-0.12.4", "owui-0.6.43"):
        recorded = json.loads((REPO / "tests" / "fixtures" / version / "fake-openrouter.generations.json").read_text())
        for generation in recorded:
            headers = {k: v for k, v in generation["request_headers"].items() if k.lower().startswith("x-openwebui-")}
            headers["Authorization"] = f"Bearer {OPENROUTER_KEY}"
            response = chat(live, headers, stream=generation["streamed"], content=generation["last_user_message"],
                            model=generation["model"])
            assert response.status_code == 200
            chat_id = headers.get("X-OpenWebUI-Chat-Id")
            source = "api" if not chat_id else "task" if generation["last_user_message"].startswith("### Task:") else "ui"
            expected[gen_id_of(response)] = (headers["X-OpenWebUI-User-Id"], chat_id, source, generation["model"])
    settle(live, now)
    got = {e["key"].removeprefix("passthrough:"): (e["user_id"], e["chat_id"], e["source"], e["model"]) for e in events(live)}
    assert got == expected
    assert sum(1 for s in expected.values() if s[2] == "task") == 14  # 7 task calls in each recording
    names = {r["id"]: r["name"] for r in live.meter.db.query("SELECT id, name FROM users")}
    assert set(names.values()) == {"Ada Admin", "Bob User"}


def test_percent_encoded_names_are_read_back(live, now):
    zoe = {"id": "u-zoe", "email": "zoe@example.com", "name": "Zoë Ärger", "role": "user"}
    assert chat(live, owui_headers(zoe)).status_code == 200
    buffered(live)
    live.meter.passthrough.flush()
    assert live.meter.db.query_one("SELECT name FROM users WHERE id = 'u-zoe'")["name"] == "Zoë Ärger"


def test_signed_user_header_decides_who_and_a_request_without_a_valid_one_is_never_forwarded(start, fake, now):
    live = start(METER_FORWARD_JWT_SECRET=FORWARD_SECRET)
    # the JWT names Bob; a plain header claiming Ada is ignored
    good = chat(live, {**owui_headers(ADA), "X-OpenWebUI-User-Jwt": forward_jwt(BOB)}, stream=True)
    assert good.status_code == 200
    forwarded = len(fake.chat_requests)
    bad_tokens = {
        "missing": None,
        "wrong secret": forward_jwt(BOB, "another-secret-0123456789-0123456789"),
        "expired": forward_jwt(BOB, exp_in=-120),
        "wrong issuer": forward_jwt(BOB, iss="someone-else"),
        "no user": jwt.encode({"iss": "open-webui", "exp": int(clock.now()) + 300, "sub": ""}, FORWARD_SECRET, algorithm="HS256"),
        "alg none": jwt.encode({"sub": BOB["id"], "iss": "open-webui", "exp": int(clock.now()) + 300}, None, algorithm="none"),
        "garbage": "not-a-jwt",
    }
    for name, token in bad_tokens.items():
        headers = owui_headers(ADA) | ({"X-OpenWebUI-User-Jwt": token} if token else {})
        response = chat(live, headers)
        assert response.status_code == 401, name
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and "X-OpenWebUI-User-Jwt" in error["message"], name
    assert len(fake.chat_requests) == forwarded  # none of them reached OpenRouter
    # the model list needs no user (Open WebUI fetches it without one)
    assert requests.get(live.url + "/openrouter/v1/models", timeout=10).status_code == 200
    assert requests.head(live.url + "/openrouter/v1/models", timeout=10).status_code == 501  # the fake's own answer to HEAD
    assert requests.get(live.url + "/openrouter/v1/models", headers={"X-OpenWebUI-User-Jwt": "not-a-jwt"}, timeout=10).status_code == 401
    settle(live, now)
    [event] = events(live)
    assert (event["user_id"], event["key"]) == (BOB["id"], f"passthrough:{gen_id_of(good)}")
    assert live.meter.db.query_one("SELECT email FROM users WHERE id = ?", (BOB["id"],))["email"] == BOB["email"]


def test_request_without_a_user_is_forwarded_and_reported_unattributed(live, fake, now):
    response = chat(live, owui_headers(None), stream=True)
    assert response.status_code == 200
    settle(live, now)
    assert events(live) == []
    row = live.meter.db.query_one("SELECT state FROM passthrough_generations WHERE id = ?", (gen_id_of(response),))
    assert row["state"] == "unattributed"
    health = requests.get(live.url + "/healthcheck", timeout=10).json()["passthrough"]
    assert health["unidentified_requests"] == 1 and health["unattributed"] == 1
    assert "ENABLE_FORWARD_USER_INFO_HEADERS" in health["note"]


# --- budgets ------------------------------------------------------------------------------------------


def test_over_budget_user_gets_402_with_the_block_message_before_anything_is_forwarded(live, fake):
    admin = {"Authorization": f"Bearer {live.admin_token}"}
    created = requests.post(live.url + "/api/v1/budgets", headers=admin, timeout=10,
                            json={"scope": "user", "scope_id": ADA["id"], "period": "month", "limit_usd": "1.00"})
    assert created.status_code == 201, created.text
    outlet(live, "spent-it", [], cost=1.25)
    inlet = requests.post(live.url + "/api/v1/inlet", json={"user": ADA}, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).json()
    assert inlet["allow"] is False
    before = len(fake.chat_requests)
    response = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True, content="### Task:\nGenerate a title")
    assert response.status_code == 402
    assert response.json() == {"error": {"message": inlet["message"], "type": "insufficient_quota", "param": None, "code": 402}}
    assert "$1.25 of your $1.00" in inlet["message"]
    assert len(fake.chat_requests) == before
    assert chat(live, owui_headers(BOB)).status_code == 200  # others chat on


# --- the join with the plugin ---------------------------------------------------------------------------


def test_plugin_answer_first_then_pass_through_record_adds_nothing(live, fake, now):
    response = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True)
    gen_id, used = gen_id_of(response), usage(response)
    # the plugin's outlet is written before the pass-through's buffered record
    answer = outlet(live, "msg-1", [gen_id], cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"])
    assert answer["duplicate"] is False
    buffered(live)
    assert live.meter.passthrough.flush() == 1
    row = live.meter.db.query_one("SELECT state, event_id FROM passthrough_generations WHERE id = ?", (gen_id,))
    assert (row["state"], row["event_id"]) == ("claimed", answer["event_id"])
    settle(live, now)
    [event] = events(live)
    assert (event["key"], event["cost_nano"]) == ("msg-1", fake_cost(fake, gen_id))


def test_pass_through_first_then_plugin_answer_within_the_window_is_the_only_charge(live, fake, now):
    response = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True)
    gen_id, used = gen_id_of(response), usage(response)
    buffered(live)
    live.meter.passthrough.flush()
    now.advance(WINDOW - 5)
    live.meter.passthrough.sweep()
    answer = outlet(live, "msg-1", [gen_id], cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"])
    settle(live, now)
    [event] = events(live)
    assert event["id"] == answer["event_id"] == owner(live, gen_id)
    assert event["cost_nano"] == fake_cost(fake, gen_id)
    row = live.meter.db.query_one("SELECT state, event_id FROM passthrough_generations WHERE id = ?", (gen_id,))
    assert (row["state"], row["event_id"]) == ("claimed", event["id"])


def test_late_plugin_answer_for_a_generation_billed_on_its_own_is_a_duplicate(live, fake, now):
    response = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True)
    gen_id, used = gen_id_of(response), usage(response)
    settle(live, now)
    [billed] = events(live)
    for attempt in range(2):  # the plugin's retry of the same report too
        late = outlet(live, "msg-late", [gen_id], cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"])
        assert (late["duplicate"], late["event_id"]) == (True, billed["id"]), attempt
    assert len(events(live)) == 1
    admin = {"Authorization": f"Bearer {live.admin_token}"}
    total = requests.get(live.url + "/api/v1/usage", params={"group_by": "user"}, headers=admin, timeout=10).json()["total"]
    assert total["cost_nano"] == fake_cost(fake, gen_id) and total["answers"] == 1
    spend = live.meter.db.query("SELECT cost_nano FROM spend WHERE user_id = ? AND period = 'month'", (ADA["id"],))
    assert spend == [] or spend[0]["cost_nano"] == fake_cost(fake, gen_id)


def test_answer_part_of_which_was_billed_on_its_own_is_recorded_for_the_rest(live, fake, now):
    first = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True)
    settle(live, now)  # the first generation (a tool call, say) is billed on its own
    second = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True)
    buffered(live)
    live.meter.passthrough.flush()
    a, b = usage(first), usage(second)
    answer = outlet(live, "msg-2", [gen_id_of(first), gen_id_of(second)], cost=a["cost"] + b["cost"],
                    prompt=a["prompt_tokens"] + b["prompt_tokens"], completion=a["completion_tokens"] + b["completion_tokens"])
    assert answer["duplicate"] is False
    settle(live, now)
    rows = events(live)
    assert len(rows) == 2
    rest = next(e for e in rows if e["key"] == "msg-2")
    assert rest["prompt_tokens"] == b["prompt_tokens"] and rest["completion_tokens"] == b["completion_tokens"]
    assert abs(rest["cost_nano"] - fake_cost(fake, gen_id_of(second))) <= 1  # the sum of two floats, less the first
    assert owner(live, gen_id_of(second)) == rest["id"] and owner(live, gen_id_of(first)) != rest["id"]
    assert abs(sum(e["cost_nano"] for e in rows) - fake_cost(fake, gen_id_of(first)) - fake_cost(fake, gen_id_of(second))) <= 1


def test_non_streamed_answer_without_ids_claims_its_generation_by_what_it_cost(live, fake, now):
    """0.12 shows a filter no id for a non-streamed call: the answer is matched by user, model, tokens and cost."""
    response = chat(live, owui_headers(ADA))
    other = chat(live, owui_headers(ADA), content="A longer question that costs more")
    gen_id, used = gen_id_of(response), usage(response)
    buffered(live)
    live.meter.passthrough.flush()
    answer = outlet(live, "msg_api", [], cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"],
                    chat_id="", source="api")
    assert owner(live, gen_id) == answer["event_id"]  # it will be confirmed with the answer
    settle(live, now)
    keys = sorted(e["key"] for e in events(live))
    assert keys == sorted(["msg_api", f"passthrough:{gen_id_of(other)}"])
    # and after the window, the same answer reported late is a duplicate of what was billed
    late = chat(live, owui_headers(BOB))
    answered_at = clock.now()  # the plugin sends the answer's own time, however late the report
    settle(live, now)
    used = usage(late)
    again = outlet(live, "msg_api_late", [], user=BOB, cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"],
                   chat_id="", source="api", timestamp=answered_at)
    assert again["duplicate"] is True and again["event_id"] == owner(live, gen_id_of(late))
    assert len(events(live)) == 3


def test_non_streamed_answer_reported_before_its_generation_is_written_takes_it(live, fake, now):
    """Seen on a real Open WebUI 0.12.4 (tests/test_real_openwebui.py): the plugin's report of a
    non-streamed call reached the ledger while the pass-through's capture of it still sat in the
    buffer. The generation must still go to that answer, not become a second charge."""
    response = chat(live, owui_headers(ADA))
    other = chat(live, owui_headers(ADA), content="A longer question that costs more")
    gen_id, used = gen_id_of(response), usage(response)
    buffered(live)  # captured, not yet written: the answer gets there first
    answer = outlet(live, "msg_api", [], cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"],
                    chat_id="", source="api")
    assert answer["duplicate"] is False and owner(live, gen_id) is None
    settle(live, now)
    assert owner(live, gen_id) == answer["event_id"]
    rows = events(live)
    assert sorted(e["key"] for e in rows) == sorted(["msg_api", f"passthrough:{gen_id_of(other)}"])
    billed = next(e for e in rows if e["key"] == "msg_api")
    assert billed["cost_nano"] == fake_cost(fake, gen_id) and billed["lookup_state"] == "pending"  # the lookup confirms it
    assert sum(e["cost_nano"] for e in rows) == fake_cost(fake, gen_id) + fake_cost(fake, gen_id_of(other))
    assert_invariants(live.meter)


def test_without_the_plugin_every_generation_is_billed_once_to_its_user(live, fake, now):
    made = []
    for i in range(12):
        user = (ADA, BOB)[i % 2]
        response = chat(live, owui_headers(user, chat_id=f"chat-{i % 3}" if i % 3 else None), stream=bool(i % 2),
                        content=("### Task:\nGenerate tags" if i % 4 == 1 else f"question {i}"))
        assert response.status_code == 200
        made.append((gen_id_of(response), user["id"]))
    settle(live, now)
    settle(live, now)
    rows = events(live)
    assert sorted((e["key"].removeprefix("passthrough:"), e["user_id"]) for e in rows) == sorted(made)
    assert sum(e["cost_nano"] for e in rows) == sum(fake_cost(fake, g) for g, _ in made)
    assert {g for g, _ in made} == {r["id"] for r in live.meter.db.query("SELECT id FROM generations")}


# --- the meter's own troubles never reach the user ---------------------------------------------------------


def test_locked_database_delays_the_record_never_the_stream(live, fake, now):
    import apsw

    blocker = apsw.Connection(live.meter.db.path)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock
    try:
        response = chat(live, owui_headers(ADA, chat_id="chat-1"), stream=True)
        assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
        buffered(live)
        assert live.meter.passthrough.flush() == 0  # busy: kept in memory
        assert live.meter.passthrough.buffered() == 1
        assert "Busy" in live.meter.passthrough.health()["passthrough"]["last_error"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert live.meter.passthrough.flush() == 1
    settle(live, now)
    [event] = events(live)
    assert event["cost_nano"] == fake_cost(fake, gen_id_of(response))
    assert live.meter.passthrough.health()["passthrough"]["last_error"] is None


def test_buffer_is_bounded_and_counts_what_it_dropped(live):
    pt = live.meter.passthrough
    for i in range(BUFFER_LIMIT + 3):
        pt.capture(Capture(f"gen-{i}", clock.now_ms(), None, None, MODEL, False, False, parse_usage(None)))
    assert pt.buffered() == BUFFER_LIMIT and pt.dropped == 3
    assert pt.flush() == BUFFER_LIMIT
    ids = {r["id"] for r in live.meter.db.query("SELECT id FROM passthrough_generations")}
    assert "gen-0" not in ids and f"gen-{BUFFER_LIMIT + 2}" in ids  # the oldest went


def test_client_leaving_mid_stream_still_records_the_generation(live, fake, now):
    fake.stream_words, fake.stream_delay = 20, 0.05
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in owui_headers(ADA).items())
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(f"POST /openrouter/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n{head}\r\n".encode() + body)
        got = b""
        while b"data: {" not in got:
            got += sock.recv(4096)
    deadline = time.monotonic() + 5
    while live.meter.passthrough.buffered() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    settle(live, now)
    [event] = events(live)
    gen_id = event["key"].removeprefix("passthrough:")
    assert gen_id in got.decode() and event["user_id"] == ADA["id"]
    assert owner(live, gen_id) == event["id"]  # its real cost comes from /generation
    assert live.meter.passthrough.in_flight == 0


def test_streams_beyond_the_limit_get_503_and_the_slot_comes_back(start, fake):
    live = start(METER_PASSTHROUGH_STREAMS=1)
    fake.stream_words, fake.stream_delay = 10, 0.1
    slow = threading.Thread(target=lambda: chat(live, owui_headers(ADA), stream=True))
    slow.start()
    deadline = time.monotonic() + 5
    while live.meter.passthrough.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    busy = chat(live, owui_headers(BOB))
    assert busy.status_code == 503 and busy.json()["error"]["type"] == "server_error"
    plugin = requests.post(live.url + "/api/v1/inlet", json={"user": BOB}, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert plugin.status_code == 200  # the plugin's endpoints are not held up
    slow.join(10)
    assert chat(live, owui_headers(BOB)).status_code == 200


# --- bad input -------------------------------------------------------------------------------------------


def test_bad_requests_are_refused_with_a_clear_error_and_never_forwarded(start, fake):
    live = start(METER_PASSTHROUGH_MAX_BODY_BYTES=2048)
    before = len(fake.requests_seen)
    dots = requests.get(live.url + "/openrouter/v1/%2E%2E/%2E%2E/secret", timeout=10)
    assert dots.status_code == 400 and "'..'" in dots.json()["error"]["message"]
    long_id = chat(live, {**owui_headers(ADA), "X-OpenWebUI-User-Id": "x" * 300})
    assert long_id.status_code == 400 and "X-OpenWebUI-User-Id" in long_id.json()["error"]["message"]
    big = chat(live, owui_headers(ADA), content="x" * 4096)
    assert big.status_code == 413 and "2048" in big.json()["error"]["message"]
    assert len(fake.requests_seen) == before
    assert live.meter.db.query("SELECT * FROM users") == []


def test_pass_through_is_off_unless_enabled(data_dir, fake):
    app = create_app(make_settings(data_dir, OPENROUTER_BASE_URL=fake.url))
    try:
        assert app.test_client().post("/openrouter/v1/chat/completions", json={}).status_code == 404
    finally:
        app.config["METER"].stop()
    assert fake.chat_requests == []


# --- pieces -------------------------------------------------------------------------------------------------


def test_watcher_reads_a_recorded_stream_cut_anywhere():
    """OpenRouter's lines as Open WebUI 0.12.4's client received them, fed in pieces of every size."""
    lines = json.loads((REPO / "tests" / "fixtures" / "owui-0.12.4" / "api-stream.response-lines.json").read_text())
    raw = "".join(line + "\n\n" for line in lines if isinstance(line, str)).encode()
    generation = next(g for g in json.loads((REPO / "tests" / "fixtures" / "owui-0.12.4" / "fake-openrouter.generations.json").read_text())
                      if g["id"] == "gen-SmzXRxPhtRVKJlfRQy0W9313")
    for size in (1, 2, 7, 64, len(raw)):
        watcher = Watcher(streamed=True)
        for i in range(0, len(raw), size):
            watcher.feed(raw[i:i + size])
        gen_id, model, used = watcher.finish()
        assert (gen_id, model) == ("gen-SmzXRxPhtRVKJlfRQy0W9313", "openai/gpt-4o-mini"), size
        assert used["cost_nano"] == usd_to_nano(generation["cost"]) == 9450, size
        assert (used["prompt_tokens"], used["completion_tokens"]) == (11, 13), size


def test_watcher_reads_a_json_answer_and_the_id_of_one_too_large_to_keep():
    recorded = (REPO / "tests" / "fixtures" / "owui-0.12.4" / "api-nonstream.response.json").read_bytes()
    watcher = Watcher(streamed=False)
    watcher.feed(recorded)
    gen_id, model, used = watcher.finish()
    assert (gen_id, used["cost_nano"], used["prompt_tokens"]) == ("gen-GNreBkE7tt9wba1wXToHLFjz", 11100, 14)
    huge = Watcher(streamed=False)
    huge.feed(b'{"id": "gen-big123", "model": "x", "choices": [{"message": {"content": "')
    huge.feed(b"a" * (9 * 1024 * 1024))
    gen_id, _, used = huge.finish()
    assert gen_id == "gen-big123" and used["cost_nano"] is None


@pytest.mark.breaks_figures  # writes events straight into the table to try the constraint
def test_events_accept_task_and_still_refuse_other_sources(meter):
    import apsw

    with meter.db.write() as conn:
        conn.execute("INSERT INTO users (id, first_seen, last_seen) VALUES ('u', 0, 0)")
        conn.execute("INSERT INTO events (key, ts, received, user_id, model, source, cost_source) VALUES ('k', 0, 0, 'u', 'm', 'task', 'unpriced')")
    with pytest.raises(apsw.ConstraintError):
        with meter.db.write() as conn:
            conn.execute("INSERT INTO events (key, ts, received, user_id, model, source, cost_source) VALUES ('k2', 0, 0, 'u', 'm', 'tasks', 'unpriced')")


def test_erasing_a_user_removes_their_pass_through_rows(live, now):
    chat(live, owui_headers(ADA, chat_id="chat-1"))
    chat(live, owui_headers(BOB))
    settle(live, now)
    admin = {"Authorization": f"Bearer {live.admin_token}"}
    assert requests.delete(live.url + f"/api/v1/users/{ADA['id']}", params={"mode": "delete"}, headers=admin, timeout=10).status_code == 200
    rows = live.meter.db.query("SELECT user_id, chat_id FROM passthrough_generations")
    assert rows == [{"user_id": BOB["id"], "chat_id": None}]


def test_generations_are_confirmed_with_openrouter_whichever_way_they_were_billed(start, fake, now):
    live = start(OPENROUTER_API_KEY=OPENROUTER_KEY)
    task = chat(live, owui_headers(ADA, chat_id="chat-1"), content="### Task:\nGenerate 1-3 broad tags")
    api = chat(live, owui_headers(ADA))  # the plugin reports it without an id
    buffered(live)
    live.meter.passthrough.flush()
    used = usage(api)
    answer = outlet(live, "msg_api", [], cost=used["cost"], prompt=used["prompt_tokens"], completion=used["completion_tokens"],
                    chat_id="", source="api")
    settle(live, now)
    live.meter.resolver.run_once()
    rows = {e["key"]: e for e in events(live)}
    assert set(rows) == {"msg_api", f"passthrough:{gen_id_of(task)}"}
    for key, gen_id in (("msg_api", gen_id_of(api)), (f"passthrough:{gen_id_of(task)}", gen_id_of(task))):
        assert (rows[key]["cost_source"], rows[key]["lookup_state"]) == ("generation", "confirmed"), key
        assert rows[key]["cost_nano"] == fake_cost(fake, gen_id), key
    assert rows["msg_api"]["id"] == answer["event_id"]


def test_byok_generation_is_billed_with_the_providers_charge(live, fake, now):
    fake.set_byok(MODEL)  # the team's own provider key: usage.cost is only OpenRouter's fee
    response = chat(live, owui_headers(ADA))
    used = usage(response)
    settle(live, now)
    [event] = events(live)
    fee, provider = usd_to_nano(used["cost"]), usd_to_nano(used["cost_details"]["upstream_inference_cost"])
    assert provider > fee > 0
    assert (event["byok"], event["inline_cost_nano"], event["inline_provider_nano"]) == (1, fee, provider)
    assert event["cost_nano"] == fee + provider  # METER_BYOK_COST=provider+fee
