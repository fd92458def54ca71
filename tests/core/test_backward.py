"""Gradient checks: every hand-written backward function against central finite
differences in float64, then the whole model on a tiny config.

Each op is checked through a scalar loss ``L = sum(op(x) * R)`` with a fixed random R, so
``dL/dout = R`` and the backward function's output must equal the numerical gradient of L.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import forward, init_random
from llm_anatomy_tui.core.ops import (
    apply_rope,
    attention_scores,
    causal_mask,
    mix_values,
    rms_norm,
    rope_cos_sin,
    silu,
)
from llm_anatomy_tui.core.train.backward import (
    cross_entropy,
    cross_entropy_backward,
    dropout_mask,
    embedding_backward,
    forward_logits,
    forward_train,
    grouped_mix_backward,
    grouped_scores_backward,
    head_loss_and_backward,
    linear_backward,
    loss_and_grads,
    masked_softmax_forward,
    model_astype,
    parameters,
    residual_backward,
    rms_norm_backward,
    rope_backward,
    silu_backward,
    softmax_backward,
    swiglu_backward,
    token_nll,
)

RTOL = 1e-6


def numerical_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f()
        x[idx] = old - h
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


def assert_close(analytic: np.ndarray, numeric: np.ndarray, tol: float = RTOL) -> None:
    scale = max(1.0, float(np.abs(numeric).max()))
    err = float(np.abs(analytic - numeric).max()) / scale
    assert err < tol, f"max error {err:.2e} (scale {scale:.2e})"


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_embedding(rng):
    table = rng.normal(size=(7, 3))
    ids = np.array([[1, 4, 1], [6, 0, 4]])
    r = rng.normal(size=(2, 3, 3))
    grad = embedding_backward(ids, r, 7)
    assert_close(grad, numerical_grad(lambda: np.sum(table[ids] * r), table))
    assert np.all(grad[[2, 3, 5]] == 0.0)  # rows never looked up


def test_rms_norm(rng):
    x = rng.normal(size=(2, 3, 6))
    w = rng.normal(size=6)
    r = rng.normal(size=(2, 3, 6))
    dx, dw = rms_norm_backward(x, w, 1e-5, r)

    def loss():
        return np.sum(rms_norm(x, w, 1e-5) * r)

    assert_close(dx, numerical_grad(loss, x))
    assert_close(dw, numerical_grad(loss, w))


def test_linear(rng):
    x = rng.normal(size=(2, 4, 5))
    w = rng.normal(size=(3, 5))  # [out, in]
    r = rng.normal(size=(2, 4, 3))
    dx, dw = linear_backward(x, w, r)

    def loss():
        return np.sum((x @ w.T) * r)

    assert_close(dx, numerical_grad(loss, x))
    assert_close(dw, numerical_grad(loss, w))


def test_rope(rng):
    cos, sin = rope_cos_sin(np.arange(5), 8, 10000.0)
    x = rng.normal(size=(3, 5, 8))
    r = rng.normal(size=(3, 5, 8))
    dx = rope_backward(r, cos, sin)
    assert_close(dx, numerical_grad(lambda: np.sum(apply_rope(x, cos, sin) * r), x))


@pytest.mark.parametrize("n_heads,n_kv", [(4, 2), (2, 2), (4, 1)])
def test_grouped_scores(rng, n_heads, n_kv):
    q = rng.normal(size=(2, n_heads, 5, 4))
    k = rng.normal(size=(2, n_kv, 5, 4))
    r = rng.normal(size=(2, n_heads, 5, 5))
    dq, dk = grouped_scores_backward(q, k, r)

    def loss():
        return np.sum(attention_scores(q, k) * r)

    assert_close(dq, numerical_grad(loss, q))
    assert_close(dk, numerical_grad(loss, k))


def test_grouped_scores_matches_a_loop_over_heads(rng):
    q = rng.normal(size=(4, 3, 4))
    k = rng.normal(size=(2, 3, 4))
    scores = attention_scores(q, k)
    for h in range(4):  # query head h reads K head h // 2
        np.testing.assert_allclose(scores[h], q[h] @ k[h // 2].T / 2.0, rtol=1e-12)


def test_causal_softmax(rng):
    scores = rng.normal(size=(2, 3, 4, 4))
    mask = causal_mask(4, 4)
    r = rng.normal(size=(2, 3, 4, 4))
    weights = masked_softmax_forward(scores.copy(), mask)
    d_scores = softmax_backward(weights, r)

    def loss():
        return np.sum(masked_softmax_forward(scores.copy(), mask) * r)

    assert_close(d_scores, numerical_grad(loss, scores))
    assert np.all(d_scores[..., ~mask] == 0.0)  # masked cells get no gradient


@pytest.mark.parametrize("n_heads,n_kv", [(4, 2), (4, 4)])
def test_grouped_mix(rng, n_heads, n_kv):
    weights = rng.random(size=(2, n_heads, 5, 5))
    v = rng.normal(size=(2, n_kv, 5, 3))
    r = rng.normal(size=(2, n_heads, 5, 3))
    dw, dv = grouped_mix_backward(weights, v, r)

    def loss():
        return np.sum(mix_values(weights, v) * r)

    assert_close(dw, numerical_grad(loss, weights))
    assert_close(dv, numerical_grad(loss, v))


def test_silu_and_swiglu(rng):
    x = rng.normal(size=(3, 4)) * 3
    up = rng.normal(size=(3, 4))
    r = rng.normal(size=(3, 4))
    assert_close(silu_backward(x, r), numerical_grad(lambda: np.sum(silu(x) * r), x))
    d_gate, d_up = swiglu_backward(x, up, r)

    def loss():
        return np.sum(silu(x) * up * r)

    assert_close(d_gate, numerical_grad(loss, x))
    assert_close(d_up, numerical_grad(loss, up))


def test_residual(rng):
    x = rng.normal(size=(2, 3))
    w = rng.normal(size=(3, 3))
    r = rng.normal(size=(2, 3))
    # y = x + x @ w.T: the skip path and the branch each pass the gradient on unchanged
    d_skip, d_branch = residual_backward(r)
    d_x_branch, _ = linear_backward(x, w, d_branch)
    assert_close(d_skip + d_x_branch, numerical_grad(lambda: np.sum((x + x @ w.T) * r), x))


def test_cross_entropy(rng):
    logits = rng.normal(size=(5, 7))
    targets = np.array([0, 3, 6, 3, 1])
    grad = cross_entropy_backward(logits, targets)
    assert_close(grad, numerical_grad(lambda: cross_entropy(logits, targets), logits))
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)  # softmax minus one-hot


def test_uniform_logits_cost_log_vocab():
    assert cross_entropy(np.zeros((3, 8193)), np.array([0, 5, 8192])) == pytest.approx(np.log(8193))


@pytest.mark.parametrize("chunk", [2, 3, 100])
def test_fused_tied_head(rng, chunk):
    """Head matmul + cross-entropy, chunked, equals the plain formulas and the numbers."""
    h = rng.normal(size=(5, 4))
    w = rng.normal(size=(9, 4))  # the (tied) embedding matrix
    targets = np.array([1, 8, 0, 8, 4])
    loss, dh, dw = head_loss_and_backward(h, w, targets, chunk=chunk)
    assert loss == pytest.approx(cross_entropy(h @ w.T, targets), rel=1e-12)

    def f():
        return cross_entropy(h @ w.T, targets)

    assert_close(dh, numerical_grad(f, h))
    assert_close(dw, numerical_grad(f, w))


def test_dropout_mask_scales_and_is_seeded():
    mask = dropout_mask(np.random.default_rng(0), (200, 50), 0.1)
    assert set(np.unique(mask).tolist()) == {0.0, np.float32(1 / 0.9)}
    assert abs(float((mask == 0).mean()) - 0.1) < 0.02
    assert np.array_equal(mask, dropout_mask(np.random.default_rng(0), (200, 50), 0.1))


# -- the whole model -----------------------------------------------------------------------

GRAD_CONFIG = LlamaConfig(
    vocab_size=37,
    hidden_size=16,
    intermediate_size=24,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=8,
)


@pytest.mark.parametrize("tied", [True, False])
def test_whole_model_gradient(tied):
    """Every parameter tensor, a sample of its entries, against finite differences."""
    config = replace(GRAD_CONFIG, tie_word_embeddings=tied)
    model = model_astype(init_random(config, seed=3, std=0.3), np.float64)
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, config.vocab_size, size=(3, 7))
    targets = rng.integers(0, config.vocab_size, size=(3, 7))
    _, grads = loss_and_grads(model, tokens, targets)
    params = parameters(model)
    assert set(grads) == set(params)
    assert ("lm_head" in params) is not tied

    def loss() -> float:
        return forward_train(model, tokens, targets)[0]

    h = 1e-6
    for name, param in params.items():
        assert grads[name].shape == param.shape
        flat = param.reshape(-1)  # a view: edits change the model
        picks = rng.choice(flat.size, size=min(flat.size, 8), replace=False)
        for i in picks:
            old = flat[i]
            flat[i] = old + h
            up = loss()
            flat[i] = old - h
            down = loss()
            flat[i] = old
            numeric = (up - down) / (2 * h)
            analytic = grads[name].reshape(-1)[i]
            assert abs(analytic - numeric) <= 1e-7 + 1e-5 * abs(numeric), (name, i)


def test_whole_model_gradient_is_dense_where_it_should_be():
    model = model_astype(init_random(GRAD_CONFIG, seed=3, std=0.3), np.float64)
    tokens = np.array([[1, 2, 3, 4]])
    _, grads = loss_and_grads(model, tokens, np.array([[2, 3, 4, 5]]))
    for name, grad in grads.items():
        assert np.all(np.isfinite(grad)), name
        if name != "embed":
            assert np.any(grad != 0.0), name


def test_training_forward_gives_the_inference_logits(tiny_model):
    """The training forward (batched) computes what core.model.forward computes."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, tiny_model.config.vocab_size, size=(3, 20))
    batched = forward_logits(tiny_model, tokens)
    for row, logits in zip(tokens, batched, strict=True):
        np.testing.assert_allclose(logits, forward(tiny_model, row), rtol=1e-4, atol=2e-5)


def test_loss_equals_mean_token_nll_without_dropout(tiny_model):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 8193, size=(2, 9))
    targets = rng.integers(0, 8193, size=(2, 9))
    loss, _ = forward_train(tiny_model, tokens, targets)
    nll = token_nll(tiny_model, tokens, targets)
    assert loss == pytest.approx(float(nll.mean()), rel=1e-6)
    logits = forward(tiny_model, tokens[0])
    assert nll[:9] == pytest.approx(
        -(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))[np.arange(9), targets[0]],
        rel=1e-4,
    )


def test_dropout_is_training_only_and_reproducible(tiny_model):
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 8193, size=(2, 9))
    targets = rng.integers(0, 8193, size=(2, 9))
    plain, _ = forward_train(tiny_model, tokens, targets)
    a, _ = forward_train(tiny_model, tokens, targets, 0.3, np.random.default_rng(5))
    b, _ = forward_train(tiny_model, tokens, targets, 0.3, np.random.default_rng(5))
    assert a == b != plain
    with pytest.raises(ValueError, match="random generator"):
        forward_train(tiny_model, tokens, targets, 0.3, None)


def test_gradient_with_dropout_matches_finite_differences():
    """With the masks fixed (same seed each call), dropout is a linear op with a gradient."""
    model = model_astype(init_random(GRAD_CONFIG, seed=4, std=0.3), np.float64)
    tokens = np.array([[3, 1, 4, 1, 5]])
    targets = np.array([[1, 4, 1, 5, 9]])
    _, grads = loss_and_grads(model, tokens, targets, 0.25, np.random.default_rng(9))
    w = model.layers[0].w_down
    num = numerical_grad(
        lambda: forward_train(model, tokens, targets, 0.25, np.random.default_rng(9))[0], w
    )
    assert_close(grads["layers.0.w_down"], num, tol=1e-6)
