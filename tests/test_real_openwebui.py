"""Every generation a real Open WebUI makes is billed once, to its user, at OpenRouter's cost.

Opt-in: ``OWUI_METER_REAL_OPENWEBUI=1`` after ``bash tests/real_openwebui/install.sh`` (about 10
minutes and 3 GB per version). For each Open WebUI version and each way of connecting the meter,
the test starts the fake OpenRouter, a real meter (``python -m owui_meter serve``) and a real Open
WebUI (offline, on loopback, a fresh data directory), installs the plugin over Open WebUI's REST
API as an admin would, and drives what people do: API calls streamed and not, web-UI chats the
way the browser sends them (socket.io session, background tasks: title, tags, follow-ups; on 0.6
the browser's ``/api/chat/completed``), a follow-up question, a "Continue", an answer stopped
half-way, a second user and a "Regenerate" of their answer, and a temporary chat.
Then every generation the fake made is looked up in the meter's ledger:

- ``plugin``: Open WebUI talks to the fake directly; only the plugin reports. What it captures is
  what the README's support matrix says, no more and no less (tasks never, nor a stopped answer;
  on 0.6 no non-streamed API call).
- ``plugin+passthrough``: Open WebUI's connection goes through the meter (``METER_PASSTHROUGH``;
  on 0.12 users are named by the signed JWT); every generation is billed once.
- ``passthrough``: no plugin; every generation is still billed once.

A billed generation must belong to the user whose request made it, cost exactly what the fake
charged (nano-dollars), be confirmed through ``/generation`` where the matrix says so, carry
source ``task`` for titles, tags and follow-ups, and each user's total must be the fake's sum.
"""

from __future__ import annotations

import decimal
import json
import os
import threading
import time
import uuid

import pytest
import requests

from conftest import JWT_SECRET, free_port
from fake_openrouter import FakeOpenRouter
from owui_meter.auth import create_token
from real_openwebui.openwebui import (INSTALLER, Client, OpenWebUI, Socket, install_plugin, installed_version, sign_in,
                                      sign_up_admin, venv_path)

ENABLED = os.environ.get("OWUI_METER_REAL_OPENWEBUI") == "1"
pytestmark = pytest.mark.skipif(not ENABLED, reason="real Open WebUI test: set OWUI_METER_REAL_OPENWEBUI=1 "
                                                    "(after bash tests/real_openwebui/install.sh)")

VERSIONS = ["0.6.43", "0.12.4"]
MODES = ["plugin", "plugin+passthrough", "passthrough"]
OPENROUTER_KEY = "sk-or-v1-fake-" + "0" * 48
FORWARD_SECRET = "owui-forward-secret-0123456789-0123456789"
ADA_MODEL = "openai/gpt-4o-mini"
BOB_MODEL = "anthropic/claude-3.5-haiku"
TASK_PREFIX = "### Task:"
SETTLE_TIMEOUT = 120  # seconds for Open WebUI's background tasks and the meter's work to finish


# --- the fake OpenRouter, remembering which request made which generation -------------------------


class RecordingOpenRouter(FakeOpenRouter):
    """The project's fake OpenRouter, plus a list of the generations its chat completions made,
    each with the request body that made it."""

    def __init__(self, api_key: str):
        super().__init__(api_key)
        self.made: list[dict] = []
        self._request = threading.local()

    def _post_chat(self, query, body, headers=None):
        self._request.current = body
        try:
            return super()._post_chat(query, body, headers)
        finally:
            self._request.current = None

    def add_generation(self, gen_id, total_cost, **kw):
        record = super().add_generation(gen_id, total_cost, **kw)
        current = getattr(self._request, "current", None)
        if current is not None:  # made by a chat completion, not registered by a test
            with self.lock:
                self.made.append({"id": gen_id, "cost": total_cost, "model": kw.get("model"), "request": json.loads(current)})
        return record

    def generations_made(self) -> list[dict]:
        with self.lock:
            return list(self.made)


def nano(usd: float) -> int:
    """The fake's cost in nano-dollars: its decimal figure, exactly (as OpenRouter's JSON writes it)."""
    return int((decimal.Decimal(repr(usd)) * 1_000_000_000).to_integral_value(decimal.ROUND_HALF_EVEN))


def describe(generation: dict, step: dict, users: dict) -> dict:
    """What a generation was: the scenario's step that made it (steps run one after another, each
    until Open WebUI has gone quiet, its background tasks included), so whose and which case, and
    its kind: ``task`` (a title, tags or follow-ups prompt), ``continue`` (the step "Continue"),
    ``stopped`` (the answer the user stopped half-way) or ``answer``. Read from the request Open
    WebUI sent and the test's own steps, not from the user headers: the pass-through takes those
    off before OpenRouter sees the request."""
    messages = generation["request"]["messages"]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last_user.get("content")
    content = content if isinstance(content, str) else json.dumps(content)
    if content.lstrip().startswith(TASK_PREFIX):
        kind = "task"
    else:
        kind = {"web-continue": "continue", "web-stop": "stopped"}.get(step["case"], "answer")
        assert f"[case={step['tag']}]" in content, f"step {step['case']} made an answer to {content!r}"
    return {**generation, "user": step["user"], "user_id": users[step["user"]], "kind": kind, "case": step["case"],
            "streamed": generation["request"].get("stream") is True, "nano": nano(generation["cost"])}


# --- what each mode is expected to capture (the README's support matrix) ---------------------------


def captured_by_mode(version: str, mode: str, g: dict) -> bool:
    if mode != "plugin":
        return True  # pass-through sees every generation, tasks included
    if g["kind"] == "task":
        return False  # no filter hook sees a task call
    if g["kind"] == "stopped":
        return False  # no outlet runs for it (and 0.6's browser posts no /api/chat/completed)
    if version.startswith("0.6.") and g["case"].startswith("api") and not g["streamed"]:
        return False  # 0.6 runs only inlet for a non-streamed API call
    return True


def confirmed_by_mode(version: str, mode: str, g: dict) -> bool:
    """Whether the billed cost is confirmed through /generation (else it stays inline)."""
    if mode != "plugin":
        return True
    return g["streamed"]  # the plugin never sees a non-streamed call's generation id


def expected_source(g: dict) -> str:
    if g["kind"] == "task":
        return "task"
    return "api" if g["case"].startswith("api") else "ui"


# --- the scenario ------------------------------------------------------------------------------------


class Scenario:
    """What people do in Open WebUI, for one version: the same steps, in each version's shape."""

    def __init__(self, openwebui: OpenWebUI, fake: RecordingOpenRouter, ada: dict, bob: dict, ada_key: str):
        self.ow = openwebui
        self.fake = fake
        self.v06 = openwebui.version.startswith("0.6.")
        self.ada, self.bob = ada, bob
        self.ada_api = Client(openwebui.url, ada_key)  # an API key, as scripts use
        self.ada_web = Client(openwebui.url, ada["token"])  # the browser's session token
        self.bob_web = Client(openwebui.url, bob["token"])
        self.steps: list[dict] = []  # each step: its case, whose, and the fake's first generation index

    def step(self, case: str, user: str, tag: str | None = None) -> None:
        """What follows is this step's: every generation until the next step begins. ``tag``: the
        case its answer's last user message carries (another step's, for a Continue or a Regenerate)."""
        self.steps.append({"case": case, "user": user, "tag": tag or case, "first": len(self.fake.generations_made())})

    def step_of(self, index: int) -> dict:
        return [s for s in self.steps if s["first"] <= index][-1]

    # API calls

    def api_call(self, client: Client, model: str, case: str, stream: bool) -> None:
        self.step(case, "bob" if client is self.bob_web else "ada")
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": f"[case={case}] How are you?"}]}
        response = client.call("POST", "/api/chat/completions", body, stream=stream)
        if stream:
            lines = [line for line in response.iter_lines(decode_unicode=True) if line]
            assert lines[-1] == "data: [DONE]", lines[-3:]
        else:
            assert response.json()["choices"][0]["message"]["content"], response.text
        self.wait_quiet()

    # web chats

    def new_chat(self, client: Client, socket: Socket, model: str, case: str, temporary: bool = False) -> dict:
        """A new chat's first message, with the background tasks the web UI asks for. A temporary
        chat is never saved: its id is made from the socket's, and it gets no title or tags."""
        chat = {"id": None, "model": model, "history": [], "client": client, "socket": socket,
                "user": "bob" if client is self.bob_web else "ada", "temporary": temporary}
        tasks = {"title_generation": True, "tags_generation": True, "follow_up_generation": True}
        if temporary:
            chat["id"] = ("local:" if self.v06 else "temporary:") + socket.sid
            tasks = {"follow_up_generation": True}
        self.ask(chat, case, "Hello from the web UI.", tasks)
        return chat

    def ask(self, chat: dict, case: str, content: str, tasks: dict, stop: bool = False) -> None:
        self.step(case, chat["user"])
        content = f"[case={case}] {content}"
        user_message = {"id": str(uuid.uuid4()), "parentId": chat["history"][-1]["id"] if chat["history"] else None,
                        "role": "user", "content": content, "timestamp": int(time.time()), "models": [chat["model"]]}
        answer = {"id": str(uuid.uuid4()), "parentId": user_message["id"], "role": "assistant", "content": "",
                  "model": chat["model"], "timestamp": int(time.time())}
        user_message["childrenIds"] = [answer["id"]]
        if chat["id"] is None and self.v06:
            chat["id"] = self.create_chat_06(chat, user_message, answer)
        messages = [{"id": m["id"], "role": m["role"], "content": m["content"]} for m in chat["history"] + [user_message]]
        body = self.web_body(chat, messages, answer["id"], user_message, tasks)
        chat["history"] += [user_message, answer]
        self.complete(chat, body, answer, stop)

    def continue_answer(self, chat: dict) -> None:
        """The "Continue" button: a second completion streamed into the last assistant message."""
        self.step("web-continue", chat["user"], tag="web-followup")
        answer = chat["history"][-1]
        user_message = chat["history"][-2]
        messages = [{"id": m["id"], "role": m["role"], "content": m["content"]} for m in chat["history"]]
        body = self.web_body(chat, messages, answer["id"], user_message, {"follow_up_generation": True})
        if not self.v06:
            body["assistant_message_id"] = answer["id"]  # 0.12's Chat.svelte: continueResponse
        self.complete(chat, body, answer)

    def regenerate(self, chat: dict) -> None:
        """The "Regenerate" button: a new answer (a new message) to the same user message."""
        user_message = chat["history"][-2]
        self.step("web-regenerate", chat["user"], tag=user_message["content"].split("[case=", 1)[1].split("]", 1)[0])
        answer = {"id": str(uuid.uuid4()), "parentId": user_message["id"], "role": "assistant", "content": "",
                  "model": chat["model"], "timestamp": int(time.time())}
        user_message["childrenIds"] = [*user_message["childrenIds"], answer["id"]]
        chat["history"] = chat["history"][:-1]  # the new answer's branch
        messages = [{"id": m["id"], "role": m["role"], "content": m["content"]} for m in chat["history"]]
        tasks = {"follow_up_generation": True}
        if user_message["parentId"] is None:  # the chat's first answer: both versions ask for its title and tags again
            tasks = {"title_generation": True, "tags_generation": True, **tasks}
        body = self.web_body(chat, messages, answer["id"], user_message, tasks)
        chat["history"].append(answer)
        self.complete(chat, body, answer)

    def web_body(self, chat: dict, messages: list, answer_id: str, user_message: dict, tasks: dict) -> dict:
        """The body the web UI's Chat.svelte posts to /api/chat/completions."""
        body = {
            "stream": True, "model": chat["model"], "params": {}, "tool_ids": [], "tool_servers": [],
            "features": {"voice": False, "image_generation": False, "code_interpreter": False, "web_search": False},
            "variables": {"{{USER_NAME}}": "", "{{CURRENT_DATE}}": time.strftime("%Y-%m-%d")},
            "session_id": chat["socket"].sid, "id": answer_id, "parent_id": user_message["parentId"],
            "user_message": user_message, "background_tasks": tasks,
        }
        if chat["id"] is not None:
            body["chat_id"] = chat["id"]
        if self.v06:  # 0.6's Chat.svelte sends the chat's messages and names the user message as the parent
            body["messages"], body["parent_id"], body["parent_message"] = messages, user_message["id"], user_message
        elif chat["temporary"]:  # 0.12's sends them only for a temporary chat; a saved one's it reads from its database
            body["messages"] = messages
        return body

    def create_chat_06(self, chat: dict, user_message: dict, answer: dict) -> str:
        """0.6's web UI saves the new chat first (POST /api/v1/chats/new), then asks for the answer."""
        history = {"messages": {user_message["id"]: user_message, answer["id"]: answer}, "currentId": answer["id"]}
        created = chat["client"].post("/api/v1/chats/new", {"chat": {
            "id": "", "title": "New Chat", "models": [chat["model"]], "params": {}, "history": history,
            "messages": [user_message, answer], "tags": [], "timestamp": int(time.time() * 1000)}})
        return created["id"]

    def complete(self, chat: dict, body: dict, answer: dict, stop: bool = False) -> None:
        """Post the completion, wait for the answer over socket.io (as the browser does), and on 0.6
        post /api/chat/completed with the answer and its usage, which is where 0.6 runs outlet.
        ``stop``: press "Stop" once the answer has begun (the browser stops the chat's task)."""
        socket = chat["socket"]
        reply = chat["client"].post("/api/chat/completions", body)
        if chat["id"] is None:
            chat["id"] = reply["chat_id"]
        usage, content = None, answer["content"]

        def event_for_answer(event: dict) -> dict | None:
            nonlocal usage, content
            data = event.get("data") or {}
            if event.get("message_id") != answer["id"]:
                return None
            if data.get("type") == "chat:message:error":
                raise AssertionError(f"Open WebUI reported an error: {data}")
            if data.get("type") != "chat:completion":
                return None  # titles, tags, follow-ups, status lines
            payload = data.get("data") or {}
            if payload.get("error"):
                raise AssertionError(f"Open WebUI reported an error: {payload}")
            if isinstance(payload.get("usage"), dict):
                usage = payload["usage"]
            if isinstance(payload.get("content"), str):
                content = payload["content"]
            return payload

        finished = True
        if stop:
            made = len(self.fake.generations_made())
            self.wait_until(lambda: len(self.fake.generations_made()) > made)  # OpenRouter has begun the answer
            time.sleep(1.0)  # a few words of it streamed
            task_id = reply["task_ids"][0] if "task_ids" in reply else reply["task_id"]
            chat["client"].post(f"/api/tasks/stop/{task_id}")
            try:  # the browser posts /api/chat/completed only if a "done" still comes
                socket.wait_for(lambda e: (event_for_answer(e) or {}).get("done") is True, timeout=10)
            except AssertionError:
                finished = False
        else:
            socket.wait_for(lambda e: (event_for_answer(e) or {}).get("done") is True)
        answer["content"] = content
        if usage is not None:
            answer["usage"] = usage
        if self.v06 and finished:
            messages = [{k: m[k] for k in ("id", "role", "content", "timestamp", "usage") if k in m} for m in chat["history"]]
            chat["client"].post("/api/chat/completed", {"model": chat["model"], "messages": messages, "chat_id": chat["id"],
                                                        "session_id": socket.sid, "id": answer["id"]})
        self.wait_quiet()

    def wait_until(self, condition, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s")
            time.sleep(0.1)

    def wait_quiet(self, quiet: float = 4.0, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until Open WebUI has made no OpenRouter call for ``quiet`` seconds (its background tasks
        run after the answer) and none is in flight."""
        deadline = time.monotonic() + timeout
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.fake.generations_made())
            with self.fake.lock:
                busy = self.fake.in_flight
            if count != last_count or busy:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return
            time.sleep(0.25)
        raise AssertionError("Open WebUI kept calling OpenRouter")

    def run(self) -> None:
        for client in (self.ada_api, self.ada_web, self.bob_web):  # what the web UI and API clients ask first
            assert {ADA_MODEL, BOB_MODEL} <= {m["id"] for m in client.get("/api/models")["data"]}
        self.api_call(self.ada_api, ADA_MODEL, "api-nonstream", stream=False)
        self.api_call(self.ada_api, ADA_MODEL, "api-stream", stream=True)
        self.api_call(self.bob_web, BOB_MODEL, "api-stream-bob", stream=True)
        ada_socket, bob_socket = Socket(self.ow, self.ada["token"]), Socket(self.ow, self.bob["token"])
        try:
            chat = self.new_chat(self.ada_web, ada_socket, ADA_MODEL, "web")
            self.ask(chat, "web-followup", "And a follow-up question.", {"follow_up_generation": True})
            self.continue_answer(chat)
            self.fake.stream_delay = 0.5  # an answer slow enough to be stopped half-way
            try:
                self.ask(chat, "web-stop", "A long answer, please.", {"follow_up_generation": True}, stop=True)
            finally:
                self.fake.stream_delay = 0.0
            bob_chat = self.new_chat(self.bob_web, bob_socket, BOB_MODEL, "web-bob")
            self.regenerate(bob_chat)
            self.new_chat(self.ada_web, ada_socket, ADA_MODEL, "web-temporary", temporary=True)
        finally:
            ada_socket.close()
            bob_socket.close()
        self.wait_quiet()


# --- the meter's ledger ------------------------------------------------------------------------------


class Ledger:
    """The meter's admin API: its events, and totals per user."""

    def __init__(self, url: str):
        self.url = url
        self.headers = {"Authorization": f"Bearer {create_token(JWT_SECRET, days=1, name='real-openwebui-test')}"}

    def get(self, path: str, **params):
        response = requests.get(self.url + path, params=params, headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def events(self) -> list[dict]:
        return self.get("/api/v1/events", limit=1000)["events"]

    def totals(self) -> dict:
        return {row["key"]: row["cost_nano"] for row in self.get("/api/v1/usage", group_by="user")["rows"]}

    def settled(self) -> tuple[bool, str]:
        health = requests.get(self.url + "/healthcheck", timeout=30).json()
        passthrough = health.get("passthrough") or {}
        events = self.events()
        pending = [e["key"] for e in events if e["lookup_state"] == "pending"]
        busy = {k: passthrough.get(k) for k in ("buffered", "waiting", "in_flight") if passthrough.get(k)}
        return (not pending and not busy), f"pending lookups {pending}, pass-through {busy}"

    def wait_settled(self, expected_generations: set, timeout: float = SETTLE_TIMEOUT) -> list[dict]:
        """The events once every expected generation is billed, no lookup is pending, the
        pass-through holds nothing back, and nothing has changed for a few seconds."""
        deadline = time.monotonic() + timeout
        previous, stable_since = None, time.monotonic()
        why = ""
        while time.monotonic() < deadline:
            events = self.events()
            billed = {g for e in events for g in e["generation_ids"]}
            done, why = self.settled()
            snapshot = json.dumps(events, sort_keys=True)
            if snapshot != previous:
                previous, stable_since = snapshot, time.monotonic()
            if done and expected_generations <= billed and time.monotonic() - stable_since >= 5:
                return events
            if not expected_generations <= billed:
                why = f"not yet billed: {sorted(expected_generations - billed)}; {why}"
            time.sleep(1)
        raise AssertionError(f"the meter did not settle in {timeout:.0f} s: {why}")


# --- the test ------------------------------------------------------------------------------------------


def open_webui_venv(version: str):
    venv = venv_path(version)
    got = installed_version(venv)
    if got != version:
        pytest.fail(f"Open WebUI {version} is not installed in {venv} (found {got or 'nothing'}): run bash {INSTALLER} {version}",
                    pytrace=False)
    return venv


@pytest.fixture
def fake():
    with RecordingOpenRouter(OPENROUTER_KEY) as server:
        yield server


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_generation_is_billed_once(version, mode, fake, meter_process, tmp_path, request):
    open_webui_venv(version)
    passthrough = mode != "plugin"
    signed = passthrough and not version.startswith("0.6.")  # 0.6 has no signed user header
    meter = meter_process(OPENROUTER_BASE_URL=fake.url, OPENROUTER_API_KEY=OPENROUTER_KEY, METER_PASSTHROUGH=str(passthrough).lower(),
                          METER_PASSTHROUGH_WINDOW_SECONDS=0 if mode == "passthrough" else 5, METER_WORKER_POLL_MS=200,
                          **({"METER_FORWARD_JWT_SECRET": FORWARD_SECRET} if signed else {}))
    env = {
        "OPENAI_API_BASE_URL": f"{meter.url}/openrouter/v1" if passthrough else fake.url,
        "OPENAI_API_KEY": OPENROUTER_KEY,
        "ENABLE_FORWARD_USER_INFO_HEADERS": "True",
        "BYPASS_MODEL_ACCESS_CONTROL": "True",  # every user may use every model
    }
    if not version.startswith("0.6."):
        env["FORWARD_USER_INFO_HEADER_JWT_SECRET"] = FORWARD_SECRET  # users named by a signed JWT
    openwebui = OpenWebUI(version, tmp_path / "openwebui-data", free_port(), env)
    request.addfinalizer(openwebui.stop)
    openwebui.start()

    ada = sign_up_admin(openwebui.url, "Ada Admin", "ada@example.com", "ada-password-123")
    admin = Client(openwebui.url, ada["token"])
    admin.post("/api/v1/auths/add", {"name": "Bob User", "email": "bob@example.com", "password": "bob-password-123", "role": "user"})
    bob = sign_in(openwebui.url, "bob@example.com", "bob-password-123")
    ada_key = admin.post("/api/v1/auths/api_key")["api_key"]
    if mode != "passthrough":
        function = install_plugin(admin, {"meter_url": meter.url, "api_key": meter.env["API_KEY"], "timeout_seconds": 10})
        assert function["is_active"] and function["is_global"] and function["valves"]["meter_url"] == meter.url

    scenario = Scenario(openwebui, fake, ada, bob, ada_key)
    scenario.run()

    users = {"ada": ada["id"], "bob": bob["id"]}
    made = [describe(g, scenario.step_of(i), users) for i, g in enumerate(fake.generations_made())]
    for step in scenario.steps:  # one answer per step, and the new chats' title, tags and follow-ups
        answers = [g for g in made if g["case"] == step["case"] and g["kind"] != "task"]
        tasks = [g for g in made if g["case"] == step["case"] and g["kind"] == "task"]
        assert len(answers) == 1, (step, answers)
        assert len(tasks) >= (3 if step["case"] in ("web", "web-bob", "web-regenerate") else 0), (step, tasks)

    expected = [g for g in made if captured_by_mode(version, mode, g)]
    with_ids = {g["id"] for g in expected if g["streamed"] or passthrough}  # a non-streamed call's id reaches only the pass-through
    ledger = Ledger(meter.url)
    events = ledger.wait_settled(with_ids)

    matches = match(made, events)
    print(f"\nOpen WebUI {version}, {mode} (started in {openwebui.startup_seconds} s):\n{tabulate(version, mode, made, matches)}")

    made_by_id = {g["id"]: g for g in made}
    for g in made:
        found = matches[g["id"]]
        what = f"{g['kind']} of step {g['case']}"
        if not captured_by_mode(version, mode, g):
            assert not found, f"{what} is billed though {mode} on {version} cannot see it"
            continue
        assert len(found) == 1, f"{what} is billed {len(found)} times"
        event = found[0]
        assert event["user_id"] == g["user_id"], f"{what} billed to {event['user_id']}, made by {g['user']}"
        assert event["source"] == expected_source(g), (what, event["source"])
        billed_nano = sum(made_by_id[i]["nano"] for i in event["generation_ids"]) if event["generation_ids"] else g["nano"]
        assert event["cost_nano"] == billed_nano, (what, event["cost_nano"], billed_nano)
        want = "generation" if confirmed_by_mode(version, mode, g) else "inline"
        assert event["cost_source"] == want, (what, event["cost_source"])
        by_plugin = mode != "passthrough" and captured_by_mode(version, "plugin", g)
        assert event["key"].startswith("passthrough:") is not by_plugin, (what, event["key"])  # who billed it
    matched = {e["id"] for found in matches.values() for e in found}
    assert [e for e in events if e["id"] not in matched] == [], "events that bill nothing the fake made"

    if mode != "passthrough":  # "Continue" streamed into the follow-up's message: billed on its own, same message
        followup, continued = (next(matches[g["id"]][0] for g in made if g["case"] == case and g["kind"] != "task")
                               for case in ("web-followup", "web-continue"))
        assert continued["id"] != followup["id"] and continued["message_id"] == followup["message_id"] is not None

    want_totals = {}
    for g in made:
        if captured_by_mode(version, mode, g):
            want_totals[g["user_id"]] = want_totals.get(g["user_id"], 0) + g["nano"]
    assert ledger.totals() == want_totals


def match(made: list[dict], events: list[dict]) -> dict:
    """Each generation the fake made -> the events that bill it: those naming its id, and events
    naming no generation (a non-streamed answer the plugin reported; the plugin never sees its
    id) of the same user and cost."""
    unnamed = [e for e in events if not e["generation_ids"]]
    return {g["id"]: [e for e in events if g["id"] in e["generation_ids"]]
            + [e for e in unnamed if e["user_id"] == g["user_id"] and e["cost_nano"] == g["nano"]] for g in made}


def tabulate(version: str, mode: str, made: list[dict], matches: dict) -> str:
    """One line per kind of generation: made, billed, to the right user, cost confirmed, doubled."""
    lines = ["| Open WebUI | mode | kind | made | billed | right user | cost confirmed | doubled |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in ("answer", "task", "continue", "stopped", "all"):
        rows = [(g, matches[g["id"]]) for g in made if kind in ("all", g["kind"])]
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            version, mode, kind, len(rows), sum(1 for g, found in rows if found),
            sum(1 for g, found in rows if found and all(e["user_id"] == g["user_id"] for e in found)),
            sum(1 for g, found in rows if found and all(e["cost_source"] == "generation" for e in found)),
            sum(1 for g, found in rows if len(found) > 1)))
    return "\n".join(lines)
