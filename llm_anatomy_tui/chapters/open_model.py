"""The "Open model…" dialog and its command-palette entry.

The dialog asks for a path (a Hugging Face directory or a ``.gguf`` file; pasting works,
quotes and ``file://`` are stripped) and lists the recently opened models. It dismisses
with the chosen path; the app loads it in a worker (``LLMAnatomyApp.open_model``) and
every chapter recomputes once the model is ready.
"""

from __future__ import annotations

from typing import Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..core.recent_models import clean_path
from .dialog import Dialog

OPEN_MODEL_HELP = "A GGUF file or a Hugging Face directory (config.json + safetensors)"


class ModelOpener(Protocol):
    def action_open_model(self) -> None: ...


class OpenModelScreen(Dialog[str | None]):
    """Path field plus recent models. Dismisses with a cleaned path, or ``None``."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", id="open-model.close", tooltip="Close"),
    ]

    def __init__(self, recent: list[str], current: str = "") -> None:
        """
        Args:
            recent: recently opened paths, most recent first.
            current: one line about the model loaded now (shown above the field).
        """
        super().__init__(id="open-model-screen")
        self.recent = recent
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="open-model-box") as box:
            box.border_title = "Open model"
            box.border_subtitle = "Enter open · Tab recent · Esc close"
            if self.current:
                yield Static(Text(f"Now: {self.current}", style="dim"), id="open-model-current")
            yield Static(OPEN_MODEL_HELP + ":", id="open-model-hint")
            yield Input(placeholder="/path/to/model.gguf", compact=True, id="open-model-path")
            yield Static("", id="open-model-error")
            if self.recent:
                yield Static(Text("Recently opened", style="bold"), id="open-model-recent-title")
                yield OptionList(
                    *(
                        Option(Text(p, no_wrap=True, overflow="ellipsis"), id=p)
                        for p in self.recent
                    ),
                    id="open-model-recent",
                )
            else:
                yield Static(Text("No recently opened models yet.", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#open-model-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = clean_path(event.value)
        if not path:
            self.query_one("#open-model-error", Static).update(
                Text("Type or paste a path first.", style="bold")
            )
            return
        self.dismiss(path)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.dismiss(event.option.id)


class ModelCommands(Provider):
    """The command palette's "Open model…" entry."""

    TEXT = "Open model…"

    def _open(self) -> None:
        cast(ModelOpener, self.app).action_open_model()

    async def discover(self) -> Hits:
        yield DiscoveryHit(self.TEXT, self._open, help=OPEN_MODEL_HELP)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        score = matcher.match(self.TEXT)
        if score > 0:
            yield Hit(score, matcher.highlight(self.TEXT), self._open, help=OPEN_MODEL_HELP)
