"""A small multi-series line plot drawn in braille: loss curves (train / val), an
activation function with the current point marked, anything y-against-x.

``LinePlotRenderable`` draws each series as a braille line (2×4 dots per cell), with a y
axis of "nice" ticks, an x axis with tick labels, optional axis labels, vertical marker
lines (e.g. training phases), point marks (``◆`` with a label) and a legend. Without colour
the first series stays braille and the others are drawn with their own glyph (``•``,
``×``, ``+``, ``∘``) so every series can still be told apart.

``LinePlot`` is the thin (not focusable) widget around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.app import RenderResult as TextualRenderResult
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from llm_anatomy_tui.widgets._base import chrome_for, color_mode_for
from llm_anatomy_tui.widgets._format import fit, fmt, sanitize_label
from llm_anatomy_tui.widgets.colors import (
    DEFAULT_CHROME,
    SERIES_COLORS,
    Chrome,
    ColorMode,
    use_color,
)

# bit of each dot in a braille cell, indexed [row 0..3][col 0..1]
_BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)
_HALF_BITS = np.array([[1], [2]], dtype=np.int64)  # upper half ▀, lower half ▄
_DOTS = {"braille": (2, 4), "block": (1, 2)}
_BRAILLE_CHARS = np.array([chr(0x2800 + i) for i in range(256)], dtype="<U1")
_HALF_CHARS = np.array(list(" ▀▄█"), dtype="<U1")
"""Dots per cell (wide, tall) for each drawing mode."""
NO_COLOR_GLYPHS = ("", "•", "×", "+", "∘", "▪")
"""Series glyphs without colour; series 0 keeps its braille line."""
MARK_GLYPH = "◆"


@dataclass(frozen=True)
class Series:
    """One line: ``y`` against ``x`` (default 0, 1, 2 …). NaN breaks the line."""

    name: str
    y: Sequence[float] | np.ndarray
    x: Sequence[float] | np.ndarray | None = None


@dataclass(frozen=True)
class Mark:
    """A labelled point drawn as ``◆`` (e.g. the current z on an activation curve)."""

    x: float
    y: float
    label: str = ""


@dataclass(frozen=True)
class VLine:
    """A vertical marker line at ``x`` with a short label at the top (e.g. a phase)."""

    x: float
    label: str = ""


def nice_ticks(lo: float, hi: float, count: int) -> list[float]:
    """About ``count`` (at least two, where the range allows) round tick values — steps of
    1, 2, 2.5 or 5 × 10^k — within [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or count < 1:
        return [lo] if math.isfinite(lo) else []
    ticks: list[float] = []
    for want in range(max(1, count), max(1, count) + 8):
        raw = (hi - lo) / want
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
        first = math.ceil(lo / step - 1e-9)
        last = math.floor(hi / step + 1e-9)
        ticks = [0.0 if k == 0 else k * step for k in range(first, last + 1)]
        if len(ticks) >= 2:
            break
    return ticks


def tick_decimals(ticks: Sequence[float]) -> int:
    """Fewest decimals that tell the ticks apart."""
    if len(ticks) < 2:
        return 2
    step = abs(ticks[1] - ticks[0])
    return max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 2


class LinePlotRenderable:
    """Series as braille lines with axes, ticks, legend, marks and marker lines.

    Args:
        series: The lines to draw (first on the bottom).
        title: Optional first line.
        x_label, y_label: Axis names (the y label goes on the title line's right).
        xlim, ylim: Axis ranges (default: the data's min..max; y padded to round ticks).
        marks: Labelled points.
        vlines: Vertical marker lines.
        y_decimals, x_decimals: Tick label decimals (default: just enough for the step).
        legend: Draw the legend line.
        dots: ``"braille"`` (2×4 dots per cell, the default) or ``"block"`` (▀ ▄ █, 1×2
            per cell) for terminal fonts without braille.
        width, height: Size (None = console width / 12 lines).
        color_mode, chrome: As for every widget here.
    """

    def __init__(
        self,
        series: Sequence[Series],
        *,
        title: str | None = None,
        x_label: str = "",
        y_label: str = "",
        xlim: tuple[float, float] | None = None,
        ylim: tuple[float, float] | None = None,
        marks: Sequence[Mark] = (),
        vlines: Sequence[VLine] = (),
        y_decimals: int | None = None,
        x_decimals: int | None = None,
        legend: bool = True,
        dots: Literal["braille", "block"] = "braille",
        width: int | None = None,
        height: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        if dots not in _DOTS:
            raise ValueError(f"dots must be 'braille' or 'block', not {dots!r}")
        self.dots = dots
        self.series = []
        for s in series:
            y = np.asarray(s.y, dtype=np.float64).reshape(-1)
            x = (
                np.arange(len(y), dtype=np.float64)
                if s.x is None
                else np.asarray(s.x, dtype=np.float64).reshape(-1)
            )
            n = min(len(x), len(y))
            self.series.append((sanitize_label(s.name), x[:n], y[:n]))
        self.title = title
        self.x_label = x_label
        self.y_label = y_label
        self.marks = list(marks)
        self.vlines = list(vlines)
        self.y_decimals = y_decimals
        self.x_decimals = x_decimals
        self.legend = legend
        self.width = width
        self.height = height
        self.color_mode = color_mode
        self.chrome = chrome
        self.xlim, self.ylim = self._limits(xlim, ylim)

    def _limits(self, xlim, ylim) -> tuple[tuple[float, float], tuple[float, float]]:
        xs = [x[np.isfinite(x) & np.isfinite(y)] for _, x, y in self.series]
        ys = [y[np.isfinite(x) & np.isfinite(y)] for _, x, y in self.series]
        xs.append(np.array([m.x for m in self.marks], dtype=np.float64))
        ys.append(np.array([m.y for m in self.marks], dtype=np.float64))
        allx = np.concatenate(xs) if xs else np.zeros(0)
        ally = np.concatenate(ys) if ys else np.zeros(0)
        if xlim is None:
            xlim = (float(allx.min()), float(allx.max())) if allx.size else (0.0, 1.0)
        if ylim is None:
            ylim = (float(ally.min()), float(ally.max())) if ally.size else (0.0, 1.0)
        x0, x1 = map(float, xlim)
        y0, y1 = map(float, ylim)
        if x1 <= x0:
            x0, x1 = x0 - 0.5, x0 + 0.5
        if y1 <= y0:
            pad = abs(y0) * 0.1 or 0.5
            y0, y1 = y0 - pad, y0 + pad
        return (x0, x1), (y0, y1)

    # -- geometry ---------------------------------------------------------------------

    def _frame(self, width: int, height: int):
        """(plot rows, y ticks, y tick labels, label width, plot columns)."""
        top = 1 if (self.title or self.y_label) else 0
        bottom = 2 + (1 if self.x_label else 0) + (1 if self.legend and self.series else 0)
        rows = max(2, height - top - bottom)
        y_ticks = nice_ticks(self.ylim[0], self.ylim[1], max(1, rows // 3))
        yd = self.y_decimals if self.y_decimals is not None else tick_decimals(y_ticks)
        y_texts = [fmt(t, yd) for t in y_ticks]
        label_w = max([len(t) for t in y_texts] or [1])
        cols = max(4, width - label_w - 1)
        return rows, y_ticks, y_texts, label_w, cols

    def _to_px(self, x: np.ndarray, y: np.ndarray, rows: int, cols: int):
        """Data → pixel coordinates (x right, y down) on the dot grid."""
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        pw, ph = _DOTS[self.dots]
        wpx, hpx = cols * pw, rows * ph
        px = (x - x0) / (x1 - x0) * (wpx - 1)
        py = (y1 - y) / (y1 - y0) * (hpx - 1)
        return px, py

    def _pixels(self, x: np.ndarray, y: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """Boolean dot grid [rows*ph, cols*pw] of the polyline through (x, y); NaN breaks it."""
        pw, ph = _DOTS[self.dots]
        grid = np.zeros((rows * ph, cols * pw), dtype=bool)
        if len(x) == 0:
            return grid
        px, py = self._to_px(x, y, rows, cols)
        ok = np.isfinite(px) & np.isfinite(py)
        xs, ys = px[ok], py[ok]
        if len(px) > 1:
            good = ok[:-1] & ok[1:]
            p0x, p0y, p1x, p1y = px[:-1][good], py[:-1][good], px[1:][good], py[1:][good]
            steps = np.maximum(np.ceil(np.maximum(np.abs(p1x - p0x), np.abs(p1y - p0y))), 1)
            steps = steps.astype(np.int64)
            seg = np.repeat(np.arange(len(steps)), steps)
            start = np.repeat(np.cumsum(steps) - steps, steps)
            t = (np.arange(int(steps.sum())) - start) / steps[seg]
            xs = np.concatenate([p0x[seg] + (p1x - p0x)[seg] * t, xs])
            ys = np.concatenate([p0y[seg] + (p1y - p0y)[seg] * t, ys])
        ix = np.rint(xs).astype(np.int64)
        iy = np.rint(ys).astype(np.int64)
        inside = (ix >= 0) & (ix < cols * pw) & (iy >= 0) & (iy < rows * ph)
        grid[iy[inside], ix[inside]] = True
        return grid

    def _cells(self, pixels: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """(code per cell, dots per cell): braille bits or a half-block code 0..3."""
        pw, ph = _DOTS[self.dots]
        weights = _BRAILLE_BITS if self.dots == "braille" else _HALF_BITS
        code = np.zeros((rows, cols), dtype=np.int64)
        count = np.zeros((rows, cols), dtype=np.int64)
        for i in range(ph):
            for j in range(pw):
                dots = pixels[i::ph, j::pw]
                code += dots * int(weights[i, j])
                count += dots
        return code, count

    # -- Rich protocol ----------------------------------------------------------------

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        return Measurement(min(20, width), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        height = self.height or options.height or 12
        for i, line in enumerate(self.render_lines(console, width, height)):
            if i:
                yield Segment.line()
            yield from line

    def render_lines(self, console: Console, width: int, height: int = 12) -> list[list[Segment]]:
        colour = use_color(console, self.color_mode)
        ch = self.chrome
        rows, y_ticks, y_texts, label_w, cols = self._frame(width, height)
        lines: list[list[Segment]] = []
        if self.title or self.y_label:
            title = self.title or ""
            right = f"y: {self.y_label}" if self.y_label else ""
            gap = width - cell_len(title) - cell_len(right)
            text = title + " " * max(1, gap) + right if right else title
            lines.append([Segment(fit(text, width), ch.title)])

        # per cell: a glyph (numpy unicode grid, so a row is one string) and a style id
        chars = np.full((rows, cols), " ", dtype="<U1")
        style_ids = np.zeros((rows, cols), dtype=np.int16)
        styles: list[Style | None] = [None, ch.dim, ch.accent, ch.label]  # ids 0..3
        series_base = len(styles)
        styles.extend(SERIES_COLORS)
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        pw, ph = _DOTS[self.dots]
        # vertical marker lines first (data draws over them)
        vline_labels: list[tuple[int, str]] = []
        for vl in self.vlines:
            if not (x0 <= vl.x <= x1):
                continue
            c = min(cols - 1, int((vl.x - x0) / (x1 - x0) * (cols * pw - 1)) // pw)
            chars[:, c] = "┊"
            style_ids[:, c] = 1
            if vl.label:
                vline_labels.append((c, sanitize_label(vl.label)))
        # all series on one dot grid; each cell takes the colour of the series with the
        # most dots in it (later series win ties), so an overlapped line stays visible
        if self.series:
            codes, counts = [], []
            for _, x, y in self.series:
                code, count = self._cells(self._pixels(x, y, rows, cols), rows, cols)
                codes.append(code)
                counts.append(count)
            code_all = np.bitwise_or.reduce(np.stack(codes), axis=0)
            count_all = np.stack(counts)  # [series, rows, cols]
            n_series = len(self.series)
            table = _BRAILLE_CHARS if self.dots == "braille" else _HALF_CHARS
            drawn = code_all > 0
            if colour:
                owner = n_series - 1 - np.argmax(count_all[::-1], axis=0)
                chars[drawn] = table[code_all[drawn]]
                style_ids[drawn] = series_base + owner[drawn] % len(SERIES_COLORS)
            else:
                # series 0 keeps its dots; series 1+ put their own glyph wherever they are
                first = codes[0] > 0
                chars[first] = table[codes[0][first]]
                for j in range(1, n_series):
                    chars[count_all[j] > 0] = NO_COLOR_GLYPHS[j % len(NO_COLOR_GLYPHS)]
                style_ids[drawn] = 3
        # labels of the marker lines, in the top row, right of the line
        for c, label in vline_labels:
            for i, chx in enumerate(label[: max(0, cols - c - 1)]):
                chars[0, c + 1 + i] = chx
                style_ids[0, c + 1 + i] = 1
        # marks on top
        for m in self.marks:
            px, py = self._to_px(np.array([m.x]), np.array([m.y]), rows, cols)
            if not (-0.5 <= px[0] < cols * pw - 0.5 and -0.5 <= py[0] < rows * ph - 0.5):
                continue
            c, r = int(round(px[0])) // pw, int(round(py[0])) // ph
            chars[r, c] = MARK_GLYPH
            style_ids[r, c] = 2
            label = sanitize_label(m.label)
            if label:
                start = c + 2 if c + 2 + len(label) <= cols else max(0, c - 1 - len(label))
                for i, chx in enumerate(label[: cols - start]):
                    if start + i != c and cell_len(chx) == 1:
                        chars[r, start + i] = chx
                        style_ids[r, start + i] = 2

        # y axis: a tick label on the row nearest each tick value
        tick_rows: dict[int, str] = {}
        for t, text in zip(y_ticks, y_texts, strict=True):
            r = int(round((y1 - t) / (y1 - y0) * (rows * ph - 1))) // ph
            if 0 <= r < rows and r not in tick_rows:
                tick_rows[r] = text
        row_texts = np.ascontiguousarray(chars).view(f"<U{cols}").reshape(rows)
        for r in range(rows):
            label = tick_rows.get(r)
            segs = [
                Segment(fit(label or "", label_w, "right"), ch.dim),
                Segment("┤" if label else "│", ch.dim),
            ]
            text = str(row_texts[r])
            ids = style_ids[r]
            bounds = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), cols]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                segs.append(Segment(text[a:b], styles[int(ids[a])]))
            lines.append(segs)

        # x axis: ticks and labels
        x_ticks = nice_ticks(x0, x1, max(1, cols // 12))
        xd = self.x_decimals if self.x_decimals is not None else tick_decimals(x_ticks)
        axis = ["─"] * cols
        labels = [" "] * (cols + label_w + 1)
        taken = -1
        for t in x_ticks:
            c = int(round((t - x0) / (x1 - x0) * (cols * pw - 1))) // pw
            if not 0 <= c < cols:
                continue
            axis[c] = "┬"
            text = fmt(t, xd)
            start = label_w + 1 + c - len(text) // 2
            start = max(0, min(start, len(labels) - len(text)))
            if start > taken:
                labels[start : start + len(text)] = list(text)
                taken = start + len(text)
        lines.append([Segment(" " * label_w + "└" + "".join(axis), ch.dim)])
        lines.append([Segment(fit("".join(labels), width), ch.dim)])
        if self.x_label:
            lines.append([Segment(fit(self.x_label, width, "center"), ch.dim)])
        if self.legend and self.series:
            segs = []
            for k, (name, _, _) in enumerate(self.series):
                if colour:
                    swatch = "⣿" if self.dots == "braille" else "█"
                    style = SERIES_COLORS[k % len(SERIES_COLORS)]
                else:
                    swatch = NO_COLOR_GLYPHS[k % len(NO_COLOR_GLYPHS)] or (
                        "⣿" if self.dots == "braille" else "█"
                    )
                    style = ch.label
                segs.append(Segment(swatch, style))
                segs.append(Segment(f" {name}   ", ch.label))
            if self.marks:
                segs.append(Segment(f"{MARK_GLYPH} marked", ch.accent))
            lines.append(_exact(segs, width))
        return [_exact(line, width) for line in lines]


def _exact(line: list[Segment], width: int) -> list[Segment]:
    length = sum(cell_len(s.text) for s in line)
    if length < width:
        return [*line, Segment(" " * (width - length))]
    if length > width:
        return list(Segment.adjust_line_length(line, width))
    return line


class LinePlot(Widget):
    """A line plot that fills its space (not focusable: it has no cursor).

    Set ``series`` (a sequence of :class:`Series`) and optionally ``marks`` / ``vlines``.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "lineplot--label",
        "lineplot--accent",
        "lineplot--dim",
        "lineplot--title",
    }
    """
    | Class | Description |
    | :- | :- |
    | `lineplot--label` | Legend names; series glyphs without colour. |
    | `lineplot--accent` | Marks (◆) and their labels. |
    | `lineplot--dim` | Axes, ticks, marker lines. |
    | `lineplot--title` | The title line. |
    """

    DEFAULT_CSS = """
    LinePlot {
        width: 1fr;
        height: 12;
    }
    LinePlot > .lineplot--label { color: $foreground; }
    LinePlot > .lineplot--accent { color: $accent; text-style: bold; }
    LinePlot > .lineplot--dim { color: $foreground-muted; }
    LinePlot > .lineplot--title { color: $foreground; text-style: bold; }
    """

    series: reactive[tuple[Series, ...]] = reactive(tuple, always_update=True)
    marks: reactive[tuple[Mark, ...]] = reactive(tuple, always_update=True)
    vlines: reactive[tuple[VLine, ...]] = reactive(tuple, always_update=True)
    title: reactive[str | None] = reactive(None)
    x_label: reactive[str] = reactive("")
    y_label: reactive[str] = reactive("")
    xlim: reactive[tuple[float, float] | None] = reactive(None)
    ylim: reactive[tuple[float, float] | None] = reactive(None)
    dots: reactive[str] = reactive("braille")
    """``"braille"`` or ``"block"`` (for fonts without braille)."""

    def __init__(
        self,
        series: Sequence[Series] = (),
        *,
        title: str | None = None,
        x_label: str = "",
        y_label: str = "",
        xlim: tuple[float, float] | None = None,
        ylim: tuple[float, float] | None = None,
        marks: Sequence[Mark] = (),
        vlines: Sequence[VLine] = (),
        dots: Literal["braille", "block"] = "braille",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.set_reactive(LinePlot.series, tuple(series))
        self.set_reactive(LinePlot.marks, tuple(marks))
        self.set_reactive(LinePlot.vlines, tuple(vlines))
        self.set_reactive(LinePlot.title, title)
        self.set_reactive(LinePlot.x_label, x_label)
        self.set_reactive(LinePlot.y_label, y_label)
        self.set_reactive(LinePlot.xlim, xlim)
        self.set_reactive(LinePlot.ylim, ylim)
        self.set_reactive(LinePlot.dots, dots)

    def validate_series(self, series: Sequence[Series]) -> tuple[Series, ...]:
        return tuple(series)

    def validate_marks(self, marks: Sequence[Mark]) -> tuple[Mark, ...]:
        return tuple(marks)

    def validate_vlines(self, vlines: Sequence[VLine]) -> tuple[VLine, ...]:
        return tuple(vlines)

    def renderable(self, width: int | None = None, height: int | None = None) -> LinePlotRenderable:
        """The Rich renderable for the current state."""
        return LinePlotRenderable(
            self.series,
            title=self.title,
            x_label=self.x_label,
            y_label=self.y_label,
            xlim=self.xlim,
            ylim=self.ylim,
            marks=self.marks,
            vlines=self.vlines,
            dots=self.dots,  # type: ignore[arg-type]
            width=width,
            height=height,
            color_mode=color_mode_for(self),
            chrome=chrome_for(self, "lineplot"),
        )

    def render(self) -> TextualRenderResult:
        size = self.content_region.size if self.is_mounted else Size(0, 0)
        return self.renderable(size.width or None, size.height or None)
