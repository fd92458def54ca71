"""The prompt bar: where the person types the text every chapter works on.

It edits one string and tells its ancestors when the person changed it. Setting the
value from code (:meth:`PromptBar.set_value`) is quiet, so screens can mirror a shared
prompt without echo loops.

How an edit is reported: if an ancestor (normally the screen) has a method
``prompt_bar_edited(bar, value)``, it is called directly; otherwise a
:class:`PromptBar.Changed` message is posted. The direct call matters for speed: a
message reaches the screen only after the screen has painted the keystroke once, so
whatever the screen recomputes would cost a second frame (~16 ms).

Typed edits are *coalesced*: the report runs once the keys already waiting in the
editor's queue have been applied, with the text as it is then. A person typing gets one
report per key, as before; a flood of keys (a held key, ``tmux send-keys``, a terminal
without bracketed paste) gets one report per batch, so the chapter recomputes a few
times instead of once per character and the screen keeps up.

Some text cannot be edited safely in a terminal text area, and the bar then shows it
read-only instead of silently changing it:

- longer than ``max_edit_chars`` (a 1 MB paste would make every keystroke slow);
- containing control characters (ESC, NUL, BEL, …: drawn raw they would corrupt the
  terminal) or line breaks the editor would rewrite (form feed, ``\\r``, U+2028 …).

In that *view mode* the bar shows the start of the text with visible stand-ins (``␛``,
``⏎``), says why, and offers: Backspace clears the text; Enter edits a copy cut to the
limit with those characters removed. Pasting adds to the end.

Every such whole-text change (clearing, editing a copy, a paste that switched modes) can
be undone with Ctrl+Z, in either mode: the editor's own undo goes first, and when it has
nothing left the bar's undo restores the text as it was before the change.

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
UNDO_DEPTH = 20
"""Whole-text changes the bar remembers for Ctrl+Z."""


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
        self._typed: list[str] = []

    async def _on_key(self, event: events.Key) -> None:
        # Typed characters are inserted in batches: each insert re-wraps the whole
        # (one-line, soft-wrapped) prompt, so one insert per key made a flood of typed
        # keys quadratic (3,000 keys froze the app for seconds). A key that is not a
        # character first inserts what is waiting, so nothing is reordered.
        if event.is_printable and not self.read_only and event.character:
            event.stop()
            event.prevent_default()
            self._typed.append(event.character)
            if len(self._typed) == 1:
                self.call_later(self.flush_typed)
            return
        self.flush_typed()
        await super()._on_key(event)

    def flush_typed(self) -> None:
        """Insert the typed characters that are waiting (called after the queued keys)."""
        if not self._typed:
            return
        text = "".join(self._typed)
        self._typed.clear()
        if self.read_only:
            return
        start, end = self.selection
        self.replace(text, start, end, maintain_selection_offset=False)
        self.scroll_cursor_visible()

    def edit(self, edit: Edit) -> EditResult:
        # Report the change right away, inside the keystroke's own handler: the screen's
        # recomputed widgets are then painted in the same frame as the typed character.
        result = super().edit(edit)
        self._bar._area_edited()
        return result

    def action_undo(self) -> None:
        self.flush_typed()
        before = self.text
        super().action_undo()
        if self.text == before:  # the editor had nothing to undo: undo a whole-text change
            self._bar.undo()

    async def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # TextArea's own paste handler would insert the raw text
        event.stop()
        self.flush_typed()
        if self.read_only or not event.text:
            return  # an empty clipboard pastes nothing: it must not delete the selection
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
        Binding("ctrl+z", "undo", "Undo", tooltip="Bring back the text before the last change"),
    ]

    def __init__(self, bar: PromptBar, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._bar = bar
        self._typed: list[str] = []

    async def _on_key(self, event: events.Key) -> None:
        # Typing while the text is read-only adds to its end (in batches, as in the
        # editor), so letters typed past the edit limit never run commands.
        if event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self._typed.append(event.character)
            if len(self._typed) == 1:
                self.call_later(self._flush_typed)

    def _flush_typed(self) -> None:
        text = "".join(self._typed)
        self._typed.clear()
        if text:
            self._bar._set_and_report(self._bar.value + text)

    def action_clear(self) -> None:
        cleared = len(self._bar.value)
        self._bar._user_set("", focus_editor=True)
        self.app.notify(
            f"Prompt cleared ({cleared:,} characters). Ctrl+Z in the prompt brings it back.",
            timeout=4,
        )

    def action_undo(self) -> None:
        self._bar.undo()

    def action_edit_copy(self) -> None:
        self._bar._user_set(
            editable_copy(self._bar.value, self._bar.max_edit_chars), focus_editor=True
        )

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text:
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
        self._undo: list[str] = []
        self._report_pending = False

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

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has a whole-text change to take back."""
        return bool(self._undo)

    def undo(self) -> bool:
        """Restore the text from before the last whole-text change (clear, edit a copy, a
        paste into view mode). Reported like an edit. Returns False if there was none."""
        if not self._undo:
            return False
        text = self._undo.pop()
        self._set_and_report(text, focus_editor=True)
        return True

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
            why = "too long" if len(text) > self.max_edit_chars else "control characters"
            self._view.border_title = f"{self.title} — {len(text):,} chars, read-only ({why})"
            self._view.border_subtitle = "Backspace clears · Enter edits a clean copy · Ctrl+Z undo"
            self._view.tooltip = problem
            self._area.display = False
            self._view.display = True
            if refocus:
                self._view.focus()

    def _user_set(self, text: str, *, focus_editor: bool = False) -> None:
        if text != self._value:
            self._undo.append(self._value)
            del self._undo[:-UNDO_DEPTH]
        self._set_and_report(text, focus_editor=focus_editor)

    def _set_and_report(self, text: str, *, focus_editor: bool = False) -> None:
        self._value = text
        self._show(text)
        if focus_editor:
            self.focus_editor()
        self._report(text)

    def _report(self, text: str) -> None:
        self._report_pending = False
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
        if not self._report_pending:
            self._report_pending = True
            # After the keys already queued for the editor: one report for the batch.
            self._area.call_later(self._flush_report)

    def _flush_report(self) -> None:
        if not self._report_pending:
            return
        self._report_pending = False
        self._report(self._value)
