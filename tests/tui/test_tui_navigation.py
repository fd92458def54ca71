"""Pilot tests: the app driven by keys, the way a person uses it."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.widgets import OptionList, TextArea
from tui_helpers import SEED, settle

from llm_anatomy_tui.app import DIGIT_WAIT
from llm_anatomy_tui.chapters import CHAPTERS, find_chapter
from llm_anatomy_tui.chapters.base import ChapterHeader, ChapterScreen
from llm_anatomy_tui.chapters.navigation import ContentsScreen, HelpScreen
from llm_anatomy_tui.widgets.prompt_bar import PromptBar


def test_registry_is_consistent():
    numbers = [c.number for c in CHAPTERS]
    slugs = [c.slug for c in CHAPTERS]
    assert numbers == sorted(set(numbers)), "chapter numbers are unique and sorted"
    assert len(set(slugs)) == len(slugs)
    assert CHAPTERS[0].number == 0 and CHAPTERS[0].slug == "welcome"
    for chapter in CHAPTERS:
        assert issubclass(chapter.load(), ChapterScreen), chapter
        assert len(chapter.tagline) <= 60, chapter.slug
        assert find_chapter(chapter.number) is chapter
        assert find_chapter(chapter.slug.upper()) is chapter


async def test_next_and_previous_visit_every_chapter(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for chapter in CHAPTERS:
            assert app.current_mode == chapter.slug
            assert isinstance(app.screen, ChapterScreen)
            header = app.screen.query_one(ChapterHeader)
            assert header.chapter is chapter
            await pilot.press("n")
            await pilot.pause()
        assert app.current_mode == CHAPTERS[-1].slug  # n on the last chapter stays put
        for chapter in reversed(CHAPTERS):
            assert app.current_mode == chapter.slug
            await pilot.press("p")
            await pilot.pause()
        assert app.current_mode == CHAPTERS[0].slug
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.current_mode == CHAPTERS[1].slug
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert app.current_mode == CHAPTERS[0].slug


async def test_digits_jump_to_every_chapter(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for chapter in reversed(CHAPTERS):
            await pilot.press(*str(chapter.number))
            await asyncio.sleep(DIGIT_WAIT + 0.2)  # an ambiguous prefix waits for more
            await pilot.pause()
            assert app.current_mode == chapter.slug


async def test_unbuilt_chapter_number_says_so(make_app):
    built = {c.number for c in CHAPTERS}
    missing = next(n for n in range(10) if n not in built)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(str(missing))
        await asyncio.sleep(DIGIT_WAIT + 0.2)
        await pilot.pause()
        assert app.current_mode == "welcome"
        assert any(f"no chapter {missing}" in str(n.message) for n in app._notifications)


async def test_start_chapter_by_slug_and_number(make_app):
    for key in ("tokenization", 1, "1"):
        app = make_app(chapter=key)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.current_mode == "tokenization"


async def test_prompt_typed_on_welcome_survives_navigation(make_app):
    app = make_app(prompt="")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, TextArea)
        await pilot.press(*"hello world")
        # Letters type into the prompt while it has focus: "n" did not navigate.
        assert app.current_mode == "welcome"
        await pilot.press("escape")
        assert not isinstance(app.focused, TextArea)
        assert app.session.prompt == "hello world"
        await pilot.press("n")
        await settle(pilot)
        assert app.current_mode == "tokenization"
        bar = app.screen.query_one(PromptBar)
        assert bar.value == "hello world"
        counts = str(app.screen.query_one("#tok-counts").render())
        assert app.session.prompt == "hello world"
        # Edit on chapter 1, go back: the welcome screen shows the edit.
        await pilot.press("slash", "end", *"!!", "escape", "p")
        await settle(pilot)
        assert app.current_mode == "welcome"
        assert app.screen.query_one(PromptBar).value == "hello world!!"
        assert counts  # the counts table rendered


async def test_help_lists_the_screens_keys(make_app):
    app = make_app(chapter="tokenization")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        descriptions = {row.description for row in app.screen.rows}
        assert {"Next", "Prev", "Contents", "Help", "Quit", "Markers", "IDs"} <= descriptions
        assert "Done typing" in descriptions  # Esc is documented even when not active
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChapterScreen)
        # F1 opens help even while typing in the prompt.
        await pilot.press("slash")
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")


async def test_contents_opens_a_chapter(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, ContentsScreen)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.current_mode == CHAPTERS[1].slug
        assert isinstance(app.screen, ChapterScreen)


async def test_welcome_list_opens_a_chapter(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, OptionList)
        await pilot.press("enter")  # the first real chapter starts highlighted
        await settle(pilot)
        assert app.current_mode == CHAPTERS[1].slug


async def test_welcome_opens_at_the_introduction_and_follows_the_list(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        body = app.screen.query_one("#welcome-body")
        chapters = app.screen.query_one("#welcome-chapters", OptionList)
        assert body.scroll_y == 0, "a short terminal starts at the introduction"
        assert chapters.highlighted == 1
        for _ in range(len(CHAPTERS) - 2):  # to the last chapter
            await pilot.press("down")
        await settle(pilot)
        assert chapters.highlighted == len(CHAPTERS) - 1
        assert body.scroll_y > 0, "moving through the list scrolls it into view"
        top = chapters.region.y
        bottom = top + chapters.region.height
        assert body.region.y <= top and bottom <= body.region.bottom


async def test_palette_goes_to_chapter(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"go to chapter 1")
        await asyncio.sleep(0.5)  # the palette searches asynchronously
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "tokenization"


@pytest.mark.parametrize("chapter", [c.slug for c in CHAPTERS])
async def test_resize_to_40x12_and_back_keeps_prompt(make_app, chapter):
    prompt = "Resize me, please: 世界 👨‍👩‍👧 שלום"
    app = make_app(chapter=chapter, prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.resize_terminal(40, 12)
        await settle(pilot)
        # a chapter that reads no prompt (7: held-out text) has no bar: the keys leave it be
        expected = prompt + "ok" if app.screen.query(PromptBar) else prompt
        await pilot.press("slash", "end", *"ok", "escape")
        await pilot.resize_terminal(160, 45)
        await settle(pilot)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert app.session.prompt == expected
        for bar in app.screen.query(PromptBar):
            assert bar.value == expected


async def test_quit_key(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_session_seed_prompt_reaches_tokenizer(make_app):
    app = make_app(chapter="tokenization", prompt=SEED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        chips = app.screen.query_one("#chips-o200k_base")
        assert chips.total == 22
        assert [c.token_id for c in chips.chips[:5]] == [3335, 290, 5396, 12891, 1504]


async def test_path_diagram_links_open_built_chapters(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        console = Console(width=78, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#welcome-path").content)
        assert "tokens [1]" in console.export_text()  # built chapters show their number
        await pilot.click("#welcome-path", offset=(12, 0))  # on "tokens [1]"
        await settle(pilot)
        assert app.current_mode == "tokenization"


async def test_escape_leaves_any_text_field(make_app):
    app = make_app(chapter="tokenization")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#price").focus()
        await pilot.press("1", "n")  # typed into the field, no navigation
        assert app.current_mode == "tokenization"
        await pilot.press("escape", "p")
        await settle(pilot)
        assert app.current_mode == "welcome"
