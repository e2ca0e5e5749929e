"""Figures a person reads, checked by their rendered text against the ledger.

Token counts and answer counts on every dashboard page and the user's own page (issue 12, item 1),
and one rounding rule for money totals across the dashboard, the JSON API, the CSV and the PDFs
(item 2).
"""

import csv
import datetime as dt
import html
import io
import re
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from pypdf import PdfReader

from conftest import ADA, API_KEY, BOB, JWT_SECRET, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.auth import create_token
from owui_meter.ledger import NewEvent, UserInfo
from test_dashboard import log_in

H = {"Authorization": f"Bearer {API_KEY}"}
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()
SMALL_ANSWERS = 10_400  # enough that the answer count itself is shown in thousands


def page_text(response) -> str:
    """The page as a person reads it: tags gone, entities decoded, white space folded."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


COUNT = re.compile(r"(?<![\d.,$])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?: ([kMB]))?(?![\d,])")
SCALE = {None: 1, "k": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def counts_read(text: str) -> list[tuple[float, float]]:
    """Every count on the page as (value, half its last shown unit): "233.4 k" -> (233400, 50)."""
    found = []
    for number, suffix in COUNT.findall(text):
        digits = number.replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        scale = SCALE[suffix or None]
        # "12 k" is 12.0 k with the ".0" dropped: a shown suffix always means one decimal
        unit = scale / 10 if suffix else scale / 10**decimals
        found.append((float(digits) * scale, unit / 2 if suffix or decimals else 0))
    return found


def shows(text: str, expected: int) -> bool:
    return any(abs(value - expected) <= tolerance for value, tolerance in counts_read(text))


@pytest.fixture
def many(data_dir, monkeypatch):
    """Ada: 10,400 small answers and one big one; Bob: one answer. All in November 2026."""
    monkeypatch.setattr(clock, "time_fn", lambda: NOW)
    app = create_app(make_settings(data_dir))
    meter, client = app.config["METER"], app.test_client()
    start = int((NOW - 5 * 86400) * 1000)
    small = [NewEvent(key=f"s{i}", user=UserInfo(ADA["id"], ADA["email"], ADA["name"]), model="openai/gpt-4o-mini", ts=start + i * 1000,
                      source="ui", prompt_tokens=3, completion_tokens=22, inline_cost_nano=1000) for i in range(SMALL_ANSWERS)]
    meter.db.submit(lambda conn: [meter.ledger._record(conn, e, clock.now_ms()) for e in small])
    big = outlet_body(key="big", user=ADA, cost=0.5, prompt=12_000, completion=233_374, timestamp=NOW - 60)
    assert client.post("/api/v1/outlet", json=big, headers=H).status_code == 202
    assert client.post("/api/v1/outlet", json=outlet_body(key="bob", user=BOB, cost=0.1, prompt=5, completion=7, timestamp=NOW - 30), headers=H).status_code == 202
    yield app, meter, client
    meter.stop()


def ledger_sum(meter, column: str, user: str | None = None) -> int:
    where, params = ("WHERE user_id = ?", (user,)) if user else ("", ())
    return meter.db.query_one(f"SELECT coalesce(sum({column}), 0) AS n FROM events {where}", params)["n"]


def test_token_and_answer_counts_on_every_page_read_as_the_ledgers_sums(many):
    app, meter, client = many
    log_in(client, meter)
    ada = ADA["id"]
    answers, prompt, completion = (ledger_sum(meter, c) for c in ("1", "prompt_tokens", "completion_tokens"))
    assert prompt > 40_000 and completion > 450_000  # shown in thousands on the pages below

    overview = page_text(client.get("/"))
    for figure in (answers, prompt, completion):
        assert shows(overview, figure), (figure, overview)

    users = page_text(client.get("/users"))
    assert shows(users, ledger_sum(meter, "1", ada)) and shows(users, 1)

    user = page_text(client.get(f"/users/{ada}"))
    for figure in (ledger_sum(meter, c, ada) for c in ("1", "prompt_tokens", "completion_tokens")):
        assert shows(user, figure), (figure, user)
    assert shows(user, 233_374) and shows(user, 12_000)  # the big answer in "latest answers"

    models = page_text(client.get("/models"))
    mini = meter.db.query_one("SELECT count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c FROM events WHERE model = 'openai/gpt-4o-mini'")
    for figure in mini.values():
        assert shows(models, figure), (figure, models)

    events = page_text(client.get("/events"))
    assert shows(events, 233_374) and shows(events, 12_000)

    token = create_token(JWT_SECRET, days=7, name=ada, scope="self")
    me = page_text(client.get(f"/me/{token}"))
    assert shows(me, ledger_sum(meter, "1", ada)) and shows(me, 233_374) and shows(me, 12_000)


def test_the_count_reader_tells_ten_times_too_small_apart():
    """The check above would catch the old display: 233,374 tokens shown as "23.3 k"."""
    assert shows("23.3 k", 23_300) and not shows("23.3 k", 233_374)
    assert shows("233.4 k", 233_374) and shows("12 k", 12_000) and shows("1,234", 1_234) and not shows("1,234", 1_235)


CENT = Decimal("0.01")
CAROL = {"id": "carol", "email": "carol@example.com", "name": "Carol", "role": "user"}


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def test_a_periods_total_is_the_same_cent_on_the_dashboard_api_csv_and_pdf(data_dir, monkeypatch):
    """Three users at $1.004 each: rounded once the month is $3.01; adding rounded rows gives $3.00."""
    monkeypatch.setattr(clock, "time_fn", lambda: NOW)
    app = create_app(make_settings(data_dir))
    meter, client = app.config["METER"], app.test_client()
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}
    for i, user in enumerate((ADA, BOB, CAROL)):
        for j, model in enumerate(("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku")):
            body = outlet_body(key=f"{i}-{j}", user=user, cost="0.502", model=model, timestamp=NOW - 86400 * (i + 1))
            assert client.post("/api/v1/outlet", json=body, headers=H).status_code == 202
    exact = Decimal(ledger_sum(meter, "cost_nano")) / 10**9
    assert exact == Decimal("3.012")
    expected = f"${exact.quantize(CENT, rounding=ROUND_HALF_EVEN)}"  # the README's rule, applied here by hand
    assert expected == "$3.01"

    log_in(client, meter)
    overview = client.get("/?period=custom&from=2026-11-01&to=2026-11-30")
    shown = re.search(r'id="total-cost">([^<]+)<', overview.get_data(as_text=True)).group(1)
    assert shown == expected

    api = client.get("/api/v1/usage?from=2026-11-01&to=2026-11-30", headers=admin).get_json()["total"]
    assert f"${(Decimal(api['cost_nano']) / 10**9).quantize(CENT, rounding=ROUND_HALF_EVEN)}" == expected
    assert f"${Decimal(str(api['cost_usd'])).quantize(CENT, rounding=ROUND_HALF_EVEN)}" == expected

    rows = list(csv.DictReader(io.StringIO(client.get("/events.csv?from=2026-11-01&to=2026-11-30").get_data(as_text=True))))
    assert len(rows) == 6
    assert f"${sum(Decimal(r['cost_usd']) for r in rows).quantize(CENT, rounding=ROUND_HALF_EVEN)}" == expected

    summary = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert re.search(rf"Total 6 \{expected} ", summary), summary
    group_models = re.search(r"Top models (.*?) Reconciliation", summary).group(1)
    assert group_models.count("$1.51") == 2  # each model: $1.506 rounded once
    meter.stop()


@pytest.mark.parametrize("n, shown", [(9_999, "9,999"), (10_000, "10 k"), (233_374, "233.4 k"), (999_949, "999.9 k"),
                                      (999_950, "1 M"), (1_250_000, "1.2 M"), (999_950_000, "1 B")])
def test_counts_at_the_unit_edges(n, shown):
    from owui_meter.web.templating import human_count

    assert human_count(n) == shown and shows(shown, n)

