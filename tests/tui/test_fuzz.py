"""Fuzz: random keys, pastes and resizes against every registered chapter.

Parameterised over the chapter registry, so a chapter added later is fuzzed without
editing this file. Each chapter gets its own seeded run: bursts of random keys (letters,
digits, arrows, function keys, the prompt bar, the command palette with keys typed inside
it) delivered at once as a terminal delivers them, pastes of random Unicode with control
characters and ESC, and terminal resizes. A run fails on

- any exception: the app stopping, or a computation failing with an unexpected exception
  type (``ValueError`` and ``NotReady`` are the messages meant for people);
- a hang: a burst whose handling keeps the UI thread busy for more than 2 s of CPU time
  (CPU time, not wall time, so a loaded CI machine does not fail it; a burst that does not
  finish within 60 s of wall time fails as a deadlock);
- a lost prompt: the prompt emptied by a burst that held no key that deletes text.

CI runs a bounded number of bursts (20 per chapter, about 150 keys, pastes and resizes
each; thousands in all, under a minute of CPU on two cores). For a long local run::

    LLM_ANATOMY_FUZZ_BURSTS=2000 LLM_ANATOMY_FUZZ_SEED=7 \\
        python -m pytest tests/tui/test_fuzz.py -q -x

A failure prints the chapter, seed and burst number; rerun with the same seed to replay.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time

import pytest
from textual import events
from tui_helpers import SEED, make_model_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.chapters import base as chapter_base
from llm_anatomy_tui.widgets.prompt_bar import PromptBar

BURSTS = int(os.environ.get("LLM_ANATOMY_FUZZ_BURSTS", "20"))
BASE_SEED = int(os.environ.get("LLM_ANATOMY_FUZZ_SEED", "15"))
HANG_SECONDS = 2.0

# Keys a person can press. Quitting keys are left out (they would end the run, not test it);
# the palette's "Quit" command is disarmed below instead.
KEYS = (
    [chr(c) for c in range(ord("a"), ord("z") + 1) if chr(c) != "q"]
    + ["A", "G", "Z", "N", "P"]
    + [str(d) for d in range(10)]
    + ["up", "down", "left", "right", "home", "end", "pageup", "pagedown"]
    + ["tab", "shift+tab", "enter", "escape", "backspace", "delete", "space"]
    + [f"f{n}" for n in range(1, 13)]
    + ["slash", "question_mark", "plus", "minus", "left_square_bracket",
       "right_square_bracket", "comma", "full_stop", "less_than_sign", "greater_than_sign"]
    + ["ctrl+z", "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+left", "ctrl+right"]
)  # fmt: skip
DELETING = {"backspace", "delete", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+z", "ctrl+x"}
CHARACTERS = {
    "space": " ", "slash": "/", "question_mark": "?", "plus": "+", "minus": "-",
    "left_square_bracket": "[", "right_square_bracket": "]", "comma": ",", "full_stop": ".",
    "less_than_sign": "<", "greater_than_sign": ">",
}  # fmt: skip
PASTE_POOL = (
    list("abc xyz 0123456789.,!?")
    + ["\x1b", "\x1b[2J", "\x1b[201~", "\x00", "\x07", "\x08", "\r", "\n", "\r\n", "\t", "\x7f"]
    + ["\x9b", "\u2028", "\u200b", "\u202e", "\ufeff", "é", "e\u0301", "日本語", "🦙", "👩‍👩‍👧"]
    + ["<|endoftext|>", "  ", "\ue000"]
)
SIZES = [(80, 24), (60, 20), (120, 40), (40, 12), (200, 60), (20, 6), (100, 30)]
UNEXPECTED = re.compile(r"^(?!ValueError|NotReady)[A-Z][A-Za-z]*(Error|Exception):")


def key_event(key: str) -> events.Key:
    if len(key) == 1:
        return events.Key(key, key)
    return events.Key(key, CHARACTERS.get(key))


def random_paste(rng: random.Random) -> str:
    n = rng.choice([0, 1, 5, 20, 80, 300]) if rng.random() < 0.97 else 12_000
    return "".join(rng.choice(PASTE_POOL) for _ in range(n))


def random_burst(rng: random.Random) -> list[str | tuple[str, object]]:
    """One burst: what reaches the app between two repaints."""
    kind = rng.random()
    if kind < 0.08:
        return [("resize", rng.choice(SIZES))]
    if kind < 0.18:
        return [("paste", random_paste(rng))]
    if kind < 0.28:  # the palette, with keys inside it
        inner = [rng.choice("abcdefghijklmnoprstuvwxyz") for _ in range(rng.randint(0, 4))]
        inner += rng.choices(["pageup", "pagedown", "up", "down", "backspace"], k=rng.randint(0, 3))
        return ["ctrl+p", *inner, rng.choice(["escape", "enter", "escape"])]
    if kind < 0.40:  # the prompt bar: focus, type, leave
        typed = rng.choices(
            KEYS[:40] + ["space", "backspace", "left", "right"], k=rng.randint(1, 25)
        )
        return ["slash", *typed, "escape"]
    return rng.choices(KEYS, k=rng.randint(1, 12))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: f"{c.number}-{c.slug}")
async def test_fuzz_chapter(chapter, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)  # the palette's "save screenshot" writes here
    unexpected: list[str] = []
    real_error_message = chapter_base.error_message

    def recording_error_message(exc: BaseException) -> str:
        message = real_error_message(exc)
        if UNEXPECTED.match(message):
            unexpected.append(message)
        return message

    monkeypatch.setattr(chapter_base, "error_message", recording_error_message)

    seed = BASE_SEED * 1000 + chapter.number
    rng = random.Random(seed)
    app = LLMAnatomyApp(
        chapter=chapter.slug, session=make_model_session(SEED), load_resources=False
    )

    async def no_quit() -> None:  # the palette's Quit command: keep fuzzing instead
        return None

    app.action_quit = no_quit  # type: ignore[method-assign]
    keys_sent = 0
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_until_settled()
        for i in range(BURSTS):
            where = f"chapter {chapter.number} ({chapter.slug}), seed {seed}, burst {i}"
            if app.current_mode != chapter.slug and rng.random() < 0.5:
                app.goto_chapter(chapter.slug)  # mostly stay on the chapter under test
            burst = random_burst(rng)
            prompt_before = app.session.prompt
            mode_before = app.current_mode
            started = time.thread_time()  # CPU time of the UI thread: what blocks it
            wall = time.perf_counter()
            for item in burst:
                if isinstance(item, tuple) and item[0] == "resize":
                    await pilot.resize_terminal(*item[1])
                elif isinstance(item, tuple):
                    app.post_message(events.Paste(item[1]))
                else:
                    app.post_message(key_event(item))
                    keys_sent += 1
            await asyncio.wait_for(pilot.pause(), timeout=60)  # a deadlock, not a slow box
            elapsed = time.thread_time() - started
            assert app.is_running and app.return_code is None, f"the app stopped: {where}"
            # Opening a chapter for the first time builds its screen (and imports it): that
            # is a chapter switch, allowed more time; anything else must stay under 2 s.
            limit = HANG_SECONDS * (5 if app.current_mode != mode_before else 1)
            assert elapsed < limit, (
                f"the UI thread was busy {elapsed:.1f} s ({time.perf_counter() - wall:.1f} s "
                f"wall): {where} {burst!r}"
            )
            assert not unexpected, f"{unexpected[0]} at {where} after {burst!r}"
            deleting = any(isinstance(k, str) and k in DELETING for k in burst)
            if prompt_before and not app.session.prompt and not deleting:
                pytest.fail(f"prompt lost without a deleting key: {where} {burst!r}")
        await app.wait_until_settled(timeout=60)
        assert app.is_running, "the app stopped while settling"
        # what the prompt bar shows is the session's prompt
        for bar in app.screen.query(PromptBar):
            assert bar.value == app.session.prompt
    assert keys_sent > 0
