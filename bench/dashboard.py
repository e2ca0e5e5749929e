"""Dashboard page times on a year of data (1,000,000 answers, 500 users, 40 models).

Times each page over the Flask test client (median of several runs, logged in), the events page
deep into its pages (keyset pagination), and the CSV export of everything (rows/s, peak memory).
/healthcheck is timed the same way as a baseline.

    python bench/dashboard.py [--events 1000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]
from seed import seed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        t = time.perf_counter()
        app = seed(data_dir, args.events)
        print(f"seeded {args.events:,} events in {time.perf_counter() - t:.0f} s")
        meter = app.config["METER"]
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/login", data={"username": "admin", "password": meter.generated_password, "csrf_token": token}).status_code == 302

        def median_ms(path):
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            return statistics.median(times)

        print(f"{'page':<45} {'median ms':>10}")
        for path in ["/healthcheck", "/", "/?period=7d", "/?period=custom&from=2025-11-01&to=2026-11-30", "/users", "/users/u1",
                     "/models", "/budgets", "/status", "/events", "/events?user=u3", "/events?model=vendor/model-5&source=api"]:
            print(f"{path:<45} {median_ms(path):>10.1f}")
        # deep pages: follow the cursor 200 pages in, then time that page
        path = "/events?limit=50"
        for _ in range(200):
            html = client.get(path).get_data(as_text=True)
            path = re.search(r'id="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
        print(f"{'/events, page 201 (keyset)':<45} {median_ms(path):>10.1f}")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        rows = 0
        response = client.get("/events.csv")
        for chunk in response.response:
            rows += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"CSV export: {rows - 1:,} rows in {elapsed:.1f} s = {(rows - 1) / elapsed:,.0f} rows/s; peak RSS {before / 1024:.0f} MB before, {after / 1024:.0f} MB after")
        for sql in ("SELECT day, sum(cost_nano) FROM usage_daily WHERE day BETWEEN '2026-01-01' AND '2026-02-01' GROUP BY day",
                    "SELECT * FROM events e WHERE e.user_id = 'u3' ORDER BY e.ts DESC, e.id DESC LIMIT 51"):
            plan = meter.db.query("EXPLAIN QUERY PLAN " + sql)
            print("plan:", " | ".join(r["detail"] for r in plan))
        meter.stop()


if __name__ == "__main__":
    main()
