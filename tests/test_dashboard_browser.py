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


@pytest.fixture
def browser():
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
    bars = page.locator("#cost-chart rect.bar")
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
