"""RoPE inspection against independent references: the model's own cos/sin tables, Meta's
Llama 3.1 scaling loop, the core's trace, and random vectors (hypothesis)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core import rope_inspect as ri
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import Trace, forward, init_random
from llm_anatomy_tui.core.ops import apply_rope


def _meta_llama31_scaling(freqs, factor, low, high, old_ctx):  # noqa: ANN001, ANN202
    """Meta's ``apply_scaling`` (llama-models, Llama 3.1), as a plain per-frequency loop."""
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(freq)
        elif wavelen > low_wavelen:
            out.append(freq / factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append((1 - smooth) * freq / factor + smooth * freq)
    return np.array(out)


@pytest.mark.parametrize("theta,head_dim", [(10000.0, 32), (500000.0, 128), (1e6, 64), (7.0, 6)])
def test_angles_are_position_times_inverse_frequency_of_the_model(theta, head_dim) -> None:  # noqa: ANN001
    cfg = LlamaConfig(vocab_size=20, hidden_size=head_dim * 2, intermediate_size=8,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=300, rope_theta=theta)  # fmt: skip
    model = init_random(cfg)
    freqs = ri.rope_frequencies(cfg)
    positions = np.array([0, 1, 7, 123, 299])
    cos, sin = model.rope_tables(positions)  # what the forward pass rotates with
    for row, p in enumerate(positions):
        angles = freqs.angles(p)  # float64; the model multiplies in float32
        tol = 2e-6 + 2.4e-7 * float(angles.max())  # one float32 rounding of the angle
        assert np.allclose(np.cos(angles), cos[row, : head_dim // 2], atol=tol)
        assert np.allclose(np.sin(angles), sin[row, : head_dim // 2], atol=tol)
    mine_cos, mine_sin = ri.cos_sin(freqs, positions)
    assert np.array_equal(mine_cos, cos) and np.array_equal(mine_sin, sin)
    i = np.arange(head_dim // 2)
    assert np.allclose(freqs.inv_freq, theta ** (-2 * i / head_dim), rtol=1e-6)
    assert np.allclose(freqs.wavelength, 2 * math.pi * theta ** (2 * i / head_dim), rtol=1e-6)


def test_llama3_scaling_matches_metas_loop() -> None:
    llama31 = SimpleNamespace(dim_head=128, rope_theta=500000.0, rope_scaling={
        "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192, "rope_type": "llama3"})  # fmt: skip
    f = ri.rope_frequencies(llama31)
    ref = _meta_llama31_scaling(f.base_inv_freq, 8.0, 1.0, 4.0, 8192)
    assert np.allclose(f.inv_freq, ref, rtol=1e-12)
    assert f.supported and f.scaling["rope_type"] == "llama3"
    # fast pairs keep their speed, slow ones turn 8x slower, and some are blended
    assert f.inv_freq[0] == f.base_inv_freq[0]
    assert np.isclose(f.wavelength[-1], 8 * f.base_wavelength[-1])
    ratio = f.wavelength / f.base_wavelength
    assert ((ratio > 1.001) & (ratio < 7.999)).any()


def test_scaling_spellings() -> None:
    v5 = SimpleNamespace(dim_head=8, rope_theta=100.0, rope_scaling=None,
                         rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 100.0})  # fmt: skip
    f = ri.rope_frequencies(v5)
    assert np.allclose(f.inv_freq, f.base_inv_freq / 2)
    plain = SimpleNamespace(dim_head=8, rope_theta=100.0, rope_parameters={"rope_type": "default"})
    assert ri.rope_frequencies(plain).scaling is None
    odd = SimpleNamespace(dim_head=8, rope_theta=100.0, rope_scaling={"type": "yarn", "factor": 4})
    f = ri.rope_frequencies(odd)
    assert not f.supported and np.array_equal(f.inv_freq, f.base_inv_freq)


def test_explicit_rotation_equals_the_core_rotation(tiny_model) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    d = tiny_model.config.dim_head
    x = rng.normal(size=(3, d)).astype(np.float32)
    positions = np.array([0, 5, 40])
    cos, sin = tiny_model.rope_tables(positions)
    core = apply_rope(x, cos, sin)
    freqs = ri.rope_frequencies(tiny_model.config)
    mine = np.stack([ri.rotate_half_rope(x[i], p, freqs.inv_freq) for i, p in enumerate(positions)])
    assert np.allclose(mine, core, atol=1e-5)


@pytest.fixture(scope="module")
def mini():  # noqa: ANN201
    from llm_anatomy_tui.core.model import default_model_dir, load_model

    return load_model(default_model_dir())


def test_layer_vectors_are_the_trace(mini) -> None:  # noqa: ANN001
    tokens = [464, 1490, 6151, 11, 1354, 1687, 261, 3389, 13]
    trace = Trace()
    forward(mini, tokens, trace=trace)
    last = mini.config.num_hidden_layers - 1
    for layer in (0, last):
        lv = ri.layer_vectors(mini, tokens, layer)
        rec = trace.layers[layer]
        for name in ("q", "k", "v", "q_rope", "k_rope", "scores"):
            assert np.array_equal(getattr(lv, name), rec[name]), name
    with pytest.raises(ValueError, match="layers 0"):
        ri.layer_vectors(mini, tokens, last + 1)


def test_shift_proof_on_real_vectors(mini) -> None:  # noqa: ANN001
    cfg = mini.config
    tokens = [464, 1490, 6151, 11, 1354, 1687, 261, 3389, 13, 290, 2418]
    lv = ri.layer_vectors(mini, tokens, 1)
    inv = ri.rope_frequencies(cfg).inv_freq
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    for h in range(cfg.num_attention_heads):
        for m, n, s in ((10, 3, 5), (4, 4, 200), (7, 0, -0), (9, 2, 100)):
            q, k = lv.q[h, m], lv.k[h // group, n]
            proof = ri.shift_proof(q, k, m, n, s, inv)
            # the unshifted rotated score is the model's own score
            assert math.isclose(
                proof.score_rope, float(lv.scores[h, m, n]), rel_tol=1e-4, abs_tol=1e-5
            )
            assert proof.shift_difference < 1e-9
            assert math.isclose(
                proof.score_interleaved, proof.score_rope, rel_tol=1e-9, abs_tol=1e-12
            )
            assert math.isclose(
                proof.score_raw, float(q @ k) / math.sqrt(cfg.dim_head), rel_tol=1e-5
            )
            if s:
                assert proof.query_only_difference > 1e-4  # the offset changed: so did the score
                assert proof.vector_moved > 1e-3  # the rotated query itself moved


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31), half=st.integers(1, 64), m=st.integers(0, 5000),
    n=st.integers(0, 5000), s=st.integers(-5000, 5000),
    theta=st.sampled_from([10000.0, 500000.0, 1e6]),
)  # fmt: skip
def test_shift_invariance_holds_for_any_vectors(seed, half, m, n, s, theta) -> None:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=2 * half), rng.normal(size=2 * half)
    i = np.arange(half)
    inv = theta ** (-2 * i / (2 * half))
    p = ri.shift_proof(q, k, m, n, s, inv)
    assert abs(p.score_shifted - p.score_rope) < 1e-8 * (1 + np.abs(q).sum() * np.abs(k).sum())
    assert math.isclose(p.score_interleaved, p.score_rope, rel_tol=1e-9, abs_tol=1e-9)


def test_interleaved_layout_is_a_permutation_of_rotate_half() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=10)
    inv = 10000.0 ** (-np.arange(5) / 5)
    perm = ri.half_to_interleaved(10)
    assert np.allclose(ri.interleaved_rope(x[perm], 17, inv), ri.rotate_half_rope(x, 17, inv)[perm])
    assert sorted(perm.tolist()) == list(range(10))


def test_shift_range_and_pairs() -> None:
    assert ri.shift_range(0, 0, 1) == (0, 0)
    lo, hi = ri.shift_range(5, 9, 16)
    assert (lo, hi) == (-5, 6) and 9 + hi == 15 and 5 + lo == 0
    assert ri.pick_pairs(64, 4) == [0, 21, 42, 63]
    x = np.array([1.0, 0.0, 0.0, 0.0])  # pair 0 = (1, 0)
    px, py = ri.pair_arrow(x, 0, math.pi / 2)
    assert abs(px) < 1e-12 and math.isclose(py, 1.0)
