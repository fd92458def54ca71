"""Chapters 6 and 7's view-models: printed neighbours agree with each other to display
precision, the surface drawing puts marks where the points are and reads without colour."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from llm_anatomy_tui.core.lessons import optim_paths as op
from llm_anatomy_tui.core.lessons.toy_backprop import STAGES, run_toy
from llm_anatomy_tui.views.backprop import LR_CHOICES, bar, clamp_index, parse_lr, toy_stages
from llm_anatomy_tui.views.optimizers import (
    STEP_CHOICES,
    ToySettings,
    adam_lines,
    summary_lines,
)
from llm_anatomy_tui.views.optimizers import (
    run_toy as run_toy_paths,
)
from llm_anatomy_tui.views.surface_art import RAMP, cell_of, draw_surface

NUM = r"[−-]?\d+\.\d+"


def nums(line: str) -> list[float]:
    return [float(x.replace("−", "-")) for x in re.findall(NUM, line)]


def all_lines(lr: float) -> list[str]:
    return [line for s in toy_stages(run_toy(lr), len(STAGES)) for line in s.lines]


@pytest.mark.parametrize("lr", LR_CHOICES)
def test_toy_numbers_agree_with_their_printed_neighbours(lr):
    lines = all_lines(lr)
    text = "\n".join(lines)
    p = [nums(line)[-1] for line in lines if re.match(r"\s+(ran|sat|sang)\s+z =", line)]
    z = [nums(line)[-2] for line in lines if re.match(r"\s+(ran|sat|sang)\s+z =", line)]
    # p is the softmax of the printed z (z is exact: one-decimal inputs)
    e = np.exp(np.array(z) - max(z))
    np.testing.assert_allclose(p, e / e.sum(), atol=0.5e-6 + 1e-12)
    m = re.search(rf"−ln ({NUM}) = ({NUM})\n", text)
    assert m and abs(-math.log(float(m.group(1))) - float(m.group(2))) <= 0.5e-4 + 1e-12
    dl_dp = nums(next(line for line in lines if "∂L/∂p(sat) = −1" in line))[-1]
    assert round(-1 / p[1], 4) == pytest.approx(dl_dp)
    dp_line = lines[lines.index(next(x for x in lines if x.startswith("softmax node"))) + 1]
    onehot = np.eye(3)[1]
    np.testing.assert_allclose(nums(dp_line), np.round(p[1] * (onehot - p), 4), atol=1e-12)
    grads = [nums(x)[:3] for x in lines if "∂L/∂W = [" in x]
    x = (1.0, 0.5)
    for k, (g0, g1, gb) in enumerate(grads):
        assert g0 == pytest.approx(p[k] - onehot[k]) and gb == g0
        assert g1 == pytest.approx((p[k] - onehot[k]) * x[1], abs=1.01e-6)
    w0 = np.array([[0.6, -0.2], [0.2, 0.4], [-0.1, 0.5]])
    new_w = [nums(line)[:2] for line in lines if re.match(r"\s+(ran|sat|sang)\s+W = \[", line)]
    for k in range(3):
        for j in range(2):
            assert new_w[k][j] == pytest.approx(w0[k, j] - lr * grads[k][j], abs=0.5e-6 + lr * 1e-6)
    if lr <= 10:  # the new probabilities and loss, from the printed new weights and biases
        b = [nums(line)[2] for line in lines if re.match(r"\s+(ran|sat|sang)\s+W = \[", line)]
        z_new = np.array(new_w) @ np.array(x) + np.array(b)
        e = np.exp(z_new - z_new.max())
        shown = nums(next(line for line in lines if line.startswith("p = softmax(W·x")))
        np.testing.assert_allclose(shown, e / e.sum(), atol=1.5e-6)


def test_toy_stages_reveal_in_order():
    r = run_toy()
    assert [s.title[:2] for s in toy_stages(r, 3)] == ["1.", "2.", "3."]
    assert len(toy_stages(r, 6)) == len(STAGES)


def test_small_helpers():
    assert bar(0, 1, 3) == "   " and bar(1, 1, 3) == "███"
    assert clamp_index((-3, 99), (4, 5)) == (0, 4)
    assert parse_lr("1e39") == (1e39, None)
    assert "positive" in parse_lr("0")[1] and "finite" in parse_lr("inf")[1]


# -- chapter 7 ---------------------------------------------------------------------------------


def test_toy_settings_move_and_clamp():
    s = ToySettings()
    assert (s.lr, s.steps, s.step_shown) == (op.LR, op.STEPS, op.STEPS)
    s = s.move_start(-100, 100)
    assert s.start == (op.VALLEY_X[0], op.VALLEY_Y[1])
    s = s.change_steps(-100)
    assert s.steps == STEP_CHOICES[0]
    s = s.step_by(-2)
    assert s.step_shown == STEP_CHOICES[0] - 2
    s = s.step_by(-100).step_by(1)
    assert s.step_shown == 1


def test_summary_and_adam_lines_print_the_paths():
    s = ToySettings()
    paths = run_toy_paths(s)
    lines = summary_lines(paths, 7)
    for line, name in zip(lines[1:], op.NAMES, strict=True):
        lr, start, end, delta = nums(line)
        path = paths[name]
        assert (lr, start) == (path.lr, round(path.start_loss, 4))
        assert end == round(float(path.losses[7]), 4)
        assert delta == pytest.approx(end - start, abs=1.5e-4)
    text = "\n".join(adam_lines(paths["adam"], 7))
    rec = paths["adam"].adam[6]
    assert "t = 7" in text and f"{rec.bias1:.6f}" in text and f"{rec.bias2:.6f}" in text
    assert "Adam has not stepped" in adam_lines(paths["adam"], 0)[0]


def test_surface_marks_sit_on_their_points_and_bands_use_glyphs():
    xs, ys = np.linspace(-10, 10, 40), np.linspace(-4, 4, 9)[::-1]
    values = op.valley_grid(xs, ys)
    points = np.array([[-8.0, 2.5], [-4.0, -1.0], [0.0, 0.0], [20.0, 0.0]])
    art = draw_surface(values, op.VALLEY_X, op.VALLEY_Y, {"sgd": points}, 40, 9, minimum=(0, 0))
    r, c = cell_of(-4.0, -1.0, op.VALLEY_X, op.VALLEY_Y, 40, 9)
    assert art.rows[r][c] == ("S", "sgd")
    r, c = cell_of(-8.0, 2.5, op.VALLEY_X, op.VALLEY_Y, 40, 9)
    assert art.rows[r][c] == ("o", "start")
    r, c = cell_of(0, 0, op.VALLEY_X, op.VALLEY_Y, 40, 9)
    assert art.rows[r][c] == ("x", "min")
    assert art.outside == ("sgd",)  # (20, 0) is off the drawing
    # low loss in the middle is the first glyph, the corners the last
    assert art.rows[0][0][0] == RAMP[-1] and art.rows[4][10][0] in RAMP[:2]
    assert len(art.edges) == len(RAMP) + 1 and np.all(np.diff(art.edges) >= 0)
