"""Chapter 16: the whole path recapped on your prompt, the lenses and levers, what this app
simplified, and where to go next.

The recap's figures come from :func:`..views.recap.compute_recap` (one traced forward pass,
the sampler's first draw, a Q4_0 copy), asked for through the one compute path whenever
the prompt, the model or the sampler settings change. Each recap line is an option: Enter
opens the chapter that shows that stage.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..core.session import Status
from ..views.closing import LENSES, LEVERS, NEXT_STEPS, Pointer, simplifications
from ..views.recap import Recap, RecapLine, compute_recap, placeholder_lines
from ..widgets.prompt_bar import PromptBar
from . import CHAPTERS
from .base import ChapterScreen

LEAD = (
    "You have followed one prompt through a real model. Here is that journey again, on "
    "the prompt below, with one real figure per stage. Choose a line and press Enter to "
    "go back to its chapter; edit the prompt and every figure follows."
)
GLOSSARY_NOTE = (
    "Any word you are unsure of: F2 (or G) opens the glossary from every chapter, even "
    "while you type; F3 (or E) explains the panel that has focus."
)
STAGE_WIDTH = 13


def built_numbers() -> frozenset[int]:
    return frozenset(c.number for c in CHAPTERS)


def chapter_refs(numbers: tuple[int, ...]) -> Text:
    """ "ch 5, 13 (not built yet)" — built chapters in bold, the others dim and marked."""
    built = built_numbers()
    text = Text()
    for i, n in enumerate(numbers):
        if i:
            text.append(", ")
        if n in built:
            text.append(f"ch {n}", style="bold")
        else:
            text.append(f"ch {n}°", style="dim")
    return text


def pointer_table(pointers: tuple[Pointer, ...]) -> Table:
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(no_wrap=True, style="bold")
    table.add_column(ratio=1)
    table.add_column(no_wrap=True, justify="right")
    for p in pointers:
        table.add_row(p.name, p.text, chapter_refs(p.chapters) if p.chapters else Text("—"))
    return table


def recap_prompt(line: RecapLine, width: int = STAGE_WIDTH) -> Text:
    """One recap option: chapter number, stage, figure (with a ° when not built)."""
    built = line.chapter in built_numbers()
    number = f"{line.chapter:>2}{' ' if built else '°'} "
    return Text.assemble(
        (number, "bold" if built else "dim"),
        (f"{line.stage:<{width}}", "bold"),
        " ",
        line.figure,
        no_wrap=True,
        overflow="ellipsis",
    )


class ClosingScreen(ChapterScreen):
    """The recap, the lenses and levers, simplifications and next steps."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    NEEDS_MODEL = True
    AUTO_FOCUS = "#c16-recap"

    recap: Recap | None = None
    """The figures shown in the recap (None while waiting for the model)."""
    lines: tuple[RecapLine, ...] = ()
    """The recap lines as shown (placeholders until the figures arrive)."""

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="c16-body"):
            yield Static(Text(LEAD), id="c16-lead", classes="prose")
            yield PromptBar(self.session.prompt, title="Your prompt (shared)", id="prompt")
            yield Static(id="c16-status", classes="status")
            recap = OptionList(id="c16-recap")
            recap.border_title = "The path, on your prompt — ↑↓ choose · Enter open"
            yield recap
            yield Static(Text("° = chapter not in this version yet", style="dim"),
                         id="c16-legend")  # fmt: skip
            yield Static(Text("Four lenses", style="bold"), classes="heading")
            yield Static(pointer_table(LENSES), id="c16-lenses")
            yield Static(Text("Levers", style="bold"), classes="heading")
            yield Static(pointer_table(LEVERS), id="c16-levers")
            yield Static(Text("What this app simplified", style="bold"), classes="heading")
            yield Static(id="c16-simplified")
            yield Static(Text("Where to go next", style="bold"), classes="heading")
            yield Static(self._next_steps(), id="c16-next")
            yield Static(Text(GLOSSARY_NOTE, style="italic"), id="c16-glossary-note",
                         classes="heading")  # fmt: skip

    @staticmethod
    def _next_steps() -> Text:
        text = Text()
        for i, (name, note) in enumerate(NEXT_STEPS):
            if i:
                text.append("\n")
            text.append("• ")
            text.append(name, style="bold")
            text.append(f" — {note}")
        return text

    def on_mount(self) -> None:
        # Focusing the recap scrolls it into view; a newcomer should read the lead first.
        self.call_after_refresh(self._scroll_home)

    def _scroll_home(self) -> None:
        self.query_one("#c16-body", VerticalScroll).scroll_home(animate=False)

    # -- computing -------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        s = self.session
        model = s.model
        if not s.tokenizer_state.ready:
            self._waiting(s.tokenizer_state.message or "waiting for the tokenizers…")
            return
        if model is None or s.model_state.status is not Status.READY:
            reason = {
                Status.LOADING: "waiting for the model to load…",
                Status.MISSING: "no model installed: nothing to run",
            }.get(s.model_state.status, s.model_state.message or "no model")
            self._waiting(reason)
            return
        self._draw_simplified()
        encoding = s.encoding("model")
        ids, notice = self.context_ids(encoding, model.config.max_position_embeddings)
        self._set_status(notice)
        self.compute(
            "recap",
            compute_recap,
            model,
            encoding,
            ids,
            s.sampling,
            s.seed,
            then=self.draw_recap,
            on_error=self._recap_failed,
        )

    def _waiting(self, reason: str) -> None:
        self.recap = None
        self.cancel_compute("recap")
        self._set_status("")
        self._show_lines(placeholder_lines(reason))
        self._draw_simplified()

    def draw_recap(self, recap: Recap) -> None:
        self.recap = recap
        self._show_lines(recap.lines)

    def _recap_failed(self, message: str) -> None:
        self.recap = None
        self._show_lines(placeholder_lines(f"could not compute: {message}"))

    # -- drawing -----------------------------------------------------------------------------

    def _set_status(self, notice: str) -> None:
        status = self.query_one("#c16-status", Static)
        status.display = bool(notice)
        status.update(Text(notice, style="italic"))

    def _show_lines(self, lines: tuple[RecapLine, ...]) -> None:
        self.lines = lines
        options = self.query_one("#c16-recap", OptionList)
        keep = options.highlighted
        options.clear_options()
        options.add_options(Option(recap_prompt(line), id=line.key) for line in lines)
        if lines:
            options.highlighted = min(keep or 0, len(lines) - 1)

    def _draw_simplified(self) -> None:
        s = self.session
        widget = self.query_one("#c16-simplified", Static)
        if s.model is None:
            widget.update(Text("(the comparison needs the model's sizes)", style="dim"))
            return
        big = s.encoding("o200k_base").n_vocab if s.tokenizer_state.ready else None
        text = Text()
        for i, line in enumerate(simplifications(s.model.config, s.model.name, big)):
            if i:
                text.append("\n")
            text.append("• " + line)
        widget.update(text)

    # -- keys ------------------------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        line = next((ln for ln in self.lines if ln.key == event.option.id), None)
        if line is None:
            return
        if line.chapter not in built_numbers():
            self.notify(
                f"Chapter {line.chapter} is not in this version yet; the glossary (F2) "
                "explains the idea.",
                severity="warning",
                timeout=4,
            )
            return
        self.goto_chapter(line.chapter)
