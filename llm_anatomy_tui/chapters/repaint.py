"""Repainting a column of ``Static`` panels cheaply, for chapters 10 and 11.

A ``Static.update`` normally asks for a layout of the whole screen, which in a long
scrolling column costs more than everything else a keystroke does. :class:`Painter`
updates a panel only when what it shows changed (compared by a key the chapter chooses,
so no renderable is built for nothing), and asks for a layout only when the panel's
height may have changed: a new line count, or the first paint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static


class Painter:
    """Remembers what each panel of one screen shows."""

    def __init__(self, screen: Widget) -> None:
        self._screen = screen
        self._keys: dict[str, object] = {}
        self._lines: dict[str, int | None] = {}

    def put(
        self,
        selector: str,
        key: object,
        make: Callable[[], Any],
        lines: int | None = None,
    ) -> bool:
        """Show ``make()`` in the Static ``selector`` unless ``key`` is what it shows.

        ``lines``: the panel's height in lines if the caller knows it (a table: its rows);
        for a :class:`~rich.text.Text` it is measured by wrapping at the panel's width;
        otherwise a layout is asked for. Returns True if the panel was updated.
        """
        if selector in self._keys and self._keys[selector] == key:
            return False
        widget = self._screen.query_one(selector, Static)
        content = make()
        if lines is None and isinstance(content, Text):
            width = widget.content_region.width
            if width > 0:
                lines = len(content.wrap(self._screen.app.console, width))
        known = self._lines.get(selector)
        relayout = selector not in self._keys or lines is None or lines != known
        self._keys[selector] = key
        self._lines[selector] = lines
        widget.update(content, layout=relayout)
        return True

    def forget(self, selector: str | None = None) -> None:
        """Forget what ``selector`` (or every panel) shows: its next put repaints it."""
        if selector is None:
            self._keys.clear()
            self._lines.clear()
        else:
            self._keys.pop(selector, None)
            self._lines.pop(selector, None)
