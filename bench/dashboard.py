"""Dashboard page times on a year of data (default 1,000,000 answers, 500 users, 40 models).

Seeds a data directory (or reuses one given with --data-dir that was seeded before), then times
each page in a fresh child process over the Flask test client (median of several runs, logged
in): the period views, whole-year views, the events page deep into its pages (keyset
pagination) and the CSV export of everything (rows/s). /healthcheck is timed the same way as
the baseline. The child reports its peak RSS while serving, so seeding does not count.

Prints a table and, last, one JSON line with every figure (for comparing runs).

    python bench/dashboard.py [--events 1000000] [--runs 7] [--data-dir DIR] [--no-csv]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]


def pages() -> list[str]:
    today = dt.date.today()
    year = f"from={today - dt.timedelta(days=364)}&to={today}"
    return ["/healthcheck", "/", "/?period=7d", f"/?period=custom&{year}", "/users", f"/users?period=custom&{year}",
            "/users/u1", f"/users/u1?period=custom&{year}", "/models", f"/models?period=custom&{year}", "/budgets",
            "/status", "/reports", "/events", "/events?user=u3", "/events?model=vendor/model-5&source=api"]


def rss_mb() -> int:
    """Resident memory now (peak RSS would count argon2's 64 MiB transient of the login)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))


def measure(data_dir: str, runs: int, csv: bool) -> dict:
    """In this (child) process: open the seeded meter and time every page."""
    from owui_meter import create_app, settings

    env = {"METER_DATA_DIR": data_dir, "API_KEY": "bench-plugin-key-0123456789", "JWT_SECRET": "x" * 40,
           "PASSWORD_HASH": os.environ["BENCH_PASSWORD_HASH"]}
    app = create_app(settings.load(env))
    meter = app.config["METER"]
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    login = {"username": "admin", "password": "bench-password", "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302

    def median_ms(path):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path)
            response.get_data()
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        return statistics.median(times)

    figures = {"pages_ms": {path: round(median_ms(path), 1) for path in pages()}}
    path = "/events?limit=50"
    for _ in range(200):  # deep pages: follow the cursor 200 pages in, then time that page
        html = client.get(path).get_data(as_text=True)
        path = re.search(r'id="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    figures["pages_ms"]["/events page 201 (keyset)"] = round(median_ms(path), 1)
    figures["rss_mb_serving_pages"] = rss_mb()
    if csv:
        started = time.perf_counter()
        rows = 0
        response = client.get("/events.csv")
        for chunk in response.response:
            rows += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        figures["csv_rows"] = rows - 1
        figures["csv_rows_per_s"] = round((rows - 1) / elapsed)
        figures["rss_mb_after_csv"] = rss_mb()
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    meter.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data-dir", help="seed here, or reuse what an earlier run seeded here")
    parser.add_argument("--no-csv", action="store_true", help="skip the CSV export")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs, not args.no_csv)))
        return

    from owui_meter.auth import hash_password
    from seed import seed

    temporary = None
    data_dir = args.data_dir
    if data_dir is None:
        temporary = tempfile.TemporaryDirectory()
        data_dir = temporary.name
    marker = Path(data_dir) / "seeded-events"
    if not marker.exists() or int(marker.read_text()) != args.events:
        started = time.perf_counter()
        seed(data_dir, args.events).config["METER"].stop()
        marker.write_text(str(args.events))
        print(f"seeded {args.events:,} events in {time.perf_counter() - started:.0f} s")
    env = {**os.environ, "BENCH_PASSWORD_HASH": hash_password("bench-password")}
    child = [sys.executable, __file__, "--measure", data_dir, "--runs", str(args.runs)] + (["--no-csv"] if args.no_csv else [])
    figures = json.loads(subprocess.run(child, env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    figures = {"events": args.events, **figures}
    print(f"{'page':<55} {'median ms':>10}")
    for path, ms in figures["pages_ms"].items():
        print(f"{path:<55} {ms:>10.1f}")
    print(f"RSS serving pages: {figures['rss_mb_serving_pages']} MB (peak {figures['peak_rss_mb']} MB, with argon2's login)")
    if "csv_rows" in figures:
        print(f"CSV export: {figures['csv_rows']:,} rows, {figures['csv_rows_per_s']:,} rows/s, RSS after {figures['rss_mb_after_csv']} MB")
    print(json.dumps(figures))
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
