"""PDF statements (per user, per group) and the period summary, with reportlab platypus.

Figures come from the daily totals and their rollups (which outlive retention pruning) for local days in
METER_TIMEZONE. Every user-supplied string is escaped before it reaches a Paragraph, which would
otherwise read it as markup. DejaVu Sans is embedded so Latin, Greek and Cyrillic names render.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import zoneinfo
from decimal import ROUND_CEILING, Decimal
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from . import __version__, clock
from .billing import charges, convert, money
from .db import get_meta
from .ledger import UNATTRIBUTED, UNATTRIBUTED_LABEL, is_unattributed
from .periods import Period

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts/dejavu")
FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"


class ReportError(Exception):
    pass


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    for folder in FONT_DIRS:
        regular, bold = os.path.join(folder, "DejaVuSans.ttf"), os.path.join(folder, "DejaVuSans-Bold.ttf")
        if os.path.exists(regular) and os.path.exists(bold):
            pdfmetrics.registerFont(TTFont(FONT, regular))
            pdfmetrics.registerFont(TTFont(BOLD, bold))
            return
    raise ReportError("DejaVu Sans is not installed (Debian: apt-get install fonts-dejavu-core)")


def _styles():
    return {
        "title": ParagraphStyle("title", fontName=BOLD, fontSize=16, leading=20, spaceAfter=4),
        "h2": ParagraphStyle("h2", fontName=BOLD, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4, keepWithNext=1),
        "body": ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12),
        "small": ParagraphStyle("small", fontName=FONT, fontSize=7.5, leading=10, textColor=colors.HexColor("#555555")),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=8.5, leading=11),
    }


def text(value) -> str:
    """A user-supplied value, safe inside a Paragraph."""
    return escape("" if value is None else str(value))


def _table(rows, widths, header=True, money_cols=()):
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 8.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style += [("FONT", (0, 0), (-1, 0), BOLD, 8.5), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f4f7"))]
    # across a page break (the header repeats): never a header with one row under it, nor a
    # last row (the total) alone at the top of a page
    if len(rows) > 3:
        style += [("NOSPLIT", (0, 0), (-1, 2 if header else 1)), ("NOSPLIT", (0, -2), (-1, -1))]
    for col in money_cols:
        style.append(("ALIGN", (col, 0), (col, -1), "RIGHT"))
    table.setStyle(TableStyle(style))
    return table


def axis_steps(top: Decimal) -> tuple[Decimal, Decimal]:
    """A value axis from 0 whose highest tick is at or above ``top``: (highest tick, step), the
    step 1, 2, 2.5 or 5 times a power of ten and at least a cent (ticks are labelled in cents),
    at most five steps."""
    if top <= 0:
        return Decimal(1), Decimal("0.25")
    magnitude = max(Decimal(10) ** (top / 5).adjusted(), Decimal("0.01"))
    for multiple in (1, 2, Decimal("2.5"), 5, 10):
        step = magnitude * multiple
        if step * 5 >= top:
            break
    return step * (top / step).to_integral_value(rounding=ROUND_CEILING), step


def _chart(points: list[tuple[str, int]], rate: Decimal, currency: str) -> Drawing:
    drawing = Drawing(170 * mm, 44 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 16 * mm, 7 * mm, 152 * mm, 34 * mm
    values = [convert(v, rate) for _, v in points] or [Decimal(0)]
    chart.data = [[float(v) for v in values]]
    chart.categoryAxis.categoryNames = [d[-2:] for d, _ in points] or [""]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 6.5
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    # the highest tick is at or above the highest bar, and each tick says what it is in money
    highest, step = axis_steps(max(values))
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, float(highest), float(step)
    chart.valueAxis.labelTextFormat = lambda v: money(Decimal(f"{v:.2f}"), currency)
    chart.bars[0].fillColor = colors.HexColor("#3559e0")
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    return drawing


class NumberedCanvas(Canvas):
    """Writes "Page 1 of 2" and the statement number at the foot of every page: pages are held
    back until the last is known, then drawn with the count."""

    footer = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        for page in self._pages:
            self.__dict__.update(page)
            self.setFont(FONT, 7.5)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(18 * mm, 9 * mm, self.footer)
            self.drawRightString(A4[0] - 18 * mm, 9 * mm, f"Page {self._pageNumber} of {len(self._pages)}")
            super().showPage()
        super().save()


def _build(story, footer: str = "") -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
                            title="Statement", creator=f"owui-meter {__version__}")
    canvas = type("Canvas", (NumberedCanvas,), {"footer": footer})
    doc.build(story, canvasmaker=canvas)
    return buffer.getvalue()


# what each kind of unconfirmed cost is, in words for the reader of a bill: (cost source, awaiting OpenRouter?)
COST_WORDS = {
    ("inline", True): "as reported with the answer, awaiting OpenRouter's confirmation",
    ("inline", False): ("imported history, or answers OpenRouter keeps no record of, at the cost reported at the time; "
                        "there is nothing to confirm them against, so they stay as they are"),
    ("estimate", True): "estimated from tokens and the model's price, awaiting OpenRouter's confirmation",
    ("estimate", False): "estimated from tokens and the model's price",
    ("pending", True): "awaiting OpenRouter's confirmation (counted as $0 so far)",
    ("pending", False): "without a cost (counted as $0)",
    ("unpriced", True): "without any known price (counted as $0)",
    ("unpriced", False): "without any known price (counted as $0)",
}


def _notes(meter, where: str, params: tuple, period: Period, totals: dict, rate: Decimal, currency: str, styles) -> list:
    notes = []
    if totals["cost"]:
        share = 100 * Decimal(totals["confirmed"]) / Decimal(totals["cost"])
        notes.append(Paragraph(f"{share:.1f}% of the usage was confirmed against OpenRouter's own record of each generation.", styles["small"]))
    rows = meter.db.query(
        f"""SELECT cost_source, lookup_state = 'pending' AS waiting, count(*) AS n, coalesce(sum(cost_nano), 0) AS cost
            FROM events WHERE {where} AND ts >= ? AND ts < ? AND cost_source != 'generation' GROUP BY 1, 2 ORDER BY 1, 2""",
        (*params, period.start_ms, period.end_ms),
    )
    for row in rows:
        words = COST_WORDS.get((row["cost_source"], bool(row["waiting"])))
        if words and row["n"]:
            verb = "was" if row["n"] == 1 else "were"
            notes.append(Paragraph(f"{plural(row['n'], 'answer')} ({money(convert(row['cost'], rate), currency)}) {verb} {words}.", styles["small"]))
    notes += _split_notes(meter, where, params, period, totals["cost"], rate, currency, styles)
    pruned = get_meta(meter.db, "retention.pruned_before")
    if pruned and int(pruned) > period.start_ms:
        notes.append(Paragraph("Answers before " + clock.ms_to_iso(int(pruned))[:10] + " were pruned by the retention policy; "
                               "their figures come from the daily totals that were kept.", styles["small"]))
    if rate != 1 or currency.upper() != "USD":
        notes.append(Paragraph(f"Amounts converted from US dollars at a fixed rate of 1 USD = {rate.normalize():f} {text(currency)}.", styles["small"]))
    notes.append(Paragraph("Amounts are rounded to the cent, half to even, from the exact figures; a table's total is rounded from "
                           "the exact sum, so its rows may differ from it by a cent. Charges are rounded line by line and their total "
                           "is the sum of those lines.", styles["small"]))
    return notes


def reconciliation_words(rec: dict) -> str:
    """How the comparison with OpenRouter was made, in words for a finance reader (the API's
    ``precision`` text names settings and fields, which a bill must not)."""
    only = ("Only OpenRouter's own charges are compared; for answers through the team's own provider keys that is "
            "OpenRouter's fee, and the providers bill the rest.")
    if rec["openrouter_nano"] is None:
        return ("OpenRouter's figure for this period is unknown: the meter compares with periodic readings of what "
                "OpenRouter counts for its key, and has none from both before and after this period. " + only)
    return (f"Compared between the readings of OpenRouter's running total at {rec['compared_from']} and {rec['compared_to']}; "
            "answers billed close to a reading can fall on either side of it. " + only)


def slug(value: str) -> str:
    """A piece of a file name from a name, email or id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-")[:60] or "user"


def file_name(kind: str, who: str | None, period: Period) -> str:
    """The one file-name scheme for downloads, the ZIP and ``owui-meter report``:
    ``statement-<who>-2026-11.pdf``, ``group-<who>-…``, ``summary-2026-11.pdf``."""
    return f"{kind}-{slug(who)}-{period.slug}.pdf" if who is not None else f"{kind}-{period.slug}.pdf"


def user_file_name(user: dict, period: Period) -> str:
    """A user's statement: ``statement-<email or id>-<period>.pdf`` (the same for the download, the ZIP and the CLI)."""
    return file_name("statement", user["email"] or user["id"], period)


def group_file_name(group: dict, period: Period) -> str:
    """A group's statement: ``group-<name or id>-<period>.pdf``."""
    return file_name("group", group["name"] or group["id"], period)


def documents(meter, period: Period):
    """(file name, PDF bytes) for the summary, every statement with usage in the period and every
    group with a member who has usage, made one at a time so a caller can write each before the
    next is built."""
    yield file_name("summary", None, period), summary(meter, period)
    for row in summary_rows(meter, period):
        yield user_file_name({"email": row["email"], "id": row["user_id"]}, period), user_statement(meter, row["user_id"], period)
    groups = meter.db.query(
        """SELECT g.id, g.name FROM groups g WHERE EXISTS (
               SELECT 1 FROM group_members gm JOIN usage_day_user d ON d.user_id = gm.user_id
               WHERE gm.group_id = g.id AND d.day BETWEEN ? AND ? AND d.answers > 0)
           ORDER BY lower(g.name), g.id""",
        period.days,
    )
    for group in groups:
        yield group_file_name(group, period), group_statement(meter, group["id"], period)


def _split_notes(meter, where: str, params: tuple, period: Period, usage_nano: int, rate: Decimal, currency: str, styles) -> list:
    """Where bring-your-own-key answers occur, who charged the usage; and what prompt caching saved.
    Both parts are rounded to the cent the way the usage line is, so they add up to it on paper."""
    row = meter.db.query_one(
        f"""SELECT coalesce(sum(provider_cost_nano), 0) AS provider, coalesce(sum(cache_discount_nano), 0) AS cache
            FROM usage_daily WHERE (provider_cost_nano != 0 OR cache_discount_nano != 0) AND {where} AND day BETWEEN ? AND ?""",
        (*params, *period.days),
    )
    notes = []
    if row["provider"]:
        usage, provider = convert(usage_nano, rate), convert(row["provider"], rate)
        notes.append(Paragraph(f"Usage {money(usage, currency)} = provider {money(provider, currency)} (answers through the team's own "
                               f"provider keys, billed by the providers) + OpenRouter {money(usage - provider, currency)} (on those answers only "
                               "its fee).", styles["small"]))
    if row["cache"] > 0:
        notes.append(Paragraph(f"Saved by prompt caching: {money(convert(row['cache'], rate), currency)}.", styles["small"]))
    elif row["cache"] < 0:
        notes.append(Paragraph(f"Prompt caching cost {money(convert(-row['cache'], rate), currency)} more than it saved (cache writes).", styles["small"]))
    return notes


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 answer``, ``2,314 answers``: a count with a thousands separator and the right noun."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def finality(meter, where: str, params: tuple, period: Period) -> dict:
    """Whether a document is final: its period has ended and no answer in it awaits OpenRouter's
    confirmation of its cost. Otherwise its figures can still change: it is provisional."""
    row = meter.db.query_one(
        f"""SELECT count(*) AS n, coalesce(sum(cost_nano), 0) AS cost FROM events
            WHERE lookup_state = 'pending' AND {where} AND ts >= ? AND ts < ?""",
        (*params, period.start_ms, period.end_ms),
    )
    ended = clock.now_ms() >= period.end_ms
    return {"ended": ended, "pending": row["n"], "pending_nano": row["cost"], "final": ended and not row["n"]}


def _finality_line(meter, state: dict, period: Period, styles) -> Paragraph:
    s = meter.settings
    if state["final"]:
        now = dt.datetime.fromtimestamp(clock.now(), tz=zoneinfo.ZoneInfo(s.METER_TIMEZONE))
        return Paragraph(f"<b>Final.</b> Finalised on {now:%d %B %Y at %H:%M}: the period has ended and the cost of every "
                         "answer in it is settled.", styles["body"])
    reasons = []
    if not state["ended"]:
        reasons.append(f"the period runs until the end of {period.end:%d %B %Y}")
    if state["pending"]:
        amount = money(convert(state["pending_nano"], s.METER_USD_RATE), s.METER_CURRENCY)
        reasons.append(f"{plural(state['pending'], 'answer')} ({amount} so far) "
                       f"{'is' if state['pending'] == 1 else 'are'} still awaiting OpenRouter's confirmation of the cost")
    return Paragraph(f"<b>Provisional:</b> {'; '.join(reasons)}. The figures can still change.", styles["body"])


def statement_number(kind: str, key: str, period: Period) -> str:
    digest = hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:6].upper()
    return f"{period.start:%Y%m%d}-{period.end:%Y%m%d}-{digest}"


def address_lines(value: str | None) -> list[str]:
    """METER_ORG_ADDRESS as lines: real line breaks or ``\\n`` separate them."""
    return [line.strip() for line in (value or "").replace("\\n", "\n").splitlines() if line.strip()]


def _header(meter, title: str, number: str, period: Period, styles, state: dict, recipient: list[str] | None = None) -> list:
    """Sender (left) and the document's facts (right), the title and whether it is final, then who
    it is for. The due date is printed only when payment terms are set, and only on a bill."""
    s = meter.settings
    issued = dt.datetime.fromtimestamp(clock.now(), tz=zoneinfo.ZoneInfo(s.METER_TIMEZONE)).date()
    sender = []
    if s.METER_ORG_NAME:
        sender.append(Paragraph(f"<b>{text(s.METER_ORG_NAME)}</b>", styles["body"]))
    sender += [Paragraph(text(line), styles["body"]) for line in address_lines(s.METER_ORG_ADDRESS)]
    if s.METER_ORG_TAX_ID:
        sender.append(Paragraph(f"Tax ID: {text(s.METER_ORG_TAX_ID)}", styles["body"]))
    facts = [["Statement no.", number], ["Issued", f"{issued:%d %B %Y}"]]
    if recipient is not None and s.METER_PAYMENT_TERMS_DAYS is not None:
        facts.append(["Due", f"{issued + dt.timedelta(days=s.METER_PAYMENT_TERMS_DAYS):%d %B %Y}"])
    facts.append(["Period", Paragraph(f"{period} ({text(s.METER_TIMEZONE)})", styles["cell"])])
    facts_table = Table(facts, colWidths=[26 * mm, 60 * mm])
    facts_table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 8.5), ("FONT", (0, 0), (0, -1), BOLD, 8.5),
                                     ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    top = Table([[sender or "", facts_table]], colWidths=[84 * mm, 86 * mm], hAlign="LEFT")
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    story = [top, Spacer(1, 5 * mm),
             Paragraph(title if state["final"] else f"{title} — Provisional", styles["title"]),
             _finality_line(meter, state, period, styles)]
    if recipient:
        story += [Spacer(1, 3 * mm), Paragraph("Statement for", styles["small"])]
        story += [Paragraph(f"<b>{line}</b>" if i == 0 else line, styles["body"]) for i, line in enumerate(recipient)]
    return story + [Spacer(1, 4 * mm)]


def _charge_rows(c) -> list:
    rows = [[line.label, money(line.amount, c.currency)] for line in c.lines]
    rows.append(["Total", money(c.total, c.currency)])
    return rows


def user_figures(meter, user_id: str, period: Period) -> dict:
    models = meter.db.query(
        """SELECT model, sum(answers) AS answers, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
                  sum(cost_nano) AS cost, sum(confirmed_cost_nano) AS confirmed
           FROM usage_daily WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC, model""",
        (user_id, *period.days),
    )
    totals = {k: sum(m[k] for m in models) for k in ("answers", "prompt", "completion", "cost", "confirmed")}
    return {"models": models, "totals": totals}


def user_statement(meter, user_id: str, period: Period) -> bytes:
    _register_fonts()
    user = meter.db.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
    if user is None or is_unattributed(user_id):  # unattributed spend is no one's to be billed
        raise LookupError(user_id)
    s, styles = meter.settings, _styles()
    figures = user_figures(meter, user_id, period)
    totals, rate, currency = figures["totals"], s.METER_USD_RATE, s.METER_CURRENCY
    c = charges(s, totals["cost"], totals["answers"])
    state = finality(meter, "user_id = ?", (user_id,), period)
    groups = [g["name"] for g in meter.db.query(
        "SELECT g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ? ORDER BY lower(g.name)", (user_id,))]
    recipient = [text(user["name"] or user["email"] or user["id"])]
    if user["email"] and user["name"]:
        recipient.append(text(user["email"]))
    if groups:
        recipient.append(("Group: " if len(groups) == 1 else "Groups: ") + ", ".join(text(g) for g in groups))
    number = statement_number("user", user_id, period)
    story = _header(meter, "Usage statement", number, period, styles, state, recipient)
    rows = [["Model", "Answers", "Input tokens", "Output tokens", "Cost"]]
    for m in figures["models"]:
        rows.append([Paragraph(text(m["model"]), styles["cell"]), f"{m['answers']:,}", f"{m['prompt']:,}", f"{m['completion']:,}", money(convert(m["cost"], rate), currency)])
    rows.append(["Subtotal", f"{totals['answers']:,}", f"{totals['prompt']:,}", f"{totals['completion']:,}", money(convert(totals["cost"], rate), currency)])
    story.append(_table(rows, [70 * mm, 20 * mm, 27 * mm, 27 * mm, 30 * mm], money_cols=(1, 2, 3, 4)))
    tasks = task_line(meter, "user_id = ?", (user_id,), period, styles)
    if tasks is not None:
        story += [Spacer(1, 2 * mm), tasks]
    daily = {r["day"]: r["cost"] for r in meter.db.query(
        "SELECT day, sum(cost_nano) AS cost FROM usage_day_user WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY day", (user_id, *period.days))}
    points = [((period.start + dt.timedelta(days=i)).isoformat(), 0) for i in range((period.end - period.start).days + 1)]
    if totals["answers"]:
        story += [Paragraph("Cost per day", styles["h2"]), _chart([(d, daily.get(d, 0)) for d, _ in points], rate, currency)]
    else:
        story.append(Paragraph("No usage in this period.", styles["body"]))
    story += [Paragraph("Charges", styles["h2"]), _table(_charge_rows(c), [144 * mm, 30 * mm], header=False, money_cols=(1,))]
    story[-1].setStyle(TableStyle([("FONT", (0, -1), (-1, -1), BOLD, 9)]))
    balance = balance_figures(meter, user_id, period)
    if balance is not None:
        story += _balance_section(meter, balance, styles)
    story += [Spacer(1, 4 * mm)] + _notes(meter, "user_id = ?", (user_id,), period, totals, rate, currency, styles)
    return _build(story, f"Statement no. {number}")


def task_line(meter, where: str, params: tuple, period: Period, styles):
    """Open WebUI's own task calls (titles, tags, follow-ups; source 'task', seen by the
    pass-through) as their own line; None when there were none. They are part of the usage above."""
    row = meter.db.query_one(
        f"""SELECT coalesce(sum(answers), 0) AS n, coalesce(sum(cost_nano), 0) AS cost FROM usage_daily
            WHERE source = 'task' AND {where} AND day BETWEEN ? AND ?""",
        (*params, *period.days),
    )
    if not row["n"]:
        return None
    s = meter.settings
    return Paragraph(f"Open WebUI tasks (titles, tags, follow-ups): {plural(row['n'], 'call')}, "
                     f"{money(convert(row['cost'], s.METER_USD_RATE), s.METER_CURRENCY)}; included in the usage above.", styles["body"])


def balance_figures(meter, user_id: str, period: Period) -> dict | None:
    """A prepaid user's balance over the period: opening, top-ups (and adjustments), usage,
    closing; None for a user without a balance. Usage deducts as the balance does: the answers
    recorded after the balance began (event ids above ``after_event``)."""
    balance = meter.db.query_one("SELECT after_event FROM balances WHERE user_id = ?", (user_id,))
    if balance is None:
        return None
    credit_before = meter.db.query_one("SELECT coalesce(sum(amount_nano), 0) AS n FROM balance_entries WHERE user_id = ? AND ts < ?",
                                       (user_id, period.start_ms))["n"]
    entries = meter.db.query("SELECT ts, amount_nano, note FROM balance_entries WHERE user_id = ? AND ts >= ? AND ts < ? ORDER BY ts, id",
                             (user_id, period.start_ms, period.end_ms))
    used = meter.db.query_one(
        """SELECT coalesce(sum(CASE WHEN ts < ? THEN cost_nano ELSE 0 END), 0) AS before,
                  coalesce(sum(CASE WHEN ts >= ? THEN cost_nano ELSE 0 END), 0) AS during
           FROM events WHERE user_id = ? AND id > ? AND ts < ?""",
        (period.start_ms, period.start_ms, user_id, balance["after_event"], period.end_ms),
    )
    opening = credit_before - used["before"]
    return {"opening": opening, "entries": entries, "usage": used["during"],
            "closing": opening + sum(e["amount_nano"] for e in entries) - used["during"]}


def _balance_section(meter, figures: dict, styles) -> list:
    s = meter.settings
    rate, currency = s.METER_USD_RATE, s.METER_CURRENCY
    zone = zoneinfo.ZoneInfo(s.METER_TIMEZONE)
    rows = [["Opening balance", "", money(convert(figures["opening"], rate), currency)]]
    for e in figures["entries"]:
        day = dt.datetime.fromtimestamp(e["ts"] / 1000, tz=zone)
        label = "Top-up" if e["amount_nano"] >= 0 else "Adjustment"
        rows.append([f"{label} {day:%d %B %Y}", Paragraph(text(e["note"]), styles["cell"]), money(convert(e["amount_nano"], rate), currency)])
    rows.append(["Usage", "", money(-convert(figures["usage"], rate), currency)])
    rows.append(["Closing balance", "", money(convert(figures["closing"], rate), currency)])
    table = _table(rows, [50 * mm, 94 * mm, 30 * mm], header=False, money_cols=(2,))
    table.setStyle(TableStyle([("FONT", (0, -1), (-1, -1), BOLD, 8.5)]))
    return [Paragraph("Prepaid balance", styles["h2"]), table,
            Paragraph("Each amount is rounded to the cent from the exact figure; the closing balance is rounded from the exact "
                      "balance, so the lines may differ from it by a cent.", styles["small"])]


def shared_budgets(meter, group_id: str, period: Period) -> list[dict]:
    """The group's shared budgets, each with what its members spent of it in the budget period
    that holds the statement's last day (or today, for a period not over yet)."""
    from .budgets import allowance_start, period_start

    zone = zoneinfo.ZoneInfo(meter.settings.METER_TIMEZONE)
    day = min(dt.datetime.fromtimestamp(clock.now(), tz=zone).date(), period.end)
    result = []
    for budget in meter.db.query("SELECT * FROM budgets WHERE scope = 'group' AND scope_id = ? AND group_mode = 'shared' ORDER BY id", (group_id,)):
        if budget["period"] == "none":
            start, label = allowance_start(budget), "since " + f"{dt.datetime.fromtimestamp(budget['since'] / 1000, tz=zone):%d %B %Y}"
        else:
            start, _ = period_start(budget["period"], day)
            first = dt.date.fromisoformat(start)
            label = {"day": f"on {first:%d %B %Y}", "week": f"in the week from {first:%d %B %Y}",
                     "month": f"in {first:%B %Y}"}[budget["period"]]
        spent = meter.db.query_one(
            """SELECT coalesce(sum(s.cost_nano), 0) AS n FROM group_members m
               JOIN spend s ON s.user_id = m.user_id AND s.period = ? AND s.start = ? WHERE m.group_id = ?""",
            (budget["period"], start, group_id),
        )["n"]
        result.append({"label": label, "spent": spent, "limit": budget["limit_nano"]})
    return result


GROUP_RULE = ("Each member is charged as on their own statement: usage, markup, base fee and minimum charge apply to "
              "each member separately, and the group's total due is the sum of its members' charges.")


def group_statement(meter, group_id: str, period: Period) -> bytes:
    _register_fonts()
    group = meter.db.query_one("SELECT * FROM groups WHERE id = ?", (group_id,))
    if group is None:
        raise LookupError(group_id)
    s, styles = meter.settings, _styles()
    members = meter.db.query(
        """SELECT u.id, u.name, u.email, coalesce(sum(d.answers), 0) AS answers, coalesce(sum(d.cost_nano), 0) AS cost,
                  coalesce(sum(d.confirmed_cost_nano), 0) AS confirmed
           FROM group_members gm JOIN users u ON u.id = gm.user_id
           LEFT JOIN usage_day_user d ON d.user_id = u.id AND d.day BETWEEN ? AND ?
           WHERE gm.group_id = ? GROUP BY u.id ORDER BY cost DESC, lower(coalesce(u.name, u.email, u.id))""",
        (*period.days, group_id),
    )
    rate, currency = s.METER_USD_RATE, s.METER_CURRENCY
    totals = {"answers": sum(m["answers"] for m in members), "cost": sum(m["cost"] for m in members), "confirmed": sum(m["confirmed"] for m in members)}
    # the one rule for groups: a group statement collects its members' statements, so what the
    # group is billed never differs from what its members' own statements say
    for m in members:
        m["charges"] = charges(s, m["cost"], m["answers"])
    due = sum((m["charges"].total for m in members), Decimal("0.00"))
    marks = ",".join("?" * len(members)) or "''"
    state = finality(meter, f"user_id IN ({marks})", tuple(m["id"] for m in members), period)
    number = statement_number("group", group_id, period)
    recipient = [text(group["name"]), f"Group of {plural(len(members), 'member')}"]
    story = _header(meter, f"Group statement: {text(group['name'])}", number, period, styles, state, recipient)
    story.append(Paragraph(GROUP_RULE, styles["body"]))
    story.append(Spacer(1, 3 * mm))
    rows = [["Member", "Email", "Answers", "Usage", "Charged"]]
    rows += [[Paragraph(text(m["name"] or m["id"]), styles["cell"]), Paragraph(text(m["email"] or ""), styles["cell"]), f"{m['answers']:,}",
              money(convert(m["cost"], rate), currency), money(m["charges"].total, currency)] for m in members]
    rows.append(["Total", "", f"{totals['answers']:,}", money(convert(totals["cost"], rate), currency), money(due, currency)])
    story.append(_table(rows, [52 * mm, 56 * mm, 18 * mm, 24 * mm, 24 * mm], money_cols=(2, 3, 4)))
    story += [Spacer(1, 3 * mm), _table([["Total due", money(due, currency)]], [144 * mm, 30 * mm], header=False, money_cols=(1,))]
    story[-1].setStyle(TableStyle([("FONT", (0, 0), (-1, -1), BOLD, 9)]))
    ids = tuple(m["id"] for m in members)
    models = meter.db.query(
        f"""SELECT model, sum(answers) AS answers, sum(cost_nano) AS cost FROM usage_daily
            WHERE user_id IN ({marks}) AND day BETWEEN ? AND ? GROUP BY model HAVING sum(answers) > 0 ORDER BY cost DESC, model""",
        (*ids, *period.days),
    )
    if models:
        rows = [["Model", "Answers", "Cost"]] + [[Paragraph(text(m["model"]), styles["cell"]), f"{m['answers']:,}", money(convert(m["cost"], rate), currency)] for m in models]
        story += [Paragraph("Models", styles["h2"]), _table(rows, [110 * mm, 30 * mm, 34 * mm], money_cols=(1, 2))]
    budgets = shared_budgets(meter, group_id, period)
    if budgets:
        story.append(Paragraph("Shared budget", styles["h2"]))
        for b in budgets:
            share = f" ({100 * Decimal(b['spent']) / Decimal(b['limit']):.1f}%)" if b["limit"] else ""
            story.append(Paragraph(f"Used {b['label']}: {money(convert(b['spent'], rate), currency)} of "
                                   f"{money(convert(b['limit'], rate), currency)}{share}.", styles["body"]))
    story += [Spacer(1, 4 * mm)] + _notes(meter, f"user_id IN ({marks})", tuple(m["id"] for m in members), period, totals, rate, currency, styles)
    return _build(story, f"Statement no. {number}")


def summary_rows(meter, period: Period) -> list[dict]:
    """Every user with usage in the period, with their charges (what the summary shows).

    Spend not attributed to a user is not among them: it has no statement and no charges; see
    :func:`unattributed_figures`.
    """
    rows = meter.db.query(
        """SELECT d.user_id, u.name, u.email, sum(d.answers) AS answers, sum(d.cost_nano) AS cost, sum(d.confirmed_cost_nano) AS confirmed
           FROM usage_day_user d LEFT JOIN users u ON u.id = d.user_id WHERE d.day BETWEEN ? AND ? AND d.user_id != ?
           GROUP BY d.user_id HAVING sum(d.answers) > 0 ORDER BY cost DESC, d.user_id""",
        (*period.days, UNATTRIBUTED),
    )
    for row in rows:
        row["charges"] = charges(meter.settings, row["cost"], row["answers"])
    return rows


def unattributed_figures(meter, period: Period) -> dict:
    """Answers and cost in the period that belong to no user."""
    return meter.db.query_one(
        """SELECT coalesce(sum(answers), 0) AS answers, coalesce(sum(cost_nano), 0) AS cost, coalesce(sum(confirmed_cost_nano), 0) AS confirmed
           FROM usage_day_user WHERE user_id = ? AND day BETWEEN ? AND ?""",
        (UNATTRIBUTED, *period.days),
    )


def _group_subtotals(meter, rows: list[dict], rate: Decimal, currency: str, styles) -> list:
    """Per group: its members' answers, usage and what they are due (the sum of their statements,
    as on the group statement). A member of two groups counts in both."""
    by_user = {r["user_id"]: r for r in rows}
    table = [["Group", "Members", "Answers", "Usage", "Total due"]]
    for group in meter.db.query("SELECT id, name FROM groups ORDER BY lower(name), id"):
        members = [by_user[m["user_id"]] for m in meter.db.query("SELECT user_id FROM group_members WHERE group_id = ?", (group["id"],))
                   if m["user_id"] in by_user]
        if not members:
            continue
        table.append([Paragraph(text(group["name"] or group["id"]), styles["cell"]), f"{len(members):,}", f"{sum(m['answers'] for m in members):,}",
                      money(convert(sum(m["cost"] for m in members), rate), currency),
                      money(sum((m["charges"].total for m in members), Decimal("0.00")), currency)])
    if len(table) == 1:
        return []
    return [Paragraph("By group", styles["h2"]), _table(table, [70 * mm, 22 * mm, 22 * mm, 30 * mm, 30 * mm], money_cols=(1, 2, 3, 4)),
            Paragraph("Members with usage in the period; a member of several groups counts in each.", styles["small"])]


BUDGET_PERIODS = {"day": "per day", "week": "per week", "month": "per month", "none": "one-off"}


def _budgets_against_actual(meter, rows: list[dict], period: Period, rate: Decimal, currency: str, styles) -> list:
    """Each user's own budgets (theirs, or per member of a group or everyone) against what they
    spent of each in its period holding the end of the statement's (or now, if sooner)."""
    at_ms = min(clock.now_ms(), period.end_ms - 1)
    table = [["User", "Budget", "Spent", "Used"]]
    for r in rows:
        for state in meter.budgets.states(meter.db.query, r["user_id"], at_ms):
            if state.shared:  # on the group statement
                continue
            used = f"{100 * Decimal(state.spent) / Decimal(state.limit):.1f}%" if state.limit else "—"
            table.append([Paragraph(text(r["name"] or r["email"] or r["user_id"]), styles["cell"]),
                          f"{money(convert(state.limit, rate), currency)} {BUDGET_PERIODS[state.budget['period']]}",
                          money(convert(state.spent, rate), currency), used])
    if len(table) == 1:
        return []
    return [Paragraph("Budgets against actual spend", styles["h2"]), _table(table, [70 * mm, 50 * mm, 30 * mm, 24 * mm], money_cols=(2, 3)),
            Paragraph("Spent in each budget's own period (day, week, month or since a one-off allowance began) that holds the "
                      "end of this period.", styles["small"])]


def summary(meter, period: Period) -> bytes:
    from .reconcile import reconcile

    _register_fonts()
    s, styles = meter.settings, _styles()
    rate, currency = s.METER_USD_RATE, s.METER_CURRENCY
    rows = summary_rows(meter, period)
    number = statement_number("summary", "all", period)
    story = _header(meter, "Usage summary", number, period, styles, finality(meter, "1 = ?", (1,), period))
    # a Fees column only where fees are configured: otherwise it would be $0.00 on every row
    fees = bool(s.METER_MARKUP_PERCENT or s.METER_BASE_FEE or s.MINIMUM_CHARGE_FEE)
    table = [["User", "Answers", "Usage"] + (["Fees"] if fees else []) + ["Total due"]]
    for r in rows:
        usage = r["charges"].lines[0].amount
        table.append([Paragraph(text(r["name"] or r["email"] or r["user_id"]), styles["cell"]), f"{r['answers']:,}", money(usage, currency)]
                     + ([money(r["charges"].total - usage, currency)] if fees else []) + [money(r["charges"].total, currency)])
    # usage is rounded once from the exact sum (as on the dashboard); what is due is the sum of
    # the statements, each rounded line by line
    grand_usage = convert(sum(r["cost"] for r in rows), rate)
    grand_fees = sum((r["charges"].total - r["charges"].lines[0].amount for r in rows), Decimal("0.00"))
    grand_total = sum((r["charges"].total for r in rows), Decimal("0.00"))
    table.append(["Total", f"{sum(r['answers'] for r in rows):,}", money(grand_usage, currency)]
                 + ([money(grand_fees, currency)] if fees else []) + [money(grand_total, currency)])
    nobody = unattributed_figures(meter, period)
    if nobody["answers"]:  # after the total: it is spend, but no one's to pay
        table.append([UNATTRIBUTED_LABEL, f"{nobody['answers']:,}", money(convert(nobody["cost"], rate), currency)] + ([""] if fees else []) + ["not billed"])
    widths = [70 * mm, 22 * mm, 27 * mm] + ([27 * mm] if fees else []) + [28 * mm]
    widths[0] += 174 * mm - sum(widths)
    story.append(_table(table, widths, money_cols=tuple(range(1, len(widths)))))
    if not rows:
        story.append(Paragraph("No usage in this period.", styles["body"]))
    tasks = task_line(meter, "1 = ?", (1,), period, styles)
    if tasks is not None:
        story += [Spacer(1, 2 * mm), tasks]
    rounding = grand_total - grand_usage - grand_fees
    if rounding:
        story.append(Paragraph(f"The total due is the sum of the statements, each rounded to the cent line by line; it differs from "
                               f"the usage total rounded once, plus fees, by {money(rounding, currency)}.", styles["small"]))
    story += _group_subtotals(meter, rows, rate, currency, styles)
    story += _budgets_against_actual(meter, rows, period, rate, currency, styles)
    models = meter.db.query(
        "SELECT model, sum(answers) AS answers, sum(cost_nano) AS cost FROM usage_day_model WHERE day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC LIMIT 10",
        period.days,
    )
    story += [Paragraph("Top models", styles["h2"]),
              _table([["Model", "Answers", "Cost"]] + [[Paragraph(text(m["model"]), styles["cell"]), f"{m['answers']:,}", money(convert(m["cost"], rate), currency)] for m in models],
                     [110 * mm, 30 * mm, 34 * mm], money_cols=(1, 2))]
    rec = reconcile(meter, period.start_ms, period.end_ms)
    story.append(Paragraph("Reconciliation with OpenRouter", styles["h2"]))
    if rec["openrouter_nano"] is None:
        story.append(Paragraph(text(reconciliation_words(rec)), styles["body"]))
    else:
        recon = [["OpenRouter billed the key", money(convert(rec["openrouter_nano"], rate), currency)],
                 ["Attributed to answers in the ledger", money(convert(rec["ledger_nano"], rate), currency)],
                 ["Unattributed (titles, tags, follow-ups, other apps)", money(convert(rec["unattributed_nano"], rate), currency)]]
        story += [_table(recon, [144 * mm, 30 * mm], header=False, money_cols=(1,)), Paragraph(text(reconciliation_words(rec)), styles["small"])]
        total_cost = sum(r["cost"] for r in rows)
        if s.METER_ALLOCATE_UNATTRIBUTED and rec["unattributed_nano"] > 0 and total_cost:
            share = [["User", "Share of unattributed"]]
            for r in rows:
                part = rec["unattributed_nano"] * r["cost"] // total_cost
                share.append([Paragraph(text(r["name"] or r["email"] or r["user_id"]), styles["cell"]), money(convert(part, rate), currency)])
            story += [Paragraph("Unattributed spend shared by use", styles["h2"]), _table(share, [144 * mm, 30 * mm], money_cols=(1,))]
    totals = {"cost": sum(r["cost"] for r in rows) + nobody["cost"], "confirmed": sum(r["confirmed"] for r in rows) + nobody["confirmed"]}
    story += [Spacer(1, 4 * mm)] + _notes(meter, "1 = ?", (1,), period, totals, rate, currency, styles)
    return _build(story, f"Summary no. {number}")
