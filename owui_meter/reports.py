"""PDF statements (per user, per group) and the period summary, with reportlab platypus.

Figures come from the daily totals and their rollups (which outlive retention pruning) for local days in
METER_TIMEZONE. Every word is in METER_LANGUAGE (:mod:`words`: one file of words per language, and
each language's number, money and date formats). Every user-supplied string is escaped before it
reaches a Paragraph, which would otherwise read it as markup. DejaVu Sans is embedded so Latin,
Greek and Cyrillic names render; runs of Chinese, Japanese or Korean characters (the Chinese
documents' words, or a name in any document) are set in Adobe's STSong-Light, a CID font every
PDF reader supplies (reportlab needs no file for it, and it is not embedded).
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
from reportlab.lib.fonts import addMapping
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from . import __version__, clock
from .billing import charges, convert
from .db import get_meta
from .ledger import UNATTRIBUTED, is_unattributed, user_rows_sql
from .periods import Period
from .words import Words

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts/dejavu")
FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"
CJK_FONT = "STSong-Light"
# Han (with CJK punctuation, full-width forms), kana and Hangul: what DejaVu Sans has no glyphs for
CJK = re.compile("[\u2e80-\u2fdf\u3000-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")


class ReportError(Exception):
    pass


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    for folder in FONT_DIRS:
        regular, bold = os.path.join(folder, "DejaVuSans.ttf"), os.path.join(folder, "DejaVuSans-Bold.ttf")
        if os.path.exists(regular) and os.path.exists(bold):
            pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
            for bold_flag in (0, 1):  # STSong has no bold: <b> around Chinese text keeps it
                addMapping(CJK_FONT, bold_flag, 0, CJK_FONT)
            pdfmetrics.registerFont(TTFont(FONT, regular))
            pdfmetrics.registerFont(TTFont(BOLD, bold))
            # so <b> in a paragraph is DejaVu Sans Bold (without the family, reportlab keeps the regular face)
            pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)
            return
    raise ReportError("DejaVu Sans is not installed (Debian: apt-get install fonts-dejavu-core)")


def _styles(chinese: bool = False):
    """The paragraph styles. In Chinese, a line may break between any two CJK characters (there
    are no spaces to break at; a Latin word stays whole), and headings are not bold: the CJK font
    has no bold, and half-bold headings (the Latin words only) look broken."""
    wrap = {"wordWrap": "CJK"} if chinese else {}
    heading = FONT if chinese else BOLD
    return {
        "title": ParagraphStyle("title", fontName=heading, fontSize=16, leading=20, spaceAfter=4, **wrap),
        "h2": ParagraphStyle("h2", fontName=heading, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4, keepWithNext=1, **wrap),
        "body": ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, **wrap),
        "small": ParagraphStyle("small", fontName=FONT, fontSize=7.5, leading=10, textColor=colors.HexColor("#555555"), **wrap),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=8.5, leading=11, **wrap),
    }


def text(value) -> str:
    """A user-supplied value, safe inside a Paragraph."""
    return escape("" if value is None else str(value))


def para(markup: str) -> str:
    """Markup as a Paragraph should get it: each run of CJK characters set in the CJK font (tags
    and entities are ASCII, so a run never falls inside one); and a narrow no-break space (French
    digit groups, 1 234,56 $) as a no-break space, because reportlab breaks lines at U+202F and
    would split a figure, while it keeps U+00A0."""
    return CJK.sub(lambda m: f'<font name="{CJK_FONT}">{m.group()}</font>', markup).replace("\u202f", "\u00a0")


class Doc:
    """What every part of one document shares: the meter, its words (METER_LANGUAGE, in
    METER_CURRENCY), the rate, the time zone and the styles."""

    def __init__(self, meter):
        _register_fonts()
        s = meter.settings
        self.meter, self.settings, self.db = meter, s, meter.db
        self.w = Words(s.METER_LANGUAGE, s.METER_CURRENCY)
        self.rate = s.METER_USD_RATE
        self.zone = zoneinfo.ZoneInfo(s.METER_TIMEZONE)
        self.styles = _styles(chinese=self.w.lang == "zh")

    def usd(self, nano: int) -> str:
        """nano-USD as the document shows it: converted, rounded to the cent, in the language's way."""
        return self.w.money(convert(nano, self.rate))

    def p(self, markup: str, style: str = "body") -> Paragraph:
        return Paragraph(para(markup), self.styles[style])

    def cell(self, value) -> Paragraph:
        """A table cell of user-supplied text (a name, an email, a model), which may wrap."""
        return self.p(text(value), "cell")

    def local(self, ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, tz=self.zone)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(clock.now(), tz=self.zone)


def _cells(rows, header: bool = False, right=(), total: float | None = None, bold_cols=()) -> list:
    """The rows with some plain-text cells made paragraphs, bold and aligned as the plain cell
    would be: a heading (so a long one wraps rather than run into the next column, as German and
    French headings would), and any cell holding CJK characters (reportlab draws a plain cell in
    one font; a paragraph sets the CJK runs in the CJK font and the rest in DejaVu Sans)."""
    last = len(rows) - 1
    result = []
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            if isinstance(value, str) and ((header and r == 0) or CJK.search(value)):
                size = total if total and r == last else 8.5
                # bold as the plain cell, unless it holds CJK (no bold there: see _styles)
                bold = ((header and r == 0) or (total and r == last) or c in bold_cols) and not CJK.search(value)
                value = Paragraph(para(escape(value)), ParagraphStyle("cell", fontName=BOLD if bold else FONT, fontSize=size, leading=size + 2.5,
                                                                     alignment=2 if c in right else 0))
            cells.append(value)
        result.append(cells)
    return result


def _table(rows, widths, header=True, money_cols=(), total: float | None = None):
    """A table; ``total`` makes the last row bold in that size."""
    table = Table(_cells(rows, header, money_cols, total), colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 8.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style += [("FONT", (0, 0), (-1, 0), BOLD, 8.5), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f4f7"))]
    if total:
        style.append(("FONT", (0, -1), (-1, -1), BOLD, total))
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


def _chart(d: Doc, points: list[tuple[str, int]]) -> Drawing:
    drawing = Drawing(170 * mm, 44 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 20 * mm, 7 * mm, 148 * mm, 34 * mm
    values = [convert(v, d.rate) for _, v in points] or [Decimal(0)]
    chart.data = [[float(v) for v in values]]
    chart.categoryAxis.categoryNames = [day[-2:] for day, _ in points] or [""]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 6.5
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    # the highest tick is at or above the highest bar, and each tick says what it is in money
    highest, step = axis_steps(max(values))
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, float(highest), float(step)
    chart.valueAxis.labelTextFormat = lambda v: d.w.money(Decimal(f"{v:.2f}"))
    chart.bars[0].fillColor = colors.HexColor("#3559e0")
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    return drawing


def _draw_runs(canvas: Canvas, x: float, y: float, line: str, size: float, right: bool = False) -> None:
    """One line on the canvas, CJK runs in the CJK font and the rest in DejaVu Sans."""
    runs, at = [], 0
    for match in CJK.finditer(line):
        runs += [(FONT, line[at:match.start()]), (CJK_FONT, match.group())]
        at = match.end()
    runs = [(font, part) for font, part in runs + [(FONT, line[at:])] if part]
    if right:
        x -= sum(pdfmetrics.stringWidth(part, font, size) for font, part in runs)
    for font, part in runs:
        canvas.setFont(font, size)
        canvas.drawString(x, y, part)
        x += pdfmetrics.stringWidth(part, font, size)


class NumberedCanvas(Canvas):
    """Writes "Page 1 of 2" (in the document's language) and the statement number at the foot of
    every page: pages are held back until the last is known, then drawn with the count."""

    footer = ""
    page_words = "Page {page} of {pages}"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        for page in self._pages:
            self.__dict__.update(page)
            self.setFillColor(colors.HexColor("#555555"))
            _draw_runs(self, 18 * mm, 9 * mm, self.footer, 7.5)
            _draw_runs(self, A4[0] - 18 * mm, 9 * mm, self.page_words.format(page=self._pageNumber, pages=len(self._pages)), 7.5, right=True)
            super().showPage()
        super().save()


def _build(d: Doc, story, title: str, footer: str) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
                            title=title, creator=f"owui-meter {__version__}", lang=d.w.lang)
    canvas = type("Canvas", (NumberedCanvas,), {"footer": footer, "page_words": d.w("page")})
    doc.build(story, canvasmaker=canvas)
    return buffer.getvalue()


# what each kind of cost not confirmed by OpenRouter is, for the reader of a bill: (cost source,
# awaiting OpenRouter?) -> the counted phrase in the words files
COST_WORDS = {
    ("inline", True): "inline_waiting",
    ("inline", False): "inline_kept",  # imported history, or answers OpenRouter keeps no record of
    ("estimate", True): "estimate_waiting",
    ("estimate", False): "estimate_kept",
    ("pending", True): "pending_waiting",
    ("pending", False): "pending_kept",
    ("unpriced", True): "unpriced",
    ("unpriced", False): "unpriced",
}


def _notes(d: Doc, where: str, params: tuple, period: Period, totals: dict) -> list:
    w, notes = d.w, []
    if totals["cost"]:
        share = 100 * Decimal(totals["confirmed"]) / Decimal(totals["cost"])
        notes.append(d.p(w("confirmed_share", percent=w.percent(share)), "small"))
    rows = d.db.query(
        f"""SELECT cost_source, lookup_state = 'pending' AS waiting, count(*) AS n, coalesce(sum(cost_nano), 0) AS cost
            FROM events WHERE {where} AND ts >= ? AND ts < ? AND cost_source != 'generation' GROUP BY 1, 2 ORDER BY 1, 2""",
        (*params, period.start_ms, period.end_ms),
    )
    for row in rows:
        key = COST_WORDS.get((row["cost_source"], bool(row["waiting"])))
        if key and row["n"]:
            notes.append(d.p(w.count(key, row["n"], amount=d.usd(row["cost"]), zero=w.money(Decimal(0))), "small"))
    notes += _split_notes(d, where, params, period, totals["cost"])
    pruned = get_meta(d.db, "retention.pruned_before")
    if pruned and int(pruned) > period.start_ms:
        day = dt.datetime.fromtimestamp(int(pruned) / 1000, tz=dt.timezone.utc).date()
        notes.append(d.p(w("pruned", date=w.date(day)), "small"))
    if d.rate != 1 or d.settings.METER_CURRENCY.upper() != "USD":
        notes.append(d.p(w("converted", rate=w.decimal(d.rate.normalize()), currency=text(d.settings.METER_CURRENCY)), "small"))
    notes.append(d.p(w("rounding"), "small"))
    return [KeepTogether(notes)]  # the notes move to the next page as one block, never one line alone


def reconciliation_words(d: Doc, rec: dict) -> str:
    """How the comparison with OpenRouter was made, in words for a finance reader (the API's
    ``precision`` text names settings and fields, which a bill must not)."""
    w = d.w
    if rec["openrouter_nano"] is None:
        return w("reconciliation_unknown") + " " + w("reconciliation_only")
    start, end = (dt.datetime.fromisoformat(rec[k].replace("Z", "+00:00")).astimezone(d.zone) for k in ("compared_from", "compared_to"))
    return w("reconciliation_between", start=w.moment(start), end=w.moment(end)) + " " + w("reconciliation_only")


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


def _split_notes(d: Doc, where: str, params: tuple, period: Period, usage_nano: int) -> list:
    """Where bring-your-own-key answers occur, who charged the usage; and what prompt caching saved.
    Both parts are rounded to the cent the way the usage line is, so they add up to it on paper."""
    row = d.db.query_one(
        f"""SELECT coalesce(sum(provider_cost_nano), 0) AS provider, coalesce(sum(cache_discount_nano), 0) AS cache
            FROM usage_daily WHERE (provider_cost_nano != 0 OR cache_discount_nano != 0) AND {where} AND day BETWEEN ? AND ?""",
        (*params, *period.days),
    )
    w, notes = d.w, []
    if row["provider"]:
        usage, provider = convert(usage_nano, d.rate), convert(row["provider"], d.rate)
        notes.append(d.p(w("byok_split", usage=w.money(usage), provider=w.money(provider), openrouter=w.money(usage - provider)), "small"))
    if row["cache"] > 0:
        notes.append(d.p(w("cache_saved", amount=d.usd(row["cache"])), "small"))
    elif row["cache"] < 0:
        notes.append(d.p(w("cache_cost", amount=d.usd(-row["cache"])), "small"))
    return notes


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


def _finality_line(d: Doc, state: dict, period: Period) -> Paragraph:
    w = d.w
    if state["final"]:
        return d.p(w("final", moment=w.moment(d.now())))
    reasons = []
    if not state["ended"]:
        reasons.append(w("runs_until", date=w.date(period.end)))
    if state["pending"]:
        reasons.append(w.count("awaiting", state["pending"], amount=d.usd(state["pending_nano"])))
    return d.p(w("provisional", reasons=w("reasons_joiner").join(reasons)))


def statement_number(kind: str, key: str, period: Period) -> str:
    digest = hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:6].upper()
    return f"{period.start:%Y%m%d}-{period.end:%Y%m%d}-{digest}"


def address_lines(value: str | None) -> list[str]:
    """METER_ORG_ADDRESS as lines: real line breaks or ``\\n`` separate them."""
    return [line.strip() for line in (value or "").replace("\\n", "\n").splitlines() if line.strip()]


def _header(d: Doc, title: str, number: str, period: Period, state: dict, recipient: list[str] | None = None) -> list:
    """Sender (left) and the document's facts (right), the title and whether it is final, then who
    it is for. The due date is printed only when payment terms are set, and only on a bill."""
    s, w = d.settings, d.w
    issued = d.now().date()
    sender = []
    if s.METER_ORG_NAME:
        sender.append(d.p(f"<b>{text(s.METER_ORG_NAME)}</b>"))
    sender += [d.p(text(line)) for line in address_lines(s.METER_ORG_ADDRESS)]
    if s.METER_ORG_TAX_ID:
        sender.append(d.p(w("tax_id", id=text(s.METER_ORG_TAX_ID))))
    facts = [[w("statement_no"), number], [w("issued"), w.date(issued)]]
    if recipient is not None and s.METER_PAYMENT_TERMS_DAYS is not None:
        facts.append([w("due"), w.date(issued + dt.timedelta(days=s.METER_PAYMENT_TERMS_DAYS))])
    facts.append([w("period"), d.p(f"{w.period(period.start, period.end)} ({text(s.METER_TIMEZONE)})", "cell")])
    facts_table = Table(_cells(facts, bold_cols=(0,)), colWidths=[32 * mm, 54 * mm])
    facts_table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 8.5), ("FONT", (0, 0), (0, -1), BOLD, 8.5),
                                     ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    top = Table([[sender or "", facts_table]], colWidths=[84 * mm, 86 * mm], hAlign="LEFT")
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    story = [top, Spacer(1, 5 * mm),
             d.p(title if state["final"] else w("provisional_title", title=title), "title"),
             _finality_line(d, state, period)]
    if recipient:
        story += [Spacer(1, 3 * mm), d.p(w("statement_for"), "small")]
        story += [d.p(f"<b>{line}</b>" if i == 0 else line) for i, line in enumerate(recipient)]
    return story + [Spacer(1, 4 * mm)]


def _charge_rows(d: Doc, c) -> list:
    """The lines of a bill in the document's words: usage, markup, base fee, minimum charge; the total."""
    w = d.w
    names = {"usage": w("usage"), "markup": w("markup", percent=w.percent(d.settings.METER_MARKUP_PERCENT.normalize(), None)),
             "base_fee": w("base_fee"), "minimum_charge": w("minimum_charge")}
    return [[names[line.kind], w.money(line.amount)] for line in c.lines] + [[w("total"), w.money(c.total)]]


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
    d = Doc(meter)
    user = meter.db.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
    if user is None or is_unattributed(user_id):  # unattributed spend is no one's to be billed
        raise LookupError(user_id)
    w = d.w
    figures = user_figures(meter, user_id, period)
    totals = figures["totals"]
    c = charges(d.settings, totals["cost"], totals["answers"])
    state = finality(meter, "user_id = ?", (user_id,), period)
    groups = [g["name"] for g in meter.db.query(
        "SELECT g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ? ORDER BY lower(g.name)", (user_id,))]
    recipient = [text(user["name"] or user["email"] or user["id"])]
    if user["email"] and user["name"]:
        recipient.append(text(user["email"]))
    if groups:
        recipient.append(w.count("groups_line", len(groups), names=", ".join(text(g) for g in groups)))
    number = statement_number("user", user_id, period)
    story = _header(d, w("statement_title"), number, period, state, recipient)
    rows = [[w("model"), w("answers"), w("input_tokens"), w("output_tokens"), w("cost")]]
    for m in figures["models"]:
        rows.append([d.cell(m["model"]), w.number(m["answers"]), w.number(m["prompt"]), w.number(m["completion"]), d.usd(m["cost"])])
    rows.append([w("subtotal"), w.number(totals["answers"]), w.number(totals["prompt"]), w.number(totals["completion"]), d.usd(totals["cost"])])
    if totals["answers"]:
        story.append(_table(rows, [57 * mm, 24 * mm, 33 * mm, 33 * mm, 27 * mm], money_cols=(1, 2, 3, 4)))
    else:  # one plain line rather than an empty table and chart
        story.append(d.p(w("no_usage")))
    tasks = task_line(d, "user_id = ?", (user_id,), period)
    if tasks is not None:
        story += [Spacer(1, 2 * mm), tasks]
    if totals["answers"]:
        daily = {r["day"]: r["cost"] for r in meter.db.query(
            "SELECT day, sum(cost_nano) AS cost FROM usage_day_user WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY day", (user_id, *period.days))}
        story += [d.p(w("cost_per_day"), "h2"), _chart(d, [(day, daily.get(day, 0)) for day in period.day_list()])]
    story += [d.p(w("charges"), "h2"), _table(_charge_rows(d, c), [144 * mm, 30 * mm], header=False, money_cols=(1,), total=9)]
    balance = balance_figures(meter, user_id, period)
    if balance is not None:
        story += _balance_section(d, balance)
    story += [Spacer(1, 4 * mm)] + _notes(d, "user_id = ?", (user_id,), period, totals)
    return _build(d, story, w("statement_title"), w("statement_footer", number=number))


def task_line(d: Doc, where: str, params: tuple, period: Period):
    """Open WebUI's own task calls (titles, tags, follow-ups; source 'task', seen by the
    pass-through) as their own line; None when there were none. They are part of the usage above."""
    row = d.db.query_one(
        f"""SELECT coalesce(sum(answers), 0) AS n, coalesce(sum(cost_nano), 0) AS cost FROM usage_daily
            WHERE source = 'task' AND {where} AND day BETWEEN ? AND ?""",
        (*params, *period.days),
    )
    if not row["n"]:
        return None
    return d.p(d.w.count("tasks", row["n"], amount=d.usd(row["cost"])))


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


def _balance_section(d: Doc, figures: dict) -> list:
    w = d.w
    rows = [[w("opening_balance"), "", d.usd(figures["opening"])]]
    for e in figures["entries"]:
        day = w.date(d.local(e["ts"]).date())
        label = w("top_up", date=day) if e["amount_nano"] >= 0 else w("adjustment", date=day)
        rows.append([d.cell(label), d.cell(e["note"]), d.usd(e["amount_nano"])])  # a long date wraps, not overlaps the note
    rows.append([w("usage"), "", w.money(-convert(figures["usage"], d.rate))])
    rows.append([w("closing_balance"), "", d.usd(figures["closing"])])
    table = _table(rows, [64 * mm, 80 * mm, 30 * mm], header=False, money_cols=(2,), total=8.5)
    return [d.p(w("prepaid_balance"), "h2"), table, d.p(w("balance_note"), "small")]


def shared_budgets(meter, group_id: str, period: Period) -> list[dict]:
    """The group's shared budgets, each with what its members spent of it in the budget period
    that holds the statement's last day (or today, for a period not over yet): its kind of period
    and first day (a one-off allowance: the day it began), spent and limit."""
    from .budgets import allowance_start, period_start

    zone = zoneinfo.ZoneInfo(meter.settings.METER_TIMEZONE)
    day = min(dt.datetime.fromtimestamp(clock.now(), tz=zone).date(), period.end)
    result = []
    for budget in meter.db.query("SELECT * FROM budgets WHERE scope = 'group' AND scope_id = ? AND group_mode = 'shared' ORDER BY id", (group_id,)):
        if budget["period"] == "none":
            start, first = allowance_start(budget), dt.datetime.fromtimestamp(budget["since"] / 1000, tz=zone).date()
        else:
            start, _ = period_start(budget["period"], day)
            first = dt.date.fromisoformat(start)
        spent = meter.db.query_one(
            """SELECT coalesce(sum(s.cost_nano), 0) AS n FROM group_members m
               JOIN spend s ON s.user_id = m.user_id AND s.period = ? AND s.start = ? WHERE m.group_id = ?""",
            (budget["period"], start, group_id),
        )["n"]
        result.append({"period": budget["period"], "first": first, "spent": spent, "limit": budget["limit_nano"]})
    return result


def _budget_when(d: Doc, budget: dict) -> str:
    """Over which days a shared budget's use counts: since 1 November 2026, in November 2026 …"""
    w, first = d.w, budget["first"]
    return {"none": lambda: w("since", date=w.date(first)), "day": lambda: w("on_day", date=w.date(first)),
            "week": lambda: w("week_from", date=w.date(first)), "month": lambda: w("in_month", month=w.month(first))}[budget["period"]]()


def group_statement(meter, group_id: str, period: Period) -> bytes:
    d = Doc(meter)
    group = meter.db.query_one("SELECT * FROM groups WHERE id = ?", (group_id,))
    if group is None:
        raise LookupError(group_id)
    s, w = d.settings, d.w
    members = meter.db.query(
        """SELECT u.id, u.name, u.email, coalesce(sum(d.answers), 0) AS answers, coalesce(sum(d.cost_nano), 0) AS cost,
                  coalesce(sum(d.confirmed_cost_nano), 0) AS confirmed
           FROM group_members gm JOIN users u ON u.id = gm.user_id
           LEFT JOIN usage_day_user d ON d.user_id = u.id AND d.day BETWEEN ? AND ?
           WHERE gm.group_id = ? GROUP BY u.id ORDER BY cost DESC, lower(coalesce(u.name, u.email, u.id))""",
        (*period.days, group_id),
    )
    totals = {"answers": sum(m["answers"] for m in members), "cost": sum(m["cost"] for m in members), "confirmed": sum(m["confirmed"] for m in members)}
    # the one rule for groups: a group statement collects its members' statements, so what the
    # group is billed never differs from what its members' own statements say
    for m in members:
        m["charges"] = charges(s, m["cost"], m["answers"])
    due = sum((m["charges"].total for m in members), Decimal("0.00"))
    marks = ",".join("?" * len(members)) or "''"
    state = finality(meter, f"user_id IN ({marks})", tuple(m["id"] for m in members), period)
    number = statement_number("group", group_id, period)
    recipient = [text(group["name"]), w.count("group_of", len(members))]
    title = w("group_title", name=text(group["name"]))
    story = _header(d, title, number, period, state, recipient)
    story.append(d.p(w("group_rule")))
    story.append(Spacer(1, 3 * mm))
    rows = [[w("member"), w("email"), w("answers"), w("usage"), w("charged")]]
    rows += [[d.cell(m["name"] or m["id"]), d.cell(m["email"] or ""), w.number(m["answers"]), d.usd(m["cost"]), w.money(m["charges"].total)]
             for m in members]
    rows.append([w("total"), "", w.number(totals["answers"]), d.usd(totals["cost"]), w.money(due)])
    story.append(_table(rows, [48 * mm, 50 * mm, 24 * mm, 26 * mm, 26 * mm], money_cols=(2, 3, 4)))
    story += [Spacer(1, 3 * mm), _table([[w("total_due"), w.money(due)]], [144 * mm, 30 * mm], header=False, money_cols=(1,), total=9)]
    ids = tuple(m["id"] for m in members)
    models = meter.db.query(
        f"""SELECT model, sum(answers) AS answers, sum(cost_nano) AS cost FROM usage_daily
            WHERE user_id IN ({marks}) AND day BETWEEN ? AND ? GROUP BY model HAVING sum(answers) > 0 ORDER BY cost DESC, model""",
        (*ids, *period.days),
    )
    if models:
        rows = [[w("model"), w("answers"), w("cost")]] + [[d.cell(m["model"]), w.number(m["answers"]), d.usd(m["cost"])] for m in models]
        story += [d.p(w("models"), "h2"), _table(rows, [110 * mm, 30 * mm, 34 * mm], money_cols=(1, 2))]
    budgets = shared_budgets(meter, group_id, period)
    if budgets:
        story.append(d.p(w("shared_budget"), "h2"))
        for b in budgets:
            share = w("share", percent=w.percent(100 * Decimal(b["spent"]) / Decimal(b["limit"]))) if b["limit"] else ""
            story.append(d.p(w("shared_used", when=_budget_when(d, b), spent=d.usd(b["spent"]), limit=d.usd(b["limit"]), share=share)))
    story += [Spacer(1, 4 * mm)] + _notes(d, f"user_id IN ({marks})", ids, period, totals)
    return _build(d, story, w("group_title", name=group["name"] or group_id), w("statement_footer", number=number))


def summary_rows(meter, period: Period) -> list[dict]:
    """Every user with usage in the period, with their charges (what the summary shows).

    Spend not attributed to a user is not among them: it has no statement and no charges; see
    :func:`unattributed_figures`.
    """
    per_user, params = user_rows_sql(period.days)
    rows = meter.db.query(
        f"""SELECT d.user_id, u.name, u.email, sum(d.answers) AS answers, sum(d.cost_nano) AS cost, sum(d.confirmed_cost_nano) AS confirmed
            FROM ({per_user}) d LEFT JOIN users u ON u.id = d.user_id WHERE d.user_id != ?
            GROUP BY d.user_id HAVING sum(d.answers) > 0 ORDER BY cost DESC, d.user_id""",
        (*params, UNATTRIBUTED),
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


def _group_subtotals(d: Doc, rows: list[dict]) -> list:
    """Per group: its members' answers, usage and what they are due (the sum of their statements,
    as on the group statement). A member of two groups counts in both."""
    w = d.w
    by_user = {r["user_id"]: r for r in rows}
    table = [[w("group"), w("members"), w("answers"), w("usage"), w("total_due")]]
    for group in d.db.query("SELECT id, name FROM groups ORDER BY lower(name), id"):
        members = [by_user[m["user_id"]] for m in d.db.query("SELECT user_id FROM group_members WHERE group_id = ?", (group["id"],))
                   if m["user_id"] in by_user]
        if not members:
            continue
        table.append([d.cell(group["name"] or group["id"]), w.number(len(members)), w.number(sum(m["answers"] for m in members)),
                      d.usd(sum(m["cost"] for m in members)), w.money(sum((m["charges"].total for m in members), Decimal("0.00")))])
    if len(table) == 1:
        return []
    return [d.p(w("by_group"), "h2"), _table(table, [66 * mm, 24 * mm, 24 * mm, 30 * mm, 30 * mm], money_cols=(1, 2, 3, 4)),
            d.p(w("by_group_note"), "small")]


BUDGET_PERIODS = {"day": "per_day", "week": "per_week", "month": "per_month", "none": "one_off"}


def _budgets_against_actual(d: Doc, rows: list[dict], period: Period) -> list:
    """Each user's own budgets (theirs, or per member of a group or everyone) against what they
    spent of each in its period holding the end of the statement's (or now, if sooner)."""
    w = d.w
    at_ms = min(clock.now_ms(), period.end_ms - 1)
    table = [[w("user"), w("budget"), w("spent"), w("used")]]
    for r in rows:
        for state in d.meter.budgets.states(d.db.query, r["user_id"], at_ms):
            if state.shared:  # on the group statement
                continue
            used = w.percent(100 * Decimal(state.spent) / Decimal(state.limit)) if state.limit else "—"
            table.append([d.cell(r["name"] or r["email"] or r["user_id"]), f"{d.usd(state.limit)} {w(BUDGET_PERIODS[state.budget['period']])}",
                          d.usd(state.spent), used])
    if len(table) == 1:
        return []
    return [d.p(w("budgets_heading"), "h2"), _table(table, [70 * mm, 50 * mm, 30 * mm, 24 * mm], money_cols=(2, 3)),
            d.p(w("budgets_note"), "small")]


def summary(meter, period: Period) -> bytes:
    from .reconcile import reconcile

    d = Doc(meter)
    s, w = d.settings, d.w
    rows = summary_rows(meter, period)
    number = statement_number("summary", "all", period)
    story = _header(d, w("summary_title"), number, period, finality(meter, "1 = ?", (1,), period))
    # a Fees column only where fees are configured: otherwise it would be 0.00 on every row
    fees = bool(s.METER_MARKUP_PERCENT or s.METER_BASE_FEE or s.MINIMUM_CHARGE_FEE)
    table = [[w("user"), w("answers"), w("usage")] + ([w("fees")] if fees else []) + [w("total_due")]]
    for r in rows:
        usage = r["charges"].lines[0].amount
        table.append([d.cell(r["name"] or r["email"] or r["user_id"]), w.number(r["answers"]), w.money(usage)]
                     + ([w.money(r["charges"].total - usage)] if fees else []) + [w.money(r["charges"].total)])
    # usage is rounded once from the exact sum (as on the dashboard); what is due is the sum of
    # the statements, each rounded line by line
    grand_usage = convert(sum(r["cost"] for r in rows), d.rate)
    grand_fees = sum((r["charges"].total - r["charges"].lines[0].amount for r in rows), Decimal("0.00"))
    grand_total = sum((r["charges"].total for r in rows), Decimal("0.00"))
    table.append([w("total"), w.number(sum(r["answers"] for r in rows)), w.money(grand_usage)]
                 + ([w.money(grand_fees)] if fees else []) + [w.money(grand_total)])
    nobody = unattributed_figures(meter, period)
    if nobody["answers"]:  # after the total: it is spend, but no one's to pay
        table.append([w("unattributed"), w.number(nobody["answers"]), d.usd(nobody["cost"])] + ([""] if fees else []) + [w("not_billed")])
    widths = [70 * mm, 24 * mm, 27 * mm] + ([27 * mm] if fees else []) + [28 * mm]
    widths[0] += 174 * mm - sum(widths)
    story.append(_table(table, widths, money_cols=tuple(range(1, len(widths)))))
    if not rows:
        story.append(d.p(w("no_usage")))
    tasks = task_line(d, "1 = ?", (1,), period)
    if tasks is not None:
        story += [Spacer(1, 2 * mm), tasks]
    rounding = grand_total - grand_usage - grand_fees
    if rounding:
        story.append(d.p(w("summary_rounding", amount=w.money(rounding)), "small"))
    story += _group_subtotals(d, rows)
    story += _budgets_against_actual(d, rows, period)
    models = meter.db.query(
        "SELECT model, sum(answers) AS answers, sum(cost_nano) AS cost FROM usage_day_model WHERE day BETWEEN ? AND ? GROUP BY model ORDER BY cost DESC LIMIT 10",
        period.days,
    )
    story += [d.p(w("top_models"), "h2"),
              _table([[w("model"), w("answers"), w("cost")]] + [[d.cell(m["model"]), w.number(m["answers"]), d.usd(m["cost"])] for m in models],
                     [110 * mm, 30 * mm, 34 * mm], money_cols=(1, 2))]
    rec = reconcile(meter, period.start_ms, period.end_ms)
    story.append(d.p(w("reconciliation"), "h2"))
    if rec["openrouter_nano"] is None:
        story.append(d.p(reconciliation_words(d, rec)))
    else:
        recon = [[w("openrouter_billed"), d.usd(rec["openrouter_nano"])],
                 [w("attributed"), d.usd(rec["ledger_nano"])],
                 [w("unattributed_spend"), d.usd(rec["unattributed_nano"])]]
        story += [_table(recon, [144 * mm, 30 * mm], header=False, money_cols=(1,)), d.p(reconciliation_words(d, rec), "small")]
        total_cost = sum(r["cost"] for r in rows)
        if s.METER_ALLOCATE_UNATTRIBUTED and rec["unattributed_nano"] > 0 and total_cost:
            share = [[w("user"), w("share_of_unattributed")]]
            for r in rows:
                part = rec["unattributed_nano"] * r["cost"] // total_cost
                share.append([d.cell(r["name"] or r["email"] or r["user_id"]), d.usd(part)])
            story += [d.p(w("shared_by_use"), "h2"), _table(share, [144 * mm, 30 * mm], money_cols=(1,))]
    totals = {"cost": sum(r["cost"] for r in rows) + nobody["cost"], "confirmed": sum(r["confirmed"] for r in rows) + nobody["confirmed"]}
    story += [Spacer(1, 4 * mm)] + _notes(d, "1 = ?", (1,), period, totals)
    return _build(d, story, w("summary_title"), w("summary_footer", number=number))
