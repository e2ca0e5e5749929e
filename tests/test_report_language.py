"""Documents in METER_LANGUAGE: every word in the language, and its number, money and date formats.

Real PDFs from the app over the Flask test client, read back with pypdf; each figure is written
here by the language's rule (spelled out below, apart from owui_meter.words) from what the ledger
says through the usage API, and looked for in the document's text.
"""

import datetime as dt
import re
import string
from decimal import Decimal

import pytest

from conftest import ADA, BOB
from owui_meter import settings
from owui_meter.settings import SettingsError
from owui_meter.words import DOCUMENTS
from test_cli import run
from test_reports import IVAN, NOV, answer, make_app, page_texts, pdf_text

ZOE = {"id": "zoe", "name": "Zoë Ñúñez-Łukasiewicz", "email": "zoe@example.com", "role": "user"}
WANG = {"id": "wang", "name": "王小明", "email": "wang@example.com", "role": "user"}
CENT = Decimal("0.01")


def grouped(amount: Decimal, group: str, mark: str, places: int = 2) -> str:
    """1234.5 -> 1<group>234<mark>50, written out without owui_meter's help."""
    whole, _, cents = f"{amount:.{places}f}".partition(".")
    digits = whole.lstrip("-")
    parts = []
    while len(digits) > 3:
        digits, tail = digits[:-3], digits[-3:]
        parts.insert(0, tail)
    text = group.join([digits] + parts)
    return ("-" if amount < 0 else "") + text + (mark + cents if places else "")


# each language's rule for a US dollar amount, as pdf_text shows it (a no-break space reads as a space)
MONEY = {
    "en": lambda a: "$" + grouped(a, ",", "."),
    "de": lambda a: grouped(a, ".", ",") + " $",
    "fr": lambda a: grouped(a, " ", ",") + " $",
    "es": lambda a: grouped(a, ".", ",") + " US$",
    "zh": lambda a: "US$" + grouped(a, ",", "."),
}
COUNT = {"en": ",", "de": ".", "fr": " ", "es": ".", "zh": ","}
TODAY = {"en": "30 November 2026", "de": "30. November 2026", "fr": "30 novembre 2026", "es": "30 de noviembre de 2026", "zh": "2026年11月30日"}
TITLE = {"en": "Usage statement — Provisional", "de": "Nutzungsabrechnung — vorläufig", "fr": "Relevé d'utilisation — provisoire",
         "es": "Extracto de uso — provisional", "zh": "使用费用结算单（暂定）"}
PAGE = {"en": "Page {i} of {n}", "de": "Seite {i} von {n}", "fr": "Page {i} sur {n}", "es": "Página {i} de {n}", "zh": "第 {i} 页，共 {n} 页"}


def count(n: int, lang: str) -> str:
    return grouped(Decimal(n), COUNT[lang], "", places=0)


def ledger(client, admin, **query) -> dict:
    """The usage API for November 2026."""
    return client.get("/api/v1/usage", query_string={"from": "2026-11-01", "to": "2026-11-30", **query}, headers=admin).get_json()


def cents(nano: int) -> Decimal:
    return (Decimal(nano) / 10**9).quantize(CENT)


def bill(data_dir, monkeypatch, lang: str, **extra):
    """A month with more than $1,000 of usage for Ada (two models, a million tokens), one answer
    still awaiting OpenRouter, Open WebUI task calls, a user with accents and one with a Chinese
    name, a group with a shared budget, and Ada on a prepaid balance with a top-up."""
    from owui_meter.ledger import NewEvent, UserInfo

    app, client, admin = make_app(data_dir, monkeypatch, METER_LANGUAGE=lang, METER_ORG_NAME="Acme Research", METER_PAYMENT_TERMS_DAYS="14",
                                  METER_BALANCES_ENABLED="true", **extra)
    answer(client, "big-1", ADA, 600.25, prompt=1_234_567, completion=2345)
    answer(client, "big-2", ADA, 634.31, model="anthropic/claude-3.5-haiku", days_ago=3)
    answer(client, "waiting", ADA, 0.25, days_ago=0, generation_ids=["gen-waiting-1"])
    answer(client, "ivan", IVAN, 2.5)
    answer(client, "zoe", ZOE, 1.75)
    answer(client, "wang", WANG, 3.2)
    answer(client, "bob", BOB, 0.5)
    meter = app.config["METER"]
    ts = int((NOV + 19 * 86400) * 1000)
    meter.ledger.record_many([NewEvent(key=f"task-{i}", user=UserInfo(ADA["id"], ADA["email"], ADA["name"]), model="openai/gpt-4o-mini", ts=ts + i,
                                       source="task", inline_cost_nano=3_000_000) for i in range(2)])
    with meter.db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('eng', 'Engineering', 0)")
        conn.execute("INSERT INTO group_members VALUES ('eng', ?), ('eng', 'ivan'), ('eng', 'zoe')", (ADA["id"],))
    for body in ({"scope": "group", "scope_id": "eng", "limit_usd": 3000, "period": "month", "group_mode": "shared"},
                 {"scope": "user", "scope_id": BOB["id"], "limit_usd": 20, "period": "month"}):
        assert client.post("/api/v1/budgets", json=body, headers=admin).status_code == 201
    assert client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 1500, "note": "Q4"}, headers=admin).status_code == 201
    return app, client, admin


def documents(client, admin) -> dict:
    paths = {"statement": f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", "group": "/api/v1/reports/group/eng.pdf?month=2026-11",
             "summary": "/api/v1/reports/summary.pdf?month=2026-11", "zoe": "/api/v1/reports/user/zoe.pdf?month=2026-11",
             "wang": "/api/v1/reports/user/wang.pdf?month=2026-11"}
    result = {}
    for name, path in paths.items():
        response = client.get(path, headers=admin)
        assert response.status_code == 200 and response.mimetype == "application/pdf", (path, response.data[:200])
        result[name] = response.data
    return result


# words the languages share with English (names, and words spelled alike): these may appear
SHARED = {"en": set(), "de": {"Budget", "Budgets", "plus"}, "zh": set(),
          "fr": {"Budget", "Budgets", "budget", "Page", "Total", "total", "cache", "confirmation", "exact", "minimum", "plus", "tokens"},
          "es": {"Provisional", "Subtotal", "Total", "total", "tokens"}}
NAMES = {"OpenRouter", "OpenRouter's", "Open", "WebUI"}


def english_words(lang: str) -> set[str]:
    """Words of the English documents (from the English words file) that the language does not
    share with English: none may be left in its documents."""
    found = set()
    for phrase in DOCUMENTS["en"].values():
        for part in phrase if isinstance(phrase, tuple) else (phrase,):
            found |= set(re.findall(r"[^\W\d_][\w'-]{3,}", re.sub(r"\{[^}]*\}|<[^>]*>", " ", part)))
    return found - SHARED[lang] - NAMES


def test_a_german_statement(data_dir, monkeypatch):
    app, client, admin = bill(data_dir, monkeypatch, "de")
    data = documents(client, admin)["statement"]
    content = pdf_text(data)
    usage = ledger(client, admin, group_by="model", user=ADA["id"])
    total = cents(usage["total"]["cost_nano"])
    assert total > 1000
    # title, frame and dates in German
    assert "Nutzungsabrechnung — vorläufig" in content and "Abrechnung für Ada Admin ada@example.com Gruppe: Engineering" in content
    assert "Ausgestellt 30. November 2026 Fällig 14. Dezember 2026 Zeitraum 1. November 2026 – 30. November 2026 (UTC)" in content
    assert "Vorläufig: Der Zeitraum läuft noch bis einschließlich 30. November 2026;" in content
    # each model's row and the total from the ledger, German grouping: 1.234.567 tokens, 1.234,56 $
    assert "Modell Antworten Eingabe-Tokens Ausgabe-Tokens Kosten" in content
    for row in usage["rows"]:
        assert (f"{row['key']} {count(row['answers'], 'de')} {count(row['prompt_tokens'], 'de')} {count(row['completion_tokens'], 'de')} "
                f"{MONEY['de'](cents(row['cost_nano']))}") in content
    assert f"Zwischensumme {count(usage['total']['answers'], 'de')} " in content and "1.234.767" in content  # a grouped count
    assert f"Posten Nutzung {MONEY['de'](total)} Summe {MONEY['de'](total)}" in content
    assert re.search(r"Summe 1\.\d{3},\d\d \$", content)
    # singular and plural: one answer awaits OpenRouter, the others are as reported and kept
    meter = app.config["METER"]
    pending = meter.db.query_one("SELECT count(*) AS n, sum(cost_nano) AS cost FROM events WHERE user_id = ? AND lookup_state = 'pending'", (ADA["id"],))
    kept = meter.db.query_one("""SELECT count(*) AS n, sum(cost_nano) AS cost FROM events
                                 WHERE user_id = ? AND cost_source = 'inline' AND lookup_state != 'pending'""", (ADA["id"],))
    assert pending["n"] == 1 and kept["n"] == 4
    assert f"1 Antwort ({MONEY['de'](cents(pending['cost']))} bisher) wartet noch auf die Bestätigung der Kosten durch OpenRouter" in content
    assert f"4 Antworten ({MONEY['de'](cents(kept['cost']))}) stammen aus importiertem Verlauf" in content
    assert "Aufgaben von Open WebUI (Titel, Tags, Folgefragen): 2 Aufrufe, 0,01 $; in der Nutzung oben enthalten." in content
    # the chart's axis in German money, the prepaid balance in German
    chart = content[content.index("Kosten pro Tag"):content.index("Posten")]
    assert re.findall(r"(\d[\d.]*,\d\d) \$", chart)[:2] == ["0,00", "200,00"]
    balance = client.get(f"/api/v1/users/{ADA['id']}/budgets", headers=admin).get_json()["balance_usd"]
    assert f"Guthaben Anfangsguthaben 0,00 $ Aufladung 30. November 2026 Q4 1.500,00 $ Nutzung -{MONEY['de'](cents(usage['total']['cost_nano']))}" in content
    assert f"Endguthaben {MONEY['de'](Decimal(str(balance)).quantize(CENT))}" in content
    pages = page_texts(data)
    assert all(f"Seite {i} von {len(pages)}" in page for i, page in enumerate(pages, 1))
    # no English word and no setting's name left
    assert "METER_" not in content
    for word in ("Statement", "Usage", "Total", "Page", "Provisional", "answers", "Model", "Cost", "Charges", "Issued", "Subtotal", "Balance"):
        assert not re.search(rf"\b{word}\b", content, re.I), word
    app.config["METER"].stop()


@pytest.mark.parametrize("lang", ["de", "fr", "es", "zh"])
def test_no_english_word_is_left_on_any_document(data_dir, monkeypatch, lang):
    """Every document (statement with a prepaid balance, group statement with a shared budget,
    summary with fees, group subtotals and budgets) in the language, with no English word."""
    app, client, admin = bill(data_dir, monkeypatch, lang, METER_MARKUP_PERCENT="7.5")
    english = english_words(lang)
    assert len(english) > 180  # the check has teeth: the English documents' own words
    for name, data in documents(client, admin).items():
        content = pdf_text(data)
        assert "METER_" not in content and "OPENROUTER_" not in content, name
        for person in (ADA, BOB, IVAN, ZOE, WANG):  # their names are theirs, not the document's words
            content = content.replace(person["name"], "")
        left = sorted(w for w in english if re.search(rf"(?<![\w/-]){re.escape(w)}(?![\w/-])", content))
        assert left == [], (name, left)
    app.config["METER"].stop()


@pytest.mark.parametrize("lang, markup, group", [
    ("fr", "Majoration 7,5 %", "Relevé de groupe : Engineering — provisoire"),
    ("es", "Recargo 7,5 %", "Extracto de grupo: Engineering — provisional"),
    ("zh", "加价 7.5%", "群组结算单：Engineering（暂定）"),
])
def test_other_languages_title_money_date_and_page(data_dir, monkeypatch, lang, markup, group):
    app, client, admin = bill(data_dir, monkeypatch, lang, METER_MARKUP_PERCENT="7.5")
    docs = documents(client, admin)
    content = pdf_text(docs["statement"])
    usage = ledger(client, admin, group_by="user")
    ada = next(r for r in usage["rows"] if r["key"] == ADA["id"])
    money = MONEY[lang]
    assert TITLE[lang] in content
    assert TODAY[lang] in content  # issued today
    assert money(cents(ada["cost_nano"])) in content and cents(ada["cost_nano"]) > 1000  # the usage, grouped
    assert markup in content
    pages = page_texts(docs["statement"])
    assert all(PAGE[lang].format(i=i, n=len(pages)) in page for i, page in enumerate(pages, 1))
    assert group in pdf_text(docs["group"])
    # the summary's usage total, to the cent, as the ledger has it
    summary = pdf_text(docs["summary"])
    assert money(cents(usage["total"]["cost_nano"])) in summary
    app.config["METER"].stop()


def test_a_chinese_statement_reads_back_in_chinese(data_dir, monkeypatch):
    app, client, admin = bill(data_dir, monkeypatch, "zh")
    docs = documents(client, admin)
    content = pdf_text(docs["statement"])
    total = cents(ledger(client, admin, user=ADA["id"])["total"]["cost_nano"])
    for words in ("使用费用结算单（暂定）", "暂定：本期间持续至 2026年11月30日（含）", "结算对象 Ada Admin", "开具日期 2026年11月30日 到期日 2026年12月14日",
                  "期间 2026年11月1日 – 2026年11月30日 (UTC)", "模型 回答数 输入 token 输出 token 费用", "每日费用", "费用明细",
                  f"使用费 US${total:,} 合计 US${total:,}", "1 个回答（目前 US$0.25）仍在等待 OpenRouter 确认费用",
                  "Open WebUI 任务（标题、标签、后续问题）：2 次调用，US$0.01", "预付余额 期初余额 US$0.00 充值 2026年11月30日 Q4 US$1,500.00", "第 1 页，共 1 页"):
        assert words in content, words
    # names in other scripts still render beside the Chinese words (DejaVu Sans for them)
    assert "王小明" in pdf_text(docs["wang"]) and "Zoë Ñúñez-Łukasiewicz" in pdf_text(docs["zoe"])
    assert "Иван Петров" in pdf_text(docs["group"])
    app.config["METER"].stop()


def test_names_in_other_scripts_render_in_a_german_document(data_dir, monkeypatch):
    app, client, admin = bill(data_dir, monkeypatch, "de")
    docs = documents(client, admin)
    summary = pdf_text(docs["summary"])
    for name in ("Zoë Ñúñez-Łukasiewicz", "Иван Петров", "王小明"):
        assert name in summary, name
    assert "Abrechnung für 王小明 wang@example.com" in pdf_text(docs["wang"])
    app.config["METER"].stop()


def amounts(text: str, lang: str) -> list[Decimal]:
    """Every money figure of a text, in order, as numbers."""
    if lang == "en":
        return [Decimal(a.replace(",", "")) for a in re.findall(r"-?\$([\d,]+\.\d\d)", text)]
    return [Decimal(a.replace(".", "").replace(",", ".")) for a in re.findall(r"(-?[\d.]+,\d\d) \$", text)]


def test_the_german_summary_has_the_english_totals_to_the_cent(data_dir, monkeypatch):
    """The same ledger under two settings: every figure of the summary's table is the same."""
    app, client, admin = bill(data_dir, monkeypatch, "en", METER_MARKUP_PERCENT="7.5", METER_BASE_FEE="0.333")
    answer(client, "odd", BOB, 0.005, days_ago=2)  # half a cent: rounded once from the exact sum
    english = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    usage = ledger(client, admin, group_by="user")
    app.config["METER"].stop()
    app, client, admin = make_app(data_dir, monkeypatch, METER_LANGUAGE="de", METER_ORG_NAME="Acme Research", METER_PAYMENT_TERMS_DAYS="14",
                                  METER_BALANCES_ENABLED="true", METER_MARKUP_PERCENT="7.5", METER_BASE_FEE="0.333")
    german = pdf_text(client.get("/api/v1/reports/summary.pdf?month=2026-11", headers=admin).data)
    en_table = english[english.index("User Answers Usage Fees Total due"):english.index("Open WebUI tasks")]
    de_table = german[german.index("Nutzer Antworten Nutzung Gebühren Zu zahlen"):german.index("Aufgaben von Open WebUI")]
    assert amounts(en_table, "en") == amounts(de_table, "de") and len(amounts(de_table, "de")) == 3 * (len(usage["rows"]) + 1)  # users and the total row
    en_total = re.search(r"Total (\S+) \$(\S+) \$(\S+) \$(\S+)", en_table).groups()
    de_total = re.search(r"Summe (\S+) (\S+) \$ (\S+) \$ (\S+) \$", de_table).groups()
    assert en_total[0] == f"{usage['total']['answers']:,}" and de_total[0] == count(usage["total"]["answers"], "de")
    assert Decimal(en_total[1].replace(",", "")) == cents(usage["total"]["cost_nano"]) == amounts(de_total[1] + " $", "de")[0]
    assert [Decimal(x.replace(",", "")) for x in en_total[2:]] == [amounts(x + " $", "de")[0] for x in de_total[2:]]
    # every other figure of the summary too: group subtotals, budgets, top models
    assert amounts(english[english.index("By group"):], "en") == amounts(german[german.index("Nach Gruppe"):], "de")
    app.config["METER"].stop()


@pytest.mark.parametrize("value", ["xx", "german", "de-DE", "en,de"])
def test_an_unknown_language_is_refused(value):
    with pytest.raises(SettingsError, match=r"METER_LANGUAGE must be one of en, de, fr, es, zh, got"):
        settings.load({"METER_LANGUAGE": value})


def test_language_names_any_case_and_default_english():
    assert settings.load({}).METER_LANGUAGE == "en"
    assert settings.load({"METER_LANGUAGE": " DE "}).METER_LANGUAGE == "de"


def test_an_unknown_language_stops_the_start(data_dir):
    result = run(data_dir, "serve", METER_LANGUAGE="klingon")
    assert result.returncode == 2
    assert "METER_LANGUAGE must be one of en, de, fr, es, zh, got 'klingon'" in result.stderr and "Traceback" not in result.stderr


def test_every_language_has_every_phrase_with_the_same_fields():
    def fields(phrase):
        return sorted(name for _, name, _, _ in string.Formatter().parse(phrase) if name)
    english = DOCUMENTS["en"]
    for lang, table in DOCUMENTS.items():
        assert table.keys() == english.keys(), (lang, table.keys() ^ english.keys())
        for key, phrase in table.items():
            forms = phrase if isinstance(phrase, tuple) else (phrase,)
            assert isinstance(phrase, tuple) == isinstance(english[key], tuple) and len(forms) in (1, 2), (lang, key)
            reference = english[key] if isinstance(english[key], tuple) else (english[key],)
            for form, ref in zip(forms, reference):
                assert fields(form) == fields(ref), (lang, key, form)


def test_dates_and_plurals_by_language():
    from owui_meter import words

    first = dt.date(2026, 11, 1)
    assert [words.date(first, lang) for lang in ("en", "de", "fr", "es", "zh")] == [
        "01 November 2026", "1. November 2026", "1er novembre 2026", "1 de noviembre de 2026", "2026年11月1日"]
    assert [words.month(first, lang) for lang in ("de", "es", "zh")] == ["November 2026", "noviembre de 2026", "2026年11月"]
    # French counts 0 and 1 as one; Chinese has one form
    assert [words.is_many(n, "fr") for n in (0, 1, 2)] == [False, False, True]
    assert [words.is_many(n, "de") for n in (0, 1, 2)] == [True, False, True]
    assert not words.is_many(5, "zh")


def test_the_notices_and_the_documents_write_money_by_one_rule():
    """The line above an answer (notices) and the documents share owui_meter.words; the sign's
    place and each language's separators, and a euro or another currency on a document."""
    from owui_meter import notices, words

    nano = 1_234_560_000_000  # $1,234.56
    assert [notices.money(nano, lang, 2) for lang in ("en", "de", "fr", "es", "zh")] == [
        "$1,234.56", "1.234,56\u00a0$", "1\u202f234,56\u00a0$", "1.234,56\u00a0US$", "US$1,234.56"]
    assert [words.money(Decimal("1234.56"), lang) for lang in ("en", "de", "fr", "es", "zh")] == [
        notices.money(nano, lang, 2) for lang in ("en", "de", "fr", "es", "zh")]
    assert notices.money(12_300_000, "de") == "0,0123\u00a0$"  # a single answer keeps its digits
    assert words.money(Decimal("-1.75"), "de") == "-1,75\u00a0$" and words.money(Decimal("-1.75"), "en") == "-$1.75"
    assert words.money(Decimal("9.00"), "de", "EUR") == "9,00\u00a0€" and words.money(Decimal("9.00"), "en", "EUR") == "€9.00"
    assert words.money(Decimal("3.35"), "fr", "CHF") == "3,35\u00a0CHF" and words.percent(Decimal("13.66"), "fr") == "13,7\u202f%"


@pytest.mark.parametrize("lang, headings", [("en", ("Answers", "Input tokens", "Output tokens")), ("de", ("Antworten", "Eingabe-Tokens", "Ausgabe-Tokens")),
                                            ("es", ("Respuestas",)), ("fr", ("Réponses",))])
def test_long_model_ids_and_headings_are_never_broken_inside_a_word(data_dir, monkeypatch, lang, headings):
    app, client, admin = make_app(data_dir, monkeypatch, METER_LANGUAGE=lang, METER_BALANCES_ENABLED="true")
    answer(client, "long", ADA, 1.5, model="meta-llama/llama-3.3-70b-instruct")
    assert client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 10, "note": "Q4"}, headers=admin).status_code == 201
    content = pdf_text(client.get(f"/api/v1/reports/user/{ADA['id']}.pdf?month=2026-11", headers=admin).data)
    assert "meta-llama/llama-3.3-70b-instruct" in content
    for heading in headings:
        assert heading in content, heading
    app.config["METER"].stop()
