"""Pass-through cost: time to first byte and total time direct vs through the meter, and the
plugin endpoints' latency while many slow streams are held open through it.

The fake OpenRouter (tests/fake_openrouter.py) runs in its own process; the meter is a real
``owui-meter serve`` (waitress, METER_PASSTHROUGH=true) in another. Three parts:

1. Streamed and non-streamed chat completions, one client on a keep-alive connection, each sent
   straight to the fake and through the meter: time to the first body byte (TTFB), to the first
   word, and to the end; p50/p99 and what the meter adds.
2. Inlet and outlet latency (p50/p99) on an idle meter.
3. The same while ``--streams`` slow streams (a word every ``--delay`` seconds) are held open
   through the meter, and a check that every stream's generation was recorded once.

    python bench/passthrough.py [--requests 300] [--streams 200] [--delay 0.25] [--hold 60] [--plugin-requests 1000]
    python bench/passthrough.py --only-first-byte --requests 1000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
API_KEY = "bench-plugin-key-0123456789"
OPENROUTER_KEY = "sk-or-bench"
MODEL = "openai/gpt-4o-mini"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_fake(port: int) -> None:
    """``--serve-fake PORT``: the fake OpenRouter on that port until killed."""
    sys.path.insert(0, str(REPO / "tests"))
    from fake_openrouter import FakeOpenRouter

    fake = FakeOpenRouter(OPENROUTER_KEY)
    fake.port = port
    fake.start()
    print("ready", flush=True)
    threading.Event().wait()


def wait_until_up(port: int, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:7.2f} ms"


# --- part 1: one request at a time ------------------------------------------------------------------


USER_HEADERS = {"X-OpenWebUI-User-Id": "bench-user", "X-OpenWebUI-User-Email": "bench@example.com",
                "X-OpenWebUI-User-Name": "Bench User", "X-OpenWebUI-User-Role": "user"}


def timed_chat(conn: http.client.HTTPConnection, path: str, stream: bool, words: int, delay: float) -> tuple[float, float, float]:
    """(first body byte, first word, end) in seconds for one chat completion on ``conn``."""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}], "stream": stream})
    headers = {"Authorization": f"Bearer {OPENROUTER_KEY}", "Content-Type": "application/json", **USER_HEADERS,
               "X-Fake-Stream-Words": str(words), "X-Fake-Stream-Delay": str(delay)}
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    first = word = None
    seen = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        at = time.perf_counter() - started
        if first is None:
            first = at
        seen += chunk
        if word is None and (b'"content":"word' in seen or b'"content": "OK"' in seen):
            word = at
    response.read()  # the chunked terminator, so the connection is ready for the next request
    response.close()
    end = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {seen[:200]!r}")
    return first, word if word is not None else end, end


def compare(fake_port: int, meter_port: int, requests: int, words: int, delay: float) -> None:
    direct = http.client.HTTPConnection("127.0.0.1", fake_port)
    through = http.client.HTTPConnection("127.0.0.1", meter_port)
    for stream in (True, False):
        results = {"direct": [], "meter": []}
        for i in range(requests):
            # alternate, so both sides see the same machine load
            results["direct"].append(timed_chat(direct, "/api/v1/chat/completions", stream, words, delay))
            results["meter"].append(timed_chat(through, "/openrouter/v1/chat/completions", stream, words, delay))
        kind = f"streamed ({words} words, {delay * 1000:.0f} ms apart)" if stream else "non-streamed"
        print(f"\n{kind}, {requests} requests each way:")
        print(f"  {'':18} {'direct p50':>11} {'meter p50':>11} {'direct p99':>11} {'meter p99':>11}   added p50 / p99 (paired)")
        for index, name in enumerate(("first byte", "first word", "total")):
            d = [r[index] for r in results["direct"]]
            m = [r[index] for r in results["meter"]]
            # each meter request minus the direct one sent just before it: load that comes and
            # goes hits both halves of a pair, so this is what the meter itself adds
            added = [through - straight for straight, through in zip(d, m)]
            print(f"  {name:18} {ms(pct(d, 50))} {ms(pct(m, 50))} {ms(pct(d, 99))} {ms(pct(m, 99))}   "
                  f"{pct(added, 50) * 1000:+.2f} / {pct(added, 99) * 1000:+.2f} ms")
    direct.close()
    through.close()


# --- parts 2 and 3: the plugin endpoints ------------------------------------------------------------


def plugin_latency(meter_port: int, count: int, tag: str) -> dict[str, list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", meter_port)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    times: dict[str, list[float]] = {"inlet": [], "outlet": []}
    for i in range(count):
        user = {"id": f"plugin-user-{i % 50}", "email": f"p{i % 50}@example.com", "name": f"Plugin {i % 50}", "role": "user"}
        for name, body in (("inlet", {"user": user, "model": MODEL, "chat_id": "c", "message_id": f"m{i}"}),
                           ("outlet", {"key": f"{tag}-{i}", "user": user, "model": MODEL, "chat_id": "c", "message_id": f"{tag}-{i}",
                                       "usage": {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.00001}})):
            started = time.perf_counter()
            conn.request("POST", f"/api/v1/{name}", body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            response.read()
            times[name].append(time.perf_counter() - started)
            if response.status not in (200, 202):
                raise RuntimeError(f"{name}: {response.status}")
    conn.close()
    return times


def print_plugin(times: dict[str, list[float]], label: str) -> None:
    for name, values in times.items():
        print(f"  {label:34} {name:6} p50 {ms(pct(values, 50))}   p99 {ms(pct(values, 99))}   max {ms(max(values))}")


def hold_streams(meter_port: int, streams: int, words: int, delay: float, opened: threading.Barrier, outcomes: list) -> list[threading.Thread]:
    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", meter_port, timeout=words * delay + 60)
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": f"stream {i}"}], "stream": True})
        headers = {"Authorization": f"Bearer {OPENROUTER_KEY}", "Content-Type": "application/json", **USER_HEADERS,
                   "X-OpenWebUI-Chat-Id": f"chat-{i}", "X-Fake-Stream-Words": str(words), "X-Fake-Stream-Delay": str(delay)}
        try:
            conn.request("POST", "/openrouter/v1/chat/completions", body=body, headers=headers)
            response = conn.getresponse()
            first = response.read1(65536)
            opened.wait()
            rest = response.read()
            text = (first + rest).decode()
            outcomes.append((response.status, json.loads(next(l for l in text.splitlines() if l.startswith("data: {"))[6:])["id"]))
        except Exception as exc:  # counted, not fatal: the summary says how many failed
            outcomes.append((0, repr(exc)))
            try:
                opened.wait(0)
            except threading.BrokenBarrierError:
                pass
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(streams)]
    for i, thread in enumerate(threads):
        thread.start()
        if i % 20 == 19:
            time.sleep(0.05)  # the fake's listen backlog is 128
    return threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests each way per kind in part 1")
    parser.add_argument("--words", type=int, default=20, help="words per streamed answer in part 1")
    parser.add_argument("--word-delay", type=float, default=0.005, help="seconds between words in part 1")
    parser.add_argument("--streams", type=int, default=200, help="slow streams held open in part 3")
    parser.add_argument("--delay", type=float, default=0.25, help="seconds between words of a slow stream")
    parser.add_argument("--hold", type=float, default=60, help="how long each slow stream lasts, in seconds")
    parser.add_argument("--plugin-requests", type=int, default=1000, help="inlet+outlet pairs measured in parts 2 and 3")
    parser.add_argument("--only-first-byte", action="store_true", help="part 1 only (time to first byte and total)")
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return

    fake_port, meter_port = free_port(), free_port()
    children = []
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            children.append(subprocess.Popen([sys.executable, __file__, "--serve-fake", str(fake_port)], stdout=subprocess.DEVNULL))
            wait_until_up(fake_port, "/api/v1/models")
            env = {**os.environ, "PYTHONPATH": str(REPO), "METER_DATA_DIR": data_dir, "METER_PORT": str(meter_port),
                   "API_KEY": API_KEY, "JWT_SECRET": "bench-jwt-secret-0123456789-0123456789",
                   "OPENROUTER_BASE_URL": f"http://127.0.0.1:{fake_port}/api/v1", "METER_PASSTHROUGH": "true",
                   "METER_PASSTHROUGH_WINDOW_SECONDS": "0", "METER_LOG_LEVEL": "WARNING", "METER_BACKUP_KEEP": "0"}
            children.append(subprocess.Popen([sys.executable, "-m", "owui_meter", "serve"], env=env, stdout=subprocess.DEVNULL))
            wait_until_up(meter_port, "/healthcheck")
            print(f"fake OpenRouter :{fake_port}, meter :{meter_port} (waitress, WORKER=8 + METER_PASSTHROUGH_STREAMS=256 threads)")

            for _ in range(20):  # warm both paths (connection pools, imports)
                timed_chat(http.client.HTTPConnection("127.0.0.1", meter_port), "/openrouter/v1/chat/completions", True, 2, 0)
            compare(fake_port, meter_port, args.requests, args.words, args.word_delay)
            if args.only_first_byte:
                return

            print(f"\nplugin endpoints, {args.plugin_requests} inlet + outlet each, one keep-alive client:")
            print_plugin(plugin_latency(meter_port, args.plugin_requests, "idle"), "idle meter")

            words = int(args.hold / args.delay)
            opened = threading.Barrier(args.streams + 1)
            outcomes: list = []
            started = time.perf_counter()
            threads = hold_streams(meter_port, args.streams, words, args.delay, opened, outcomes)
            opened.wait(timeout=120)
            print(f"  ({args.streams} streams open after {time.perf_counter() - started:.1f} s, each {args.hold:.0f} s long)")
            during = plugin_latency(meter_port, args.plugin_requests, "busy")
            in_flight = json.loads(_get(meter_port, "/healthcheck"))["passthrough"]["in_flight"]
            print_plugin(during, f"with {in_flight} streams open")
            print(f"  (a word every {args.delay * 1000:.0f} ms on each: {args.streams / args.delay:.0f} chunks/s relayed meanwhile)")
            print("waiting for the slow streams to end, to check their records...", flush=True)
            for thread in threads:
                thread.join()
            ok = [gen for status, gen in outcomes if status == 200]
            time.sleep(3)  # the writer flushes and settles every METER_WORKER_POLL_MS
            health = json.loads(_get(meter_port, "/healthcheck"))["passthrough"]
            print(f"  streams answered 200: {len(ok)} of {args.streams}; their generations in the ledger once each: "
                  f"{_count_events(data_dir, ok)} of {len(ok)}; records dropped: {health['dropped']}, buffered: {health['buffered']}")
        finally:
            for child in reversed(children):
                child.terminate()
                child.wait(10)


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


def _count_events(data_dir: str, gen_ids: list[str]) -> int:
    import apsw

    conn = apsw.Connection(os.path.join(data_dir, "meter.db"), flags=apsw.SQLITE_OPEN_READONLY)
    found = 0
    for gen_id in gen_ids:
        found += conn.execute("SELECT count(*) FROM events WHERE key = ?", (f"passthrough:{gen_id}",)).fetchall()[0][0] == 1
    conn.close()
    return found


if __name__ == "__main__":
    main()
