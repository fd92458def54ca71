"""Chapters 2-4's core: embeddings, PCA, real neurons, the FFN update, against independent
references (loops, numpy.linalg.svd, the core's own trace, the weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.embeddings import (
    Cancelled,
    cosine_neighbours,
    embedding_rows,
    pca_2d,
    row_norms,
)
from llm_anatomy_tui.core.model import init_random
from llm_anatomy_tui.core.neurons import (
    ffn_update,
    layer_hidden,
    prompt_trace,
    recompute_hidden,
    scan_layer,
    unit_activations,
)
from llm_anatomy_tui.core.ops import rms_norm

ODD = LlamaConfig(
    vocab_size=301,
    hidden_size=24,
    intermediate_size=40,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=32,
)


@pytest.fixture(scope="module")
def odd_model():
    """Sizes unlike anatomy-mini's (3 layers, width 24, 301 tokens)."""
    return init_random(ODD, seed=7, std=0.3, name="odd")


def test_embedding_rows_are_the_weight_rows(tiny_model):
    ids = [5, 0, 8192, 5]
    rows = embedding_rows(tiny_model.embed, ids)
    for r, i in zip(rows, ids, strict=False):
        assert np.array_equal(r, tiny_model.tensors()["model.embed_tokens.weight"][i])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        embedding_rows(tiny_model.embed, [8193])


def brute_cosines(m: np.ndarray, q: int) -> list[float]:
    out = []
    a = [float(v) for v in m[q]]
    na = math.sqrt(sum(v * v for v in a))
    for row in m:
        b = [float(v) for v in row]
        nb = math.sqrt(sum(v * v for v in b))
        out.append(sum(x * y for x, y in zip(a, b, strict=False)) / (na * nb) if na and nb else 0.0)
    return out


@pytest.mark.parametrize("query", [0, 17, 300])
def test_cosine_neighbours_match_a_loop(odd_model, query):
    m = odd_model.embed
    ref = brute_cosines(m, query)
    order = sorted((i for i in range(len(ref)) if i != query), key=lambda i: (-ref[i], i))[:12]
    nb = cosine_neighbours(m, query, k=12)
    assert nb.ids.tolist() == order
    np.testing.assert_allclose(nb.similarities, [ref[i] for i in order], atol=1e-9)
    assert nb.vocab == 301


def test_cosine_neighbours_whole_big_vocab_in_chunks(tiny_model, monkeypatch):
    import llm_anatomy_tui.core.embeddings as emb

    monkeypatch.setattr(emb, "NEIGHBOUR_CHUNK", 1000)
    seen = []
    nb = cosine_neighbours(tiny_model.embed, 42, k=5, progress=seen.append)
    assert seen[-1] == 1.0 and len(seen) == 9
    e = tiny_model.embed.astype(np.float64)
    sims = e @ e[42] / (np.linalg.norm(e, axis=1) * np.linalg.norm(e[42]))
    sims[42] = -np.inf
    assert nb.ids.tolist() == np.argsort(-sims, kind="stable")[:5].tolist()
    with pytest.raises(Cancelled):
        cosine_neighbours(tiny_model.embed, 42, cancelled=lambda: True)


def test_zero_row_has_zero_similarity():
    m = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.1]])
    nb = cosine_neighbours(m, 0, k=2)
    assert nb.ids.tolist() == [2, 1] and nb.similarities[1] == 0.0
    nb = cosine_neighbours(m, 1, k=2)
    assert nb.similarities.tolist() == [0.0, 0.0]
    assert np.array_equal(row_norms(m), [1.0, 0.0, math.sqrt(4.01)])


@pytest.mark.parametrize("n", [2, 5, 30])
def test_pca_explained_variance_matches_svd(odd_model, n):
    x = odd_model.embed[:n].astype(np.float64)
    p = pca_2d(x)
    c = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(c, full_matrices=False)
    share = s**2 / np.sum(s**2)
    np.testing.assert_allclose(p.explained[0], share[0], rtol=1e-9)
    if n > 2:
        np.testing.assert_allclose(p.explained[1], share[1], rtol=1e-9)
        # coordinates equal the SVD's up to the sign of each axis
        for i in range(2):
            ref = u[:, i] * s[i]
            assert np.allclose(p.coords[:, i], ref) or np.allclose(p.coords[:, i], -ref)


def test_pca_refuses_degenerate_input():
    with pytest.raises(ValueError, match="at least two"):
        pca_2d(np.ones((1, 4)))
    with pytest.raises(ValueError, match="identical"):
        pca_2d(np.ones((3, 4)))


def test_unit_activations_equal_trace_and_weights(odd_model):
    ids = [3, 100, 7, 7, 250]
    trace = prompt_trace(odd_model, ids)
    for layer in range(3):
        for unit in (0, 13, 39):
            acts = unit_activations(trace, layer, unit)
            assert np.array_equal(acts, trace.layers[layer]["hidden"][:, unit])
            # independently: the unit's gate/up rows dotted with the FFN's normed input
            blk = odd_model.layers[layer]
            f = ODD.intermediate_size
            x = trace.layers[layer]["ffn_norm"].astype(np.float64)
            g = x @ blk.w_gate_up[unit].astype(np.float64)
            u = x @ blk.w_gate_up[f + unit].astype(np.float64)
            np.testing.assert_allclose(acts, g / (1 + np.exp(-g)) * u, rtol=1e-4, atol=1e-6)


def test_layer_hidden_equals_full_trace(odd_model):
    ids = np.array([1, 2, 3, 4, 5, 6])
    trace = prompt_trace(odd_model, ids)
    for layer in range(3):
        np.testing.assert_allclose(
            layer_hidden(odd_model, ids, layer), trace.layers[layer]["hidden"], atol=1e-6
        )


def test_scan_layer_matches_brute_force(odd_model):
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 301, size=75)
    scan = scan_layer(odd_model, tokens, layer=1, k=4, window=20)
    # brute force: a traced forward per window, every activation listed
    acts = np.concatenate(
        [prompt_trace(odd_model, tokens[s : s + 20]).layers[1]["hidden"] for s in range(0, 75, 20)]
    )
    for unit in (0, 5, 39):
        col = acts[:, unit]
        best = sorted(range(75), key=lambda i: (-col[i], i))[:4]
        worst = sorted(range(75), key=lambda i: (col[i], i))[:4]
        assert [p for p, _ in scan.top(unit)] == best
        assert [p for p, _ in scan.low(unit)] == worst
        np.testing.assert_allclose([v for _, v in scan.top(unit)], col[best], atol=1e-5)


def test_scan_progress_and_cancel(odd_model):
    seen = []
    scan_layer(odd_model, np.arange(70) % 301, 0, progress=seen.append, window=32)
    assert seen == [1 / 3, 2 / 3, 1.0]
    with pytest.raises(Cancelled):
        scan_layer(odd_model, np.arange(70), 0, cancelled=lambda: True)
    with pytest.raises(ValueError, match="layer 3 does not exist"):
        scan_layer(odd_model, np.arange(5), 3)


def test_ffn_update_equals_trace_and_lens(odd_model):
    ids = [10, 20, 30, 40]
    trace = prompt_trace(odd_model, ids)
    upd = ffn_update(odd_model, trace, layer=2, position=3, k=5)
    rec = trace.layers[2]
    assert np.array_equal(upd.out, rec["ffn_out"][3])
    np.testing.assert_allclose(upd.resid_in + upd.out, rec["resid_ffn"][3], atol=1e-6)
    # down projection of the hidden units recomputed from the weights
    hidden = recompute_hidden(odd_model, 2, upd.normed)
    np.testing.assert_allclose(hidden, upd.hidden, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(odd_model.layers[2].w_down @ hidden, upd.out, atol=1e-6)
    # the lens: final RMSNorm then the output head, applied here by hand
    x = upd.out.astype(np.float64)
    normed = x / np.sqrt(np.mean(x * x) + ODD.rms_norm_eps) * odd_model.norm
    np.testing.assert_allclose(
        upd.lens, normed @ odd_model.lm_head.T.astype(np.float64), rtol=1e-4, atol=1e-5
    )
    assert upd.top_units.tolist() == np.argsort(-np.abs(upd.hidden), kind="stable")[:5].tolist()
    with pytest.raises(ValueError, match="position 4"):
        ffn_update(odd_model, trace, 0, 4)


def test_rms_norm_reference_sanity():
    x = np.array([[3.0, 4.0]])
    assert np.allclose(rms_norm(x, np.ones(2), 0.0), x / math.sqrt(12.5))
