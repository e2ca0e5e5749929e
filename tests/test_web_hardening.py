"""Browser-borne requests: CSRF holds whatever Authorization header a browser adds, pages are
never cached, and a URL cannot forge a log line."""

import logging

import pytest

from conftest import ADA, API_KEY, outlet_body
from test_dashboard import csrf_of, log_in

H = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def logged_in(client, meter):
    assert client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=1), headers=H).status_code == 202
    assert log_in(client, meter).status_code == 302
    return client


@pytest.mark.parametrize("authorization", ["Basic YWRtaW46eA==", "Bearer not-a-token", "Digest x", "Bearer"])
def test_a_session_with_any_other_authorization_header_still_needs_the_csrf_token(logged_in, meter, authorization):
    headers = {"Authorization": authorization}
    topup = logged_in.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 1000}, headers=headers)
    budget = logged_in.post("/budgets", data={"scope": "all", "limit_usd": "5", "period": "month"}, headers=headers)
    erase = logged_in.post(f"/users/{ADA['id']}/erase", data={"mode": "delete", "confirm": "yes"}, headers=headers)
    assert (topup.status_code, budget.status_code, erase.status_code) == (403, 403, 403)
    assert meter.db.query_one("SELECT count(*) AS n FROM balance_entries")["n"] == 0
    assert meter.db.query_one("SELECT count(*) AS n FROM budgets")["n"] == 0
    assert meter.db.query_one("SELECT count(*) AS n FROM events")["n"] == 1


def test_a_valid_admin_token_needs_no_csrf_token(client, meter, admin_headers):
    client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=1), headers=H)
    response = client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 5}, headers=admin_headers)
    assert response.status_code == 201 and response.get_json()["balance_usd"] == 5.0


def test_plugin_answers_set_no_cookie_and_the_session_cookie_still_comes_and_goes(client, meter):
    answer = client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=1), headers=H)
    assert answer.status_code == 202 and "Set-Cookie" not in answer.headers
    assert log_in(client, meter).headers["Set-Cookie"].startswith("owui_meter_session=")
    logout = client.post("/logout", data={"csrf_token": csrf_of(client, "/")})  # the emptied session's cookie is removed
    assert logout.headers["Set-Cookie"].startswith("owui_meter_session=;") and "Expires=Thu, 01 Jan 1970" in logout.headers["Set-Cookie"]


def test_pages_are_never_cached_but_static_files_may_be(logged_in):
    for path in ("/", "/status", "/login", f"/users/{ADA['id']}"):
        assert logged_in.get(path).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in (logged_in.get("/static/meter.css").headers.get("Cache-Control") or "")


def test_a_newline_in_the_url_cannot_forge_an_access_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="owui_meter.access"):
        client.get("/nothing%0a127.0.0.1 GET /admin 200%0d")
    lines = [r.getMessage() for r in caplog.records if r.name == "owui_meter.access"]
    assert len(lines) == 1 and "\n" not in lines[0] and "\r" not in lines[0]
    assert lines[0] == "GET /nothing\\x0a127.0.0.1 GET /admin 200\\x0d 404 " + lines[0].rsplit(" ", 1)[1]
