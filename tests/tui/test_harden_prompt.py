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


def _type_burst(app, text: str) -> None:  # noqa: ANN001
    """Queue every key at once, as a terminal delivers a typed flood."""
    for ch in text:
        app.post_message(events.Key("space" if ch == " " else ch, ch))


async def test_typed_flood_is_coalesced_and_kept_in_order(make_app) -> None:
    """3,000 typed keys: the text arrives whole and in order, and the chapter recomputes
    once per batch, not once per key (it used to: 3,000 recomputes froze the app)."""
    app = make_app(chapter="tokenization", prompt="")
    text = ("abcd efgh " * 300)[:3000]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        before = app.session.prompt_revision
        _type_burst(app, text)
        for _ in range(50):
            await pilot.pause()
            if app.session.prompt == text:
                break
        assert app.session.prompt == text
        assert app.session.prompt_revision - before < 100  # was 3,000


async def test_keys_typed_into_a_read_only_prompt_are_text_not_commands(make_app) -> None:
    app = make_app(chapter="tokenization", prompt="bell\x07")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        _type_burst(app, "qnt?")  # quit, next chapter, contents, help — if they ran
        await pilot.pause()
        await pilot.pause()
        assert app.is_running and app.current_mode == "tokenization"
        assert app.session.prompt == "bell\x07qnt?"


async def test_an_empty_paste_keeps_a_selected_prompt(make_app) -> None:
    """An empty clipboard pasted over a selection deleted the prompt (found by the fuzz
    test, seed 11): pasting nothing now changes nothing, in the editor and in view mode."""
    app = make_app(chapter="tokenization", prompt="keep all of this")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        area = app.screen.query_one(PromptBar).query_one("#prompt-area")
        area.select_all()
        app.post_message(events.Paste(""))
        await pilot.pause()
        await pilot.pause()
        assert app.session.prompt == "keep all of this"
        app.post_message(events.Paste(" and this"))  # a real paste still replaces it
        await pilot.pause()
        await pilot.pause()
        assert app.session.prompt == " and this"
    app = make_app(chapter="tokenization", prompt="view mode\x07 text")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        app.post_message(events.Paste(""))
        await pilot.pause()
        assert app.session.prompt == "view mode\x07 text"
