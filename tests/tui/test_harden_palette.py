"""Paging in option lists before their first layout (issue 15: ``C-p g PageUp`` crashed)."""

from __future__ import annotations

import pytest
from textual import events

from llm_anatomy_tui.chapters import CHAPTERS


@pytest.mark.parametrize("key", ["pageup", "pagedown"])
async def test_palette_letter_then_page_key_at_once(make_app, key: str) -> None:
    """Ctrl+P, a letter and PageUp/PageDown in one burst, as tmux sends them."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # One burst, as a terminal delivers it: no pause between keys, so the list of
        # matches exists before it has been laid out.
        for k, ch in (("ctrl+p", None), ("g", "g"), (key, None)):
            app.post_message(events.Key(k, ch))
        await pilot.pause()
        await pilot.press(key, "escape")
        await pilot.pause()
        assert app.is_running
        assert app.return_code is None


@pytest.mark.parametrize("key", ["pageup", "pagedown"])
async def test_contents_page_keys_at_once(make_app, key: str) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for k, ch in (("t", "t"), (key, None), (key, None)):
            app.post_message(events.Key(k, ch))
        await pilot.pause()
        assert app.is_running
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode in {c.slug for c in CHAPTERS}
