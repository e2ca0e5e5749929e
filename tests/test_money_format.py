"""format_usd in integers writes exactly the figure round_usd gives in Decimal (what the documents
write in every language): places chosen by size, half to even."""

from hypothesis import given, strategies as st

from owui_meter.money import NANO, format_usd, round_usd


def decimal_rule(nano: int, places: int | None) -> str:
    """round_usd's figure, written with a dollar sign and thousands separators."""
    rounded = round_usd(nano, places)
    return f"{'-' if rounded < 0 else ''}${abs(rounded):,.{-rounded.as_tuple().exponent}f}"


AMOUNTS = st.one_of(st.integers(-10**15, 10**15), st.integers(-2 * NANO, 2 * NANO),
                    # exact halves at every number of places: where half to even decides
                    st.builds(lambda k, p: k * 10 ** (9 - p) + 10 ** (9 - p) // 2, st.integers(-10**6, 10**6), st.integers(1, 6)))


@given(AMOUNTS, st.sampled_from([None, 0, 1, 2, 4, 6, 9]))
def test_format_usd_is_the_decimal_rule(nano, places):
    assert format_usd(nano, places) == decimal_rule(nano, places)


def test_the_edges_of_each_size_and_of_rounding():
    for nano in (0, 1, 99_999, 100_000, 499, 500, 5_000_000, 15_000_000, 25_000_000, NANO - 1, NANO, -5_000_000, -1, 10**18):
        for places in (None, 2, 6):
            assert format_usd(nano, places) == decimal_rule(nano, places), (nano, places)
