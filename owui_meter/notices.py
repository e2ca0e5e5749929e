"""The one line a chat user sees above each answer: its cost, what is left, a link to their page."""

from __future__ import annotations

from .auth import create_token
from .ledger import is_unattributed
from .money import format_usd

SELF_SCOPE = "self"  # the token scope of a user's own page, /me/<token>
SELF_TOKEN_DAYS = 7

PENDING = {"en": "cost pending", "de": "Kosten folgen", "fr": "coût en attente", "es": "coste pendiente", "zh": "费用待定"}
UNPRICED = {"en": "no price known", "de": "kein Preis bekannt", "fr": "prix inconnu", "es": "precio desconocido", "zh": "价格未知"}
TOKENS = {"en": "{i} in / {o} out", "de": "{i} ein / {o} aus", "fr": "{i} entrée / {o} sortie", "es": "{i} entrada / {o} salida", "zh": "输入 {i} / 输出 {o}"}


def language(code: str | None) -> str:
    code = (code or "en").lower().split("-")[0].split("_")[0]
    return code if code in TOKENS else "en"


def answer_notice(row: dict, lang: str = "en") -> str:
    """"$0.0123 · 1,234 in / 567 out" for an event row."""
    lang = language(lang)
    if row["cost_source"] == "pending":
        cost = PENDING[lang]
    elif row["cost_source"] == "unpriced":
        cost = UNPRICED[lang]
    else:
        cost = format_usd(row["cost_nano"])
        if row["cost_source"] == "estimate":
            cost = "≈" + cost
    tokens = TOKENS[lang].format(i=f"{row['prompt_tokens']:,}", o=f"{row['completion_tokens']:,}")
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


def self_link(settings, user_id: str) -> str | None:
    """A signed, expiring link to the user's own page, when METER_PUBLIC_URL is set."""
    if not settings.METER_PUBLIC_URL or is_unattributed(user_id):
        return None
    token = create_token(settings.JWT_SECRET, days=SELF_TOKEN_DAYS, name=user_id, scope=SELF_SCOPE)
    return f"{settings.METER_PUBLIC_URL}/me/{token}"


def outlet_notice(row: dict, lang: str, states: list, balance: int | None, settings) -> str:
    """The answer's line, then what is left of the tightest personal budget, a warning at its
    threshold, the balance, and the link to the user's own page. Shared budgets are left out:
    what is left of them would tell a user what others spent."""
    lang = language(lang)
    parts = [answer_notice(row, lang)]
    personal = [s for s in states if not s.shared]
    if personal:
        tightest = min(personal, key=lambda s: s.remaining)
        parts.append(LEFT[lang].format(a=format_usd(max(tightest.remaining, 0), 2), w=WHEN[lang][tightest.budget["period"]]))
        if tightest.percent >= tightest.budget["warn_percent"]:
            parts.append(WARN[lang].format(p=min(int(tightest.percent), 999)))
    if balance is not None:
        parts.append(BALANCE[lang].format(a=format_usd(balance, 2)))
    link = self_link(settings, row["user_id"])
    if link:
        parts.append(link)
    return " · ".join(parts)
