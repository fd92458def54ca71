"""Chapter 12 (Training phases) driven by keys: the recorded run's phases on screen, a live
run on the prompt (loss falls, held-out loss rises, the completion changes), stop, reset,
absurd and typed learning rates, empty text, keeping the trained copy, snapshots."""

from __future__ import annotations

import hashlib

from ch_helpers import model_app, static_text

from llm_anatomy_tui.chapters.base import ChapterHeader
from llm_anatomy_tui.chapters.c12_training import TrainingScreen
from llm_anatomy_tui.core.model import default_model_dir
from llm_anatomy_tui.views.training_phases import load_history, phases_view
from llm_anatomy_tui.views.training_text import fmt_loss, fmt_lr
from llm_anatomy_tui.widgets.line_plot import LinePlot

STORY = "Once upon a time, there was a little robot who wanted to read."
SHIPPED = default_model_dir() / "model.safetensors"


def digest(model) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for name, arr in sorted(model.tensors().items()):
        h.update(name.encode())
        h.update(arr.tobytes())
    return h.hexdigest()


async def opened(pilot) -> TrainingScreen:  # noqa: ANN001
    await pilot.app.wait_until_settled(timeout=180)
    screen = pilot.app.screen
    assert isinstance(screen, TrainingScreen)
    return screen


async def test_recorded_run_phases_and_schedule_are_drawn():
    app = model_app("training", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        expected = phases_view(load_history(default_model_dir()))
        assert [p.kind for p in screen.phases.phases] == [p.kind for p in expected.phases]
        table = static_text(screen, "#c12-phases")
        for p in expected.phases:
            assert p.kind in table
            assert f"{fmt_loss(p.val_start)} → {fmt_loss(p.val_end)}" in table
            assert f"{p.start:,}–{p.end:,}" in table
        curves = screen.query_one("#c12-curves", LinePlot)
        assert [v.x for v in curves.vlines] == [p.start for p in expected.phases]
        assert list(curves.series[1].y) == list(expected.history.val_loss)
        lr = screen.query_one("#c12-lr", LinePlot)
        assert max(lr.series[0].y) == expected.history.settings.lr * 1e3


async def test_live_training_overfits_one_sentence_and_leaves_the_weights_alone():
    app = model_app("training", STORY)
    loaded = app.session.model
    before, shipped = digest(loaded), hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press("g")
        await app.wait_until_settled(timeout=180)
        run = screen.live
        assert screen.live_state == "done" and len(run.steps) == 30
        assert run.text_losses[-1] < 0.1 * run.text_before
        assert run.val_losses[-1] > run.val_before  # overfitting, measured alongside
        assert run.completion_after != run.completion_before
        status = static_text(screen, "#c12-status")
        assert (f"loss on your text {fmt_loss(run.text_before)} → "
                f"{fmt_loss(run.text_losses[-1])}") in status  # fmt: skip
        assert (f"held-out stories {fmt_loss(run.val_before)} → "
                f"{fmt_loss(run.val_losses[-1])}") in status  # fmt: skip
        plot = screen.query_one("#c12-live", LinePlot)
        assert list(plot.series[0].y) == [run.text_before, *run.text_losses]
        assert list(plot.series[1].y) == [run.val_before, *run.val_losses]
        assert "Overfitting" in status
        completions = static_text(screen, "#c12-completions")
        assert run.completion_after.replace("\n", "⏎") in completions
        # reset forgets it
        await pilot.press("r")
        assert screen.live is None and "Press g" in static_text(screen, "#c12-status")
    assert app.session.model is loaded and digest(loaded) == before
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == shipped


async def test_stop_takes_effect_within_a_step_and_drops_the_copy():
    app = model_app("training", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("s", "s", "s")  # 30 -> 50 -> 10 -> 20
        assert screen.steps == 20
        await pilot.press("g")
        for _ in range(400):
            await pilot.pause(0.01)
            if screen.live is not None and len(screen.live.steps) >= 2:
                break
        await pilot.press("x")
        shown = len(screen.live.steps)
        await app.wait_until_settled(timeout=180)
        assert screen.live_state == "stopped"
        assert shown < 20 and len(screen.live.steps) <= shown + 1
        assert "Stopped after step" in static_text(screen, "#c12-status")
        await pilot.press("k")  # nothing to keep
        assert app.session.weights_note == ""


async def test_absurd_learning_rate_blows_up_is_reported_and_the_copy_dropped():
    app = model_app("training", STORY)
    loaded = app.session.model
    before = digest(loaded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press(*["plus"] * 12)
        assert screen.lr == 1e12
        assert "learning rate 1e12" in static_text(screen, "#c12-plan")
        await pilot.press("g")
        await app.wait_until_settled(timeout=180)
        assert screen.live_state == "blew up" and screen.live.model is None
        status = static_text(screen, "#c12-status")
        assert "NaN or infinite" in status and "loaded weights are untouched" in status
        await pilot.press("k")
        assert app.session.weights_note == "" and app.session.model is loaded
    assert digest(loaded) == before


async def test_typed_learning_rate_is_checked():
    app = model_app("training", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("l", *"nan", "enter")
        assert screen.lr == 1e-3  # refused, kept
        await pilot.press("ctrl+a", "ctrl+k", *"3e-4", "enter")
        assert screen.lr == 3e-4
        assert f"learning rate {fmt_lr(3e-4)}" in static_text(screen, "#c12-plan")
        await pilot.press("minus")
        assert screen.lr == 1e-4


async def test_empty_text_says_so_and_training_reports_it():
    app = model_app("training", "")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        assert "no text to train on" in static_text(screen, "#c12-plan")
        await pilot.press("g")
        await app.wait_until_settled(timeout=180)
        assert screen.live_state == "error"
        assert "no text to train on" in static_text(screen, "#c12-status")
        assert app.session.prompt == ""


async def test_keeping_the_copy_shows_everywhere_and_u_goes_back():
    app = model_app("training", STORY)
    loaded = app.session.model
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press("s", "s")  # 30 -> 50 -> 10 steps
        await pilot.press("g")
        await app.wait_until_settled(timeout=180)
        await pilot.press("k")
        await app.wait_until_settled(timeout=180)
        assert app.session.model is screen.live.model and app.session.model is not loaded
        assert "trained 10 steps" in app.session.weights_note
        assert app.screen.query_one(ChapterHeader).weights_note
        assert "trained copy" in static_text(screen, "#c12-status")
        await pilot.press("n")  # chapter 13 runs on the trained copy and says so
        await app.wait_until_settled(timeout=180)
        assert app.screen.query_one(ChapterHeader).weights_note
        await pilot.press("p")
        await app.wait_until_settled(timeout=180)
        await pilot.press("u")
        await app.wait_until_settled(timeout=180)
        assert app.session.model is loaded and app.session.weights_note == ""
        assert not app.screen.query_one(ChapterHeader).weights_note


async def test_without_a_model_every_key_is_safe(make_app):
    app = make_app(chapter="training", prompt="hello")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.wait_until_settled(timeout=180)
        await pilot.press("g", "x", "r", "plus", "minus", "s", "k", "u")
        await pilot.app.wait_until_settled(timeout=180)
        assert "No model found in" in str(app.screen.query_one("#resource-notice").content)


# -- snapshots: the recorded run (fixed numbers from the history file), before any training --


async def _settle(pilot) -> None:  # noqa: ANN001
    await pilot.app.wait_until_settled(timeout=180)


def test_snapshot_training_80x24(snap_compare):
    assert snap_compare(model_app("training", STORY), terminal_size=(80, 24), run_before=_settle)


def test_snapshot_training_120x40(snap_compare):
    assert snap_compare(model_app("training", STORY), terminal_size=(120, 40), run_before=_settle)


def test_snapshot_training_no_color(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(model_app("training", STORY), terminal_size=(80, 24), run_before=_settle)


async def test_a_model_over_the_memory_budget_trains_anatomy_mini_and_says_why(monkeypatch):
    import llm_anatomy_tui.views.live_training as lt

    monkeypatch.setattr(lt, "TRAINING_MEMORY_BUDGET", 1000)
    app = model_app("training", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        assert "uses anatomy-mini instead" in static_text(screen, "#c12-plan")
        await pilot.press("s", "s")  # 10 steps
        await pilot.press("g")
        await app.wait_until_settled(timeout=180)
        assert screen.live_state == "done" and screen.live.model_note
        assert "uses anatomy-mini instead" in static_text(screen, "#c12-status")
