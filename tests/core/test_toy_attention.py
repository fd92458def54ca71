"""The toy attention lesson: a hand-computed case, a loop-based reference, and the story."""

from __future__ import annotations

import doctest
import math
from decimal import Decimal

import numpy as np
import pytest

from llm_anatomy_tui.core.lessons import toy_attention
from llm_anatomy_tui.core.lessons.toy_attention import (
    D_K,
    EMBEDDINGS,
    W_K,
    W_Q,
    W_V,
    WORDS,
    attend,
    attention_weights,
    project,
)

N = len(WORDS)


def test_doctests():
    assert doctest.testmod(toy_attention).failed == 0


def test_hand_computed_blue_under_the_causal_mask():
    """blue = [0.5, 0, 1, 0]; A = [0, 0, 0.2, 0]. Worked on paper:
    q(blue) = 0.5·[1,0,2,0] + 1·[2,2,-1,0] = [2.5, 2, 0, 0]
    k(A) = 0.2·[0,0,2,0] = [0, 0, 0.4, 0]            q·k(A) = 0
    k(blue) = 0.5·[3,0,0,0] + 1·[0,0,2,0] = [1.5, 0, 2, 0]   q·k(blue) = 3.75
    scaled by √4: 0, 1.875;  softmax: 1/(1+e^1.875), e^1.875/(1+e^1.875)
    v(A) = [0, 0, 0.2, 0], v(blue) = [1, 0, 1, 0]."""
    r = attend(WORDS.index("blue"), causal=True)
    assert r.q.tolist() == [2.5, 2.0, 0.0, 0.0]
    assert r.keys[0].tolist() == [0.0, 0.0, 0.4, 0.0]
    assert r.keys[1].tolist() == [1.5, 0.0, 2.0, 0.0]
    assert r.dots[:2].tolist() == [0.0, 3.75]
    assert r.scaled[:2].tolist() == [0.0, 1.875]
    e = math.exp(1.875)
    assert r.weights[0] == pytest.approx(1 / (1 + e), abs=1e-15)
    assert r.weights[1] == pytest.approx(e / (1 + e), abs=1e-15)
    assert np.all(r.weights[2:] == 0.0)  # future words: exactly zero
    w_blue = e / (1 + e)
    expected = [w_blue * 1.0, 0.0, (1 - w_blue) * 0.2 + w_blue * 1.0, 0.0]
    assert r.output == pytest.approx(expected, abs=1e-15)
    assert WORDS[r.top] == "blue"


def reference(query: int, causal: bool) -> tuple[list[float], list[float], list[float]]:
    """Plain loops over Python floats: scores, weights, output."""
    n, d = EMBEDDINGS.shape

    def matvec(x, w):  # noqa: ANN001, ANN202
        return [sum(x[i] * w[i][j] for i in range(d)) for j in range(w.shape[1])]

    xs = [[float(v) for v in row] for row in EMBEDDINGS]
    q = matvec(xs[query], W_Q)
    ks = [matvec(x, W_K) for x in xs]
    vs = [matvec(x, W_V) for x in xs]
    scores = [sum(a * b for a, b in zip(q, k, strict=True)) / math.sqrt(D_K) for k in ks]
    visible = [(not causal) or j <= query for j in range(n)]
    top = max(s for s, ok in zip(scores, visible, strict=True) if ok)
    exps = [math.exp(s - top) if ok else 0.0 for s, ok in zip(scores, visible, strict=True)]
    total = sum(exps)
    weights = [e / total for e in exps]
    out = [sum(weights[j] * vs[j][c] for j in range(n)) for c in range(len(vs[0]))]
    return scores, weights, out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("query", range(N))
def test_matches_a_loop_based_reference(query, causal):
    scores, weights, out = reference(query, causal)
    r = attend(query, causal)
    assert r.scaled == pytest.approx(scores, abs=1e-12)
    assert r.weights == pytest.approx(weights, abs=1e-12)
    assert r.output == pytest.approx(out, abs=1e-12)
    assert r.weights.sum() == pytest.approx(1.0, abs=1e-15)


def test_printed_scores_are_exact():
    """q, k, v have one decimal and q·k two, so the printed numbers are the numbers."""
    q, k, v = project()
    for arr, places in ((q, 1), (k, 1), (v, 1)):
        for value in arr.ravel():
            assert Decimal(f"{value:.{places}f}") * 10**places % 1 == 0
    exact = np.array(
        [[sum(Decimal(str(a)) * Decimal(str(b)) for a, b in zip(qi, kj, strict=True))
          for kj in k] for qi in q]
    )  # fmt: skip
    for i in range(N):
        r = attend(i)
        for j in range(N):
            assert Decimal(f"{r.dots[j]:.2f}") == exact[i, j]
            assert Decimal(f"{r.scaled[j]:.3f}") == exact[i, j] / 2


def test_the_story_holds():
    top = {w: WORDS[attend(i).top] for i, w in enumerate(WORDS)}
    assert top["blue"] == "car"
    assert top["concrete"] == "wall"
    assert top["it"] == "car"
    assert top["speeding"] == "car"
    speeding = attend(WORDS.index("speeding"))
    second = WORDS[int(np.argsort(-speeding.weights)[1])]
    assert second == "it"
    causal = {w: WORDS[attend(i, causal=True).top] for i, w in enumerate(WORDS)}
    assert causal["car"] == "blue"  # in a decoder the link runs back from the noun
    assert causal["wall"] == "concrete"
    assert causal["it"] == "car"
    assert causal["blue"] != "car"  # car is in blue's future


def test_causal_matrix_is_lower_triangular_and_rows_sum_to_one():
    w = attention_weights(causal=True)
    assert np.all(w[np.triu_indices(N, 1)] == 0.0)
    assert w.sum(axis=1) == pytest.approx(np.ones(N), abs=1e-15)
    full = attention_weights(causal=False)
    assert np.all(full > 0)
    assert full[-1] == pytest.approx(w[-1], abs=1e-15)  # the last word sees everything anyway


def test_bad_query_is_refused():
    with pytest.raises(IndexError):
        attend(N)
