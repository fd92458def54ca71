"""Horizontal bars with value columns, and the cumulative strip of a seeded draw.

``BarChartRenderable`` draws one row per item: a label, numeric columns (e.g. logit and
probability), a bar, and a tag. Rows a filter removed are *cut*: dimmed, their bar drawn
in ``░`` and tagged with the reason (``✂ top-k``), so a reader sees what was cut and by
what. One row can be highlighted (the sampled token, tagged ``◀ chosen``) and one carries
the keyboard cursor (``▶``). Any other row may carry a short note of its own in the tag
column (``tags``, e.g. ``▼ penalty``); a column value of ``None`` prints as ``—`` (no
number applies to that row).

``CumulativeStripRenderable`` lays the distribution end to end on [0, 1) — one segment
per token, widths proportional to probability — and puts a ``▲`` at the uniform draw
``u``, with a caption naming the segment it fell in and that segment's bounds.

Both format exactly the numbers they are given, to the decimals they are told; neither
computes a probability from a logit. ``BarChart`` and ``CumulativeStrip`` are the thin
Textual widgets around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.app import RenderResult as TextualRenderResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from llm_anatomy_tui.widgets._base import ChromeCache, color_mode_for
from llm_anatomy_tui.widgets._format import fit, fmt, fmt_percent, sanitize_label, window
from llm_anatomy_tui.widgets.colors import (
    DEFAULT_CHROME,
    SERIES_COLORS,
    Chrome,
    ColorMode,
    use_color,
)

EIGHTHS = " ▏▎▍▌▋▊▉█"
CUT_GLYPH = "░"
CUT_MARK = "✂"
CURSOR_MARK = "▶"
HIGHLIGHT_MARK = "◀"
NOT_APPLICABLE = "—"
_STRIKE = Style(strike=True)
_BOLD = Style(bold=True)


@dataclass(frozen=True)
class BarColumn:
    """A numeric column beside the bars.

    Args:
        header: Column title ("logit", "p").
        values: One number per row, formatted exactly as given; ``None`` prints ``—``.
        decimals: Places shown.
        percent: The values are fractions; show them ×100 with a ``%`` sign.
    """

    header: str
    values: Sequence[float | None]
    decimals: int = 2
    percent: bool = False

    def text(self, i: int) -> str:
        if i >= len(self.values):
            return ""
        v = self.values[i]
        if v is None:
            return NOT_APPLICABLE
        return fmt_percent(v, self.decimals) if self.percent else fmt(v, self.decimals)


def _bar_text(length_eighths: int) -> str:
    full, part = divmod(max(0, length_eighths), 8)
    return "█" * full + (EIGHTHS[part] if part else "")


class BarChartRenderable:
    """Horizontal bars with labels, value columns, cut rows, a highlight and a cursor.

    Args:
        labels: One label per row (token texts…).
        values: Bar lengths, one per row (e.g. probabilities). Negative values draw to the
            left of a zero axis.
        columns: Numeric columns shown between label and bar, in order.
        cut: Per row, None (kept) or the reason it was removed ("top-k", "top-p" …).
        highlight: Index of the row to emphasise (e.g. the sampled token), or None.
        highlight_tag: Text after ``◀`` on the highlighted row.
        tags: Per row, None or a short note for the tag column (shown on rows that are
            neither cut nor highlighted; those show their own tag).
        cursor: Index of the keyboard cursor row, or None.
        scale_max: Value of a full-length bar (default: the largest |value|). Pass 1.0
            to draw probabilities on an absolute scale.
        label_header, bar_header: Header texts over the labels and the bars.
        title: Optional first line.
        origin: Preferred first row of the scroll window (kept while the cursor is in it).
        width, height: Size to fill (None = console width / all rows).
        color_mode: ``"auto"``, ``"color"`` or ``"none"``.
        chrome: Styles; ``chrome.bar`` colours kept bars.
    """

    def __init__(
        self,
        labels: Sequence[str],
        values: Sequence[float] | np.ndarray,
        *,
        columns: Sequence[BarColumn] = (),
        cut: Sequence[str | None] | None = None,
        highlight: int | None = None,
        highlight_tag: str = "chosen",
        tags: Sequence[str | None] | None = None,
        cursor: int | None = None,
        scale_max: float | None = None,
        label_header: str = "",
        bar_header: str = "",
        title: str | None = None,
        origin: int | None = None,
        width: int | None = None,
        height: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.values = np.asarray(values, dtype=np.float64).reshape(-1)
        n = len(self.values)
        self.labels = [sanitize_label(labels[i]) if i < len(labels) else str(i) for i in range(n)]
        self.columns = list(columns)
        self.cut = [cut[i] if cut is not None and i < len(cut) else None for i in range(n)]
        self.highlight = highlight if highlight is not None and 0 <= highlight < n else None
        self.highlight_tag = highlight_tag
        self.tags = [
            sanitize_label(tags[i]) if tags is not None and i < len(tags) and tags[i] else None
            for i in range(n)
        ]
        self.cursor = cursor if cursor is not None and 0 <= cursor < n else None
        self.scale_max = scale_max
        self.label_header = label_header
        self.bar_header = bar_header
        self.title = title
        self.origin = origin
        self.width = width
        self.height = height
        self.color_mode = color_mode
        self.chrome = chrome
        self.last_window: tuple[int, int] = (0, n)

    # -- layout -----------------------------------------------------------------------

    def _widths(self, width: int) -> tuple[int, list[int], int, int]:
        """(label width, column widths, bar width, tag width)."""
        longest = max((cell_len(s) for s in self.labels), default=0)
        label_w = max(cell_len(self.label_header), min(16, longest), 1)
        col_ws = []
        for col in self.columns:
            w = cell_len(col.header)
            for i in range(len(self.values)):
                w = max(w, len(col.text(i)))
            col_ws.append(w)
        tags = [f"{CUT_MARK} {c}" for c in self.cut if c]
        if self.highlight is not None:
            tags.append(f"{HIGHLIGHT_MARK} {self.highlight_tag}")
        tags += [t for i, t in enumerate(self.tags) if t and not self.cut[i]]
        tag_w = max((cell_len(t) for t in tags), default=0)
        fixed = 1 + label_w + sum(w + 1 for w in col_ws) + 1 + (tag_w + 1 if tag_w else 0)
        bar_w = width - fixed
        if bar_w < 4 and label_w > 6:  # give the bar room before giving up on labels
            shrink = min(label_w - 6, 4 - bar_w)
            label_w -= shrink
            bar_w += shrink
        return label_w, col_ws, max(1, bar_w), tag_w

    def natural_height(self) -> int:
        header = 1 if (self.label_header or self.bar_header or self.columns) else 0
        return (1 if self.title else 0) + header + max(1, len(self.values))

    def _window(self, height: int | None) -> tuple[int, int, bool]:
        n = len(self.values)
        if height is None:
            return 0, n, False
        header = 1 if (self.label_header or self.bar_header or self.columns) else 0
        room = max(1, height - (1 if self.title else 0) - header)
        if n <= room:
            return 0, n, False
        room = max(1, room - 1)  # the note line
        focus = self.cursor if self.cursor is not None else self.highlight
        if self.origin is None or focus is None:
            a, b = window(n, room, focus)
        else:
            a = max(0, min(self.origin, n - room))
            if focus < a:
                a = focus
            elif focus >= a + room:
                a = focus - room + 1
            b = a + room
        return a, b, True

    # -- Rich protocol ----------------------------------------------------------------

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(20, width), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        height = self.height if self.height is not None else options.height
        for i, line in enumerate(self.render_lines(console, width, height)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(self, console: Console, width: int, height: int | None = None):
        ch = self.chrome
        label_w, col_ws, bar_w, tag_w = self._widths(width)
        lines: list[list[Segment]] = []
        if self.title:
            lines.append([Segment(fit(self.title, width), ch.title)])
        if self.label_header or self.bar_header or self.columns:
            segs = [Segment(" " + fit(self.label_header, label_w), ch.dim)]
            for col, w in zip(self.columns, col_ws, strict=True):
                segs.append(Segment(" " + fit(col.header, w, "right"), ch.dim))
            segs.append(
                Segment(" " + fit(self.bar_header, bar_w + (tag_w + 1 if tag_w else 0)), ch.dim)
            )
            lines.append(_exact(segs, width))
        n = len(self.values)
        if n == 0:
            lines.append([Segment(fit("(no rows)", width), ch.dim)])
            return lines

        # scale: zero axis position and cells per unit
        finite = self.values[np.isfinite(self.values)]
        lo = min(0.0, float(finite.min())) if finite.size else 0.0
        hi = max(0.0, float(finite.max())) if finite.size else 1.0
        if self.scale_max is not None:
            hi = max(hi, float(self.scale_max)) if lo < 0 else float(self.scale_max)
        span = (hi - lo) or 1.0
        zero = round(bar_w * (-lo) / span)  # cells left of the axis
        cells_per_unit = bar_w / span

        a, b, windowed = self._window(height)
        self.last_window = (a, b)
        bar_style = ch.bar
        for i in range(a, b):
            cut = self.cut[i]
            is_cursor = i == self.cursor
            is_high = i == self.highlight
            mark = CURSOR_MARK if is_cursor else " "
            # the highlighted row (e.g. the sampled token) is in the accent colour; the
            # cursor row is marked ▶ and bold, so the two never look alike
            base = ch.accent if is_high else (ch.label + _BOLD if is_cursor else ch.label)
            text_style = ch.dim + _STRIKE if cut else base
            segs = [Segment(mark, ch.accent), Segment(fit(self.labels[i], label_w), text_style)]
            for col, w in zip(self.columns, col_ws, strict=True):
                segs.append(Segment(" " + fit(col.text(i), w, "right"), ch.dim if cut else base))
            segs.append(Segment(" "))
            v = float(self.values[i]) if np.isfinite(self.values[i]) else 0.0
            if v >= 0:
                eighths = round(v * cells_per_unit * 8)
                eighths = min(eighths, (bar_w - zero) * 8)
                # cut rows in whole ░ cells, so they read as removed even without colour
                body = CUT_GLYPH * round(eighths / 8) if cut else _bar_text(eighths)
                left = " " * zero
                right_pad = bar_w - zero - cell_len(body)
                bar_segs = [
                    Segment(left),
                    Segment(body, ch.dim if cut else (ch.accent if is_high else bar_style)),
                    Segment(" " * right_pad),
                ]
            else:
                length = min(zero, round(-v * cells_per_unit))
                glyph = CUT_GLYPH if cut else "█"
                bar_segs = [
                    Segment(" " * (zero - length)),
                    Segment(
                        glyph * length, ch.dim if cut else (ch.accent if is_high else bar_style)
                    ),
                    Segment(" " * (bar_w - zero)),
                ]
            segs.extend(bar_segs)
            if tag_w:
                if cut:
                    segs.append(Segment(" " + fit(f"{CUT_MARK} {cut}", tag_w), ch.dim))
                elif is_high:
                    segs.append(
                        Segment(
                            " " + fit(f"{HIGHLIGHT_MARK} {self.highlight_tag}", tag_w), ch.accent
                        )
                    )
                elif self.tags[i]:
                    segs.append(Segment(" " + fit(self.tags[i] or "", tag_w), base))
                else:
                    segs.append(Segment(" " * (tag_w + 1)))
            lines.append(_exact(segs, width))
        if windowed:
            note = f"rows {a}–{b - 1} of {n}"
            lines.append([Segment(fit(note, width), ch.dim)])
        return lines


def _exact(line: list[Segment], width: int) -> list[Segment]:
    length = sum(cell_len(s.text) for s in line)
    if length < width:
        return [*line, Segment(" " * (width - length))]
    if length > width:
        return list(Segment.adjust_line_length(line, width))
    return line


# -- cumulative strip ---------------------------------------------------------------------


class CumulativeStripRenderable:
    """The distribution laid end to end on [0, 1), with the draw ``u`` marked.

    Args:
        labels: One label per segment (the top tokens, in the sampler's order).
        probs: Their probabilities (after filtering and renormalising, as the sampler
            used them). If they sum to less than 1, a last ``rest`` segment holds the rest.
        u: The uniform draw in [0, 1).
        decimals: Places for u and the segment bounds in the caption.
        title: Optional first line.
        rest_label: Label of the remainder segment.
        width: Width to fill (None = console width).

    The segment u falls in is the k with ``cdf[k-1] <= u < cdf[k]`` where ``cdf`` is the
    running sum of ``probs`` (``np.searchsorted(cdf, u, side="right")``), exposed as
    :attr:`segment_index` (``len(probs)`` when u falls in the rest).
    """

    def __init__(
        self,
        labels: Sequence[str],
        probs: Sequence[float] | np.ndarray,
        u: float | None,
        *,
        decimals: int = 3,
        title: str | None = None,
        rest_label: str = "rest",
        width: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        raw = np.asarray(probs, dtype=np.float64).reshape(-1)
        # a probability is finite and in [0, 1]; anything else draws as an empty segment
        self.probs = np.clip(np.where(np.isfinite(raw), raw, 0.0), 0.0, 1.0)
        n = len(self.probs)
        self.labels = [sanitize_label(labels[i]) if i < len(labels) else str(i) for i in range(n)]
        self.cdf = np.cumsum(self.probs)
        self.u = None if u is None else float(u)
        self.decimals = decimals
        self.title = title
        self.rest_label = rest_label
        self.width = width
        self.color_mode = color_mode
        self.chrome = chrome
        total = float(self.cdf[-1]) if n else 0.0
        self.rest = max(0.0, 1.0 - total)
        if self.u is None:
            self.segment_index: int | None = None
        else:
            self.segment_index = int(np.searchsorted(self.cdf, self.u, side="right"))

    def bounds(self, k: int) -> tuple[float, float]:
        """[start, end) of segment k on [0, 1) (k == len(probs): the rest)."""
        n = len(self.probs)
        start = 0.0 if k == 0 else float(self.cdf[k - 1])
        end = float(self.cdf[k]) if k < n else 1.0
        return start, end

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(20, width), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        for i, line in enumerate(self.render_lines(console, width)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(self, console: Console, width: int) -> list[list[Segment]]:
        colour = use_color(console, self.color_mode)
        ch = self.chrome
        strip_w = max(4, width - 2)  # one cell of margin each side for the ▲ and its text
        n = len(self.probs)
        lines: list[list[Segment]] = []
        if self.title:
            lines.append([Segment(fit(self.title, width), ch.title)])
        # segment edges in cells: round the running sum, so widths add up to strip_w
        edges = [0] + [min(strip_w, round(float(c) * strip_w)) for c in self.cdf]
        has_rest = self.rest > 1e-12 or n == 0
        if has_rest:
            edges.append(strip_w)
        segs: list[Segment] = [Segment(" ")]
        for k in range(len(edges) - 1):
            w = edges[k + 1] - edges[k]
            if w <= 0:
                continue
            is_rest = k >= n
            label = self.rest_label if is_rest else self.labels[k]
            chosen = k == self.segment_index
            if colour:
                if is_rest:
                    style = Style(bgcolor="grey23", color="grey70")
                else:
                    rgb = SERIES_COLORS[k % len(SERIES_COLORS)].color
                    style = Style(bgcolor=rgb, color="black")
                if chosen:
                    style += Style(bold=True, underline=True)
                segs.append(Segment(fit(label, w), style))
            else:
                fill = "·" if is_rest else ("▒" if k % 2 else "░")
                body = fit(label, w - 1) if w > 1 else ""
                body = body.rstrip(" ")
                text = ("│" + body + fill * (w - 1 - cell_len(body))) if w > 1 else "│"
                segs.append(Segment(text, ch.accent if chosen else ch.label))
        segs.append(Segment(" "))
        lines.append(_exact(segs, width))

        # the ▲ at u, then its value; the caption names the segment and its bounds
        if self.u is not None:
            k = self.segment_index if self.segment_index is not None else 0
            pos = min(strip_w - 1, int(self.u * strip_w))
            # keep the marker inside the drawn segment when rounding moved an edge past it
            a, b = edges[min(k, len(edges) - 2)], edges[min(k + 1, len(edges) - 1)]
            if b > a:
                pos = min(max(pos, a), b - 1)
            u_text = f"u={fmt(self.u, self.decimals)}"
            col = 1 + pos
            if col + 2 + len(u_text) <= width:
                marker = " " * col + "▲ " + u_text
            else:
                marker = " " * max(0, col - len(u_text) - 1) + u_text + " ▲"
            lines.append([Segment(fit(marker, width), ch.accent)])
            lo, hi = self.bounds(k)
            name = self.rest_label if k >= n else self.labels[k]
            p = float(self.probs[k]) if k < n else self.rest
            caption = (
                f"u = {fmt(self.u, self.decimals)} is in [{fmt(lo, self.decimals)}, "
                f"{fmt(hi, self.decimals)}) → {name}  (p = {fmt(p, self.decimals)})"
            )
            lines.append([Segment(fit(caption, width), ch.label)])
        else:
            lines.append([Segment(fit(" 0" + " " * max(0, strip_w - 2) + "1", width), ch.dim)])
        return lines


# -- widgets ------------------------------------------------------------------------------


class _CachedStrips(ChromeCache):
    """Mixin (before ``Widget``) for the Line-API widgets below: their strips are built
    once per change and kept under ``_strips_key``; any refresh (data, size) or style
    change forgets them, and the chrome styles are cached as :class:`ChromeCache` does."""

    _strips_key: tuple | None = None

    def refresh(self, *regions, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Widget:  # fmt: skip
        self._strips_key = None  # every change of data, size or style comes through here
        return super().refresh(  # type: ignore[misc]
            *regions, repaint=repaint, layout=layout, recompose=recompose
        )

    def notify_style_update(self) -> None:
        self._strips_key = None
        super().notify_style_update()


class BarChart(_CachedStrips, Widget, can_focus=True):
    """Focusable horizontal bars with a row cursor.

    Set data with :meth:`set_data` or the reactives. Moving the cursor posts
    :class:`BarChart.RowHighlighted`; ``enter`` posts :class:`BarChart.RowChosen`
    (e.g. "branch here with this token").
    """

    _chrome_prefix = "barchart"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "barchart--label",
        "barchart--accent",
        "barchart--dim",
        "barchart--title",
        "barchart--bar",
    }
    """
    | Class | Description |
    | :- | :- |
    | `barchart--label` | Labels and numbers of kept rows. |
    | `barchart--accent` | The cursor and highlighted row, ◀ tag. |
    | `barchart--dim` | Cut rows, headers, the "rows 0–19 of 50" note. |
    | `barchart--title` | The title line. |
    | `barchart--bar` | Bars of kept rows. |
    """

    DEFAULT_CSS = """
    BarChart {
        width: 1fr;
        height: auto;
    }
    BarChart > .barchart--label { color: $foreground; }
    BarChart > .barchart--accent { color: $accent; text-style: bold; }
    BarChart > .barchart--dim { color: $foreground-muted; }
    BarChart > .barchart--title { color: $foreground; text-style: bold; }
    BarChart:focus > .barchart--title { color: $accent; }
    BarChart > .barchart--bar { color: $primary; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "up",
            "cursor_up",
            "Up",
            show=False,
            id="barchart.cursor_up",
            tooltip="Move the cursor to the row above",
        ),
        Binding(
            "down",
            "cursor_down",
            "Down",
            show=False,
            id="barchart.cursor_down",
            tooltip="Move the cursor to the row below",
        ),
        Binding(
            "home",
            "cursor_home",
            "First",
            show=False,
            id="barchart.cursor_home",
            tooltip="Move the cursor to the first row",
        ),
        Binding(
            "end",
            "cursor_end",
            "Last",
            show=False,
            id="barchart.cursor_end",
            tooltip="Move the cursor to the last row",
        ),
        Binding(
            "pageup",
            "page_up",
            "Page up",
            show=False,
            id="barchart.page_up",
            tooltip="Move the cursor up by one screen of rows",
        ),
        Binding(
            "pagedown",
            "page_down",
            "Page down",
            show=False,
            id="barchart.page_down",
            tooltip="Move the cursor down by one screen of rows",
        ),
        Binding(
            "enter",
            "choose",
            "Choose",
            id="barchart.choose",
            tooltip="Choose the row under the cursor",
        ),
    ]

    class RowHighlighted(Message):
        """The cursor moved to ``index``."""

        def __init__(self, bar_chart: BarChart, index: int) -> None:
            super().__init__()
            self.bar_chart = bar_chart
            self.index = index

        @property
        def control(self) -> BarChart:
            return self.bar_chart

    class RowChosen(Message):
        """``enter`` was pressed on row ``index``."""

        def __init__(self, bar_chart: BarChart, index: int) -> None:
            super().__init__()
            self.bar_chart = bar_chart
            self.index = index

        @property
        def control(self) -> BarChart:
            return self.bar_chart

    labels: reactive[tuple[str, ...]] = reactive(tuple)
    values: reactive[np.ndarray] = reactive(lambda: np.zeros(0), always_update=True)
    """Bar lengths, one per label."""
    columns: reactive[tuple[BarColumn, ...]] = reactive(tuple, always_update=True)
    cut: reactive[tuple[str | None, ...] | None] = reactive(None)
    """Per row: None (kept) or the reason it was cut."""
    highlight: reactive[int | None] = reactive(None)
    highlight_tag: reactive[str] = reactive("chosen")
    tags: reactive[tuple[str | None, ...] | None] = reactive(None)
    """Per row: None or a short note for the tag column (e.g. "▼ penalty")."""
    cursor: reactive[int] = reactive(0)
    scale_max: reactive[float | None] = reactive(None)
    label_header: reactive[str] = reactive("")
    bar_header: reactive[str] = reactive("")
    title: reactive[str | None] = reactive(None)

    def __init__(
        self,
        labels: Sequence[str] = (),
        values: Sequence[float] | np.ndarray = (),
        *,
        columns: Sequence[BarColumn] = (),
        cut: Sequence[str | None] | None = None,
        highlight: int | None = None,
        highlight_tag: str = "chosen",
        tags: Sequence[str | None] | None = None,
        cursor: int = 0,
        scale_max: float | None = None,
        label_header: str = "",
        bar_header: str = "",
        title: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._origin: int | None = None
        self._page = 10
        self._strips: list[Strip] = []
        self.set_reactive(BarChart.labels, tuple(labels))
        self.set_reactive(BarChart.values, np.asarray(values, dtype=np.float64).reshape(-1))
        self.set_reactive(BarChart.columns, tuple(columns))
        self.set_reactive(BarChart.cut, None if cut is None else tuple(cut))
        self.set_reactive(BarChart.highlight, highlight)
        self.set_reactive(BarChart.highlight_tag, highlight_tag)
        self.set_reactive(BarChart.tags, None if tags is None else tuple(tags))
        self.set_reactive(BarChart.scale_max, scale_max)
        self.set_reactive(BarChart.label_header, label_header)
        self.set_reactive(BarChart.bar_header, bar_header)
        self.set_reactive(BarChart.title, title)
        self.set_reactive(BarChart.cursor, self._clamp(cursor))

    def set_data(
        self,
        labels: Sequence[str],
        values: Sequence[float] | np.ndarray,
        *,
        columns: Sequence[BarColumn] = (),
        cut: Sequence[str | None] | None = None,
        highlight: int | None = None,
        tags: Sequence[str | None] | None = None,
    ) -> None:
        """Replace every row at once (one repaint; the cursor is kept if it still fits, and
        the visible window is placed around it afresh)."""
        self._origin = None
        self.set_reactive(BarChart.labels, tuple(labels))
        self.set_reactive(BarChart.columns, tuple(columns))
        self.set_reactive(BarChart.cut, None if cut is None else tuple(cut))
        self.set_reactive(BarChart.highlight, highlight)
        self.set_reactive(BarChart.tags, None if tags is None else tuple(tags))
        self.values = values  # type: ignore[assignment]

    def validate_values(self, values: object) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(-1)

    def validate_labels(self, labels: Sequence[str]) -> tuple[str, ...]:
        return tuple(labels)

    def validate_columns(self, columns: Sequence[BarColumn]) -> tuple[BarColumn, ...]:
        return tuple(columns)

    def validate_cursor(self, cursor: int) -> int:
        return self._clamp(cursor)

    def _clamp(self, cursor: int) -> int:
        n = len(self.values)
        return 0 if n == 0 else min(max(int(cursor), 0), n - 1)

    def watch_values(self) -> None:
        clamped = self._clamp(self.cursor)
        if clamped != self.cursor:
            self.cursor = clamped

    def watch_cursor(self, cursor: int) -> None:
        if len(self.values):
            self.post_message(self.RowHighlighted(self, cursor))

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_cursor_home(self) -> None:
        self.cursor = 0

    def action_cursor_end(self) -> None:
        self.cursor = len(self.values) - 1

    def action_page_up(self) -> None:
        self.cursor -= self._page

    def action_page_down(self) -> None:
        self.cursor += self._page

    def action_choose(self) -> None:
        if len(self.values):
            self.post_message(self.RowChosen(self, self.cursor))

    def renderable(self, width: int | None = None, height: int | None = None) -> BarChartRenderable:
        """The Rich renderable for the current state."""
        return BarChartRenderable(
            self.labels,
            self.values,
            columns=self.columns,
            cut=self.cut,
            highlight=self.highlight,
            highlight_tag=self.highlight_tag,
            tags=self.tags,
            cursor=self.cursor if len(self.values) else None,
            scale_max=self.scale_max,
            label_header=self.label_header,
            bar_header=self.bar_header,
            title=self.title,
            origin=self._origin,
            width=width,
            height=height,
            color_mode=color_mode_for(self),
            chrome=self.chrome(),
        )

    def render(self) -> TextualRenderResult:
        size = self.content_region.size if self.is_mounted else Size(0, 0)
        renderable = self.renderable(size.width or None, size.height or None)
        a, b, _ = renderable._window(size.height or None)
        self._origin = a
        self._page = max(1, b - a - 1)
        return renderable

    def render_line(self, y: int) -> Strip:
        """One line, from strips built once per change (the Line API: a repaint of a
        chart that is redrawn on every generation step skips Rich's console pipeline).
        Any change reaches :meth:`refresh` (reactives, resizes) or
        :meth:`notify_style_update` (focus, theme), which drop the strips."""
        width, height = self.content_size
        key = (width, height)
        if key != self._strips_key:
            self._strips_key = key
            renderable = self.renderable(width or None, height or None)
            lines = renderable.render_lines(self.app.console, max(1, width), height or None)
            a, b = renderable.last_window
            self._origin = a
            self._page = max(1, b - a - 1)
            base = self.rich_style
            self._strips = [Strip(line, width).apply_style(base) for line in lines]
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        natural = self.renderable(width, None).natural_height()
        return max(1, min(natural, container.height or natural))


class CumulativeStrip(_CachedStrips, Widget):
    """The sampler's draw against the cumulative distribution (not focusable: it has no
    cursor). Reactives: ``labels``, ``probs``, ``u``, ``decimals``, ``title``."""

    _chrome_prefix = "cumulativestrip"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "cumulativestrip--label",
        "cumulativestrip--accent",
        "cumulativestrip--dim",
        "cumulativestrip--title",
    }

    DEFAULT_CSS = """
    CumulativeStrip {
        width: 1fr;
        height: auto;
    }
    CumulativeStrip > .cumulativestrip--label { color: $foreground; }
    CumulativeStrip > .cumulativestrip--accent { color: $accent; text-style: bold; }
    CumulativeStrip > .cumulativestrip--dim { color: $foreground-muted; }
    CumulativeStrip > .cumulativestrip--title { color: $foreground; text-style: bold; }
    """

    labels: reactive[tuple[str, ...]] = reactive(tuple)
    probs: reactive[np.ndarray] = reactive(lambda: np.zeros(0), always_update=True)
    u: reactive[float | None] = reactive(None, layout=True)
    """The draw; None (greedy, no draw) drops the marker and caption lines."""
    decimals: reactive[int] = reactive(3)
    title: reactive[str | None] = reactive(None, layout=True)

    def __init__(
        self,
        labels: Sequence[str] = (),
        probs: Sequence[float] | np.ndarray = (),
        u: float | None = None,
        *,
        decimals: int = 3,
        title: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.set_reactive(CumulativeStrip.labels, tuple(labels))
        self.set_reactive(CumulativeStrip.probs, np.asarray(probs, dtype=np.float64).reshape(-1))
        self.set_reactive(CumulativeStrip.u, u)
        self.set_reactive(CumulativeStrip.decimals, decimals)
        self.set_reactive(CumulativeStrip.title, title)
        self._strips: list[Strip] = []

    def set_data(
        self, labels: Sequence[str], probs: Sequence[float] | np.ndarray, u: float | None
    ) -> None:
        """Replace segments and draw together (one repaint)."""
        self.set_reactive(CumulativeStrip.labels, tuple(labels))
        relayout = (u is None) != (self.u is None)  # the caption lines come or go
        self.set_reactive(CumulativeStrip.u, u)
        self.probs = probs  # type: ignore[assignment]
        if relayout:
            self.refresh(layout=True)

    def validate_probs(self, probs: object) -> np.ndarray:
        return np.asarray(probs, dtype=np.float64).reshape(-1)

    def validate_labels(self, labels: Sequence[str]) -> tuple[str, ...]:
        return tuple(labels)

    def renderable(self, width: int | None = None) -> CumulativeStripRenderable:
        return CumulativeStripRenderable(
            self.labels,
            self.probs,
            self.u,
            decimals=self.decimals,
            title=self.title,
            width=width,
            color_mode=color_mode_for(self),
            chrome=self.chrome(),
        )

    def render(self) -> TextualRenderResult:
        size = self.content_region.size if self.is_mounted else Size(0, 0)
        return self.renderable(size.width or None)

    def render_line(self, y: int) -> Strip:
        """One line, from strips built once per change (see :meth:`BarChart.render_line`)."""
        width = self.content_size.width
        key = (width,)
        if key != self._strips_key:
            self._strips_key = key
            lines = self.renderable(width or None).render_lines(self.app.console, max(1, width))
            base = self.rich_style
            self._strips = [Strip(line, width).apply_style(base) for line in lines]
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return (1 if self.title else 0) + (3 if self.u is not None else 2)
