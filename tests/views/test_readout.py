"""Display-consistent softmax read-outs: a calculator agrees with every printed row."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.views.readout import (
    check_softmax_text,
    logsumexp,
    percent_text,
    rounded,
    softmax_readout,
)


def test_rounded_is_what_format_prints():
    for v in (2.40760596, -0.00004, 13.28505, 1e-9, -7.99995):
        for d in (0, 2, 4):
            assert f"{rounded(v, d):.{d}f}" == f"{v:.{d}f}"


def test_logsumexp_matches_the_definition_and_does_not_overflow():
    x = np.array([1.0, 2.0, 3.0])
    assert math.isclose(logsumexp(x), math.log(np.exp(x).sum()))
    assert math.isclose(logsumexp(np.array([1000.0, 1000.0])), 1000 + math.log(2))
    assert math.isclose(logsumexp(x, np.array([True, False, True])), math.log(math.e + math.e**3))


def test_probabilities_are_derived_from_the_rounded_numbers():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 500)
    ids = list(np.argsort(-logits)[:20])
    r = softmax_readout(logits, ids, decimals=4)
    for shown, p in zip(r.logits, r.probs, strict=True):
        assert p == math.exp(shown - r.lse)  # exactly the calculator's answer
    # pairwise: p_i / p_j = exp(l_i - l_j) between printed rows
    for i in range(len(ids)):
        for j in range(len(ids)):
            assert math.isclose(r.probs[i] / r.probs[j], math.exp(r.logits[i] - r.logits[j]))


def test_derived_probabilities_stay_within_rounding_of_the_true_ones():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, 8193).astype(np.float32)
    ids = list(np.argsort(-logits)[:30])
    r = softmax_readout(logits, ids, decimals=4)
    true = np.exp(logits.astype(np.float64) - logsumexp(logits))
    for i, token in enumerate(ids):
        assert r.true_probs[i] == float(true[token]) or math.isclose(r.true_probs[i], true[token])
        # |logit - shown| <= 5e-5 and |lse - shown| <= 5e-5: relative error <= e^1e-4 - 1
        assert abs(r.probs[i] / true[token] - 1) <= math.expm1(1e-4) + 1e-12


def test_kept_mask_zeroes_the_others_and_renormalises():
    logits = np.array([3.0, 2.0, 1.0, 0.0])
    keep = np.array([True, True, False, False])
    r = softmax_readout(logits, [0, 1, 2], keep=keep)
    assert r.probs[2] == 0.0 and r.n_terms == 2
    assert math.isclose(r.probs[0] + r.probs[1], 1.0, rel_tol=2e-4)


def test_check_softmax_text_catches_a_wrong_digit_and_passes_derived_tables():
    logits = np.array([5.1, 4.3, 3.2, 3.0, 2.2])
    r = softmax_readout(logits, range(5))
    lt = [f"{v:.4f}" for v in r.logits]
    pt = [percent_text(p) for p in r.probs]
    assert check_softmax_text(lt, pt, f"{r.lse:.4f}") == []
    bad = pt[:]
    bad[1] = "99.99%"
    problems = check_softmax_text(lt, bad, f"{r.lse:.4f}")
    assert len(problems) == 1 and problems[0].startswith("row 1")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=2, max_size=40), st.integers(2, 5))
def test_any_table_checks_out(values, decimals):
    logits = np.array(values)
    r = softmax_readout(logits, range(len(values)), decimals=decimals)
    lt = [f"{v:.{decimals}f}" for v in r.logits]
    pt = [percent_text(p) for p in r.probs]
    assert check_softmax_text(lt, pt, f"{r.lse:.{decimals}f}") == []
