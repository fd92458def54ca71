"""A vector (a 128-d embedding, one head's q/k/v …) as a strip of coloured cells.

``VectorStripRenderable`` draws one cell per dimension, coloured by a diverging (or
sequential) map, wrapping to the width; each line starts with the index of its first
dimension. Optionally the numbers are printed under the cells (cells widen to fit them).
A legend gives the colour range and where the min and max are. Without colour the cells
are glyphs (``-=≡`` negative, ``+*#`` positive, blank near zero).

``VectorStrip`` is the thin focusable widget: a cursor on one dimension (shown as ``◆``
or ``[ ]``, and spelled out on a status line), moved by keys, posting
``VectorStrip.DimSelected``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.app import RenderResult as TextualRenderResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from llm_anatomy_tui.widgets._base import color_mode_for
from llm_anatomy_tui.widgets._format import fit, fmt
from llm_anatomy_tui.widgets.colors import (
    DEFAULT_CHROME,
    Chrome,
    CMapLike,
    ColorMode,
    get_cmap,
    use_color,
)
from llm_anatomy_tui.widgets.heatmap import cached_chrome, needs_relayout

CURSOR_GLYPH = "◆"
_BOLD = Style(bold=True)


@dataclass(frozen=True)
class StripLayout:
    cell_width: int
    per_line: int
    line_start: int
    """First wrapped line shown (when the height cuts the strip)."""
    line_stop: int
    lines_total: int
    index_width: int
    width: int


class VectorStripRenderable:
    """One vector as coloured cells, wrapped, with optional numbers and a legend.

    Args:
        values: The vector (any shape is flattened).
        cmap: ``"diverging"`` (default, for signed values) or ``"sequential"``.
        vmin, vmax: Colour range (default ±max|v|, or min..max when sequential). Give two
            strips the same range to compare them cell by cell.
        show_values: Print each number under its cell.
        decimals: Places for every number (cells, legend, status).
        cell_width: Force a cell width (default: 1, wider for short vectors, or the width
            of the numbers when they are shown).
        cursor: Index of the selected dimension, or None.
        title: Optional first line (e.g. 'embedding of " bank" (id 6310)').
        legend: Draw the range / min / max line.
        origin: Preferred first wrapped line when the height cuts the strip.
        width, height: Size to fill (None = console width / unlimited).
        color_mode, chrome: As for every widget here.
    """

    def __init__(
        self,
        values: object,
        *,
        cmap: CMapLike = "diverging",
        vmin: float | None = None,
        vmax: float | None = None,
        show_values: bool = False,
        decimals: int = 2,
        cell_width: int | None = None,
        cursor: int | None = None,
        title: str | None = None,
        legend: bool = True,
        origin: int | None = None,
        width: int | None = None,
        height: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.values = np.asarray(values, dtype=np.float64).reshape(-1)
        self.cmap = get_cmap(cmap)
        lo, hi = self.cmap.auto_range(self.values)
        self.vmin = lo if vmin is None else float(vmin)
        self.vmax = hi if vmax is None else float(vmax)
        self.show_values = show_values
        self.decimals = decimals
        self.cell_width = cell_width
        n = len(self.values)
        self.cursor = cursor if cursor is not None and 0 <= cursor < n else None
        self.title = title
        self.legend = legend
        self.origin = origin
        self.width = width
        self.height = height
        self.color_mode = color_mode
        self.chrome = chrome
        finite = self.values[np.isfinite(self.values)]
        if finite.size:
            self._number_width = max(
                len(fmt(finite.min(), decimals)), len(fmt(finite.max(), decimals))
            )
        else:
            self._number_width = len(fmt(0.0, decimals))

    def _chrome_lines(self) -> int:
        extra = (1 if self.title else 0) + (1 if self.legend else 0)
        return extra + (1 if self.cursor is not None else 0)

    def layout(self, width: int, height: int | None) -> StripLayout:
        n = len(self.values)
        index_w = len(str(max(0, n - 1))) + 1
        area = max(1, width - index_w)
        if self.cell_width is not None:
            cw = max(1, self.cell_width)
        elif self.show_values:
            cw = self._number_width + 1
        else:
            cw = 1 if n == 0 or n > area else max(1, min(4, area // n))
        per_line = max(1, area // cw)
        total = max(1, -(-n // per_line))
        rows_per_line = 2 if self.show_values else 1
        first, stop = 0, total
        if height is not None:
            room = max(1, (height - self._chrome_lines()) // rows_per_line)
            if total > room:
                room = max(1, (height - self._chrome_lines() - 1) // rows_per_line)
                focus = None if self.cursor is None else self.cursor // per_line
                if self.origin is not None and focus is not None:
                    first = max(0, min(self.origin, total - room))
                    if focus < first:
                        first = focus
                    elif focus >= first + room:
                        first = focus - room + 1
                elif focus is not None:
                    first = max(0, min(focus - room // 2, total - room))
                stop = first + room
        # every line is the full width: the legend and status need the room even when a
        # short vector's cells do not
        return StripLayout(cw, per_line, first, stop, total, index_w, max(1, width))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(width, 20), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        height = self.height if self.height is not None else options.height
        for i, line in enumerate(self.render_lines(console, width, height)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(
        self, console: Console, width: int, height: int | None = None
    ) -> list[list[Segment]]:
        colour = use_color(console, self.color_mode)
        lay = self.layout(width, height)
        ch = self.chrome
        n = len(self.values)
        cw = lay.cell_width
        lines: list[list[Segment]] = []
        if self.title:
            lines.append([Segment(fit(self.title, width), ch.title)])
        if n == 0:
            lines.append([Segment(fit("(empty vector)", width), ch.dim)])
            return lines
        levels = self.cmap.level_array(self.values, self.vmin, self.vmax)
        for line in range(lay.line_start, lay.line_stop):
            a = line * lay.per_line
            b = min(n, a + lay.per_line)
            segs = [Segment(fit(str(a), lay.index_width - 1, "right") + " ", ch.dim)]
            nums = [Segment(" " * lay.index_width)]
            for i in range(a, b):
                lv = int(levels[i])
                is_cur = i == self.cursor
                if lv < 0:
                    text, style = fit("?", cw, "center"), ch.dim
                elif colour:
                    text, style = " " * cw, self.cmap.bg_styles[lv]
                else:
                    text, style = self.cmap.glyphs[lv] * cw, Style.null()
                if is_cur:
                    if cw >= 2:
                        fill = " " if colour else self.cmap.glyphs[max(lv, 0)]
                        text = "[" + fill * (cw - 2) + "]"
                    else:
                        text = CURSOR_GLYPH
                    style = (style + _BOLD) if colour else ch.accent
                segs.append(Segment(text, style))
                if self.show_values:
                    num = fit(fmt(self.values[i], self.decimals), cw - 1, "right")
                    nums.append(Segment(" " + num, ch.accent if is_cur else ch.label))
            lines.append(_exact(segs, lay.width))
            if self.show_values:
                lines.append(_exact(nums, lay.width))
        if lay.line_stop - lay.line_start < lay.lines_total:
            a = lay.line_start * lay.per_line
            b = min(n, lay.line_stop * lay.per_line)
            note = f"dims {a}–{b - 1} of {n}"
            lines.append([Segment(fit(note, lay.width), ch.dim)])
        if self.legend:
            lines.append(_exact(self._legend(colour, lay.width), lay.width))
        if self.cursor is not None:
            i = self.cursor
            text = f"dim {i} = {fmt(self.values[i], self.decimals)}"
            lines.append([Segment(fit(text, lay.width), ch.label)])
        return lines

    def _legend(self, colour: bool, width: int) -> list[Segment]:
        d = self.decimals
        finite = np.isfinite(self.values)
        parts = []
        if finite.any():
            vals = np.where(finite, self.values, np.nan)
            i_min, i_max = int(np.nanargmin(vals)), int(np.nanargmax(vals))
            parts.append(f"min {fmt(vals[i_min], d)} @{i_min}")
            parts.append(f"max {fmt(vals[i_max], d)} @{i_max}")
        stats = "  ".join(parts)
        lo, hi = fmt(self.vmin, d), fmt(self.vmax, d)
        label = self.chrome.label
        if colour:
            ramp_n = max(0, min(9, width - len(lo) - len(hi) - 4 - len(stats)))
            segs = [Segment(lo + " ", label)]
            for k in range(ramp_n):
                lv = round(k * (self.cmap.levels - 1) / max(1, ramp_n - 1))
                segs.append(Segment(" ", self.cmap.bg_styles[lv]))
            segs.append(Segment(" " + hi + "  ", label))
        else:
            segs = [Segment(f"{lo} {self.cmap.legend_glyphs()} {hi}  ", label)]
        segs.append(Segment(stats, self.chrome.dim))
        return segs


def _exact(line: list[Segment], width: int) -> list[Segment]:
    length = sum(len(s.text) for s in line)
    if length < width:
        return [*line, Segment(" " * (width - length))]
    if length > width:
        return list(Segment.adjust_line_length(line, width))
    return line


class VectorStrip(Widget, can_focus=True):
    """A focusable vector strip with a cursor on one dimension.

    Moving the cursor posts :class:`VectorStrip.DimSelected`.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vectorstrip--label",
        "vectorstrip--accent",
        "vectorstrip--dim",
        "vectorstrip--title",
    }
    """
    | Class | Description |
    | :- | :- |
    | `vectorstrip--label` | Numbers, legend text, status line. |
    | `vectorstrip--accent` | The cursor (without colour) and its number. |
    | `vectorstrip--dim` | Line indices, min/max positions, the "dims 0–51 of 128" note. |
    | `vectorstrip--title` | The title line. |
    """

    DEFAULT_CSS = """
    VectorStrip {
        width: 1fr;
        height: auto;
    }
    VectorStrip > .vectorstrip--label { color: $foreground; }
    VectorStrip > .vectorstrip--accent { color: $accent; text-style: bold; }
    VectorStrip > .vectorstrip--dim { color: $foreground-muted; }
    VectorStrip > .vectorstrip--title { color: $foreground; text-style: bold; }
    VectorStrip:focus > .vectorstrip--title { color: $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "left",
            "cursor_left",
            "Previous dim",
            show=False,
            id="vectorstrip.cursor_left",
            tooltip="Select the previous dimension",
        ),
        Binding(
            "right",
            "cursor_right",
            "Next dim",
            show=False,
            id="vectorstrip.cursor_right",
            tooltip="Select the next dimension",
        ),
        Binding(
            "up",
            "cursor_up",
            "Line up",
            show=False,
            id="vectorstrip.cursor_up",
            tooltip="Move the cursor one wrapped line up",
        ),
        Binding(
            "down",
            "cursor_down",
            "Line down",
            show=False,
            id="vectorstrip.cursor_down",
            tooltip="Move the cursor one wrapped line down",
        ),
        Binding(
            "home",
            "cursor_home",
            "First dim",
            show=False,
            id="vectorstrip.cursor_home",
            tooltip="Select dimension 0",
        ),
        Binding(
            "end",
            "cursor_end",
            "Last dim",
            show=False,
            id="vectorstrip.cursor_end",
            tooltip="Select the last dimension",
        ),
        Binding(
            "v",
            "toggle_values",
            "Numbers",
            id="vectorstrip.toggle_values",
            tooltip="Show or hide the number under each cell",
        ),
    ]

    class DimSelected(Message):
        """The cursor moved to dimension ``index`` holding ``value``."""

        def __init__(self, strip: VectorStrip, index: int, value: float) -> None:
            super().__init__()
            self.strip = strip
            self.index = index
            self.value = value

        @property
        def control(self) -> VectorStrip:
            return self.strip

    values: reactive[np.ndarray] = reactive(lambda: np.zeros(0), always_update=True)
    cursor: reactive[int] = reactive(0)
    cmap: reactive[str] = reactive("diverging")
    vmin: reactive[float | None] = reactive(None)
    vmax: reactive[float | None] = reactive(None)
    show_values: reactive[bool] = reactive(False)
    decimals: reactive[int] = reactive(2)
    title: reactive[str | None] = reactive(None)
    legend: reactive[bool] = reactive(True)
    show_cursor: reactive[bool] = reactive(True)
    """False hides the cursor and status line (e.g. a strip only shown, never explored)."""

    def __init__(
        self,
        values: Sequence[float] | np.ndarray = (),
        *,
        cmap: str = "diverging",
        vmin: float | None = None,
        vmax: float | None = None,
        show_values: bool = False,
        decimals: int = 2,
        title: str | None = None,
        legend: bool = True,
        show_cursor: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._origin: int | None = None
        self._per_line = 1
        self._laid_out_natural: int | None = None  # natural height at the last layout
        self.set_reactive(VectorStrip.values, np.asarray(values, dtype=np.float64).reshape(-1))
        self.set_reactive(VectorStrip.cmap, cmap)
        self.set_reactive(VectorStrip.vmin, vmin)
        self.set_reactive(VectorStrip.vmax, vmax)
        self.set_reactive(VectorStrip.show_values, show_values)
        self.set_reactive(VectorStrip.decimals, decimals)
        self.set_reactive(VectorStrip.title, title)
        self.set_reactive(VectorStrip.legend, legend)
        self.set_reactive(VectorStrip.show_cursor, show_cursor)

    def validate_values(self, values: object) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(-1)

    def validate_cursor(self, cursor: int) -> int:
        n = len(self.values)
        return 0 if n == 0 else min(max(int(cursor), 0), n - 1)

    def watch_values(self) -> None:
        clamped = self.validate_cursor(self.cursor)
        if clamped != self.cursor:
            self.cursor = clamped
        self._fit_height()

    def watch_show_values(self) -> None:
        self._fit_height()

    def watch_title(self) -> None:
        self._fit_height()

    def watch_legend(self) -> None:
        self._fit_height()

    def watch_show_cursor(self) -> None:
        self._fit_height()

    def _natural_height(self, width: int) -> int:
        renderable = self.renderable(width, None)
        lay = renderable.layout(width, None)
        rows = (lay.line_stop - lay.line_start) * (2 if self.show_values else 1)
        return rows + renderable._chrome_lines()

    def _fit_height(self) -> None:
        """With ``height: auto``, ask for a new layout when the natural height changed
        (a longer vector, numbers switched on, a title …); a repaint keeps the old height."""
        width = self.content_region.width if self.is_mounted else 0
        if width and needs_relayout(
            self, self._laid_out_natural, lambda: self._natural_height(width)
        ):
            self.refresh(layout=True)

    def watch_cursor(self, cursor: int) -> None:
        if len(self.values):
            self.post_message(self.DimSelected(self, cursor, float(self.values[cursor])))

    def action_cursor_left(self) -> None:
        self.cursor -= 1

    def action_cursor_right(self) -> None:
        self.cursor += 1

    def action_cursor_up(self) -> None:
        self.cursor -= self._per_line

    def action_cursor_down(self) -> None:
        self.cursor += self._per_line

    def action_cursor_home(self) -> None:
        self.cursor = 0

    def action_cursor_end(self) -> None:
        self.cursor = len(self.values) - 1

    def action_toggle_values(self) -> None:
        self.show_values = not self.show_values

    def renderable(
        self, width: int | None = None, height: int | None = None
    ) -> VectorStripRenderable:
        """The Rich renderable for the current state."""
        return VectorStripRenderable(
            self.values,
            cmap=self.cmap,  # type: ignore[arg-type]
            vmin=self.vmin,
            vmax=self.vmax,
            show_values=self.show_values,
            decimals=self.decimals,
            cursor=self.cursor if (self.show_cursor and len(self.values)) else None,
            title=self.title,
            legend=self.legend,
            origin=self._origin,
            width=width,
            height=height,
            color_mode=color_mode_for(self),
            chrome=cached_chrome(self, "vectorstrip"),
        )

    def render(self) -> TextualRenderResult:
        size = self.content_region.size if self.is_mounted else Size(0, 0)
        renderable = self.renderable(size.width or None, size.height or None)
        if size.width:
            lay = renderable.layout(size.width, size.height or None)
            self._origin = lay.line_start
            self._per_line = lay.per_line
        return renderable

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        natural = self._natural_height(width)
        self._laid_out_natural = natural
        return max(1, min(natural, container.height or natural))
