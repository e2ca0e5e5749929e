"""The one line a chat user sees above each answer: its cost and tokens."""

from __future__ import annotations

from .money import format_usd

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
