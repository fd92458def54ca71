"""Sampling: every filter's definition, its edge cases, the seeded draw, stop sequences."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core import sampling
from llm_anatomy_tui.core.sampling import (
    GREEDY,
    STAGE_NAMES,
    SamplingError,
    SamplingSettings,
    find_stop,
    held_back,
    rank_tokens,
    sample,
)

logit_rows = st.lists(
    st.floats(-30, 30, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
).map(lambda xs: np.array(xs, dtype=np.float32))

any_settings = st.builds(
    SamplingSettings,
    temperature=st.one_of(st.just(0.0), st.floats(1e-3, 100.0)),
    top_k=st.integers(0, 70),
    top_p=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)),
    min_p=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
    repetition_penalty=st.floats(0.5, 3.0),
    frequency_penalty=st.floats(-2.0, 2.0),
    presence_penalty=st.floats(-2.0, 2.0),
)


def softmax64(x):
    z = np.asarray(x, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def test_module_doctests():
    assert doctest.testmod(sampling).failed == 0


@settings(max_examples=300, deadline=None)
@given(logits=logit_rows, s=any_settings, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_every_stage_is_a_distribution_and_the_draw_is_consistent(logits, s, seed, data):
    history = data.draw(st.lists(st.integers(0, logits.size - 1), max_size=10))
    result = sample(logits, s, np.random.default_rng(seed), history)
    assert [stage.name for stage in result.stages] == list(STAGE_NAMES)
    prev_keep = np.ones(logits.size, dtype=bool)
    for stage in result.stages:
        p = stage.probs
        assert np.isfinite(p).all() and (p >= 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(p[~stage.keep] == 0.0)
        assert stage.n_kept >= 1
        assert not np.any(stage.keep & ~prev_keep)  # filters only ever remove
        assert stage.n_removed == len(stage.removed)
        prev_keep = stage.keep
    d = result.draw
    assert result.final.keep[d.token]
    assert d.n_candidates == result.final.n_kept
    assert d.cdf_high - d.cdf_low == pytest.approx(result.prob, abs=1e-12)
    if s.greedy:
        assert d.u is None and d.n_candidates == 1
    else:
        assert d.cdf_low <= d.u < d.cdf_high or d.rank == d.n_candidates - 1
    ids, cdf = result.cumulative()
    assert ids[d.rank] == d.token and cdf[-1] == pytest.approx(1.0, abs=1e-12)


# -- top-k ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(logits=logit_rows, k=st.integers(1, 70))
def test_top_k_keeps_exactly_k_the_most_likely(logits, k):
    stage = sample(logits, SamplingSettings(top_k=k), np.random.default_rng(0)).stage("top_k")
    assert stage.n_kept == min(k, logits.size)
    kept = np.flatnonzero(stage.keep)
    if stage.n_removed:
        assert logits[kept].min() >= logits[~stage.keep].max()


def test_top_k_ties_go_to_the_lower_token_id():
    logits = np.array([1.0, 3.0, 2.0, 2.0, 2.0, 0.0], dtype=np.float32)
    stage = sample(logits, SamplingSettings(top_k=3), np.random.default_rng(0)).stage("top_k")
    assert np.flatnonzero(stage.keep).tolist() == [1, 2, 3]  # of the tied 2, 3, 4: ids 2 and 3
    assert stage.removed.tolist() == [4, 0, 5]  # most likely first, ties by id


def test_top_k_zero_and_top_k_beyond_the_vocabulary_are_off():
    logits = np.arange(5, dtype=np.float32)
    for k in (0, 5, 99):
        stage = sample(logits, SamplingSettings(top_k=k), np.random.default_rng(0)).stage("top_k")
        assert not stage.active and stage.n_kept == 5


# -- top-p ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(logits=logit_rows, p=st.floats(0.0, 1.0), t=st.floats(0.05, 5.0))
def test_top_p_keeps_the_smallest_prefix_whose_mass_reaches_p(logits, p, t):
    result = sample(logits, SamplingSettings(temperature=t, top_p=p), np.random.default_rng(0))
    before = result.stage("temperature").probs
    stage = result.stage("top_p")
    if p == 1.0:  # defined as off, even when fewer tokens would already hold all the mass
        assert not stage.active and stage.n_kept == logits.size
        return
    order = rank_tokens(result.stage("temperature").base)
    n = stage.n_kept
    # the kept set is a prefix of the most-likely-first order ...
    assert set(np.flatnonzero(stage.keep)) == set(order[:n].tolist())
    mass = np.cumsum(before[order])
    # ... it reaches p (or is everything) ...
    assert mass[n - 1] >= p - 1e-12 or n == logits.size
    # ... and one token fewer would not
    if n > 1:
        assert mass[n - 2] < p
    assert stage.removed_mass == pytest.approx(1.0 - mass[n - 1], abs=1e-9)


def test_top_p_worked_example():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.log(probs).astype(np.float32)
    rng = np.random.default_rng(0)
    for p, kept in ((0.0, 1), (0.5, 1), (0.51, 2), (0.8, 2), (0.81, 3), (0.96, 4), (1.0, 4)):
        stage = sample(logits, SamplingSettings(top_p=p), rng).stage("top_p")
        assert stage.n_kept == kept, (p, stage.note)
    final = sample(logits, SamplingSettings(top_p=0.8), rng).probs
    np.testing.assert_allclose(final, [0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=1e-6)


def test_top_p_zero_keeps_only_the_most_likely_token():
    logits = np.array([0.1, 2.0, 1.9], dtype=np.float32)
    for seed in range(20):
        assert sample(logits, SamplingSettings(top_p=0.0), np.random.default_rng(seed)).token == 1


# -- min-p, temperature, greedy ---------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(logits=logit_rows, m=st.floats(0.0, 1.0))
def test_min_p_keeps_tokens_above_a_fraction_of_the_top(logits, m):
    result = sample(logits, SamplingSettings(min_p=m), np.random.default_rng(0))
    p = softmax64(logits)
    want = p >= m * p.max()
    np.testing.assert_array_equal(result.stage("min_p").keep, want)


def test_temperature_zero_is_greedy_without_division_or_randomness():
    logits = np.array([0.5, 3.0, 3.0, -1.0], dtype=np.float32)
    rng = np.random.default_rng(42)
    state = rng.bit_generator.state
    result = sample(logits, GREEDY, rng)
    assert result.token == 1  # tie between 1 and 2: the lower id
    assert result.draw.u is None
    assert rng.bit_generator.state == state  # no draw taken
    assert result.probs.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert sample(logits, GREEDY, None).token == 1  # no generator needed


def test_temperature_scales_logits_and_extremes_stay_finite():
    logits = np.array([2.0, 1.0, 0.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    half = sample(logits, SamplingSettings(temperature=0.5), rng).stage("temperature")
    np.testing.assert_allclose(half.logits, [4.0, 2.0, 0.0])
    hot = sample(logits, SamplingSettings(temperature=100.0), rng).probs
    np.testing.assert_allclose(hot, 1 / 3, atol=0.01)  # nearly uniform
    cold = sample(logits, SamplingSettings(temperature=1e-6), rng).probs
    assert np.isfinite(cold).all() and cold[0] == 1.0
    big = np.array([1e4, -1e4, 0.0], dtype=np.float32)
    assert np.isfinite(sample(big, SamplingSettings(temperature=1e-6), rng).probs).all()


# -- penalties --------------------------------------------------------------------------------


def test_penalties_match_hand_computation():
    logits = np.array([2.0, -1.0, 0.5, 3.0, 0.0], dtype=np.float32)
    history = [0, 1, 1, 4, 0, 0]  # token 0 three times, 1 twice, 4 once; 2 and 3 never
    s = SamplingSettings(repetition_penalty=2.0, frequency_penalty=0.1, presence_penalty=0.5)
    stage = sample(logits, s, np.random.default_rng(0), history).stage("penalties")
    want = [
        2.0 / 2.0 - 0.1 * 3 - 0.5,  # positive: divided by r
        -1.0 * 2.0 - 0.1 * 2 - 0.5,  # negative: multiplied by r
        0.5,  # unseen: untouched
        3.0,
        0.0 * 2.0 - 0.1 * 1 - 0.5,  # zero stays zero under r
    ]
    np.testing.assert_allclose(stage.logits, want, atol=1e-12)
    assert stage.adjusted.tolist() == [0, 1, 4]
    assert stage.active and "3 tokens" in stage.note


def test_penalties_off_or_empty_history_change_nothing():
    logits = np.array([1.0, 2.0], dtype=np.float32)
    off = sample(logits, SamplingSettings(), np.random.default_rng(0), [0, 0]).stage("penalties")
    assert not off.active
    s = SamplingSettings(repetition_penalty=1.5)
    empty = sample(logits, s, np.random.default_rng(0), []).stage("penalties")
    assert not empty.active
    np.testing.assert_array_equal(empty.logits, logits)


# -- the draw ---------------------------------------------------------------------------------


def test_same_seed_same_choices_and_frequencies_follow_the_distribution():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4])).astype(np.float32)

    def run(seed):
        rng = np.random.default_rng(seed)
        return [sample(logits, SamplingSettings(), rng).token for _ in range(4000)]

    a, b = run(7), run(7)
    assert a == b
    assert a != run(8)
    freq = np.bincount(a, minlength=4) / len(a)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.03)


def test_draw_walks_the_cumulative_distribution_most_likely_first():
    logits = np.log(np.array([0.2, 0.5, 0.3])).astype(np.float32)

    class FixedU:
        def __init__(self, u):
            self.u = u

        def random(self):
            return self.u

    cases = [(0.0, 1), (0.49, 1), (0.51, 2), (0.79, 2), (0.81, 0), (0.999, 0)]
    for u, token in cases:
        d = sample(logits, SamplingSettings(), FixedU(u)).draw
        assert d.token == token, (u, d)
    d = sample(logits, SamplingSettings(), FixedU(0.6)).draw
    assert (d.rank, d.cdf_low, d.cdf_high) == (1, pytest.approx(0.5), pytest.approx(0.8))


# -- settings and bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 1e-9}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"top_k": -1}, "top-k"),
        ({"top_k": 2.5}, "top-k"),
        ({"top_k": True}, "top-k"),
        ({"top_p": 1.5}, "top-p"),
        ({"top_p": -0.1}, "top-p"),
        ({"min_p": 2.0}, "min-p"),
        ({"repetition_penalty": 0.0}, "repetition"),
        ({"frequency_penalty": math.nan}, "frequency"),
        ({"presence_penalty": "1"}, "presence"),
    ],
)
def test_bad_settings_are_refused_with_one_line(kwargs, message):
    with pytest.raises(SamplingError, match=message) as info:
        SamplingSettings(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_logits_and_missing_generator_are_refused():
    with pytest.raises(SamplingError, match="NaN"):
        sample(np.array([1.0, np.nan]), SamplingSettings(), np.random.default_rng(0))
    with pytest.raises(SamplingError, match="one row"):
        sample(np.zeros((2, 3)), SamplingSettings(), np.random.default_rng(0))
    with pytest.raises(SamplingError, match="Generator"):
        sample(np.zeros(3), SamplingSettings(), None)
    with pytest.raises(SamplingError, match="history"):
        sample(np.zeros(3), SamplingSettings(presence_penalty=1.0), np.random.default_rng(0), [3])


def test_results_are_read_only_and_do_not_freeze_the_callers_array():
    logits = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    result = sample(logits, SamplingSettings(temperature=0.7, top_k=2), np.random.default_rng(0))
    logits[0] = 99.0  # the caller may keep using its array ...
    assert result.raw.logits[0] == 1.0  # ... the result kept its own copy
    for stage in result.stages:
        for arr in (stage.base, stage.keep, stage.probs, stage.logits):
            with pytest.raises(ValueError):
                arr[0] = 0


def test_describe_names_only_what_is_on():
    assert SamplingSettings().describe() == "temperature 1"
    assert GREEDY.describe() == "greedy (temperature 0)"
    s = SamplingSettings(temperature=0.8, top_k=40, top_p=0.95, presence_penalty=0.2)
    assert s.describe() == "temperature 0.8, top-k 40, top-p 0.95, presence penalty 0.2"


# -- stop sequences ---------------------------------------------------------------------------


def test_find_stop_picks_the_earliest_and_cut_is_exact():
    text = "one. two! three"
    assert find_stop(text, ["!", "."]) == (3, ".")
    assert find_stop(text, ["four"]) is None
    i, _ = find_stop(text, ["two"])
    assert text[:i] == "one. "


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab é\n.", max_size=30),
    stops=st.lists(st.text(alphabet="ab é\n.", min_size=1, max_size=4), min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 30), max_size=8),
)
def test_streaming_with_held_back_text_prints_exactly_the_cut_text(text, stops, cuts):
    """Feed text in arbitrary chunks (tokens); print only what cannot still become part of a
    stop sequence. Nothing printed ever has to be taken back, and what is printed in the end
    is exactly the text seen so far cut before its first stop sequence."""
    bounds = sorted({c for c in cuts if c < len(text)} | {len(text)})
    printed, seen = "", ""
    start = 0
    for end in bounds:
        seen += text[start:end]
        start = end
        hit = find_stop(seen, stops)
        if hit is not None:
            assert hit[0] >= len(printed)  # the stop begins after everything printed
            printed += seen[len(printed) : hit[0]]
            break
        safe = len(seen) - held_back(seen, stops)
        assert safe >= len(printed)
        printed += seen[len(printed) : safe]
    else:
        printed += seen[len(printed) :]  # the end: flush
    hit = find_stop(seen, stops)
    assert printed == (seen[: hit[0]] if hit else text)
    assert not any(stop in printed for stop in stops)
