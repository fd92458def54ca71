""" "Explain this panel" (F3 or E): the focused panel's own text in a dialog.

The texts are data (``assets/explain.toml``, see :mod:`..views.explain`); a panel is found
by the focused widget's id or the nearest ancestor's. Esc closes the dialog and leaves
focus, scroll position and prompt exactly as they were.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from ..views.explain import PanelText, chapter_overview, find_explanation, load_explanations
from .dialog import Dialog


def panel_ids(widget: Widget, screen: Screen) -> list[str]:
    """Ids of ``widget`` and its ancestors, nearest first, up to (not including) ``screen``."""
    ids: list[str] = []
    node: Widget | None = widget
    while node is not None and node is not screen:
        if node.id:
            ids.append(node.id)
        parent = node.parent
        node = parent if isinstance(parent, Widget) else None
    return ids


def explanation_for(screen: Screen, slug: str, widget: Widget | None) -> PanelText | None:
    """The text that explains ``widget`` in chapter ``slug``; with no widget (nothing has
    focus), the chapter's main panel. None if there is none."""
    if widget is None:
        return chapter_overview(load_explanations(), slug)
    return find_explanation(load_explanations(), slug, panel_ids(widget, screen))


def explain_text(panel: PanelText) -> Text:
    text = Text()
    for heading, body in (
        ("What it shows", panel.shows),
        ("How to read it", panel.read),
        ("How to check the numbers", panel.check),
    ):
        if text:
            text.append("\n\n")
        text.append(heading, style="bold underline")
        text.append("\n")
        text.append(body)
    return text


class ExplainScreen(Dialog[None]):
    """One panel's explanation. Esc (or F3) closes it."""

    CSS_PATH = Path(__file__).with_name("glossary.tcss")
    BINDINGS = [
        Binding("escape,f3,E,q", "dismiss(None)", "Close", id="explain.close",
                tooltip="Back to the panel"),
    ]  # fmt: skip

    def __init__(self, panel: PanelText) -> None:
        super().__init__(id="explain-screen")
        self.panel = panel

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="explain-box") as box:
            box.border_title = f"Explain · {self.panel.title}"
            box.border_subtitle = "Esc back · ↑↓ scroll"
            yield Static(explain_text(self.panel), id="explain-text")

    def on_mount(self) -> None:
        self.query_one("#explain-box").focus()
