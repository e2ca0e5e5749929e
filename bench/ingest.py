"""Ingest throughput and latency: the plugin's endpoints on a real waitress server on loopback.

Runs the meter in a child process (so the load generator does not share its GIL) with one extra
route, ``/baseline``, that answers like the outlet but touches no database: the figure the ingest
path is compared with, measured on the same server in the same run.

The load comes from ``wrk`` (Debian package ``wrk``) with keep-alive connections, each request an
answer with a unique key: the outlet's payload for /baseline, the outlet and the inlet,
owui-metering's for its record endpoint (/api/v1/metering/record). Without wrk, Python client threads are used instead (slower, and
then the client is part of what is measured).

    python bench/ingest.py [--clients 16] [--seconds 10] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
API_KEY = "bench-plugin-key-0123456789"

SERVER = textwrap.dedent(
    """
    import logging
    from flask import jsonify
    from owui_meter import create_app
    from owui_meter.web.server import MeterServer

    app = create_app()  # the settings (port, WORKER) come from the environment
    meter = app.config["METER"]

    @app.post("/baseline")
    def baseline():
        # same request parsing and JSON answer as the outlet, no database
        from owui_meter import ingest
        from owui_meter.web.params import json_body
        event = ingest.parse_outlet(json_body())
        return jsonify({"event_id": 0, "duplicate": False, "cost_usd": 0.0, "cost_source": "inline", "notice": event.key}), 202

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # queue-depth warnings are expected under load
    meter.start()
    MeterServer(app, meter.settings).run()  # the server `owui-meter serve` runs
    """
)

WRK_SCRIPT = textwrap.dedent(
    """
    local counter = 0
    local thread_id = 0
    local threads = {}
    function setup(thread)
      thread:set("tid", #threads)
      table.insert(threads, thread)
    end
    function init(args)
      -- the run's own id (wrk's math.random starts from the same seed in every run: keys of an
      -- earlier route would come again, and the write path be measured as duplicates)
      prefix = "w" .. args[1] .. "-" .. tid .. "-"
    end
    request = function()
      counter = counter + 1
      local user = '"user":{"id":"u' .. (counter % 50) .. '","email":"u@example.com","name":"User","role":"user"}'
      local body
      if string.find(wrk.path, "metering") then
        -- owui-metering's filter payload (its old record endpoint)
        body = '{' .. user .. ',"activity":{"id":"' .. prefix .. counter .. '","model":"openai/gpt-4o-mini",' ..
          '"prompt_token":12,"completion_token":34,"cost":0.0000123}}'
      else
        body = '{"key":"' .. prefix .. counter .. '",' .. user .. ',"model":"openai/gpt-4o-mini",' ..
          '"chat_id":"c","message_id":"m","usage":{"prompt_tokens":12,"completion_tokens":34,"cost":0.0000123}}'
      end
      return wrk.format("POST", nil, {["Content-Type"]="application/json", ["Authorization"]="Bearer API_KEY"}, body)
    end
    done = function(summary, latency, requests)
      io.write(string.format("RESULT %d %d %.3f %.3f %.3f %.3f %d\\n", summary.requests, summary.duration,
        latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
        latency.max / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
    end
    """
).replace("API_KEY", API_KEY)


ROUTES = (("baseline", "/baseline"), ("outlet", "/api/v1/outlet"), ("inlet", "/api/v1/inlet"), ("record", "/api/v1/metering/record"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "METER_DATA_DIR": data_dir, "API_KEY": API_KEY, "METER_PORT": str(port),
           "METER_HOST": "127.0.0.1", "WORKER": str(threads), "JWT_SECRET": "bench-jwt-secret-0123456789-0123456789",
           "METER_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(url + "/healthcheck", timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, path: str, clients: int, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds}s", "--latency", "-s", fh.name, url + path, "--", uuid.uuid4().hex],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    n, duration_us, p50, p95, p99, worst, errors = line.split()[1:]
    return {"requests": int(n), "per_s": int(n) / (int(duration_us) / 1e6), "p50_ms": float(p50), "p95_ms": float(p95),
            "p99_ms": float(p99), "max_ms": float(worst), "errors": int(errors)}


def run_python(url: str, path: str, clients: int, seconds: int) -> dict:
    import concurrent.futures

    deadline = time.monotonic() + seconds

    def client(_):
        session, latencies = requests.Session(), []
        while time.monotonic() < deadline:
            if "metering" in path:
                body = {"user": {"id": "u"}, "activity": {"id": uuid.uuid4().hex, "model": "m", "prompt_token": 1, "cost": 0.000001}}
            else:
                body = {"key": uuid.uuid4().hex, "user": {"id": "u"}, "model": "m", "usage": {"prompt_tokens": 1, "cost": 0.000001}}
            t = time.perf_counter()
            session.post(url + path, json=body, headers={"Authorization": f"Bearer {API_KEY}"})
            latencies.append((time.perf_counter() - t) * 1000)
        return latencies

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = sorted(l for ls in pool.map(client, range(clients)) for l in ls)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return {"requests": len(latencies), "per_s": len(latencies) / seconds, "p50_ms": pick(0.5), "p95_ms": pick(0.95),
            "p99_ms": pick(0.99), "max_ms": latencies[-1], "errors": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (WORKER)")
    args = parser.parse_args()
    load = run_wrk if shutil.which("wrk") else run_python
    print(f"load generator: {'wrk' if load is run_wrk else 'python threads'}; waitress threads: {args.threads}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as data_dir:
        proc, url = start_server(data_dir, args.threads)
        try:
            print(f"{'route':<10} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} {'cpu ms/req':>10}")
            for clients in args.clients:
                results = {}
                for route, path in ROUTES:
                    cpu_before = cpu_seconds(proc.pid)
                    r = results[route] = load(url, path, clients, args.seconds)
                    cpu_after = cpu_seconds(proc.pid)
                    # the server's CPU per request: steadier than req/s on a machine shared with other work
                    cpu = f"{(cpu_after - cpu_before) * 1000 / r['requests']:.3f}" if cpu_before is not None and r["requests"] else "-"
                    print(f"{route:<10} {clients:>7} {r['per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} {r['errors']:>6} {cpu:>10}")
                for route, _ in ROUTES[1:]:
                    base = results["baseline"]
                    print(f"{'':<10} {clients:>7} {route}/baseline throughput: {results[route]['per_s'] / base['per_s']:.0%}, "
                          f"p99: {results[route]['p99_ms'] / base['p99_ms']:.2f}x")
            stored = requests.get(url + "/healthcheck", timeout=5).json()
            print("healthcheck after load:", json.dumps(stored))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        db = Path(data_dir) / "meter.db"
        print(f"database size after the run: {db.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
