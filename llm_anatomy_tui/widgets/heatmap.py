"""A matrix of numbers as coloured cells: attention weights [T, S], raw scores, any 2-D array.

``HeatmapRenderable`` is a plain Rich renderable (no Textual in it): row and column labels,
an optional mask (masked cells are a dim ``·``, never a value colour), a cursor cell with
row/column markers, a colour-scale legend with its numeric range, the number in each
cell when there is room, and glyphs instead of colours when there is no colour.

Matrices bigger than the space scroll around the cursor (``overflow="scroll"``) or are
reduced to blocks (``overflow="aggregate"``), and a note says which part is shown
("rows 40–63 of 256"). ``compact=True`` drops column labels and shortens every line so
several heads fit side by side at 80×24.

``Heatmap`` is the thin focusable widget around it: reactive data, a keyboard cursor and
a ``Heatmap.CellSelected`` message whenever the cursor moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.app import RenderResult as TextualRenderResult
from textual.binding import Binding, BindingType
from textual.css.scalar import Unit
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from llm_anatomy_tui.widgets._base import chrome_for, color_mode_for
from llm_anatomy_tui.widgets._format import fit, fmt, sanitize_label, span_note, window
from llm_anatomy_tui.widgets.colors import (
    DEFAULT_CHROME,
    MASK_GLYPH,
    Chrome,
    CMapLike,
    ColorMode,
    get_cmap,
    use_color,
)

Highlight = Literal["cell", "row", "column", "cross", "none"]
Overflow = Literal["scroll", "aggregate"]
Reduce = Literal["max", "mean"]

CURSOR_GLYPH = "◆"
MASKED = -1
"""Cell key of a masked cell (drawn as a dim ·)."""
NONFINITE = -2
"""Cell key of an unmasked NaN / ±inf (a dim ?, or its text when numbers are shown)."""
ROW_MARK = "▶"
ROW_MARK_RIGHT = "◀"
COL_MARK = "▼"


@dataclass(frozen=True)
class HeatmapLayout:
    """How a heatmap was laid out at one size (kept by the renderable as ``last_layout``)."""

    cell_width: int
    show_values: bool
    row_start: int
    row_stop: int
    col_start: int
    col_stop: int
    block_rows: int = 1
    """Aggregation factor: each drawn row stands for this many matrix rows (1 = none)."""
    block_cols: int = 1
    label_width: int = 0
    col_label_rows: int = 0
    width: int = 0
    height: int = 0
    marker_line: bool = False
    """The ▼ line over the cursor column (dropped first when height is short)."""
    status_line: bool = False
    legend_line: bool = True

    @property
    def aggregated(self) -> bool:
        return self.block_rows > 1 or self.block_cols > 1


def _as_matrix(values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"heatmap values must be 2-D, got shape {arr.shape}")
    return arr


def _reduce_blocks(values: np.ndarray, br: int, bc: int, how: Reduce) -> np.ndarray:
    """[R, C] → [ceil(R/br), ceil(C/bc)] by max or mean over blocks, ignoring NaN
    (masked cells are NaN here; an all-masked block stays NaN)."""
    r, c = values.shape
    rr, cc = math.ceil(r / br), math.ceil(c / bc)
    padded = np.full((rr * br, cc * bc), np.nan)
    padded[:r, :c] = values
    blocks = padded.reshape(rr, br, cc, bc).transpose(0, 2, 1, 3).reshape(rr, cc, br * bc)
    finite = np.isfinite(blocks)
    any_finite = finite.any(axis=2)
    if how == "mean":
        summed = np.where(finite, blocks, 0.0).sum(axis=2)
        count = finite.sum(axis=2)
        out = np.divide(summed, count, out=np.full((rr, cc), np.nan), where=count > 0)
    else:
        out = np.where(finite, blocks, -np.inf).max(axis=2)
        out = np.where(any_finite, out, np.nan)
    return out


class HeatmapRenderable:
    """A 2-D array as coloured cells with labels, mask, cursor, legend and notes.

    Args:
        values: [R, C] numbers (a 1-D array is drawn as one row).
        row_labels: R labels (token texts…); missing ones show the row index.
        col_labels: C labels; missing ones show the column index.
        mask: [R, C] booleans, True where a cell is masked out (e.g. a future key under
            the causal mask). Masked cells show ``·`` and are left out of the colour range.
        cmap: ``"sequential"`` (weights 0..1), ``"diverging"`` (signed scores) or a ColorMap.
        vmin, vmax: Colour range; by default min..max (sequential) or ±max|v| (diverging)
            of the unmasked values. The legend prints the range used.
        cursor: (row, col) of the selected cell, or None.
        highlight: Which markers show the cursor: ``"cell"`` (▶ row, ▼ column and ◆ in the
            cell), ``"row"`` (▶ … ◀), ``"column"`` (▼), ``"cross"`` (all) or ``"none"``.
        show_values: True / False, or None to print numbers only when every column fits.
        decimals: Places for every number shown (cells, legend, status line).
        compact: Short lines, no column labels: for several heatmaps side by side.
        overflow: ``"scroll"`` (a window that follows the cursor) or ``"aggregate"``
            (blocks reduced by ``reduce``) when the matrix is bigger than the space.
        reduce: ``"max"`` or ``"mean"`` for aggregated blocks.
        origin: Preferred top-left (row, col) of the scroll window; moved only as far as
            needed to keep the cursor visible. None centres the window on the cursor.
        title: Optional first line.
        legend: Draw the colour-scale line.
        status: Draw the cursor's value line (when there is a cursor).
        cell_width: Force a cell width in characters (None = automatic).
        row_label_width: Force the row-label width (None = fit the labels, capped).
        width, height: Size to fill (None = the console's width / unlimited height).
        color_mode: ``"auto"``, ``"color"`` or ``"none"`` (glyphs only).
        chrome: Styles for labels, markers, dim things and the title.
    """

    def __init__(
        self,
        values: object,
        *,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        mask: object | None = None,
        cmap: CMapLike = "sequential",
        vmin: float | None = None,
        vmax: float | None = None,
        cursor: tuple[int, int] | None = None,
        highlight: Highlight = "cell",
        show_values: bool | None = None,
        decimals: int = 2,
        compact: bool = False,
        overflow: Overflow = "scroll",
        reduce: Reduce = "max",
        origin: tuple[int, int] | None = None,
        title: str | None = None,
        legend: bool = True,
        status: bool = True,
        cell_width: int | None = None,
        row_label_width: int | None = None,
        width: int | None = None,
        height: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        self.values = _as_matrix(values)
        rows, cols = self.values.shape
        if mask is not None:
            mask_arr = np.asarray(mask, dtype=bool)
            if mask_arr.ndim == 1:
                mask_arr = mask_arr[None, :]
            if mask_arr.shape != self.values.shape:
                raise ValueError(
                    f"mask shape {mask_arr.shape} does not match values shape {self.values.shape}"
                )
            self.mask: np.ndarray | None = mask_arr
        else:
            self.mask = None
        self.row_labels = [
            sanitize_label(row_labels[i])
            if row_labels is not None and i < len(row_labels)
            else str(i)
            for i in range(rows)
        ]
        self.col_labels = [
            sanitize_label(col_labels[j])
            if col_labels is not None and j < len(col_labels)
            else str(j)
            for j in range(cols)
        ]
        self._col_labels_given = col_labels is not None
        self.cmap = get_cmap(cmap)
        if vmin is None or vmax is None:
            auto_lo, auto_hi = self.cmap.auto_range(self._shown())
        self.vmin = auto_lo if vmin is None else float(vmin)
        self.vmax = auto_hi if vmax is None else float(vmax)
        if cursor is not None and rows and cols:
            cursor = (min(max(cursor[0], 0), rows - 1), min(max(cursor[1], 0), cols - 1))
        self.cursor = cursor if rows and cols else None
        self.highlight = highlight
        self.show_values = show_values
        self.decimals = decimals
        self.compact = compact
        self.overflow = overflow
        self.reduce = reduce
        self.origin = origin
        self.title = title
        self.legend = legend
        self.status = status
        self.cell_width = cell_width
        self.row_label_width = row_label_width
        self.width = width
        self.height = height
        self.color_mode = color_mode
        self.chrome = chrome
        self.last_layout: HeatmapLayout | None = None
        self._layout_memo: tuple[tuple[int, int | None], HeatmapLayout] | None = None
        self._widest: int | None = None

    def _shown(self) -> np.ndarray:
        """The unmasked values (what colour ranges and number widths are taken from)."""
        return self.values if self.mask is None else self.values[~self.mask]

    @property
    def _number_width(self) -> int:
        """Characters of the widest number printed (computed when first needed: a layout
        without numbers never asks, and a 256×256 scan per render adds up)."""
        if self._widest is None:
            shown = self._shown()
            finite = shown[np.isfinite(shown)] if shown.size else shown
            d = self.decimals
            if finite.size:
                self._widest = max(len(fmt(finite.min(), d)), len(fmt(finite.max(), d)))
            else:
                self._widest = len(fmt(0.0, d))
        return self._widest

    # -- markers --------------------------------------------------------------------

    @property
    def _row_marks(self) -> bool:
        return self.cursor is not None and self.highlight in ("cell", "row", "cross")

    @property
    def _right_marks(self) -> bool:
        return self.cursor is not None and self.highlight in ("row", "cross")

    @property
    def _col_marks(self) -> bool:
        return self.cursor is not None and self.highlight in ("cell", "column", "cross")

    @property
    def _cell_mark(self) -> bool:
        return self.cursor is not None and self.highlight in ("cell", "cross")

    @property
    def _numeric_cols(self) -> bool:
        return self._col_labels_given is False

    # -- layout ---------------------------------------------------------------------

    def _label_width(self) -> int:
        if self.row_label_width is not None:
            return max(0, self.row_label_width)
        cap = 6 if self.compact else 10
        longest = max((cell_len(s) for s in self.row_labels), default=1)
        return max(1, min(cap, longest))

    def _chrome_lines(self, col_label_rows: int, notes: bool, flags: dict[str, bool]) -> int:
        """Lines around the grid: title, column labels, ▼ line, note, legend, status."""
        return (
            (1 if self.title else 0)
            + col_label_rows
            + flags["marker"]
            + flags["legend"]
            + flags["status"]
            + (1 if notes else 0)
        )

    def layout(self, width: int, height: int | None) -> HeatmapLayout:
        """Choose cell width, numbers on/off, and the visible window or block size.

        Remembered for the last size asked: a widget lays out, then draws, at one size."""
        memo = self._layout_memo
        if memo is not None and memo[0] == (width, height):
            return memo[1]
        lay = self._layout(width, height)
        self._layout_memo = ((width, height), lay)
        return lay

    def _layout(self, width: int, height: int | None) -> HeatmapLayout:
        rows, cols = self.values.shape
        label_w = self._label_width()
        suffix = 1 if self._right_marks else 0
        if self.compact and self.row_label_width is None:
            # give columns priority over label characters, down to 3-character labels
            spare = width - 2 - suffix - cols
            label_w = max(min(3, label_w), min(label_w, spare))
        prefix = 1 + label_w + 1  # mark, label, space
        area = max(1, width - prefix - suffix)
        number_cell = self._number_width + 1

        if self.cell_width is not None:
            cw = max(1, self.cell_width)
            values_on = bool(self.show_values) and cw >= number_cell
        elif self.show_values is True or (
            self.show_values is None and not self.compact and cols * number_cell <= area
        ):
            cw, values_on = number_cell, True
        else:
            values_on = False
            if self.compact:
                cw = 1
            else:
                cw = 2 if cols * 2 <= area or (cols > area and self.overflow == "scroll") else 1

        if self.compact:
            col_label_rows = 0
        elif (
            values_on
            or cw >= 3
            or self._numeric_cols
            or (self.overflow == "aggregate" and cols > area // cw)
        ):
            col_label_rows = 1  # one line of labels, or a ruler of indices
        else:
            col_label_rows = 3

        fit_cols = max(1, area // cw)
        col_overflow = cols > fit_cols
        flags = {
            "marker": self._col_marks and not self.compact,
            "status": self.status and self.cursor is not None,
            "legend": self.legend,
        }
        grid_rows = rows
        if height is not None:
            # when short of height, drop optional lines (▼ line, status, label rows, legend)
            # before giving up grid rows: at least min(rows, 4) rows stay visible
            for drop in ("marker", "status", "labels", "legend", None):
                chrome = self._chrome_lines(col_label_rows, col_overflow, flags)
                grid_rows = height - chrome
                if grid_rows < rows and not col_overflow:
                    grid_rows -= 1  # the "rows a–b of n" note
                if grid_rows >= min(rows, 4) or drop is None:
                    break
                if drop == "labels":
                    col_label_rows = min(col_label_rows, 1)
                else:
                    flags[drop] = False
            grid_rows = max(1, grid_rows)
        row_overflow = rows > grid_rows

        br = bc = 1
        if self.overflow == "aggregate" and (row_overflow or col_overflow):
            if not values_on:
                cw = 1 if cols > area else cw
                fit_cols = max(1, area // cw)
            br = math.ceil(rows / grid_rows) if row_overflow else 1
            bc = math.ceil(cols / fit_cols) if cols > fit_cols else 1
            r0, r1 = 0, math.ceil(rows / br)
            c0, c1 = 0, math.ceil(cols / bc)
        else:
            cur_r = self.cursor[0] if self.cursor is not None else None
            cur_c = self.cursor[1] if self.cursor is not None else None
            r0, r1 = self._scroll(rows, grid_rows, cur_r, self.origin[0] if self.origin else None)
            c0, c1 = self._scroll(cols, fit_cols, cur_c, self.origin[1] if self.origin else None)
        used_width = prefix + (c1 - c0) * cw + suffix
        notes = br > 1 or bc > 1 or (r1 - r0) < rows or (c1 - c0) < cols
        chrome = self._chrome_lines(col_label_rows, notes, flags)
        # title, legend and status may be wider than a small grid: give them their width
        text_w = cell_len(self.title) if self.title else 0
        if flags["status"]:
            text_w = max(text_w, cell_len(self._status()))
        if flags["legend"]:
            text_w = max(text_w, self._legend_width())
        used_width = max(used_width, min(text_w, width))
        return HeatmapLayout(
            cell_width=cw,
            show_values=values_on,
            row_start=r0,
            row_stop=r1,
            col_start=c0,
            col_stop=c1,
            block_rows=br,
            block_cols=bc,
            label_width=label_w,
            col_label_rows=col_label_rows,
            width=min(width, used_width),
            height=chrome + (r1 - r0),
            marker_line=flags["marker"],
            status_line=flags["status"],
            legend_line=flags["legend"],
        )

    @staticmethod
    def _scroll(total: int, size: int, focus: int | None, origin: int | None) -> tuple[int, int]:
        size = max(1, min(size, total)) if total else 0
        if origin is None or focus is None:
            return window(total, size, focus)
        start = max(0, min(origin, total - size))
        if focus < start:
            start = focus
        elif focus >= start + size:
            start = focus - size + 1
        return start, start + size

    # -- Rich protocol --------------------------------------------------------------

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        lay = self.layout(width, self.height)
        return Measurement(min(lay.width, options.max_width), min(lay.width, options.max_width))

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
        """All lines as lists of segments (each exactly ``layout.width`` cells)."""
        colour = use_color(console, self.color_mode)
        lay = self.layout(width, height)
        self.last_layout = lay
        rows, cols = self.values.shape
        ch = self.chrome
        cw = lay.cell_width
        label_w = lay.label_width
        prefix_w = 1 + label_w + 1
        line_w = lay.width
        lines: list[list[Segment]] = []

        def pad(segs: list[Segment], used: int) -> list[Segment]:
            if used < line_w:
                segs.append(Segment(" " * (line_w - used)))
            return segs

        if self.title:
            lines.append([Segment(fit(self.title, line_w), ch.title)])

        if rows == 0 or cols == 0:
            lines.append([Segment(fit("(empty)", line_w), ch.dim)])
            return lines

        # the drawn grid: values (or block reductions), mask and level per drawn cell
        br, bc = lay.block_rows, lay.block_cols
        if lay.aggregated:
            source = self.values if self.mask is None else np.where(self.mask, np.nan, self.values)
            grid = _reduce_blocks(source, br, bc, self.reduce)[
                lay.row_start : lay.row_stop, lay.col_start : lay.col_stop
            ]
            grid_mask = np.isnan(grid) if self.mask is not None else None
        else:
            grid = self.values[lay.row_start : lay.row_stop, lay.col_start : lay.col_stop]
            grid_mask = (
                None
                if self.mask is None
                else self.mask[lay.row_start : lay.row_stop, lay.col_start : lay.col_stop]
            )
        levels = self.cmap.level_array(grid, self.vmin, self.vmax)
        cur_r = cur_c = None
        if self.cursor is not None:
            cur_r = self.cursor[0] // br - lay.row_start
            cur_c = self.cursor[1] // bc - lay.col_start

        # column labels: tokens written horizontally (wide cells) or downwards (narrow
        # cells), or a ruler of indices when there are no labels or cells are blocks
        ncols = lay.col_stop - lay.col_start
        if lay.col_label_rows:
            if lay.block_cols > 1 or self._numeric_cols:
                lines.append(_exact(self._ruler(lay, prefix_w, line_w), line_w))
            else:
                texts = [self.col_labels[lay.col_start + k] for k in range(ncols)]
                for r in range(lay.col_label_rows):
                    segs: list[Segment] = [Segment(" " * prefix_w)]
                    for k, text in enumerate(texts):
                        style = ch.accent if (k == cur_c and self._col_marks) else ch.label
                        stripped = text.strip() or text
                        if lay.col_label_rows > 1:
                            # written downwards, a leading space marker (·, ␣, Ġ, ▁) would
                            # fill the first row for nearly every token: skip it
                            stripped = stripped.lstrip(_SPACE_MARKERS) or stripped
                        if lay.col_label_rows == 1:
                            cell = " " + fit(stripped, cw - 1, "right")
                        else:
                            c = stripped[r] if r < len(stripped) else " "
                            if len(stripped) > lay.col_label_rows and r == lay.col_label_rows - 1:
                                c = "…"
                            c = c if cell_len(c) == 1 else "?"
                            cell = fit(c, cw, "left" if cw == 1 else "right")
                        segs.append(Segment(cell, style))
                    lines.append(pad(segs, prefix_w + ncols * cw))
        if lay.marker_line:
            segs = [Segment(" " * prefix_w)]
            if cur_c is not None and 0 <= cur_c < ncols:
                offset = cur_c * cw + (cw - 1 if lay.show_values else (cw - 1) // 2)
                segs.append(Segment(" " * offset))
                segs.append(Segment(COL_MARK, ch.accent))
                used = prefix_w + offset + 1
            else:
                used = prefix_w
            lines.append(pad(segs, used))

        # grid rows. Each cell has a key: its colour level, or -1 when masked / not finite.
        # Glyph cells are drawn as runs of equal keys (numpy finds the runs), so a row costs
        # one segment per colour change rather than one per cell; styles are cached objects.
        keys = levels.astype(np.int32)
        keys[keys < 0] = NONFINITE  # NaN / ±inf that the mask does not cover
        if grid_mask is not None:
            keys[grid_mask] = MASKED
        pieces = self._pieces(colour, cw)
        cursor_piece = self._cursor_piece
        grid_w = prefix_w + ncols * cw + (1 if self._right_marks else 0)
        row_pad = Segment(" " * (line_w - grid_w)) if line_w > grid_w else None
        dec = self.decimals
        num_w = cw - 1
        for i in range(lay.row_stop - lay.row_start):
            r = lay.row_start + i
            is_cur_row = i == cur_r
            marked = is_cur_row and self._row_marks
            label = str(r * br) if br > 1 else self.row_labels[r]
            segs = [
                Segment(ROW_MARK if marked else " ", ch.accent),
                Segment(fit(label, label_w), ch.accent if marked else ch.label),
                Segment(" "),
            ]
            row_keys = keys[i]
            cursor_k = cur_c if (is_cur_row and self._cell_mark) else None
            if lay.show_values:
                row_vals = grid[i]
                run_text: list[str] = []
                run_style: Style | None = None
                for k in range(ncols):
                    key = int(row_keys[k])
                    if k == cursor_k:
                        text, style = cursor_piece(colour, cw, key, row_vals[k], dec, True)
                    elif key == MASKED:
                        text, style = pieces[MASKED]
                    elif key == NONFINITE:
                        text = " " + fit(fmt(row_vals[k], dec), num_w, "right")
                        style = pieces[NONFINITE][1]
                    else:
                        text = " " + fit(fmt(row_vals[k], dec), num_w, "right")
                        style = pieces[key][1]
                    if style is run_style:
                        run_text.append(text)
                    else:
                        if run_text:
                            segs.append(Segment("".join(run_text), run_style))
                        run_text, run_style = [text], style
                if run_text:
                    segs.append(Segment("".join(run_text), run_style))
            else:
                bounds = np.flatnonzero(row_keys[1:] != row_keys[:-1]) + 1
                starts = [0, *bounds.tolist()]
                stops = [*starts[1:], ncols]
                for a, b in zip(starts, stops, strict=True):
                    key = int(row_keys[a])
                    text, style = pieces[key]
                    if cursor_k is not None and a <= cursor_k < b:
                        if cursor_k > a:
                            segs.append(Segment(text * (cursor_k - a), style))
                        segs.append(Segment(*cursor_piece(colour, cw, key, 0.0, dec, False)))
                        if b > cursor_k + 1:
                            segs.append(Segment(text * (b - cursor_k - 1), style))
                    else:
                        segs.append(Segment(text * (b - a), style))
            if self._right_marks:
                segs.append(Segment(ROW_MARK_RIGHT if is_cur_row else " ", ch.accent))
            if row_pad:
                segs.append(row_pad)
            lines.append(segs)

        # notes, legend, status
        shown_all = (lay.row_stop - lay.row_start) * br >= rows and (
            lay.col_stop - lay.col_start
        ) * bc >= cols
        if lay.aggregated or not shown_all:
            lines.append([Segment(fit(self._note(lay), line_w), ch.dim)])
        if lay.legend_line:
            lines.append(_exact(self._legend(colour, line_w), line_w))
        if lay.status_line:
            lines.append([Segment(fit(self._status(), line_w), ch.label)])
        if lay.width < prefix_w + ncols * cw + (1 if self._right_marks else 0):
            return [_exact(line, line_w) for line in lines]  # too narrow: crop
        return lines

    # -- text pieces ------------------------------------------------------------------

    def _note(self, lay: HeatmapLayout) -> str:
        rows, cols = self.values.shape
        if lay.aggregated:
            how = self.reduce
            shape = f"{lay.row_stop - lay.row_start}×{lay.col_stop - lay.col_start}"
            if self.compact:
                return f"{rows}×{cols} as {shape}, {lay.block_rows}×{lay.block_cols} {how}"
            return (
                f"{rows}×{cols} shown as {shape} blocks of "
                f"{lay.block_rows}×{lay.block_cols} ({how})"
            )
        parts = []
        if lay.row_stop - lay.row_start < rows:
            if self.compact:
                parts.append(f"r{lay.row_start}–{lay.row_stop - 1}/{rows}")
            else:
                parts.append(span_note("rows", lay.row_start, lay.row_stop, rows))
        if lay.col_stop - lay.col_start < cols:
            if self.compact:
                parts.append(f"c{lay.col_start}–{lay.col_stop - 1}/{cols}")
            else:
                parts.append(span_note("cols", lay.col_start, lay.col_stop, cols))
        return (" " if self.compact else " · ").join(parts)

    def _pieces(self, colour: bool, cw: int) -> dict[int, tuple[str, Style]]:
        """(text, style) of one glyph cell per key: a colour level, MASKED or NONFINITE."""
        cache_key = (colour, cw, id(self.cmap), self.chrome)
        cached = _PIECES.get(cache_key)
        if cached is not None:
            return cached
        pieces: dict[int, tuple[str, Style]] = {}
        for lv in range(self.cmap.levels):
            if colour:
                pieces[lv] = (" " * cw, self.cmap.bg_styles[lv])
            else:
                pieces[lv] = (self.cmap.glyphs[lv] * cw, _NULL)
        pieces[MASKED] = (fit(MASK_GLYPH, cw, "center") if cw > 1 else MASK_GLYPH, self.chrome.dim)
        pieces[NONFINITE] = (fit("?", cw, "center") if cw > 1 else "?", self.chrome.dim)
        if len(_PIECES) > 64:
            _PIECES.clear()
        _PIECES[cache_key] = pieces
        return pieces

    def _cursor_piece(
        self, colour: bool, cw: int, key: int, value: float, decimals: int, values_on: bool
    ) -> tuple[str, Style]:
        """The cursor cell: ▸number, [ ] / [glyph] or ◆, so it shows with and without colour."""
        accent = self.chrome.accent
        if key < 0:
            glyph = MASK_GLYPH if key == MASKED else "?"
            text = fit(glyph, cw, "center") if cw > 1 else glyph
            return ((CURSOR_GLYPH + text[1:]) if cw > 1 else CURSOR_GLYPH), accent
        if values_on:
            text = "▸" + fit(fmt(value, decimals), cw - 1, "right")
            if colour:
                return text, self.cmap.bg_styles[key] + _BOLD_UNDERLINE
            return text, accent
        if cw >= 2:
            fill = " " if colour else self.cmap.glyphs[key]
            text = "[" + fill * (cw - 2) + "]"
        else:
            text = CURSOR_GLYPH
        if colour:
            return text, self.cmap.bg_styles[key] + _BOLD
        return text, accent

    def _ruler(self, lay: HeatmapLayout, prefix_w: int, line_w: int) -> list[Segment]:
        """One line of column indices at a readable spacing (for unlabelled or block columns)."""
        cw, bc = lay.cell_width, lay.block_cols
        ncols = lay.col_stop - lay.col_start
        last = (lay.col_stop - 1) * bc
        label_len = len(str(last)) + 1
        step = 1
        for step in (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 250, 256, 500, 1000):
            if (step / bc) * cw >= label_len:  # labels at least label_len cells apart
                break
        buf = [" "] * (ncols * cw)
        taken = -1
        for k in range(ncols):
            lo = (lay.col_start + k) * bc
            first = -(-lo // step) * step  # the first multiple of step in this cell's range
            if first >= lo + bc:
                continue
            text = str(first)
            pos = k * cw
            if pos <= taken or pos + len(text) > len(buf):
                continue
            buf[pos : pos + len(text)] = text
            taken = pos + len(text)
        segs = [Segment(" " * prefix_w), Segment("".join(buf), self.chrome.dim)]
        return segs

    def _legend(self, colour: bool, line_w: int) -> list[Segment]:
        """Low value, the colour ramp (or glyph ramp), high value, and the mask key:
        the ramp shrinks first, then the mask key goes, when the line is short."""
        lo, hi = fmt(self.vmin, self.decimals), fmt(self.vmax, self.decimals)
        has_mask = self.mask is not None and bool(self.mask.any())
        mask_note = ""
        if has_mask:
            mask_note = f" {MASK_GLYPH}mask" if self.compact else f"  {MASK_GLYPH} masked"
        label, dim = self.chrome.label, self.chrome.dim
        if colour:
            fixed = len(lo) + len(hi) + 2
            if mask_note and line_w - fixed - len(mask_note) < 3:
                mask_note = ""
            n = max(1, min(16, line_w - fixed - len(mask_note)))
            segs = [Segment(lo + " ", label)]
            levels = self.cmap.levels
            for k in range(n):
                lv = round(k * (levels - 1) / max(1, n - 1))
                segs.append(Segment(" ", self.cmap.bg_styles[lv]))
            segs.append(Segment(" " + hi, label))
        else:
            text = f"{lo} {self.cmap.legend_glyphs()} {hi}"
            if mask_note and len(text) + len(mask_note) > line_w:
                mask_note = ""
            segs = [Segment(text, label)]
        if mask_note:
            segs.append(Segment(mask_note, dim))
        return segs

    def _legend_width(self) -> int:
        lo, hi = fmt(self.vmin, self.decimals), fmt(self.vmax, self.decimals)
        has_mask = self.mask is not None and bool(self.mask.any())
        mask_w = (6 if self.compact else 10) if has_mask else 0
        ramp = 16 if not self.compact else 4
        return len(lo) + len(hi) + 2 + max(ramp, len(self.cmap.legend_glyphs())) + mask_w

    def _status(self) -> str:
        assert self.cursor is not None
        r, c = self.cursor
        masked = self.mask is not None and bool(self.mask[r, c])
        value = "masked" if masked else fmt(self.values[r, c], self.decimals)
        if self.compact:
            return f"{r},{c} {value}"
        return f"[{r},{c}] {self.row_labels[r]} → {self.col_labels[c]}: {value}"


_SPACE_MARKERS = " ·␣Ġ▁"
_NULL = Style.null()
_BOLD = Style(bold=True)
_BOLD_UNDERLINE = Style(bold=True, underline=True)
_PIECES: dict[tuple, dict[int, tuple[str, Style]]] = {}


def _exact(line: list[Segment], width: int) -> list[Segment]:
    """Pad or crop a line of segments to exactly ``width`` cells."""
    length = sum(cell_len(s.text) for s in line)
    if length < width:
        return [*line, Segment(" " * (width - length))]
    if length > width:
        return list(Segment.adjust_line_length(line, width))
    return line


# -- the widget -------------------------------------------------------------------------


def cached_chrome(widget: Widget, prefix: str) -> Chrome:
    """:func:`chrome_for`, remembered by the widget until the app's CSS or theme, the
    widget's classes or its focus change: reading five component styles on every render
    costs more than drawing a small heatmap."""
    app = widget.app
    key = (
        getattr(app, "_css_update_count", None),
        app.theme,
        widget.has_focus,
        widget.disabled,
        widget.classes,
        prefix,
    )
    cached = getattr(widget, "_chrome_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    chrome = chrome_for(widget, prefix)
    widget._chrome_cache = (key, chrome)  # type: ignore[attr-defined]
    return chrome


def needs_relayout(widget: Widget, laid_out: int | None, natural: Callable[[], int]) -> bool:
    """Whether a data widget with ``height: auto`` must ask for a layout because its
    content height changed: the ``natural`` height now versus the one ``laid_out`` last,
    both capped by a ``max-height`` in cells (a 200-row map in a 14-line box stays 14)."""
    if laid_out is None:
        return False  # never laid out yet: the first layout measures it anyway
    height = widget.styles.height
    if height is not None and not height.is_auto:
        return False  # a fixed or relative height does not follow the content
    new = natural()
    cap = widget.styles.max_height
    if cap is not None and cap.unit == Unit.CELLS:
        limit = int(cap.value) - widget.styles.gutter.height
        return min(new, limit) != min(laid_out, limit)
    return new != laid_out


class Heatmap(Widget, can_focus=True):
    """A focusable heatmap with a keyboard cursor.

    Set data with :meth:`set_data` (all at once) or the reactives ``values``, ``mask``,
    ``row_labels`` and ``col_labels``. Moving the cursor posts :class:`Heatmap.CellSelected`.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "heatmap--label",
        "heatmap--accent",
        "heatmap--dim",
        "heatmap--title",
    }
    """
    | Class | Description |
    | :- | :- |
    | `heatmap--label` | Row and column labels, legend text, status line. |
    | `heatmap--accent` | The cursor's row/column labels and ▶ ▼ markers. |
    | `heatmap--dim` | Masked cells, the "rows 40–63 of 256" note. |
    | `heatmap--title` | The title line. |
    """

    DEFAULT_CSS = """
    Heatmap {
        width: 1fr;
        height: auto;
    }
    Heatmap > .heatmap--label { color: $foreground; }
    Heatmap > .heatmap--accent { color: $accent; text-style: bold; }
    Heatmap > .heatmap--dim { color: $foreground-muted; }
    Heatmap > .heatmap--title { color: $foreground; text-style: bold; }
    Heatmap:focus > .heatmap--title { color: $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "up",
            "cursor_up",
            "Row up",
            show=False,
            id="heatmap.cursor_up",
            tooltip="Move the cursor to the row above",
        ),
        Binding(
            "down",
            "cursor_down",
            "Row down",
            show=False,
            id="heatmap.cursor_down",
            tooltip="Move the cursor to the row below",
        ),
        Binding(
            "left",
            "cursor_left",
            "Column left",
            show=False,
            id="heatmap.cursor_left",
            tooltip="Move the cursor to the column on the left",
        ),
        Binding(
            "right",
            "cursor_right",
            "Column right",
            show=False,
            id="heatmap.cursor_right",
            tooltip="Move the cursor to the column on the right",
        ),
        Binding(
            "home",
            "cursor_home",
            "First column",
            show=False,
            id="heatmap.cursor_home",
            tooltip="Move the cursor to the first column",
        ),
        Binding(
            "end",
            "cursor_end",
            "Last column",
            show=False,
            id="heatmap.cursor_end",
            tooltip="Move the cursor to the last column (for attention: the diagonal)",
        ),
        Binding(
            "pageup",
            "page_up",
            "Page up",
            show=False,
            id="heatmap.page_up",
            tooltip="Move the cursor up by one screen of rows",
        ),
        Binding(
            "pagedown",
            "page_down",
            "Page down",
            show=False,
            id="heatmap.page_down",
            tooltip="Move the cursor down by one screen of rows",
        ),
        Binding(
            "v",
            "toggle_values",
            "Numbers",
            id="heatmap.toggle_values",
            tooltip="Show or hide the number in each cell (when there is room)",
        ),
        Binding(
            "a",
            "toggle_overflow",
            "Scroll/blocks",
            id="heatmap.toggle_overflow",
            tooltip="Large matrices: scroll around the cursor, or aggregate into blocks",
        ),
    ]

    class CellSelected(Message):
        """The cursor moved to (row, col). ``value`` is None when the cell is masked."""

        def __init__(
            self, heatmap: Heatmap, row: int, col: int, value: float | None, masked: bool
        ) -> None:
            super().__init__()
            self.heatmap = heatmap
            self.row = row
            self.col = col
            self.value = value
            self.masked = masked

        @property
        def control(self) -> Heatmap:
            return self.heatmap

    values: reactive[np.ndarray | None] = reactive(None, always_update=True)
    """[R, C] numbers (anything ``np.asarray`` takes), or None for an empty heatmap."""
    mask: reactive[np.ndarray | None] = reactive(None, always_update=True)
    """[R, C] booleans, True = masked out; None = nothing masked."""
    row_labels: reactive[tuple[str, ...] | None] = reactive(None)
    col_labels: reactive[tuple[str, ...] | None] = reactive(None)
    cursor: reactive[tuple[int, int]] = reactive((0, 0))
    """(row, col) of the selected cell; clamped to the matrix."""
    cmap: reactive[str] = reactive("sequential")
    """``"sequential"`` or ``"diverging"``."""
    vmin: reactive[float | None] = reactive(None)
    vmax: reactive[float | None] = reactive(None)
    highlight: reactive[str] = reactive("cell")
    show_values: reactive[bool | None] = reactive(None)
    """True / False, or None = numbers when every column fits."""
    decimals: reactive[int] = reactive(2)
    compact: reactive[bool] = reactive(False)
    overflow: reactive[str] = reactive("scroll")
    reduce: reactive[str] = reactive("max")
    title: reactive[str | None] = reactive(None)
    legend: reactive[bool] = reactive(True)

    def __init__(
        self,
        values: object | None = None,
        *,
        mask: object | None = None,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        cmap: str = "sequential",
        vmin: float | None = None,
        vmax: float | None = None,
        cursor: tuple[int, int] = (0, 0),
        highlight: Highlight = "cell",
        show_values: bool | None = None,
        decimals: int = 2,
        compact: bool = False,
        overflow: Overflow = "scroll",
        reduce: Reduce = "max",
        title: str | None = None,
        legend: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._origin: tuple[int, int] | None = None
        self._page_rows = 10
        self._values_shown = False
        self._laid_out_natural: int | None = None  # natural height at the last layout
        self.set_reactive(Heatmap.cmap, cmap)
        self.set_reactive(Heatmap.vmin, vmin)
        self.set_reactive(Heatmap.vmax, vmax)
        self.set_reactive(Heatmap.highlight, highlight)
        self.set_reactive(Heatmap.show_values, show_values)
        self.set_reactive(Heatmap.decimals, decimals)
        self.set_reactive(Heatmap.compact, compact)
        self.set_reactive(Heatmap.overflow, overflow)
        self.set_reactive(Heatmap.reduce, reduce)
        self.set_reactive(Heatmap.title, title)
        self.set_reactive(Heatmap.legend, legend)
        self.set_reactive(Heatmap.values, None if values is None else _as_matrix(values))
        self.set_reactive(Heatmap.mask, None if mask is None else np.asarray(mask, dtype=bool))
        self.set_reactive(Heatmap.row_labels, None if row_labels is None else tuple(row_labels))
        self.set_reactive(Heatmap.col_labels, None if col_labels is None else tuple(col_labels))
        self.set_reactive(Heatmap.cursor, self._clamp(cursor))

    # -- data -----------------------------------------------------------------------

    def set_data(
        self,
        values: object,
        *,
        mask: object | None = None,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
    ) -> None:
        """Replace values, mask and labels together (one repaint, cursor kept if it fits)."""
        self.set_reactive(Heatmap.mask, None if mask is None else np.asarray(mask, dtype=bool))
        self.set_reactive(Heatmap.row_labels, None if row_labels is None else tuple(row_labels))
        self.set_reactive(Heatmap.col_labels, None if col_labels is None else tuple(col_labels))
        self.values = _as_matrix(values)

    def validate_values(self, values: object | None) -> np.ndarray | None:
        return None if values is None else _as_matrix(values)

    def validate_mask(self, mask: object | None) -> np.ndarray | None:
        return None if mask is None else np.asarray(mask, dtype=bool)

    def validate_row_labels(self, labels: Sequence[str] | None) -> tuple[str, ...] | None:
        return None if labels is None else tuple(labels)

    def validate_col_labels(self, labels: Sequence[str] | None) -> tuple[str, ...] | None:
        return None if labels is None else tuple(labels)

    def validate_cursor(self, cursor: tuple[int, int]) -> tuple[int, int]:
        return self._clamp(cursor)

    def _clamp(self, cursor: tuple[int, int]) -> tuple[int, int]:
        values = self.values
        if values is None or values.size == 0:
            return (0, 0)
        rows, cols = values.shape
        return (min(max(int(cursor[0]), 0), rows - 1), min(max(int(cursor[1]), 0), cols - 1))

    def watch_values(self) -> None:
        clamped = self._clamp(self.cursor)
        if clamped != self.cursor:
            self.cursor = clamped
        self._fit_height()

    def watch_col_labels(self) -> None:
        self._fit_height()

    def watch_title(self) -> None:
        self._fit_height()

    def watch_compact(self) -> None:
        self._fit_height()

    def watch_show_values(self) -> None:
        self._fit_height()

    def watch_legend(self) -> None:
        self._fit_height()

    def watch_overflow(self) -> None:
        self._fit_height()

    def _natural_height(self, width: int) -> int:
        return self.renderable(width, None).layout(width, None).height

    def _fit_height(self) -> None:
        """With ``height: auto``, ask for a new layout when the data's natural height
        changed (more rows, a title, labels …); a plain repaint would keep the old height.
        Only then: a layout pass costs far more than a repaint."""
        width = self.content_region.width if self.is_mounted else 0
        if width and needs_relayout(
            self, self._laid_out_natural, lambda: self._natural_height(width)
        ):
            self.refresh(layout=True)

    def watch_cursor(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        values = self.values
        if values is None or values.size == 0:
            return
        r, c = new
        masked = self.mask is not None and self.mask.shape == values.shape and bool(self.mask[r, c])
        value = None if masked else float(values[r, c])
        self.post_message(self.CellSelected(self, r, c, value, masked))

    # -- actions --------------------------------------------------------------------

    def _move(self, dr: int, dc: int) -> None:
        r, c = self.cursor
        self.cursor = (r + dr, c + dc)

    def action_cursor_up(self) -> None:
        self._move(-1, 0)

    def action_cursor_down(self) -> None:
        self._move(1, 0)

    def action_cursor_left(self) -> None:
        self._move(0, -1)

    def action_cursor_right(self) -> None:
        self._move(0, 1)

    def action_cursor_home(self) -> None:
        self.cursor = (self.cursor[0], 0)

    def action_cursor_end(self) -> None:
        cols = 0 if self.values is None else self.values.shape[1]
        self.cursor = (self.cursor[0], cols - 1)

    def action_page_up(self) -> None:
        self._move(-max(1, self._page_rows), 0)

    def action_page_down(self) -> None:
        self._move(max(1, self._page_rows), 0)

    def action_toggle_values(self) -> None:
        self.show_values = not self._values_shown

    def action_toggle_overflow(self) -> None:
        self.overflow = "aggregate" if self.overflow == "scroll" else "scroll"

    # -- rendering ------------------------------------------------------------------

    def renderable(self, width: int | None = None, height: int | None = None) -> HeatmapRenderable:
        """The Rich renderable for the current state (what ``render`` draws)."""
        values = self.values if self.values is not None else np.zeros((0, 0))
        mask = self.mask if (self.mask is not None and self.mask.shape == values.shape) else None
        return HeatmapRenderable(
            values,
            row_labels=self.row_labels,
            col_labels=self.col_labels,
            mask=mask,
            cmap=self.cmap,  # type: ignore[arg-type]
            vmin=self.vmin,
            vmax=self.vmax,
            cursor=self.cursor if values.size else None,
            highlight=self.highlight,  # type: ignore[arg-type]
            show_values=self.show_values,
            decimals=self.decimals,
            compact=self.compact,
            overflow=self.overflow,  # type: ignore[arg-type]
            reduce=self.reduce,  # type: ignore[arg-type]
            origin=self._origin,
            title=self.title,
            legend=self.legend,
            width=width,
            height=height,
            color_mode=color_mode_for(self),
            chrome=cached_chrome(self, "heatmap"),
        )

    def render(self) -> TextualRenderResult:
        size = self.content_region.size if self.is_mounted else Size(0, 0)
        width = size.width or None
        height = size.height or None
        renderable = self.renderable(width, height)
        if width:
            lay = renderable.layout(width, height)
            self._origin = (lay.row_start, lay.col_start) if not lay.aggregated else None
            self._page_rows = max(1, lay.row_stop - lay.row_start - 1)
            self._values_shown = lay.show_values
        return renderable

    def get_content_width(self, container: Size, viewport: Size) -> int:
        renderable = self.renderable(container.width, None)
        return renderable.layout(container.width, None).width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        natural = self._natural_height(width)
        self._laid_out_natural = natural
        return max(1, min(natural, container.height or natural))
