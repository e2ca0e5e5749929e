"""Cost resolver throughput against the fake OpenRouter on loopback, and proof the rate limit holds.

Seeds N answers with one generation id each (pending lookups), then runs the resolver until the
queue is empty. Prints lookups/s with the rate limit set high (what the machine can do), then a
run with a low limit showing the observed rate stays at or under it.

    python bench/resolve.py [--lookups 10000] [--concurrency 8] [--limited-rate 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fake_openrouter import FakeOpenRouter  # noqa: E402

from owui_meter import create_app, ingest, settings  # noqa: E402


def run(lookups: int, concurrency: int, rate: int) -> dict:
    with FakeOpenRouter() as fake, tempfile.TemporaryDirectory() as data_dir:
        env = {"METER_DATA_DIR": data_dir, "API_KEY": "bench-plugin-key-0123456789", "JWT_SECRET": "x" * 40,
               "OPENROUTER_API_KEY": fake.api_key, "OPENROUTER_BASE_URL": fake.url,
               "METER_LOOKUP_CONCURRENCY": str(concurrency), "METER_LOOKUP_RATE": str(rate)}
        app = create_app(settings.load(env))
        meter = app.config["METER"]
        for i in range(lookups):
            fake.add_generation(f"gen-{i}", 0.0001)
            meter.ledger.record(ingest.parse_outlet({"key": f"k{i}", "user": {"id": f"u{i % 100}"}, "model": "m",
                                                     "usage": {"cost": 0.0001}, "generation_ids": [f"gen-{i}"]}))
        started = time.perf_counter()
        while meter.resolver.run_once():
            pass
        elapsed = time.perf_counter() - started
        confirmed = meter.db.query_one("SELECT count(*) AS n FROM events WHERE cost_source = 'generation'")["n"]
        starts = sorted(t for _, path, _, t, _ in fake.requests_seen if path == "/generation")
        # the busiest one-second window
        busiest, j = 0, 0
        for i, t in enumerate(starts):
            while starts[j] < t - 1.0:
                j += 1
            busiest = max(busiest, i - j + 1)
        meter.stop()
        return {"lookups": lookups, "seconds": elapsed, "per_s": lookups / elapsed, "confirmed": confirmed,
                "busiest_second": busiest, "max_in_flight": fake.max_concurrent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limited-rate", type=int, default=50)
    args = parser.parse_args()
    free = run(args.lookups, args.concurrency, 1000)
    print(f"unthrottled (rate limit 1000/s, {args.concurrency} in flight): {free['lookups']} lookups in {free['seconds']:.1f} s "
          f"= {free['per_s']:.0f}/s; confirmed {free['confirmed']}; busiest second {free['busiest_second']}; max in flight {free['max_in_flight']}")
    sample = max(args.limited_rate * 4, 100)
    limited = run(sample, args.concurrency, args.limited_rate)
    print(f"limited to {args.limited_rate}/s: {limited['lookups']} lookups in {limited['seconds']:.1f} s = {limited['per_s']:.1f}/s; "
          f"busiest second {limited['busiest_second']} (limit {args.limited_rate}); max in flight {limited['max_in_flight']}; confirmed {limited['confirmed']}")


if __name__ == "__main__":
    main()
