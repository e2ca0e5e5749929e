"""Languages: how numbers, money and dates are written in each, and the documents' words.

One place for every language's formats, used by the line above each answer (:mod:`notices`) and by
the PDF documents (:mod:`reports`). The figures themselves come rounded from :mod:`money`; only
how they are written differs by language:

====  ============  ============  ======================  =======================
lang  number        money (USD)   date                    month
====  ============  ============  ======================  =======================
en    1,234.56      $1,234.56     30 November 2026        November 2026
de    1.234,56      1.234,56 $    30. November 2026       November 2026
fr    1 234,56      1 234,56 $    30 novembre 2026        novembre 2026
es    1.234,56      1.234,56 US$  30 de noviembre de 2026 noviembre de 2026
zh    1,234.56      US$1,234.56   2026年11月30日           2026年11月
====  ============  ============  ======================  =======================

French groups digits with a narrow no-break space (U+202F); de, fr and es put a no-break space
(U+00A0) between the number and the sign. Spanish and Chinese write a US dollar ``US$``, as those
languages do where ``$`` alone is a peso or could be read as one. A euro is ``€``, a pound ``£``,
in each language's place for the sign; any other currency is written with its ISO code after the
number (``1,234.56 CHF``). The words of the documents are in one file per language
(``en.py`` …), each a dict with the same keys; a counted phrase is a pair (one, many).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import de, en, es, fr, zh

LANGUAGES = ("en", "de", "fr", "es", "zh")
DOCUMENTS = {"en": en.WORDS, "de": de.WORDS, "fr": fr.WORDS, "es": es.WORDS, "zh": zh.WORDS}

# (thousands separator, decimal mark)
SEPARATORS = {"en": (",", "."), "zh": (",", "."), "de": (".", ","), "es": (".", ","), "fr": ("\u202f", ",")}
# where the sign goes: {n} the number, {s} the sign
MONEY = {"en": "{s}{n}", "zh": "{s}{n}", "de": "{n}\u00a0{s}", "fr": "{n}\u00a0{s}", "es": "{n}\u00a0{s}"}
SIGNS = {"USD": {"en": "$", "de": "$", "fr": "$", "es": "US$", "zh": "US$"}, "EUR": "€", "GBP": "£"}
PERCENT = {"en": "{n}%", "zh": "{n}%", "de": "{n}\u00a0%", "fr": "{n}\u202f%", "es": "{n}\u00a0%"}

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"),
    "zh": tuple(f"{m}月" for m in range(1, 13)),
}
DATE = {"en": "{d:02} {month} {y}", "de": "{d}. {month} {y}", "fr": "{d} {month} {y}", "es": "{d} de {month} de {y}", "zh": "{y}年{m}月{d}日"}
MONTH = {"en": "{month} {y}", "de": "{month} {y}", "fr": "{month} {y}", "es": "{month} de {y}", "zh": "{y}年{m}月"}
MOMENT = {"en": "{date} at {time}", "de": "{date} um {time}", "fr": "{date} à {time}", "es": "{date} a las {time}", "zh": "{date} {time}"}


def language(code: str | None) -> str:
    """``de-DE`` -> ``de``; anything not spoken here -> ``en``."""
    code = (code or "en").lower().split("-")[0].split("_")[0]
    return code if code in SEPARATORS else "en"


def number(n: int, lang: str) -> str:
    """A whole number: 1,234 · 1.234 (de, es) · 1 234 (fr)."""
    return f"{n:,}".replace(",", SEPARATORS[language(lang)][0])


def decimal(value: Decimal, lang: str, places: int | None = None) -> str:
    """A decimal as it stands (or to ``places``): 7.5 · 7,5."""
    group, mark = SEPARATORS[language(lang)]
    value = Decimal(value)
    if places is None:
        places = max(0, -value.normalize().as_tuple().exponent)
    return f"{value:,.{places}f}".replace(",", "\0").replace(".", mark).replace("\0", group)


def money(amount: Decimal, lang: str, currency: str = "USD") -> str:
    """An amount already rounded (:mod:`money`), written with as many places as it has:
    $1,234.56 · 1.234,56 $ · 1 234,56 $ · 1.234,56 US$ · US$1,234.56; -$1.75 below zero."""
    lang, amount = language(lang), Decimal(amount)
    digits = decimal(abs(amount), lang, max(0, -amount.as_tuple().exponent))
    sign = "-" if amount < 0 else ""
    symbol = SIGNS.get(currency.upper())
    if symbol is None:
        return f"{sign}{digits}\u00a0{currency}"
    symbol = symbol[lang] if isinstance(symbol, dict) else symbol
    return sign + MONEY[lang].format(n=digits, s=symbol)


def percent(value: Decimal, lang: str, places: int | None = 1) -> str:
    """13.7% · 13,7 % (de, es) · 13,7 % (fr, narrow space); ``places=None``: as it stands (7.5%)."""
    return PERCENT[language(lang)].format(n=decimal(Decimal(value), lang, places))


def date(day: dt.date, lang: str) -> str:
    """30 November 2026 · 30. November 2026 · 30 novembre 2026 · 30 de noviembre de 2026 · 2026年11月30日."""
    lang = language(lang)
    d = "1er" if lang == "fr" and day.day == 1 else day.day
    return DATE[lang].format(d=d, m=day.month, y=day.year, month=MONTHS[lang][day.month - 1])


def month(day: dt.date, lang: str) -> str:
    """November 2026 · noviembre de 2026 · 2026年11月."""
    lang = language(lang)
    return MONTH[lang].format(m=day.month, y=day.year, month=MONTHS[lang][day.month - 1])


def moment(when: dt.datetime, lang: str) -> str:
    """A date and a 24-hour time: 30 November 2026 at 14:05 · 30. November 2026 um 14:05 …"""
    return MOMENT[language(lang)].format(date=date(when.date(), lang), time=f"{when:%H:%M}")


def is_many(n: int, lang: str) -> bool:
    """Whether ``n`` takes the plural: French counts 0 and 1 as one; Chinese has one form."""
    lang = language(lang)
    if lang == "zh":
        return False
    return n > 1 if lang == "fr" else n != 1


class Words:
    """One language's words and formats for one document, in its currency.

    ``w("total")`` is a word; ``w("group_title", name=…)`` a phrase with fields filled in;
    ``w.count("answers_n", 3)`` a counted phrase in the right form, ``{n}`` written the
    language's way. Phrases are reportlab paragraph markup: callers escape what they put in.
    """

    def __init__(self, lang: str, currency: str = "USD"):
        self.lang, self.currency = language(lang), currency
        self.words = DOCUMENTS[self.lang]

    def __call__(self, key: str, **fields) -> str:
        phrase = self.words[key]
        return phrase.format(**fields) if fields else phrase

    def count(self, key: str, n: int, **fields) -> str:
        one, many = self.words[key]
        return (many if is_many(n, self.lang) else one).format(n=number(n, self.lang), **fields)

    def number(self, n: int) -> str:
        return number(n, self.lang)

    def decimal(self, value: Decimal, places: int | None = None) -> str:
        return decimal(value, self.lang, places)

    def money(self, amount: Decimal) -> str:
        return money(amount, self.lang, self.currency)

    def percent(self, value: Decimal, places: int | None = 1) -> str:
        return percent(value, self.lang, places)

    def date(self, day: dt.date) -> str:
        return date(day, self.lang)

    def month(self, day: dt.date) -> str:
        return month(day, self.lang)

    def moment(self, when: dt.datetime) -> str:
        return moment(when, self.lang)

    def period(self, start: dt.date, end: dt.date) -> str:
        return self("period_range", start=self.date(start), end=self.date(end))
