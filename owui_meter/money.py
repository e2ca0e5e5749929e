"""Money as integers of nano-dollars (1e-9 USD). Floats appear only at the edges (JSON, display)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from .errors import BadInput

NANO = 10**9
MAX_INPUT_USD = Decimal(1_000_000)  # the largest amount a person may type anywhere (budgets, top-ups, prices)
CENT = Decimal("0.01")


def usd_to_nano(value) -> int:
    """USD given as a number or string (e.g. OpenRouter's 9.15e-06 or "0.00000015") -> nano-USD.

    Floats go through ``str`` first so 9.15e-06 becomes exactly 9150, not 9149.
    Raises ValueError for anything that is not a finite number.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return int((amount * NANO).to_integral_value(rounding=ROUND_HALF_EVEN))


def parse_usd(name: str, value, *, low=Decimal(0), high=MAX_INPUT_USD) -> Decimal:
    """A dollar amount a person typed or sent (a JSON number or a string such as "10.50").

    The one parser for every amount that comes in (settings, budgets, top-ups, prices): the same
    bounds and the same messages everywhere. Raises BadInput naming ``name``.
    """
    if value is None or value == "":
        raise BadInput(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise BadInput(f"{name} must be a number like 10 or 10.50")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise BadInput(f"{name} must be a number like 10 or 10.50") from None
    if not amount.is_finite() or not Decimal(low) <= amount <= Decimal(high):
        raise BadInput(f"{name} must be between {low:,} and {high:,}")
    return amount


def parse_usd_nano(name: str, value, *, low=Decimal(0), high=MAX_INPUT_USD) -> int:
    """:func:`parse_usd` in nano-USD."""
    return usd_to_nano(parse_usd(name, value, low=low, high=high))


def nano_to_usd(nano: int | None) -> float | None:
    """For JSON output only: nano-USD -> float USD (exact to the nano for realistic sums)."""
    if nano is None:
        return None
    return float(Decimal(nano) / NANO)


def nano_to_decimal(nano: int) -> Decimal:
    return Decimal(nano) / NANO


def to_cents(nano: int, rate: Decimal = Decimal(1)) -> Decimal:
    """The one rounding rule for money shown to people (dashboard, statements, summary):
    the exact nano-dollar figure, times the currency rate, rounded once to the cent, half to
    even. A total is rounded from the exact sum of what it covers, never added up from rounded
    rows. (The JSON API and the CSV carry exact figures; this rule turns them into what is shown.)
    """
    return (Decimal(nano) * Decimal(rate) / NANO).quantize(CENT, rounding=ROUND_HALF_EVEN)


def round_usd(nano: int, places: int | None = None) -> Decimal:
    """The amount shown for ``nano``: with ``places=2`` (every total) :func:`to_cents`; without,
    a single answer's cost keeps enough digits to be non-zero (0.0123, 0.000012), which would
    otherwise often read 0.00. Every language writes this same figure (see :mod:`words`)."""
    if places == 2:
        return to_cents(nano)
    amount = Decimal(nano) / NANO
    if places is None:
        places = 2 if abs(amount) >= 1 or amount == 0 else 4
        if 0 < abs(amount) < Decimal("0.0001"):
            places = 6
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def format_usd(nano: int | None, places: int | None = None) -> str:
    """$12.34 for people (the dashboard, in English); small amounts keep enough digits to be
    non-zero ($0.0123). The figure is :func:`round_usd`'s, worked out in integers: a chart formats
    hundreds of amounts."""
    if nano is None:
        return "–"
    size = abs(nano)
    if places is None:
        places = 2 if size >= NANO or size == 0 else 6 if size < 100_000 else 4
    if not 0 <= places <= 9:
        raise ValueError(f"places must be 0 to 9, not {places}")
    step = 10 ** (9 - places)  # to `places` decimals, half to even
    units, rest = divmod(size, step)
    if 2 * rest > step or (2 * rest == step and units % 2):
        units += 1
    sign = "-" if nano < 0 and units else ""
    whole, fraction = divmod(units, 10**places)
    return f"{sign}${whole:,}.{fraction:0{places}d}" if places else f"{sign}${whole:,}"
