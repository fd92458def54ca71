"""Chapter 6 (Backpropagation) driven by keys; every number read back and checked against the
core computed directly, the toy against finite differences, the weights left untouched."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from ch_helpers import model_app, static_text

from llm_anatomy_tui.chapters.c06_backprop import BackpropScreen
from llm_anatomy_tui.core.lessons import toy_backprop as toy
from llm_anatomy_tui.core.lessons.grad_step import gradient_check, gradient_step
from llm_anatomy_tui.core.model import default_model_dir
from llm_anatomy_tui.core.train.backward import parameters
from llm_anatomy_tui.views.backprop import LR_CHOICES

STORY = "Once upon a time, there was a little robot who wanted to read."
WEIGHTS = Path(default_model_dir()) / "model.safetensors"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="no shipped model")


def digest(model) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for p in parameters(model).values():
        h.update(p.tobytes())
    return h.hexdigest()


async def opened(pilot) -> BackpropScreen:  # noqa: ANN001
    await pilot.app.wait_until_settled()
    screen = pilot.app.screen
    assert isinstance(screen, BackpropScreen)
    return screen


async def type_lr(pilot, text: str) -> None:  # noqa: ANN001
    await pilot.press("e", "ctrl+a", "ctrl+k", *list(text), "enter")
    await pilot.app.wait_until_settled()


def central(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:  # noqa: ANN001
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + h
        plus = f()
        x[i] = keep - h
        minus = f()
        x[i] = keep
        out[i] = (plus - minus) / (2 * h)
    return out


async def test_toy_revealed_stage_by_stage_and_its_gradients_are_finite_differences():
    app = model_app("backprop", STORY)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        assert screen.stages_shown == 1
        assert "2. Loss" not in static_text(screen, "#b-toy")
        await pilot.press(*"rrrrr")
        assert screen.stages_shown == 6
        text = static_text(screen, "#b-toy").replace("−", "-")
        # the ∂L/∂W rows printed on screen against central differences of the toy loss
        w, b = toy.W0.copy(), toy.B0.copy()
        fd = central(lambda: toy.toy_loss(w, b), w)
        shown = [
            [float(v) for v in m.group(2).split(",")]
            for m in re.finditer(r"(ran|sat|sang)\s+∂L/∂W = \[([^\]]+)\]", text)
        ]
        np.testing.assert_allclose(shown, fd, atol=6e-6)
        # the new loss printed is -ln of the printed probability, to display precision
        m = re.search(r"L = -ln ([0-9.]+) = ([0-9.]+)\s+\(was", text)
        assert m and abs(-np.log(float(m.group(1))) - float(m.group(2))) < 1e-4
        assert float(m.group(2)) == pytest.approx(toy.run_toy(screen.lr).new_loss, abs=5e-5)
        await pilot.press("r")
        assert screen.stages_shown == 1


async def test_real_step_numbers_equal_the_core_and_the_weights_never_change():
    app = model_app("backprop", STORY)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        model = app.session.model
        before, file_before = digest(model), hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
        ids = app.session.prompt_ids("model")
        expected = gradient_step(model, ids, screen.lr)
        step = screen.step.step
        assert step.loss_before == pytest.approx(expected.loss_before, rel=1e-6)
        assert step.loss_after == pytest.approx(expected.loss_after, rel=1e-5)
        assert step.loss_after < step.loss_before  # one small SGD step lowers the loss
        text = static_text(screen, "#b-step")
        assert f"before {expected.loss_before:.4f}" in text
        assert f"after  {expected.loss_after:.4f}" in text
        assert len(screen.step.rows) == len(ids) - 1
        for name, _, norm in expected.tensor_norms[:3]:
            assert re.search(rf"{re.escape(name)}\s+\S+\s+{norm:.4f}", text)
        # + raises the learning rate; the step follows
        await pilot.press("plus")
        await app.wait_until_settled()
        assert screen.lr == LR_CHOICES[LR_CHOICES.index(0.1) + 1]
        assert screen.step.step.lr == screen.lr
        assert screen.step.step.loss_after == pytest.approx(
            gradient_step(model, ids, screen.lr).loss_after, rel=1e-5
        )
        await pilot.press("minus", "minus")
        await app.wait_until_settled()
        assert screen.lr == LR_CHOICES[LR_CHOICES.index(0.1) - 1]
        assert digest(model) == before
        assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == file_before


async def test_absurd_and_invalid_learning_rates_are_reported():
    app = model_app("backprop", STORY)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        before = digest(app.session.model)
        await type_lr(pilot, "1e39")
        assert screen.lr == 1e39
        assert screen.step.step.diverged
        text = static_text(screen, "#b-step")
        assert "NaN/inf" in text and "thrown away" in text
        await type_lr(pilot, "nan")
        assert screen.step is None and "finite" in screen.message
        assert "finite" in static_text(screen, "#b-step")
        await type_lr(pilot, "abc")
        assert "not a number" in screen.message
        assert app.session.prompt == STORY
        assert digest(app.session.model) == before
        await type_lr(pilot, "0.05")
        assert screen.step.step.lr == 0.05 and screen.step.step.diverged is None


async def test_gradient_check_follows_the_keys_and_agrees():
    app = model_app("backprop", STORY)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        assert screen.check.check.name == "layers.0.wqkv" and screen.check.check.index == (0, 0)
        await pilot.press("w", "j", "j", "l", "k")
        await app.wait_until_settled()
        names = list(parameters(app.session.model))
        assert screen.pick == (3, (1, 1))
        check = screen.check.check
        assert (check.name, check.index) == (names[3], (1, 1))
        direct = gradient_check(
            app.session.model, app.session.prompt_ids("model"), names[3], (1, 1)
        )
        assert check.analytic == pytest.approx(direct.analytic, rel=1e-9)
        assert check.agrees
        text = static_text(screen, "#b-check")
        assert f"{check.analytic: .7e}" in text and "they agree" in text
        await pilot.press("W", "W", "W", "W")  # back past the first tensor: wraps around
        await app.wait_until_settled()
        assert screen.check.check.name == names[-1] and screen.check.check.agrees
        await pilot.press("h", "h")  # a 1-D tensor has no columns to move along
        await app.wait_until_settled()
        assert screen.check.check.index == (1,)


@pytest.mark.parametrize(("prompt", "words"), [("", "empty"), ("A", "one token")])
async def test_empty_and_one_token_prompts_explain_themselves(prompt, words):
    app = model_app("backprop", prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        assert screen.step is None and words in screen.message
        assert "at least two tokens" in static_text(screen, "#b-step")
        assert "at least two tokens" in static_text(screen, "#b-check")
        await pilot.press("r", "plus", "w")
        await app.wait_until_settled()
        assert app.session.prompt == prompt


async def test_without_a_model_the_toy_still_works(make_app):
    app = make_app(chapter="backprop", prompt="hello there")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("r", "r", "plus", "w", "j", "l")
        await app.wait_until_settled()
        assert screen.stages_shown == 3 and screen.step is None
        assert "No model found in" in str(screen.query_one("#resource-notice").content)


# -- snapshots ---------------------------------------------------------------------------


async def _revealed(pilot) -> None:  # noqa: ANN001
    await pilot.app.wait_until_settled()
    await pilot.press("r", "r", "r")
    await pilot.app.wait_until_settled()


def test_snapshot_80x24(snap_compare):
    assert snap_compare(model_app("backprop", STORY), terminal_size=(80, 24), run_before=_revealed)


def test_snapshot_120x40(snap_compare):
    assert snap_compare(model_app("backprop", STORY), terminal_size=(120, 40), run_before=_revealed)


def test_snapshot_no_color(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert os.environ["NO_COLOR"] == "1"
    assert snap_compare(model_app("backprop", STORY), terminal_size=(80, 24), run_before=_revealed)


async def test_a_model_over_the_memory_budget_falls_back_to_anatomy_mini(monkeypatch, tiny_model):
    """The loaded model's training copy would not fit: the chapter says so and steps anatomy-mini."""
    from tui_helpers import make_model_session

    from llm_anatomy_tui.app import LLMAnatomyApp
    from llm_anatomy_tui.core.lessons import grad_step

    monkeypatch.setattr(grad_step, "MEMORY_BUDGET", 1000)
    session = make_model_session(STORY, model=tiny_model)
    app = LLMAnatomyApp(chapter="backprop", session=session, load_resources=False)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await opened(pilot)
        assert "uses anatomy-mini, not the loaded tiny-random" in screen.step.note
        assert "over the" in static_text(screen, "#b-step")
        shipped = grad_step.shipped_model()
        expected = gradient_step(shipped, app.session.prompt_ids("model"), screen.lr)
        assert screen.step.step.loss_before == pytest.approx(expected.loss_before, rel=1e-6)
        assert "uses anatomy-mini" in screen.check.note and screen.check.check.agrees
