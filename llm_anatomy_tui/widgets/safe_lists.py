"""Option lists that survive paging before their first layout.

Textual's ``OptionList`` works out which line an option sits on when it is first laid
out. Until then (a palette opened and a letter typed a moment ago: the list of matches
exists but has not been sized), PageUp/PageDown look the highlight up in an empty table
and raise ``KeyError: 0`` — which ends the app (``tmux send-keys C-p g PageUp``).

Here paging on a list that has no size yet moves to the first/last option instead,
which is where one page would have taken it on a list that fits on a page anyway.
"""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import OptionList


def laid_out(option_list: OptionList) -> bool:
    """Whether ``option_list`` has a size, so its options have lines to page through."""
    return bool(option_list.scrollable_content_region)


class SafePagingMixin:
    """Mix into an ``OptionList`` subclass: PageUp/PageDown before layout do not crash."""

    def action_page_up(self) -> None:
        if laid_out(self):  # type: ignore[arg-type]
            super().action_page_up()  # type: ignore[misc]
        else:
            self.action_first()  # type: ignore[attr-defined]

    def action_page_down(self) -> None:
        if laid_out(self):  # type: ignore[arg-type]
            super().action_page_down()  # type: ignore[misc]
        else:
            self.action_last()  # type: ignore[attr-defined]


class SafeCommandPalette(CommandPalette):
    """Textual's command palette, with paging guarded the same way.

    (The palette builds its own ``CommandList``; its PageUp/PageDown bindings pass the
    action on to that list, so the guard goes where the action is passed on.)
    """

    def _action_command_list(self, action: str) -> None:
        if action in ("page_up", "page_down"):
            from textual.command import CommandList

            lists = self.query(CommandList)
            if not lists:
                return
            command_list = lists.first()
            if not command_list.option_count:
                return
            if not laid_out(command_list):
                if action == "page_up":
                    command_list.action_first()
                else:
                    command_list.action_last()
                return
        super()._action_command_list(action)
