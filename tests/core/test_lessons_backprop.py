"""Chapter 6's numbers: the toy's gradients against finite differences, the real step against
an independent forward pass, the gradient check, the memory budget, weights left untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from llm_anatomy_tui.core.lessons import toy_backprop as toy
from llm_anatomy_tui.core.lessons.grad_step import (
    GradCheck,
    gradient_check,
    gradient_step,
    memory_plan,
    parameter_count,
    prompt_batch,
    training_model,
)
from llm_anatomy_tui.core.model import default_model_dir, forward, load_model
from llm_anatomy_tui.core.train.backward import parameters

IDS = [2219, 400, 7557, 261, 1058, 13, 976, 1268, 13, 400, 7557]


def central(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
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


def snapshot(model) -> dict[str, bytes]:
    return {name: p.tobytes() for name, p in parameters(model).items()}


# -- toy -------------------------------------------------------------------------------------


def test_toy_gradients_equal_finite_differences():
    r = toy.run_toy()
    w, b = toy.W0.copy(), toy.B0.copy()
    np.testing.assert_allclose(r.grad_w, central(lambda: toy.toy_loss(w, b), w), atol=1e-8)
    np.testing.assert_allclose(r.grad_b, central(lambda: toy.toy_loss(w, b), b), atol=1e-8)
    z = toy.W0 @ toy.X + toy.B0
    np.testing.assert_allclose(
        r.dl_dz, central(lambda: -np.log(toy.softmax(z)[toy.TARGET]), z), atol=1e-8
    )


def test_toy_chain_rule_pieces_multiply_to_the_gradient():
    r = toy.run_toy()
    onehot = np.eye(3)[r.target]
    np.testing.assert_allclose(r.dl_dz, r.p - onehot, atol=1e-15)
    np.testing.assert_allclose(r.dl_dp * r.dp_dz, r.dl_dz, atol=1e-15)
    z = toy.W0 @ toy.X + toy.B0
    dp_dz = central(lambda: toy.softmax(z)[toy.TARGET], z)
    np.testing.assert_allclose(r.dp_dz, dp_dz, atol=1e-8)
    assert r.dl_dp == pytest.approx(-1 / r.p[r.target])


@pytest.mark.parametrize("lr", [0.05, 0.5, 2.0])
def test_toy_update_and_new_loss(lr):
    r = toy.run_toy(lr)
    np.testing.assert_allclose(r.new_w, toy.W0 - lr * r.grad_w)
    assert r.new_loss == pytest.approx(toy.toy_loss(r.new_w, r.new_b))
    assert r.new_loss < r.loss


# -- the real step ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini():
    return load_model(default_model_dir())


def independent_nll(model, ids: list[int]) -> np.ndarray:
    logits = forward(model, ids[:-1]).astype(np.float64)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(ids) - 1), ids[1:]]


@pytest.mark.parametrize("which", ["tiny", "mini"])
def test_small_sgd_step_lowers_the_loss_and_matches_an_independent_forward(which, tiny_model, mini):
    model = tiny_model if which == "tiny" else mini
    before = snapshot(model)
    step = gradient_step(model, IDS, lr=0.05)
    assert snapshot(model) == before  # the loaded weights are untouched
    assert step.diverged is None
    assert step.loss_after < step.loss_before
    nll = independent_nll(model, IDS)
    assert step.loss_before == pytest.approx(nll.mean(), rel=1e-5)
    np.testing.assert_allclose(step.prob_before, np.exp(-nll), rtol=1e-4)
    # after: the same SGD update written out here, evaluated by the inference forward
    from llm_anatomy_tui.core.train.backward import loss_and_grads, model_astype

    copy = model_astype(model, np.float32)
    _, grads = loss_and_grads(copy, np.array([IDS[:-1]]), np.array([IDS[1:]]))
    for name, p in parameters(copy).items():
        p -= np.float32(0.05) * grads[name]
    after = independent_nll(copy, IDS)
    assert step.loss_after == pytest.approx(after.mean(), rel=1e-4)
    np.testing.assert_allclose(step.prob_after, np.exp(-after), rtol=1e-3)
    # norms: per tensor, per block and overall describe the same gradient
    squares = sum(n * n for _, _, n in step.tensor_norms)
    assert squares == pytest.approx(step.grad_norm**2, rel=1e-6)
    assert sum(n * n for _, n in step.layer_norms) == pytest.approx(squares, rel=1e-6)
    assert len(step.layer_norms) == model.config.num_hidden_layers + 2


def test_absurd_learning_rate_is_reported_and_the_model_is_untouched(mini):
    before = snapshot(mini)
    step = gradient_step(mini, IDS, lr=1e39)
    assert step.diverged and "NaN/inf" in step.diverged
    assert snapshot(mini) == before
    with pytest.raises(ValueError, match="finite"):
        gradient_step(mini, IDS, lr=float("nan"))


@pytest.mark.parametrize("ids", [[], [5]])
def test_too_short_prompts_are_refused(ids, tiny_model):
    with pytest.raises(ValueError, match="at least two tokens"):
        gradient_step(tiny_model, ids, 0.1)


def test_prompt_longer_than_the_context_is_cut(tiny_model):
    n = tiny_model.config.max_position_embeddings
    x, y, cut = prompt_batch(list(range(n + 10)), n)
    assert cut and x.shape == (1, n) and y[0, -1] == n
    assert gradient_step(tiny_model, list(range(n + 10)), 0.01).cut


def test_shipped_weight_file_is_byte_identical_after_the_lessons(mini):
    path = Path(default_model_dir()) / "model.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    gradient_step(mini, IDS, 0.1)
    gradient_check(mini, IDS, "layers.0.wo", (1, 2))
    from llm_anatomy_tui.core.lessons.loss_slice import compute_slice, heldout_batch

    compute_slice(mini, grid=2, steps=1, batch=heldout_batch(16, windows=1, window=16))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


# -- gradient check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("layers.0.wqkv", (0, 0)),
        ("layers.1.w_down", (3, 7)),
        ("norm", (5,)),
        ("embed", (IDS[0], 4)),
    ],
)
def test_gradient_check_agrees(name, index, tiny_model):
    check = gradient_check(tiny_model, IDS, name, index)
    assert check.agrees, check
    assert check.numeric == pytest.approx((check.loss_plus - check.loss_minus) / (2 * check.h))
    assert check.value == pytest.approx(float(parameters(tiny_model)[name][index]))


def test_gradient_check_would_catch_a_wrong_gradient(tiny_model):
    good = gradient_check(tiny_model, IDS, "layers.0.wo", (2, 3))
    assert abs(good.analytic) > 1e-6
    bad = GradCheck(**{**good.__dict__, "analytic": good.analytic * 1.01})
    assert not bad.agrees


def test_gradient_check_rejects_bad_picks(tiny_model):
    with pytest.raises(ValueError, match="outside"):
        gradient_check(tiny_model, IDS, "norm", (10_000,))
    with pytest.raises(ValueError, match="no parameter"):
        gradient_check(tiny_model, IDS, "nope", (0,))


# -- memory ----------------------------------------------------------------------------------


def test_memory_plan_counts_the_real_arrays(tiny_model):
    n = sum(p.size for p in parameters(tiny_model).values())
    assert parameter_count(tiny_model.config) == n
    assert memory_plan(tiny_model.config, "adam", 4).total == n * 4 * 4


def test_over_budget_falls_back_to_anatomy_mini(tiny_model):
    plan = memory_plan(tiny_model.config, "sgd", budget=1)
    model, why = training_model(tiny_model, plan)
    assert model.name != tiny_model.name and "anatomy-mini" in why and "budget" in why
    model, why = training_model(tiny_model, memory_plan(tiny_model.config))
    assert model is tiny_model and "loaded model" in why


def test_a_model_the_backward_pass_does_not_cover_falls_back(tiny_model):
    import dataclasses

    from llm_anatomy_tui.core.lessons.grad_step import unsupported

    assert unsupported(tiny_model) is None
    layers = [
        dataclasses.replace(tiny_model.layers[0], bqkv=np.zeros(tiny_model.layers[0].wqkv.shape[0]))
    ]
    biased = dataclasses.replace(tiny_model, layers=layers + tiny_model.layers[1:], name="biased")
    assert "biases" in unsupported(biased)
    model, why = training_model(biased, memory_plan(biased.config))
    assert model is not biased and "backward pass" in why
