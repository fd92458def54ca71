"""Snapshots of chapters 2, 3 and 4 with the shipped model (update with
``pytest --snapshot-update``): 80×24, 120×40, and without colour. Each waits until every
computation (neighbours, traces, the held-out scan) has landed."""

from __future__ import annotations

import pytest
from ch234_helpers import app_for, settled

CHAPTERS = ["embeddings", "neurons", "ffn"]


async def _end(pilot) -> None:  # noqa: ANN001
    await settled(pilot)
    await pilot.press("end")
    await settled(pilot)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_80x24(snap_compare, chapter):
    """The top of the chapter at 80×24: lead, the first panel, the footer."""
    assert snap_compare(app_for(chapter), terminal_size=(80, 24), run_before=settled)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_120x40_end(snap_compare, chapter):
    """The end of the chapter at 120×40: the real model's part."""
    assert snap_compare(app_for(chapter), terminal_size=(120, 40), run_before=_end)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_color_120x40(snap_compare, chapter, monkeypatch):
    """Without colour: signs, shades and glyphs carry the meaning (● firing, ○ silent)."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(chapter), terminal_size=(120, 40), run_before=settled)


@pytest.mark.parametrize(
    ("chapter", "keys"),
    [("embeddings", ".,svw"), ("neurons", ".+-faul"), ("ffn", "mcfl,.")],
)
async def test_tiny_terminal_and_every_key(chapter, keys):
    """40×12 and back: every key still works, nothing raises."""
    app = app_for(chapter)
    async with app.run_test(size=(40, 12)) as pilot:
        await settled(pilot)
        await pilot.press(
            *[{".": "full_stop", ",": "comma", "+": "plus", "-": "minus"}.get(k, k) for k in keys]
        )
        await settled(pilot)
        await pilot.resize_terminal(120, 40)
        await settled(pilot)
        assert app.screen.chapter.slug == chapter
