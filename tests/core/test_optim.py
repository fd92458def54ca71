"""Optimizers, schedule and clipping against numbers worked out by hand (written out as
literals) and against a pure-Python loop reference that shares no code with optim.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_anatomy_tui.core.train.optim import (
    OptimizerSettings,
    adam,
    adamw,
    clip_by_global_norm,
    global_norm,
    init_state,
    lr_at,
    momentum,
    optimizer_step,
    sgd,
)


def test_sgd_by_hand():
    # 1.0 - 0.1*0.5 = 0.95 ; -2.0 - 0.1*0.1 = -2.01
    np.testing.assert_allclose(sgd(np.array([1.0, -2.0]), np.array([0.5, 0.1]), 0.1), [0.95, -2.01])


def test_momentum_two_steps_by_hand():
    p, u = np.array([1.0]), np.zeros(1)
    p, u = momentum(p, np.array([0.5]), u, lr=0.1, beta=0.9)
    # u = 0.5 ; p = 1 - 0.05 = 0.95
    assert u[0] == pytest.approx(0.5) and p[0] == pytest.approx(0.95)
    p, u = momentum(p, np.array([0.2]), u, lr=0.1, beta=0.9)
    # u = 0.9*0.5 + 0.2 = 0.65 ; p = 0.95 - 0.065 = 0.885
    assert u[0] == pytest.approx(0.65) and p[0] == pytest.approx(0.885)


def test_adam_first_step_by_hand():
    # m = 0.1*g ; v = 0.001*g^2 ; m_hat = g ; v_hat = g^2 -> step = lr * g/|g| = 0.1 * sign
    p, m, v = adam(
        np.array([1.0, -2.0]), np.array([0.5, 0.1]), np.zeros(2), np.zeros(2), t=1, lr=0.1
    )
    np.testing.assert_allclose(m, [0.05, 0.01])
    np.testing.assert_allclose(v, [0.00025, 0.00001])
    np.testing.assert_allclose(p, [0.9, -2.1], atol=1e-7)


def test_adam_second_step_by_hand():
    # After step 1 (g=0.5): m=0.05, v=0.00025, p=0.9. Step 2 with g=-0.3, b1=.9, b2=.999:
    # m = 0.045 - 0.03 = 0.015            m_hat = 0.015 / 0.19   = 0.0789473684
    # v = 0.00024975 + 0.00009 = 0.00033975  v_hat = 0.00033975 / 0.001999 = 0.1699599800
    # p = 0.9 - 0.1 * 0.0789473684 / 0.4122620287 = 0.8808500...
    p, m, v = adam(np.array([0.9]), np.array([-0.3]), np.array([0.05]), np.array([0.00025]), 2, 0.1)
    assert m[0] == pytest.approx(0.015)
    assert v[0] == pytest.approx(0.00033975)
    assert p[0] == pytest.approx(0.9 - 0.1 * (0.015 / 0.19) / math.sqrt(0.00033975 / 0.001999))
    assert p[0] == pytest.approx(0.880850, abs=1e-6)


def test_adamw_decay_is_decoupled_by_hand():
    # decayed = 1.0 * (1 - 0.1*0.1) = 0.99 ; Adam's first step moves it by 0.1 -> 0.89
    p, m, v = adamw(
        np.array([1.0]), np.array([0.5]), np.zeros(1), np.zeros(1), 1, 0.1, weight_decay=0.1
    )
    assert p[0] == pytest.approx(0.89)
    assert m[0] == pytest.approx(0.05)  # the decay never enters the moments
    # Adam with the same decay folded into the gradient (L2) would give a different step:
    p_l2, _, _ = adam(
        np.array([1.0]), np.array([0.5 + 0.1 * 1.0]), np.zeros(1), np.zeros(1), 1, 0.1
    )
    assert p_l2[0] == pytest.approx(0.9)


def _reference_adamw(p, grads, lr, b1, b2, eps, wd):
    """Loop-based AdamW over plain Python floats."""
    p = list(p)
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        for i in range(len(p)):
            p[i] -= lr * wd * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            mh = m[i] / (1 - b1**t)
            vh = v[i] / (1 - b2**t)
            p[i] -= lr * mh / (math.sqrt(vh) + eps)
    return p


def test_optimizer_step_matches_loop_reference_and_skips_norm_decay():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(2, 3)), "gain": rng.normal(size=3)}
    start = {k: v.copy() for k, v in params.items()}
    settings = OptimizerSettings("adamw", beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    state = init_state(settings, params)
    grads_seq = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(3)]
    for grads in grads_seq:
        optimizer_step(settings, state, params, grads, lr=0.01)
    assert state.step == 3
    expected_w = _reference_adamw(
        start["w"].ravel(), [g["w"].ravel() for g in grads_seq], 0.01, 0.9, 0.95, 1e-8, 0.1
    )
    expected_gain = _reference_adamw(
        start["gain"], [g["gain"] for g in grads_seq], 0.01, 0.9, 0.95, 1e-8, 0.0
    )
    np.testing.assert_allclose(params["w"].ravel(), expected_w, rtol=1e-12)
    np.testing.assert_allclose(params["gain"], expected_gain, rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_optimizer_step_updates_in_place(name):
    param = np.ones((2, 2), dtype=np.float32)
    params = {"w": param}
    settings = OptimizerSettings(name)
    state = init_state(settings, params)
    optimizer_step(settings, state, params, {"w": np.full((2, 2), 0.5, np.float32)}, lr=0.1)
    assert params["w"] is param and param.dtype == np.float32
    assert np.all(param < 1.0)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer"):
        OptimizerSettings("lion")


def test_schedule_by_hand():
    # warmup 4 of 10 steps, peak 1.0, floor 0.1
    lrs = [lr_at(s, 1.0, warmup=4, total=10, min_lr=0.1) for s in range(10)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # decay step s: progress = (s + 1 - 4) / 6 ; lr = 0.1 + 0.45 * (1 + cos(pi * progress))
    expected = [0.1 + 0.45 * (1 + math.cos(math.pi * (s - 3) / 6)) for s in range(4, 10)]
    assert lrs[4:] == pytest.approx(expected)
    assert lrs[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lr_at(50, 1.0, 4, 10, 0.1) == pytest.approx(0.1)  # past the end: stays at the floor


def test_clip_by_global_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(grads) == 5.0
    clipped, norm = clip_by_global_norm(grads, 2.5)
    assert norm == 5.0
    np.testing.assert_allclose(clipped["a"], [1.5, 0.0])
    np.testing.assert_allclose(clipped["b"], [[2.0]])
    same, _ = clip_by_global_norm(grads, 10.0)
    assert same["a"] is grads["a"]  # under the limit: untouched
    off, _ = clip_by_global_norm(grads, 0.0)
    assert off is grads
