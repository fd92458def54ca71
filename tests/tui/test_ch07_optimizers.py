"""Chapter 7 (Optimizers) driven by keys: the toy trajectories are the core's step functions
for the settings the keys chose, the real slice equals a direct computation, cancelling
works, and the loaded weights never change."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path

import numpy as np
import pytest
from ch_helpers import model_app, static_text

import llm_anatomy_tui.chapters.c07_optimizers as c07
from llm_anatomy_tui.chapters.c07_optimizers import OptimizersScreen
from llm_anatomy_tui.core.lessons import optim_paths as op
from llm_anatomy_tui.core.lessons.loss_slice import GRID, SPAN, compute_slice
from llm_anatomy_tui.core.model import default_model_dir
from llm_anatomy_tui.core.train import optim
from llm_anatomy_tui.core.train.backward import parameters
from llm_anatomy_tui.views.optimizers import LR_CHOICES, STEP_CHOICES

WEIGHTS = Path(default_model_dir()) / "model.safetensors"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped model")


def digest(model) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for p in parameters(model).values():
        h.update(p.tobytes())
    return h.hexdigest()


async def opened(pilot, cut: bool = False) -> OptimizersScreen:  # noqa: ANN001
    """The chapter at rest; with ``cut`` the real slice is asked for (r) and finished."""
    await pilot.app.wait_until_settled(timeout=120)
    screen = pilot.app.screen
    assert isinstance(screen, OptimizersScreen)
    if cut:
        assert screen.real is None and "Press r" in static_text(screen, "#o-real-status")
        await pilot.press("r")
        await pilot.app.wait_until_settled(timeout=180)
        assert screen.real is not None
    return screen


def sgd_by_hand(start, lr, steps):  # noqa: ANN001, ANN201
    p = np.array(start, dtype=float)
    out = [p]
    for _ in range(steps):
        p = optim.sgd(p, op.valley(p)[1], lr)
        out.append(p)
    return np.array(out)


async def test_keys_drive_the_toy_and_its_numbers_are_the_core_steps():
    app = model_app("optimizers")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press("plus", "greater_than_sign", "a", "a", "s")
        s = screen.settings
        assert s.lr == LR_CHOICES[LR_CHOICES.index(op.LR) + 1]
        assert s.steps == STEP_CHOICES[STEP_CHOICES.index(op.STEPS) + 1]
        assert s.start == (op.START[0] - 2, op.START[1] - 0.5)
        np.testing.assert_array_equal(
            screen.paths["sgd"].points, sgd_by_hand(s.start, s.lr, s.steps)
        )
        m = np.zeros(2)
        v = np.zeros(2)
        p = np.array(s.start)
        for t in range(1, s.steps + 1):
            p, m, v = optim.adam(p, op.valley(p)[1], m, v, t, s.lr, op.BETA, op.BETA2, op.EPS)
        np.testing.assert_array_equal(screen.paths["adam"].points[-1], p)
        # step back with "," and read Adam's bookkeeping and the summary for that step
        await pilot.press("comma", "comma", "comma")
        step = s.steps - 3
        assert screen.settings.step_shown == step
        adam = static_text(screen, "#o-adam")
        rec = screen.paths["adam"].adam[step - 1]
        assert f"t = {step}" in adam and f"{rec.bias1:.6f}" in adam and f"{rec.bias2:.6f}" in adam
        summary = static_text(screen, "#o-summary")
        for name, path in screen.paths.items():
            row = next(x for x in summary.splitlines() if x.startswith(op.MARKS[name] + " "))
            assert f"{path.losses[step]:.4f}" in row and f"{path.start_loss:.4f}" in row
        await pilot.press("full_stop")
        assert screen.settings.step_shown == step + 1
        # the other direction of every control
        await pilot.press("d", "w", "minus", "minus", "less_than_sign")
        t = screen.settings
        assert t.start == (op.START[0] - 1, op.START[1])
        assert t.lr == LR_CHOICES[LR_CHOICES.index(op.LR) - 1] and t.steps == op.STEPS
        np.testing.assert_array_equal(
            screen.paths["sgd"].points, sgd_by_hand(t.start, t.lr, t.steps)
        )
        await pilot.press("full_stop", "full_stop")
        # the drawing: the start is marked, every letter of the legend is there
        toy = static_text(screen, "#o-toy")
        assert "o" in toy and "S SGD" in toy and f"step {op.STEPS} of {op.STEPS}" in toy


async def test_play_animates_and_pauses():
    app = model_app("optimizers")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press("space")  # at the end: starts again from step 0
        await asyncio.sleep(0.6)
        await pilot.press("space")
        shown = screen.settings.step_shown
        assert 0 < shown < screen.settings.steps
        await asyncio.sleep(0.3)
        assert screen.settings.step_shown == shown  # paused


async def test_blown_up_learning_rate_is_reported():
    app = model_app("optimizers")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press(*["plus"] * len(LR_CHOICES))
        assert screen.settings.lr == LR_CHOICES[-1]
        assert screen.paths["sgd"].diverged_at is not None
        assert "blew up at step" in static_text(screen, "#o-summary")


async def test_real_slice_equals_a_direct_computation_and_weights_are_untouched():
    app = model_app("optimizers")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot, cut=True)
        model = app.session.model
        before = digest(model)
        real = screen.real.slice
        direct = compute_slice(model, GRID, SPAN, seed=0)
        np.testing.assert_allclose(real.losses, direct.losses, rtol=1e-6)
        for name in op.NAMES:
            np.testing.assert_allclose(
                real.paths[name].points, direct.paths[name].points, rtol=1e-5
            )
        text = static_text(screen, "#o-real")
        assert (
            f"{GRID} × {GRID} grid" in text
            and f"centre (the trained weights): {real.center_loss:.4f}" in text
        )
        assert "loaded model" in screen.real_status
        # r: new directions, computed in the worker, cached
        await pilot.press("r")
        await app.wait_until_settled(timeout=180)
        assert screen.real.slice.seed == 1
        assert not np.allclose(screen.real.slice.losses, real.losses)
        assert digest(model) == before


async def test_cancel_stops_the_real_slice_with_a_message(monkeypatch):
    app = model_app("optimizers")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot, cut=True)
        first = screen.real
        real_slice_for = c07.slice_for

        def slow_slice_for(model, seed, cache, task):  # noqa: ANN001, ANN202
            # Hold the computation until it is cancelled (at most 30 s): on a fast machine
            # the real slice finishes between two key presses, leaving nothing to cancel.
            deadline = time.monotonic() + 30
            while not task.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)
            return real_slice_for(model, seed, cache, task)

        monkeypatch.setattr(c07, "slice_for", slow_slice_for)
        await pilot.press("r")
        assert screen.is_computing("slice") and screen.seed == 1
        await pilot.press("x")
        await app.wait_until_settled(timeout=60)
        assert not screen.is_computing("slice")
        assert "Cancelled" in static_text(screen, "#o-real-status")
        # the finished slice stays drawn
        assert first is not None and screen.real is first


async def test_without_a_model_the_toy_works(make_app):
    app = make_app(chapter="optimizers")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("plus", "a", "w", "comma", "r", "x", "less_than_sign")
        await app.wait_until_settled()
        assert (
            screen.real is None
            and screen.settings.steps == STEP_CHOICES[STEP_CHOICES.index(op.STEPS) - 1]
        )
        assert re.search(r"No model found in", str(screen.query_one("#resource-notice").content))


# -- snapshots ---------------------------------------------------------------------------


async def _settled(pilot) -> None:  # noqa: ANN001
    await pilot.app.wait_until_settled(timeout=120)
    await pilot.press("comma", "comma")


def test_snapshot_80x24(snap_compare):
    assert snap_compare(model_app("optimizers"), terminal_size=(80, 24), run_before=_settled)


def test_snapshot_120x40(snap_compare):
    assert snap_compare(model_app("optimizers"), terminal_size=(120, 40), run_before=_settled)


def test_snapshot_no_color(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(model_app("optimizers"), terminal_size=(80, 24), run_before=_settled)


async def test_play_without_animation_shows_the_end_at_once(make_app):
    """Over SSH the app turns animation off; Space then draws the last step in one frame
    instead of streaming one frame per step (~6 KB each)."""
    app = make_app(chapter="optimizers")
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        screen.settings = screen.settings.step_by(-screen.settings.steps)
        await pilot.press("space")
        assert screen.settings.step_shown == screen.settings.steps
        await pilot.pause(0.3)  # no timer keeps stepping
        assert screen.settings.step_shown == screen.settings.steps
