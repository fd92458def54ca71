"""The numbers chapter 5 prints: rows, cuts, normalisers; the parsing of its fields."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_anatomy_tui.core.sampling import SamplingSettings, sample
from llm_anatomy_tui.views.readout import check_softmax_text, percent_text
from llm_anatomy_tui.views.sampling_view import (
    SettingError,
    parse_count,
    parse_seed,
    parse_settings,
    parse_stops,
    sampling_table,
    settings_fields,
)

RNG_SEED = 7


def logits_row(n: int = 500, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, n).astype(np.float32)


def run(settings: SamplingSettings, history=(), seed=RNG_SEED):  # noqa: ANN001, ANN201
    return sample(logits_row(), settings, np.random.default_rng(seed), history=history)


def test_rows_are_the_top_tokens_by_adjusted_logit_with_consistent_numbers():
    result = run(SamplingSettings(temperature=0.7, top_k=12, top_p=0.9, min_p=0.02))
    table = sampling_table(result, top_n=20)
    z = np.asarray(result.stage("temperature").base)
    expected = list(np.argsort(-z, kind="stable")[:20])
    assert [r.token for r in table.rows][:20] == expected
    assert [r.rank for r in table.rows][:20] == list(range(20))
    # printed numbers, checked as a reader would
    lt = [f"{r.logit:.4f}" for r in table.rows]
    pt = [percent_text(r.p) for r in table.rows]
    assert check_softmax_text(lt, pt, f"{table.lse:.4f}") == []
    kept = [r for r in table.rows if r.p_final is not None]
    zt = [f"{r.z:.4f}" for r in kept]
    ft = [percent_text(r.p_final) for r in kept]
    assert check_softmax_text(zt, ft, f"{table.lse_final:.4f}") == []
    # and they are the model's numbers to display precision
    final = result.final.probs
    for r in kept:
        assert abs(r.p_final - final[r.token]) <= 1.5e-4 * final[r.token] + 1e-12
    assert table.n_kept == result.final.n_kept
    assert math.isclose(sum(final[c] for c in table.candidates), sum(table.candidate_probs),
                        rel_tol=1e-3)  # fmt: skip


def test_each_cut_names_its_filter():
    result = run(SamplingSettings(top_k=5))
    table = sampling_table(result)
    assert [r.cut for r in table.rows[:5]] == [None] * 5
    assert all(r.cut == "top-k" and r.p_final is None for r in table.rows[5:20])
    top_p = sampling_table(run(SamplingSettings(top_p=0.0)))
    assert top_p.n_kept == 1 and top_p.rows[0].p_final == 1.0
    assert {r.cut for r in top_p.rows[1:20]} == {"top-p"}
    greedy = sampling_table(run(SamplingSettings(temperature=0)))
    assert greedy.rows[0].p_final == 1.0 and {r.cut for r in greedy.rows[1:20]} == {"greedy"}
    assert greedy.chosen == int(np.argmax(logits_row()))
    min_p = sampling_table(run(SamplingSettings(min_p=0.5)))
    assert {r.cut for r in min_p.rows if r.cut} == {"min-p"}
    for r in min_p.rows:  # what a cut token had, before the filter
        assert r.p_before_cut > 0


def test_penalties_move_the_seen_tokens():
    row = logits_row()
    top = int(np.argmax(row))
    result = run(SamplingSettings(presence_penalty=2.0), history=[top, top])
    table = sampling_table(result)
    by_token = {r.token: r for r in table.rows}
    assert by_token[top].penalty == pytest.approx(-2.0, abs=1e-6)
    assert table.adjusted
    assert all(r.penalty == 0 for r in table.rows if r.token != top)


def test_chosen_token_outside_the_top_rows_is_appended():
    result = run(SamplingSettings(temperature=100))
    table = sampling_table(result, top_n=10)
    assert table.chosen == result.token
    if table.chosen_rank >= 10:
        assert len(table.rows) == 11 and table.rows[-1].token == result.token


def test_forced_token_is_highlighted_instead_of_the_draw():
    result = run(SamplingSettings())
    other = int(np.argsort(-logits_row())[3])
    table = sampling_table(result, chosen=other)
    assert table.chosen == other and table.chosen_rank == 3


def test_parsing_fields():
    s = parse_settings({"temperature": "0.8", "top_k": "40", "top_p": "0.95",
                        "min_p": "0.05", "repetition_penalty": "1.1"})  # fmt: skip
    assert s == SamplingSettings(0.8, 40, 0.95, 0.05, 1.1)
    assert parse_settings(settings_fields(s)) == s
    assert parse_settings({}) == SamplingSettings()
    cases = {
        "top_p": ("1.5", "top-p must be between 0 and 1"),
        "temperature": ("-1", "temperature must be 0 (greedy) or at least"),
        "top_k": ("2.5", "top-k: '2.5' is not a whole number"),
        "min_p": ("abc", "min-p: 'abc' is not a number"),
        "repetition_penalty": ("0", "repetition penalty must be > 0"),
        "frequency_penalty": ("inf", "frequency penalty must be a finite number"),
    }
    for field, (text, message) in cases.items():
        with pytest.raises(
            SettingError, match=message.replace("(", r"\(").replace(")", r"\)")
        ) as e:
            parse_settings({field: text})
        assert e.value.field == field
    assert parse_settings({"temperature": "100"}).temperature == 100
    assert parse_settings({"top_k": "0"}).top_k == 0


def test_parsing_seed_count_and_stops():
    assert parse_seed("") == 0 and parse_seed("1,234") == 1234
    with pytest.raises(SettingError, match="seed must be between"):
        parse_seed("-1")
    with pytest.raises(SettingError, match="not a whole number"):
        parse_seed("x")
    assert parse_count("", 256) == 10 and parse_count("", 3) == 3
    with pytest.raises(SettingError, match="N must be between 1 and 256"):
        parse_count("0", 256)
    assert parse_stops("") == ()
    assert parse_stops(r"The end|\n|The end") == ("The end", "\n")


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(temperature=0.7),
        SamplingSettings(
            temperature=1.37, repetition_penalty=1.3, frequency_penalty=0.4, presence_penalty=0.25
        ),  # fmt: skip
        SamplingSettings(repetition_penalty=2.0),
    ],
)
def test_z_is_computed_from_the_printed_logit(settings):
    """A reader takes the printed logit, applies the printed rule and divides by T: the
    printed z agrees to its last digit (before: z came from the unrounded logit)."""
    row = logits_row()
    history = [int(i) for i in np.argsort(-row)[:6]] * 2 + [int(np.argsort(-row)[7])]
    table = sampling_table(run(settings, history=history), top_n=20)
    uses = {t: history.count(t) for t in set(history)}
    r, t = settings.repetition_penalty, settings.temperature
    for row_ in table.rows:
        logit = float(f"{row_.logit:.4f}")  # as printed
        if row_.token in uses:  # the rule, by hand
            logit = logit / r if logit > 0 else logit * r
            logit -= settings.frequency_penalty * uses[row_.token] + settings.presence_penalty
        assert f"{row_.z:.4f}" == f"{logit / t:.4f}", row_.token


def test_penalty_rule_names_division_for_the_repetition_penalty():
    from llm_anatomy_tui.views.sampling_view import penalty_rule

    assert "÷ 1.5" in penalty_rule(SamplingSettings(repetition_penalty=1.5))
    assert penalty_rule(SamplingSettings()) == ""
