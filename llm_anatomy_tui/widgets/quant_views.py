"""Views for quantization: values snapping to a grid, a row of choices, an aligned table.

Three plain Rich renderables (no Textual in them, testable with a Rich ``Console``) and
the thin widgets around them:

- :class:`SnapHistogramRenderable` — a "butterfly" histogram of one group of weights:
  the values *before* quantization as bars growing up, the grid of values the format can
  hold as ticks (``┬``; ``╥`` where several share a column), and the values *after* as
  bars hanging down. After quantization every value sits on a tick, so the lower bars
  form a comb exactly under the ticks: the snapping is visible at a glance. Both
  histograms and the ticks use the same column edges, so a value on a grid point is
  always drawn under that point's tick.

  ::

      before ▁▁▂▃▅▆█▇▆▄▃▂▁
      grid   ┬──┬──┬──┬──┬─
      after  █  █  █  ▀  ▀
             -0.40     0  0.37

- :class:`OptionRowRenderable` — labelled groups of choices on one line (wrapping when
  narrow), the chosen one in reverse video (``[INT8]`` without colour); a disabled group
  is dimmed with a note saying why.
- :class:`FactsRenderable` — "label  value" lines; a long value wraps under itself
  (hanging indent), so a panel of numbers stays readable from 40 columns up.
- :class:`TextCompareRenderable` — labelled texts one under the other, the part after
  their shared start marked (two generations that agree, then part).
- :class:`QuantTableRenderable` — columns of text aligned as told, a header, one
  highlighted row (``▶``, and the accent colour), an optional title and note. Plain
  aligned text: a Rich ``Table`` costs several ms per frame.

Numbers are formatted by the caller (or with the shared ``fmt``); nothing here rounds a
value two ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich._wrap import divide_line
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult as TextualRenderResult
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from llm_anatomy_tui.widgets._base import ChromeCache, color_mode_for
from llm_anatomy_tui.widgets._format import fit, fmt
from llm_anatomy_tui.widgets.colors import (
    DEFAULT_CHROME,
    SERIES_COLORS,
    Chrome,
    ColorMode,
    use_color,
)

EIGHTHS = " ▁▂▃▄▅▆▇█"
TICK_ONE = "┬"
TICK_MANY = "╥"
AXIS = "─"
HANG_HALF = "▀"
HANG_FULL = "█"
MARK = "▶"
ELLIPSIS_MARK = "…"
_BOLD = Style(bold=True)
_REVERSE = Style(reverse=True, bold=True)

GUTTER = 7
"""Cells of the left margin that holds "before", "grid" and "after"."""


# -- the snapping histogram ----------------------------------------------------------------


def _sorted(values: object) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    if a.size > 1 and not bool(np.all(a[1:] >= a[:-1])):
        a = np.sort(a)
    return a


@dataclass(frozen=True)
class SnapBins:
    """The three histograms at one width: counts per column (same edges for all)."""

    before: np.ndarray
    after: np.ndarray
    grid: np.ndarray
    edges: np.ndarray  # columns + 1 edges from lo to hi


class SnapHistogramRenderable:
    """Values before and after quantization around the grid they snap to.

    Args:
        before, after: The group's values (any order; sorted inputs skip a sort).
        grid: Every value the format can hold for this group, or None when the grid is
            too fine to draw (fp16, bf16); then ``grid_count`` and ``grid_name`` say how
            many values it has in the range.
        lo, hi: The x range (default: the span of values and grid).
        before_rows, after_rows: Heights of the two histograms.
        decimals: Places of the axis numbers.
        caption: Show the caption line (what a tick means, the tallest bars).
        title, title_rows: A title above the histogram, wrapped into exactly
            ``title_rows`` lines (cut with ``…``; padded with blank lines), so a title of
            any length keeps the height fixed. 0 rows: no title.
        width: Width to fill (None = console width).
        color_mode, chrome: As for every widget here.
    """

    def __init__(
        self,
        before: object,
        after: object,
        grid: object | None = None,
        *,
        lo: float | None = None,
        hi: float | None = None,
        grid_count: int | None = None,
        grid_name: str = "",
        before_rows: int = 3,
        after_rows: int = 2,
        decimals: int = 3,
        caption: bool = True,
        title: str = "",
        title_rows: int = 0,
        empty_text: str = "(no values)",
        width: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.title = title
        self.title_rows = max(0, title_rows)
        self.before = _sorted(before)
        self.after = _sorted(after)
        self.grid = None if grid is None else _sorted(grid)
        spans = [a for a in (self.before, self.after, self.grid) if a is not None and a.size]
        auto_lo = min((float(a[0]) for a in spans), default=0.0)
        auto_hi = max((float(a[-1]) for a in spans), default=0.0)
        self.lo = auto_lo if lo is None else float(lo)
        self.hi = auto_hi if hi is None else float(hi)
        if not self.hi > self.lo:  # a constant group: give it a little room
            pad = abs(self.lo) * 0.01 or 1e-6
            self.lo, self.hi = self.lo - pad, self.hi + pad
        self.grid_count = (
            grid_count if grid_count is not None else (0 if self.grid is None else self.grid.size)
        )
        self.grid_name = grid_name
        self.before_rows = max(1, before_rows)
        self.after_rows = max(1, after_rows)
        self.decimals = decimals
        self.caption = caption
        self.empty_text = empty_text
        self.width = width
        self.color_mode = color_mode
        self.chrome = chrome

    @property
    def height(self) -> int:
        """Lines drawn: title, both histograms, the tick line, the axis numbers, caption."""
        return (
            self.title_rows + self.before_rows + 1 + self.after_rows + 1
            + (1 if self.caption else 0)
        )  # fmt: skip

    def _title_lines(self, width: int) -> list[list[Segment]]:
        if not self.title_rows:
            return []
        lines = wrap_words(self.title, width) if self.title else []
        if len(lines) > self.title_rows:
            lines = lines[: self.title_rows]
            lines[-1] = fit(lines[-1] + " " + ELLIPSIS_MARK, width)
        lines += [""] * (self.title_rows - len(lines))
        return [[Segment(fit(line, width), self.chrome.title)] for line in lines]

    def bins(self, columns: int) -> SnapBins:
        """Counts per column for ``columns`` equal columns from lo to hi (the last one
        includes hi). A value exactly on an inner edge belongs to the column right of it."""
        columns = max(1, columns)
        edges = np.linspace(self.lo, self.hi, columns + 1)

        def count(a: np.ndarray | None) -> np.ndarray:
            if a is None or a.size == 0:
                return np.zeros(columns, dtype=np.int64)
            inside = a[(a >= self.lo) & (a <= self.hi)]
            cuts = np.searchsorted(inside, edges[1:-1], side="left")
            bounds = np.concatenate(([0], cuts, [inside.size]))
            return np.diff(bounds)

        return SnapBins(count(self.before), count(self.after), count(self.grid), edges)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(width, GUTTER + 10), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        for i, line in enumerate(self.render_lines(console, width)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(self, console: Console, width: int) -> list[list[Segment]]:
        ch = self.chrome
        colour = use_color(console, self.color_mode)
        width = max(1, width)
        if self.before.size == 0 and self.after.size == 0:
            return [*self._title_lines(width), [Segment(fit(self.empty_text, width), ch.dim)]]
        gutter = GUTTER if width >= GUTTER + 8 else 0
        columns = max(1, width - gutter)
        b = self.bins(columns)
        before_style = SERIES_COLORS[0] if colour else Style.null()
        after_style = SERIES_COLORS[1] if colour else Style.null()
        lines: list[list[Segment]] = self._title_lines(width)

        # before: bars grow up, in eighths of a row; any non-empty column shows something
        top_b = max(1, int(b.before.max()))
        units = self.before_rows * 8
        heights = np.where(
            b.before > 0, np.maximum(1, np.round(b.before / top_b * units)), 0
        ).astype(int)
        for row in range(self.before_rows):
            floor = (self.before_rows - 1 - row) * 8
            part = np.clip(heights - floor, 0, 8)
            text = "".join(EIGHTHS[k] for k in part)
            label = "before" if row == self.before_rows - 1 else ""
            lines.append(self._line(label, text, before_style, gutter, width))

        # the grid as ticks on an axis line
        if self.grid is not None:
            ticks = "".join(AXIS if n == 0 else TICK_ONE if n == 1 else TICK_MANY for n in b.grid)
        else:
            ticks = AXIS * columns
        lines.append(
            self._line("grid", ticks, ch.accent if colour else Style.null(), gutter, width)
        )

        # after: bars hang down, in halves of a row
        top_a = max(1, int(b.after.max()))
        halves = self.after_rows * 2
        depth = np.where(b.after > 0, np.maximum(1, np.round(b.after / top_a * halves)), 0).astype(
            int
        )
        for row in range(self.after_rows):
            part = np.clip(depth - row * 2, 0, 2)
            text = "".join(" " if k == 0 else HANG_HALF if k == 1 else HANG_FULL for k in part)
            label = "after" if row == 0 else ""
            lines.append(self._line(label, text, after_style, gutter, width))

        lines.append(self._axis_numbers(gutter, columns, width))
        if self.caption:
            lines.append([Segment(fit(self._caption(b, top_b, top_a, width), width), ch.dim)])
        return lines

    def _line(self, label: str, body: str, style: Style, gutter: int, width: int) -> list[Segment]:
        segs = []
        if gutter:
            segs.append(Segment(fit(label, gutter), self.chrome.dim))
        segs.append(Segment(body, style))
        used = gutter + len(body)
        if used < width:
            segs.append(Segment(" " * (width - used)))
        return segs

    def _axis_numbers(self, gutter: int, columns: int, width: int) -> list[Segment]:
        d = self.decimals
        lo, hi = fmt(self.lo, d), fmt(self.hi, d)
        cells = [" "] * columns

        def put(text: str, start: int) -> bool:
            if start < 0 or start + len(text) > columns:
                return False
            if any(c != " " for c in cells[max(0, start - 1) : start + len(text) + 1]):
                return False
            cells[start : start + len(text)] = list(text)
            return True

        put(lo, 0)
        put(hi, columns - len(hi))
        if self.lo < 0 < self.hi:
            col = int((0 - self.lo) / (self.hi - self.lo) * columns)
            put("0", min(columns - 1, col))
        segs = [Segment(" " * gutter)] if gutter else []
        segs.append(Segment("".join(cells), self.chrome.dim))
        used = gutter + columns
        if used < width:
            segs.append(Segment(" " * (width - used)))
        return segs

    def captions(self, b: SnapBins, top_b: int, top_a: int) -> list[str]:
        """The caption, longest first; the first that fits the width is drawn."""
        n = f"{self.before.size:,} weight{'' if self.before.size == 1 else 's'}"
        long_bars = f"tallest bar {top_b:,} before, {top_a:,} after"
        short_bars = f"tallest {top_b:,} / {top_a:,}"
        if self.grid is None:
            name = f"{self.grid_name} " if self.grid_name else ""
            grid = f"{name}grid too fine to draw ({self.grid_count:,} values in range)"
            return [f"{n} · {grid} · {long_bars}", f"{n} · {grid} · {short_bars}", grid]
        grid = f"┬ {self.grid_count:,} grid value{'' if self.grid_count == 1 else 's'}"
        many = " (╥ several per column)" if bool(np.any(b.grid > 1)) else ""
        return [
            f"{n} · {grid}{many} · {long_bars}",
            f"{n} · {grid} · {long_bars}",
            f"{n} · {grid} · {short_bars}",
            f"{grid} · {short_bars}",
            grid,
        ]

    def _caption(self, b: SnapBins, top_b: int, top_a: int, width: int) -> str:
        options = self.captions(b, top_b, top_a)
        return next((c for c in options if cell_len(c) <= width), options[-1])


class SnapHistogram(ChromeCache, Widget):
    """A :class:`SnapHistogramRenderable` that fills its width (not focusable).

    Set the data with :meth:`set_data` (one repaint); the height is fixed by the row
    counts, so new data never needs a new layout.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "snaphistogram--label",
        "snaphistogram--accent",
        "snaphistogram--dim",
        "snaphistogram--title",
    }
    """
    | Class | Description |
    | :- | :- |
    | `snaphistogram--label` | Reserved for text in the data. |
    | `snaphistogram--accent` | The grid ticks. |
    | `snaphistogram--dim` | Margin labels, axis numbers, the caption. |
    | `snaphistogram--title` | The title lines. |
    """

    _chrome_prefix = "snaphistogram"

    DEFAULT_CSS = """
    SnapHistogram {
        width: 1fr;
        height: auto;
    }
    SnapHistogram > .snaphistogram--label { color: $foreground; }
    SnapHistogram > .snaphistogram--accent { color: $accent; }
    SnapHistogram > .snaphistogram--dim { color: $foreground-muted; }
    SnapHistogram > .snaphistogram--title { color: $foreground; text-style: bold; }
    """

    before_rows: reactive[int] = reactive(3, layout=True)
    after_rows: reactive[int] = reactive(2, layout=True)
    title_rows: reactive[int] = reactive(0, layout=True)
    title: reactive[str] = reactive("")

    def __init__(
        self,
        *,
        before_rows: int = 3,
        after_rows: int = 2,
        title_rows: int = 0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(SnapHistogram.before_rows, before_rows)
        self.set_reactive(SnapHistogram.after_rows, after_rows)
        self.set_reactive(SnapHistogram.title_rows, title_rows)
        self._data: dict = {"before": (), "after": ()}
        self._empty = "(no values)"

    def set_data(
        self,
        before: object,
        after: object,
        grid: object | None = None,
        *,
        lo: float | None = None,
        hi: float | None = None,
        grid_count: int | None = None,
        grid_name: str = "",
        decimals: int = 3,
        title: str | None = None,
    ) -> None:
        """Show these values (sorted arrays are drawn without sorting again)."""
        if title is not None:
            self.set_reactive(SnapHistogram.title, title)
        self._data = {
            "before": before,
            "after": after,
            "grid": grid,
            "lo": lo,
            "hi": hi,
            "grid_count": grid_count,
            "grid_name": grid_name,
            "decimals": decimals,
        }
        self.refresh()

    def clear(self, text: str = "(no values)", title: str | None = None) -> None:
        """Show only ``text`` (e.g. while the values are being computed)."""
        if title is not None:
            self.set_reactive(SnapHistogram.title, title)
        self._data = {"before": (), "after": ()}
        self._empty = text
        self.refresh()

    def renderable(self, width: int | None = None) -> SnapHistogramRenderable:
        return SnapHistogramRenderable(
            before_rows=self.before_rows,
            after_rows=self.after_rows,
            title=self.title,
            title_rows=self.title_rows,
            empty_text=self._empty,
            width=width,
            color_mode=color_mode_for(self),
            chrome=self.chrome(),
            **self._data,
        )

    def render(self) -> TextualRenderResult:
        width = self.content_region.width if self.is_mounted else 0
        return self.renderable(width or None)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.title_rows + self.before_rows + self.after_rows + 3


# -- a row of choices ------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionGroup:
    """One labelled set of choices: ``label`` then every option, ``selected`` marked."""

    label: str
    options: tuple[str, ...]
    selected: int | None = None
    enabled: bool = True
    note: str = ""
    """Shown dimmed after the options (e.g. why the group is disabled)."""


class OptionRowRenderable:
    """Groups of choices laid out left to right, wrapping (indented) when they do not fit.

    Args:
        groups: The groups, in order.
        hint: Shown dimmed at the end (e.g. the keys: ``f F``).
        label_width: Pad the first group's label to this many cells (to align the
            options of several rows).
        width: Width to fill (None = console width).
    """

    def __init__(
        self,
        groups: Sequence[OptionGroup],
        *,
        hint: str = "",
        label_width: int = 0,
        width: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.groups = tuple(groups)
        self.hint = hint
        self.label_width = label_width
        self.width = width
        self.color_mode = color_mode
        self.chrome = chrome

    def _units(self, colour: bool) -> list[list[tuple[str, Style]]]:
        """The row as unbreakable units of (text, style) pieces; lines break between units.
        A group's label stays with its first option."""
        ch = self.chrome
        units: list[list[tuple[str, Style]]] = []
        for g, group in enumerate(self.groups):
            label = group.label
            if g == 0 and self.label_width:
                label = label.ljust(self.label_width)
            elif label:
                label += " "
            head: list[tuple[str, Style]] = []
            if g:
                head.append(("  ", Style.null()))
            if label:
                head.append((label, ch.dim if colour else Style.null()))
            for i, option in enumerate(group.options):
                chosen = i == group.selected
                if chosen:
                    text = f" {option} " if colour else f"[{option}]"
                    style = (_REVERSE if group.enabled else ch.dim) if colour else _BOLD
                else:
                    text = f" {option} "
                    style = ch.label if group.enabled else ch.dim
                units.append([*head, (text, style)] if i == 0 else [(text, style)])
            if not group.options and head:
                units.append(head)
            if group.note:
                units.append([(" " + group.note, ch.dim)])
        if self.hint:
            units.append([("  " + self.hint, ch.dim)])
        return units

    def layout_lines(self, width: int, colour: bool = True) -> list[list[tuple[str, Style]]]:
        """The pieces of each line at ``width`` (a continuation line starts indented)."""
        width = max(1, width)
        lines: list[list[tuple[str, Style]]] = [[]]
        used = 0
        for unit in self._units(colour):
            n = sum(cell_len(t) for t, _ in unit)
            if used and used + n > width:
                first, style = unit[0]
                unit = [("  " + first.lstrip(), style), *unit[1:]]
                if not unit[0][0].strip():  # a unit that was only a gap
                    unit = unit[1:] or [("  ", Style.null())]
                lines.append([])
                n = sum(cell_len(t) for t, _ in unit)
                used = 0
            lines[-1].extend(unit)
            used += n
        return lines

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(width, 10), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        colour = use_color(console, self.color_mode)
        for i, pieces in enumerate(self.layout_lines(width, colour)):
            if i:
                yield Segment.line()
            line = [Segment(t, s) for t, s in pieces]
            yield from Segment.adjust_line_length(line, width)


class OptionRow(ChromeCache, Widget):
    """One or more :class:`OptionGroup` on a line (not focusable: keys live on the screen)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"optionrow--label", "optionrow--dim"}
    """
    | Class | Description |
    | :- | :- |
    | `optionrow--label` | Options not chosen. |
    | `optionrow--dim` | Group labels, notes, disabled groups, the key hint. |
    """

    _chrome_prefix = "optionrow"

    DEFAULT_CSS = """
    OptionRow {
        width: 1fr;
        height: auto;
    }
    OptionRow > .optionrow--label { color: $foreground; }
    OptionRow > .optionrow--dim { color: $foreground-muted; }
    """

    def __init__(
        self,
        groups: Sequence[OptionGroup] = (),
        *,
        hint: str = "",
        label_width: int = 0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.groups: tuple[OptionGroup, ...] = tuple(groups)
        self.hint = hint
        self.label_width = label_width
        self._lines = 1

    def set_groups(self, groups: Sequence[OptionGroup], hint: str | None = None) -> None:
        """Show these groups: a repaint (none if nothing changed), plus a layout only if
        the line count changes."""
        groups = tuple(groups)
        hint = self.hint if hint is None else hint
        if groups == self.groups and hint == self.hint:
            return
        self.groups, self.hint = groups, hint
        width = self.content_region.width if self.is_mounted else 0
        lines = self._count_lines(width) if width else self._lines
        self.refresh(layout=lines != self._lines)

    def _count_lines(self, width: int) -> int:
        plain = OptionRowRenderable(self.groups, hint=self.hint, label_width=self.label_width)
        return len(plain.layout_lines(width))

    def renderable(self, width: int | None = None) -> OptionRowRenderable:
        return OptionRowRenderable(
            self.groups,
            hint=self.hint,
            label_width=self.label_width,
            width=width,
            color_mode=color_mode_for(self),
            chrome=self.chrome(),
        )

    def render(self) -> TextualRenderResult:
        width = self.content_region.width if self.is_mounted else 0
        return self.renderable(width or None)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._lines = self._count_lines(width) if width else 1
        return self._lines


# -- an aligned table ------------------------------------------------------------------------


class QuantTableRenderable:
    """Rows of text in aligned columns, with a header and one highlighted row.

    Args:
        header: Column titles.
        rows: The cells, already formatted (one tuple per row).
        align: One letter per column, ``l`` or ``r`` (default: first left, rest right).
        highlight: Index of the row to mark (``▶`` and the accent style), or None.
        title: Optional line above the header.
        note: Optional dimmed line below the rows (cut to the width).
        width: Width to fill (None = console width). Lines longer than it end in ``…``.
    """

    def __init__(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        align: str | None = None,
        highlight: int | None = None,
        title: str | None = None,
        note: str | None = None,
        width: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.header = tuple(header)
        self.rows = tuple(tuple(r) for r in rows)
        n = len(self.header)
        self.align = align or ("l" + "r" * (n - 1) if n else "")
        if len(self.align) != n or any(len(r) != n for r in self.rows):
            raise ValueError("every row and the alignment need one entry per column")
        self.highlight = highlight
        self.title = title
        self.note = note
        self.width = width
        self.color_mode = color_mode
        self.chrome = chrome

    def column_widths(self) -> list[int]:
        return [
            max(cell_len(h), *(cell_len(r[i]) for r in self.rows)) if self.rows else cell_len(h)
            for i, h in enumerate(self.header)
        ]

    def format_row(self, cells: Sequence[str]) -> str:
        parts = []
        for cell, w, a in zip(cells, self.column_widths(), self.align, strict=True):
            pad = " " * (w - cell_len(cell))
            parts.append(cell + pad if a == "l" else pad + cell)
        return "  ".join(parts)

    @property
    def natural_width(self) -> int:
        return 2 + sum(self.column_widths()) + 2 * (len(self.header) - 1)

    @property
    def height(self) -> int:
        if not self.header:
            return 1 if self.title else 0
        return (1 if self.title else 0) + 1 + len(self.rows) + (1 if self.note else 0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(width, self.natural_width), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        for i, line in enumerate(self.render_lines(console, width)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(self, console: Console, width: int) -> list[list[Segment]]:
        ch = self.chrome
        colour = use_color(console, self.color_mode)
        lines: list[list[Segment]] = []
        if self.title:
            lines.append([Segment(fit(self.title, width), ch.title)])
        if not self.header:  # an empty table draws nothing
            return lines
        lines.append([Segment(fit("  " + self.format_row(self.header), width), _BOLD)])
        for i, row in enumerate(self.rows):
            chosen = i == self.highlight
            text = (MARK + " " if chosen else "  ") + self.format_row(row)
            style = (ch.accent if colour else _BOLD) if chosen else ch.label
            lines.append([Segment(fit(text, width), style)])
        if self.note:
            lines.append([Segment(fit(self.note, width), ch.dim)])
        return lines


class QuantTable(ChromeCache, Widget):
    """A :class:`QuantTableRenderable` (not focusable). Update it with :meth:`set_table`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "quanttable--label",
        "quanttable--accent",
        "quanttable--dim",
        "quanttable--title",
    }
    """
    | Class | Description |
    | :- | :- |
    | `quanttable--label` | Ordinary rows. |
    | `quanttable--accent` | The highlighted row. |
    | `quanttable--dim` | The note. |
    | `quanttable--title` | The title line. |
    """

    _chrome_prefix = "quanttable"

    DEFAULT_CSS = """
    QuantTable {
        width: 1fr;
        height: auto;
    }
    QuantTable > .quanttable--label { color: $foreground; }
    QuantTable > .quanttable--accent { color: $accent; text-style: bold; }
    QuantTable > .quanttable--dim { color: $foreground-muted; }
    QuantTable > .quanttable--title { color: $foreground; text-style: bold; }
    """

    def __init__(
        self,
        header: Sequence[str] = (),
        rows: Sequence[Sequence[str]] = (),
        *,
        align: str | None = None,
        highlight: int | None = None,
        title: str | None = None,
        note: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._table = dict(
            header=tuple(header), rows=tuple(rows), align=align, highlight=highlight,
            title=title, note=note,
        )  # fmt: skip

    @property
    def rows(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(r) for r in self._table["rows"])

    @property
    def highlight(self) -> int | None:
        return self._table["highlight"]

    def set_table(self, **changes: object) -> None:
        """Change any of header, rows, align, highlight, title, note (one repaint; a
        layout only when the number of lines changes)."""
        if all(self._table.get(k) == v for k, v in changes.items()):
            return  # nothing new: no repaint
        before = self._height()
        self._table.update(changes)
        self.refresh(layout=self._height() != before)

    def _height(self) -> int:
        t = self._table
        if not t["header"]:
            return 1 if t["title"] else 0
        return (1 if t["title"] else 0) + 1 + len(t["rows"]) + (1 if t["note"] else 0)

    def renderable(self, width: int | None = None) -> QuantTableRenderable:
        return QuantTableRenderable(
            width=width,
            color_mode=color_mode_for(self),
            chrome=self.chrome(),
            **self._table,  # type: ignore[arg-type]
        )

    def render(self) -> TextualRenderResult:
        width = self.content_region.width if self.is_mounted else 0
        return self.renderable(width or None)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._height()


# -- texts that agree, then part ---------------------------------------------------------------


@dataclass(frozen=True)
class TextRow:
    """One labelled text: ``common`` (shared with the other rows) then ``rest``."""

    label: str
    common: str
    rest: str
    mark_rest: bool = False
    """Draw ``rest`` underlined in the accent style (where this text departs)."""


class TextCompareRenderable:
    """Labelled texts one under the other, each wrapped beside its label and cut to
    ``max_lines`` (ending in ``…``); the part after the shared start can be marked.

    Args:
        rows: The texts.
        max_lines: Lines per text at most (None = all).
        width: Width to fill (None = console width).
    """

    def __init__(
        self,
        rows: Sequence[TextRow],
        *,
        max_lines: int | None = 3,
        width: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.rows = tuple(rows)
        self.max_lines = max_lines
        self.width = width
        self.color_mode = color_mode
        self.chrome = chrome

    @property
    def label_width(self) -> int:
        return max((cell_len(r.label) for r in self.rows), default=0) + 1

    def wrap(self, row: TextRow, width: int) -> list[list[tuple[str, bool]]]:
        """The text of ``row`` as lines of (chunk, marked) pieces at ``width`` cells,
        broken at spaces where possible; line breaks in the text become ``⏎``."""
        common = _visible(row.common)
        rest = _visible(row.rest)
        if common.strip():
            common = common.lstrip()
        else:  # nothing shared: the text starts in ``rest``
            common, rest = "", rest.lstrip()
        chars: list[tuple[str, bool]] = [(c, False) for c in common]
        chars += [(c, row.mark_rest) for c in rest]
        width = max(1, width)
        lines: list[list[tuple[str, bool]]] = []
        start = 0
        while start < len(chars):
            used, end, last_space = 0, start, -1
            while end < len(chars) and used + cell_len(chars[end][0]) <= width:
                if chars[end][0] == " ":
                    last_space = end
                used += cell_len(chars[end][0])
                end += 1
            if end < len(chars) and last_space > start:
                end = last_space + 1
            lines.append(_runs(chars[start:end]))
            start = end
        return lines or [[]]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(width, 20), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        for i, line in enumerate(self.render_lines(console, width)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(self, console: Console, width: int) -> list[list[Segment]]:
        ch = self.chrome
        colour = use_color(console, self.color_mode)
        marked = Style(underline=True) + (ch.accent if colour else _BOLD)
        lw = self.label_width if width > self.label_width + 8 else 0
        out: list[list[Segment]] = []
        for row in self.rows:
            lines = self.wrap(row, width - lw)
            cut = self.max_lines is not None and len(lines) > self.max_lines
            if cut:
                lines = lines[: self.max_lines]
            for i, pieces in enumerate(lines):
                segs = [Segment(fit(row.label if i == 0 else "", lw), ch.title)] if lw else []
                segs += [Segment(text, marked if m else ch.label) for text, m in pieces]
                if cut and i == len(lines) - 1:
                    segs.append(Segment("…", ch.dim))
                out.append(list(Segment.adjust_line_length(segs, width)))
        return out


def _visible(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "⏎").replace("\t", "⇥")


def _runs(chars: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    runs: list[tuple[str, bool]] = []
    for c, m in chars:
        if runs and runs[-1][1] == m:
            runs[-1] = (runs[-1][0] + c, m)
        else:
            runs.append((c, m))
    return runs


# -- label / value lines -------------------------------------------------------------------


Value = str | Text


class FactsRenderable:
    """``label  value`` lines: labels in a dim column, values wrapped beside them.

    Args:
        rows: (label, value) pairs; a value is a ``str`` or a styled ``Text``.
        title: Optional first line (a ``str`` is drawn in the title style).
        label_width: Width of the label column (default: the longest label + 2).
        width: Width to fill (None = console width).
    """

    def __init__(
        self,
        rows: Sequence[tuple[str, Value]],
        *,
        title: Value | None = None,
        label_width: int | None = None,
        width: int | None = None,
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.rows = tuple(rows)
        self.title = title
        self.label_width = (
            label_width
            if label_width is not None
            else max((cell_len(label) for label, _ in self.rows), default=0) + 2
        )
        self.width = width
        self.chrome = chrome

    def count_lines(self, width: int) -> int:
        """How many lines :meth:`render_lines` draws at ``width`` (the same wrapping rule,
        without building a single segment: cheap enough for every key press)."""
        width = max(1, width)
        lw = self.label_width if width >= self.label_width + 12 else 0
        n = 0 if self.title is None else wrapped_count(_plain(self.title), width)
        for _, value in self.rows:
            if lw:
                n += wrapped_count(_plain(value), width - lw)
            else:
                n += 1 + wrapped_count(_plain(value), width)
        return n

    def render_lines(self, console: Console, width: int) -> list[list[Segment]]:
        ch = self.chrome
        width = max(1, width)
        lw = self.label_width if width >= self.label_width + 12 else 0
        out: list[list[Segment]] = []
        if self.title is not None:
            title = self.title if isinstance(self.title, Text) else Text(self.title, ch.title)
            for line in title.wrap(console, width):
                out.append(_line_segments(console, line, width))
        for label, value in self.rows:
            text = value if isinstance(value, Text) else Text(value, ch.label)
            if lw:
                wrapped = text.wrap(console, width - lw) or [Text("")]
                for i, line in enumerate(wrapped):
                    head = Segment(fit(label if i == 0 else "", lw), ch.dim)
                    out.append([head, *_line_segments(console, line, width - lw)])
            else:  # too narrow for a column: label on its own line
                out.append([Segment(fit(label, width), ch.dim)])
                for line in text.wrap(console, width):
                    out.append(_line_segments(console, line, width))
        return out

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(width, self.label_width + 12), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        for i, line in enumerate(self.render_lines(console, width)):
            if i:
                yield Segment.line()
            yield from line


def _plain(value: Value) -> str:
    return value.plain if isinstance(value, Text) else value


def wrapped_count(text: str, width: int) -> int:
    """Lines ``text`` takes when Rich wraps it at ``width`` (at least 1).

    >>> wrapped_count("hello world this is a test of wrapping", 10)
    5
    """
    width = max(1, width)
    return sum(len(divide_line(line, width)) + 1 for line in text.split("\n")) or 1


def wrap_words(text: str, width: int) -> list[str]:
    """``text`` broken into lines of at most ``width`` cells, at spaces where possible."""
    width = max(1, width)
    out = []
    for line in text.split("\n"):
        cuts = [0, *divide_line(line, width), len(line)]
        out += [line[a:b].rstrip() for a, b in zip(cuts, cuts[1:], strict=False)]
    return out


def _line_segments(console: Console, line: Text, width: int) -> list[Segment]:
    line = line.copy()
    line.rstrip()
    segs = list(line.render(console))
    segs = [s for s in segs if s.text != "\n"]
    return list(Segment.adjust_line_length(segs, width))


class Facts(ChromeCache, Widget):
    """A :class:`FactsRenderable` (not focusable). Update it with :meth:`set_rows`: one
    repaint, and a new layout only when the number of lines changes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"facts--label", "facts--dim", "facts--title"}
    """
    | Class | Description |
    | :- | :- |
    | `facts--label` | Values given as plain strings. |
    | `facts--dim` | The label column. |
    | `facts--title` | A title given as a plain string. |
    """

    _chrome_prefix = "facts"

    DEFAULT_CSS = """
    Facts {
        width: 1fr;
        height: auto;
    }
    Facts > .facts--label { color: $foreground; }
    Facts > .facts--dim { color: $foreground-muted; }
    Facts > .facts--title { color: $foreground; text-style: bold; }
    """

    def __init__(
        self,
        rows: Sequence[tuple[str, Value]] = (),
        *,
        title: Value | None = None,
        label_width: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.rows: tuple[tuple[str, Value], ...] = tuple(rows)
        self.title = title
        self.label_width = label_width
        self._height = 1
        self._floor = (0, 0)  # (width, lines): the most lines needed at this width so far

    def plain(self) -> str:
        """Everything shown, as plain text lines (for tests and screen readers)."""
        lines = [] if self.title is None else [str(self.title)]
        lines += [f"{label}  {value}" for label, value in self.rows]
        return "\n".join(lines)

    def set_rows(self, rows: Sequence[tuple[str, Value]], title: Value | None = None) -> None:
        """Show these rows. The height only grows (at one width): values that need a line
        less leave it blank rather than pull everything below up by one and back down on
        the next change, which would cost a layout per key press."""
        rows = tuple(rows)
        if rows == self.rows and (title is None or title == self.title):
            return  # nothing new: no repaint
        self.rows = rows
        if title is not None:
            self.title = title
        width = self.content_region.width if self.is_mounted else 0
        height = self._height_for(width) if width else self._height
        self.refresh(layout=height != self._height)

    def _height_for(self, width: int) -> int:
        lines = max(1, self._count_lines(width))
        floor_width, floor = self._floor
        if floor_width == width:
            lines = max(lines, floor)
        self._floor = (width, lines)
        return lines

    def renderable(self, width: int | None = None) -> FactsRenderable:
        return FactsRenderable(
            self.rows,
            title=self.title,
            label_width=self.label_width,
            width=width,
            chrome=self.chrome(),
        )

    def _count_lines(self, width: int) -> int:
        renderable = FactsRenderable(self.rows, title=self.title, label_width=self.label_width)
        return renderable.count_lines(width)

    def render(self) -> TextualRenderResult:
        width = self.content_region.width if self.is_mounted else 0
        return self.renderable(width or None)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._height = self._height_for(width) if width else 1
        return self._height
