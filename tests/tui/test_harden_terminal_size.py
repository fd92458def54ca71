"""Below the minimum size every chapter shows a clear notice instead of a broken layout,
and the chapter is back, untouched, when the terminal grows (issue 15)."""

from __future__ import annotations

import pytest

from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.widgets.too_small import MIN_COLS, MIN_ROWS, TooSmallNotice


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
async def test_too_small_notice_on_every_chapter(make_app, chapter) -> None:  # noqa: ANN001
    app = make_app(chapter=chapter.slug)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        notice = app.screen.query_one(TooSmallNotice)
        assert not notice.display
        await pilot.resize_terminal(MIN_COLS - 1, 15)
        await pilot.pause()
        assert notice.display and notice.region.width == MIN_COLS - 1
        assert "Terminal too small" in str(notice.render())
        assert f"{MIN_COLS - 1}×15" in str(notice.render())
        await pilot.resize_terminal(MIN_COLS, MIN_ROWS)  # the minimum itself is usable
        await pilot.pause()
        assert not notice.display
        assert app.is_running


async def test_no_scroll_animation_over_ssh(monkeypatch) -> None:
    """Animated scrolling repainted the body every frame: PageDown in chapter 9 sent
    361-654 KB over SSH. Over SSH (or in a browser) the app scrolls in one step."""
    from tui_helpers import make_session

    from llm_anatomy_tui.app import LLMAnatomyApp

    monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22")
    app = LLMAnatomyApp(session=make_session(), load_resources=False)
    assert app.animation_level == "none"
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "full")  # an explicit choice wins
    assert LLMAnatomyApp(session=make_session(), load_resources=False).animation_level == "full"


@pytest.mark.parametrize("remote", [True, False], ids=["over-ssh", "local"])
async def test_text_cursors_hold_still_over_ssh(monkeypatch, remote) -> None:
    """A blinking cursor resends its field's line twice a second (~1.7 KB/s over SSH for
    as long as the field has focus). Over SSH the prompt bar and every input hold still;
    locally they blink as usual."""
    from textual.widgets import Input, TextArea
    from tui_helpers import make_session

    from llm_anatomy_tui.app import LLMAnatomyApp

    for name in ("TEXTUAL_ANIMATIONS", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY",
                 "TEXTUAL_DRIVER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    if remote:
        monkeypatch.setenv("SSH_TTY", "/dev/pts/3")
    app = LLMAnatomyApp(chapter="embeddings", session=make_session(), load_resources=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("slash")  # the prompt bar (a TextArea)
        await pilot.pause()
        assert isinstance(app.focused, TextArea)
        assert app.focused.cursor_blink is (not remote)
        await pilot.press("escape", "b")  # sentence B (an Input)
        await pilot.pause()
        assert isinstance(app.focused, Input)
        assert app.focused.cursor_blink is (not remote)
