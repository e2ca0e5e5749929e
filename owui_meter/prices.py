"""Model prices: OpenRouter's list (synced daily) and admin-set prices, and estimates from them.

Prices are kept per token in pico-USD (1e-12 USD): OpenRouter's "0.00000015" is exactly 150000.
An admin price for a model wins over OpenRouter's; a workspace model (one with a base model) uses
its own price if it has one, else its base model's.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from . import audit, clock
from .errors import BadInput
from .money import parse_usd
from .openrouter import OpenRouter, OpenRouterError
from .workers import Job

log = logging.getLogger("owui_meter.prices")

PICO = Decimal(10**12)
FIELDS = ("prompt", "completion", "reasoning", "cache_read", "request")
# OpenRouter's /models pricing keys for our fields
OPENROUTER_KEYS = {"prompt": "prompt", "completion": "completion", "reasoning": "internal_reasoning", "cache_read": "input_cache_read", "request": "request"}


def usd_to_pico(value) -> int:
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(value)
    return int((amount * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))


def price_for(db_or_conn, model: str, base_model: str | None = None) -> dict | None:
    """The price that applies to a model: admin, then OpenRouter; the model's own, then its base's."""
    execute = db_or_conn.query if hasattr(db_or_conn, "query") else (lambda sql, p: db_or_conn.execute(sql, p).fetchall())
    for candidate in (model, base_model):
        if not candidate:
            continue
        rows = execute("SELECT * FROM prices WHERE model = ? ORDER BY source = 'admin' DESC LIMIT 1", (candidate,))
        if rows:
            return rows[0]
    return None


def estimate_nano(price: dict, prompt: int, completion: int, reasoning: int = 0, cached: int = 0) -> int:
    """tokens × price, in nano-USD. Cached input is billed at the cache price when there is one;
    reasoning tokens are part of the completion tokens and billed at the reasoning price if set."""
    cache_price = price["cache_read_pico"] if price["cache_read_pico"] is not None else price["prompt_pico"]
    reasoning_price = price["reasoning_pico"] if price["reasoning_pico"] is not None else price["completion_pico"]
    cached = min(cached, prompt)
    reasoning = min(reasoning, completion)
    pico = (
        (prompt - cached) * price["prompt_pico"] + cached * cache_price
        + (completion - reasoning) * price["completion_pico"] + reasoning * reasoning_price
        + price["request_pico"]
    )
    return int((Decimal(pico) / 1000).to_integral_value(rounding=ROUND_HALF_EVEN))


def make_estimator():
    """For ``ledger.estimator``: tokens × the applicable price, or None with no price known."""

    def estimator(conn, event) -> int | None:
        price = price_for(conn, event.model, event.base_model)
        if price is None:
            return None
        return estimate_nano(price, event.prompt_tokens, event.completion_tokens, event.reasoning_tokens, event.cached_tokens)

    return estimator


class PriceSync(Job):
    """Fetches OpenRouter's /models price list at start and every METER_PRICE_SYNC_HOURS."""

    name = "price-sync"

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        s = meter.settings
        self.client = OpenRouter.from_settings(s)
        self.last_sync: int | None = None
        self.last_error: str | None = None

    def step(self) -> float:
        try:
            self.sync()
            return self.meter.settings.METER_PRICE_SYNC_HOURS * 3600
        except OpenRouterError as exc:
            self.last_error = str(exc)
            log.warning("price sync failed: %s", exc)
            return 600.0

    def sync(self) -> int:
        """Replace OpenRouter's prices with the current list; returns how many models."""
        models = self.client.models()
        rows = []
        for model in models:
            pricing = model.get("pricing") or {}
            try:
                values = {f: (usd_to_pico(pricing[k]) if pricing.get(k) not in (None, "") else None) for f, k in OPENROUTER_KEYS.items()}
            except (InvalidOperation, ValueError):
                continue  # OpenRouter uses -1 and odd strings for "varies": no estimate from those
            if any(v is not None and v < 0 for v in values.values()):
                continue
            rows.append({"model": model["id"], "name": model.get("name"), **{f"{f}_pico": values[f] for f in FIELDS}})
        now = clock.now_ms()
        with self.meter.db.write() as conn:
            conn.execute("DELETE FROM prices WHERE source = 'openrouter'")
            for row in rows:
                conn.execute(
                    """INSERT INTO prices (model, source, prompt_pico, completion_pico, reasoning_pico, cache_read_pico, request_pico, name, updated)
                       VALUES (:model, 'openrouter', coalesce(:prompt_pico, 0), coalesce(:completion_pico, 0), :reasoning_pico, :cache_read_pico, coalesce(:request_pico, 0), :name, :now)""",
                    row | {"now": now},
                )
        self.last_sync, self.last_error = now, None
        return len(rows)


# --- admin prices (API) ----------------------------------------------------------------------------

PER_MTOK = Decimal(10**6)


def price_json(row: dict) -> dict:
    def per_mtok(pico):
        return None if pico is None else float(Decimal(pico) * PER_MTOK / PICO)

    return {
        "model": row["model"],
        "source": row["source"],
        "name": row.get("name"),
        "prompt_usd_per_mtok": per_mtok(row["prompt_pico"]),
        "completion_usd_per_mtok": per_mtok(row["completion_pico"]),
        "reasoning_usd_per_mtok": per_mtok(row["reasoning_pico"]),
        "cache_read_usd_per_mtok": per_mtok(row["cache_read_pico"]),
        "request_usd": float(Decimal(row["request_pico"]) / PICO),
        "updated": row["updated"],
    }


def parse_model_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > 512:
        raise BadInput("model id must be 1 to 512 characters")
    return model_id


def parse_admin_price(body) -> dict:
    """``{"prompt_usd_per_mtok", "completion_usd_per_mtok", ["reasoning_usd_per_mtok"],
    ["cache_read_usd_per_mtok"], ["request_usd"]}`` -> pico-USD per token / request."""
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    known = {f"{f}_usd_per_mtok" for f in FIELDS if f != "request"} | {"request_usd"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadInput(f"unknown field {unknown[0]}; expected some of {', '.join(sorted(known))}")
    out = {}
    for field in FIELDS:
        name = "request_usd" if field == "request" else f"{field}_usd_per_mtok"
        value = body.get(name)
        if value is None:
            if field in ("prompt", "completion"):
                raise BadInput(f"{name} is required")
            out[f"{field}_pico"] = 0 if field == "request" else None
            continue
        amount = parse_usd(name, value)
        per_token = amount if field == "request" else amount / PER_MTOK
        out[f"{field}_pico"] = int((per_token * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))
    return out


def set_admin_price(meter, model: str, price: dict, actor: str) -> dict:
    with meter.db.write() as conn:
        conn.execute(
            """INSERT INTO prices (model, source, prompt_pico, completion_pico, reasoning_pico, cache_read_pico, request_pico, updated)
               VALUES (:model, 'admin', :prompt_pico, :completion_pico, :reasoning_pico, :cache_read_pico, :request_pico, :now)
               ON CONFLICT (model, source) DO UPDATE SET prompt_pico = excluded.prompt_pico,
                   completion_pico = excluded.completion_pico, reasoning_pico = excluded.reasoning_pico,
                   cache_read_pico = excluded.cache_read_pico, request_pico = excluded.request_pico, updated = excluded.updated""",
            {"model": model, "now": clock.now_ms(), **price},
        )
        audit.record(conn, actor, "price.set", {"model": model, **price})
        return conn.execute("SELECT * FROM prices WHERE model = ? AND source = 'admin'", (model,)).fetchall()[0]


def delete_admin_price(meter, model: str, actor: str) -> bool:
    with meter.db.write() as conn:
        gone = conn.execute("DELETE FROM prices WHERE model = ? AND source = 'admin' RETURNING model", (model,)).fetchall()
        if gone:
            audit.record(conn, actor, "price.delete", {"model": model})
        return bool(gone)
