"""The byte-honest token pieces, counts, window share and cost (views/token_pieces.py)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core.tokenizers import load_encoding
from llm_anatomy_tui.views.token_pieces import (
    MARKER,
    SPECIAL,
    TEXT,
    PriceError,
    cost,
    count,
    format_cost,
    format_ratio,
    format_share,
    parse_price,
    piece_display,
    piece_spans,
    token_pieces,
    tokenize,
    visible_text,
    window_share,
)


def test_whitespace_markers_and_their_kinds():
    assert piece_spans(b" \t\n\r") == [("·⇥⏎␍", MARKER)]
    assert piece_display(b" \t\n", markers=False) == "   "
    assert piece_spans("a·b".encode()) == [("a·b", TEXT)]  # a real middle dot is text
    assert piece_display("\u00a0".encode()) == "‹U+00A0›"


def test_control_and_invisible_characters_are_spelled_out():
    assert piece_display(b"\x00\x07\x1b\x7f") == "␀␇␛␡"
    assert piece_display("\u0085".encode()) == "‹U+0085›"
    assert piece_display("a\u200db".encode()) == "a‹ZWJ›b"
    assert piece_display("\u202e".encode()) == "‹U+202E›"
    assert piece_display("\ufe0f".encode()) == "‹VS16›"
    assert piece_display("\u0301".encode()) == "◌\u0301"  # a lone combining accent
    assert piece_spans(b"\x1b") == [("␛", SPECIAL)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_give_one_safe_line(raw):
    shown = piece_display(raw)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\ufffd" not in shown or "\ufffd".encode() in raw
    assert "\u2028" not in shown and "\u2029" not in shown


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_pieces_cover_the_text_byte_for_byte(text):
    enc = load_encoding("model")
    pieces = token_pieces(enc, enc.encode_ordinary(text))
    assert b"".join(p.raw for p in pieces) == text.encode()
    for p in pieces:
        assert (p.text is None) == (not _valid_utf8(p.raw))


def _valid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_tokenize_builds_only_the_pieces_asked_for():
    text = "word" + " word" * 999
    t = tokenize(load_encoding("o200k_base"), text, max_pieces=10)
    assert t.counts.tokens == len(t.ids) == 1000 and t.shown == 10 and t.truncated
    assert count(text, t.ids).characters == 4999


def test_visible_text_is_one_line():
    assert visible_text("a\nb\x1bc") == "a⏎b␛c"


# -- window and cost -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, expected",
    [("2.50", Decimal("2.50")), ("$0.15", Decimal("0.15")), ("3 €", Decimal("3")), ("", None)],
)
def test_prices(typed, expected):
    assert parse_price(typed) == expected


@pytest.mark.parametrize(
    "typed, message",
    [
        ("abc", "not a number"),
        ("2,50", "use a dot"),
        ("-1", "negative"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("1e9", "implausibly"),
    ],
)
def test_bad_prices_say_what_is_expected(typed, message):
    with pytest.raises(PriceError, match=message):
        parse_price(typed)


def test_cost_is_exact():
    assert cost(22, Decimal("2.50")) == Decimal("0.000055")
    assert format_cost(cost(22, Decimal("2.50"))) == "0.000055"
    assert format_cost(cost(1_000_000, Decimal("0.1"))) == "0.1"
    assert format_cost(cost(10_000_000, Decimal("0.15"))) == "1.50"
    assert format_cost(cost(3, Decimal("0.000001"))) == "<0.0000000001"
    assert format_cost(cost(0, Decimal("5"))) == "0"


def test_share_has_three_significant_digits_rounded_half_up():
    assert format_share(window_share(22, 128_000)) == "0.0172%"
    assert format_share(window_share(24, 128_000)) == "0.0188%"  # 0.01875 exactly
    assert format_share(window_share(22, 2_048)) == "1.07%"
    assert format_share(window_share(2_048, 2_048)) == "100%"
    assert format_share(window_share(5, 2)) == "250%"
    assert format_share(window_share(1, 10**9)) == "<0.0001%"
    assert format_share(window_share(9_995, 10_000)) == "100%"  # 99.95 % rounds up


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_ratio_matches_exact_half_up_rounding(num, den):
    shown = Decimal(format_ratio(num, den))
    exact = Fraction(num, den)
    assert abs(Fraction(shown) - exact) <= Fraction(1, 200)  # within half a cent
    # and a tie goes up, as on a calculator
    assert Fraction(shown) - exact != -Fraction(1, 200)
