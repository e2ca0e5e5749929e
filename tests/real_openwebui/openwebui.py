"""A real Open WebUI, from a virtualenv made by ``install.sh``, run offline on loopback for a test.

``OpenWebUI(version, data_dir, env)`` starts ``open-webui serve`` with a fresh data directory and
waits for ``/health``; ``Client`` is one signed-in user talking to its REST API the way the web UI
and API clients do; ``Socket`` is a browser's socket.io connection (``socket_events.py``).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
INSTALLER = HERE / "install.sh"
PLUGIN = HERE.parent.parent / "plugin" / "owui_meter.py"


def venv_path(version: str) -> Path:
    """Where install.sh puts this version (OWUI_METER_OPENWEBUI_CACHE, default ~/.cache/owui-meter)."""
    cache = os.environ.get("OWUI_METER_OPENWEBUI_CACHE") or str(Path.home() / ".cache" / "owui-meter")
    return Path(cache) / f"openwebui-{version}"


def installed_version(venv: Path) -> str | None:
    """The open-webui version this virtualenv imports, or None."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    result = subprocess.run([str(python), "-c", 'import open_webui, importlib.metadata as m; print(m.version("open-webui"))'],
                            capture_output=True, text=True, timeout=120)
    return result.stdout.strip() if result.returncode == 0 else None


class OpenWebUI:
    """``open-webui serve`` as a child process; its log goes to ``data_dir/../openwebui.log``."""

    def __init__(self, version: str, data_dir: Path, port: int, env: dict):
        self.version = version
        self.venv = venv_path(version)
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir.parent / f"openwebui-{version}.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
            "DATA_DIR": str(data_dir), "PORT": str(port),
            # offline, nothing downloaded, nothing reported home
            "OFFLINE_MODE": "True", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_EMBEDDING_ENGINE": "openai",
            "BYPASS_EMBEDDING_AND_RETRIEVAL": "True", "ENABLE_OLLAMA_API": "False", "ENABLE_OPENAI_API": "True",
            "ANONYMIZED_TELEMETRY": "False", "DO_NOT_TRACK": "true", "SCARF_NO_ANALYTICS": "true",
            "ENABLE_VERSION_UPDATE_CHECK": "False", "ENABLE_API_KEYS": "True", "USER_PERMISSIONS_FEATURES_API_KEYS": "True",
            "WEBUI_SECRET_KEY": "owui-meter-real-test-" + uuid.uuid4().hex, "DEFAULT_USER_ROLE": "user",
            "GLOBAL_LOG_LEVEL": "INFO",
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    def start(self, timeout: float = 300) -> OpenWebUI:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen([str(self.venv / "bin" / "open-webui"), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=self.env, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Open WebUI {self.version} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    self.startup_seconds = round(time.monotonic() - started, 1)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Open WebUI {self.version} was not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, token: str) -> Client:
        return Client(self.url, token)


class Client:
    """One user's (or API key's) calls to Open WebUI's REST API."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body=None, timeout: float = 180, stream: bool = False, expect: int = 200):
        response = self.http.request(method, self.url + path, json=body, timeout=timeout, stream=stream)
        if response.status_code != expect:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response

    def get(self, path: str):
        return self.call("GET", path).json()

    def post(self, path: str, body=None, **kw):
        return self.call("POST", path, body, **kw).json()


def sign_up_admin(url: str, name: str, email: str, password: str) -> dict:
    """The first sign-up becomes the admin; its answer carries the token and the user's id."""
    response = requests.post(url + "/api/v1/auths/signup", json={"name": name, "email": email, "password": password}, timeout=120)
    if response.status_code != 200:
        raise AssertionError(f"signup: {response.status_code} {response.text[:1000]}")
    return response.json()


def sign_in(url: str, email: str, password: str) -> dict:
    response = requests.post(url + "/api/v1/auths/signin", json={"email": email, "password": password}, timeout=120)
    if response.status_code != 200:
        raise AssertionError(f"signin: {response.status_code} {response.text[:1000]}")
    return response.json()


def install_plugin(admin: Client, valves: dict) -> dict:
    """plugin/owui_meter.py as a global, active filter function with these valves, as an admin
    does it in Admin -> Functions. The function's state as Open WebUI reports it afterwards."""
    content = PLUGIN.read_text()
    admin.post("/api/v1/functions/create", {"id": "owui_meter", "name": "owui-meter", "content": content,
                                            "meta": {"description": "owui-meter"}})
    function = admin.get("/api/v1/functions/id/owui_meter")
    if not function.get("is_active"):
        admin.post("/api/v1/functions/id/owui_meter/toggle")
    if not function.get("is_global"):
        admin.post("/api/v1/functions/id/owui_meter/toggle/global")
    admin.post("/api/v1/functions/id/owui_meter/valves/update", valves)
    return {**admin.get("/api/v1/functions/id/owui_meter"), "valves": admin.get("/api/v1/functions/id/owui_meter/valves")}


class Socket:
    """A browser's socket.io connection for one user: its session id and the events it receives."""

    def __init__(self, openwebui: OpenWebUI, token: str):
        self.proc = subprocess.Popen([str(openwebui.venv / "bin" / "python"), str(HERE / "socket_events.py"), openwebui.url, token],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"socket.io connection failed: {self.proc.stderr.read()[-3000:]}")
        self.sid = json.loads(first)["sid"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            event = json.loads(line)["event"]
            self.received.append(event)
            self.events.put(event)

    def wait_for(self, predicate, timeout: float = 180) -> dict:
        """The first event (received from now on) for which ``predicate`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such socket event within {timeout:.0f} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(event):
                return event

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
