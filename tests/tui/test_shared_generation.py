"""The shared generation: ops run in order in one worker, every screen hears of them."""

from __future__ import annotations

import threading

from tui_helpers import make_model_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.base import GENERATION, ChapterScreen
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import init_random
from llm_anatomy_tui.views.generation_ops import step_op

TINY = LlamaConfig(
    vocab_size=8193, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
)  # fmt: skip


def step(screen: ChapterScreen, n: int = 1, drawn: list | None = None) -> None:
    """Take ``n`` steps through the one compute path (each its own op, like key presses)."""
    for _ in range(n):
        screen.compute_generation("test-step", step_op, then=lambda v: drawn is not None
                                  and drawn.append(v))  # fmt: skip


def tiny_app(prompt: str = "Once upon a time") -> LLMAnatomyApp:
    session = make_model_session(prompt, model=init_random(TINY, seed=3, std=0.1))
    return LLMAnatomyApp(chapter="tokenization", session=session, load_resources=False)


async def test_steps_run_in_order_and_every_key_press_counts():
    app = tiny_app()
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, ChapterScreen)
        step(screen, 12)  # like holding the step key: none may be dropped
        await app.wait_until_settled()
        await pilot.pause()
        gen = app.session.current_generation
        assert gen is not None and len(gen.steps) == 12
        assert [s.index for s in gen.steps] == list(range(12))
        assert app.session.generation_revision == 12


async def test_keyed_ops_replace_queued_ones_and_run_off_the_ui_thread():
    app = tiny_app()
    async with app.run_test():
        screen = app.screen
        gate = threading.Event()
        seen: list[str] = []

        drawn: list[str] = []

        def blocker(gen):
            gate.wait(5)
            seen.append("blocker")
            return "blocker"

        def preview(tag):
            def op(gen):
                assert threading.current_thread() is not threading.main_thread()
                seen.append(tag)
                return tag

            return op

        screen.compute_generation("block", blocker, then=drawn.append)
        for tag in ("a", "b", "c"):
            screen.compute_generation("preview", preview(tag), then=drawn.append, key="preview")
        gate.set()
        await app.wait_until_settled()
        assert seen == ["blocker", "c"]
        assert drawn == ["blocker", "c"]  # what each op returned reached the screen


async def test_prompt_change_restarts_the_generation_and_reaches_other_screens():
    app = tiny_app()
    async with app.run_test() as pilot:
        screen = app.screen
        step(screen, 3)
        await app.wait_until_settled()
        await pilot.pause()
        assert len(app.session.current_generation.steps) == 3

        heard: list[frozenset[str]] = []
        welcome = None
        app.goto_chapter(0)
        await pilot.pause()
        welcome = app.screen
        original = welcome.session_changed
        welcome.session_changed = lambda changes: (heard.append(changes), original(changes))

        app.goto_chapter("tokenization")
        await pilot.pause()
        screen.set_prompt("A different story")
        assert app.session.current_generation is None  # stale: built for the old prompt
        step(screen)
        await app.wait_until_settled()
        gen = app.session.current_generation
        assert len(gen.steps) == 1
        assert list(gen.prompt) == app.session.encoding("model").encode("A different story")

        app.goto_chapter(0)  # the welcome screen catches up on resume
        await pilot.pause()
        assert heard and GENERATION in heard[-1]


async def test_a_failing_op_reports_a_message_and_the_worker_survives():
    app = tiny_app()
    async with app.run_test():
        screen = app.screen

        errors: list[str] = []

        def broken(gen):
            raise ValueError("bad token")

        screen.compute_generation("broken", broken, then=print, on_error=errors.append)
        await app.wait_until_settled()
        assert errors == ["bad token"]
        step(screen)
        await app.wait_until_settled()
        assert len(app.session.current_generation.steps) == 1
        assert errors == ["bad token"]


async def test_empty_and_overlong_prompts_follow_the_visible_policy():
    app = tiny_app(prompt="")
    async with app.run_test() as pilot:
        step(app.screen)
        await app.wait_until_settled()
        await pilot.pause()
        gen = app.session.current_generation
        assert gen.prompt == (8192,)  # <|endoftext|>: start a fresh story
        assert "empty" in app.screen.generation_notice

        app.screen.set_prompt("word " * 200)  # far more than 64 tokens
        step(app.screen)
        await app.wait_until_settled()
        await pilot.pause()
        gen = app.session.current_generation
        assert len(gen.prompt) == TINY.max_position_embeddings - 1
        assert len(gen.steps) == 1 and gen.done  # exactly one token fitted
        assert "fell out of the window" in app.screen.generation_notice


async def test_settings_apply_from_the_next_step_and_reach_other_screens():
    from llm_anatomy_tui.core.sampling import GREEDY

    app = tiny_app()
    async with app.run_test() as pilot:
        screen = app.screen
        step(screen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        first = app.session.current_generation.steps[0]
        assert not first.sampling.settings.greedy

        heard: list[frozenset[str]] = []
        app.goto_chapter(0)
        await pilot.pause()
        welcome = app.screen
        original = welcome.session_changed
        welcome.session_changed = lambda changes: (heard.append(changes), original(changes))
        app.goto_chapter("tokenization")
        await pilot.pause()

        # Setting never waits for the generation lock, even while an op holds it.
        with app.session.generation_lock:
            app.session.set_sampling(GREEDY)
            app.session.set_seed(99)
            app.session.set_stop_sequences(("zzz",))
        step(screen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        gen = app.session.current_generation
        assert gen.steps[0].sampling.settings == first.sampling.settings  # recorded: kept
        assert gen.steps[1].sampling.settings.greedy
        assert gen.seed == 99 and gen.stop_sequences == ("zzz",)

        app.goto_chapter(0)
        await pilot.pause()
        assert heard and GENERATION in heard[-1]
