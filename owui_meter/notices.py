"""The one line a chat user sees above each answer: its cost, what is left, a link to their page."""

from __future__ import annotations

from . import words
from .money import round_usd
from .words import language, number

SELF_SCOPE = "self"  # the token scope of the JWT /me/<token> links that older versions handed out

PENDING = {"en": "cost pending", "de": "Kosten folgen", "fr": "coût en attente", "es": "coste pendiente", "zh": "费用待定"}
UNPRICED = {"en": "no price known", "de": "kein Preis bekannt", "fr": "prix inconnu", "es": "precio desconocido", "zh": "价格未知"}
TOKENS = {"en": "{i} in / {o} out", "de": "{i} ein / {o} aus", "fr": "{i} entrée / {o} sortie", "es": "{i} entrada / {o} salida", "zh": "输入 {i} / 输出 {o}"}


def money(nano: int, lang: str, places: int | None = None) -> str:
    """$0.0123 in English; 1.234,56 $ in German: the amount as :mod:`money` rounds it, written the language's way."""
    return words.money(round_usd(nano, places), lang)


def answer_notice(row: dict, lang: str = "en") -> str:
    """"$0.0123 · 1,234 in / 567 out" for an event row."""
    lang = language(lang)
    if row["cost_source"] == "pending":
        cost = PENDING[lang]
    elif row["cost_source"] == "unpriced":
        cost = UNPRICED[lang]
    else:
        cost = money(row["cost_nano"], lang)
        if row["cost_source"] == "estimate":
            cost = "≈" + cost
    tokens = TOKENS[lang].format(i=number(row["prompt_tokens"], lang), o=number(row["completion_tokens"], lang))
    return f"{cost} · {tokens}"


LEFT = {"en": "{a} left {w}", "de": "{a} übrig {w}", "fr": "{a} restants {w}", "es": "quedan {a} {w}", "zh": "{w}剩余 {a}"}
WHEN = {
    "en": {"day": "today", "week": "this week", "month": "this month", "none": "in total"},
    "de": {"day": "heute", "week": "diese Woche", "month": "diesen Monat", "none": "insgesamt"},
    "fr": {"day": "aujourd'hui", "week": "cette semaine", "month": "ce mois-ci", "none": "au total"},
    "es": {"day": "hoy", "week": "esta semana", "month": "este mes", "none": "en total"},
    "zh": {"day": "今天", "week": "本周", "month": "本月", "none": "总计"},
}
WARN = {"en": "⚠ {p}% of your budget used", "de": "⚠ {p} % Ihres Budgets verbraucht", "fr": "⚠ {p} % de votre budget utilisé", "es": "⚠ {p} % de tu presupuesto usado", "zh": "⚠ 预算已用 {p}%"}
BALANCE = {"en": "balance {a}", "de": "Guthaben {a}", "fr": "solde {a}", "es": "saldo {a}", "zh": "余额 {a}"}


def outlet_notice(row: dict, lang: str, states: list, balance: int | None, link: str | None) -> str:
    """The answer's line, then what is left of the tightest personal budget, a warning at its
    threshold, the balance, and the link to the user's own page. Shared budgets are left out:
    what is left of them would tell a user what others spent."""
    lang = language(lang)
    parts = [answer_notice(row, lang)]
    personal = [s for s in states if not s.shared]
    if personal:
        tightest = min(personal, key=lambda s: s.remaining)
        parts.append(LEFT[lang].format(a=money(max(tightest.remaining, 0), lang, 2), w=WHEN[lang][tightest.budget["period"]]))
        if tightest.percent >= tightest.budget["warn_percent"]:
            parts.append(WARN[lang].format(p=min(int(tightest.percent), 999)))
    if balance is not None:
        parts.append(BALANCE[lang].format(a=money(balance, lang, 2)))
    if link:
        parts.append(link)
    return " · ".join(parts)
