"""Chapter 0: what this is, the path through the model, your prompt, the chapters, the keys."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static

from ..core.session import Status
from ..views.model_card import ModelCard, model_card
from ..widgets.prompt_bar import PromptBar
from . import CHAPTERS
from .base import MODEL, ChapterScreen
from .navigation import ChapterList

INTRO = (
    "A real language model, opened up while it reads your text: a Llama-style transformer "
    "running in numpy — the small one trained for this project, or one you open (Ctrl+P, "
    "Open model…). Each chapter shows one step of this path, computed on your prompt (Tab "
    "to the path, ← → to a stage, Enter opens its chapter):"
)

# The path a prompt takes, stage by stage, with the chapter that opens each stage (from
# CHAPTERS.md). A stage is highlighted (and clickable) only if its chapter is built.
STAGES: tuple[tuple[str, int | None], ...] = (
    ("text", None),
    ("tokens", 1),
    ("embeddings", 2),
    ("N × [", 11),
    ("RMSNorm", 11),
    ("RoPE", 10),
    ("attention", 8),
    ("+ residual", 11),
    ("RMSNorm", 11),
    ("feed-forward", 4),
    ("+ residual", 11),
    ("]", None),
    ("final norm", 11),
    ("logits", 5),
    ("softmax", 5),
    ("sampler", 5),
    ("next token", 5),
    ("append, repeat ↺", 14),
)


class PathDiagram:
    """The stages as one flow of arrows, wrapped to the width (a plain Rich renderable)."""

    def __init__(
        self,
        stages: Sequence[tuple[str, int | None]],
        built: dict[int, str],
        *,
        built_style: Style,
        plain_style: Style,
        cursor: int | None = None,
        cursor_style: Style | None = None,
    ) -> None:
        self.stages = stages
        self.built = built
        self.built_style = built_style
        self.plain_style = plain_style
        self.cursor = cursor
        self.cursor_style = cursor_style or Style(reverse=True)

    def _pieces(self) -> list[Text]:
        pieces: list[Text] = []
        for i, (label, number) in enumerate(self.stages):
            nxt = self.stages[i + 1][0] if i + 1 < len(self.stages) else None
            arrow = "" if nxt is None or label.endswith("[") or nxt == "]" else " →"
            if number is not None and number in self.built:
                slug = self.built[number]
                style = self.built_style + Style(meta={"@click": f"app.goto_chapter('{slug}')"})
                if i == self.cursor:
                    style += self.cursor_style
                piece = Text.assemble((label, style), (f" [{number}]", style))
            else:
                piece = Text(label, style=self.plain_style)
            piece.append(arrow, style=self.plain_style)
            pieces.append(piece)
        return pieces

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(10, options.max_width)
        line = Text(no_wrap=True, end="")
        lines: list[Text] = []
        for piece in self._pieces():
            gap = 1 if line.cell_len else 0
            if line.cell_len and line.cell_len + gap + piece.cell_len > width:
                lines.append(line)
                line = Text("  ", no_wrap=True, end="")
                gap = 0
            if gap:
                line.append(" ")
            line.append_text(piece)
        lines.append(line)
        for i, text in enumerate(lines):
            text.end = "\n" if i < len(lines) - 1 else ""
            text.truncate(width, overflow="ellipsis")
            yield text
        yield Text("")


class PathView(Static, can_focus=True):
    """The path diagram as a focusable widget: ← → move between the stages whose chapter
    is built, Enter opens it (a click on a stage does the same)."""

    BINDINGS = [
        Binding("left", "move(-1)", "Stage ←", id="welcome.path-previous",
                tooltip="Move to the previous stage of the path that has a chapter"),
        Binding("right", "move(1)", "Stage →", id="welcome.path-next",
                tooltip="Move to the next stage of the path that has a chapter"),
        Binding("enter", "open", "Open stage", id="welcome.path-open",
                tooltip="Open the chapter of the stage under the cursor"),
    ]  # fmt: skip

    def __init__(self, stages: Sequence[tuple[str, int | None]], built: dict[int, str],
                 **kwargs) -> None:  # noqa: ANN003  # fmt: skip
        super().__init__(**kwargs)
        self.stages = stages
        self.built = built
        self.stops = [i for i, (_, n) in enumerate(stages) if n is not None and n in built]
        """Indices of the stages the cursor can rest on (their chapter is built)."""
        self.cursor = 0
        """Position in :attr:`stops`."""

    @property
    def chapter_slug(self) -> str | None:
        """The slug of the chapter under the cursor (None if no stage is built)."""
        if not self.stops:
            return None
        return self.built[self.stages[self.stops[self.cursor]][1]]  # type: ignore[index]

    def on_mount(self) -> None:
        self._redraw()

    def on_focus(self) -> None:
        self._redraw()

    def on_blur(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        cursor = self.stops[self.cursor] if self.stops and self.has_focus else None
        self.update(PathDiagram(self.stages, self.built, cursor=cursor,
                                built_style=Style(bold=True, underline=True),
                                plain_style=Style(dim=True)))  # fmt: skip

    def action_move(self, step: int) -> None:
        if self.stops:
            self.cursor = (self.cursor + step) % len(self.stops)
            self._redraw()

    def action_open(self) -> None:
        slug = self.chapter_slug
        if slug is not None:
            self.app.action_goto_chapter(slug)  # type: ignore[attr-defined]


FIRST_HIGHLIGHT = CHAPTERS[1].slug if len(CHAPTERS) > 1 else None
"""The chapter highlighted when the welcome screen opens: the first real one."""


class WelcomeScreen(ChapterScreen):
    """The front door: a short introduction, the prompt bar, the chapters and the keys."""

    CSS_PATH = "c00_welcome.tcss"
    AUTO_FOCUS = "#welcome-chapters"
    NEEDS_TOKENIZERS = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    card: ModelCard | None = None
    """The loaded model's card as shown (None while no model is loaded)."""

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="welcome-body"), Horizontal(id="welcome-columns"):
            with Vertical(id="welcome-left"):
                yield Static(Text(INTRO), id="welcome-intro", classes="prose")
                yield PathView(STAGES, {c.number: c.slug for c in CHAPTERS}, id="welcome-path")
                yield PromptBar(
                    self.session.prompt,
                    title="Your prompt, shared by every chapter — / to type, Esc when done",
                    id="prompt",
                )
                yield Static(id="welcome-status", classes="status")
                yield Static(id="welcome-card")
            with Vertical(id="welcome-right"):
                chapters = ChapterList(None, highlight=FIRST_HIGHLIGHT, id="welcome-chapters")
                chapters.border_title = "Chapters — ↑↓ and Enter to open"
                yield chapters
                yield Static(id="welcome-keys")

    def on_mount(self) -> None:
        self.call_after_refresh(self._show_keys)
        # Focusing the chapter list scrolls it into view; a newcomer should see the
        # introduction first on a short terminal, so start at the top.
        self.call_after_refresh(self._scroll_to_top)

    def _scroll_to_top(self) -> None:
        self.query_one("#welcome-body", VerticalScroll).scroll_home(animate=False)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # Once the reader moves through the list, keep all of it on screen. (The start-up
        # highlight, ChapterList's own, must not undo _scroll_to_top.)
        if event.option.id != FIRST_HIGHLIGHT:
            event.option_list.scroll_visible(animate=False)

    def _show_keys(self) -> None:
        from .navigation import help_rows

        skip = {"focus next", "focus previous", "copy selected text"}
        rows = [
            r
            for r in help_rows(self.app, self)
            if r.group == "Everywhere" and r.description.lower() not in skip
        ]
        keys = Text()
        keys.append("Keys: ", style="bold")
        for i, row in enumerate(rows):
            if i:
                keys.append("  ·  ", style="dim")
            keys.append(row.keys, style="bold")
            keys.append(f" {row.description.lower()}")
        self.query_one("#welcome-keys", Static).update(keys)

    def session_changed(self, changes: frozenset[str]) -> None:
        s = self.session
        tok = s.tokenizer_state
        model = s.model_state
        if tok.status is Status.LOADING:
            tok_text = "tokenizers loading…"
        elif tok.ready:
            tok_text = "tokenizers ready"
        else:
            tok_text = f"tokenizers: {tok.message}"
        if model.status is Status.LOADING:
            model_text = "model loading…"
        elif model.ready and s.model is not None:
            model_text = f"model {s.model.name} ready"
        elif model.status is Status.MISSING:
            model_text = "no model found: reinstall, or set LLM_ANATOMY_MODEL"
        else:
            model_text = model.message
        self.query_one("#welcome-status", Static).update(
            Text(f"Status: {tok_text} · {model_text}", style="dim")
        )
        if MODEL in changes or self.card is None:
            self._show_card()

    def _show_card(self) -> None:
        model = self.session.model if self.session.model_state.ready else None
        widget = self.query_one("#welcome-card", Static)
        self.card = model_card(model) if model is not None else None
        widget.display = self.card is not None
        if self.card is None:
            return
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
        for label, value in self.card.rows:
            table.add_row(label, value)
        table.add_row("", Text("Ctrl+P → Open model… opens another (GGUF or HF directory)",
                               style="dim italic"))  # fmt: skip
        widget.update(table)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.goto_chapter(event.option.id)
