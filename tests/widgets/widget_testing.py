"""Helpers for the widget tests: render a Rich renderable to plain text, and a one-widget
Textual app that records the messages the widget posts and counts its renders."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widget import Widget


def render_text(renderable: Any, width: int = 80, color_system: str | None = None) -> str:
    """The renderable as plain text at ``width`` (trailing spaces stripped per line)."""
    console = Console(
        width=width, record=True, color_system=color_system, file=_Null(), legacy_windows=False
    )
    console.print(renderable)
    text = console.export_text()
    return "\n".join(line.rstrip() for line in text.splitlines())


def render_segments(renderable: Any, width: int = 80) -> list[list[Segment]]:
    """The renderable as lines of segments on a truecolor console."""
    console = Console(width=width, color_system="truecolor", file=_Null())
    return console.render_lines(renderable, console.options.update(width=width), pad=False)


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


class Harness(App):
    """Mounts one widget, focuses it, and records every message it posts."""

    CSS = "Screen { layout: vertical; }"

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget
        self.messages: list[Message] = []
        self.renders = 0
        original = widget.render

        def counting_render():
            self.renders += 1
            return original()

        widget.render = counting_render  # type: ignore[method-assign]

    def compose(self) -> ComposeResult:
        yield self.widget

    def on_mount(self) -> None:
        if self.widget.can_focus:
            self.widget.focus()

    def on_heatmap_cell_selected(self, message: Message) -> None:
        self.messages.append(message)

    def on_bar_chart_row_highlighted(self, message: Message) -> None:
        self.messages.append(message)

    def on_bar_chart_row_chosen(self, message: Message) -> None:
        self.messages.append(message)

    def on_vector_strip_dim_selected(self, message: Message) -> None:
        self.messages.append(message)

    def on_matrix_view_cell_selected(self, message: Message) -> None:
        self.messages.append(message)
