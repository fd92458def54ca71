"""Screens and commands for moving around: the contents, the help screen, and the command
palette's "Go to chapter …" entries. All of them read the chapter registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol, cast

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..widgets.safe_lists import SafePagingMixin
from . import CHAPTERS, Chapter
from .base import NAV_BINDINGS
from .dialog import Dialog

TYPING_NOTE = (
    "While the prompt bar has the cursor, letter and digit keys type into it. "
    "Press Esc to leave it; F1 (help), Ctrl+P (palette) and Ctrl+Q (quit) work even "
    "while typing. Tab moves between controls; Enter activates the highlighted one."
)


class Navigator(Protocol):
    def goto_chapter(self, key: int | str) -> None: ...


def chapter_prompt(chapter: Chapter, *, current: bool = False, tagline: bool = True) -> Text:
    """One line for a list of chapters: number, title and (cut to fit) the tagline."""
    text = Text.assemble(
        ("▶" if current else " ", "bold"),
        (f"{chapter.number:>2}  ", "bold"),
        (chapter.title, "bold"),
        no_wrap=True,
        overflow="ellipsis",
        end="",
    )
    if current:
        text.append("  (you are here)", style="italic")
    if tagline:
        text.append(f"  {chapter.tagline}", style="dim")
    return text


class ChapterList(SafePagingMixin, OptionList):
    """An option list of every registered chapter; Enter opens the highlighted one.

    ``current`` is marked "you are here"; ``highlight`` (default: ``current``) starts
    highlighted. Posts ``OptionList.OptionSelected`` with ``option.id`` = the slug.
    """

    def __init__(
        self, current: str | None = None, highlight: str | None = None, **kwargs: Any
    ) -> None:
        options = [
            Option(chapter_prompt(c, current=c.slug == current), id=c.slug) for c in CHAPTERS
        ]
        super().__init__(*options, **kwargs)
        self._start = highlight if highlight is not None else current

    def on_mount(self) -> None:
        # After the first refresh: OptionList resets its highlight while it mounts.
        self.call_after_refresh(self._highlight_start)

    def _highlight_start(self) -> None:
        for i, c in enumerate(CHAPTERS):
            if c.slug == self._start:
                self.highlighted = i


class ContentsScreen(Dialog[str | None]):
    """The table of contents. Dismisses with the chosen chapter's slug, or ``None``."""

    BINDINGS = [
        Binding("escape,t,q", "dismiss(None)", "Close", id="contents.close", tooltip="Close"),
    ]

    def __init__(self, current: str | None) -> None:
        super().__init__(id="contents-screen")
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="contents-box") as box:
            box.border_title = "Contents"
            box.border_subtitle = "↑↓ choose · Enter open · Esc close"
            yield ChapterList(self.current, id="contents-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


@dataclass(frozen=True)
class KeyRow:
    keys: str
    description: str
    tooltip: str
    group: str


def help_rows(app: App, screen: Screen) -> list[KeyRow]:
    """The keys of ``screen`` and of the app, one row per action, generated from the
    bindings themselves (their keys, description and tooltip). Keys that are disabled at
    the moment (Esc outside the prompt) are listed too; a focused widget's own editing keys
    are not."""
    rows: dict[tuple[str, str], KeyRow] = {}
    for bindings_map in (screen._bindings, app._bindings):
        for key, bindings in bindings_map.key_to_bindings.items():
            for binding in bindings:
                if not binding.description:
                    continue
                if binding.system and binding.action != "command_palette":
                    continue
                bid = binding.id or ""
                key_display = app.get_key_display(binding) if key == binding.key else key
                if bid.startswith("nav.jump-"):
                    key_display, description = "0–9", "Jump to chapter"
                else:
                    description = binding.description
                description = description[:1].upper() + description[1:]
                own = getattr(getattr(screen, "chapter", None), "slug", None)
                group = "This chapter" if own and bid.startswith(f"{own}.") else "Everywhere"
                ident = (group, description.lower())
                old = rows.get(ident)
                if old is None:
                    rows[ident] = KeyRow(key_display, description, binding.tooltip or "", group)
                elif key_display not in old.keys.split(" / "):
                    rows[ident] = replace(old, keys=f"{old.keys} / {key_display}")
    nav = {row.description.lower() for row in rows.values()} & _NAV_DESCRIPTIONS
    ordered = [r for r in rows.values() if r.group == "This chapter"]
    ordered += [
        r for r in rows.values() if r.group == "Everywhere" and r.description.lower() in nav
    ]
    ordered += [
        r for r in rows.values() if r.group == "Everywhere" and r.description.lower() not in nav
    ]
    return ordered


_NAV_DESCRIPTIONS = {b.description.lower() for b in NAV_BINDINGS if isinstance(b, Binding)} | {
    "jump to chapter"
}


def help_table(rows: Iterable[KeyRow]) -> Table:
    """The help screen's body: keys grouped under headings, a tooltip beside each."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", no_wrap=True, style="bold")
    table.add_column(ratio=1)
    group = None
    for row in rows:
        if row.group != group:
            if group is not None:
                table.add_row("", "")
            table.add_row("", Text(row.group, style="bold underline"))
            group = row.group
        text = Text(row.description)
        if row.tooltip and row.tooltip.lower() != row.description.lower():
            text.append(f" — {row.tooltip}", style="dim")
        table.add_row(row.keys, text)
    return table


class HelpScreen(Dialog[None]):
    """Every key of the chapter underneath, generated from its bindings."""

    BINDINGS = [
        Binding(
            "escape,question_mark,f1,q",
            "dismiss(None)",
            "Close",
            id="help.close",
            tooltip="Close the help",
        ),
    ]

    def __init__(self, title: str, rows: list[KeyRow]) -> None:
        super().__init__(id="help-screen")
        self.help_title = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = f"Help · {self.help_title}"
            box.border_subtitle = "Esc close · ↑↓ scroll"
            yield Static(help_table(self.rows), id="help-keys")
            yield Static(Text(TYPING_NOTE, style="italic"), id="help-typing")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()


class ChapterCommands(Provider):
    """Command palette entries "Go to chapter N: Title" for every registered chapter."""

    def _commands(self) -> list[tuple[str, Callable[[], None], str]]:
        navigator = cast(Navigator, self.app)
        return [
            (
                f"Go to chapter {c.number}: {c.title}",
                partial(navigator.goto_chapter, c.slug),
                c.tagline,
            )
            for c in CHAPTERS
        ]

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
