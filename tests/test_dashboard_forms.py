"""The dashboard's forms and filters over the Flask client: every bad input gets a 400 that says
what to type, beside the form with what was typed, and changes nothing."""

import re

import pytest

from conftest import ADA, API_KEY, outlet_body
from fake_openrouter import FakeOpenRouter
from test_costs import costed_app
from test_dashboard import csrf_of, log_in

H = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def admin(client, meter):
    client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=1.5), headers=H)
    log_in(client, meter)
    return client


def count(meter, table):
    return meter.db.query_one(f"SELECT count(*) AS n FROM {table}")["n"]


@pytest.mark.parametrize("limit, warn, message", [
    ("ten", "80", "Limit (USD): Use a number like 10 or 10.50"),
    ("", "80", "Limit (USD): Required"),
    ("-5", "80", "Limit (USD): Use an amount between 0 and 1,000,000"),
    ("1e400", "80", "Limit (USD): Use an amount between 0 and 1,000,000"),
    ("10", "eighty", "Warn at %: Use a whole number from 1 to 100"),
    ("10", "0", "Warn at %: Use a whole number from 1 to 100"),
])
def test_a_bad_budget_is_explained_beside_the_form(admin, meter, limit, warn, message):
    form = {"csrf_token": csrf_of(admin, "/budgets"), "scope": "user", "scope_id_user": ADA["id"], "period": "week",
            "limit_usd": limit, "warn_percent": warn, "action": "warn"}
    response = admin.post("/budgets", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'<p class="form-error" role="alert">{message}</p>' in html
    assert f'name="limit_usd" inputmode="decimal" required value="{limit}"' in html  # what was typed stays
    assert '<option value="week" selected>' in html and "<option selected>warn</option>" in html
    assert "<nav>" in html and count(meter, "budgets") == 0


def test_bad_scope_and_unknown_user_budget(admin, meter):
    token = csrf_of(admin, "/budgets")
    response = admin.post("/budgets", data={"csrf_token": token, "scope": "planet", "limit_usd": "5"})
    assert response.status_code == 400 and "Scope: Must be &#39;user&#39;, &#39;group&#39; or &#39;all&#39;" in response.get_data(as_text=True)
    assert count(meter, "budgets") == 0


@pytest.mark.parametrize("amount, message", [("abc", "Amount (USD): Use a number like 10 or 10.50"), ("0", "Amount (USD): Must not be zero"),
                                             ("", "Amount (USD): Required"), ("99999999", "Amount (USD): Use an amount between -1,000,000 and 1,000,000")])
def test_a_bad_top_up_is_explained_beside_the_form(data_dir, amount, message):
    from conftest import make_settings
    from owui_meter import create_app

    app = create_app(make_settings(data_dir, METER_BALANCES_ENABLED="true"))
    client, meter = app.test_client(), app.config["METER"]
    client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=1.5), headers=H)
    log_in(client, meter)
    form = {"csrf_token": csrf_of(client, f"/users/{ADA['id']}"), "amount_usd": amount, "note": "for <b>May</b>"}
    response = client.post(f"/users/{ADA['id']}/topup", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and f'<p class="form-error" role="alert">{message}</p>' in html
    assert 'value="for &lt;b&gt;May&lt;/b&gt;"' in html  # kept, and escaped
    assert count(meter, "balance_entries") == 0
    app.config["METER"].stop()


def test_top_up_form_only_with_balances_on(admin):
    assert 'id="topup"' not in admin.get(f"/users/{ADA['id']}").get_data(as_text=True)


def test_erasing_without_the_box_is_explained(admin, meter):
    form = {"csrf_token": csrf_of(admin, f"/users/{ADA['id']}"), "mode": "delete"}
    response = admin.post(f"/users/{ADA['id']}/erase", data=form)
    assert response.status_code == 400
    assert "Confirm: Tick the box to confirm: erasing cannot be undone" in response.get_data(as_text=True)
    assert count(meter, "events") == 1


@pytest.mark.parametrize("fields, message", [
    ({"model": "", "prompt_usd_per_mtok": "1", "completion_usd_per_mtok": "2"}, "Model id must be 1 to 512 characters"),
    ({"model": "x/y", "prompt_usd_per_mtok": "one", "completion_usd_per_mtok": "2"}, "Input $/M: Use a number like 10 or 10.50"),
])
def test_a_bad_price_is_explained_beside_the_form(admin, meter, fields, message):
    response = admin.post("/models/prices", data={"csrf_token": csrf_of(admin, "/models"), **fields})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert count(meter, "prices") == 0


@pytest.mark.parametrize("path, message", [
    ("/events?state=maybe", "state must be one of confirmed, reported, estimated, awaiting, unpriced"),
    ("/events?from=yesterday", "from must be a date like 2026-11-01"),
    ("/events?from=2026-11-05&to=2026-11-01", "from must not be after to"),
    ("/events?source=fax", "source must be one of ui, api, task"),
    ("/?period=month&from=2026-11-01&to=2026-13-01", "to must be a date like 2026-11-01"),
    ("/users?period=custom&from=2026-11-01", "custom periods need from and to dates (YYYY-MM-DD)"),
])
def test_bad_filters_get_a_page_that_says_why(admin, path, message):
    response = admin.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and f"<p>{message}</p>" in html and "<nav>" in html


def test_unknown_sort_falls_back_to_cost(admin):
    html = admin.get("/users?sort=drop%20table&dir=sideways").get_data(as_text=True)
    assert 'class="sorted" aria-sort="descending">Cost ↓</a>' in html


def test_test_all_models_only_asks_openrouter_about_its_own(data_dir):
    with FakeOpenRouter() as fake:
        app = costed_app(data_dir, fake)
        meter, client = app.config["METER"], app.test_client()
        meter.price_sync.sync()
        for key, model in (("a", "openai/gpt-4o-mini"), ("b", "my-workspace-model"), ("c", "ollama/llama3")):
            client.post("/api/v1/outlet", json=outlet_body(key=key, model=model, cost=0.01), headers=H)
        log_in(client, meter)
        fake.clear_log()
        html = client.post("/models/test", data={"csrf_token": csrf_of(client, "/models")}, follow_redirects=True).get_data(as_text=True)
        assert fake.count("/chat/completions") == 1  # only the model OpenRouter lists
        rows = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", html.split('id="tested"')[1]))
        assert rows == {"openai/gpt-4o-mini": "ok", "my-workspace-model": "not on OpenRouter", "ollama/llama3": "not on OpenRouter"}
        meter.stop()
