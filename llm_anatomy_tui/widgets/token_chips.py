"""Token chips: each token as a coloured block with its ID underneath.

::

     If  ·the ·human ·brain
    3335 290  5396   12891

Two layers, as Textual's own Sparkline does it:

- :class:`TokenChipsRenderable` — a plain Rich renderable (no Textual in it). It wraps the
  chips to the width it is given and, if a line budget is set, draws only what fits and
  ends with a note saying how many tokens were left out. Test it with a Rich ``Console``.
- :class:`TokenChips` — a thin widget: reactive data, ``COMPONENT_CLASSES`` for colours,
  ``DEFAULT_CSS`` for its own layout, ``render()`` returns the renderable.

A chip label is a string or a sequence of ``(text, kind)`` spans where ``kind`` is
``"text"``, ``"marker"`` (a whitespace stand-in such as ``·``) or ``"special"`` (byte pieces
like ``‹E4 B8›``, control pictures) — the shape :func:`views.token_pieces.piece_spans` returns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..views.token_pieces import Piece

Label = str | Sequence[tuple[str, str]]


class Chip(NamedTuple):
    """One token to draw: its label and its ID (``None`` to draw no ID)."""

    label: Label
    token_id: int | None


def chips_from_pieces(pieces: Iterable[Piece]) -> tuple[Chip, ...]:
    """Chips for :class:`~llm_anatomy_tui.views.token_pieces.Piece` objects."""
    return tuple(Chip(p.spans, p.id) for p in pieces)


DEFAULT_CHIP_STYLES: tuple[Style, ...] = tuple(
    Style.parse(s)
    for s in (
        "black on #9ecae1",
        "black on #fdd0a2",
        "black on #c7e9c0",
        "black on #dadaeb",
        "black on #fcbba1",
        "black on #f6e8a6",
    )
)


_Row = list[tuple[list[tuple[str, str]], str, int, int]]


def _spans(label: Label) -> list[tuple[str, str]]:
    return [(label, "text")] if isinstance(label, str) else list(label)


@functools.lru_cache(maxsize=1 << 16)
def _measured_cached(label: str | tuple[tuple[str, str], ...]) -> tuple[list, int]:
    spans = _spans(label)
    return spans, cell_len("".join([t for t, _ in spans]))


def _measured(label: Label) -> tuple[list[tuple[str, str]], int]:
    """A label's spans and its width in cells (cached: the same tokens recur constantly)."""
    if not isinstance(label, str | tuple):
        label = tuple(label)
    return _measured_cached(label)


def _crop_spans(spans: list[tuple[str, str]], width: int) -> list[tuple[str, str]]:
    """Cut spans to at most ``width`` cells, ending with ``…``."""
    out: list[tuple[str, str]] = []
    room = width - 1
    for text, kind in spans:
        if room <= 0:
            break
        taken = ""
        for ch in text:
            w = cell_len(ch)
            if w > room:
                room = 0
                break
            taken += ch
            room -= w
        if taken:
            out.append((taken, kind))
    out.append(("…", "special"))
    return out


class TokenChipsRenderable:
    """Rich renderable that lays token chips out in rows, wrapping at the given width.

    Args:
        chips: the tokens to draw, in order.
        total: how many tokens the text has in all (``None``: ``len(chips)``). Tokens beyond
            the chips given are counted in the closing note but never drawn.
        show_ids: draw each token's ID on a line under its label.
        max_lines: the line budget (``None``: use the console's height if it has one, else
            draw everything). When not everything fits, the last line is a note.
        chip_styles: styles cycled over the chips (normally distinct backgrounds).
        marker_style / special_style: added to ``"marker"`` / ``"special"`` spans.
        id_style / note_style: the ID line and the closing note.
        empty: text drawn when there are no tokens.
    """

    def __init__(
        self,
        chips: Sequence[Chip],
        *,
        total: int | None = None,
        show_ids: bool = True,
        max_lines: int | None = None,
        chip_styles: Sequence[Style] = DEFAULT_CHIP_STYLES,
        marker_style: Style | None = None,
        special_style: Style | None = None,
        id_style: Style | None = None,
        note_style: Style | None = None,
        empty: str = "(no tokens)",
    ) -> None:
        self.chips = chips
        self.total = len(chips) if total is None else max(total, len(chips))
        self.show_ids = show_ids
        self.max_lines = max_lines
        self.chip_styles = tuple(chip_styles) or (Style(),)
        self.marker_style = marker_style or Style(dim=True)
        self.special_style = special_style or Style(bold=True, italic=True)
        self.id_style = id_style or Style(dim=True)
        self.note_style = note_style or Style(italic=True, dim=True)
        self.empty = empty
        self._rows_cache: dict[int, tuple[list[_Row], bool, int | None]] = {}

    # -- layout ----------------------------------------------------------------------------

    def _rows(self, width: int, max_rows: int | None = None) -> tuple[list[_Row], bool]:
        """Chips grouped into rows of ``(spans, id_text, chip_width, index)``, and whether
        every chip was placed. With ``max_rows`` only that many rows (plus one, to know
        there is more) are laid out: a 1 MB text costs what one screenful costs.
        Cached per width (the chips and options of a renderable never change)."""
        cached = self._rows_cache.get(width)
        if cached is not None:
            rows, complete, limit = cached
            if complete or (max_rows is not None and limit is not None and limit >= max_rows):
                return rows, complete
        rows, complete = self._layout(width, max_rows)
        self._rows_cache[width] = (rows, complete, max_rows)
        return rows, complete

    def _layout(self, width: int, max_rows: int | None) -> tuple[list[_Row], bool]:
        rows: list[_Row] = [[]]
        x = 0
        show_ids = self.show_ids
        stop_at = None if max_rows is None else max_rows + 1
        for index, chip in enumerate(self.chips):
            spans, label_w = _measured(chip.label)
            id_text = "" if chip.token_id is None or not show_ids else str(chip.token_id)
            w = max(label_w, len(id_text), 1)
            if w > width:
                spans = _crop_spans(spans, width)
                w = width
            needed = w if x == 0 else x + 1 + w
            if needed > width and rows[-1]:
                if stop_at is not None and len(rows) >= stop_at:
                    return rows, False
                rows.append([])
                x = 0
                needed = w
            rows[-1].append((spans, id_text, w, index))
            x = needed
        return (rows if rows[0] else []), True

    def _row_limit(self, max_lines: int | None) -> int | None:
        if max_lines is None:
            return None
        return max(1, max_lines) // (2 if self.show_ids else 1) + 1

    def lines_needed(self, width: int, max_lines: int | None = None) -> int:
        """How many lines drawing the chips at ``width`` takes, at most ``max_lines``."""
        if not self.chips:
            return 1
        per_row = 2 if self.show_ids else 1
        rows, complete = self._rows(max(1, width), self._row_limit(max_lines))
        extra = 0 if complete and self.total <= len(self.chips) else 1
        needed = len(rows) * per_row + extra
        return needed if max_lines is None else min(needed, max(1, max_lines))

    def segment_lines(self, width: int, max_lines: int | None) -> list[list[Segment]]:
        """The chips as lines of segments (at most ``max_lines``), each exactly ``width``
        cells or less. Segments are built directly: no Text wrapping on the hot path."""
        width = max(1, width)
        if not self.chips:
            return [self._note(self.empty, width)]
        rows, complete = self._rows(width, self._row_limit(max_lines))
        per_row = 2 if self.show_ids else 1
        drawable = len(rows)
        more = not complete or self.total > len(self.chips)
        if max_lines is not None:
            budget = max(1, max_lines)
            if drawable * per_row > budget or (more and drawable * per_row + 1 > budget):
                drawable = max(0, (budget - 1) // per_row)
        chip_styles = self.chip_styles
        n_styles = len(chip_styles)
        marker, special, id_style = self.marker_style, self.special_style, self.id_style
        gap = Segment(" ")
        lines: list[list[Segment]] = []
        drawn = 0
        for row in rows[:drawable]:
            top: list[Segment] = []
            bottom: list[Segment] = []
            for i, (spans, id_text, w, index) in enumerate(row):
                base = chip_styles[index % n_styles]
                if i:
                    top.append(gap)
                    bottom.append(gap)
                used = 0
                for text, kind in spans:
                    if kind == "marker":
                        style = base + marker
                    elif kind == "special":
                        style = base + special
                    else:
                        style = base
                    top.append(Segment(text, style))
                    used += cell_len(text)
                if used < w:
                    top.append(Segment(" " * (w - used), base))
                bottom.append(Segment(id_text.ljust(w), id_style))
                drawn += 1
            lines.append(top)
            if per_row == 2:
                lines.append(bottom)
        left_out = self.total - drawn
        if left_out > 0:
            word = "token" if left_out == 1 else "tokens"
            note = f"… {left_out:,} more {word} not drawn (showing {drawn:,} of {self.total:,})"
            lines.append(self._note(note, width))
        return lines

    def _note(self, text: str, width: int) -> list[Segment]:
        if cell_len(text) > width:
            text = set_cell_size(text, max(0, width - 1)).rstrip() + "…"
        return [Segment(text, self.note_style)]

    def render_lines(self, width: int, max_lines: int | None) -> list[Text]:
        """The chips as lines of :class:`~rich.text.Text` (handy in tests and scripts)."""
        out = []
        for segments in self.segment_lines(width, max_lines):
            line = Text(no_wrap=True, end="")
            for segment in segments:
                line.append(segment.text, segment.style)
            out.append(line)
        return out

    # -- Rich protocol ---------------------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        max_lines = self.max_lines if self.max_lines is not None else options.height
        newline = Segment.line()
        for segments in self.segment_lines(options.max_width, max_lines):
            yield from segments
            yield newline

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = 1
        total = 0
        for chip in self.chips:
            label_w = sum(cell_len(t) for t, _ in _spans(chip.label))
            id_w = len(str(chip.token_id)) if self.show_ids and chip.token_id is not None else 0
            w = max(label_w, id_w, 1)
            widest = max(widest, w)
            total += w + 1
        return Measurement(
            min(widest, options.max_width), min(max(total - 1, 1), options.max_width)
        )


class TokenChips(Widget):
    """Coloured token chips with IDs. Set :attr:`chips` (and :attr:`total` if only the first
    tokens of a longer text are given); the widget draws what fits in its height and says
    how many tokens it left out.

    With ``height: auto`` (the default) it grows to fit, up to ``max-height``. A new layout
    is requested only when the number of lines changes, so updating the chips on every
    keystroke stays cheap.
    """

    COMPONENT_CLASSES = {
        "token-chips--chip-0",
        "token-chips--chip-1",
        "token-chips--chip-2",
        "token-chips--chip-3",
        "token-chips--chip-4",
        "token-chips--chip-5",
        "token-chips--marker",
        "token-chips--special",
        "token-chips--id",
        "token-chips--note",
    }

    DEFAULT_CSS = """
    TokenChips {
        height: auto;
        max-height: 24;
        min-height: 1;
        & > .token-chips--chip-0 { background: #9ecae1; color: black; }
        & > .token-chips--chip-1 { background: #fdd0a2; color: black; }
        & > .token-chips--chip-2 { background: #c7e9c0; color: black; }
        & > .token-chips--chip-3 { background: #dadaeb; color: black; }
        & > .token-chips--chip-4 { background: #fcbba1; color: black; }
        & > .token-chips--chip-5 { background: #f6e8a6; color: black; }
        & > .token-chips--marker { color: #6b6b6b; }
        & > .token-chips--special { color: #7a1f5c; text-style: bold italic; }
        & > .token-chips--id { color: $text-muted; }
        & > .token-chips--note { color: $text-muted; text-style: italic; }
    }
    """

    chips: reactive[tuple[Chip, ...]] = reactive(())
    total: reactive[int | None] = reactive(None)
    show_ids: reactive[bool] = reactive(True)
    empty_text: reactive[str] = reactive("(no tokens)")

    def __init__(
        self,
        chips: Sequence[Chip] = (),
        *,
        total: int | None = None,
        show_ids: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(TokenChips.chips, tuple(chips))
        self.set_reactive(TokenChips.total, total)
        self.set_reactive(TokenChips.show_ids, show_ids)
        self._cached: TokenChipsRenderable | None = None
        self._style_cache: dict[str, object] | None = None
        self._lines_at: tuple[int, int] | None = None  # (width, lines) of the last layout

    def _styles(self) -> dict[str, object]:
        """Rich styles of the component classes (cached until the CSS or theme changes)."""
        if self._style_cache is None:

            def style(name: str) -> Style:
                return self.get_component_rich_style(name, partial=True)

            self._style_cache = {
                # The chip styles must carry their background, so they are taken in full.
                "chip_styles": [
                    self.get_component_rich_style(f"token-chips--chip-{i}") for i in range(6)
                ],
                "marker_style": style("token-chips--marker"),
                "special_style": style("token-chips--special"),
                "id_style": style("token-chips--id"),
                "note_style": style("token-chips--note"),
            }
        return self._style_cache

    def _renderable(self) -> TokenChipsRenderable:
        if self._cached is None:
            self._cached = TokenChipsRenderable(
                self.chips,
                total=self.total,
                show_ids=self.show_ids,
                empty=self.empty_text,
                **self._styles(),  # type: ignore[arg-type]
            )
        return self._cached

    def set_data(
        self,
        chips: Sequence[Chip],
        total: int | None = None,
        *,
        show_ids: bool | None = None,
        empty_text: str | None = None,
    ) -> None:
        """Replace everything at once (one redraw instead of one per attribute)."""
        self.set_reactive(TokenChips.chips, tuple(chips))
        self.set_reactive(TokenChips.total, total)
        if show_ids is not None:
            self.set_reactive(TokenChips.show_ids, show_ids)
        if empty_text is not None:
            self.set_reactive(TokenChips.empty_text, empty_text)
        self._data_changed()

    def _line_cap(self) -> int | None:
        max_height = self.styles.max_height
        if max_height is not None and max_height.is_cells:
            return max(1, int(max_height.value))
        return None

    def capacity(self, width: int | None = None) -> int:
        """The most chips this widget could draw at its width and height limit: a caller
        with a huge text need not build more pieces than this."""
        width = width or self.content_size.width or self.app.size.width
        lines = self._line_cap() or self.app.size.height
        rows = lines if not self.show_ids else max(1, lines // 2)
        return rows * ((max(1, width) + 1) // 2) + 1

    def _data_changed(self) -> None:
        self._cached = None
        width = self.content_size.width
        if width <= 0 or self._lines_at is None or self._lines_at[0] != width:
            self.refresh(layout=True)
            return
        lines = max(1, self._renderable().lines_needed(width, self._line_cap()))
        self.refresh(layout=lines != self._lines_at[1])

    def watch_chips(self) -> None:
        self._data_changed()

    def watch_total(self) -> None:
        self._data_changed()

    def watch_show_ids(self) -> None:
        self._data_changed()

    def watch_empty_text(self) -> None:
        self._data_changed()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cached = None
        self._style_cache = None

    def get_content_height(self, container, viewport, width: int) -> int:  # noqa: ANN001
        lines = max(1, self._renderable().lines_needed(width, self._line_cap()))
        self._lines_at = (width, lines)
        return lines

    def render(self) -> TokenChipsRenderable:
        renderable = self._renderable()
        renderable.max_lines = self.content_size.height or None
        return renderable
