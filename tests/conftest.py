"""Shared fixtures: a meter app on a temporary data dir, its test client, a real waitress server.

Named things: ``ADA`` and ``BOB`` are the Open WebUI users of the recorded fixtures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from owui_meter import create_app, settings
from owui_meter.auth import create_token

REPO = Path(__file__).resolve().parent.parent
API_KEY = "test-plugin-key-0123456789"
JWT_SECRET = "test-jwt-secret-0123456789-0123456789-abcdef"

ADA = {"id": "91742e30-b09f-44e6-83e0-f91d730df38c", "email": "ada@example.com", "name": "Ada Admin", "role": "admin"}
BOB = {"id": "22d1d051-00a9-4e78-a612-8ae9d4005987", "email": "bob@example.com", "name": "Bob User", "role": "user"}


def fixture_dir(version: str = "0.12.4") -> Path:
    """The payloads a real Open WebUI (0.12.4, or 0.6.43) handed to a filter's hooks, copied from
    shared/fixtures."""
    return REPO / "tests" / "fixtures" / f"owui-{version}"


def load_fixture(name: str, version: str = "0.12.4"):
    return json.loads((fixture_dir(version) / name).read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def meter_env(data_dir, **extra) -> dict:
    env = {
        "METER_DATA_DIR": str(data_dir),
        "API_KEY": API_KEY,
        "JWT_SECRET": JWT_SECRET,
        "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1",  # nothing listens: no real traffic
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def make_settings(data_dir, **extra):
    return settings.load(meter_env(data_dir, **extra))


def assert_invariants(meter) -> None:
    """Every derived figure agrees with the events (what `owui-meter check` verifies)."""
    from owui_meter.invariants import check_file

    problems = check_file(meter.db.path, meter.settings)
    assert problems == [], "\n".join(problems)


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def app(data_dir, request):
    app = create_app(make_settings(data_dir))
    app.config["TESTING"] = True
    yield app
    try:
        if request.node.get_closest_marker("breaks_figures") is None and not getattr(request.node, "failed_call", False):
            assert_invariants(app.config["METER"])  # whatever the test did, every figure still adds up
    finally:
        app.config["METER"].stop()


@pytest.fixture
def meter(app):
    return app.config["METER"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def plugin_headers():
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def admin_token():
    return create_token(JWT_SECRET, days=1, name="tester")


@pytest.fixture
def admin_headers(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def fake():
    """A fake OpenRouter on a loopback port (tests/fake_openrouter.py)."""
    from fake_openrouter import FakeOpenRouter

    with FakeOpenRouter() as server:
        yield server


class Clock:
    """The meter's clock, moved by the test."""

    def __init__(self, start=1_800_000_000.0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


@pytest.fixture
def now(monkeypatch):
    """The meter's clock, frozen at 1,800,000,000 s; ``now.advance(seconds)`` moves it."""
    from owui_meter import clock

    frozen = Clock()
    monkeypatch.setattr(clock, "time_fn", frozen)
    return frozen


def outlet_body(key="msg-1", user=ADA, model="openai/gpt-4o-mini", cost=0.00001, prompt=10, completion=20, **extra):
    body = {
        "key": key,
        "user": user,
        "model": model,
        "chat_id": "chat-1",
        "message_id": key,
        "session_id": None,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "cost": cost} if cost is not None else {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    body.update(extra)
    return body


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.failed_call = True  # the invariant check at teardown would only repeat the failure
    return report


class LiveMeter:
    """A real waitress server running the app in a thread, on a free loopback port."""

    def __init__(self, app):
        from waitress.server import create_server

        self.app = app
        self.meter = app.config["METER"]
        self.api_key = API_KEY
        self.admin_token = create_token(JWT_SECRET, days=1, name="tester")
        self.server = create_server(app, host="127.0.0.1", port=0, threads=4)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.server.run()
        except OSError:  # close() from another thread ends the select loop with EBADF
            if not self.closing:
                raise

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.closing = True
        self.server.close()
        self.thread.join(timeout=5)

    def get_json(self, path: str, **params):
        response = requests.get(self.url + path, params=params, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def live_meter(app):
    live = LiveMeter(app).start()
    yield live
    live.stop()


class MeterProcess:
    """``python -m owui_meter`` as a child process: for restarts, SIGKILL and SIGTERM tests."""

    def __init__(self, data_dir, **extra):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **meter_env(data_dir, METER_PORT=self.port, **extra), "PYTHONPATH": str(REPO)}
        self.proc = None
        self.output = b""

    def start(self, timeout=20):
        self.proc = subprocess.Popen([sys.executable, "-m", "owui_meter", "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"meter exited early: {self.proc.stdout.read().decode()}")
            try:
                if requests.get(self.url + "/healthcheck", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("meter did not become healthy")

    def wait(self, timeout=15) -> int:
        code = self.proc.wait(timeout=timeout)
        self.output = self.proc.stdout.read()
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.wait()


@pytest.fixture
def meter_process(data_dir):
    started = []

    def start(**extra):
        process = MeterProcess(data_dir, **extra).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
