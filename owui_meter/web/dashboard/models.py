"""The models page: usage per model, prices (synced and set here), and a live test of each model."""

from __future__ import annotations

import concurrent.futures
import time

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ... import prices
from ...errors import BadInput
from ...openrouter import OpenRouter, OpenRouterError
from ..access import require_login
from ..params import meter
from . import bp, form_error, model_names, picked_period, sort_order


SORTS = {"model": ("model", False), "answers": ("answers", True), "prompt": ("prompt", True), "completion": ("completion", True),
         "cost": ("cost", True), "confirmed": ("confirmed", True)}
PRICE_FIELDS = {"model": "Model id", "prompt_usd_per_mtok": "Input $/M", "completion_usd_per_mtok": "Output $/M"}


def models_page(error: dict | None = None, status: int = 200):
    period, picker = picked_period()
    sort, direction, order = sort_order(request.args, SORTS, "cost")
    db = meter().db
    rows = db.query(
        f"""SELECT model, sum(answers) AS answers, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
                  sum(cost_nano) AS cost, sum(confirmed_cost_nano) AS confirmed
           FROM usage_day_model WHERE day BETWEEN ? AND ? GROUP BY model ORDER BY {order}, model""",
        period.days,
    )
    # BYOK provider charges and cache savings: only the rows that have any (a partial index)
    split = {r["model"]: r for r in db.query(
        """SELECT model, sum(provider_cost_nano) AS provider, sum(cache_discount_nano) AS cache_saved FROM usage_daily
           WHERE (provider_cost_nano != 0 OR cache_discount_nano != 0) AND day BETWEEN ? AND ? GROUP BY model""",
        period.days,
    )}
    for row in rows:
        extra = split.get(row["model"], {"provider": 0, "cache_saved": 0})
        row["provider"], row["cache_saved"] = extra["provider"], extra["cache_saved"]
        # both parts rounded to the cent (half even, as shown), so they add up to the shown cost
        row["fee"] = round(row["cost"], -7) - round(row["provider"], -7)
    price_rows = [prices.price_json(r) for r in db.query(
        "SELECT * FROM prices WHERE source = 'admin' OR model IN (SELECT DISTINCT model FROM usage_day_model) ORDER BY model, source")]
    return render_template("dashboard/models.html", **picker, rows=rows, prices=price_rows, names=model_names(), sort=sort, direction=direction,
                           tested=getattr(current_app, "model_test_results", None), error=error, form=request.form if error else {}), status


@bp.get("/models")
@require_login
def models():
    return models_page()


@bp.post("/models/prices")
@require_login
def set_price():
    try:
        model = prices.parse_model_id(request.form.get("model", "").strip())
        fields = {k: request.form.get(k) or None for k in ("prompt_usd_per_mtok", "completion_usd_per_mtok")}
        price = prices.parse_admin_price(fields)
    except BadInput as exc:
        return models_page(form_error(exc, PRICE_FIELDS), 400)
    prices.set_admin_price(meter(), model, price, current_user.username)
    flash(f"Price for {model} saved.")
    return redirect(url_for("dashboard.models"))


@bp.post("/models/test")
@require_login
def test_models():
    """Send each model the team used a one-token request through OpenRouter; shows which answer."""
    s = meter().settings
    if not s.OPENROUTER_API_KEY:
        raise BadInput("set OPENROUTER_API_KEY to test models")
    client = OpenRouter.from_settings(s)
    used = [r["model"] for r in meter().db.query("SELECT DISTINCT model FROM usage_day_model ORDER BY model")]
    known = {r["model"] for r in meter().db.query("SELECT model FROM prices WHERE source = 'openrouter'")}
    names = [m for m in used if m in known][:50]  # a workspace model or another provider's is not OpenRouter's to test

    def probe(model):
        started = time.perf_counter()
        try:
            client.chat(model, [{"role": "user", "content": "Say OK."}], max_tokens=1)
            return {"model": model, "ok": True, "ms": round((time.perf_counter() - started) * 1000), "error": None}
        except OpenRouterError as exc:
            return {"model": model, "ok": False, "ms": round((time.perf_counter() - started) * 1000), "error": str(exc)}

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(probe, names))
    current_app.model_test_results = results + [{"model": m, "ok": None, "ms": None, "error": "not on OpenRouter"} for m in used if m not in known]
    return redirect(url_for("dashboard.models"))
