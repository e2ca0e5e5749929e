"""Dashboard security and pages over the Flask client: login, sessions, CSRF, escaping, CSV."""

import csv
import html
import io
import re

import pytest

from conftest import ADA, API_KEY, BOB, outlet_body

H = {"Authorization": f"Bearer {API_KEY}"}
PAGES = ["/", "/users", f"/users/{ADA['id']}", "/models", "/events", "/events.csv", "/budgets", "/status"]


def csrf_of(client, path="/login"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def log_in(client, meter, password=None, username="admin", next_=None):
    data = {"username": username, "password": password or meter.generated_password, "csrf_token": csrf_of(client)}
    if next_:
        data["next"] = next_
    return client.post("/login", data=data)


@pytest.fixture
def seeded(client):
    client.post("/api/v1/outlet", json=outlet_body(key="a", user=ADA, cost=1.5), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="b", user=BOB, cost=0.25, model="anthropic/claude-3.5-haiku"), headers=H)


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", PAGES)
def test_plugin_key_opens_no_page(client, path):
    response = client.get(path, headers=H)
    assert response.status_code == 302  # the plugin key is not a login


def test_admin_json_api_refuses_the_plugin_key_and_anonymous(client):
    assert client.get("/api/v1/usage", headers=H).status_code == 401
    assert client.get("/api/v1/usage").status_code == 401


@pytest.mark.parametrize("path", PAGES)
def test_logged_in_admin_sees_every_page(client, meter, seeded, path):
    assert log_in(client, meter).status_code == 302
    assert client.get(path).status_code == 200


def test_session_opens_the_json_api_too(client, meter, seeded):
    log_in(client, meter)
    assert client.get("/api/v1/events").get_json()["events"][0]["key"] == "b"


def test_wrong_user_and_wrong_password_get_the_same_answer(client, meter):
    wrong_password = log_in(client, meter, password="nope-nope-nope")
    wrong_user = log_in(client, meter, username="root")
    assert wrong_password.status_code == wrong_user.status_code == 401
    assert "Wrong username or password." in wrong_password.get_data(as_text=True)
    assert "Wrong username or password." in wrong_user.get_data(as_text=True)


def test_failed_logins_are_rate_limited(client, meter):
    for _ in range(5):
        assert log_in(client, meter, password="wrong-wrong").status_code == 401
    limited = log_in(client, meter)  # even the right password waits now
    assert limited.status_code == 429 and "Too many failed attempts" in limited.get_data(as_text=True)


def test_rate_limit_is_per_username_across_addresses(client, meter):
    for i in range(5):
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i}"
        log_in(client, meter, password="wrong-wrong")
    client.environ_base["REMOTE_ADDR"] = "10.0.0.99"
    assert log_in(client, meter).status_code == 429


def test_guessing_a_username_does_not_lock_out_an_address_that_logged_in_before(client, meter):
    client.environ_base["REMOTE_ADDR"] = "10.0.0.50"
    assert log_in(client, meter).status_code == 302  # the admin's own browser, earlier
    for i in range(8):  # then someone guesses from many addresses
        client.environ_base["REMOTE_ADDR"] = f"10.0.1.{i}"
        assert log_in(client, meter, password="wrong-wrong").status_code == (401 if i < 5 else 429)
    client.environ_base["REMOTE_ADDR"] = "10.0.0.51"
    assert log_in(client, meter).status_code == 429  # a new address waits
    client.environ_base["REMOTE_ADDR"] = "10.0.0.50"
    assert log_in(client, meter).status_code == 302  # the known one gets in with the right password
    for _ in range(5):  # and its own wrong guesses still count against it
        log_in(client, meter, password="wrong-wrong")
    assert log_in(client, meter).status_code == 429


def test_forwarded_for_is_ignored_without_a_trusted_proxy(client, meter):
    for i in range(5):
        client.post("/login", data={"username": f"u{i}", "password": "x", "csrf_token": csrf_of(client)}, headers={"X-Forwarded-For": f"192.0.2.{i}"})
    # all five came from the same real address: it is limited, whatever the header claimed
    response = client.post("/login", data={"username": "admin", "password": meter.generated_password, "csrf_token": csrf_of(client)}, headers={"X-Forwarded-For": "192.0.2.200"})
    assert response.status_code == 429


def test_logout_ends_the_session_on_the_server(client, meter, app):
    log_in(client, meter)
    cookie = client.get_cookie("owui_meter_session").value
    assert client.post("/logout", data={"csrf_token": csrf_of(client, "/")}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("owui_meter_session", cookie)  # the cookie as it was before logging out
    assert thief.get("/").status_code == 302
    assert meter.db.query_one("SELECT count(*) AS n FROM sessions")["n"] == 0


def test_session_cookie_flags(client, meter):
    response = log_in(client, meter)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = client.post("/login", data={"username": "admin", "password": meter.generated_password, "csrf_token": csrf_of(client)}, base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]


def test_csrf_token_is_required(client, meter, seeded):
    log_in(client, meter)
    missing = client.post("/budgets", data={"scope": "all", "limit_usd": "5", "period": "month", "action": "block", "group_mode": "per_member"})
    assert missing.status_code == 403
    forged = client.post("/budgets", data={"scope": "all", "limit_usd": "5", "csrf_token": "guess"})
    assert forged.status_code == 403
    cross_site = client.post("/budgets", data={"scope": "all", "limit_usd": "5", "csrf_token": csrf_of(client, "/budgets")}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    json_without_token = client.post("/api/v1/budgets", json={"scope": "all", "limit_usd": 5})
    assert json_without_token.status_code == 403
    assert meter.db.query("SELECT * FROM budgets") == []
    ok = client.post("/budgets", data={"scope": "all", "limit_usd": "5", "period": "month", "action": "block", "group_mode": "per_member", "warn_percent": "80", "csrf_token": csrf_of(client, "/budgets")})
    assert ok.status_code == 302 and len(meter.db.query("SELECT * FROM budgets")) == 1


def test_login_form_needs_csrf_too(client, meter):
    response = client.post("/login", data={"username": "admin", "password": meter.generated_password})
    assert response.status_code == 403


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"])
def test_next_never_leaves_the_site(client, meter, target):
    response = log_in(client, meter, next_=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_next_within_the_site_is_followed(client, meter):
    assert log_in(client, meter, next_="/events?source=api").headers["Location"] == "/events?source=api"


def test_names_with_markup_are_shown_escaped(client, meter):
    evil = {"id": "evil", "name": "<script>alert('x')</script>", "email": "e@example.com"}
    client.post("/api/v1/outlet", json=outlet_body(key="e", user=evil, model="<img src=x onerror=alert(1)>"), headers=H)
    log_in(client, meter)
    for path in ("/", "/users", "/users/evil", "/events", "/models"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html or "&lt;img" in html, path


def test_csv_neutralises_formulas_and_matches_the_ledger(client, meter):
    formula_user = {"id": "f", "name": "=HYPERLINK(\"http://evil\")", "email": "+1@example.com"}
    client.post("/api/v1/outlet", json=outlet_body(key="f1", user=formula_user, model="@model", cost=0.125), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="f2", user=ADA, model="-model", cost=2), headers=H)
    log_in(client, meter)
    response = client.get("/events.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    by_user = {r["user_id"]: r for r in rows}
    assert by_user["f"]["user_name"] == "'=HYPERLINK(\"http://evil\")"
    assert by_user["f"]["user_email"] == "'+1@example.com" and by_user["f"]["model"] == "'@model"
    assert by_user[ADA["id"]]["model"] == "'-model"
    assert sum(float(r["cost_usd"]) for r in rows) == 2.125
    filtered = list(csv.DictReader(io.StringIO(client.get("/events.csv?user=f").get_data(as_text=True))))
    assert [r["user_id"] for r in filtered] == ["f"]


def test_csv_quotes_a_formula_that_follows_a_semicolon(client, meter):
    """German and French spreadsheets split cells on ';' too: the part after it must not run."""
    sneaky = {"id": "s", "name": "Eve;=HYPERLINK(\"http://evil\")", "email": "eve@example.com; +cmd"}
    client.post("/api/v1/outlet", json=outlet_body(key="s1", user=sneaky, cost=0.5), headers=H)
    log_in(client, meter)
    row = next(csv.DictReader(io.StringIO(client.get("/events.csv").get_data(as_text=True))))
    assert row["user_name"] == "Eve;'=HYPERLINK(\"http://evil\")"
    assert row["user_email"] == "eve@example.com; '+cmd"
    assert row["cost_usd"] == "0.5"


def test_events_pages_follow_the_cursor(client, meter):
    for i in range(7):
        client.post("/api/v1/outlet", json=outlet_body(key=f"p{i}", cost=0.01 * (i + 1)), headers=H)
    log_in(client, meter)
    seen, path = 0, "/events?limit=3"
    for _ in range(5):
        html = client.get(path).get_data(as_text=True)
        seen += html.count("<tr class=\"event\">")
        match = re.search(r'id="next" href="([^"]+)"', html)
        if not match:
            break
        path = match.group(1).replace("&amp;", "&")
    assert seen == 7


def test_bad_dashboard_input_is_a_readable_400(client, meter):
    log_in(client, meter)
    for path in ("/?period=custom&from=yesterday&to=today", "/events?from=nope", "/events?cursor=zzz", "/events?limit=0"):
        response = client.get(path)
        assert response.status_code == 400 and response.mimetype == "text/html", path
        assert "Traceback" not in response.get_data(as_text=True)


def test_security_headers_on_pages(client, meter):
    log_in(client, meter)
    headers = client.get("/").headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "same-origin"


def test_overview_totals_match_the_ledger(client, meter, seeded):
    log_in(client, meter)
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'id="total-cost">\$1\.75<', html)
    assert "Ada Admin" in html and "anthropic/claude-3.5-haiku" in html


def test_topup_and_budget_forms(client, meter, seeded):
    log_in(client, meter)
    token = csrf_of(client, f"/users/{ADA['id']}")
    assert client.post(f"/users/{ADA['id']}/topup", data={"amount_usd": "12.50", "note": "Nov", "csrf_token": token}).status_code == 302
    assert meter.budgets.balance(meter.db.query, ADA["id"]) == 12_500_000_000
    bad = client.post(f"/users/{ADA['id']}/topup", data={"amount_usd": "lots", "csrf_token": token})
    assert bad.status_code == 400


def test_erase_from_the_dashboard_needs_confirmation(client, meter, seeded):
    log_in(client, meter)
    token = csrf_of(client, f"/users/{BOB['id']}")
    unconfirmed = client.post(f"/users/{BOB['id']}/erase", data={"mode": "anonymise", "csrf_token": token})
    assert unconfirmed.status_code == 400 and meter.db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (BOB["id"],))
    done = client.post(f"/users/{BOB['id']}/erase", data={"mode": "anonymise", "confirm": "yes", "csrf_token": token})
    assert done.status_code == 302
    assert meter.db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (BOB["id"],)) is None
    assert meter.db.query_one("SELECT sum(cost_nano) AS c FROM usage_daily")["c"] == 1_750_000_000
    assert meter.db.query_one("SELECT actor, action FROM audit_log WHERE action LIKE 'user.%'") == {"actor": "admin", "action": "user.anonymise"}


def test_pages_link_each_statement_and_person_as_url_for_would(client, meter, app, now):
    """The page builds one statement link and fills in each user (not url_for per row): the same links."""
    odd = [{"id": "zoë müller+1@example.com", "email": "z@example.com"}, {"id": "a b&c;d=e", "email": "a@example.com"}, ADA]
    now.advance(-20 * 86400)  # into the month before
    for i, user in enumerate(odd):
        assert client.post("/api/v1/outlet", json=outlet_body(key=f"r{i}", user=user, cost=0.5 + i), headers=H).status_code == 202
    now.advance(20 * 86400)
    log_in(client, meter)
    page = client.get("/reports").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)">Statement</a>', page)
    with app.test_request_context():
        from flask import url_for
        period = {"from": "2026-12-01", "to": "2026-12-31"}
        expected = [url_for("reports.user_pdf", user_id=u["id"], **period) for u in sorted(odd, key=lambda u: -(0.5 + odd.index(u)))]
    assert [html.unescape(link) for link in links] == expected
    for link in links:  # and each opens that user's statement
        assert client.get(html.unescape(link)).status_code == 200
    # the users list and the events page link each person the same way
    users = client.get("/users?period=last_month").get_data(as_text=True)
    events = client.get("/events").get_data(as_text=True)
    with app.test_request_context():
        for user in odd:
            assert f'<a href="{html.escape(url_for("dashboard.user", user_id=user["id"], period="last_month"))}">' in users
            assert f'<a href="{html.escape(url_for("dashboard.user", user_id=user["id"]))}">' in events
            assert client.get(url_for("dashboard.user", user_id=user["id"])).status_code == 200


def test_a_users_chart_stacks_their_top_models_and_the_rest_as_the_ledger_has_them(client, meter, now):
    """Each day's hover detail on a user's page: the day's total and each of the five top models,
    the rest as "Other models", all from the ledger (a day with only other models included)."""
    from owui_meter.money import format_usd

    start = now.t
    for day in range(3):
        for m in range(7):
            if day == 2 and m < 5:
                continue  # the third day: only models outside the top five
            now.t = start + day * 86400 + m * 60
            cost = (0.01 * (10 - m) if m < 5 else 0.001 * m) + day * 0.003  # vendor/m0..m4 the top five
            body = outlet_body(key=f"c{day}-{m}", user=BOB, model=f"vendor/m{m}", cost=cost, source="api" if (day + m) % 3 == 0 else None)
            assert client.post("/api/v1/outlet", json=body, headers=H).status_code == 202
    log_in(client, meter)
    first = meter.ledger.day_of(int(start * 1000))
    last = meter.ledger.day_of(int((start + 2 * 86400) * 1000))
    page = client.get(f"/users/{BOB['id']}?period=custom&from={first}&to={last}").get_data(as_text=True)
    models = meter.db.query("SELECT model, sum(cost_nano) AS cost FROM usage_daily WHERE user_id = ? GROUP BY model ORDER BY cost DESC, model", (BOB["id"],))
    top = [r["model"] for r in models[:5]]
    assert top == [f"vendor/m{m}" for m in range(5)]
    wide = page[page.index('<svg class="wide"'):page.index("</svg>")]
    shown = re.findall(r'<g class="day" data-day="([^"]+)" data-total="([^"]+)" data-detail="([^"]*)">', wide)
    days = meter.db.query("SELECT day, sum(cost_nano) AS cost FROM usage_daily WHERE user_id = ? GROUP BY day ORDER BY day", (BOB["id"],))
    assert len(shown) == len(days) == 3
    for (label, total, detail), day in zip(shown, days):
        per_model = {r["model"]: r["cost"] for r in meter.db.query("SELECT model, cost_nano AS cost FROM usage_daily WHERE user_id = ? AND day = ?", (BOB["id"], day["day"]))}
        others = sum(c for m, c in per_model.items() if m not in top)
        expected = [f"{m}: {format_usd(per_model[m])}" for m in top if per_model.get(m)] + ([f"Other models: {format_usd(others)}"] if others else [])
        assert html.unescape(total) == format_usd(day["cost"]) and html.unescape(detail).split("|") == expected, label
    # the models and sources tables beside it (one pass over the same rows), against the ledger too
    from owui_meter.web.templating import human_count
    shown = re.findall(r'<tr><td>(vendor/m\d)</td><td class="num">([^<]+)</td><td class="num hide-small">([^<]+)</td>'
                       r'<td class="num hide-small">([^<]+)</td><td class="num">([^<]+)</td></tr>', page)
    per_model = meter.db.query("""SELECT model, count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(cost_nano) AS cost
                                  FROM events WHERE user_id = ? GROUP BY model ORDER BY cost DESC, model""", (BOB["id"],))
    assert shown == [(r["model"], human_count(r["n"]), human_count(r["p"]), human_count(r["c"]), format_usd(r["cost"], 2)) for r in per_model]
    sources = re.findall(r'>(Web UI|API)</a></td><td class="num">([^<]+)</td><td class="num">([^<]+)</td>', page[page.index('id="sources"'):])
    per_source = {r["source"]: r for r in meter.db.query("SELECT source, count(*) AS n, sum(cost_nano) AS cost FROM events WHERE user_id = ? GROUP BY source", (BOB["id"],))}
    assert sources == [(name, human_count(per_source[key]["n"]), format_usd(per_source[key]["cost"], 2)) for key, name in (("ui", "Web UI"), ("api", "API"))]
