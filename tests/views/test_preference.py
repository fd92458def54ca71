"""Chapter 13's numbers against independent references: the inference forward for the
log-probabilities, central finite differences for the gradients, the formula for the DPO
loss, an explicit sum for the KL."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import forward, init_random
from llm_anatomy_tui.core.train.backward import model_astype, parameters
from llm_anatomy_tui.views.preference import (
    DPOState,
    chat_template_view,
    completion_logprob_grad,
    completion_logprobs,
    dpo_gradients,
    dpo_loss,
    dpo_steps,
    find_chat_template,
    make_pair,
    pair_sequence,
    score_pair,
    start_dpo,
)

CONFIG = LlamaConfig(
    vocab_size=41,
    hidden_size=16,
    intermediate_size=24,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=12,
)
PROMPT = [3, 7, 1, 9]
A = [4, 4, 20]
B = [30, 2]


def model64(seed: int = 3, tied: bool = True):
    return model_astype(init_random(replace(CONFIG, tie_word_embeddings=tied), seed=seed, std=0.3),
                        np.float64)  # fmt: skip


def reference_logprobs(model, prompt, completion) -> list[float]:
    """log p of each completion token from the inference forward, one prefix at a time."""
    out = []
    for i, token in enumerate(completion):
        logits = forward(model, prompt + completion[:i])[-1].astype(np.float64)
        z = logits - logits.max()
        out.append(float(z[token] - np.log(np.exp(z).sum())))
    return out


def test_completion_logprobs_match_the_inference_forward():
    model = init_random(CONFIG, seed=5, std=0.3)
    inputs, targets, n, dropped = pair_sequence(model, PROMPT, A, None)
    assert (n, dropped) == (3, 0)
    got = completion_logprobs(model, inputs, targets, n)
    np.testing.assert_allclose(got, reference_logprobs(model, PROMPT, A), rtol=1e-5, atol=1e-5)


def test_long_prompt_loses_its_oldest_tokens_and_empty_prompt_uses_the_start_token():
    model = init_random(CONFIG, seed=5)
    long_prompt = list(range(1, 20))
    inputs, targets, n, dropped = pair_sequence(model, long_prompt, A, None)
    assert inputs.size == CONFIG.max_position_embeddings
    assert dropped == len(long_prompt) + len(A) - 1 - CONFIG.max_position_embeddings
    assert targets[-n:].tolist() == A
    inputs, _, _, _ = pair_sequence(model, [], A, 40)
    assert inputs[0] == 40
    with pytest.raises(ValueError, match="empty"):
        pair_sequence(model, PROMPT, [], None)
    with pytest.raises(ValueError, match="window"):
        pair_sequence(model, PROMPT, list(range(12)), None)


@pytest.mark.parametrize("tied", [True, False])
def test_sequence_logprob_gradient_matches_finite_differences(tied):
    model = model64(tied=tied)
    inputs, targets, n, _ = pair_sequence(model, PROMPT, A, None)
    logps, grads = completion_logprob_grad(model, inputs, targets, n)
    np.testing.assert_allclose(logps, reference_logprobs(model, PROMPT, A), rtol=1e-10)

    def total() -> float:
        return float(np.sum(completion_logprobs(model, inputs, targets, n)))

    rng = np.random.default_rng(0)
    h = 1e-6
    for name, param in parameters(model).items():
        flat = param.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 6), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = total()
            flat[i] = old - h
            down = total()
            flat[i] = old
            numeric = (up - down) / (2 * h)
            assert abs(grads[name].reshape(-1)[i] - numeric) <= 1e-7 + 1e-5 * abs(numeric), name
    # the rows of the embedding for tokens that never occur get nothing
    unused = sorted(set(range(CONFIG.vocab_size)) - set(PROMPT + A)) if not tied else []
    if unused:
        assert np.all(grads["embed"][unused] == 0.0)


def test_dpo_loss_is_the_formula():
    rng = np.random.default_rng(1)
    for _ in range(50):
        beta = float(rng.uniform(0, 3))
        pa, ra, pb, rb = rng.normal(-10, 3, size=4)
        z = (pa - ra) - (pb - rb)
        expected = -math.log(1.0 / (1.0 + math.exp(-beta * z)))
        assert dpo_loss(beta, pa, ra, pb, rb) == pytest.approx(expected, rel=1e-12)
    assert dpo_loss(0.0, -1.0, -5.0, -9.0, -2.0) == pytest.approx(math.log(2.0))
    assert math.isfinite(dpo_loss(10.0, 0.0, 0.0, 1e4, 0.0))  # no overflow


def test_dpo_gradient_matches_finite_differences():
    model = model64(seed=4)
    pair = make_pair(model, PROMPT, A, B, None)
    ref = score_pair(model, pair, 0.5)
    # move the policy off the reference so z != 0
    policy = model64(seed=4)
    for p in parameters(policy).values():
        p += 0.01 * np.sin(np.arange(p.size)).reshape(p.shape)
    beta = 0.5
    loss, grads = dpo_gradients(policy, pair, beta, ref.ref_a.total, ref.ref_b.total)

    def value() -> float:
        lp_a = np.sum(completion_logprobs(policy, *pair.a_seq))
        lp_b = np.sum(completion_logprobs(policy, *pair.b_seq))
        return dpo_loss(beta, lp_a, ref.ref_a.total, lp_b, ref.ref_b.total)

    assert loss == pytest.approx(value(), rel=1e-10)
    rng = np.random.default_rng(2)
    for name, param in parameters(policy).items():
        flat = param.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 4), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            up = value()
            flat[i] = old - 1e-6
            down = value()
            flat[i] = old
            numeric = (up - down) / 2e-6
            assert abs(grads[name].reshape(-1)[i] - numeric) <= 1e-8 + 1e-5 * abs(numeric), name


def kl_reference(policy, reference, prompt, completion) -> list[float]:
    out = []
    for i in range(len(completion)):
        ctx = prompt + completion[:i]
        p = np.exp(forward(policy, ctx)[-1].astype(np.float64))
        q = np.exp(forward(reference, ctx)[-1].astype(np.float64))
        p, q = p / p.sum(), q / q.sum()
        out.append(float(np.sum(p * np.log(p / q))))
    return out


def test_dpo_steps_lower_the_loss_move_away_from_the_reference_and_leave_the_model_alone():
    model = init_random(CONFIG, seed=6, std=0.3)
    before = {k: v.copy() for k, v in model.tensors().items()}
    pair = make_pair(model, PROMPT, A, B, None)
    scores = score_pair(model, pair, 0.3)
    state = start_dpo(model, scores)
    first = state.points[0]
    assert first.loss == pytest.approx(math.log(2.0)) and first.kl == 0.0
    after = dpo_steps(state, pair, scores, beta=0.3, n_steps=6, lr=3e-3)
    assert len(state.points) == 1  # the input state is not changed
    losses = [p.loss for p in after.points]
    assert losses[-1] < losses[0]
    assert after.points[-1].margin > 0 and after.points[-1].p_prefer_a > 0.5
    # the KL on screen is the explicit sum over the completion positions of A and B
    expected = np.mean(
        kl_reference(after.policy, model, PROMPT, A) + kl_reference(after.policy, model, PROMPT, B)
    )
    assert after.points[-1].kl == pytest.approx(expected, rel=1e-3, abs=1e-6)
    # the displayed loss is the formula on the displayed log-probabilities
    last = after.points[-1]
    assert last.loss == pytest.approx(
        dpo_loss(last.beta, after.last_a.total, scores.ref_a.total, after.last_b.total,
                 scores.ref_b.total))  # fmt: skip
    for name, arr in model.tensors().items():
        assert np.array_equal(arr, before[name]), name


def test_beta_zero_and_identical_completions_learn_nothing():
    model = init_random(CONFIG, seed=6, std=0.3)
    for beta, b in ((0.0, B), (0.5, A)):
        pair = make_pair(model, PROMPT, A, b, None)
        assert pair.identical is (b == A)
        scores = score_pair(model, pair, beta)
        state = start_dpo(model, scores)
        after = dpo_steps(state, pair, scores, beta=beta, n_steps=2, lr=1e-2)
        for p in after.points:
            assert p.loss == pytest.approx(math.log(2.0))
        for name, arr in after.policy.tensors().items():
            assert np.array_equal(arr, model.tensors()[name]), name


def test_absurd_dpo_learning_rate_puts_the_copy_back():
    model = init_random(CONFIG, seed=6, std=0.3)
    pair = make_pair(model, PROMPT, A, B, None)
    scores = score_pair(model, pair, 1.0)
    state = start_dpo(model, scores)
    after = dpo_steps(state, pair, scores, beta=1.0, n_steps=5, lr=1e38)
    assert "NaN or infinite" in after.message
    assert after.points == state.points
    assert isinstance(after, DPOState)


def test_cancelled_dpo_stops_between_steps():
    class Cancel:
        def __init__(self):
            self.reports = 0

        @property
        def cancelled(self):
            return self.reports >= 2

        def report(self, fraction, value=None):
            self.reports += value is not None  # a finished step (mid-step reports carry none)

    model = init_random(CONFIG, seed=6, std=0.3)
    pair = make_pair(model, PROMPT, A, B, None)
    scores = score_pair(model, pair, 0.3)
    after = dpo_steps(start_dpo(model, scores), pair, scores, 0.3, n_steps=10, lr=1e-3,
                      task=Cancel())  # fmt: skip
    assert len(after.points) == 3  # step 0 and the two steps before the cancel


def test_chat_template_read_defensively_and_rendered():
    chatml = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{{ message['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )

    class Config:
        chat_template = chatml

    class Loaded:
        config = Config()

    assert find_chat_template(object(), Loaded()) == chatml
    assert find_chat_template(object()) is None
    view = chat_template_view(chatml, "Hello")
    assert view.special_tokens == ("<|im_start|>", "<|im_end|>")
    assert view.rendered == "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    assert chat_template_view("{{ broken", "Hi").how == "raw"
