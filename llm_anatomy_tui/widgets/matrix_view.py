"""A small numeric matrix as a table: labels, the shape in the title, every number to a
chosen number of decimals, a highlighted cell / row / column, and honest truncation.

``MatrixViewRenderable`` shows as many columns and rows as fit. When some do not fit it
shows the first and last ones with ``…`` / ``⋮`` between (no cursor), or a window that
follows the cursor, and says so: "showing 8 of 384 columns (0–3, 380–383)".

``MatrixView`` is the thin focusable widget: a cell cursor moved by keys, posting
``MatrixView.CellSelected``.
"""

from __future__ import annotations

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
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from llm_anatomy_tui.widgets._base import color_mode_for
from llm_anatomy_tui.widgets._format import fit, fmt, fmt_cells, sanitize_label, window
from llm_anatomy_tui.widgets.colors import (
    DEFAULT_CHROME,
    Chrome,
    ColorMap,
    ColorMode,
    get_cmap,
    use_color,
)
from llm_anatomy_tui.widgets.heatmap import cached_chrome, needs_relayout

Highlight = Literal["cell", "row", "column", "cross", "none"]
GAP = -1
"""Marks the ``…`` / ``⋮`` position in a list of shown indices."""


@dataclass(frozen=True)
class MatrixLayout:
    rows: tuple[int, ...]
    """Matrix row indices shown, in order, with GAP where rows were left out."""
    cols: tuple[int, ...]
    label_width: int
    col_width: int
    width: int


def _pick(total: int, room: int, focus: int | None, origin: int | None) -> tuple[int, ...]:
    """Indices to show out of ``total`` in ``room`` slots (a GAP takes a slot)."""
    if total <= room:
        return tuple(range(total))
    room = max(2, room)
    if focus is None:
        # head and tail, like numpy's summary: first ceil, last floor, GAP between
        keep = room - 1
        head = (keep + 1) // 2
        tail = keep - head
        return (*range(head), GAP, *range(total - tail, total))
    # a window around the focus, with a GAP at each cut edge
    size = room
    for _ in range(3):  # the gaps take slots: settle the window size
        if origin is not None:
            start = max(0, min(origin, total - size))
            if focus < start:
                start = focus
            elif focus >= start + size:
                start = focus - size + 1
            stop = start + size
        else:
            start, stop = window(total, size, focus)
        gaps = (start > 0) + (stop < total)
        if size + gaps <= room:
            break
        size = max(1, room - gaps)
    out: list[int] = []
    if start > 0:
        out.append(GAP)
    out.extend(range(start, stop))
    if stop < total:
        out.append(GAP)
    return tuple(out)


def _describe(shown: tuple[int, ...]) -> str:
    """ "0–3, 380–383" for the runs of shown indices."""
    runs: list[tuple[int, int]] = []
    for i in shown:
        if i == GAP:
            continue
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs)


class MatrixViewRenderable:
    """A numeric table with labels, shape, decimals, highlight and truncation notes.

    Args:
        values: A 2-D array (a 1-D array is one row; the title shows its 1-D shape).
        row_labels, col_labels: Labels (default: indices).
        decimals: Places for every number.
        title: Name shown before the shape, e.g. ``"W1"`` → ``W1 [2×3]``.
        cursor: (row, col) of the selected cell, or None.
        highlight: What the cursor marks: ``"cell"`` (▸ in the cell, ▶ row, ▼ column),
            ``"row"``, ``"column"``, ``"cross"`` or ``"none"``.
        cmap: None (plain numbers) or a colour map name / ColorMap to colour each number.
        vmin, vmax: Colour range when ``cmap`` is given.
        max_rows, max_cols: Show at most this many (default: as many as fit).
        origin: Preferred first (row, col) of the cursor window.
        width, height: Size to fill (None = console width / unlimited).
        color_mode, chrome: As for every widget here.
    """

    def __init__(
        self,
        values: object,
        *,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        decimals: int = 3,
        title: str | None = None,
        cursor: tuple[int, int] | None = None,
        highlight: Highlight = "cell",
        cmap: str | ColorMap | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        max_rows: int | None = None,
        max_cols: int | None = None,
        origin: tuple[int, int] | None = None,
        width: int | None = None,
        height: int | None = None,
        color_mode: ColorMode = "auto",
        chrome: Chrome = DEFAULT_CHROME,
    ) -> None:
        arr = np.asarray(values, dtype=np.float64)
        self.shape = arr.shape
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"matrix values must be 1-D or 2-D, got shape {arr.shape}")
        self.values = arr
        rows, cols = arr.shape
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
        self._row_label_len = max([cell_len(x) for x in self.row_labels] or [1])
        self._col_label_len = max([cell_len(x) for x in self.col_labels] or [1])
        self.decimals = decimals
        self.title = title
        if cursor is not None and rows and cols:
            cursor = (min(max(cursor[0], 0), rows - 1), min(max(cursor[1], 0), cols - 1))
        self.cursor = cursor if rows and cols else None
        self.highlight = highlight
        self.cmap = None if cmap is None else get_cmap(cmap)
        if self.cmap is not None:
            lo, hi = self.cmap.auto_range(arr)
            self.vmin = lo if vmin is None else float(vmin)
            self.vmax = hi if vmax is None else float(vmax)
        self.max_rows = max_rows
        self.max_cols = max_cols
        self.origin = origin
        self.width = width
        self.height = height
        self.color_mode = color_mode
        self.chrome = chrome
        finite = arr[np.isfinite(arr)]
        if finite.size:
            self._number_width = max(
                len(fmt(finite.min(), decimals)), len(fmt(finite.max(), decimals))
            )
        else:
            self._number_width = max([len(fmt(v, decimals)) for v in arr.reshape(-1)] or [1])

    @property
    def shape_text(self) -> str:
        return "[" + "×".join(str(d) for d in self.shape) + "]"

    def layout(self, width: int, height: int | None) -> MatrixLayout:
        rows, cols = self.values.shape
        label_w = max(1, min(12, self._row_label_len))
        col_w = max(self._number_width, min(8, self._col_label_len)) + 1
        area = width - (1 + label_w)
        room_cols = max(2, area // col_w)
        if self.max_cols is not None:
            room_cols = min(room_cols, max(2, self.max_cols + (1 if cols > self.max_cols else 0)))
        cur_r = self.cursor[0] if self.cursor else None
        cur_c = self.cursor[1] if self.cursor else None
        org = self.origin or (None, None)
        shown_cols = _pick(cols, room_cols, cur_c, org[1])
        room_rows = rows
        if height is not None:
            # title and header lines, plus a note line once anything is left out
            col_note = GAP in shown_cols
            avail = height - 2 - (1 if col_note else 0)
            if rows > avail and not col_note:
                avail -= 1
            room_rows = max(2, avail)
        if self.max_rows is not None:
            room_rows = min(room_rows, max(2, self.max_rows + (1 if rows > self.max_rows else 0)))
        shown_rows = _pick(rows, room_rows, cur_r, org[0])
        return MatrixLayout(
            shown_rows,
            shown_cols,
            label_w,
            col_w,
            min(width, 1 + label_w + len(shown_cols) * col_w),
        )

    def natural_height(self, width: int) -> int:
        lay = self.layout(width, None)
        truncated = GAP in lay.rows or GAP in lay.cols
        return 2 + len(lay.rows) + (1 if truncated else 0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.width or options.max_width
        lay = self.layout(width, self.height)
        w = min(width, max(lay.width, cell_len(self._title_text()), cell_len(self._note(lay))))
        return Measurement(w, w)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        height = self.height if self.height is not None else options.height
        for i, line in enumerate(self.render_lines(console, width, height)):
            if i:
                yield Segment.line()
            yield from line

    def _title_text(self) -> str:
        return f"{self.title} {self.shape_text}" if self.title else self.shape_text

    def render_lines(
        self, console: Console, width: int, height: int | None = None
    ) -> list[list[Segment]]:
        colour = use_color(console, self.color_mode) and self.cmap is not None
        lay = self.layout(width, height)
        ch = self.chrome
        rows, cols = self.values.shape
        note = self._note(lay)
        # the title and the truncation note may be wider than the table: never cut them
        line_w = min(width, max(lay.width, cell_len(self._title_text()), cell_len(note)))
        mark_row = self.cursor is not None and self.highlight in ("cell", "row", "cross")
        mark_col = self.cursor is not None and self.highlight in ("cell", "column", "cross")
        mark_cell = self.cursor is not None and self.highlight in ("cell", "cross")
        cur_r, cur_c = self.cursor if self.cursor is not None else (None, None)
        cw = lay.col_width
        lines: list[list[Segment]] = [[Segment(fit(self._title_text(), line_w), ch.title)]]
        if rows == 0 or cols == 0:
            return lines
        # header: column labels, right-aligned over the numbers; ▼ marks the cursor column
        segs = [Segment(" " * (1 + lay.label_width))]
        for j in lay.cols:
            if j == GAP:
                segs.append(Segment(fit("…", cw, "right"), ch.dim))
                continue
            is_cur = mark_col and j == cur_c
            text = " " + fit(self.col_labels[j], cw - 1, "right")
            segs.append(
                Segment(_mark(text, "▼") if is_cur else text, ch.accent if is_cur else ch.dim)
            )
        lines.append(_exact(segs, line_w))
        d = self.decimals
        real_cols = [j for j in lay.cols if j != GAP]
        gap_text = fit("…", cw, "right")
        row_pad = " " * (line_w - lay.width) if line_w > lay.width else ""
        bold = Style(bold=True)
        for i in lay.rows:
            if i == GAP:
                segs = [Segment(" " + fit("⋮", lay.label_width), ch.dim)]
                for j in lay.cols:
                    segs.append(Segment(fit("⋮" if j != GAP else "", cw, "right"), ch.dim))
                lines.append(_exact(segs, line_w))
                continue
            row_cur = mark_row and i == cur_r
            segs = [
                Segment("▶" if row_cur else " ", ch.accent),
                Segment(
                    fit(self.row_labels[i], lay.label_width), ch.accent if row_cur else ch.label
                ),
            ]
            row_vals = self.values[i, real_cols]
            texts = iter(fmt_cells(row_vals, d, cw - 1))
            vals = iter(row_vals.tolist())
            row_bold = self.highlight in ("row", "cross") and i == cur_r and self.cursor is not None
            pieces: list[tuple[str, Style]] = []
            for j in lay.cols:
                if j == GAP:
                    pieces.append((gap_text, ch.dim))
                    continue
                text = " " + next(texts)
                v = next(vals)
                style = ch.label
                if colour and np.isfinite(v):
                    assert self.cmap is not None
                    style = self.cmap.style(v, self.vmin, self.vmax, background=False)
                if mark_cell and i == cur_r and j == cur_c:
                    text = _mark(text, "▸")
                    style = style + ch.accent + Style(reverse=True) if colour else ch.accent
                elif row_bold or (self.highlight in ("column", "cross") and j == cur_c):
                    style = style + bold
                pieces.append((text, style))
            # one segment per run of equal style (styles are shared objects)
            run_text, run_style = [pieces[0][0]], pieces[0][1]
            for text, style in pieces[1:]:
                if style is run_style:
                    run_text.append(text)
                else:
                    segs.append(Segment("".join(run_text), run_style))
                    run_text, run_style = [text], style
            segs.append(Segment("".join(run_text), run_style))
            if row_pad:
                segs.append(Segment(row_pad))
            if 1 + lay.label_width + len(lay.cols) * cw > line_w:  # narrower than one cell
                segs = _exact(segs, line_w)
            lines.append(segs)
        if note:
            lines.append([Segment(fit(note, line_w), ch.dim)])
        return lines

    def _note(self, lay: MatrixLayout) -> str:
        rows, cols = self.values.shape
        parts = []
        shown_c = [j for j in lay.cols if j != GAP]
        shown_r = [i for i in lay.rows if i != GAP]
        if len(shown_c) < cols:
            parts.append(f"{len(shown_c)} of {cols} columns ({_describe(lay.cols)})")
        if len(shown_r) < rows:
            parts.append(f"{len(shown_r)} of {rows} rows ({_describe(lay.rows)})")
        return ("showing " + " · ".join(parts)) if parts else ""


def _mark(text: str, mark: str) -> str:
    """Put ``mark`` in the space just before the right-aligned text ("   12" → "  ▸12")."""
    stripped = text.lstrip(" ")
    lead = len(text) - len(stripped)
    if lead == 0:
        return mark + text[1:]
    return text[: lead - 1] + mark + stripped


def _exact(line: list[Segment], width: int) -> list[Segment]:
    length = sum(cell_len(s.text) for s in line)
    if length < width:
        return [*line, Segment(" " * (width - length))]
    if length > width:
        return list(Segment.adjust_line_length(line, width))
    return line


class MatrixView(Widget, can_focus=True):
    """A focusable numeric table with a cell cursor.

    Moving the cursor posts :class:`MatrixView.CellSelected`.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "matrixview--label",
        "matrixview--accent",
        "matrixview--dim",
        "matrixview--title",
    }
    """
    | Class | Description |
    | :- | :- |
    | `matrixview--label` | Row labels and numbers. |
    | `matrixview--accent` | The cursor cell, its row label and column header. |
    | `matrixview--dim` | Column headers, ``…``/``⋮``, the "showing 8 of 384 columns" note. |
    | `matrixview--title` | The title with the shape. |
    """

    DEFAULT_CSS = """
    MatrixView {
        width: 1fr;
        height: auto;
    }
    MatrixView > .matrixview--label { color: $foreground; }
    MatrixView > .matrixview--accent { color: $accent; text-style: bold; }
    MatrixView > .matrixview--dim { color: $foreground-muted; }
    MatrixView > .matrixview--title { color: $foreground; text-style: bold; }
    MatrixView:focus > .matrixview--title { color: $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "up",
            "cursor_up",
            "Row up",
            show=False,
            id="matrixview.cursor_up",
            tooltip="Move the cursor to the row above",
        ),
        Binding(
            "down",
            "cursor_down",
            "Row down",
            show=False,
            id="matrixview.cursor_down",
            tooltip="Move the cursor to the row below",
        ),
        Binding(
            "left",
            "cursor_left",
            "Column left",
            show=False,
            id="matrixview.cursor_left",
            tooltip="Move the cursor to the column on the left",
        ),
        Binding(
            "right",
            "cursor_right",
            "Column right",
            show=False,
            id="matrixview.cursor_right",
            tooltip="Move the cursor to the column on the right",
        ),
        Binding(
            "home",
            "cursor_home",
            "First column",
            show=False,
            id="matrixview.cursor_home",
            tooltip="Move the cursor to the first column",
        ),
        Binding(
            "end",
            "cursor_end",
            "Last column",
            show=False,
            id="matrixview.cursor_end",
            tooltip="Move the cursor to the last column",
        ),
    ]

    class CellSelected(Message):
        """The cursor moved to (row, col) holding ``value``."""

        def __init__(self, matrix_view: MatrixView, row: int, col: int, value: float) -> None:
            super().__init__()
            self.matrix_view = matrix_view
            self.row = row
            self.col = col
            self.value = value

        @property
        def control(self) -> MatrixView:
            return self.matrix_view

    values: reactive[np.ndarray] = reactive(lambda: np.zeros((0, 0)), always_update=True)
    row_labels: reactive[tuple[str, ...] | None] = reactive(None)
    col_labels: reactive[tuple[str, ...] | None] = reactive(None)
    cursor: reactive[tuple[int, int]] = reactive((0, 0))
    decimals: reactive[int] = reactive(3)
    title: reactive[str | None] = reactive(None)
    highlight: reactive[str] = reactive("cell")
    cmap: reactive[str | None] = reactive(None)
    show_cursor: reactive[bool] = reactive(True)
    """False: a plain table, no cursor marks (the widget still scrolls by keys)."""

    def __init__(
        self,
        values: object = ((),),
        *,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        decimals: int = 3,
        title: str | None = None,
        cursor: tuple[int, int] = (0, 0),
        highlight: Highlight = "cell",
        cmap: str | None = None,
        show_cursor: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._origin: tuple[int, int] | None = None
        self._laid_out_natural: int | None = None  # natural height at the last layout
        self.set_reactive(MatrixView.values, self.validate_values(values))
        self.set_reactive(MatrixView.row_labels, None if row_labels is None else tuple(row_labels))
        self.set_reactive(MatrixView.col_labels, None if col_labels is None else tuple(col_labels))
        self.set_reactive(MatrixView.decimals, decimals)
        self.set_reactive(MatrixView.title, title)
        self.set_reactive(MatrixView.highlight, highlight)
        self.set_reactive(MatrixView.cmap, cmap)
        self.set_reactive(MatrixView.show_cursor, show_cursor)
        self.set_reactive(MatrixView.cursor, self.validate_cursor(cursor))

    def set_data(
        self,
        values: object,
        *,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        title: str | None = None,
    ) -> None:
        """Replace values, labels and title together (one repaint)."""
        self.set_reactive(MatrixView.row_labels, None if row_labels is None else tuple(row_labels))
        self.set_reactive(MatrixView.col_labels, None if col_labels is None else tuple(col_labels))
        if title is not None:
            self.set_reactive(MatrixView.title, title)
        self.values = values  # type: ignore[assignment]

    def validate_values(self, values: object) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        return arr if arr.ndim in (1, 2) else arr.reshape(arr.shape[0], -1)

    def _shape2(self) -> tuple[int, int]:
        v = self.values
        return (1, v.shape[0]) if v.ndim == 1 else (v.shape[0], v.shape[1])

    def validate_cursor(self, cursor: tuple[int, int]) -> tuple[int, int]:
        rows, cols = self._shape2()
        if rows == 0 or cols == 0:
            return (0, 0)
        return (min(max(int(cursor[0]), 0), rows - 1), min(max(int(cursor[1]), 0), cols - 1))

    def watch_values(self) -> None:
        clamped = self.validate_cursor(self.cursor)
        if clamped != self.cursor:
            self.cursor = clamped
        self._fit_height()

    def _fit_height(self) -> None:
        """With ``height: auto``, ask for a new layout when the data's natural height
        changed (more rows, a truncation note …); a plain repaint keeps the old height."""
        width = self.content_region.width if self.is_mounted else 0
        if width and needs_relayout(
            self, self._laid_out_natural, lambda: self.renderable(width, None).natural_height(width)
        ):
            self.refresh(layout=True)

    def watch_cursor(self, cursor: tuple[int, int]) -> None:
        rows, cols = self._shape2()
        if rows and cols:
            v = self.values if self.values.ndim == 2 else self.values[None, :]
            self.post_message(self.CellSelected(self, cursor[0], cursor[1], float(v[cursor])))

    def action_cursor_up(self) -> None:
        self.cursor = (self.cursor[0] - 1, self.cursor[1])

    def action_cursor_down(self) -> None:
        self.cursor = (self.cursor[0] + 1, self.cursor[1])

    def action_cursor_left(self) -> None:
        self.cursor = (self.cursor[0], self.cursor[1] - 1)

    def action_cursor_right(self) -> None:
        self.cursor = (self.cursor[0], self.cursor[1] + 1)

    def action_cursor_home(self) -> None:
        self.cursor = (self.cursor[0], 0)

    def action_cursor_end(self) -> None:
        self.cursor = (self.cursor[0], self._shape2()[1] - 1)

    def renderable(
        self, width: int | None = None, height: int | None = None
    ) -> MatrixViewRenderable:
        """The Rich renderable for the current state."""
        rows, cols = self._shape2()
        return MatrixViewRenderable(
            self.values,
            row_labels=self.row_labels,
            col_labels=self.col_labels,
            decimals=self.decimals,
            title=self.title,
            cursor=self.cursor if (self.show_cursor and rows and cols) else None,
            highlight=self.highlight,  # type: ignore[arg-type]
            cmap=self.cmap,
            origin=self._origin,
            width=width,
            height=height,
            color_mode=color_mode_for(self),
            chrome=cached_chrome(self, "matrixview"),
        )

    def render(self) -> TextualRenderResult:
        size = self.content_region.size if self.is_mounted else Size(0, 0)
        renderable = self.renderable(size.width or None, size.height or None)
        if size.width:
            lay = renderable.layout(size.width, size.height or None)
            first_r = next((i for i in lay.rows if i != GAP), 0)
            first_c = next((j for j in lay.cols if j != GAP), 0)
            self._origin = (first_r, first_c)
        return renderable

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        natural = self.renderable(width, None).natural_height(width)
        self._laid_out_natural = natural
        return max(1, min(natural, container.height or natural))
