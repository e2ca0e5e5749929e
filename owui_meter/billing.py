"""What a statement charges: usage, markup, base fee, minimum charge; in the statement's currency.

The arithmetic, so it can be checked by reading a statement:

- usage is the ledger's cost for the period (confirmed, inline or estimated);
- markup = usage × METER_MARKUP_PERCENT / 100;
- base fee = METER_BASE_FEE, on a statement with any usage;
- minimum charge: when usage + markup + base fee, as printed (rounded), is below
  MINIMUM_CHARGE_FEE (rounded) and there was any usage, a line "minimum charge adjustment" brings
  the total up to it (no usage: no charge); the line is never 0.00 or below;
- every line is converted at METER_USD_RATE and rounded to the cent by the one rule
  (:func:`money.to_cents`), and the total is the sum of the rounded lines, so the lines always
  add up on paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from .money import to_cents


@dataclass
class Line:
    kind: str  # usage, markup, base_fee or minimum_charge: a document names it in its language
    usd_nano: int
    amount: Decimal  # in the statement's currency, rounded to the cent


@dataclass
class Charges:
    lines: list[Line]
    total: Decimal
    currency: str
    rate: Decimal


def convert(nano: int, rate: Decimal) -> Decimal:
    return to_cents(nano, rate)


def charges(settings, usage_nano: int, answers: int) -> Charges:
    rate, currency = settings.METER_USD_RATE, settings.METER_CURRENCY
    markup = int((Decimal(usage_nano) * settings.METER_MARKUP_PERCENT / 100).to_integral_value(rounding=ROUND_HALF_EVEN))
    lines = [Line("usage", usage_nano, convert(usage_nano, rate))]
    if settings.METER_MARKUP_PERCENT:
        lines.append(Line("markup", markup, convert(markup, rate)))
    if answers and settings.METER_BASE_FEE:
        lines.append(Line("base_fee", settings.METER_BASE_FEE, convert(settings.METER_BASE_FEE, rate)))
    # compared in the currency as printed: a subtotal that rounds up to the minimum needs no line
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    minimum = convert(settings.MINIMUM_CHARGE_FEE, rate)
    if answers and subtotal < minimum:
        gap_nano = max(settings.MINIMUM_CHARGE_FEE - sum(line.usd_nano for line in lines), 0)
        lines.append(Line("minimum_charge", gap_nano, minimum - subtotal))
    return Charges(lines, sum((line.amount for line in lines), Decimal("0.00")), currency, rate)

