"""Chapter 3 (neuron activation) driven by keys: the toy against plain math, the real
unit's activations against a fresh trace, the held-out scan against the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ch234_helpers import PROMPT, app_for, odd_model, settled, text_of, type_text

from llm_anatomy_tui.chapters.c03_neurons import NeuronsScreen
from llm_anatomy_tui.core.lessons.neuron import ACTIVATIONS
from llm_anatomy_tui.core.model import Trace, forward

MATH = {
    "relu": lambda z: max(0.0, z),
    "gelu": lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
    "silu": lambda z: z / (1 + math.exp(-z)),
    "tanh": math.tanh,
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)),
    "linear": lambda z: z,
}


def toy_z(values) -> float:  # noqa: ANN001
    x, w, b = values[:3], values[3:6], values[6]
    return sum(xi * wi for xi, wi in zip(x, w, strict=False)) + b


async def test_toy_keys_and_every_function():
    app = app_for("neurons")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, NeuronsScreen)
        assert "toy neuron" in text_of(screen, "#n-body > Static.h")
        start = screen.toy.values
        await pilot.press(
            "full_stop", "plus", "plus", "full_stop", "full_stop", "full_stop", "minus"
        )
        vals = screen.toy.values
        assert vals[1] == start[1] + 0.5 and vals[4] == start[4] - 0.25
        for name in ACTIVATIONS:
            assert screen.toy.activation == name
            z = toy_z(screen.toy.values)
            shown = text_of(screen, "#n-toy")
            assert f"= {z:.4f}" in shown
            assert f"out = {name}(z)" in shown and f"= {MATH[name](z):.4f}" in shown
            assert f"{name} {MATH[name](z):.4f}" in text_of(screen, "#n-all")
            plot = screen.query_one("#n-curve")
            mark = plot.marks[0]
            assert mark.x == pytest.approx(z) and mark.y == pytest.approx(MATH[name](z))
            await pilot.press("f")
        assert screen.toy.activation == "relu"
        await pilot.press("F")
        assert screen.toy.activation == "linear"
        await pilot.press("a")
        plot = screen.query_one("#n-curve")
        assert [series.name for series in plot.series] == list(ACTIVATIONS)
        z = toy_z(screen.toy.values)
        for mark, name in zip(plot.marks, ACTIVATIONS, strict=True):
            assert mark.y == pytest.approx(MATH[name](z))
        await pilot.press("a")
        assert [series.name for series in plot.series] == ["linear"]


@pytest.mark.parametrize("typed", ["1e6", "-1e6", "nan", "NaN", "inf", "abc", ""])
async def test_typed_extremes_are_refused_with_a_message(typed):
    app = app_for("neurons")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        before = screen.toy.values
        await pilot.press("e")
        await type_text(pilot, typed)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.toy.values == before
        assert app._notifications, "a message says why"  # noqa: SLF001
        note = list(app._notifications)[-1].message  # noqa: SLF001
        assert "±100" in note or "not a number" in note.lower() or "Type a number" in note
        assert screen.query_one("#n-input").has_focus  # still open, to fix
        await pilot.press("escape")
        assert not screen.query_one("#n-input").display


async def test_typed_value_applies():
    app = app_for("neurons")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        await pilot.press("full_stop", "full_stop", "full_stop", "e")
        await type_text(pilot, "-2.5")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.toy.values[3] == -2.5
        assert "w1 -2.50" in text_of(screen, "#n-toy")


async def test_collapse_shows_product_and_same_outputs():
    app = app_for("neurons")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        shown = text_of(app.screen, "#n-collapse")
        assert "W1·W2 = [0 3; 2 -0.5]" in shown
        assert shown.count("≠ product") == 2 and shown.count("= product") == 1
        w1 = [[1, -2], [0.5, 1]]
        w2 = [[2, 1], [1, -1]]
        for x in ([1, 1], [2, -1], [0.5, 2]):
            h = [x[0] * w1[0][j] + x[1] * w1[1][j] for j in range(2)]
            y = [h[0] * w2[0][k] + h[1] * w2[1][k] for k in range(2)]
            assert shown.count(f"[{y[0]:g} {y[1]:g}]") >= 2  # (x·W1)·W2 and x·(W1·W2)
        assert "g(x) + g(−x) = 4" in shown


def fresh_hidden(model, ids) -> list[np.ndarray]:  # noqa: ANN001
    t = Trace()
    forward(model, ids, trace=t)
    return [layer["hidden"] for layer in t.layers]


async def test_real_unit_equals_trace_and_keys_move_it():
    app = app_for("neurons")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        model = app.session.model
        ids = app.session.encoding("model").encode_ordinary(PROMPT)
        hidden = fresh_hidden(model, ids)
        for keys, (layer, unit) in (
            ((), (0, 0)),
            (("u",), (0, 1)),
            (("l", "l"), (2, 1)),
            (("U", "U"), (2, 383)),
            (("L",), (1, 383)),
        ):
            await pilot.press(*keys)
            await settled(pilot)
            assert (screen.choice.layer, screen.choice.unit) == (layer, unit)
            np.testing.assert_array_equal(screen.acts, hidden[layer][:, unit])
            chips = text_of(screen, "#n-acts")
            for v in hidden[layer][:, unit]:
                assert f"{v:+.2f}" in chips
        await pilot.press("g")
        await type_text(pilot, "77")
        await pilot.press("enter")
        await settled(pilot)
        assert screen.choice.unit == 77
        await pilot.press("g")
        await type_text(pilot, "9999")
        await pilot.press("enter")
        assert screen.choice.unit == 77
        assert "not a hidden unit" in list(app._notifications)[-1].message  # noqa: SLF001


async def test_top_tokens_are_real_activations():
    app = app_for("neurons")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        model = app.session.model
        scan = screen.scan
        assert scan is not None and scan.layer == 0
        shown = text_of(screen, "#n-top")
        for pos, val in scan.top(0)[:3]:
            start = (pos // scan.window) * scan.window
            window = scan.tokens[start : start + scan.window]
            ref = fresh_hidden(model, window)[0][pos - start, 0]
            assert val == pytest.approx(float(ref), abs=1e-4)
            assert f"{val:+.3f}" in shown
        # the activations are in descending order and none below the last shown one in
        # the first window (a check against a full pass over one window)
        w0 = fresh_hidden(model, scan.tokens[: scan.window])[0][:, 0]
        assert w0.max() <= scan.top(0)[0][1] + 1e-4
        await pilot.press("l")
        await settled(pilot)
        assert screen.scan.layer == 1


@pytest.mark.parametrize("prompt", ["", "a", "\x07"])
async def test_awkward_prompts(prompt):
    app = app_for("neurons", prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert screen.acts is not None and len(screen.acts) >= 1
        if prompt == "":
            assert "prompt is empty" in text_of(screen, "#n-notice")
        await pilot.press("u", "l")
        await settled(pilot)
        assert app.session.prompt == prompt


async def test_other_model_sizes():
    app = app_for("neurons", model=odd_model())
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert "0–2, hidden unit 0 of 0–39" in text_of(screen, "#n-unit")
        await pilot.press("U", "L")
        await settled(pilot)
        assert (screen.choice.layer, screen.choice.unit) == (2, 39)
        assert screen.scan.layer == 2 and screen.scan.top_val.shape[1] == 40


async def test_scan_runs_in_a_worker_and_a_newer_layer_wins():
    """Keys keep working while the held-out scan runs; a superseded scan is dropped."""
    app = app_for("neurons")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        before = screen.toy.values[0]
        await pilot.press("l", "l", "plus")  # two scans asked for; the toy answers at once
        assert screen.toy.values[0] == before + 0.25
        await settled(pilot)
        assert screen.choice.layer == 2
        assert screen.scan is not None and screen.scan.layer == 2
        assert "fire unit 0 most" in text_of(screen, "#n-top")
