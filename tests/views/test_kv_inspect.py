"""Reading the KV cache off a generation: bytes from the arrays, cache on/off, drift."""

from __future__ import annotations

import numpy as np
import pytest

from llm_anatomy_tui.core.generation import Generation, decode_step_macs, kv_cache_bytes_for
from llm_anatomy_tui.core.quant_kv import KVDriftTracker, kv_bytes_per_token
from llm_anatomy_tui.views.kv_inspect import DriftLog, cache_snapshot, compare_step

PROMPT = [5, 17, 300, 42, 8, 99, 1000]


@pytest.fixture
def gen(tiny_model):
    g = Generation(tiny_model, PROMPT, seed=3)
    g.generate(4)
    return g


def test_snapshot_bytes_are_the_arrays_and_the_formula(gen, tiny_model):
    cfg = tiny_model.config
    snap = cache_snapshot(gen.cache, cfg)
    t = gen.cache.length
    assert snap.length == t
    assert snap.nbytes == sum(layer.keys.nbytes + layer.values.nbytes for layer in gen.cache.layers)
    assert (
        snap.nbytes
        == snap.formula_bytes
        == 2 * cfg.num_hidden_layers * (cfg.num_key_value_heads * cfg.dim_head * t * 4)
    )
    assert snap.formula_bytes == kv_cache_bytes_for(cfg, t)
    for layer, arrays in zip(gen.cache.layers, snap.layers, strict=True):
        assert arrays.k_shape == layer.keys.shape == (cfg.num_key_value_heads, t, cfg.dim_head)
        assert arrays.k_nbytes == layer.keys.nbytes and arrays.v_nbytes == layer.values.nbytes
    assert snap.shape == gen.last.cache_shape[:3] + (t,) + gen.last.cache_shape[4:]
    assert snap.norms.shape == (cfg.num_hidden_layers, 2, t)
    k0 = gen.cache.layers[0].keys
    assert np.allclose(snap.norms[0, 0], np.linalg.norm(k0, axis=-1).mean(0), rtol=1e-6)


def test_cache_on_and_off_give_the_same_logits_for_different_work(gen, tiny_model):
    cfg = tiny_model.config
    first = compare_step(gen, 0)
    assert first.prefill and first.cached_fed == first.uncached_fed == len(PROMPT)
    for i in range(1, len(gen.steps)):
        c = compare_step(gen, i)
        rec = gen.steps[i]
        assert c.ran_cached and c.cached_fed == 1 and c.uncached_fed == rec.position
        assert c.max_abs_diff < 1e-4 and c.top1_same
        assert c.cached_macs == decode_step_macs(cfg, rec.position - 1, cached=True)
        assert c.uncached_macs == decode_step_macs(cfg, rec.position - 1, cached=False)
        assert c.uncached_macs > c.cached_macs
        assert c.cached_seconds > 0 and c.uncached_seconds > 0
    # a step taken without the cache is measured the cached way afterwards
    gen.use_cache = False
    gen.step()
    c = compare_step(gen, len(gen.steps) - 1)
    assert not c.ran_cached and c.cached_fed == 1 and c.max_abs_diff < 1e-4 and c.top1_same
    assert c.uncached_fed == gen.last.position == gen.last.n_fed


def test_drift_log_follows_rewinds_and_matches_a_fresh_log(gen, tiny_model):
    log = DriftLog(tiny_model, 8)
    assert log.sync(gen.tokens, len(gen.prompt)) == 0
    assert sorted(log.rows) == list(range(len(gen.steps) + 1))
    gen.branch(2, 77)
    gen.step()
    log.sync(gen.tokens, len(gen.prompt))
    fresh = DriftLog(tiny_model, 8)
    fresh.sync(gen.tokens, len(gen.prompt))
    assert sorted(log.rows) == sorted(fresh.rows)
    for i in fresh.rows:
        a, b = log.rows[i], fresh.rows[i]
        assert a.length == b.length
        assert np.array_equal(a.logits_quantized, b.logits_quantized)


def test_quantized_bytes_are_codes_plus_scales(gen, tiny_model):
    cfg = tiny_model.config
    for bits in (8, 4):
        log = DriftLog(tiny_model, bits)
        log.sync(gen.tokens, len(gen.prompt))
        cache = log.quantized_cache
        t = cache.length
        scales = sum(layer.key_scales.nbytes + layer.value_scales.nbytes for layer in cache.layers)
        codes = cache.nbytes - scales
        blocks = cfg.dim_head // min(32, cfg.dim_head)
        assert (
            codes
            == 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * t * cfg.dim_head * bits // 8
        )
        assert scales == 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * t * blocks * 2
        assert cache.nbytes == t * kv_bytes_per_token(cfg, bits)
        last = log.rows[max(log.rows)]
        assert last.quantized_nbytes == cache.nbytes and last.fp32_nbytes == log.fp32_cache.nbytes


def test_drift_log_limit_feeds_in_batches(gen, tiny_model):
    log = DriftLog(tiny_model, 4)
    left = log.sync(gen.tokens, len(gen.prompt), limit=2)
    assert left == len(gen.steps) - 1  # the prompt in one call, then one token
    assert log.sync(gen.tokens, len(gen.prompt)) == 0
    ref = KVDriftTracker(tiny_model, 4)
    ref.feed(gen.tokens[: len(gen.prompt)])
    for tok in gen.tokens[len(gen.prompt) :]:
        step = ref.feed([tok])
    assert np.array_equal(step.logits_quantized, log.rows[max(log.rows)].logits_quantized)
