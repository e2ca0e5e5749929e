"""One parser for amounts and one for dates: every endpoint, page and setting refuses the same
input with the same words, and nothing changes."""

import pytest

from conftest import ADA, make_settings, outlet_body
from owui_meter.settings import SettingsError
from test_dashboard import csrf_of, log_in as login

NOT_A_NUMBER = "must be a number like 10 or 10.50"


def audit_count(meter) -> int:
    return meter.db.query_one("SELECT count(*) AS n FROM audit_log")["n"]


@pytest.fixture
def ada(client, plugin_headers):
    assert client.post("/api/v1/outlet", json=outlet_body(user=ADA), headers=plugin_headers).status_code == 202
    return ADA["id"]


@pytest.mark.parametrize("value", ["lots", "1e999999", "NaN", True, [1]])
def test_amounts_are_refused_alike_by_budgets_top_ups_and_prices(client, meter, admin_headers, ada, value):
    before = audit_count(meter)
    answers = {
        "limit_usd": client.post("/api/v1/budgets", json={"scope": "all", "limit_usd": value}, headers=admin_headers),
        "amount_usd": client.post(f"/api/v1/users/{ada}/topups", json={"amount_usd": value}, headers=admin_headers),
        "prompt_usd_per_mtok": client.put("/api/v1/prices/x/model", json={"prompt_usd_per_mtok": value, "completion_usd_per_mtok": 1},
                                          headers=admin_headers),
    }
    for name, response in answers.items():
        assert response.status_code == 400, name
        error = response.get_json()["error"]
        assert error.startswith(name) and ("must be a number" in error or "must be between" in error), error
    assert audit_count(meter) == before  # nothing was saved
    assert meter.db.query_one("SELECT count(*) AS n FROM budgets")["n"] == 0


def test_out_of_range_amounts_name_the_same_bounds_everywhere(client, meter, admin_headers, ada):
    budget = client.post("/api/v1/budgets", json={"scope": "all", "limit_usd": "1000000.01"}, headers=admin_headers)
    top_up = client.post(f"/api/v1/users/{ada}/topups", json={"amount_usd": -1000001}, headers=admin_headers)
    assert budget.get_json()["error"] == "limit_usd must be between 0 and 1,000,000"
    assert top_up.get_json()["error"] == "amount_usd must be between -1,000,000 and 1,000,000"
    login(client, meter)
    form = client.post(f"/users/{ada}/topup", data={"amount_usd": "ten", "csrf_token": csrf_of(client, f"/users/{ada}")})
    # the dashboard says it beside the form, in a person's words: the field's label, the same example
    assert form.status_code == 400 and "Amount (USD): Use a number like 10 or 10.50" in form.get_data(as_text=True)
    assert NOT_A_NUMBER.endswith("a number like 10 or 10.50")
    assert meter.db.query_one("SELECT count(*) AS n FROM balance_entries")["n"] == 0


def test_settings_use_the_same_money_parser(data_dir):
    with pytest.raises(SettingsError, match=f"METER_BASE_FEE {NOT_A_NUMBER}, got 'abc'"):
        make_settings(data_dir, METER_BASE_FEE="abc")
    with pytest.raises(SettingsError, match="METER_INITIAL_BALANCE must be between 0 and 1,000,000, got '-5'"):
        make_settings(data_dir, METER_INITIAL_BALANCE="-5")
    assert make_settings(data_dir, METER_BASE_FEE="2.50").METER_BASE_FEE == 2_500_000_000


@pytest.mark.parametrize("path, field", [
    ("/api/v1/events?to=9999-12-31", "to"),
    ("/api/v1/usage?from=0001-01-01", "from"),
    ("/api/v1/events?from=2026-13-01", "from"),
    ("/api/v1/reconciliation?from=0001-01-01", "from"),
    ("/api/v1/reports/summary.pdf?month=9999-12", "month"),
    ("/api/v1/reports/summary.pdf?month=2026-1", "month"),
    ("/api/v1/reports/statements.zip?from=2026-11-01&to=2026-11-31", "to"),
])
def test_bad_dates_are_a_400_naming_the_field(client, admin_headers, path, field):
    response = client.get(path, headers=admin_headers)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(field + " must")


def test_periods_longer_than_ten_years_are_refused_on_pages_and_downloads(client, meter, admin_headers):
    long = "from=2010-01-01&to=2026-01-01"
    assert client.get(f"/api/v1/reports/summary.pdf?{long}", headers=admin_headers).get_json()["error"] == "a period can be at most ten years long"
    login(client, meter)
    page = client.get(f"/?period=custom&{long}")
    assert page.status_code == 400 and "a period can be at most ten years long" in page.get_data(as_text=True)
    backwards = client.get("/reports?from=2026-11-30&to=2026-11-01")
    assert backwards.status_code == 400 and "from must not be after to" in backwards.get_data(as_text=True)
