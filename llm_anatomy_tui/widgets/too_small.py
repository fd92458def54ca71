"""A notice that covers the screen while the terminal is too small to use.

Below :data:`MIN_COLS` x :data:`MIN_ROWS` the chapters' panels, footer and prompt cannot
all fit: rather than a broken layout the screen shows one clear paragraph saying so and
how large the terminal needs to be. The screen beneath keeps running (nothing is lost);
the notice disappears as soon as the terminal is large enough again.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

MIN_COLS = 60
MIN_ROWS = 20


def too_small(cols: int, rows: int) -> bool:
    """
    >>> too_small(80, 24), too_small(60, 20), too_small(59, 40), too_small(120, 19)
    (False, False, True, True)
    """
    return cols < MIN_COLS or rows < MIN_ROWS


def notice_text(cols: int, rows: int) -> Text:
    return Text.assemble(
        ("Terminal too small", "bold reverse"),
        f"\n\nThis window is {cols}×{rows}; llm-anatomy needs at least "
        f"{MIN_COLS}×{MIN_ROWS} (80×24 is best).\n\nMake the window larger, or the font "
        "smaller. Nothing is lost meanwhile; q quits.",
    )


class TooSmallNotice(Static):
    """Covers its screen (on its own layer) while the terminal is too small."""

    DEFAULT_CSS = """
    TooSmallNotice {
        layer: too-small;
        dock: top;
        width: 100%;
        height: 100%;
        padding: 1 2;
        background: $background;
        color: $foreground;
        display: none;
    }
    """

    def show_for(self, cols: int, rows: int) -> None:
        """Show the notice if ``cols`` x ``rows`` is too small, hide it otherwise."""
        small = too_small(cols, rows)
        if small:
            self.update(notice_text(cols, rows))
        self.display = small
