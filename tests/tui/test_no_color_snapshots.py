"""Every registered chapter under ``NO_COLOR=1`` at 80×24: meaning is carried by glyphs,
shading and text, never by colour alone (update with ``pytest --snapshot-update``).

Chapters that run the model use the real one (a fixed seed, a steady stand-in clock for
chapter 14's timings); the capture waits until the app has settled.
"""

from __future__ import annotations

import pytest
from ch_helpers import model_app, steady_clock
from tui_helpers import SEED, make_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters import CHAPTERS

STORY = "Once upon a time, there was a little robot who wanted to read."


async def _settled(pilot) -> None:  # noqa: ANN001
    app = pilot.app
    await app.wait_until_settled()
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()
    await app.wait_until_settled()


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS], ids=lambda c: c.slug)
def test_no_color_80x24(snap_compare, monkeypatch, chapter):
    monkeypatch.setenv("NO_COLOR", "1")
    steady_clock(monkeypatch)
    if chapter.load().NEEDS_MODEL:
        app = model_app(chapter.slug, STORY)
    else:
        app = LLMAnatomyApp(chapter=chapter.slug, session=make_session(SEED),
                            load_resources=False)  # fmt: skip
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled)
