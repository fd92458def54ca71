"""Pilot tests of chapter 1: counts, presets, price, robustness, broken assets."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Select
from tui_helpers import NO_MODEL_DIR, SEED, make_session, settle

import llm_anatomy_tui.core.session as session_module
from llm_anatomy_tui.chapters.base import ResourceNotice
from llm_anatomy_tui.chapters.c01_tokenization import PRESETS, TokenizationScreen
from llm_anatomy_tui.core.session import Session
from llm_anatomy_tui.core.tokenizers import ENCODING_NAMES, TokenizerAssetError, load_encoding
from llm_anatomy_tui.widgets.prompt_bar import PromptBar, pasted_text
from llm_anatomy_tui.widgets.token_chips import TokenChips


def chips(app, name: str) -> TokenChips:  # noqa: ANN001
    return app.screen.query_one(f"#chips-{name}", TokenChips)


def assert_chips_match(app, text: str) -> None:  # noqa: ANN001
    for name in ENCODING_NAMES:
        ids = load_encoding(name).encode_ordinary(text)
        widget = chips(app, name)
        assert widget.total == len(ids), name
        shown = [c.token_id for c in widget.chips]
        assert shown == ids[: len(shown)], name


async def paste(pilot, text: str) -> None:  # noqa: ANN001
    """Focus the prompt, select everything, and paste ``text`` over it (as a terminal does)."""
    app = pilot.app
    await pilot.press("slash")
    area = app.screen.query_one("#prompt-area")
    if area.display:
        area.select_all()
        if text:
            app.post_message(events.Paste(text))  # the terminal's paste goes to the app first
        else:
            await pilot.press("backspace")  # an empty paste changes nothing: delete instead
    else:
        bar = app.screen.query_one(PromptBar)
        bar._user_set(text)
    await settle(pilot)


async def test_seed_sentence_counts(make_app):
    app = make_app(chapter="tokenization", prompt=SEED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert_chips_match(app, SEED)
        assert chips(app, "o200k_base").total == 22
        row = app.screen.count_rows[0]
        assert (row.name, row.tokens, row.chars_per_token) == ("o200k_base", "22", "4.64")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "NUL\x00 BEL\x07 ESC\x1b[31m red? DEL\x7f C1\x85 end",
        "family 👨‍👩‍👧‍👦 flag 🇳🇱 skin 👍🏽 heart ❤️",
        "我喜欢学习新的语言。東京は日本の首都です。",
        "שלום עולם — مرحبا بالعالم \u202eoverride\u202c",
        "tabs\tand\r\nline\x0cbreaks\u2028here",
    ],
    ids=["empty", "control", "emoji-zwj", "cjk", "rtl", "breaks"],
)
async def test_awkward_text_is_tokenized_exactly(make_app, text):
    app = make_app(chapter="tokenization", prompt="start")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await paste(pilot, text)
        text = pasted_text(text)  # the only change: pasted \r (\n) becomes \n
        assert app.session.prompt == text  # byte for byte, even what the editor can't hold
        assert_chips_match(app, text)
        for name in ENCODING_NAMES:
            for chip in chips(app, name).chips:
                label = "".join(part for part, _ in chip.label)
                assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in label)
        await pilot.resize_terminal(40, 12)
        await settle(pilot)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert app.session.prompt == text


async def test_megabyte_paste_stays_responsive(make_app):
    text = ("If the human brain were so simple — 東京 👍🏽\n" * 25_000)[:1_000_000]
    app = make_app(chapter="tokenization", prompt="start")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await paste(pilot, text)
        assert app.session.prompt == text
        bar = app.screen.query_one(PromptBar)
        assert bar.editing_blocked and "too long" in bar.editing_blocked
        assert_chips_match(app, text)
        for name in ENCODING_NAMES:
            widget = chips(app, name)
            assert widget.total > 100_000
            assert len(widget.chips) < 10_000  # only what could be seen is built
        assert app.screen.query_one("#tok-long-note").display
        # Keys still work: toggling IDs redraws without re-encoding (how fast is measured
        # by benchmarks/, not asserted here).
        await pilot.press("escape", "i")
        await pilot.pause()
        assert not chips(app, "o200k_base").show_ids
        # Backspace in the read-only view clears the text and returns to the editor.
        await pilot.press("slash", "backspace")
        await settle(pilot)
        assert app.session.prompt == ""
        assert app.screen.query_one("#prompt-area").display


async def test_presets_and_restoring_own_text(make_app):
    app = make_app(chapter="tokenization", prompt="my own words")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        preset = app.screen.query_one("#preset", Select)
        for index, (_, text) in enumerate(PRESETS):
            preset.value = index
            await settle(pilot)
            assert app.session.prompt == text
            assert_chips_match(app, text)
        preset.value = -1  # "Your own text (restore)"
        await settle(pilot)
        assert app.session.prompt == "my own words"


async def test_price_and_window(make_app):
    app = make_app(chapter="tokenization", prompt=SEED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        price = app.screen.query_one("#price")
        price.focus()
        await pilot.press(*"abc")
        await pilot.pause()
        error = app.screen.query_one("#price-error")
        assert error.display and "not a number" in str(error.render())
        for _ in range(3):
            await pilot.press("backspace")
        await pilot.press(*"2.50")
        await pilot.pause()
        assert not error.display
        row = app.screen.count_rows[0]
        assert row.cost == "0.000055"  # 22 tokens × 2.50 / 1,000,000
        assert row.share == "0.0172%"  # 22 / 128,000
        app.screen.query_one("#window", Select).value = 2_048
        await pilot.pause()
        assert app.screen.count_rows[0].share == "1.07%"  # 22 / 2,048
        await pilot.press(*["backspace"] * 4, *"-1")
        await pilot.pause()
        assert error.display and "negative" in str(error.render())


async def test_whitespace_markers_toggle(make_app):
    app = make_app(chapter="tokenization", prompt="a b\tc\nd")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        labels = "".join(p for c in chips(app, "o200k_base").chips for p, _ in c.label)
        assert labels == "a·b⇥c⏎d"
        await pilot.press("w")
        await settle(pilot)
        labels = "".join(p for c in chips(app, "o200k_base").chips for p, _ in c.label)
        assert labels == "a b c d"


async def test_broken_rank_file_is_reported_in_the_ui(make_app, monkeypatch):
    real = session_module.load_encoding

    def broken(name: str):  # noqa: ANN202
        if name == "cl100k_base":
            raise TokenizerAssetError(
                "tokenizer file corrupt: /x/cl100k_base.tiktoken.gz (sha256 …) — reinstall"
            )
        return real(name)

    monkeypatch.setattr(session_module, "load_encoding", broken)
    session = Session(SEED, model_dir=NO_MODEL_DIR)
    session.load_tokenizers()
    app = make_app(chapter="tokenization", session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        notice = app.screen.query_one(ResourceNotice)
        assert notice.display and "cl100k_base.tiktoken.gz" in str(notice.render())
        assert chips(app, "o200k_base").total == 22  # the others still work
        assert "cl100k_base.tiktoken.gz" in chips(app, "cl100k_base").empty_text


async def test_screen_waits_for_tokenizers_then_updates(make_app):
    session = Session(SEED, model_dir=NO_MODEL_DIR)  # nothing loaded yet
    app = make_app(chapter="tokenization", session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, TokenizationScreen)
        assert chips(app, "o200k_base").chips == ()
        assert app.screen.query_one(ResourceNotice).display
        app.load_resources()  # what the app does at start-up
        await settle(pilot)
        assert chips(app, "o200k_base").total == 22
        assert not app.screen.query_one(ResourceNotice).display


def test_fixture_session_has_no_model():
    session = make_session()
    assert session.model is None and "No model found in" in session.model_state.message


async def test_typing_and_undo_update_the_chips_at_once(make_app):
    app = make_app(chapter="tokenization", prompt="Hello")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "end", *" world")
        assert app.session.prompt == "Hello world"
        assert_chips_match(app, "Hello world")  # reported from the edit itself, no extra hop
        await pilot.press("ctrl+z")  # undo goes through TextArea.Changed instead
        await settle(pilot)
        assert app.session.prompt != "Hello world"
        assert_chips_match(app, app.session.prompt)


async def test_pasted_carriage_returns_become_newlines(make_app):
    """Terminals send pasted newlines as \\r; the prompt gets the text's real \\n back."""
    app = make_app(chapter="tokenization", prompt="")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        app.post_message(events.Paste("def f():\r\treturn 1\r\n"))
        await settle(pilot)
        assert app.session.prompt == "def f():\n\treturn 1\n"
        assert_chips_match(app, "def f():\n\treturn 1\n")
