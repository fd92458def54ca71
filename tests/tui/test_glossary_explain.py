"""The glossary dialog (F2 / G) and "explain this panel" (F3 / E), driven by keys from
every registered chapter: search as you type (typos too), Enter opens the chapter, Esc puts
the person back exactly where they were, and every focusable panel has its explanation."""

from __future__ import annotations

import pytest
from textual.containers import VerticalScroll
from textual.widgets import Input, OptionList
from tui_helpers import SEED, make_model_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.chapters.explain import ExplainScreen, explanation_for, panel_ids
from llm_anatomy_tui.chapters.glossary import GlossaryScreen
from llm_anatomy_tui.widgets.prompt_bar import PromptBar


def app_at(chapter: str, prompt: str = SEED) -> LLMAnatomyApp:
    return LLMAnatomyApp(chapter=chapter, session=make_model_session(prompt), load_resources=False)


async def open_glossary(pilot) -> GlossaryScreen:  # noqa: ANN001
    await pilot.press("f2")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, GlossaryScreen)
    return screen


async def test_search_finds_a_term_from_a_typo_and_enter_opens_its_chapter() -> None:
    app = app_at("closing")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        glossary = await open_glossary(pilot)
        await pilot.press(*"atnetion")
        await pilot.pause()
        assert glossary.current is not None and glossary.current.name == "Attention"
        await pilot.press("down")  # the next match
        await pilot.pause()
        assert glossary.current.name.startswith("Attention ")
        await pilot.press("up", "enter")
        await app.wait_until_settled()
        assert app.current_mode == "attention"
        assert not isinstance(app.screen, GlossaryScreen)


async def test_no_match_says_so_and_enter_does_nothing(monkeypatch) -> None:
    app = app_at("sampling")
    said: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **kw: said.append(message))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        glossary = await open_glossary(pilot)
        await pilot.press(*"zzzzqx")
        await pilot.pause()
        assert glossary.matches == [] and glossary.current is None
        assert "No term matches" in str(glossary.query_one("#glossary-entry").render())
        await pilot.press("enter", "down", "pagedown")
        await pilot.pause()
        assert isinstance(app.screen, GlossaryScreen) and said
        await pilot.press("escape")
        assert app.current_mode == "sampling"


async def test_a_term_of_a_chapter_not_built_yet_stays_and_explains(monkeypatch) -> None:
    built = {c.number for c in CHAPTERS}
    app = app_at("welcome")
    said: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **kw: said.append(message))
    async with app.run_test(size=(80, 24)) as pilot:
        glossary = await open_glossary(pilot)
        await pilot.press(*"rope")
        await pilot.pause()
        term = glossary.current
        assert term is not None and term.name == "RoPE"
        await pilot.press("enter")
        await pilot.pause()
        if term.chapter in built:
            assert app.current_mode == "rope"
        else:
            assert isinstance(app.screen, GlossaryScreen)
            assert f"chapter {term.chapter}" in said[-1]


async def test_esc_restores_screen_scroll_and_focus() -> None:
    app = app_at("closing")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        chapter = app.screen
        body = chapter.query_one("#c16-body", VerticalScroll)
        recap = chapter.query_one("#c16-recap", OptionList)
        recap.focus()
        recap.highlighted = 3
        await pilot.pause()
        body.scroll_to(y=9, animate=False)
        await pilot.pause()
        before = (body.scroll_y, recap.highlighted)
        assert before[0] > 0
        glossary = await open_glossary(pilot)
        await pilot.press(*"logti", "down", "up")
        await pilot.pause()
        assert glossary.current.name == "Logit"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is chapter
        assert chapter.focused is recap
        assert (body.scroll_y, recap.highlighted) == before
        # the same for the explain dialog
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, ExplainScreen)
        assert app.screen.panel.title == "The recap"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is chapter and chapter.focused is recap
        assert (body.scroll_y, recap.highlighted) == before


async def test_glossary_from_inside_the_prompt_bar_keeps_the_prompt() -> None:
    app = app_at("closing", "Once upon")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        await pilot.press("slash", *" a time")
        await pilot.pause()
        bar = app.screen.query_one(PromptBar)
        assert bar.has_focus_within
        glossary = await open_glossary(pilot)
        await pilot.press(*"gqa")
        await pilot.pause()
        assert glossary.current.name == "Grouped-query attention"
        assert glossary.query_one("#glossary-search", Input).value == "gqa"
        await pilot.press("escape")
        await pilot.pause()
        assert app.session.prompt == "Once upon a time"
        assert bar.has_focus_within  # still typing where we were
        await pilot.press(*"!")
        await app.wait_until_settled()
        assert app.session.prompt == "Once upon a time!"
        # G types a letter in the prompt; F2 is the key that works there
        await pilot.press("G")
        await pilot.pause()
        assert app.session.prompt == "Once upon a time!G"
        assert not isinstance(app.screen, GlossaryScreen)


async def test_the_palette_finds_terms() -> None:
    from textual.command import CommandPalette

    app = app_at("welcome")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"gqa")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        options = app.screen.query_one(OptionList)
        texts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("Glossary: Grouped-query attention" in t for t in texts), texts
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, GlossaryScreen)
        assert app.screen.current.name == "Grouped-query attention"


@pytest.mark.parametrize("chapter", [c.slug for c in CHAPTERS])
async def test_every_focusable_panel_explains_itself_and_glossary_opens(chapter: str) -> None:
    app = app_at(chapter)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_until_settled()
        screen = app.screen
        focusable = [w for w in screen.query("*") if w.can_focus]
        missing = [
            panel_ids(w, screen)[:3]
            for w in focusable
            if explanation_for(screen, chapter, w) is None
        ]
        assert not missing, f"{chapter}: no explain text for {missing}"
        for widget in screen.focus_chain:
            widget.focus()
            await pilot.pause()
            await pilot.press("f3")
            await pilot.pause()
            assert isinstance(app.screen, ExplainScreen), panel_ids(widget, screen)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen and screen.focused is widget
        await open_glossary(pilot)
        await pilot.press("escape")
        assert app.screen is screen


# -- snapshots (update with ``pytest --snapshot-update``) -----------------------------------


def test_snapshot_glossary_80x24(snap_compare) -> None:
    async def run_before(pilot) -> None:  # noqa: ANN001
        await pilot.app.wait_until_settled()
        await pilot.press("f2", *"kv cache")
        await pilot.pause()

    assert snap_compare(app_at("closing"), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_glossary_no_color_120x40(snap_compare, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")

    async def run_before(pilot) -> None:  # noqa: ANN001
        await pilot.app.wait_until_settled()
        await pilot.press("f2", *"temprature")
        await pilot.pause()

    assert snap_compare(app_at("sampling"), terminal_size=(120, 40), run_before=run_before)


def test_snapshot_explain_80x24(snap_compare) -> None:
    async def run_before(pilot) -> None:  # noqa: ANN001
        await pilot.app.wait_until_settled()
        await pilot.press("f3")
        await pilot.pause()

    assert snap_compare(app_at("closing"), terminal_size=(80, 24), run_before=run_before)


async def test_explain_without_focus_explains_the_chapters_main_panel() -> None:
    app = app_at("attention")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        app.screen.set_focus(None)
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, ExplainScreen)
        assert app.screen.panel.title == "The toy attention example"


async def test_only_one_glossary_is_ever_open() -> None:
    """The fuzz test crashed the app with DuplicateIds: a second glossary pushed while one
    was open under the palette. F2 and a term chosen in the palette now reuse the one."""
    from llm_anatomy_tui.chapters.glossary import GlossaryCommands

    app = app_at("embeddings")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        glossary = await open_glossary(pilot)
        await pilot.press("ctrl+p")  # the palette, over the glossary
        await pilot.pause()
        assert app.screen is not glossary
        await pilot.press("f2")  # F2 inside the palette
        await pilot.pause()
        app.action_glossary("Softmax")  # a glossary term chosen in the palette
        await pilot.pause()
        assert sum(isinstance(s, GlossaryScreen) for s in app.screen_stack) == 1
        await pilot.press("escape")  # the palette closes: the same glossary is back
        await pilot.pause()
        assert app.screen is glossary
        GlossaryCommands(app.screen)._show("Softmax")  # chosen with the glossary on top
        await pilot.pause()
        assert app.screen is glossary and glossary.current.name == "Softmax"
        assert sum(isinstance(s, GlossaryScreen) for s in app.screen_stack) == 1
        assert app.is_running


async def test_keys_queued_after_the_glossary_closed_do_not_close_anything_else() -> None:
    """Enter twice or Esc twice, typed faster than the screen closes: the second one used
    to dismiss again and stop the app ("Can't pop screen", found by the fuzz test)."""
    from textual.widgets import Input as TextInput

    app = app_at("post-training")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        glossary = await open_glossary(pilot)
        glossary.action_close()
        glossary.action_close()  # the queued second Esc
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, GlossaryScreen)
        glossary = await open_glossary(pilot)
        search = glossary.query_one("#glossary-search", TextInput)
        search.value = "softmax"
        await pilot.pause()
        glossary.post_message(TextInput.Submitted(search, search.value))
        glossary.post_message(TextInput.Submitted(search, search.value))  # Enter, Enter
        await pilot.pause()
        await pilot.pause()
        assert app.is_running and app.current_mode == "sampling"  # Softmax's chapter


@pytest.mark.parametrize("key", ["t", "question_mark", "f3", "f2"])
async def test_every_dialog_closes_once(key: str) -> None:
    """Contents, help, explain and glossary share one base: a dismiss that arrives after
    the dialog closed (a queued second Esc or Enter) leaves the chapter open."""
    from llm_anatomy_tui.chapters.dialog import Dialog

    app = app_at("tokenization")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        chapter = app.screen
        await pilot.press(key)
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, Dialog)
        dialog.dismiss(None)
        dialog.dismiss(None)  # the queued second key
        await pilot.pause()
        assert app.is_running and app.screen is chapter
