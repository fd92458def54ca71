"""The numpy core against an independent slow reference (tests/core/reference.py).

The reference is plain Python loops over float64 and shares no code with the core; the
core computes in float32, so "match" means float32 tolerance.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core import ops
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import (
    LAYER_TRACE_KEYS,
    ContextOverflowError,
    KVCache,
    ModelLoadError,
    Trace,
    decode_token,
    forward,
    init_random,
    load_model,
    logit_lens,
    one_blas_thread,
    save_model,
)

# -- helpers --------------------------------------------------------------------------------


def as_lists(model) -> dict[str, list]:
    return {k: v.astype(np.float64).tolist() for k, v in model.tensors().items()}


def ref_config(cfg: LlamaConfig) -> dict:
    return cfg.to_dict()


def random_config(draw) -> LlamaConfig:
    n_kv = draw(st.integers(1, 2))
    group = draw(st.integers(1, 3))
    head_dim = draw(st.sampled_from([2, 4, 6, 8]))
    explicit_head_dim = draw(st.booleans())
    n_heads = n_kv * group
    hidden = draw(st.sampled_from([8, 12, 16])) if explicit_head_dim else n_heads * head_dim
    return LlamaConfig(
        vocab_size=draw(st.integers(5, 40)),
        hidden_size=hidden,
        intermediate_size=draw(st.integers(4, 24)),
        num_hidden_layers=draw(st.integers(1, 3)),
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        max_position_embeddings=draw(st.sampled_from([12, 40])),
        rms_norm_eps=draw(st.sampled_from([1e-5, 1e-6, 0.1])),
        rope_theta=draw(st.sampled_from([10000.0, 500000.0, 7.0])),
        tie_word_embeddings=draw(st.booleans()),
        head_dim=head_dim if explicit_head_dim else None,
    )


@st.composite
def model_and_tokens(draw):
    cfg = random_config(draw)
    seed = draw(st.integers(0, 2**16))
    model = init_random(cfg, seed=seed, std=0.5)
    # non-trivial norm gains, so a transposed or misplaced gain would show
    rng = np.random.default_rng(seed + 1)
    gains = {
        k: rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
        for k, v in model.tensors().items()
        if k.endswith("norm.weight")
    }
    model = model.with_tensors(gains)
    n = draw(st.integers(1, min(8, cfg.max_position_embeddings)))
    tokens = draw(st.lists(st.integers(0, cfg.vocab_size - 1), min_size=n, max_size=n))
    return model, tokens


def assert_close32(got, want, scale=None):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = scale if scale is not None else max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- single operations ------------------------------------------------------------------------


@FAST
@given(
    n=st.integers(1, 5),
    d=st.integers(1, 40),
    eps=st.sampled_from([1e-6, 1e-5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_rms_norm_matches_reference(n, d, eps, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (n, d)).astype(np.float32)
    w = rng.normal(1, 0.5, d).astype(np.float32)
    got = ops.rms_norm(x, w, eps)
    want = [ref.rms_norm(row, w.tolist(), eps) for row in x.tolist()]
    assert got.dtype == np.float32
    assert_close32(got, want)


@FAST
@given(
    head_dim=st.sampled_from([2, 4, 8, 16, 64]),
    positions=st.lists(st.integers(0, 2047), min_size=1, max_size=6),
    theta=st.sampled_from([10000.0, 500000.0, 3.0]),
    seed=st.integers(0, 1000),
)
def test_rope_matches_reference(head_dim, positions, theta, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (3, len(positions), head_dim)).astype(np.float32)  # [heads, T, D]
    cos, sin = ops.rope_cos_sin(np.array(positions), head_dim, theta)
    got = ops.apply_rope(x, cos, sin)
    want = [
        [ref.rope(x[h, t].tolist(), p, theta) for t, p in enumerate(positions)] for h in range(3)
    ]
    # float32 angles (as transformers computes them) at position ~2000 carry ~1e-4 rad error
    np.testing.assert_allclose(got, want, atol=5e-4 * max(1, max(positions) / 100), rtol=0)


@FAST
@given(
    n_kv=st.integers(1, 3),
    group=st.integers(1, 4),
    n_tok=st.integers(1, 7),
    head_dim=st.sampled_from([1, 2, 5, 8]),
    seed=st.integers(0, 1000),
)
def test_gqa_causal_attention_matches_reference(n_kv, group, n_tok, head_dim, seed):
    rng = np.random.default_rng(seed)
    n_heads = n_kv * group
    q = rng.normal(0, 2, (n_heads, n_tok, head_dim)).astype(np.float32)
    k = rng.normal(0, 2, (n_kv, n_tok, head_dim)).astype(np.float32)
    v = rng.normal(0, 1, (n_kv, n_tok, head_dim)).astype(np.float32)
    mask = ops.causal_mask(n_tok, n_tok)
    weights = ops.masked_softmax(ops.attention_scores(q, k), mask)
    out = ops.mix_values(weights, v)
    ref_w, ref_out = ref.attention(q.tolist(), k.tolist(), v.tolist())
    assert_close32(weights, ref_w, scale=1.0)
    assert_close32(out, ref_out)
    assert np.all(weights[:, ~mask] == 0.0)  # masked cells exactly zero
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


@FAST
@given(n=st.integers(1, 4), f=st.integers(1, 30), seed=st.integers(0, 1000))
def test_swiglu_matches_reference(n, f, seed):
    rng = np.random.default_rng(seed)
    gate = rng.normal(0, 4, (n, f)).astype(np.float32)
    up = rng.normal(0, 1, (n, f)).astype(np.float32)
    got = ops.swiglu(gate, up)
    want = [ref.swiglu(g, u) for g, u in zip(gate.tolist(), up.tolist(), strict=True)]
    assert_close32(got, want)


# -- the whole forward pass -------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_and_tokens())
def test_forward_matches_reference(case):
    model, tokens = case
    want = ref.forward(as_lists(model), ref_config(model.config), tokens)
    got = forward(model, tokens)
    assert got.shape == (len(tokens), model.config.vocab_size)
    assert got.dtype == np.float32
    assert_close32(got, want)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_and_tokens())
def test_cached_decode_matches_reference(case):
    """Prefill of one token, then decode_token for every later one, against the reference."""
    model, tokens = case
    want = ref.forward(as_lists(model), ref_config(model.config), tokens)
    cache = KVCache(model.config)
    rows = [forward(model, tokens[:1], cache)[0]]
    rows += [decode_token(model, t, cache) for t in tokens[1:]]
    assert_close32(np.stack(rows), want)


def test_reference_forward_pass_fixed_case(tiny_model):
    """The tiny fixture model (vocab 8193) on a real prompt's worth of tokens."""
    tokens = [3335, 290, 5396, 12, 8192, 7]
    want = ref.forward(
        as_lists(tiny_model), ref_config(tiny_model.config), tokens, logits_at="last"
    )
    got = forward(tiny_model, tokens, all_logits=False)
    assert got.shape == (1, 8193)
    assert_close32(got, want)


# -- cached decoding == full recompute --------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        None,  # the tiny fixture
        LlamaConfig(8193, 128, 384, 4, 4, 2, 300),  # the default model's shape
        LlamaConfig(97, 48, 64, 2, 6, 1, 80, head_dim=12, tie_word_embeddings=False),
    ],
    ids=["tiny", "default-shape", "mqa-untied"],
)
def test_cached_decode_equals_full_recompute_every_step(cfg, tiny_model):
    model = tiny_model if cfg is None else init_random(cfg, seed=5, std=0.1)
    cfg = model.config
    rng = np.random.default_rng(0)
    tokens = list(rng.integers(0, cfg.vocab_size, 7))
    cache = KVCache(cfg)
    logits = forward(model, tokens, cache)[-1]
    worst = 0.0
    for _ in range(min(60, cfg.max_position_embeddings - len(tokens))):
        full = forward(model, tokens)[-1]
        worst = max(worst, float(np.abs(full - logits).max()))
        tokens.append(int(np.argmax(logits)))
        logits = forward(model, tokens[-1:], cache)[0]
    assert worst <= 1e-5, worst


def test_chunked_prefill_equals_one_prefill(tiny_model):
    tokens = list(range(100, 130))
    whole = forward(tiny_model, tokens)
    cache = KVCache(tiny_model.config)
    parts = [forward(tiny_model, tokens[a:b], cache) for a, b in ((0, 11), (11, 12), (12, 30))]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5, rtol=0)


def test_all_logits_false_is_the_last_row(tiny_model):
    tokens = [5, 6, 7, 8]
    np.testing.assert_allclose(
        forward(tiny_model, tokens, all_logits=False), forward(tiny_model, tokens)[-1:], atol=1e-6
    )


def test_context_overflow_is_refused(tiny_model):
    n = tiny_model.config.max_position_embeddings
    with pytest.raises(ContextOverflowError, match="context window"):
        forward(tiny_model, [1] * (n + 1))
    cache = KVCache(tiny_model.config)
    forward(tiny_model, [1] * n, cache)
    with pytest.raises(ContextOverflowError):
        forward(tiny_model, [1], cache)
    with pytest.raises(ValueError, match="empty"):
        forward(tiny_model, [])
    with pytest.raises(ValueError, match="outside"):
        forward(tiny_model, [8193])


# -- RoPE properties --------------------------------------------------------------------------


@FAST
@given(
    head_dim=st.sampled_from([2, 8, 32, 64]),
    m=st.integers(0, 500),
    n=st.integers(0, 500),
    shift=st.integers(0, 500),
    seed=st.integers(0, 1000),
)
def test_rope_preserves_norms_and_scores_depend_on_offset_only(head_dim, m, n, shift, seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(0, 1, head_dim).astype(np.float32)
    k = rng.normal(0, 1, head_dim).astype(np.float32)
    cos, sin = ops.rope_cos_sin(np.array([m, n, m + shift, n + shift]), head_dim, 10000.0)

    def rot(x, i):
        return ops.apply_rope(x[None], cos[i : i + 1], sin[i : i + 1])[0]

    for i in range(4):
        assert np.linalg.norm(rot(q, i)) == pytest.approx(np.linalg.norm(q), rel=1e-5)
    # q at m, k at n  vs  q at m + shift, k at n + shift: same offset, same score
    s1 = float(rot(q, 0) @ rot(k, 1))
    s2 = float(rot(q, 2) @ rot(k, 3))
    assert s1 == pytest.approx(s2, abs=2e-3 * np.linalg.norm(q) * np.linalg.norm(k))


def test_rope_position_zero_is_identity():
    x = np.arange(8, dtype=np.float32).reshape(1, 8)
    cos, sin = ops.rope_cos_sin(np.array([0]), 8, 10000.0)
    np.testing.assert_array_equal(ops.apply_rope(x, cos, sin), x)


# -- the trace --------------------------------------------------------------------------------


def _shape_of(key: str, cfg: LlamaConfig, n_tok: int, n_keys: int) -> tuple[int, ...]:
    sizes = {
        "T": n_tok,
        "S": n_keys,
        "d": cfg.hidden_size,
        "f": cfg.intermediate_size,
        "H": cfg.num_attention_heads,
        "Hkv": cfg.num_key_value_heads,
        "D": cfg.dim_head,
    }
    spec = LAYER_TRACE_KEYS[key].split("]")[0].strip("[")
    return tuple(sizes[s.strip()] for s in spec.split(","))


def test_trace_records_every_key_with_documented_shapes(tiny_model):
    cfg = tiny_model.config
    tokens = [10, 20, 30, 40, 50]
    trace = Trace()
    logits = forward(tiny_model, tokens, trace=trace)
    assert len(trace.layers) == cfg.num_hidden_layers
    for rec in trace.layers:
        assert set(rec) == set(LAYER_TRACE_KEYS)
        for key, arr in rec.items():
            assert arr.shape == _shape_of(key, cfg, 5, 5), key
        w = rec["weights"]
        assert np.all(w[:, ~rec["mask"]] == 0.0)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(trace.logits, logits)
    assert trace.final_norm.shape == (5, cfg.hidden_size)
    np.testing.assert_array_equal(trace.tokens, tokens)
    # the layers chain: one block's output is the next block's input
    np.testing.assert_array_equal(trace.layers[0]["resid_ffn"], trace.layers[1]["resid_in"])
    # logit lens of the last block's output is the model's own prediction
    np.testing.assert_allclose(
        logit_lens(tiny_model, trace.layers[-1]["resid_ffn"]), logits, atol=1e-5
    )


def test_trace_of_a_cached_decode_step(tiny_model):
    cfg = tiny_model.config
    cache = KVCache(cfg)
    forward(tiny_model, [1, 2, 3], cache)
    trace = Trace()
    step = forward(tiny_model, [4], cache, trace=trace)
    fast = decode_token(tiny_model, 4, _cache_like(tiny_model, [1, 2, 3]))
    np.testing.assert_allclose(step[0], fast, atol=1e-5)
    for rec in trace.layers:
        for key, arr in rec.items():
            assert arr.shape == _shape_of(key, cfg, 1, 4), key
    np.testing.assert_array_equal(trace.positions, [3])


def test_trace_attention_matches_reference_weights(tiny_model):
    """The trace's attention weights for layer 0 are the reference's, head by head."""
    tokens = [7, 8, 9, 10]
    trace = Trace()
    forward(tiny_model, tokens, trace=trace)
    rec = trace.layers[0]
    ref_w, ref_heads = ref.attention(
        rec["q_rope"].tolist(), rec["k_rope"].tolist(), rec["v"].tolist()
    )
    assert_close32(rec["weights"], ref_w, scale=1.0)
    assert_close32(rec["heads"], ref_heads)


def _cache_like(model, tokens):
    cache = KVCache(model.config)
    forward(model, tokens, cache)
    return cache


# -- files ------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config.to_dict() == tiny_model.config.to_dict()
    for key, arr in tiny_model.tensors().items():
        np.testing.assert_array_equal(loaded.tensors()[key], arr)
    np.testing.assert_array_equal(forward(loaded, [1, 2, 3]), forward(tiny_model, [1, 2, 3]))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["architectures"] == [
        "LlamaForCausalLM"
    ]


def test_untied_round_trip(tmp_path):
    cfg = LlamaConfig(50, 16, 32, 1, 2, 1, 16, tie_word_embeddings=False)
    model = init_random(cfg, seed=3)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.lm_head, model.lm_head)
    assert loaded.lm_head is not loaded.embed


def test_fp16_file_loads(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path, dtype="float16")
    loaded = load_model(tmp_path)
    for key, arr in tiny_model.tensors().items():
        np.testing.assert_array_equal(
            loaded.tensors()[key], arr.astype(np.float16).astype(np.float32)
        )
    assert loaded.embed.dtype == np.float32


def write_safetensors(path, tensors: dict[str, tuple[str, tuple, bytes]]) -> None:
    """A safetensors file written by hand: 8-byte header length, JSON header, raw data."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def _write_raw_header(path, header) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def to_bf16(a: np.ndarray) -> bytes:
    """Truncate float32 to bfloat16 (top 16 bits), little-endian."""
    return (np.asarray(a, "<f4").view("<u4") >> 16).astype("<u2").tobytes()


def test_bf16_file_written_by_hand_loads(tmp_path, tiny_model):
    tiny_model.config.save(tmp_path / "config.json")
    tensors = {k: ("BF16", v.shape, to_bf16(v)) for k, v in tiny_model.tensors().items()}
    write_safetensors(tmp_path / "model.safetensors", tensors)
    loaded = load_model(tmp_path)
    for key, arr in tiny_model.tensors().items():
        want = (np.asarray(arr, "<f4").view("<u4") & 0xFFFF0000).view("<f4")
        np.testing.assert_array_equal(loaded.tensors()[key], want)
    # bf16 keeps ~3 significant digits: the logits move, but only a little
    np.testing.assert_allclose(forward(loaded, [1, 2]), forward(tiny_model, [1, 2]), atol=0.05)


def test_sharded_checkpoint_loads(tmp_path, tiny_model):
    from safetensors.numpy import save_file

    tiny_model.config.save(tmp_path / "config.json")
    tensors = tiny_model.tensors()
    names = sorted(tensors)
    half = len(names) // 2
    shards = {
        "model-00001-of-00002.safetensors": names[:half],
        "model-00002-of-00002.safetensors": names[half:],
    }
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: np.ascontiguousarray(tensors[k]) for k in keys}, str(tmp_path / shard))
        weight_map.update(dict.fromkeys(keys, shard))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.embed, tiny_model.embed)


# -- bad models: each names what is wrong -----------------------------------------------------


@pytest.fixture
def model_dir(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "m")
    return tmp_path / "m"


def _edit_config(model_dir, **changes):
    cfg = json.loads((model_dir / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (model_dir / "config.json").write_text(json.dumps(cfg))


def _rewrite_tensors(model_dir, edit):
    from safetensors.numpy import load_file, save_file

    tensors = dict(load_file(str(model_dir / "model.safetensors")))
    edit(tensors)
    save_file(tensors, str(model_dir / "model.safetensors"))


def _set(tensors, key, value):
    tensors[key] = value


BAD_CASES = {
    "no directory": (lambda d: d.rename(d.with_name("gone")), "model directory not found"),
    "no config": (lambda d: (d / "config.json").unlink(), "no config.json"),
    "config not json": (lambda d: (d / "config.json").write_text("{nope"), "config.json"),
    "config missing field": (lambda d: _edit_config(d, hidden_size=None), "hidden_size"),
    "config bad value": (lambda d: _edit_config(d, num_hidden_layers=0), "num_hidden_layers"),
    "rope scaling": (lambda d: _edit_config(d, rope_scaling={"type": "linear", "factor": 2.0}), "rope_scaling"),
    "activation": (lambda d: _edit_config(d, hidden_act="gelu"), "hidden_act"),
    "biases": (lambda d: _edit_config(d, attention_bias=True), "attention_bias"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
    "empty weights": (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors"),
    "garbage weights": (lambda d: (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!"), "not a valid safetensors"),
    "huge header": (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 16), "not a valid safetensors"),
    "truncated weights": (
        lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-100]),
        "model.safetensors",
    ),
    "missing tensor": (
        lambda d: _rewrite_tensors(d, lambda t: t.pop("model.layers.1.mlp.up_proj.weight")),
        "model.layers.1.mlp.up_proj.weight",
    ),
    "wrong shape": (
        lambda d: _rewrite_tensors(d, lambda t: _set(t, "model.layers.0.self_attn.k_proj.weight", np.zeros((8, 32), np.float32))),
        "model.layers.0.self_attn.k_proj.weight",
    ),
    "unexpected tensor": (
        lambda d: _rewrite_tensors(d, lambda t: _set(t, "model.layers.9.mlp.up_proj.weight", np.zeros(3, np.float32))),
        "model.layers.9.mlp.up_proj.weight",
    ),
    "nan": (
        lambda d: _rewrite_tensors(d, lambda t: t["model.norm.weight"].__setitem__(3, np.nan)),
        "model.norm.weight contains NaN",
    ),
    "inf": (
        lambda d: _rewrite_tensors(d, lambda t: t["model.embed_tokens.weight"].__setitem__((0, 0), np.inf)),
        "model.embed_tokens.weight",
    ),
    "int dtype": (
        lambda d: _rewrite_tensors(d, lambda t: _set(t, "model.norm.weight", np.ones(32, np.int32))),
        "model.norm.weight",
    ),
    "bf16 truncated": (
        lambda d: write_safetensors(d / "model.safetensors", {"model.norm.weight": ("BF16", (32,), b"\x00" * 63)}),
        "model.norm.weight",
    ),
    "bf16 bad offsets": (
        lambda d: _write_raw_header(d / "model.safetensors", {"model.norm.weight": {"dtype": "BF16", "shape": [32], "data_offsets": "x"}}),
        "model.norm.weight",
    ),
    "header not an object": (lambda d: _write_raw_header(d / "model.safetensors", [1, 2]), "not a valid safetensors"),
    "entry not an object": (lambda d: _write_raw_header(d / "model.safetensors", {"model.norm.weight": 3}), "model.norm.weight"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_model_raises_model_load_error_naming_the_problem(case, model_dir):
    damage, expected = BAD_CASES[case]
    damage(model_dir)
    with pytest.raises(ModelLoadError) as info:
        load_model(model_dir)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_single_threaded_blas_sections_always_restore_the_default(tiny_model):
    """Small models run with one BLAS thread; overlapping runs from several threads must
    leave OpenBLAS at its default thread count afterwards."""
    import threading

    from llm_anatomy_tui.core.blas import BLAS as _BLAS

    before = _BLAS.threads()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            cache = KVCache(tiny_model.config)
            forward(tiny_model, [1, 2, 3], cache)
            for t in range(30):
                decode_token(tiny_model, t, cache)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _BLAS.threads() == before
    with one_blas_thread():
        assert _BLAS.threads() in (1, None)  # None: numpy's BLAS is not OpenBLAS
    assert _BLAS.threads() == before


def test_decode_token_refuses_bad_ids_and_a_full_cache(tiny_model):
    cache = KVCache(tiny_model.config, capacity=2)
    for bad in (-1, 8193):
        with pytest.raises(ValueError, match="outside"):
            decode_token(tiny_model, bad, cache)
    decode_token(tiny_model, 1, cache)
    decode_token(tiny_model, 2, cache)
    with pytest.raises(ContextOverflowError):
        decode_token(tiny_model, 3, cache)
    assert cache.length == 2


def test_large_models_decode_from_a_column_major_copy(monkeypatch):
    """Above DECODE_LAYOUT_MIN_BYTES decoding reads [in, out] copies: same logits, and
    the originals are frozen so they cannot silently go stale."""
    from llm_anatomy_tui.core import model as model_module

    cfg = LlamaConfig(300, 32, 48, 2, 4, 2, 32)
    plain = init_random(cfg, seed=8)
    large = init_random(cfg, seed=8)
    monkeypatch.setattr(model_module, "DECODE_LAYOUT_MIN_BYTES", 0)
    layout = model_module.decode_layout(large)
    assert layout is not None and layout.head is not None
    assert layout.layers[0][0].shape == large.layers[0].wqkv.shape[::-1]
    assert layout.layers[0][3] is None  # down_proj is wider than tall: rows stay faster
    assert model_module.decode_layout(large) is layout  # built once
    tokens = [3, 1, 4, 1, 5, 9, 2, 6]
    caches = KVCache(cfg), KVCache(cfg)
    forward(plain, tokens[:1], caches[0])
    forward(large, tokens[:1], caches[1])
    for t in tokens[1:]:
        monkeypatch.setattr(model_module, "DECODE_LAYOUT_MIN_BYTES", 2**62)
        want = decode_token(plain, t, caches[0])
        monkeypatch.setattr(model_module, "DECODE_LAYOUT_MIN_BYTES", 0)
        got = decode_token(large, t, caches[1])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="read-only"):
        large.layers[0].wqkv[0, 0] = 1.0
