"""The quantized KV cache: what it stores (codes + fp16 scales, counted exactly), what it
returns to attention, and how far it moves the logits from a float32 cache."""

from __future__ import annotations

import doctest
from dataclasses import replace

import numpy as np
import pytest

from llm_anatomy_tui.core import quant_kv
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import ContextOverflowError, KVCache, forward, init_random
from llm_anatomy_tui.core.quant import as_scheme, quantize
from llm_anatomy_tui.core.quant_kv import (
    KVDriftTracker,
    QuantizedKVCache,
    QuantizedLayerKV,
    kv_bytes_per_token,
    kv_cache_drift,
    pack_nibbles,
    unpack_nibbles,
)

TOKENS = [5, 17, 300, 42, 8192, 7, 99, 1000, 3, 64, 128, 256]


def test_module_doctests():
    assert doctest.testmod(quant_kv).failed == 0


def test_nibble_packing_round_trips_every_code():
    codes = np.array([np.arange(-8, 8), np.arange(7, -9, -1)], dtype=np.int8)
    packed = pack_nibbles(codes)
    assert packed.dtype == np.uint8 and packed.shape == (2, 8)
    assert np.array_equal(unpack_nibbles(packed), codes)


@pytest.mark.parametrize(("bits", "head_dim"), [(8, 64), (4, 64), (8, 8), (4, 8)])
def test_layer_stores_codes_and_scales_and_counts_them_exactly(bits, head_dim):
    rng = np.random.default_rng(0)
    layer = QuantizedLayerKV(n_kv_heads=2, capacity=10, head_dim=head_dim, bits=bits)
    k1, v1 = rng.normal(size=(2, 3, head_dim)), rng.normal(size=(2, 3, head_dim))
    k2, v2 = rng.normal(size=(2, 1, head_dim)), rng.normal(size=(2, 1, head_dim))
    layer.append(k1.astype(np.float32), v1.astype(np.float32))
    keys, values = layer.append(k2.astype(np.float32), v2.astype(np.float32))
    assert layer.length == 4 and keys.shape == values.shape == (2, 4, head_dim)
    block = 32 if head_dim % 32 == 0 else head_dim
    n_blocks = 2 * 4 * head_dim // block  # per tensor: heads × tokens × blocks per head
    code_bytes = 2 * 4 * head_dim * bits // 8
    assert layer.nbytes == 2 * (code_bytes + n_blocks * 2)  # K and V: codes + fp16 scales
    assert layer.fp32_nbytes == 2 * 2 * 4 * head_dim * 4
    # What attention reads is exactly Q8_0 / Q4_0 of each token's head, block by block.
    scheme = "Q8_0" if bits == 8 else "Q4_0"
    per_block = replace(as_scheme(scheme), block_size=block)
    all_k = np.concatenate([k1, k2], axis=1).astype(np.float32)
    assert np.array_equal(keys, quantize(all_k, per_block).dequantized)
    assert np.array_equal(layer.key_codes, quantize(all_k, per_block).codes)
    assert layer.key_scales.dtype == np.float16 and layer.key_scales.shape == (
        2,
        4,
        head_dim // block,
    )


def test_layer_refuses_overflow_and_unknown_bits():
    layer = QuantizedLayerKV(1, 2, 8, bits=4)
    layer.append(np.ones((1, 2, 8), np.float32), np.ones((1, 2, 8), np.float32))
    with pytest.raises(ContextOverflowError):
        layer.append(np.ones((1, 1, 8), np.float32), np.ones((1, 1, 8), np.float32))
    with pytest.raises(ValueError, match="8 or 4"):
        QuantizedLayerKV(1, 2, 8, bits=3)
    with pytest.raises(ValueError, match="8 or 4"):
        QuantizedKVCache(LlamaConfig(16, 8, 16, 1, 1, 1, 8), bits=2)


def test_cache_holds_no_float32_storage(tiny_model):
    cache = QuantizedKVCache(tiny_model.config, bits=4)
    layer = cache.layers[0]
    assert isinstance(layer, QuantizedLayerKV) and not hasattr(layer, "_k")
    assert cache.nbytes == 0


def test_8bit_cache_logits_are_close_to_the_float32_cache(tiny_model):
    ref = forward(tiny_model, TOKENS, KVCache(tiny_model.config))
    cache8 = QuantizedKVCache(tiny_model.config, bits=8)
    got8 = forward(tiny_model, TOKENS, cache8)
    got4 = forward(tiny_model, TOKENS, QuantizedKVCache(tiny_model.config, bits=4))
    drift8 = np.abs(got8 - ref).max()
    drift4 = np.abs(got4 - ref).max()
    assert drift8 < 0.02 * np.abs(ref).max()
    assert drift8 < drift4
    # bytes: codes + scales only. head_dim 8 (< 32): one fp16 scale per token per head.
    cfg = tiny_model.config
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * (cfg.dim_head + 2)
    assert cache8.nbytes == len(TOKENS) * per_token == len(TOKENS) * kv_bytes_per_token(cfg, 8)
    assert cache8.fp32_nbytes == len(TOKENS) * kv_bytes_per_token(cfg)


def test_prefill_and_step_by_step_store_identical_codes(tiny_model):
    """Scales are per token, so how tokens arrive cannot change what is stored."""
    a = QuantizedKVCache(tiny_model.config, bits=4)
    b = QuantizedKVCache(tiny_model.config, bits=4)
    last_a = forward(tiny_model, TOKENS, a)[-1]
    for t in TOKENS:
        last_b = forward(tiny_model, [t], b)[-1]
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.key_codes, lb.key_codes)
        assert np.array_equal(la.value_scales, lb.value_scales)
    assert np.allclose(last_a, last_b, atol=1e-4)


def test_tracker_reports_bytes_saved_and_drift_per_step(tiny_model):
    steps = kv_cache_drift(tiny_model, TOKENS, bits=8, prefill=4)
    assert len(steps) == len(TOKENS) - 4 + 1
    assert [s.length for s in steps] == list(range(4, len(TOKENS) + 1))
    for s in steps:
        assert s.quantized_nbytes == s.length * kv_bytes_per_token(tiny_model.config, 8)
        assert s.fp32_nbytes == s.length * kv_bytes_per_token(tiny_model.config)
        assert s.bytes_saved == s.fp32_nbytes - s.quantized_nbytes
        assert s.saved_fraction == pytest.approx(1 - 10 / 32)  # 8 codes + 2 B scale vs 32 B
        assert 0 <= s.kl < 1e-3 and s.max_abs_logit_diff < 0.1
        assert s.max_abs_logit_diff == pytest.approx(
            float(np.abs(s.logits_quantized - s.logits_fp32).max())
        )
    steps4 = kv_cache_drift(tiny_model, TOKENS, bits=4, prefill=4)
    assert steps4[-1].saved_fraction == pytest.approx(1 - 6 / 32)  # 4 code bytes + 2 B
    assert max(s.kl for s in steps4) > max(s.kl for s in steps)


def test_tracker_matches_its_own_fp32_cache_and_a_full_recompute(tiny_model):
    tracker = KVDriftTracker(tiny_model, bits=8)
    tracker.feed(TOKENS[:6])
    step = tracker.feed(TOKENS[6:7])
    full = forward(tiny_model, TOKENS[:7])[-1]
    assert np.allclose(step.logits_fp32, full, atol=1e-4)
    assert step.position == 6 and tracker.length == 7


def test_tracker_refuses_empty_input_and_stepping_past_the_context():
    cfg = LlamaConfig(64, 16, 32, 1, 2, 1, 4)
    model = init_random(cfg, seed=0)
    tracker = KVDriftTracker(model, bits=4)
    with pytest.raises(ValueError, match="empty"):
        tracker.feed([])
    tracker.feed([1, 2, 3])
    tracker.feed([4])
    assert tracker.remaining == 0
    with pytest.raises(ContextOverflowError, match="reset"):
        tracker.feed([5])
    assert tracker.length == 4 and tracker.quantized_cache.length == 4  # nothing changed
    tracker.reset()
    assert tracker.length == 0 and tracker.quantized_cache.nbytes == 0
    again = tracker.feed([1, 2, 3])
    assert again.length == 3


def test_truncate_rewinds_the_quantized_cache(tiny_model):
    cache = QuantizedKVCache(tiny_model.config, bits=8)
    forward(tiny_model, TOKENS[:5], cache)
    cache.truncate(3)
    assert cache.length == 3
    a = forward(tiny_model, TOKENS[3:6], cache)[-1]
    fresh = QuantizedKVCache(tiny_model.config, bits=8)
    b = forward(tiny_model, TOKENS[:6], fresh)[-1]
    assert np.allclose(a, b, atol=1e-4)
