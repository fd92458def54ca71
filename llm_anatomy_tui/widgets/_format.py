"""Small text helpers shared by the data widgets: number formatting, label fitting,
scroll windows and the honest "rows 40–63 of 256" notes. No Textual here."""

from __future__ import annotations

import math

from rich.cells import cell_len, set_cell_size

ELLIPSIS = "…"


def fmt(value: float, decimals: int) -> str:
    """``value`` to exactly ``decimals`` places — the only number formatter the widgets use,
    so a value is never rounded two different ways on one screen."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{decimals}f}"


def fmt_cells(values, decimals: int, width: int) -> list[str]:
    """Each value as ``fmt(value, decimals)`` right-aligned in ``width`` cells — the same
    text as :func:`fmt` (Python's float formatting gives "nan"/"inf"/"-inf" as fmt does),
    done in one pass for a row of a table."""
    spec = f">{width}.{decimals}f"
    return [format(float(v), spec) for v in values]


def fmt_percent(fraction: float, decimals: int) -> str:
    """A fraction (0.1234) as a percentage to ``decimals`` places ("12.3%")."""
    return fmt(float(fraction) * 100.0, decimals) + "%"


def sanitize_label(text: object) -> str:
    """A label safe to lay out on one line: control characters become visible pictures
    (newline ``⏎``, tab ``⇥``, others U+2400…), everything else is kept as given."""
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch == "\n":
            out.append("⏎")
        elif ch == "\t":
            out.append("⇥")
        elif ord(ch) < 0x20:
            out.append(chr(0x2400 + ord(ch)))
        elif ch == "\x7f":
            out.append("␡")
        elif not ch.isprintable() and ch != " ":
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def fit(text: str, width: int, align: str = "left") -> str:
    """``text`` padded or cut to exactly ``width`` terminal cells; a cut ends in ``…``."""
    if width <= 0:
        return ""
    n = cell_len(text)
    if n > width:
        if width == 1:
            return ELLIPSIS
        return set_cell_size(text, width - 1) + ELLIPSIS
    pad = width - n
    if align == "right":
        return " " * pad + text
    if align == "center":
        left = pad // 2
        return " " * left + text + " " * (pad - left)
    return text + " " * pad


def window(total: int, size: int, focus: int | None) -> tuple[int, int]:
    """A ``[start, stop)`` window of at most ``size`` items out of ``total``, keeping
    ``focus`` inside it and as near the middle as the ends allow."""
    size = max(0, min(size, total))
    if size >= total:
        return 0, total
    if focus is None:
        return 0, size
    start = focus - size // 2
    start = max(0, min(start, total - size))
    return start, start + size


def span_note(what: str, start: int, stop: int, total: int) -> str:
    """ "rows 40–63 of 256" for a window ``[start, stop)`` (0-based, inclusive end shown)."""
    if stop - start == 1:
        return f"{what} {start} of {total}"
    return f"{what} {start}–{stop - 1} of {total}"
