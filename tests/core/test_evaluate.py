"""Evaluation helpers checked on tiny hand-computed cases, then on a seeded random model."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from llm_anatomy_tui.core import evaluate
from llm_anatomy_tui.core.evaluate import (
    ComparisonAccumulator,
    EvalDataError,
    compare_models,
    eval_stories_path,
    eval_tokens,
    iter_compare_models,
    kl_divergence,
    load_eval_stories,
    log_softmax,
    perplexity,
    perplexity_from_nll,
    split_windows,
    token_nll,
    top1_agreement,
)
from llm_anatomy_tui.core.model import forward
from llm_anatomy_tui.core.ops import softmax
from llm_anatomy_tui.core.quant import quantize_model


def test_module_doctests():
    assert doctest.testmod(evaluate).failed == 0


def test_log_softmax_is_stable_for_huge_logits():
    logits = np.array([[1e4, 1e4 - math.log(3), -1e4]])  # exp(1e4) alone would overflow
    p = np.exp(log_softmax(logits))
    assert np.isfinite(p).all()
    assert p[0].tolist() == pytest.approx([0.75, 0.25, 0.0])


def test_kl_hand_computed():
    p, q = np.log([0.5, 0.5]), np.log([0.75, 0.25])
    want = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # 0.143841...
    assert float(kl_divergence(p, q)) == pytest.approx(want, rel=1e-12)
    # not symmetric: KL(Q || P) differs
    back = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(kl_divergence(q, p)) == pytest.approx(back, rel=1e-12)


def test_kl_is_zero_for_the_same_distribution_and_ignores_logit_shifts():
    logits = np.random.default_rng(0).normal(size=(5, 100))
    assert np.all(kl_divergence(logits, logits) == 0.0)
    assert np.allclose(kl_divergence(logits, logits + 7.0), 0.0, atol=1e-12)
    assert kl_divergence(logits, logits[::-1]).shape == (5,)


def test_top1_and_nll_and_perplexity_hand_computed():
    ref = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 5.0]])
    got = np.array([[2.0, 1.0, 0.0], [3.0, 2.0, 1.0], [0.0, 0.0, 1.0]])
    assert top1_agreement(ref, got) == pytest.approx(2 / 3)
    uniform = np.zeros((2, 4))
    nll = token_nll(uniform, np.array([0, 3]))
    assert nll.tolist() == pytest.approx([math.log(4)] * 2)
    assert perplexity_from_nll(nll) == pytest.approx(4.0)
    probs = np.log([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    nll = token_nll(probs, np.array([0, 2]))
    assert perplexity_from_nll(nll) == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.8)) / 2))


def test_split_windows():
    assert [w.tolist() for w in split_windows([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4]]
    assert [w.tolist() for w in split_windows([1, 2, 3, 4, 5], 10)] == [[1, 2, 3, 4, 5]]
    assert split_windows([1], 4) == []
    with pytest.raises(ValueError):
        split_windows([1, 2, 3], 1)


def test_perplexity_matches_an_independent_softmax(tiny_model):
    tokens = np.arange(200, 260)
    context = tiny_model.config.max_position_embeddings  # 64: one window
    probs = softmax(forward(tiny_model, tokens[:-1]).astype(np.float64))
    manual = math.exp(-np.mean(np.log(probs[np.arange(59), tokens[1:]])))
    assert perplexity(tiny_model, tokens, context) == pytest.approx(manual, rel=1e-6)


def test_comparing_a_model_with_itself(tiny_model):
    tokens = np.arange(100, 300)  # 200 tokens: 4 windows of the tiny model's 64
    events = list(iter_compare_models(tiny_model, tiny_model, tokens))
    assert [e.done for e in events] == [1, 2, 3, 4] and events[-1].total == 4
    assert all(e.result is None for e in events[:-1])
    r = events[-1].result
    assert r.n_predictions == 63 * 3 + 7
    assert r.kl_mean == 0.0 and r.kl_max == 0.0 and r.top1_agreement == 1.0
    assert r.perplexity_reference == r.perplexity_candidate
    assert r.perplexity_reference == pytest.approx(perplexity(tiny_model, tokens))


def test_a_quantized_model_drifts_and_the_accumulator_agrees(tiny_model):
    tokens = np.arange(100, 228)
    q = quantize_model(tiny_model, "Q4_0").model
    seen = []
    r = compare_models(tiny_model, q, tokens, progress=seen.append)
    assert len(seen) == 2 and r.kl_mean > 0 and r.kl_max >= r.kl_mean
    acc = ComparisonAccumulator()
    for w in split_windows(tokens, 64):
        acc.add(forward(tiny_model, w[:-1]), forward(q, w[:-1]), w[1:])
    assert acc.result() == r
    with pytest.raises(ValueError):
        ComparisonAccumulator().result()
    with pytest.raises(ValueError, match="fewer than 2"):
        compare_models(tiny_model, q, [5])


def test_shipped_stories_load_and_are_small():
    path = eval_stories_path()
    assert path.stat().st_size < 40_000
    stories = load_eval_stories()
    assert len(stories) == 50
    assert stories[0].startswith("Spot. Spot saw the shiny car")
    assert all("<|endoftext|>" not in s for s in stories)


def test_missing_stories_give_a_clear_error(tmp_path):
    with pytest.raises(EvalDataError, match="not found"):
        load_eval_stories(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("<|endoftext|>\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match="no stories"):
        load_eval_stories(empty)


def test_eval_tokens_separates_stories_with_endoftext():
    tokens = eval_tokens()
    assert (tokens == 8192).sum() == 50 and tokens[-1] == 8192
    assert tokens.max() <= 8192 and tokens.min() >= 0
    assert eval_tokens(max_tokens=100).tolist() == tokens[:100].tolist()


@pytest.mark.parametrize("chunk_numbers", [1, 3 * 300, 2**19])
def test_the_accumulator_in_chunks_equals_the_whole_window_formulas(monkeypatch, chunk_numbers):
    """Rows compared a few at a time (to bound float64 temporaries) give the same figures
    as the whole-window functions: 1 row, 3 rows, and every row in one chunk."""
    rng = np.random.default_rng(11)
    ref = rng.normal(0, 3, (40, 300)).astype(np.float32)
    got = (ref + rng.normal(0, 0.5, ref.shape)).astype(np.float32)
    got[7] = ref[7]  # one identical row: KL exactly 0 there
    targets = rng.integers(0, 300, 40)
    monkeypatch.setattr(evaluate, "CHUNK_NUMBERS", chunk_numbers)
    acc = ComparisonAccumulator()
    acc.add(ref, got, targets)
    r = acc.result()
    kl = kl_divergence(ref, got)
    assert r.n_predictions == 40
    assert r.kl_mean == pytest.approx(kl.mean(), rel=1e-12)
    assert r.kl_max == pytest.approx(kl.max(), rel=1e-12)
    assert r.top1_agreement == top1_agreement(ref, got)
    assert r.nll_reference == pytest.approx(token_nll(ref, targets).mean(), rel=1e-12)
    assert r.nll_candidate == pytest.approx(token_nll(got, targets).mean(), rel=1e-12)
