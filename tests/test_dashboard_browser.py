"""The dashboard in a real headless Chromium (Debian's, driven by Playwright)."""

import datetime as dt
import os

import pytest
import requests

from conftest import ADA, API_KEY, BOB, outlet_body

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per test module (each test opens its own context)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("OWUI_METER_CI"):
            pytest.fail("Debian's chromium is required here (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed; .ci/run installs it and runs this test")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def seed(url):
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    for i, (user, cost) in enumerate([(ADA, 1.25), (BOB, 0.5), (ADA, 2.0)]):
        body = outlet_body(key=f"b{i}", user=user, cost=cost, timestamp=now - i * 60)
        assert requests.post(url + "/api/v1/outlet", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5).status_code == 202


def test_admin_walks_through_the_dashboard(live_meter, browser, tmp_path):
    seed(live_meter.url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, foreign = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: foreign.append(req.url) if not req.url.startswith(live_meter.url) else None)

    page.goto(live_meter.url + "/")
    assert page.url.startswith(live_meter.url + "/login")
    page.fill("input[name=password]", live_meter.meter.generated_password)
    page.click("button[type=submit]")
    page.wait_for_url(live_meter.url + "/")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    assert page.inner_text("#total-cost") == "$3.75"
    assert page.inner_text("#attention .all-well").startswith("All is well.")  # no budgets, no one blocked
    bars = page.locator("#cost-chart svg.wide rect.bar")
    values = [int(bars.nth(i).get_attribute("data-value")) for i in range(bars.count())]
    assert sum(values) == 3_750_000_000  # the chart draws what was seeded

    page.select_option("#period", "last_month")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert "period=last_month" in page.url and page.inner_text("#total-cost") == "$0.00"

    page.goto(live_meter.url + "/users")
    page.click("text=Ada Admin")
    page.wait_for_load_state()
    assert "/users/" + ADA["id"] in page.url and "$3.25" in page.content()
    page.screenshot(path=str(tmp_path / "user.png"), full_page=True)

    page.goto(live_meter.url + "/events")
    page.screenshot(path=str(tmp_path / "events.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#csv")
    csv_path = tmp_path / "events.csv"
    download.value.save_as(csv_path)
    assert csv_path.read_text().count("\n") == 4  # header + 3 answers

    page.goto(live_meter.url + "/status")
    page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
    assert API_KEY in page.inner_text("#api-key")

    page.click("text=Log out")
    page.wait_for_url(live_meter.url + "/login")
    page.goto(live_meter.url + "/")
    assert page.url.startswith(live_meter.url + "/login")

    assert errors == []
    assert foreign == []


def test_pages_fit_a_phone(live_meter, browser, tmp_path):
    seed(live_meter.url)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(live_meter.url + "/login")
    page.fill("input[name=password]", live_meter.meter.generated_password)
    page.click("button[type=submit]")
    page.wait_for_url(live_meter.url + "/")
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert width <= 400  # nothing forces sideways scrolling of the whole page


# --- a team's two months, for the pages a person looks at -------------------------------------------

import re  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import JWT_SECRET, LiveMeter, make_settings  # noqa: E402
from owui_meter import clock, create_app  # noqa: E402
from owui_meter.auth import create_token  # noqa: E402
from owui_meter.money import format_usd  # noqa: E402

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)  # the team's "today"
JOSE = {"id": "u-jose", "email": "jose@example.com", "name": "José Martínez", "role": "user"}
ZOE = {"id": "u-zoe", "email": "zoe@example.org", "name": "Zoë Müller", "role": "user"}
DMITRY = {"id": "u-dmitry", "email": "d.smirnov@example.org", "name": "Дмитрий Смирнов", "role": "user"}
TEAM = [ADA, BOB, JOSE, ZOE, DMITRY]
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash", "meta-llama/llama-3.3-70b-instruct",
          "mistralai/mistral-small", "deepseek/deepseek-chat", "qwen/qwen-2.5-72b-instruct"]
NAMES = {"openai/gpt-4o-mini": "OpenAI: GPT-4o-mini", "anthropic/claude-3.5-haiku": "Anthropic: Claude 3.5 Haiku",
         "google/gemini-2.0-flash": "Google: Gemini 2.0 Flash"}
SHOTS = os.environ.get("OWUI_METER_SCREENSHOTS")  # where to write the README's three (docs/screenshots)
PAGES = {"overview": "/", "users": "/users", "user": f"/users/{ZOE['id']}", "models": "/models", "events": "/events",
         "budgets": "/budgets", "reports": "/reports", "status": "/status", "not-found": "/users/nobody-here"}


def post(client, path, body, headers):
    response = client.post(path, json=body, headers=headers)
    assert response.status_code in (201, 202), (path, response.get_json())
    return response.get_json()


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """Two months of answers from five people on seven models, budgets (José blocked, Zoë at 81%),
    a top-up, answers awaiting OpenRouter, estimated and unpriced ones; the clock at NOW."""
    data_dir = tmp_path_factory.mktemp("team")
    with pytest.MonkeyPatch.context() as mp:
        moment = [NOW.timestamp()]
        mp.setattr(clock, "time_fn", lambda: moment[0])
        app = create_app(make_settings(data_dir, METER_BALANCES_ENABLED="true", METER_INITIAL_BALANCE="50",
                                         METER_PUBLIC_URL="https://meter.example.com"))
        meter = app.config["METER"]
        client = app.test_client()
        plugin = {"Authorization": f"Bearer {API_KEY}"}
        admin = {"Authorization": f"Bearer {create_token(JWT_SECRET, days=1, name='tester')}"}
        with meter.db.write() as conn:  # what the price sync stores from OpenRouter's /models
            for model, name in NAMES.items():
                conn.execute("INSERT INTO prices (model, source, prompt_pico, completion_pico, name, updated) VALUES (?, 'openrouter', 150, 600, ?, 0)",
                             (model, name))
        n = 0
        for days_back in range(50, 0, -1):  # 10 Oct .. 19 Nov, a few answers a day
            day = NOW - dt.timedelta(days=days_back)
            for i, user in enumerate(TEAM):
                if (days_back + i) % 3 == 0:
                    continue
                n += 1
                moment[0] = (day + dt.timedelta(minutes=10 * i)).timestamp()
                cost = round(0.05 + ((days_back * 7 + i * 13) % 40) / 100, 4)
                model = MODELS[(days_back + 2 * i) % len(MODELS)]
                post(client, "/api/v1/outlet", outlet_body(key=f"t{n}", user=user, cost=cost, model=model, prompt=800 + n, completion=300 + n,
                                                           timestamp=moment[0]), plugin)
        moment[0] = (NOW - dt.timedelta(hours=2)).timestamp()
        # this month so far, José spent 12.50 of a 12.00 budget; Zoë 8.10 of 10.00
        for user, limit, target in ((JOSE, 12, 12_500_000_000), (ZOE, 10, 8_100_000_000)):
            spent = meter.db.query_one("SELECT coalesce(sum(cost_nano), 0) AS c FROM events WHERE user_id = ? AND ts >= ?",
                                       (user["id"], int(NOW.replace(day=1, hour=0).timestamp() * 1000)))["c"]
            for k in range(4):  # spread over the last four days
                moment[0] = (NOW - dt.timedelta(days=4 - k, hours=1)).timestamp()
                share = (target - spent) // 4 + ((target - spent) % 4 if k == 3 else 0)
                post(client, "/api/v1/outlet", outlet_body(key=f"top-{user['id']}-{k}", user=user, cost=share / 1e9, model=MODELS[k]), plugin)
            moment[0] = (NOW - dt.timedelta(hours=2)).timestamp()
            post(client, "/api/v1/budgets", {"scope": "user", "scope_id": user["id"], "period": "month", "limit_usd": limit}, admin)
        post(client, "/api/v1/budgets", {"scope": "all", "period": "month", "limit_usd": 40, "action": "warn", "group_mode": "per_member"}, admin)
        post(client, f"/api/v1/users/{ZOE['id']}/topups", {"amount_usd": 20, "note": "November allowance"}, admin)
        # awaiting OpenRouter (no inline cost, ids to look up), estimated (a price), unpriced (none)
        for i in range(3):
            post(client, "/api/v1/outlet", outlet_body(key=f"wait{i}", user=DMITRY, cost=None, model=MODELS[1], generation_ids=[f"gen-wait{i}"]), plugin)
        client.put("/api/v1/prices/local/llama", json={"prompt_usd_per_mtok": 1, "completion_usd_per_mtok": 2}, headers=admin)
        post(client, "/api/v1/outlet", outlet_body(key="est", user=BOB, cost=None, model="local/llama"), plugin)
        post(client, "/api/v1/outlet", outlet_body(key="unpriced", user=BOB, cost=None, model="local/unknown"), plugin)
        moment[0] = NOW.timestamp()
        live = LiveMeter(app).start()
        yield live
        live.stop()
        meter.stop()


def logged_in(browser, team, width=1366, height=900, **options):
    """A fresh browser context, logged in; the page and the list of script errors it shows."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "404" not in msg.text and "400" not in msg.text else None)
    page.goto(team.url + "/login")
    page.fill("input[name=password]", team.meter.generated_password)
    page.click("button[type=submit]")
    page.wait_for_url(team.url + "/")
    return page, errors


def ledger(team, sql, params=()):
    return team.meter.db.query_one(sql, params)


def month_start_ms():
    return int(NOW.replace(day=1, hour=0).timestamp() * 1000)


def test_attention_panel_lists_the_blocked_and_the_nearly_out(team, browser):
    page, errors = logged_in(browser, team)
    blocked = page.locator("#attention li.blocked")
    assert blocked.count() == 1
    text = blocked.inner_text()
    spent = ledger(team, "SELECT sum(cost_nano) AS c FROM events WHERE user_id = ? AND ts >= ?", (JOSE["id"], month_start_ms()))["c"]
    assert "José Martínez" in text and "Blocked until 1 December" in text
    assert f"{format_usd(spent, 2)} of $12.00 · {round(100 * spent / 12e9)}%" in text and "renews 1 December" in text
    warning = page.locator("#attention li.warning").first.inner_text()
    assert "Zoë Müller" in warning and "81% of monthly budget used" in warning
    assert page.locator("#attention li").count() == 2  # the others are well inside their allowance
    page.click("#attention li.blocked a")
    page.wait_for_url(f"{team.url}/users/{JOSE['id']}")
    assert page.inner_text("#budget-badge") == "Blocked until 1 December"
    assert page.locator("#user-budgets progress.blocked").count() == 1  # the bar takes the state's colour
    colour = page.eval_on_selector("#budget-badge", "e => getComputedStyle(e).color")
    assert colour == "rgb(180, 35, 24)"  # --bad
    assert errors == []


def test_budgets_page_shows_where_each_budget_stands(team, browser):
    page, errors = logged_in(browser, team)
    page.goto(team.url + "/budgets")
    rows = {r.get_attribute("data-budget"): r.inner_text() for r in page.locator("#budgets tbody tr").all()}
    budgets = {b["scope_id"]: b for b in team.meter.db.query("SELECT * FROM budgets")}
    jose, zoe, everyone = rows[str(budgets[JOSE["id"]]["id"])], rows[str(budgets[ZOE["id"]]["id"])], rows[str(budgets[None]["id"])]
    assert "José Martínez" in jose and "blocked" in jose and "$12.50\nof $12.00 · 104%" in jose and "1 December" in jose
    assert "Zoë Müller" in zoe and "warning" in zoe and "$8.10\nof $10.00 · 81%" in zoe
    # everyone else (Ada, Bob, Dmitry) each has 40.00 a month, warn only: count who is near or over
    counts = {"over": 0, "near": 0}
    for user in (ADA, BOB, DMITRY):
        spent = ledger(team, "SELECT coalesce(sum(cost_nano), 0) AS c FROM events WHERE user_id = ? AND ts >= ?", (user["id"], month_start_ms()))["c"]
        if spent >= 40e9:
            counts["over"] += 1
        elif spent >= 0.8 * 40e9:
            counts["near"] += 1
    assert f"{counts['over']} over, {counts['near']} near\nof 3 members" in everyone
    # a budget typed wrong: the error beside the form, the input kept; then fixed and created
    page.select_option("select[name=scope]", "user")
    page.select_option("select[name=scope_id_user]", DMITRY["id"])
    page.fill("input[name=limit_usd]", "ten dollars")
    page.click("#new-budget button[type=submit]")
    assert page.inner_text("#new-budget .form-error") == "Limit (USD): Use a number like 10 or 10.50"
    assert page.input_value("input[name=limit_usd]") == "ten dollars"
    assert page.get_attribute("input[name=limit_usd]", "aria-invalid") == "true"
    assert page.input_value("select[name=scope_id_user]") == DMITRY["id"]  # the other choices are kept too
    page.fill("input[name=limit_usd]", "10")
    page.click("#new-budget button[type=submit]")
    page.wait_for_url(team.url + "/budgets")
    made = team.meter.db.query_one("SELECT id FROM budgets WHERE scope_id = ?", (DMITRY["id"],))
    row = page.locator(f"#budgets tr[data-budget='{made['id']}']")
    assert "Дмитрий Смирнов" in row.inner_text()
    # deleting asks first: the red button appears only after "Delete…"
    assert not row.locator("button.danger").is_visible()
    row.locator("summary").click()
    button = row.locator("button.danger")
    assert button.is_visible() and button.inner_text() == "Delete this budget"
    assert page.eval_on_selector(f"#budgets tr[data-budget='{made['id']}'] button.danger", "e => getComputedStyle(e).backgroundColor") == "rgb(180, 35, 24)"
    button.click()
    page.wait_for_url(team.url + "/budgets")
    assert team.meter.db.query_one("SELECT id FROM budgets WHERE scope_id = ?", (DMITRY["id"],)) is None
    assert errors == []


def test_user_page_badge_topups_and_inline_errors(team, browser):
    page, errors = logged_in(browser, team)
    page.goto(f"{team.url}/users/{ZOE['id']}")
    assert page.inner_text("#budget-badge") == "81% of monthly budget used"
    assert page.locator("#user-budgets progress.warning").count() == 1
    topups = page.locator("#topups tbody tr").all_inner_texts()
    entries = team.meter.db.query("SELECT actor, amount_nano, note FROM balance_entries WHERE user_id = ? ORDER BY ts DESC, id DESC", (ZOE["id"],))
    assert len(topups) == len(entries) == 2  # the initial balance, then the top-up
    assert "tester" in topups[0] and "$20.00" in topups[0] and "November allowance" in topups[0]
    assert entries[1]["amount_nano"] == 50_000_000_000 and "$50.00" in topups[1]
    balance = team.meter.budgets.balance(team.meter.db.query, ZOE["id"])
    assert page.inner_text("#balance") == format_usd(balance, 2)
    page.fill("#topup input[name=amount_usd]", "12,50")
    page.fill("#topup input[name=note]", "for December")
    page.click("#topup button[type=submit]")
    assert page.inner_text("#topup .form-error") == "Amount (USD): Use a number like 10 or 10.50"
    assert page.input_value("#topup input[name=amount_usd]") == "12,50" and page.input_value("#topup input[name=note]") == "for December"
    assert page.locator("nav").count() == 1  # still inside the dashboard
    # erasing looks dangerous and insists on the box
    assert page.eval_on_selector("#erase button", "e => getComputedStyle(e).backgroundColor") == "rgb(180, 35, 24)"
    assert page.get_attribute("#erase input[name=confirm]", "required") is not None
    assert errors == []


def test_sorting_users_models_and_events(team, browser):
    page, errors = logged_in(browser, team)
    page.goto(team.url + "/users?period=last_month")
    by_cost = [r["name"] for r in team.meter.db.query(
        """SELECT coalesce(u.name, u.id) AS name FROM users u LEFT JOIN usage_daily d ON d.user_id = u.id AND d.day BETWEEN '2026-10-01' AND '2026-10-31'
           GROUP BY u.id ORDER BY coalesce(sum(d.cost_nano), 0) DESC, u.id""")]
    names = lambda: page.locator("#users tbody tr td:first-child").all_inner_texts()  # noqa: E731
    assert names() == by_cost
    page.click("#users th >> text=Cost")
    page.wait_for_url("**dir=asc**")
    assert names() == [r["name"] for r in team.meter.db.query(
        """SELECT coalesce(u.name, u.id) AS name FROM users u LEFT JOIN usage_daily d ON d.user_id = u.id AND d.day BETWEEN '2026-10-01' AND '2026-10-31'
           GROUP BY u.id ORDER BY coalesce(sum(d.cost_nano), 0) ASC, u.id""")]
    assert "dir=asc" in page.url and "period=last_month" in page.url
    page.click("#users th >> text=User")
    page.wait_for_url("**sort=name**")
    assert names() == sorted(by_cost, key=str.lower)
    page.goto(team.url + "/models?period=last_month")
    page.click("#models th >> text=Answers")
    page.wait_for_url("**sort=answers**")
    answers = [int(t.replace(",", "")) for t in page.locator("#models tbody td:nth-child(2)").all_inner_texts()]
    assert answers == sorted(answers, reverse=True) and len(answers) == len(MODELS)
    page.goto(team.url + "/events?limit=40")
    page.click("#events th >> text=Cost")
    costs = [int(c.get_attribute("data-sort")) for c in page.locator("#events tbody td:nth-child(3)").all()]
    assert costs == sorted(costs, reverse=True) and len(costs) == 40
    assert errors == []


def test_search_ignores_accents_and_case_in_every_script(team, browser):
    page, errors = logged_in(browser, team)
    for typed, found in (("muller", "Zoë Müller"), ("MÜLLER", "Zoë Müller"), ("дмит", "Дмитрий Смирнов"), ("jose mart", "José Martínez")):
        page.goto(team.url + "/users")
        page.fill("#q", typed)
        page.click("form[role=search] button")
        assert page.locator("#users tbody tr td:first-child").all_inner_texts() == [found], typed
    page.fill("#q", "nobody at all")
    page.click("form[role=search] button")
    assert page.inner_text("#users tbody") == "No user matches “nobody at all”."
    # the events page finds people by name too, and totals what it found
    page.goto(team.url + "/events")
    page.fill("#who", "muller")
    page.click("#event-filters button[type=submit]")
    shown = set(page.locator("#events tbody td:nth-child(2)").all_inner_texts())
    assert shown == {"Zoë Müller"}
    zoe = ledger(team, "SELECT count(*) AS n, sum(cost_nano) AS c, sum(completion_tokens) AS o FROM events WHERE user_id = ?", (ZOE["id"],))
    totals = page.inner_text("#totals")
    assert f"All {zoe['n']} matching answers" in totals and format_usd(zoe["c"], 2) in totals
    # no filter: the totals of the whole history
    page.goto(team.url + "/events")
    every = ledger(team, "SELECT count(*) AS n, sum(cost_nano) AS c FROM events")
    assert page.inner_text("#totals").startswith(f"All {every['n']} matching answers\t{format_usd(every['c'], 2)}")
    assert errors == []


def test_cost_states_in_words_agree_with_the_status_page(team, browser):
    page, errors = logged_in(browser, team)
    page.goto(team.url + "/status")
    awaiting = ledger(team, "SELECT count(*) AS n FROM events WHERE lookup_state = 'pending'")["n"]
    assert awaiting == 3 and page.inner_text("#awaiting") == "3"
    page.click("#awaiting a")
    assert page.input_value("#state") == "awaiting"
    assert page.locator("#events tbody tr").count() == awaiting
    assert set(page.locator("#events tbody td:nth-child(8)").all_inner_texts()) == {"Awaiting OpenRouter"}
    for state, words, sql in (("estimated", "Estimated", "cost_source = 'estimate' AND lookup_state != 'pending'"),
                              ("unpriced", "No price", "cost_source = 'unpriced'")):
        page.select_option("#state", state)
        page.click("#event-filters button[type=submit]")
        count = ledger(team, f"SELECT count(*) AS n FROM events WHERE {sql}")["n"]
        assert page.locator("#events tbody tr").count() == count == 1
        assert page.inner_text("#events tbody td:nth-child(8)") == words
    assert errors == []


def test_dates_given_mean_a_custom_period(team, browser):
    page, errors = logged_in(browser, team)
    assert page.input_value("#period") == "month"
    page.fill("#from", "2026-10-05")
    page.fill("#to", "2026-10-11")
    assert page.input_value("#period") == "custom"  # the picker follows what was typed
    page.click("form.period-picker button[type=submit]")
    page.wait_for_load_state()
    assert "period=custom" in page.url
    week = ledger(team, "SELECT sum(cost_nano) AS c, sum(answers) AS a FROM usage_daily WHERE day BETWEEN '2026-10-05' AND '2026-10-11'")
    assert page.inner_text("#total-cost") == format_usd(week["c"], 2)
    assert page.inner_text("#period-shown") == "5 Oct 2026 – 11 Oct 2026"
    # and back: choosing a preset in the select wins over the dates left as they were shown
    page.select_option("#period", "last_month")
    page.click("form.period-picker button[type=submit]")
    page.wait_for_url("**period=last_month**")
    october = ledger(team, "SELECT sum(cost_nano) AS c FROM usage_daily WHERE day BETWEEN '2026-10-01' AND '2026-10-31'")
    assert page.inner_text("#total-cost") == format_usd(october["c"], 2) and page.inner_text("#period-shown") == "1 Oct 2026 – 31 Oct 2026"
    # without script too: the dates sent with "This month" win when they differ from it
    page.goto(team.url + "/?period=month&from=2026-10-05&to=2026-10-11")
    assert page.inner_text("#total-cost") == format_usd(week["c"], 2) and page.input_value("#period") == "custom"
    assert errors == []


def test_trends_compare_with_the_previous_period_and_forecast(team, browser):
    page, errors = logged_in(browser, team)
    now = ledger(team, "SELECT sum(cost_nano) AS c, sum(answers) AS a FROM usage_daily WHERE day BETWEEN '2026-11-01' AND '2026-11-20'")
    before = ledger(team, "SELECT sum(cost_nano) AS c, sum(answers) AS a FROM usage_daily WHERE day BETWEEN '2026-10-01' AND '2026-10-20'")
    assert page.inner_text("#cost-change") == f"{round(100 * (now['c'] - before['c']) / before['c']):+d}% vs 1 Oct – 20 Oct"
    assert page.inner_text("#answers-change") == f"{round(100 * (now['a'] - before['a']) / before['a']):+d}% vs 1 Oct – 20 Oct"
    assert page.inner_text("#forecast") == f"Month-end forecast: {format_usd(now['c'] * 30 // 20, 2)}"
    legend = page.locator("#cost-chart .legend li").all_inner_texts()
    assert len(legend) == 6 and legend[-1] == "Other models"  # five models, the rest grouped
    assert any(NAMES["openai/gpt-4o-mini"] in item for item in legend)
    ticks = page.locator("#cost-chart svg.wide > text[text-anchor=end]").all_text_contents()
    assert ticks[0] == "$0" and all(re.fullmatch(r"\$\d+(\.\d0?)?|\$0\.\d{1,2}", t) for t in ticks), ticks
    page.goto(team.url + "/?period=custom&from=2025-01-01&to=2025-01-31")
    assert page.inner_text("#cost-chart") == "No answers in this period."
    # a long period: a bar per week (Monday on), the same money
    page.goto(team.url + "/?period=custom&from=2026-08-01&to=2026-11-20")
    assert page.locator("h2", has_text="Cost per week").count() == 1
    weeks = page.locator("#cost-chart svg.wide g.day")
    assert weeks.count() == 17 and weeks.first.get_attribute("data-day") == "week of 1 Aug"
    drawn = sum(int(v) for v in page.eval_on_selector_all("#cost-chart svg.wide rect.bar", "rs => rs.map(r => r.dataset.value)"))
    assert drawn == ledger(team, "SELECT sum(cost_nano) AS c FROM usage_daily WHERE day BETWEEN '2026-08-01' AND '2026-11-20'")["c"]
    assert errors == []


def test_hover_shows_the_days_figures(team, browser):
    page, errors = logged_in(browser, team)
    day = page.locator("#cost-chart svg.wide g.day").nth(4)  # 5 November
    day.hover()
    tip = page.locator("#cost-chart .tip")
    assert tip.is_visible()
    figures = ledger(team, "SELECT sum(cost_nano) AS c FROM usage_daily WHERE day = '2026-11-05'")
    assert tip.locator("strong").inner_text() == f"5 Nov: {format_usd(figures['c'])}"
    per_model = team.meter.db.query("SELECT model, sum(cost_nano) AS c FROM usage_daily WHERE day = '2026-11-05' GROUP BY model")
    assert tip.locator("div").count() == len(per_model)
    page.mouse.move(5, 5)
    assert not tip.is_visible()
    assert errors == []


def test_error_pages_keep_the_navigation(team, browser):
    page, errors = logged_in(browser, team)
    response = page.goto(team.url + "/users/nobody-here")
    assert response.status == 404
    assert page.inner_text("h1") == "Page not found (404)" and page.locator("nav a", has_text="Overview").count() == 1
    response = page.goto(team.url + "/events?from=yesterday")
    assert response.status == 400 and page.inner_text("main p") == "from must be a date like 2026-11-01"
    assert page.locator("nav a", has_text="Events").count() == 1


def test_audit_log_reads_as_sentences_with_failed_logins(team, browser):
    context = browser.new_context()
    stranger = context.new_page()
    stranger.goto(team.url + "/login")
    stranger.fill("input[name=password]", "not the password")
    stranger.click("button[type=submit]")
    context.close()
    page, errors = logged_in(browser, team)
    page.goto(team.url + "/status")
    log = page.locator("#audit tbody td:nth-child(2)").all_inner_texts()
    assert "tester set a $12.00 monthly budget for José Martínez" in log
    assert "tester set a $40.00 monthly budget (warning only) for each user" in log
    assert "tester added $20.00 to Zoë Müller's balance" in log
    assert "A login as “admin” failed from 127.0.0.1" in log
    assert "admin logged in from 127.0.0.1" in log
    assert page.inner_text("#meter-url") == "https://meter.example.com"
    assert errors == []


def test_every_page_fits_a_phone_and_a_desktop_light_and_dark(team, browser, tmp_path):
    """Screenshots of every page at 1366 and 390 px, light and dark (in the test's folder; the
    README's overview, user page and statement also where OWUI_METER_SCREENSHOTS says); at 390 px
    no page is wider than the screen; dark mode follows the system's preference."""
    shots = tmp_path
    me = re.search(r"https://meter\.example\.com(/me/\S+)", team.app.test_client().post(
        "/api/v1/outlet", json=outlet_body(key="me-link", user=ZOE, cost=0, timestamp=NOW.timestamp() - 3600),
        headers={"Authorization": f"Bearer {API_KEY}"}).get_json()["notice"]).group(1)
    pages = PAGES | {"me": me}
    for scheme in ("light", "dark"):
        for width in (1366, 390):
            page, errors = logged_in(browser, team, width=width, height=844 if width == 390 else 900, color_scheme=scheme)
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == ("rgb(246, 247, 249)" if scheme == "light" else "rgb(21, 23, 28)")
            for name, path in pages.items():
                page.goto(team.url + path)
                page.wait_for_load_state()
                if width == 390:
                    assert page.evaluate("document.documentElement.scrollWidth") <= 390, (name, scheme)
                    # every table's cost column is on the screen without scrolling the table
                    rights = page.locator("th").evaluate_all(
                        "cells => cells.filter(c => c.textContent.trim() === 'Cost').map(c => c.getBoundingClientRect().right)")
                    assert all(right <= 390 for right in rights), (name, scheme, rights)
                    if name != "me":
                        assert not page.locator("nav a", has_text="Budgets").is_visible()  # collapsed behind Menu
                suffix = "" if scheme == "light" else "-dark"
                page.screenshot(path=str(shots / f"{name}-{width}{suffix}.png"), full_page=True)
            if width == 390:
                page.goto(team.url + "/")
                page.click("nav .toggle")
                assert page.locator("nav a", has_text="Budgets").is_visible()
            assert errors == []
            page.context.close()
    # the statement as a person sees it, for the README
    page, errors = logged_in(browser, team)
    pdf = page.request.get(f"{team.url}/api/v1/reports/user/{ZOE['id']}.pdf?month=2026-10")
    assert pdf.status == 200
    (shots / "statement.pdf").write_bytes(pdf.body())
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(shots / "statement.pdf"), str(shots / "statement")], check=True)
    (shots / "statement.pdf").unlink()
    assert (shots / "statement.png").stat().st_size > 10_000
    if SHOTS:
        keep = Path(SHOTS)
        keep.mkdir(parents=True, exist_ok=True)
        for name, source in (("overview", "overview-1366"), ("user", "user-1366"), ("statement", "statement")):
            (keep / f"{name}.png").write_bytes((shots / f"{source}.png").read_bytes())
