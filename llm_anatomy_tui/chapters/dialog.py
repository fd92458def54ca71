"""The base of the app's dialogs (glossary, explain, contents, help, open model).

Textual's ``Screen.dismiss`` pops whatever screen is on top, not necessarily the one
dismissed. A key queued behind a dialog's first dismissal (Enter Enter or Esc Esc typed
faster than the dialog closes) dismissed it a second time and popped the chapter under
it, which stopped the app ("Can't pop screen", found by the fuzz test). A
:class:`Dialog` that is no longer on top ignores ``dismiss``.
"""

from __future__ import annotations

from typing import TypeVar

from textual.app import ScreenStackError
from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

Result = TypeVar("Result")


class Dialog(ModalScreen[Result]):
    """A modal screen that can be dismissed once, while it is the screen on top."""

    @property
    def on_top(self) -> bool:
        """Whether this dialog is the screen keys go to (not closing, not covered)."""
        try:
            return self.app.screen is self
        except ScreenStackError:
            return False

    def dismiss(self, result: Result | None = None) -> AwaitComplete:
        if not self.on_top:
            return AwaitComplete.nothing()  # already closing: a queued key's second try
        return super().dismiss(result)
