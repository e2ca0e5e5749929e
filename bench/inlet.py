"""Inlet decision latency with a realistic budget setup, next to /healthcheck on the same server.

Seeds 10,000 users, 100 groups (each user in one or two), budgets for everyone, every group and
500 users, and 1,000,000 events with their spend counters, straight into the database. Then a
real waitress server (child process) answers inlet requests for random users, one client on a
keep-alive connection; p50/p99 are printed next to the /healthcheck baseline.

    python bench/inlet.py [--events 1000000] [--requests 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from owui_meter import create_app, settings  # noqa: E402
from owui_meter.budgets import PERIODS, period_start  # noqa: E402

API_KEY = "bench-plugin-key-0123456789"


def seed(data_dir: str, users: int, groups: int, events: int) -> None:
    env = {"METER_DATA_DIR": data_dir, "API_KEY": API_KEY, "JWT_SECRET": "x" * 40}
    meter = create_app(settings.load(env)).config["METER"]
    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    year_ms = 365 * 86400 * 1000
    with meter.db.write() as conn:
        conn.executemany("INSERT INTO users (id, email, name, role, first_seen, last_seen) VALUES (?, ?, ?, 'user', 0, 0)",
                         ((f"u{i}", f"u{i}@example.com", f"User {i}") for i in range(users)))
        conn.executemany("INSERT INTO groups (id, name, synced) VALUES (?, ?, 0)", ((f"g{i}", f"Group {i}") for i in range(groups)))
        conn.executemany("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)",
                         ((f"g{rng.randrange(groups)}", f"u{i}") for i in list(range(users)) * 2 if rng.random() < 0.75))
        conn.execute("INSERT INTO budgets (scope, scope_id, period, limit_nano, action, group_mode, created, updated) VALUES ('all', NULL, 'month', 50000000000, 'block', 'per_member', 0, 0)")
        conn.executemany("INSERT INTO budgets (scope, scope_id, period, limit_nano, action, group_mode, created, updated) VALUES ('group', ?, 'month', 500000000000, 'block', ?, 0, 0)",
                         ((f"g{i}", "shared" if i % 2 else "per_member") for i in range(groups)))
        conn.executemany("INSERT INTO budgets (scope, scope_id, period, limit_nano, action, group_mode, created, updated) VALUES ('user', ?, 'day', 5000000000, 'block', 'per_member', 0, 0)",
                         ((f"u{i}",) for i in range(0, users, users // 500)))
        spend: dict[tuple, int] = {}
        rows = []
        for i in range(events):
            user = f"u{rng.randrange(users)}"
            ts = now_ms - rng.randrange(year_ms)
            cost = rng.randrange(10_000, 5_000_000)
            rows.append((f"k{i}", ts, ts, user, f"model-{rng.randrange(40)}", "ui", 100, 200, cost, "inline"))
            day = meter.budgets.local_day(ts)
            for period in PERIODS:
                key = (user, period, period_start(period, day)[0])
                spend[key] = spend.get(key, 0) + cost
            if len(rows) == 50_000:
                conn.executemany("INSERT INTO events (key, ts, received, user_id, model, source, prompt_tokens, completion_tokens, cost_nano, cost_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                rows = []
        conn.executemany("INSERT INTO events (key, ts, received, user_id, model, source, prompt_tokens, completion_tokens, cost_nano, cost_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO spend (user_id, period, start, cost_nano) VALUES (?, ?, ?, ?)", ((*k, v) for k, v in spend.items()))
    meter.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        seed(data_dir, args.users, args.groups, args.events)
        print(f"seeded {args.users} users, {args.groups} groups, {args.events} events in {time.perf_counter() - started:.0f} s")
        port = 46000 + os.getpid() % 1000
        env = {**os.environ, "PYTHONPATH": str(REPO), "METER_DATA_DIR": data_dir, "API_KEY": API_KEY, "JWT_SECRET": "x" * 40,
               "METER_PORT": str(port), "METER_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "owui_meter", "serve"], env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    requests.get(url + "/healthcheck", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            session = requests.Session()
            rng = random.Random(1)

            def measure(call) -> list[float]:
                times = []
                for _ in range(args.requests):
                    t = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - t) * 1000)
                return sorted(times)

            headers = {"Authorization": f"Bearer {API_KEY}"}
            blocked = 0

            def inlet():
                nonlocal blocked
                body = {"user": {"id": f"u{rng.randrange(args.users)}"}, "model": "model-1"}
                blocked += not session.post(url + "/api/v1/inlet", json=body, headers=headers).json()["allow"]

            measure(lambda: session.get(url + "/healthcheck"))  # warm up both paths
            base = measure(lambda: session.get(url + "/healthcheck"))
            dec = measure(inlet)
            pick = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]
            print(f"{'route':<12} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
            print(f"{'healthcheck':<12} {pick(base, .5):>8.2f} {pick(base, .99):>8.2f} {statistics.mean(base):>8.2f}")
            print(f"{'inlet':<12} {pick(dec, .5):>8.2f} {pick(dec, .99):>8.2f} {statistics.mean(dec):>8.2f}")
            print(f"inlet decisions that blocked: {blocked} of {args.requests}")
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
