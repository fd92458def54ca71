"""Byte-honest token pieces: what each token *is*, drawn so a terminal can show it.

A BPE token is a run of bytes, not a run of characters. Most tokens decode to text on
their own, but a character that needs several UTF-8 bytes (CJK, emoji, accented letters in
a small vocabulary) can be split across two or more tokens. Decoding such a token alone
would give mojibake or U+FFFD; we show its raw bytes instead, as ``‹E4 B8›``.

Whitespace and invisible characters get visible stand-ins, so a chip never contains a line
break, a terminal escape or a character that silently joins its neighbours:

=====================  ==============================  ===========================
what                   markers on                      markers off
=====================  ==============================  ===========================
space                  ``·``                           a blank cell
newline / tab / CR     ``⏎`` / ``⇥`` / ``␍``           a blank cell
other spaces (NBSP…)   ``‹U+00A0›``                    a blank cell
C0 controls, DEL       control pictures ``␀ ␛ ␡ …``    (same)
C1 controls            ``‹U+0085›``                    (same)
format characters      ``‹ZWJ›``, ``‹RLM›``, ``‹U+202E›``  (same)
variation selectors    ``‹VS16›``                      (same)
lone combining mark    ``◌́`` (on a dotted circle)      (same)
=====================  ==============================  ===========================

>>> piece_display(b" the")
'·the'
>>> piece_display(" 世".encode()[:3])
'·‹E4 B8›'
>>> piece_display(b"a\\x00b\\n")
'a␀b⏎'
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Protocol

SPACE_MARK = "·"
NEWLINE_MARK = "⏎"
TAB_MARK = "⇥"
CR_MARK = "␍"
DOTTED_CIRCLE = "◌"

_NAMED_INVISIBLES = {
    0x00AD: "SHY",
    0x061C: "ALM",
    0x180E: "MVS",
    0x200B: "ZWSP",
    0x200C: "ZWNJ",
    0x200D: "ZWJ",
    0x200E: "LRM",
    0x200F: "RLM",
    0x2060: "WJ",
    0xFEFF: "BOM",
}


class _Decoder(Protocol):
    """The part of ``tiktoken.Encoding`` this module needs."""

    def decode_single_token_bytes(self, token: int) -> bytes: ...


TEXT, MARKER, SPECIAL = "text", "marker", "special"
"""Span kinds: the token's own characters; a whitespace stand-in (``·``, ``⏎``, ``⇥``);
anything else we had to spell out (byte pieces, control pictures, ``‹ZWJ›``, ``◌``)."""

Span = tuple[str, str]
"""``(text, kind)`` — a run of a piece's display with one of the kinds above."""


def _bytes_label(raw: bytes) -> str:
    return "‹" + " ".join(f"{b:02X}" for b in raw) + "›"


def _char_span(ch: str, markers: bool, at_start: bool) -> Span:
    """The visible stand-in for one decoded character (often the character itself)."""
    cp = ord(ch)
    if ch == " ":
        return (SPACE_MARK, MARKER) if markers else (" ", TEXT)
    if ch == "\n":
        return (NEWLINE_MARK, MARKER) if markers else (" ", TEXT)
    if ch == "\t":
        return (TAB_MARK, MARKER) if markers else (" ", TEXT)
    if ch == "\r":
        return (CR_MARK, MARKER) if markers else (" ", TEXT)
    if cp < 0x20:
        return chr(0x2400 + cp), SPECIAL  # ␀ ␁ … ␟ (control pictures)
    if cp == 0x7F:
        return "␡", SPECIAL
    if 0x80 <= cp <= 0x9F:
        return f"‹U+{cp:04X}›", SPECIAL
    if 0xFE00 <= cp <= 0xFE0F:
        return f"‹VS{cp - 0xFE00 + 1}›", SPECIAL
    if 0xE0100 <= cp <= 0xE01EF:
        return f"‹VS{cp - 0xE0100 + 17}›", SPECIAL
    category = unicodedata.category(ch)
    if category == "Zs":  # NBSP, ideographic space, thin space …
        return (f"‹U+{cp:04X}›", MARKER) if markers else (" ", TEXT)
    if cp in _NAMED_INVISIBLES:
        return f"‹{_NAMED_INVISIBLES[cp]}›", SPECIAL
    if category in ("Cf", "Zl", "Zp", "Cn", "Co", "Cs"):
        return f"‹U+{cp:04X}›", SPECIAL
    if at_start and category in ("Mn", "Me", "Mc"):
        return DOTTED_CIRCLE + ch, TEXT
    return ch, TEXT


def piece_spans(raw: bytes, *, markers: bool = True) -> list[Span]:
    """:func:`piece_display` as ``(text, kind)`` runs, so a UI can style markers and byte
    pieces apart from the token's own characters (a real ``·`` in the text is ``TEXT``).

    >>> piece_spans(b" a\\xe4")
    [('·', 'marker'), ('a', 'text'), ('‹E4›', 'special')]
    """
    text = raw.decode("utf-8", errors="surrogateescape")
    spans: list[Span] = []
    pending: list[int] = []  # undecodable bytes, collected into one ‹…› label
    at_start = True

    def add(part: str, kind: str) -> None:
        if spans and spans[-1][1] == kind:
            spans[-1] = (spans[-1][0] + part, kind)
        else:
            spans.append((part, kind))

    for ch in text:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:  # a byte that surrogateescape could not decode
            pending.append(cp - 0xDC00)
            continue
        if pending:
            add(_bytes_label(bytes(pending)), SPECIAL)
            pending.clear()
            at_start = True
        add(*_char_span(ch, markers, at_start))
        at_start = False
    if pending:
        add(_bytes_label(bytes(pending)), SPECIAL)
    return spans


def piece_display(raw: bytes, *, markers: bool = True) -> str:
    """A single-line, terminal-safe rendering of a token's bytes.

    Bytes that are not valid UTF-8 *within this token* (a multi-byte character split across
    tokens) are shown as hex in ``‹ ›``; everything else as described in the module docstring.

    >>> piece_display("é".encode()[:1] + b"x")
    '‹C3›x'
    >>> piece_display(b"  ", markers=False)
    '  '
    """
    return "".join(part for part, _ in piece_spans(raw, markers=markers))


def visible_text(text: str, *, markers: bool = True) -> str:
    """Make any string safe and visible on one terminal line (same rules as the pieces)."""
    return piece_display(text.encode("utf-8", errors="surrogatepass"), markers=markers)


@dataclass(frozen=True, slots=True)
class Piece:
    """One token of an encoded text.

    ``text`` is the token decoded on its own, or ``None`` if its bytes are not valid UTF-8
    by themselves; ``spans``/``display`` are :func:`piece_spans`/:func:`piece_display` of the
    bytes.
    """

    id: int
    raw: bytes
    text: str | None
    spans: tuple[Span, ...]

    @property
    def display(self) -> str:
        return "".join(part for part, _ in self.spans)

    @property
    def complete(self) -> bool:
        """True if the token's bytes are whole characters (no byte pieces)."""
        return self.text is not None


@functools.lru_cache(maxsize=1 << 16)
def _piece(raw: bytes, token: int, markers: bool) -> Piece:
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return Piece(token, raw, text, tuple(piece_spans(raw, markers=markers)))


def token_pieces(encoding: _Decoder, ids: Sequence[int], *, markers: bool = True) -> list[Piece]:
    """The pieces of ``ids`` under ``encoding`` (any ``tiktoken.Encoding``).

    >>> from llm_anatomy_tui.core.tokenizers import load_encoding
    >>> enc = load_encoding("model")
    >>> [p.display for p in token_pieces(enc, enc.encode_ordinary("世界"))]
    ['‹E4 B8›', '‹96›', '‹E7›', '‹95›', '‹8C›']
    """
    decode = encoding.decode_single_token_bytes
    # Pieces are immutable and depend only on (bytes, id, markers): cached, so redrawing
    # a text after one keystroke rebuilds almost nothing.
    return [_piece(decode(token), token, markers) for token in ids]


# -- counts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """How long a text is in characters, UTF-8 bytes and tokens.

    ``characters`` counts Unicode code points (what Python's ``len`` counts), so an emoji
    family joined by ZWJs counts as several characters, as it does for most tokenizer sites.
    """

    characters: int
    utf8_bytes: int
    tokens: int

    @property
    def chars_per_token(self) -> float | None:
        """Average characters per token, or ``None`` for an empty text."""
        return self.characters / self.tokens if self.tokens else None


def count(text: str, ids: Sequence[int]) -> TokenCounts:
    """Counts for ``text`` encoded as ``ids``.

    >>> count("héllo", [71, 2]).utf8_bytes
    6
    """
    return TokenCounts(len(text), len(text.encode("utf-8", errors="surrogatepass")), len(ids))


# -- context window and cost -------------------------------------------------------------

CONTEXT_WINDOWS: tuple[int, ...] = (
    2_048,
    4_096,
    8_192,
    16_384,
    32_768,
    128_000,
    131_072,
    200_000,
    1_000_000,
)
"""Common context-window sizes (in tokens) to compare a text against."""


def window_share(tokens: int, window: int) -> Fraction:
    """Exact fraction of a ``window``-token context that ``tokens`` fill (may exceed 1)."""
    if window <= 0:
        raise ValueError("context window must be a positive number of tokens")
    return Fraction(tokens, window)


def round_half_up(value: Fraction | int, decimals: int) -> Decimal:
    """Round an exact value the way a person with a calculator does (0.125 → 0.13).

    Python's float formatting rounds half to even, and floats miss exact halves anyway
    (``f"{24 / 128000 * 100:.4f}"`` gives ``'0.0187'`` although the share is 0.01875 %).

    >>> round_half_up(Fraction(9, 8), 2), round_half_up(Fraction(3, 160), 4)
    (Decimal('1.13'), Decimal('0.0188'))
    """
    value = Fraction(value)
    with localcontext() as ctx:
        ctx.prec = 50
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def format_ratio(numerator: int, denominator: int, decimals: int = 2) -> str:
    """``numerator / denominator`` rounded half up, e.g. characters per token.

    >>> format_ratio(102, 22), format_ratio(9, 8)
    ('4.64', '1.13')
    """
    return f"{round_half_up(Fraction(numerator, denominator), decimals)}"


class PriceError(ValueError):
    """A price the user typed cannot be used; the message says what is expected."""


MAX_PRICE = Decimal(1_000_000)


def parse_price(text: str) -> Decimal | None:
    """Parse a price per million tokens typed by a person. Empty text means "no price".

    Accepts an optional currency sign before or after the number (``$2.50``, ``2.50 €``).
    Returns an exact :class:`~decimal.Decimal` so cost arithmetic has no float error.

    >>> parse_price(" $2.50 ")
    Decimal('2.50')
    >>> parse_price("")
    """
    s = text.strip()
    if not s:
        return None
    for sign in ("$", "€", "£", "¥"):
        s = s.removeprefix(sign).removesuffix(sign).strip()
    expected = "type a number such as 2.50 (the price per million tokens)"
    if "," in s:
        raise PriceError(f"use a dot for decimals: {expected}")
    try:
        price = Decimal(s)
    except InvalidOperation:
        raise PriceError(f"{text.strip()!r} is not a number — {expected}") from None
    if not price.is_finite():
        raise PriceError(f"the price must be a finite number — {expected}")
    if price < 0:
        raise PriceError("the price cannot be negative")
    if price > MAX_PRICE:
        raise PriceError("that price is implausibly high (over 1,000,000 per million tokens)")
    return price


def cost(tokens: int, price_per_million: Decimal) -> Decimal:
    """Exact cost of ``tokens`` at ``price_per_million``.

    >>> cost(22, Decimal("2.50"))
    Decimal('0.000055')
    """
    value = price_per_million * tokens / Decimal(1_000_000)
    return value.normalize() if value else Decimal(0)


def format_cost(value: Decimal) -> str:
    """A cost without float noise: exact below 1 (up to 10 decimal places), else cents.

    >>> format_cost(Decimal("0.000055"))
    '0.000055'
    >>> format_cost(Decimal("1234.5"))
    '1,234.50'
    >>> format_cost(Decimal("3E-12"))
    '<0.0000000001'
    """
    if value >= 1:
        return f"{value:,.2f}"
    if value == 0:
        return "0"
    q = value.quantize(Decimal("1e-10")).normalize()
    return f"{q:f}" if q else "<0.0000000001"


def format_share(share: Fraction | float) -> str:
    """A window share as a percentage with three significant digits (no exponent),
    rounded half up from the exact value.

    >>> format_share(Fraction(22, 128_000))
    '0.0172%'
    >>> format_share(Fraction(24, 128_000))
    '0.0188%'
    >>> format_share(Fraction(1, 2)), format_share(Fraction(7, 2))
    ('50.0%', '350%')
    """
    pct = Fraction(share) * 100
    if pct == 0:
        return "0%"
    if pct < Fraction(1, 10_000):
        return "<0.0001%"
    if pct >= 100:
        return f"{round_half_up(pct, 0):,}%"
    decimals = max(0, 2 - math.floor(math.log10(pct)))
    text = f"{round_half_up(pct, decimals)}"
    if Decimal(text) >= 100:  # 99.95 rounds up to 100.0
        return "100%"
    return f"{text}%"


# -- one call for a whole text -----------------------------------------------------------


class _Encoding(_Decoder, Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Tokenized:
    """A text encoded by one encoding: all IDs, the counts, and the first pieces.

    Only the first ``max_pieces`` pieces are built (a screen draws what fits; a 1 MB text
    has hundreds of thousands of tokens). ``shown`` is how many that is.
    """

    ids: list[int]
    counts: TokenCounts
    pieces: list[Piece]

    @property
    def shown(self) -> int:
        return len(self.pieces)

    @property
    def truncated(self) -> bool:
        return len(self.pieces) < len(self.ids)


def tokenize(
    encoding: _Encoding, text: str, *, max_pieces: int | None = None, markers: bool = True
) -> Tokenized:
    """Encode ``text`` as ordinary text (special-token strings such as ``<|endoftext|>`` are
    split like any other text, as an API does with user input) and describe the result.

    >>> from llm_anatomy_tui.core.tokenizers import load_encoding
    >>> t = tokenize(load_encoding("o200k_base"), "If the human brain", max_pieces=2)
    >>> t.ids, t.counts.tokens, [p.display for p in t.pieces], t.truncated
    ([3335, 290, 5396, 12891], 4, ['If', '·the'], True)
    """
    ids = encoding.encode_ordinary(text)
    head = ids if max_pieces is None else ids[: max(0, max_pieces)]
    return Tokenized(ids, count(text, ids), token_pieces(encoding, head, markers=markers))
