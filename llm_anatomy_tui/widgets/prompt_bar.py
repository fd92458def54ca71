"""The prompt bar: where the person types the text every chapter works on.

It edits one string and tells its ancestors when the person changed it. Setting the
value from code (:meth:`PromptBar.set_value`) is quiet, so screens can mirror a shared
prompt without echo loops.

How an edit is reported: if an ancestor (normally the screen) has a method
``prompt_bar_edited(bar, value)``, it is called directly, in the same turn as the
keystroke; otherwise a :class:`PromptBar.Changed` message is posted. The direct call
matters for speed: a message reaches the screen only after the screen has painted the
keystroke once, so whatever the screen recomputes would cost a second frame (~16 ms).

Some text cannot be edited safely in a terminal text area, and the bar then shows it
read-only instead of silently changing it:

- longer than ``max_edit_chars`` (a 1 MB paste would make every keystroke slow);
- containing control characters (ESC, NUL, BEL, …: drawn raw they would corrupt the
  terminal) or line breaks the editor would rewrite (form feed, ``\\r``, U+2028 …).

In that *view mode* the bar shows the start of the text with visible stand-ins (``␛``,
``⏎``), says why, and offers: Backspace clears the text; Enter edits a copy cut to the
limit with those characters removed. Pasting adds to the end.

Pasted line breaks are normalised to ``\\n`` (terminals send pasted newlines as ``\\r``).
"""

from __future__ import annotations

import re

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Edit, EditResult

from ..views.token_pieces import visible_text

# Characters a TextArea would draw raw (terminal escapes) or rewrite (line breaks other
# than \n): C0 controls except tab and newline, DEL, C1 controls, U+2028/U+2029.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

PREVIEW_CHARS = 600


def editable_problem(text: str, max_chars: int) -> str | None:
    """Why ``text`` cannot go into the editor as it is, or ``None`` if it can.

    >>> editable_problem("hi", 10) is None
    True
    >>> editable_problem("a\\x1bb", 10)
    'it contains control characters the editor cannot show safely'
    """
    if len(text) > max_chars:
        return f"it is too long to edit here (over {max_chars:,} characters)"
    if _UNSAFE.search(text):
        return "it contains control characters the editor cannot show safely"
    return None


def pasted_text(text: str) -> str:
    r"""Undo what terminals do to pasted line breaks: most send each newline as a carriage
    return (the Enter key), so ``\r\n`` and a lone ``\r`` become ``\n`` again.

    >>> pasted_text("a\rb\r\nc")
    'a\nb\nc'
    """
    return text.replace("\r\n", "\n").replace("\r", "\n")


def editable_copy(text: str, max_chars: int) -> str:
    """The part of ``text`` that can be edited: unsafe characters removed, cut to the limit."""
    return _UNSAFE.sub("", text[: max_chars * 2])[:max_chars]


class _PromptArea(TextArea):
    """The editor. Pastes that would make the text un-editable go to view mode instead."""

    def __init__(self, bar: PromptBar, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._bar = bar

    def edit(self, edit: Edit) -> EditResult:
        # Report the change right away, inside the keystroke's own handler: the screen's
        # recomputed widgets are then painted in the same frame as the typed character.
        result = super().edit(edit)
        self._bar._area_edited()
        return result

    async def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # TextArea's own paste handler would insert the raw text
        event.stop()
        if self.read_only:
            return
        text = pasted_text(event.text)
        lo, hi = sorted(self.selection)
        before = self.get_text_range((0, 0), lo)
        after = self.get_text_range(hi, self.document.end)
        new_text = before + text + after
        if editable_problem(new_text, self._bar.max_edit_chars) is not None:
            self._bar._user_set(new_text)
            return
        result = self.replace(text, lo, hi)
        self.move_cursor(result.end_location)


class _PromptView(Static, can_focus=True):
    """Read-only view of a prompt the editor cannot hold."""

    BINDINGS = [
        Binding("backspace,delete", "clear", "Clear prompt", tooltip="Empty the prompt"),
        Binding(
            "enter",
            "edit_copy",
            "Edit a copy",
            tooltip="Edit the start of the text, with control characters removed",
        ),
    ]

    def __init__(self, bar: PromptBar, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._bar = bar

    def action_clear(self) -> None:
        self._bar._user_set("", focus_editor=True)

    def action_edit_copy(self) -> None:
        self._bar._user_set(
            editable_copy(self._bar.value, self._bar.max_edit_chars), focus_editor=True
        )

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        self._bar._user_set(self._bar.value + pasted_text(event.text))


class PromptBar(Widget):
    """A one-to-few-line editor for the shared prompt, with a safe read-only fallback."""

    DEFAULT_CSS = """
    PromptBar {
        height: auto;
        & > #prompt-area {
            height: auto;
            min-height: 3;
            max-height: 6;
            border: tall $border-blurred;
            border-title-color: $text-muted;
            border-subtitle-color: $text-muted;
            &:focus {
                border: tall $border;
                border-title-color: $text;
            }
        }
        & > #prompt-view {
            height: auto;
            max-height: 6;
            padding: 0 1;
            border: tall $warning 60%;
            &:focus { border: tall $warning; }
        }
    }
    """

    class Changed(Message):
        """The person changed the text (typing, pasting, clearing). Not sent for
        :meth:`PromptBar.set_value`, nor when an ancestor has ``prompt_bar_edited``."""

        def __init__(self, prompt_bar: PromptBar, value: str) -> None:
            super().__init__()
            self.prompt_bar = prompt_bar
            self.value = value

        @property
        def control(self) -> PromptBar:
            return self.prompt_bar

    def __init__(
        self,
        value: str = "",
        *,
        title: str = "Prompt",
        placeholder: str = "Type or paste text here",
        max_edit_chars: int = 10_000,
        cursor_blink: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._value = value
        self.max_edit_chars = max_edit_chars
        self.title = title
        self._area = _PromptArea(
            self,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder=placeholder,
            id="prompt-area",
        )
        self._area.cursor_blink = cursor_blink
        self._view = _PromptView(self, id="prompt-view")

    def compose(self) -> ComposeResult:
        yield self._area
        yield self._view

    def on_mount(self) -> None:
        self._show(self._value)

    # -- public API --------------------------------------------------------------------------

    @property
    def value(self) -> str:
        """The full text (in view mode too)."""
        return self._value

    @property
    def editing_blocked(self) -> str | None:
        """Why the text is shown read-only, or ``None`` when it is in the editor."""
        return editable_problem(self._value, self.max_edit_chars)

    def set_value(self, text: str) -> None:
        """Show ``text`` without sending :class:`Changed` (for mirroring shared state)."""
        if text == self._value:
            return
        self._value = text
        self._show(text)

    def focus_editor(self) -> None:
        """Focus whichever part is showing (the editor, or the read-only view)."""
        (self._view if self._view.display else self._area).focus()

    @property
    def has_focus_within(self) -> bool:
        return self._area.has_focus or self._view.has_focus

    # -- internals ---------------------------------------------------------------------------

    def _show(self, text: str) -> None:
        problem = editable_problem(text, self.max_edit_chars)
        refocus = self.has_focus_within
        if problem is None:
            if self._area.text != text:
                self._area.load_text(text)
                self._area.move_cursor(self._area.document.end)
            self._area.display = True
            self._view.display = False
            self._area.border_title = self.title
            self._area.border_subtitle = "esc: done"
            if refocus:
                self._area.focus()
        else:
            preview = visible_text(text[:PREVIEW_CHARS])
            more = len(text) - PREVIEW_CHARS
            body = Text(preview, no_wrap=False)
            if more > 0:
                body.append(f" … (+{more:,} characters)", style="italic")
            self._view.update(body)
            self._view.border_title = f"{self.title} — {len(text):,} characters, read-only"
            self._view.border_subtitle = f"{problem} · Backspace clears · Enter edits a copy"
            self._area.display = False
            self._view.display = True
            if refocus:
                self._view.focus()

    def _user_set(self, text: str, *, focus_editor: bool = False) -> None:
        self._value = text
        self._show(text)
        if focus_editor:
            self.focus_editor()
        self._report(text)

    def _report(self, text: str) -> None:
        for node in self.ancestors:
            edited = getattr(node, "prompt_bar_edited", None)
            if edited is not None:
                edited(self, text)
                return
        self.post_message(self.Changed(self, text))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        # Edits are normally reported from _PromptArea.edit already; this catches the rest.
        event.stop()
        self._area_edited()

    def _area_edited(self) -> None:
        text = self._area.text
        if text == self._value:
            return  # already reported, our own load_text, or nothing really changed
        if editable_problem(text, self.max_edit_chars) is not None:
            self._user_set(text)  # typed past the limit: switch to view mode
            return
        self._value = text
        self._report(text)
