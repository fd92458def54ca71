"""The prompt against hostile pastes and clumsy keys (issue 15)."""

from __future__ import annotations

from textual import events

from llm_anatomy_tui.widgets.prompt_bar import PromptBar

HOSTILE = "a\x1b[2J\x1bc\x00b\x07\r\nc\x1b[201~d"


async def test_paste_with_control_characters_lands_as_text(make_app) -> None:
    app = make_app(chapter="tokenization", prompt="start ")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        app.post_message(events.Paste(HOSTILE))
        await pilot.pause()
        await pilot.pause()
        # kept in full, in order, NUL included (only pasted line breaks become \n)
        assert app.session.prompt == "start " + HOSTILE.replace("\r\n", "\n")
        bar = app.screen.query_one(PromptBar)
        assert bar.editing_blocked  # shown read-only with visible stand-ins, never executed
        text = str(bar.query_one("#prompt-view").render())
        assert "␛" in text and "\x1b" not in text
        assert app.is_running


async def test_clearing_the_prompt_can_be_undone(make_app) -> None:
    app = make_app(chapter="tokenization", prompt="keep me\x07 please")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")  # view mode (the BEL makes it read-only)
        await pilot.pause()
        await pilot.press("backspace")
        await pilot.pause()
        assert app.session.prompt == ""
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.session.prompt == "keep me\x07 please"


async def test_edit_a_copy_can_be_undone_after_typing(make_app) -> None:
    app = make_app(chapter="tokenization", prompt="x\x1by")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", "enter")  # edit a cleaned copy: "xy"
        await pilot.pause()
        assert app.session.prompt == "xy"
        await pilot.press("z")
        await pilot.pause()
        assert app.session.prompt == "xyz"
        await pilot.press("ctrl+z")  # the editor's own undo first
        await pilot.pause()
        assert app.session.prompt == "xy"
        await pilot.press("ctrl+z")  # then the whole-text change
        await pilot.pause()
        assert app.session.prompt == "x\x1by"
