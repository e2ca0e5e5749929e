"""PDF statements read back with pypdf: names, period, rows and totals equal the ledger's."""

import datetime as dt
import io
import os
import re
import shutil
import subprocess
import zipfile
from decimal import Decimal

import pytest
from pypdf import PdfReader

from conftest import ADA, API_KEY, BOB, JWT_SECRET, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.auth import create_token
from test_cli import run

H = {"Authorization": f"Bearer {API_KEY}"}
EVE = {"id": "eve", "name": '<b>Eve & "Co"</b>', "email": "eve@example.com", "role": "user"}
IVAN = {"id": "ivan", "name": "Иван Петров", "email": "ivan@example.com", "role": "user"}
NOV = dt.datetime(2026, 11, 10, 12, tzinfo=dt.timezone.utc).timestamp()


def pdf_text(data: bytes) -> str:
    """The document's text with white space folded (table cells come out one per line)."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def make_app(data_dir, monkeypatch, **settings):
    monkeypatch.setattr(clock, "time_fn", lambda: NOV + 20 * 86400)
    app = create_app(make_settings(data_dir, **settings))
    return app, app.test_client(), {"Authorization": f"Bearer {create_token(JWT_SECRET)}"}


def answer(client, key, user, cost, model="openai/gpt-4o-mini", prompt=100, completion=200, days_ago=20, **extra):
    body = outlet_body(key=key, user=user, cost=cost, model=model, prompt=prompt, completion=completion, timestamp=NOV + 20 * 86400 - days_ago * 86400, **extra)
    assert client.post("/api/v1/outlet", json=body, headers=H).status_code == 202


@pytest.fixture
def seeded(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "a1", ADA, 1.2345, prompt=1000, completion=2000, days_ago=1)
    answer(client, "a2", ADA, 0.5, model="anthropic/claude-3.5-haiku", prompt=10, completion=20, days_ago=2)
    answer(client, "a3", ADA, 0.25, days_ago=3)
    answer(client, "b1", BOB, 3.0, days_ago=4)
    answer(client, "e1", EVE, 0.01, days_ago=5)
    answer(client, "i1", IVAN, 0.02, days_ago=6)
    yield app, client, admin
    app.config["METER"].stop()


def test_user_statement_matches_the_ledger(seeded):
    app, client, admin = seeded
    response = client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    content = pdf_text(response.data)
    assert "Ada Admin" in content and "ada@example.com" in content
    assert "01 November 2026 – 30 November 2026" in content
    usage = client.get("/api/v1/usage", query_string={"group_by": "model", "user": ADA["id"], "from": "2026-11-01", "to": "2026-11-30"}, headers=admin).get_json()
    assert len(usage["rows"]) == 2
    for row in usage["rows"]:
        cost = (Decimal(row["cost_nano"]) / 10**9).quantize(Decimal("0.01"))
        assert f"{row['key']} {row['answers']:,} {row['prompt_tokens']:,} {row['completion_tokens']:,} ${cost:,}" in content
    total = Decimal(usage["total"]["cost_nano"]) / 10**9
    assert re.search(rf"Total \${total.quantize(Decimal('0.01'))}", content)  # $1.98
    assert "Bob" not in content
    assert "Prepaid balance" not in content  # balances are off


def test_markup_base_fee_and_currency(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch, METER_MARKUP_PERCENT="10", METER_BASE_FEE="2", METER_CURRENCY="EUR", METER_USD_RATE="0.9")
    answer(client, "x", ADA, 10)
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    # usage $10 -> €9.00; markup 10% -> €0.90; base fee $2 -> €1.80; total €11.70
    assert "Usage €9.00" in content and "Markup 10% €0.90" in content and "Base fee €1.80" in content and "Total €11.70" in content
    assert "1 USD = 0.9 EUR" in content
    app.config["METER"].stop()


@pytest.mark.parametrize("usd, expected", [(None, None), (0.5, "Minimum charge adjustment $4.50"), (7, None)])
def test_minimum_charge_at_its_edges(data_dir, monkeypatch, usd, expected):
    app, client, admin = make_app(data_dir, monkeypatch, MINIMUM_CHARGE_FEE="5")
    if usd is None:
        with app.config["METER"].db.write() as conn:
            conn.execute("INSERT INTO users (id, name, first_seen, last_seen) VALUES (?, 'Ada Admin', 0, 0)", (ADA["id"],))
    else:
        answer(client, "x", ADA, usd)
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    total = {None: "$0.00", 0.5: "$5.00", 7: "$7.00"}[usd]
    assert f"Total {total}" in content
    assert ("Minimum charge adjustment" in content) == (expected is not None)
    if expected:
        assert expected in content
    app.config["METER"].stop()


def test_markup_escaping_and_cyrillic(seeded):
    app, client, admin = seeded
    eve = pdf_text(client.get("/api/v1/reports/user/eve.pdf?month=2026-11", headers=admin).data)
    assert '<b>Eve & "Co"</b>' in eve
    ivan = pdf_text(client.get("/api/v1/reports/user/ivan.pdf?month=2026-11", headers=admin).data)
    assert "Иван Петров" in ivan


def test_summary_totals_and_reconciliation_note(seeded):
    app, client, admin = seeded
    content = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    for name in ("Ada Admin", "Bob User", '<b>Eve & "Co"</b>', "Иван Петров"):
        assert name in content
    assert re.search(r"User Answers Usage Total due .* Total 6 \$5\.01 \$5\.01", content)  # 1.98 + 3.00 + 0.01 + 0.02; no fees, no Fees column
    assert "Fees" not in content
    assert "Reconciliation with OpenRouter" in content and "unknown" in content


def test_group_statement(seeded):
    app, client, admin = seeded
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', ?)", (ADA["id"], BOB["id"]))
    content = pdf_text(client.get("/api/v1/reports/group/eng.pdf?month=2026-11", headers=admin).data)
    assert "Group statement: Engineering" in content and "Ada Admin" in content and "Bob User" in content
    assert "Total 4 $4.98" in content and "Иван" not in content


def test_zip_of_all_statements(seeded):
    app, client, admin = seeded
    response = client.get("/api/v1/reports/statements.zip?month=2026-11", headers=admin)
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert len(names) == 5 and names[0].startswith("summary-")


@pytest.mark.parametrize("path, status", [
    ("/api/v1/reports/user/nobody.pdf?month=2026-11", 404),
    ("/api/v1/reports/group/nope.pdf?month=2026-11", 404),
    ("/api/v1/reports/summary.pdf?month=november", 400),
    ("/api/v1/reports/summary.pdf?from=2026-11-30&to=2026-11-01", 400),
    ("/api/v1/reports/summary.pdf?from=soon&to=later", 400),
])
def test_bad_report_requests(seeded, path, status):
    app, client, admin = seeded
    response = client.get(path, headers=admin)
    assert response.status_code == status and response.is_json


def test_reports_need_an_admin(seeded):
    app, client, admin = seeded
    assert client.get("/api/v1/reports/summary.pdf", headers=H).status_code == 401


def test_report_command_writes_every_file(seeded, data_dir, tmp_path):
    app, client, admin = seeded
    app.config["METER"].stop()
    out = tmp_path / "out"
    result = run(data_dir, "report", "--month", "2026-11", "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = result.stdout.split()
    assert len(written) == 5 and all(p.endswith(".pdf") for p in written)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.rsplit("/", 1)[1] for p in written)


def test_render_to_png_for_a_look(seeded, tmp_path):
    """Renders a statement and the summary to PNG (poppler's pdftoppm) to look at by eye."""
    if shutil.which("pdftoppm") is None:
        if os.environ.get("OWUI_METER_CI"):
            pytest.fail("pdftoppm is required here (.ci/run installs poppler-utils)")
        pytest.skip("poppler-utils is not installed; .ci/run installs it")
    app, client, admin = seeded
    for name, path in (("statement", f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11"), ("summary", "/api/v1/reports/summary.pdf?month=2026-11")):
        pdf = tmp_path / f"{name}.pdf"
        pdf.write_bytes(client.get(path, headers=admin).data)
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / name)], check=True)
        assert (tmp_path / f"{name}-1.png").stat().st_size > 5000


@pytest.mark.parametrize("usd, settings, total", [
    (4.996, {"MINIMUM_CHARGE_FEE": "5"}, "$5.00"),  # rounds up to the minimum by itself: no $0.00 line
    (1.675, {"MINIMUM_CHARGE_FEE": "3.3549", "METER_BASE_FEE": "1.675"}, "$3.36"),  # $1.68 + $1.68 is over $3.35: no -$0.01 line
    (1.675, {"MINIMUM_CHARGE_FEE": "1.6849", "METER_USD_RATE": "2", "METER_CURRENCY": "CHF"}, "3.35 CHF"),  # 3.35 CHF is under the minimum's 3.37 CHF: a 0.02 line
])
def test_minimum_charge_adjustment_is_never_zero_or_negative(data_dir, monkeypatch, usd, settings, total):
    app, client, admin = make_app(data_dir, monkeypatch, **settings)
    answer(client, "x", ADA, usd)
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    lines = re.findall(r"Minimum charge adjustment (-?[$]?[\d.,]+(?: CHF)?)", content)
    for line in lines:
        assert Decimal(re.sub(r"[^\d.-]", "", line)) > 0, content
    charges = re.search(r"Charges (.*?) Total (\S+(?: CHF)?)", content)
    amounts = [Decimal(re.sub(r"[^\d.-]", "", a)) for a in re.findall(r"-?\$?\d+\.\d\d", charges.group(1))]
    assert sum(amounts) == Decimal(re.sub(r"[^\d.-]", "", charges.group(2)))  # the lines add up on paper
    if "CHF" in total:
        assert lines == ["0.02 CHF"] and charges.group(2) == "3.37 CHF"  # 3.35 CHF usage, minimum 3.37 CHF
    else:
        assert lines == [] and charges.group(2) == total
    app.config["METER"].stop()


GROUP_RULE = "Each member is charged as on their own statement"


@pytest.mark.parametrize("settings", [
    {"METER_BASE_FEE": "5", "MINIMUM_CHARGE_FEE": "10"},  # fees per statement: $10 each
    {"METER_MARKUP_PERCENT": "10"},  # proportional charges only
])
def test_group_statement_bills_its_members_as_their_own_statements_do(data_dir, monkeypatch, settings):
    app, client, admin = make_app(data_dir, monkeypatch, **settings)
    answer(client, "a", ADA, 1)
    answer(client, "b", BOB, 1)
    answer(client, "e", EVE, 3)  # not in the group
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0)")
        conn.execute("INSERT INTO users (id, name, first_seen, last_seen) VALUES ('idle', 'Idle Ivy', 0, 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', ?), ('eng', 'idle')", (ADA["id"], BOB["id"]))
    group = pdf_text(client.get("/api/v1/reports/group/eng.pdf?month=2026-11", headers=admin).data)
    assert GROUP_RULE in group
    totals = {}
    for user, name in ((ADA, "Ada Admin"), (BOB, "Bob User")):
        own = pdf_text(client.get(f"/api/v1/reports/user/{user['id']}.pdf?month=2026-11", headers=admin).data)
        totals[name] = Decimal(re.search(r"Charges .*? Total \$([\d.,]+)", own).group(1))
        # one way: the member's line on the group statement is their own statement's total
        assert re.search(rf"{name} {user['email']} 1 \$1\.00 \${totals[name]}", group), group
    assert re.search(r"Idle Ivy 0 \$0\.00 \$0\.00", group)
    # the other way: the group's total due is the sum of its members' statements
    group_total = Decimal(re.search(r"Total due \$([\d.,]+)", group).group(1))
    assert group_total == sum(totals.values())
    assert group_total == (Decimal("20.00") if "METER_BASE_FEE" in settings else Decimal("2.20"))
    app.config["METER"].stop()


def test_statement_of_an_unfinished_month_is_provisional_and_says_why(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)  # the clock stands at 30 November, 12:00
    answer(client, "done", ADA, 1.5)
    answer(client, "waiting", ADA, 0.25, days_ago=0, generation_ids=["gen-waiting-1"])
    meter = app.config["METER"]
    pending = meter.db.query_one("SELECT count(*) AS n, sum(cost_nano) AS cost FROM events WHERE lookup_state = 'pending'")
    assert pending["n"] == 1
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    amount = (Decimal(pending["cost"]) / 10**9).quantize(Decimal("0.01"))
    assert "Usage statement — Provisional" in content
    assert "the period runs until the end of 30 November 2026" in content
    assert f"1 answer (${amount} so far) is still awaiting OpenRouter's confirmation" in content
    assert "Final." not in content
    summary = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert "Usage summary — Provisional" in summary and "1 answer ($0.25 so far)" in summary
    meter.stop()


def test_a_closed_month_with_nothing_pending_is_final_and_says_when(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "done", ADA, 1.5)
    monkeypatch.setattr(clock, "time_fn", lambda: dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.timezone.utc).timestamp())
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert "Provisional" not in content
    assert "Final. Finalised on 02 December 2026 at 09:30" in content
    app.config["METER"].stop()


def test_a_closed_month_still_awaiting_openrouter_stays_provisional(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "waiting", ADA, 0.25, days_ago=0, generation_ids=["gen-waiting-1"], model="a/b")
    answer(client, "waiting2", ADA, 0.5, days_ago=0, generation_ids=["gen-waiting-2"], model="a/b")
    monkeypatch.setattr(clock, "time_fn", lambda: dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.timezone.utc).timestamp())
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert "Usage statement — Provisional" in content and "period runs until" not in content
    assert "2 answers ($0.75 so far) are still awaiting" in content
    app.config["METER"].stop()


def test_the_reports_page_opens_on_the_last_complete_month(data_dir, monkeypatch):
    from test_dashboard import log_in

    app, client, admin = make_app(data_dir, monkeypatch)  # 30 November 2026
    assert log_in(client, app.config["METER"]).status_code == 302
    page = client.get("/reports").get_data(as_text=True)
    assert 'name="from" value="2026-10-01"' in page and 'name="to" value="2026-10-31"' in page
    app.config["METER"].stop()


def record_many(meter, user, n, cost_nano, days_ago=5):
    """n answers recorded through the ledger in one go (as the importer does)."""
    from owui_meter.ledger import NewEvent, UserInfo

    ts = int((NOV + 20 * 86400 - days_ago * 86400) * 1000)
    batch = [NewEvent(key=f"bulk-{user['id']}-{i}", user=UserInfo(user["id"], user["email"], user["name"], user["role"]), model="openai/gpt-4o-mini",
                      ts=ts + i, source="ui", prompt_tokens=10, completion_tokens=20, inline_cost_nano=cost_nano) for i in range(n)]
    meter.ledger.record_many(batch)


def numbered_users(meter, numbers):
    """User 000, User 001, …: one answer each, user i costing $0.01 × (i + 1)."""
    for i in numbers:
        record_many(meter, {"id": f"user-{i:03}", "email": f"user{i}@example.com", "name": f"User {i:03}", "role": "user"}, 1, (i + 1) * 10_000_000)


def test_documents_use_plain_words_counts_and_plurals(seeded):
    app, client, admin = seeded
    meter = app.config["METER"]
    record_many(meter, BOB, 1234, 1_000_000)  # $0.001 each
    with meter.db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', ?)", (ADA["id"], BOB["id"]))
    docs = {path: pdf_text(client.get(path, headers=admin).data) for path in (
        f"/api/v1/reports/user/{BOB['id']}.pdf?month=2026-11", "/api/v1/reports/user/eve.pdf?month=2026-11",
        "/api/v1/reports/group/eng.pdf?month=2026-11", "/api/v1/reports/summary.pdf?month=2026-11")}
    for path, content in docs.items():
        assert "METER_" not in content and "OPENROUTER_" not in content and "_nano" not in content, path
        assert not re.search(r"\b1 answers\b", content) and not re.search(r"\b\d{4,} answers\b", content), path
    bob = docs[f"/api/v1/reports/user/{BOB['id']}.pdf?month=2026-11"]
    assert "1,235" in bob  # 1,234 + the seeded one, in the table
    assert "1,235 answers ($4.23) were imported history, or answers OpenRouter keeps no record of" in bob
    eve = docs["/api/v1/reports/user/eve.pdf?month=2026-11"]
    assert "1 answer ($0.01) was imported history" in eve
    assert "not yet confirmed" not in " ".join(docs.values())
    assert "OpenRouter's figure for this period is unknown" in docs["/api/v1/reports/summary.pdf?month=2026-11"]


def test_imported_history_is_described_as_such(data_dir, monkeypatch, tmp_path):
    from test_import import ADA as OLD_ADA, FILTER_ROWS, make_db

    old = make_db(tmp_path / "data.db", FILTER_ROWS)
    assert run(data_dir, "import-owui-metering", str(old)).returncode == 0
    app, client, admin = make_app(data_dir, monkeypatch)
    content = pdf_text(client.get(f"/api/v1/reports/user/{OLD_ADA[0]}.pdf?month=2026-09", headers=admin).data)
    assert "1 answer ($0.00) was imported history" in content and "not yet confirmed" not in content
    assert "Final. Finalised on" in content  # September is over and nothing waits for OpenRouter
    app.config["METER"].stop()


def test_a_user_without_usage_gets_a_line_not_an_empty_chart(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "x", ADA, 1)
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO users (id, name, first_seen, last_seen) VALUES ('idle', 'Idle Ivy', 0, 0)")
    content = pdf_text(client.get("/api/v1/reports/user/idle.pdf?month=2026-11", headers=admin).data)
    assert "No usage in this period." in content
    assert "Cost per day" not in content and "% of the usage was confirmed" not in content
    assert "Subtotal" not in content and "Input tokens" not in content  # no empty table either
    used = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert "Cost per day" in used and "No usage in this period." not in used
    app.config["METER"].stop()


def page_texts(data: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def test_a_statement_has_a_bills_frame(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch, METER_ORG_NAME="Acme Research GmbH", METER_ORG_ADDRESS="Hauptstraße 1\\n10115 Berlin",
                                  METER_ORG_TAX_ID="DE123456789", METER_PAYMENT_TERMS_DAYS="14")
    answer(client, "x", ADA, 1)
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0), ('ops', 'Operations', 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('ops', ?)", (ADA["id"], ADA["id"]))
    data = client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data
    content = pdf_text(data)
    assert content.startswith("Acme Research GmbH Hauptstraße 1 10115 Berlin Tax ID: DE123456789")
    number = re.search(r"Statement no\. (\S+)", content).group(1)
    assert re.fullmatch(r"20261101-20261130-[0-9A-F]{6}", number)
    assert "Issued 30 November 2026 Due 14 December 2026" in content  # the clock: 30 November; 14 days' terms
    assert "Statement for Ada Admin ada@example.com Groups: Engineering, Operations" in content
    pages = page_texts(data)
    assert all(f"Page {i} of {len(pages)}" in page for i, page in enumerate(pages, 1))
    group = pdf_text(client.get("/api/v1/reports/group/eng.pdf?month=2026-11", headers=admin).data)
    assert "Statement for Engineering Group of 1 member" in group and "Due 14 December 2026" in group
    summary = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert "Due" not in summary and "Statement for" not in summary  # an internal report, not a bill
    app.config["METER"].stop()


def test_without_sender_settings_there_is_no_sender_and_no_due_date(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "x", ADA, 1)
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert content.startswith("Statement no.") and "owui-meter" not in content
    assert "Tax ID" not in content and "Due" not in content
    assert "Page 1 of 1" in content
    app.config["METER"].stop()


def test_every_page_of_a_long_summary_is_numbered(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    meter = app.config["METER"]
    numbered_users(meter, range(90))
    pages = page_texts(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert len(pages) >= 2
    assert [re.search(r"Page (\d+) of (\d+)", p).groups() for p in pages] == [(str(i), str(len(pages))) for i in range(1, len(pages) + 1)]
    app.config["METER"].stop()


def test_the_notes_stay_together_on_one_page_whatever_the_length(data_dir, monkeypatch):
    """However many users push the notes toward a page break, they move as one block: never a
    last page holding one lone note."""
    app, client, admin = make_app(data_dir, monkeypatch)
    meter = app.config["METER"]
    numbered_users(meter, range(20))
    layouts = set()
    for i in range(20, 40):
        numbered_users(meter, [i])
        pages = page_texts(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
        first = [n for n, p in enumerate(pages) if "of the usage was confirmed" in p]
        last = [n for n, p in enumerate(pages) if "Amounts are rounded to the cent" in p]
        assert first == last and len(first) == 1, (i, first, last)
        layouts.add((len(pages), first[0]))
    assert len(layouts) > 1  # the users did move the notes across a page break
    meter.stop()


@pytest.mark.parametrize("name, value", [("METER_PAYMENT_TERMS_DAYS", "soon"), ("METER_PAYMENT_TERMS_DAYS", "-1"), ("METER_PAYMENT_TERMS_DAYS", "1000")])
def test_bad_payment_terms_are_refused_by_name(data_dir, name, value):
    from owui_meter.settings import SettingsError

    with pytest.raises(SettingsError, match=name):
        make_settings(data_dir, **{name: value})


def test_summary_has_a_fees_column_only_when_fees_are_configured(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch, METER_BASE_FEE="2")
    answer(client, "a", ADA, 1)
    answer(client, "b", BOB, 3)
    content = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert "User Answers Usage Fees Total due" in content
    assert "Bob User 1 $3.00 $2.00 $5.00" in content and "Total 2 $4.00 $4.00 $8.00" in content
    app.config["METER"].stop()


def test_long_tables_repeat_their_header_and_leave_no_row_alone(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    meter = app.config["METER"]
    numbered_users(meter, range(90))
    pages = page_texts(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert len(pages) >= 2
    assert pages[0].count("User Answers Usage Total due") == 1 and pages[1].startswith("User Answers Usage Total due User ")
    users_on = [len(re.findall(r"User \d{3} 1 ", page)) for page in pages]
    assert sum(users_on) == 90 and all(n == 0 or n >= 2 for n in users_on)
    # the total is never alone: on its page, a user row comes before it
    total_page = next(p for p in pages if re.search(r"Total 90 ", p))
    assert re.search(r"User \d{3} 1 \$[\d.]+ \$[\d.]+ Total 90 ", total_page)
    app.config["METER"].stop()


def test_file_names_are_the_same_in_the_api_the_zip_and_the_cli(seeded, data_dir, tmp_path):
    app, client, admin = seeded
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering & Ops', 0), ('idle', 'Idle group', 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', ?)", (ADA["id"], BOB["id"]))

    def download_name(path):
        response = client.get(path, headers=admin)
        assert response.status_code == 200
        return re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"]).group(1), response.data

    api = dict(download_name(f"/api/v1/reports/{path}?month=2026-11") for path in (
        "summary.pdf", "group/eng.pdf", *(f"user/{u}.pdf" for u in (ADA["id"], BOB["id"], "eve", "ivan"))))
    assert "group-Engineering-Ops-2026-11.pdf" in api and "statement-ada-example.com-2026-11.pdf" in api
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/reports/statements.zip?month=2026-11", headers=admin).data))
    assert sorted(archive.namelist()) == sorted(api)  # the idle group has no usage: no statement
    assert pdf_text(archive.read("group-Engineering-Ops-2026-11.pdf")) == pdf_text(api["group-Engineering-Ops-2026-11.pdf"])
    app.config["METER"].stop()
    out = tmp_path / "out"
    result = run(data_dir, "report", "--month", "2026-11", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(api)


def test_csv_starts_with_a_byte_order_mark_unless_asked_not_to(data_dir, monkeypatch):
    from test_dashboard import log_in

    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "z", {"id": "zoe", "name": "Zoë Müller", "email": "zoe@example.com", "role": "user"}, 0.5)
    assert log_in(client, app.config["METER"]).status_code == 302
    with_bom = client.get("/events.csv").data
    assert with_bom.startswith(b"\xef\xbb\xbftime_utc,")
    assert "Zoë Müller" in with_bom.decode("utf-8-sig")
    without = client.get("/events.csv?bom=0").data
    assert without.startswith(b"time_utc,") and without == with_bom[3:]
    bad = client.get("/events.csv?bom=yes")
    assert bad.status_code == 400 and "bom must be 0 or 1" in bad.get_data(as_text=True)
    app.config["METER"].stop()


def test_a_prepaid_statement_shows_the_balance_over_the_period(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch, METER_BALANCES_ENABLED="true")
    monkeypatch.setattr(clock, "time_fn", lambda: dt.datetime(2026, 10, 20, 12, tzinfo=dt.timezone.utc).timestamp())
    assert client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 1}, headers=admin).status_code == 404  # not known yet
    answer(client, "oct", ADA, 0.75, days_ago=41)  # 20 October
    assert client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 10, "note": "October credit"}, headers=admin).status_code == 201
    monkeypatch.setattr(clock, "time_fn", lambda: NOV + 20 * 86400)
    topup = client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 5, "note": "Q4 <top-up> & more"}, headers=admin)
    answer(client, "nov1", ADA, 1.25, days_ago=0)
    answer(client, "nov2", ADA, 0.5, days_ago=0)
    left = client.get(f"/api/v1/users/{ADA['id']}/budgets", headers=admin).get_json()["balance_usd"]
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert topup.status_code == 201
    # October: the balance began with the first answer (0 initial credit), -0.75 of usage, +10 credit
    assert "Prepaid balance Opening balance $9.25 Top-up 30 November 2026 Q4 <top-up> & more $5.00 Usage -$1.75" in content
    assert f"Closing balance ${Decimal(str(left)).quantize(Decimal('0.01'))}" in content and left == 12.5
    app.config["METER"].stop()


def test_group_statement_shows_models_and_its_shared_budget(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0)")
    answer(client, "a", ADA, 1.5, days_ago=0)
    answer(client, "b", BOB, 2.5, model="anthropic/claude-3.5-haiku", days_ago=0)
    answer(client, "a2", ADA, 0.12, days_ago=0)
    answer(client, "e", EVE, 9, days_ago=0)  # not a member
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', ?)", (ADA["id"], BOB["id"]))
    created = client.post("/api/v1/budgets", json={"scope": "group", "scope_id": "eng", "limit_usd": 30, "period": "month", "group_mode": "shared"}, headers=admin)
    assert created.status_code == 201, created.get_json()
    spent = sum(s["spent_usd"] for s in client.get(f"/api/v1/users/{ADA['id']}/budgets", headers=admin).get_json()["budgets"] if s["shared"])
    content = pdf_text(client.get("/api/v1/reports/group/eng.pdf?month=2026-11", headers=admin).data)
    assert "Models Model Answers Cost anthropic/claude-3.5-haiku 1 $2.50 openai/gpt-4o-mini 2 $1.62" in content
    assert spent == 4.12 and "Shared budget Used in November 2026: $4.12 of $30.00 (13.7%)." in content
    assert "Shared budget" not in pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    app.config["METER"].stop()


def test_open_webui_task_spend_is_its_own_line(data_dir, monkeypatch):
    from owui_meter.ledger import NewEvent, UserInfo

    app, client, admin = make_app(data_dir, monkeypatch)
    meter = app.config["METER"]
    answer(client, "a", ADA, 1)
    ts = int((NOV + 19 * 86400) * 1000)
    meter.ledger.record_many([NewEvent(key=f"task-{i}", user=UserInfo(ADA["id"], ADA["email"], ADA["name"]), model="openai/gpt-4o-mini", ts=ts + i,
                                       source="task", inline_cost_nano=1_500_000 * (i + 1)) for i in range(3)])  # $0.0015 + $0.003 + $0.0045
    own = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert "Open WebUI tasks (titles, tags, follow-ups): 3 calls, $0.01; included in the usage above." in own
    assert "Subtotal 4 " in own and "Total $1.01" in own
    summary = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert "Open WebUI tasks (titles, tags, follow-ups): 3 calls, $0.01" in summary
    october = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-10", headers=admin).data)
    assert "Open WebUI tasks" not in october
    app.config["METER"].stop()


@pytest.mark.parametrize("costs", [(1.2345, 0.5), (3.0,), (27.62, 4.99), (0.012,)])
def test_the_chart_axis_is_in_money_and_reaches_above_the_highest_bar(data_dir, monkeypatch, costs):
    app, client, admin = make_app(data_dir, monkeypatch)
    for i, cost in enumerate(costs):
        answer(client, f"c{i}", ADA, cost, days_ago=i + 1)
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    chart = content[content.index("Cost per day"):content.index("Charges")]
    ticks = [Decimal(t) for t in re.findall(r"\$([\d,.]+)", chart)]
    assert ticks[0] == 0 and 2 <= len(ticks) <= 6 and ticks == sorted(ticks)
    assert ticks[-1] >= Decimal(str(max(costs))).quantize(Decimal("0.01")) and ticks[-2] < Decimal(str(max(costs)))
    app.config["METER"].stop()


def test_summary_subtotals_by_group_equal_the_group_statements(seeded):
    app, client, admin = seeded
    with app.config["METER"].db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0), ('ops', 'Operations', 0), ('idle', 'Idle', 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', ?), ('ops', ?), ('ops', 'ivan')", (ADA["id"], BOB["id"], BOB["id"]))
    content = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert "By group Group Members Answers Usage Total due Engineering 2 4 $4.98 $4.98 Operations 2 2 $3.02 $3.02" in content
    assert "Idle" not in content  # no member with usage
    for group, due in (("eng", "$4.98"), ("ops", "$3.02")):
        assert f"Total due {due}" in pdf_text(client.get(f"/api/v1/reports/group/{group}.pdf?month=2026-11", headers=admin).data)


def test_summary_sets_budgets_against_actual_spend(data_dir, monkeypatch):
    app, client, admin = make_app(data_dir, monkeypatch)
    answer(client, "a", ADA, 27.62, days_ago=3)
    answer(client, "b", BOB, 3, days_ago=3)
    for body in ({"scope": "user", "scope_id": ADA["id"], "limit_usd": 30, "period": "month"},
                 {"scope": "all", "limit_usd": 100, "period": "month", "group_mode": "shared"}):  # shared: not per user
        assert client.post("/api/v1/budgets", json=body, headers=admin).status_code == 201
    monkeypatch.setattr(clock, "time_fn", lambda: dt.datetime(2026, 12, 5, tzinfo=dt.timezone.utc).timestamp())
    content = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert "Budgets against actual spend User Budget Spent Used Ada Admin $30.00 per month $27.62 92.1%" in content
    assert not re.search(r"Bob User \$[\d.]+ per", content) and "$100.00" not in content
    app.config["METER"].stop()


def test_summary_usage_total_equals_the_api_to_the_cent(seeded):
    app, client, admin = seeded
    answer(client, "odd", BOB, 0.005, days_ago=2)  # half a cent: the total is rounded once, from the exact sum
    usage = client.get("/api/v1/usage", query_string={"group_by": "user", "from": "2026-11-01", "to": "2026-11-30"}, headers=admin).get_json()
    total = (Decimal(usage["total"]["cost_nano"]) / 10**9).quantize(Decimal("0.01"))
    content = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    assert re.search(rf"Total {usage['total']['answers']:,} \${total} ", content), (total, content)
    for row in usage["rows"]:
        cost = (Decimal(row["cost_nano"]) / 10**9).quantize(Decimal("0.01"))
        assert f" {row['answers']:,} ${cost} " in content
