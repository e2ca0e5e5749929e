"""Seed a meter database with a year of answers, straight into events, generations and usage_daily
(the rollups follow by their triggers), consistent for `owui-meter check`.

Used by the dashboard and reports benchmarks: N events over 365 days, U users, M models.
"""

from __future__ import annotations

import random
import time

from owui_meter import create_app, settings


def seed(data_dir: str, events: int = 1_000_000, users: int = 500, models: int = 40, seed_value: int = 7):
    env = {"METER_DATA_DIR": data_dir, "API_KEY": "bench-plugin-key-0123456789", "JWT_SECRET": "x" * 40}
    app = create_app(settings.load(env))
    meter = app.config["METER"]
    rng = random.Random(seed_value)
    end = int(time.time() * 1000)
    start = end - 365 * 86400 * 1000
    daily: dict[tuple, list[int]] = {}
    with meter.db.write() as conn:
        conn.executemany("INSERT INTO users (id, email, name, role, first_seen, last_seen) VALUES (?, ?, ?, 'user', ?, ?)",
                         ((f"u{i}", f"user{i}@example.com", f"User {i}", start, end) for i in range(users)))
        batch, generations = [], []
        for i in range(events):
            ts = rng.randrange(start, end)
            user, model = f"u{int(rng.paretovariate(1.2)) % users}", f"vendor/model-{rng.randrange(models)}"
            source = "api" if rng.random() < 0.2 else "ui"
            p, c, cost = rng.randrange(10, 4000), rng.randrange(10, 2000), rng.randrange(1_000, 20_000_000)
            confirmed = rng.random() < 0.9
            # as the ledger keeps them: a confirmed cost is its generation's, which OpenRouter answered
            batch.append((i + 1, f"k{i}", ts, ts, user, model, source, p, c, cost, "generation" if confirmed else "inline", cost, cost,
                          "confirmed" if confirmed else "none"))
            if confirmed:
                generations.append((f"gen-k{i}", i + 1, ts, ts, cost))
            d = daily.setdefault((meter.ledger.day_of(ts), user, model, source), [0, 0, 0, 0, 0])
            d[0] += 1; d[1] += p; d[2] += c; d[3] += cost; d[4] += cost if confirmed else 0
            if len(batch) == 50_000 or i == events - 1:
                conn.executemany(
                    """INSERT INTO events (id, key, ts, received, user_id, model, source, prompt_tokens, completion_tokens, cost_nano,
                                           cost_source, inline_cost_nano, openrouter_nano, lookup_state)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", batch)
                conn.executemany("INSERT INTO generations (id, event_id, state, created, next_try, total_cost_nano) VALUES (?, ?, 'done', ?, ?, ?)",
                                 generations)
                batch, generations = [], []
        conn.executemany("INSERT INTO usage_daily (day, user_id, model, source, answers, prompt_tokens, completion_tokens, cost_nano, confirmed_cost_nano) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         ((*k, *v) for k, v in daily.items()))
        meter.budgets.rebuild_spend(conn)  # the day, week and month counters budgets read
    meter.db._writer.execute("ANALYZE")
    return app
