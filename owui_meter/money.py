"""Money as integers of nano-dollars (1e-9 USD). Floats appear only at the edges (JSON, display)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANO = 10**9


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


def nano_to_usd(nano: int | None) -> float | None:
    """For JSON output only: nano-USD -> float USD (exact to the nano for realistic sums)."""
    if nano is None:
        return None
    return float(Decimal(nano) / NANO)


def nano_to_decimal(nano: int) -> Decimal:
    return Decimal(nano) / NANO


def format_usd(nano: int | None, places: int | None = None) -> str:
    """$12.34 for people; small amounts keep enough digits to be non-zero ($0.0123)."""
    if nano is None:
        return "–"
    amount = Decimal(nano) / NANO
    if places is None:
        places = 2 if abs(amount) >= 1 or amount == 0 else 4
        if 0 < abs(amount) < Decimal("0.0001"):
            places = 6
    quantum = Decimal(1).scaleb(-places)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_EVEN)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.{places}f}"
