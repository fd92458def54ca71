"""The glossary as a dialog over any chapter, and its entries in the command palette.

The terms are data (``assets/glossary.toml``, read by :mod:`..views.glossary`); this module
only shows them. The dialog opens over the current chapter, so closing it (Esc) leaves the
chapter exactly as it was: same screen, scroll position, focus and prompt text. Enter opens
the highlighted term's chapter.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..views.glossary import Glossary, Match, Term, load_glossary, search
from . import CHAPTERS
from .dialog import Dialog


def chapter_title(number: int) -> str | None:
    """The registered chapter's label ("8 · Attention: Q, K, V"), or None if not built."""
    for chapter in CHAPTERS:
        if chapter.number == number:
            return chapter.label
    return None


def term_text(term: Term) -> Text:
    """A term's entry: headword, aliases, definition, chapter and related terms."""
    text = Text()
    text.append(term.name, style="bold")
    if term.aliases:
        text.append(f"  (also: {', '.join(term.aliases)})", style="italic")
    text.append("\n\n")
    text.append(term.text)
    text.append("\n\n")
    label = chapter_title(term.chapter)
    if label:
        text.append("Shown in chapter ", style="dim")
        text.append(label, style="bold")
        text.append(" — Enter opens it", style="dim")
    else:
        text.append(f"Chapter {term.chapter} is not in this version yet.", style="dim")
    if term.related:
        text.append("\nRelated: ", style="dim")
        text.append(" · ".join(term.related))
    return text


def open_term_chapter(app, term: Term) -> bool:  # noqa: ANN001 - the app (a Navigator)
    """Open ``term``'s chapter; say so and return False if it is not built."""
    if chapter_title(term.chapter) is None:
        app.notify(
            f"“{term.name}” belongs to chapter {term.chapter}, which is not in this version "
            "yet. Press t for the contents.",
            severity="warning",
            timeout=4,
        )
        return False
    app.goto_chapter(term.chapter)
    return True


class GlossaryScreen(Dialog[None]):
    """Search the glossary as you type; ↑↓ choose; Enter opens the chapter; Esc closes.

    ``matches`` holds what the list shows (a public attribute for tests)."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("escape,f2", "close", "Close", id="glossary.close", tooltip="Back to where you were"),
        Binding("down", "move(1)", "Next term", show=False, id="glossary.down",
                tooltip="Highlight the next term"),
        Binding("up", "move(-1)", "Previous term", show=False, id="glossary.up",
                tooltip="Highlight the previous term"),
        Binding("pagedown", "move(8)", "Page down", show=False, id="glossary.pagedown",
                tooltip="Eight terms down"),
        Binding("pageup", "move(-8)", "Page up", show=False, id="glossary.pageup",
                tooltip="Eight terms up"),
    ]  # fmt: skip

    def __init__(self, query: str = "", glossary: Glossary | None = None) -> None:
        super().__init__(id="glossary-screen")
        self.glossary = glossary if glossary is not None else load_glossary()
        self.initial_query = query
        self.matches: list[Match] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="glossary-box") as box:
            box.border_title = f"Glossary · {len(self.glossary.terms)} terms"
            box.border_subtitle = "type to search · ↑↓ choose · Enter open chapter · Esc back"
            yield Input(
                self.initial_query,
                placeholder="Search: a word, an abbreviation (GQA), even misspelt",
                id="glossary-search",
            )
            with Horizontal(id="glossary-columns"):
                yield OptionList(id="glossary-list")
                with VerticalScroll(id="glossary-entry-box", can_focus=False):
                    yield Static(id="glossary-entry")

    def on_mount(self) -> None:
        self.query_one("#glossary-list", OptionList).can_focus = False  # keys go to the input
        self._refresh(self.initial_query)
        self.query_one("#glossary-search", Input).focus()

    # -- search ----------------------------------------------------------------------------

    def search_for(self, query: str) -> None:
        """Search for ``query`` as if it had been typed (the list follows)."""
        search = self.query_one("#glossary-search", Input)
        search.value = query
        search.cursor_position = len(query)

    @on(Input.Changed, "#glossary-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refresh(event.value)

    def _refresh(self, query: str) -> None:
        self.matches = search(self.glossary, query)
        options = self.query_one("#glossary-list", OptionList)
        options.clear_options()
        options.add_options(
            Option(Text(m.term.name, no_wrap=True, overflow="ellipsis"), id=m.term.name)
            for m in self.matches
        )
        if self.matches:
            options.highlighted = 0
        self._show_entry()

    @property
    def current(self) -> Term | None:
        """The highlighted term, or None when nothing matches."""
        options = self.query_one("#glossary-list", OptionList)
        i = options.highlighted
        if i is None or not 0 <= i < len(self.matches):
            return None
        return self.matches[i].term

    def _show_entry(self) -> None:
        entry = self.query_one("#glossary-entry", Static)
        term = self.current
        if term is None:
            query = self.query_one("#glossary-search", Input).value.strip()
            entry.update(
                Text.assemble(
                    ("No term matches ", "italic"),
                    (f"“{query}”", "bold"),
                    (
                        ". Try fewer letters, another spelling or an abbreviation; "
                        "Backspace widens the search.",
                        "italic",
                    ),
                )  # fmt: skip
            )
            return
        entry.update(term_text(term))
        self.query_one("#glossary-entry-box", VerticalScroll).scroll_home(animate=False)

    @on(OptionList.OptionHighlighted, "#glossary-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show_entry()

    # -- keys --------------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        options = self.query_one("#glossary-list", OptionList)
        if not self.matches:
            return
        i = options.highlighted or 0
        options.highlighted = max(0, min(len(self.matches) - 1, i + step))

    @on(Input.Submitted, "#glossary-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._open_current()

    @on(OptionList.OptionSelected, "#glossary-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:  # a mouse click
        event.stop()
        self._open_current()

    def _open_current(self) -> None:
        term = self.current
        if term is None:
            self.notify("No term is highlighted: change the search first.", timeout=3)
            return
        if chapter_title(term.chapter) is None:
            open_term_chapter(self.app, term)  # explains why nothing opens; stay here
            return
        if self.on_top:  # not a second Enter queued behind the first
            self.dismiss(None)
            open_term_chapter(self.app, term)

    def action_close(self) -> None:
        self.dismiss(None)


class GlossaryCommands(Provider):
    """Command palette entries "Glossary: Term" for the terms matching what is typed
    (aliases and typos too), and one "Glossary: look up a term" before anything is typed."""

    async def discover(self) -> Hits:
        # One entry before anything is typed (not 100 terms crowding out the chapters).
        yield DiscoveryHit(
            "Glossary: look up a term",
            partial(self._show, ""),
            help=f"{len(load_glossary().terms)} terms, searchable as you type (F2 anywhere)",
        )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for match in search(load_glossary(), query, limit=12):
            name = f"Glossary: {match.term.name}"
            alias = f" ({match.matched})" if match.matched != match.term.name else ""
            display = matcher.highlight(name + alias)
            # Rank on the palette's own scale, so terms sort among the chapters; a typo
            # that only our search forgives gets a small score instead of none.
            score = matcher.match(name + alias) or match.score / 100
            yield Hit(score, display, partial(self._show, match.term.name),
                      help=_gist(match.term))  # fmt: skip

    def _show(self, name: str) -> None:
        self.app.action_glossary(name)  # type: ignore[attr-defined]  # keeps it to one screen


def _gist(term: Term) -> str:
    """The definition's first sentence."""
    first = term.text.split(". ")[0]
    return first if first.endswith(".") else first + "."
