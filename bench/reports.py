"""Statement and summary times on a year of data (1,000,000 answers, 500 users).

Times one user's statement for the last full month, the summary, and all statements of that
month (what `owui-meter report` writes), in each language asked for (METER_LANGUAGE).

    python bench/reports.py [--events 1000000] [--languages en,de,zh]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]
from seed import seed  # noqa: E402

from owui_meter import reports  # noqa: E402
from owui_meter.periods import Period  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--languages", default="en", help="comma-separated METER_LANGUAGE values to time, e.g. en,de,zh")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        t = time.perf_counter()
        meter = seed(data_dir, args.events).config["METER"]
        print(f"seeded {args.events:,} events in {time.perf_counter() - t:.0f} s")
        last_month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        period = Period.month(last_month, meter.settings.METER_TIMEZONE)
        busiest = reports.summary_rows(meter, period)[0]["user_id"]
        base = meter.settings
        for language in args.languages.split(","):
            meter.settings = base.replace(METER_LANGUAGE=language)
            times = []
            for _ in range(5):
                started = time.perf_counter()
                reports.user_statement(meter, busiest, period)
                times.append(time.perf_counter() - started)
            print(f"[{language}] one statement ({last_month}, busiest user): median {statistics.median(times) * 1000:.0f} ms")
            started = time.perf_counter()
            size = len(reports.summary(meter, period))
            print(f"[{language}] summary: {(time.perf_counter() - started) * 1000:.0f} ms, {size / 1024:.0f} KiB")
            rows = reports.summary_rows(meter, period)
            started = time.perf_counter()
            for row in rows:
                reports.user_statement(meter, row["user_id"], period)
            print(f"[{language}] all {len(rows)} statements: {time.perf_counter() - started:.1f} s")
        meter.stop()


if __name__ == "__main__":
    main()
