"""A Llama-architecture decoder in numpy: weights, loading/saving, forward pass with trace.

The forward pass reads top to bottom like the diagram in chapter 0::

    tokens -> embed -> N x [RMSNorm -> GQA attention (RoPE on q, k) -> +residual
                            RMSNorm -> SwiGLU FFN -> +residual] -> RMSNorm -> logits

Weights are kept under their Hugging Face names (``model.layers.0.self_attn.q_proj.weight``
…), in Hugging Face's ``[out_features, in_features]`` layout. Internally the q/k/v
projections of a layer are rows of one fused matrix, and gate/up likewise, so each
projection is a single BLAS call; the HF-named tensors are contiguous row-slices (views)
of those fused matrices, so nothing is stored twice.

:func:`forward` runs any number of tokens (with an optional KV cache and trace); one
cached token without a trace takes the lean path :func:`decode_token`. Models too large
for the CPU cache decode from column-major copies of their matrices
(:func:`decode_layout`), and every pass runs on one BLAS thread
(:data:`SINGLE_THREAD_BLAS`) — both measured choices, explained where they are defined.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import ConfigError, LlamaConfig
from .ops import (
    apply_rope,
    attention_scores,
    causal_mask,
    mix_values,
    rms_norm,
    rope_cos_sin,
    softmax,
    swiglu,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


class ModelLoadError(RuntimeError):
    """A model directory cannot be used; the message names the file, tensor or field."""


class ContextOverflowError(ValueError):
    """More positions were asked for than the model's context window holds."""


# -- weights -----------------------------------------------------------------------------


@dataclass
class Layer:
    """One decoder block's weights (float32, HF ``[out, in]`` layout)."""

    attn_norm: np.ndarray  # [d]
    wqkv: np.ndarray  # [(H + 2*Hkv) * D, d]   rows: q_proj | k_proj | v_proj
    wo: np.ndarray  # [d, H * D]              o_proj
    ffn_norm: np.ndarray  # [d]
    w_gate_up: np.ndarray  # [2 * f, d]        rows: gate_proj | up_proj
    w_down: np.ndarray  # [d, f]                down_proj


@dataclass
class Model:
    """Weights plus config. Build with :func:`load_model`, :func:`init_random` or
    :meth:`Model.from_tensors`."""

    config: LlamaConfig
    embed: np.ndarray  # [V, d]
    layers: list[Layer]
    norm: np.ndarray  # [d]
    lm_head: np.ndarray  # [V, d]; the same array as ``embed`` when embeddings are tied
    name: str = "model"
    _rope: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _decode_layout: DecodeLayout | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._rope = self._rope_for(0)

    def _rope_for(self, needed: int) -> tuple[np.ndarray, np.ndarray]:
        """RoPE tables covering at least ``needed`` positions (grown by doubling, never
        past the window: a window of a million positions costs nothing until it is used)."""
        from .limits import rope_positions

        rope = getattr(self, "_rope", None)
        if rope is not None and rope[0].shape[0] >= needed:
            return rope
        cfg = self.config
        positions = np.arange(rope_positions(needed, cfg.max_position_embeddings))
        self._rope = rope_cos_sin(positions, cfg.dim_head, cfg.rope_theta)  # 2 x [P, D]
        return self._rope

    def __repr__(self) -> str:
        # Short on purpose: Textual (worker descriptions) and tracebacks call repr(), and
        # the dataclass default would print every weight array.
        cfg = self.config
        return (
            f"Model(name={self.name!r}, layers={cfg.num_hidden_layers}, "
            f"hidden={cfg.hidden_size}, heads={cfg.num_attention_heads}/"
            f"{cfg.num_key_value_heads}, vocab={cfg.vocab_size})"
        )

    # -- HF-named view of the weights -----------------------------------------------------
    def tensors(self) -> dict[str, np.ndarray]:
        """Every weight under its Hugging Face name (views, not copies)."""
        cfg = self.config
        q, kv, f = cfg.q_width, cfg.kv_width, cfg.intermediate_size
        out: dict[str, np.ndarray] = {"model.embed_tokens.weight": self.embed}
        for i, layer in enumerate(self.layers):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = layer.attn_norm
            out[p + "self_attn.q_proj.weight"] = layer.wqkv[:q]
            out[p + "self_attn.k_proj.weight"] = layer.wqkv[q : q + kv]
            out[p + "self_attn.v_proj.weight"] = layer.wqkv[q + kv :]
            out[p + "self_attn.o_proj.weight"] = layer.wo
            out[p + "post_attention_layernorm.weight"] = layer.ffn_norm
            out[p + "mlp.gate_proj.weight"] = layer.w_gate_up[:f]
            out[p + "mlp.up_proj.weight"] = layer.w_gate_up[f:]
            out[p + "mlp.down_proj.weight"] = layer.w_down
        out["model.norm.weight"] = self.norm
        if not self.config.tie_word_embeddings:
            out["lm_head.weight"] = self.lm_head
        return out

    @classmethod
    def from_tensors(
        cls, config: LlamaConfig, tensors: dict[str, np.ndarray], name: str = "model"
    ) -> Model:
        """Build a model from HF-named arrays, checking every name, shape and value."""
        expected = expected_shapes(config)
        for key, shape in expected.items():
            if key not in tensors:
                raise ModelLoadError(f"missing tensor {key} (expected shape {list(shape)})")
            got = tuple(tensors[key].shape)
            if got != shape:
                raise ModelLoadError(f"tensor {key} has shape {list(got)}, expected {list(shape)}")
        ignorable = ("rotary_emb.inv_freq",) + (
            ("lm_head.weight",) if config.tie_word_embeddings else ()
        )
        unexpected = [k for k in tensors if k not in expected and not k.endswith(ignorable)]
        if unexpected:
            raise ModelLoadError(
                f"unexpected tensor {unexpected[0]} — not part of a Llama model with this config"
            )

        def get(key: str) -> np.ndarray:
            arr = np.asarray(tensors[key], dtype=np.float32)
            if not np.isfinite(arr).all():
                raise ModelLoadError(f"tensor {key} contains NaN or infinite values")
            return arr

        layers = []
        for i in range(config.num_hidden_layers):
            p = f"model.layers.{i}."
            layers.append(
                Layer(
                    attn_norm=np.ascontiguousarray(get(p + "input_layernorm.weight")),
                    wqkv=np.concatenate(
                        [get(p + f"self_attn.{n}_proj.weight") for n in "qkv"], axis=0
                    ),
                    wo=np.ascontiguousarray(get(p + "self_attn.o_proj.weight")),
                    ffn_norm=np.ascontiguousarray(get(p + "post_attention_layernorm.weight")),
                    w_gate_up=np.concatenate(
                        [get(p + "mlp.gate_proj.weight"), get(p + "mlp.up_proj.weight")], axis=0
                    ),
                    w_down=np.ascontiguousarray(get(p + "mlp.down_proj.weight")),
                )
            )
        embed = np.ascontiguousarray(get("model.embed_tokens.weight"))
        head = embed if config.tie_word_embeddings else np.ascontiguousarray(get("lm_head.weight"))
        return cls(
            config=config,
            embed=embed,
            layers=layers,
            norm=np.ascontiguousarray(get("model.norm.weight")),
            lm_head=head,
            name=name,
        )

    def with_tensors(self, replacements: dict[str, np.ndarray], name: str | None = None) -> Model:
        """A new model with some HF-named tensors replaced (e.g. by quantized copies)."""
        tensors = dict(self.tensors())
        tensors.update(replacements)
        return Model.from_tensors(self.config, tensors, name=name or self.name)

    @property
    def nbytes(self) -> int:
        """Bytes of float32 weights held (a tied embedding counted once)."""
        return sum(t.nbytes for t in self.tensors().values())

    def rope_tables(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos, sin rows for the given absolute positions: 2 x [T, D]."""
        positions = np.asarray(positions)
        cos, sin = self._rope_for(int(positions.max()) + 1 if positions.size else 0)
        return cos[positions], sin[positions]


def expected_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """HF tensor name -> shape for a model with this config."""
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, d)}
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "self_attn.q_proj.weight"] = (config.q_width, d)
        shapes[p + "self_attn.k_proj.weight"] = (config.kv_width, d)
        shapes[p + "self_attn.v_proj.weight"] = (config.kv_width, d)
        shapes[p + "self_attn.o_proj.weight"] = (d, config.q_width)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        shapes[p + "mlp.gate_proj.weight"] = (f, d)
        shapes[p + "mlp.up_proj.weight"] = (f, d)
        shapes[p + "mlp.down_proj.weight"] = (d, f)
    shapes["model.norm.weight"] = (d,)
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (v, d)
    return shapes


def init_random(
    config: LlamaConfig, seed: int = 0, std: float = 0.02, name: str = "random"
) -> Model:
    """A model with seeded random weights — for tests and benchmarks, never presented as trained.

    Projections ~ N(0, std²); the output projections of each block are scaled down by
    sqrt(2 * layers) (GPT-2 style) so the residual stream stays well-conditioned; norms = 1.
    """
    rng = np.random.default_rng(seed)
    out_std = std / np.sqrt(2 * config.num_hidden_layers)
    tensors = {}
    for key, shape in expected_shapes(config).items():
        if key.endswith("norm.weight") or key.endswith("layernorm.weight"):
            tensors[key] = np.ones(shape, dtype=np.float32)
        else:
            scale = out_std if key.endswith(("o_proj.weight", "down_proj.weight")) else std
            tensors[key] = rng.normal(0.0, scale, size=shape).astype(np.float32)
    return Model.from_tensors(config, tensors, name=name)


# -- KV cache ----------------------------------------------------------------------------


class LayerKV:
    """Keys (after RoPE) and values of one layer for every position seen so far.

    Storage is preallocated for the whole context window; :attr:`keys` / :attr:`values`
    are views of the filled part, so their ``nbytes`` is exactly what the cache holds.
    """

    def __init__(self, n_kv_heads: int, capacity: int, head_dim: int) -> None:
        self._k = np.zeros((n_kv_heads, capacity, head_dim), dtype=np.float32)
        self._v = np.zeros((n_kv_heads, capacity, head_dim), dtype=np.float32)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self._k.shape[1]

    @property
    def keys(self) -> np.ndarray:
        return self._k[:, : self.length]  # [Hkv, S, D]

    @property
    def values(self) -> np.ndarray:
        return self._v[:, : self.length]  # [Hkv, S, D]

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes

    def append(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store new k, v ([Hkv, T, D]) after the cached ones; return all keys and values."""
        start = self.length
        end = start + k.shape[1]
        if end > self._k.shape[1]:
            raise ContextOverflowError(
                f"KV cache full: {start} + {k.shape[1]} positions > capacity {self.capacity}"
            )
        self._k[:, start:end] = k
        self._v[:, start:end] = v
        self.length = end
        return self._k[:, :end], self._v[:, :end]

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (used to rewind generation)."""
        self.length = max(0, min(length, self.length))


class KVCache:
    """One :class:`LayerKV` per block. ``length`` is the number of positions cached."""

    def __init__(self, config: LlamaConfig, capacity: int | None = None) -> None:
        capacity = capacity or config.max_position_embeddings
        self.layers = [
            self.make_layer(config.num_key_value_heads, capacity, config.dim_head)
            for _ in range(config.num_hidden_layers)
        ]

    def make_layer(self, n_kv_heads: int, capacity: int, head_dim: int) -> LayerKV:
        """Storage for one layer; subclasses return a quantized variant."""
        return LayerKV(n_kv_heads, capacity, head_dim)

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def capacity(self) -> int:
        return self.layers[0].capacity

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)

    def truncate(self, length: int) -> None:
        for layer in self.layers:
            layer.truncate(length)


# -- trace -------------------------------------------------------------------------------

LAYER_TRACE_KEYS: dict[str, str] = {
    "resid_in": "[T, d] residual stream entering the block",
    "attn_norm": "[T, d] RMSNorm(resid_in) — the attention's input",
    "q": "[H, T, D] queries before RoPE",
    "k": "[Hkv, T, D] keys before RoPE",
    "v": "[Hkv, T, D] values (never rotated)",
    "q_rope": "[H, T, D] queries after RoPE",
    "k_rope": "[Hkv, T, D] keys after RoPE",
    "scores": "[H, T, S] q·k/sqrt(D) for every key position, before the mask",
    "mask": "[T, S] True where the query may attend (causal)",
    "weights": "[H, T, S] softmax of masked scores; masked cells exactly 0",
    "heads": "[H, T, D] weighted sums of values, one per head",
    "attn_out": "[T, d] heads concatenated and projected by o_proj",
    "resid_attn": "[T, d] residual after attention: resid_in + attn_out",
    "ffn_norm": "[T, d] RMSNorm(resid_attn) — the FFN's input",
    "gate": "[T, f] gate_proj(ffn_norm)",
    "up": "[T, f] up_proj(ffn_norm)",
    "hidden": "[T, f] silu(gate) * up",
    "ffn_out": "[T, d] down_proj(hidden)",
    "resid_ffn": "[T, d] residual after the FFN: the block's output",
}


@dataclass
class Trace:
    """Named intermediates of one forward call, recorded only when a Trace is passed in.

    ``layers[i]`` maps the names in :data:`LAYER_TRACE_KEYS` to arrays. T is the number of
    tokens run in this call; S counts every key position (cached ones included).
    """

    tokens: np.ndarray | None = None  # [T]
    positions: np.ndarray | None = None  # [T] absolute positions
    embeddings: np.ndarray | None = None  # [T, d] embedding rows looked up
    layers: list[dict[str, np.ndarray]] = field(default_factory=list)
    final_norm: np.ndarray | None = None  # [T, d]
    logits: np.ndarray | None = None  # [T, V]


# -- forward -----------------------------------------------------------------------------


def attention_block(
    x: np.ndarray,
    layer: Layer,
    config: LlamaConfig,
    cos: np.ndarray,
    sin: np.ndarray,
    kv: LayerKV | None,
    rec: dict[str, np.ndarray] | None,
) -> np.ndarray:
    """Grouped-query causal self-attention on normed input x [T, d] -> [T, d]."""
    n_tokens = x.shape[0]
    n_heads, n_kv, head_dim = (
        config.num_attention_heads,
        config.num_key_value_heads,
        config.dim_head,
    )
    qkv = x @ layer.wqkv.T  # [T, d] -> [T, (H + 2Hkv) * D]
    q_end, k_end = n_heads * head_dim, (n_heads + n_kv) * head_dim
    q = qkv[:, :q_end].reshape(n_tokens, n_heads, head_dim).transpose(1, 0, 2)  # [H, T, D]
    k = qkv[:, q_end:k_end].reshape(n_tokens, n_kv, head_dim).transpose(1, 0, 2)  # [Hkv, T, D]
    v = qkv[:, k_end:].reshape(n_tokens, n_kv, head_dim).transpose(1, 0, 2)  # [Hkv, T, D]
    q_rope = apply_rope(q, cos, sin)
    k_rope = apply_rope(k, cos, sin)
    if kv is not None:
        k_all, v_all = kv.append(k_rope, v)  # [Hkv, S, D] with S = cached + T
    else:
        k_all, v_all = k_rope, v
    scores = attention_scores(q_rope, k_all)  # [H, T, S]
    if n_tokens == 1 and rec is None:
        weights = softmax(scores)  # a single newest query sees every key: nothing to mask
        mask = None
    else:
        mask = causal_mask(n_tokens, k_all.shape[1])  # [T, S]
        weights = softmax(np.where(mask, scores, -np.inf))
    heads = mix_values(weights, v_all)  # [H, T, D]
    merged = heads.transpose(1, 0, 2).reshape(n_tokens, n_heads * head_dim)  # [T, H*D]
    out = merged @ layer.wo.T  # [T, d]
    if rec is not None:
        rec.update(
            q=q, k=k, v=v, q_rope=q_rope, k_rope=k_rope, scores=scores, mask=mask,
            weights=weights, heads=heads, attn_out=out,
        )  # fmt: skip
    return out


def ffn_block(x: np.ndarray, layer: Layer, rec: dict[str, np.ndarray] | None) -> np.ndarray:
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x)). x [T, d] -> [T, d]."""
    f = layer.w_down.shape[1]
    gate_up = x @ layer.w_gate_up.T  # [T, d] -> [T, 2f]
    gate, up = gate_up[:, :f], gate_up[:, f:]
    hidden = swiglu(gate, up)  # [T, f]
    out = hidden @ layer.w_down.T  # [T, d]
    if rec is not None:
        rec.update(gate=gate, up=up, hidden=hidden, ffn_out=out)
    return out


def decoder_block(
    x: np.ndarray,
    layer: Layer,
    config: LlamaConfig,
    cos: np.ndarray,
    sin: np.ndarray,
    kv: LayerKV | None = None,
    rec: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Pre-norm residual block: x + attn(norm(x)), then h + ffn(norm(h))."""
    eps = config.rms_norm_eps
    normed = rms_norm(x, layer.attn_norm, eps)
    h = x + attention_block(normed, layer, config, cos, sin, kv, rec)
    normed2 = rms_norm(h, layer.ffn_norm, eps)
    out = h + ffn_block(normed2, layer, rec)
    if rec is not None:
        rec.update(resid_in=x, attn_norm=normed, resid_attn=h, ffn_norm=normed2, resid_ffn=out)
    return out


def check_tokens(model: Model, tokens: Sequence[int] | np.ndarray, start: int = 0) -> np.ndarray:
    """Validate token IDs and positions; return them as an int64 array."""
    ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
    cfg = model.config
    if ids.size == 0:
        raise ValueError("no tokens to run: the prompt is empty")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        bad = int(ids[(ids < 0) | (ids >= cfg.vocab_size)][0])
        raise ValueError(
            f"token id {bad} is outside this model's vocabulary (0..{cfg.vocab_size - 1})"
        )
    if start + ids.size > cfg.max_position_embeddings:
        raise ContextOverflowError(
            f"{start + ids.size} positions exceed the context window of "
            f"{cfg.max_position_embeddings} tokens"
        )
    return ids


def forward(
    model: Model,
    tokens: Sequence[int] | np.ndarray,
    cache: KVCache | None = None,
    trace: Trace | None = None,
    all_logits: bool = True,
) -> np.ndarray:
    """Logits [T, V] for ``tokens``, placed after whatever ``cache`` already holds.

    Without a cache the tokens sit at positions 0..T-1. With one, they continue from
    ``cache.length`` and their keys/values are appended to it (prefill, then decode).
    ``all_logits=False`` runs the output head on the last position only and returns
    [1, V]: generation needs nothing else, and for a large vocabulary the head is a large
    share of a prefill's work. A trace always records the logits of every position.

    BLAS threads: see :data:`SINGLE_THREAD_BLAS`.
    """
    with _blas_threads():
        return _forward(model, tokens, cache, trace, all_logits)


def _forward(
    model: Model,
    tokens: Sequence[int] | np.ndarray,
    cache: KVCache | None,
    trace: Trace | None,
    all_logits: bool,
) -> np.ndarray:
    start = cache.length if cache is not None else 0
    ids = check_tokens(model, tokens, start)
    if ids.size == 1 and cache is not None and trace is None:
        return _decode_token(model, int(ids[0]), cache)[None, :]  # [1, V]
    cfg = model.config
    positions = np.arange(start, start + ids.size)
    cos, sin = model.rope_tables(positions)
    x = model.embed[ids]  # [T] -> [T, d]
    if trace is not None:
        trace.tokens, trace.positions, trace.embeddings = ids, positions, x
        trace.layers = []
    for i, layer in enumerate(model.layers):
        rec: dict[str, np.ndarray] | None = {} if trace is not None else None
        kv = cache.layers[i] if cache is not None else None
        x = decoder_block(x, layer, cfg, cos, sin, kv, rec)
        if trace is not None:
            trace.layers.append(rec)
    if not all_logits and trace is None:
        x = x[-1:]  # [T, d] -> [1, d]: only the next-token prediction is wanted
    h = rms_norm(x, model.norm, cfg.rms_norm_eps)
    logits = h @ model.lm_head.T  # [T, d] -> [T, V]
    if trace is not None:
        trace.final_norm, trace.logits = h, logits
        if not all_logits:
            return logits[-1:]
    return logits


SINGLE_THREAD_BLAS = True
"""Run every forward pass with one BLAS thread (set False to let OpenBLAS use all cores).

Why: OpenBLAS splits a matrix product across threads that busy-wait for each other.
When other processes keep the cores busy — a training run, another OpenBLAS program, a
test suite, the UI — each product waits for a descheduled helper thread. Measured on the
project's 2-core machine with a training run in the background, one thread against all:
cached decode of anatomy-mini 2,400 vs 120-190 tokens/s; a traced 256-token forward
20-35 vs 100-500 ms; a 128-token prefill of the 768-wide shape 0.4 vs 2-5 s. On an idle
machine all threads gain ~10% on small models and up to 2x on the matrix-matrix products
of a large model's prefill; decoding, bound by memory bandwidth, gains nothing (one core
already streams ~20 GB/s here). Robustness wins: one thread.
"""


def one_blas_thread() -> contextlib.AbstractContextManager:
    """``with one_blas_thread():`` limits numpy's OpenBLAS to one thread, then restores it.

    Process-wide while active (OpenBLAS has no per-thread setting); overlapping uses from
    several threads are counted, so the default comes back when the last one ends. A no-op
    when numpy's BLAS is not OpenBLAS.
    """
    return _BLAS.one_thread()


def _blas_threads() -> contextlib.AbstractContextManager:
    return _BLAS.one_thread() if SINGLE_THREAD_BLAS else contextlib.nullcontext()


def decode_token(model: Model, token: int, cache: KVCache) -> np.ndarray:
    """Logits [V] for one new token at position ``cache.length``, appending its K/V.

    The same arithmetic as :func:`forward` (which calls this for a single cached token
    without a trace), written the way llama2.c's ``forward`` is: one vector per step,
    matrix-vector products against the ``[out, in]`` weights — each a contiguous row
    stream, so large models run at memory bandwidth — and as few numpy calls as
    possible, because at this size Python's per-call overhead rivals the arithmetic.
    BLAS threads: see :data:`SINGLE_THREAD_BLAS`.
    """
    with _blas_threads():
        return _decode_token(model, token, cache)


def _decode_token(model: Model, token: int, cache: KVCache) -> np.ndarray:
    cfg = model.config
    n_heads, n_kv, head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.dim_head
    group, f = cfg.group_size, cfg.intermediate_size
    eps, inv_d = cfg.rms_norm_eps, 1.0 / cfg.hidden_size
    q_end, k_end = n_heads * head_dim, (n_heads + n_kv) * head_dim
    pos = cache.length
    if pos >= cfg.max_position_embeddings:
        raise ContextOverflowError(
            f"{pos + 1} positions exceed the context window of {cfg.max_position_embeddings} tokens"
        )
    if not 0 <= token < cfg.vocab_size:  # a negative id would silently index from the end
        raise ValueError(
            f"token id {token} is outside this model's vocabulary (0..{cfg.vocab_size - 1})"
        )
    rope = model._rope_for(pos + 1)
    cos, sin = rope[0][pos], rope[1][pos]  # [D] each
    # rotate_half(v) * sin == v[swap] * signed_sin, with swap exchanging the two halves:
    # one gather instead of a negation and a concatenation, per layer.
    swap, sign = _half_swap(head_dim)
    signed_sin = sin * sign  # [D]: -sin on the first half, +sin on the second
    scale = 1.0 / math.sqrt(head_dim)

    def norm(v: np.ndarray, gain: np.ndarray) -> np.ndarray:
        # RMSNorm of one vector: the mean square is a dot product, the rest scalar math
        # (a Python float times a float32 array stays float32).
        return v * (gain * (1.0 / math.sqrt(float(v @ v) * inv_d + eps)))

    cols = decode_layout(model)  # None: every product reads the [out, in] rows
    x = model.embed[token]  # [d]
    for i, (layer, kv) in enumerate(zip(model.layers, cache.layers, strict=True)):
        wt = cols.layers[i] if cols is not None else (None, None, None, None)
        qkv = _mv(layer.wqkv, wt[0], norm(x, layer.attn_norm))  # [d] -> [(H + 2Hkv) * D]
        qk = qkv[:k_end].reshape(n_heads + n_kv, head_dim)  # q heads, then k heads: [H+Hkv, D]
        # RoPE (rotate-half) on every q and k head at once: x*cos + [-x2, x1]*sin.
        qk = qk * cos + qk.take(swap, axis=1) * signed_sin
        k_new = qk[n_heads:, None, :]  # [Hkv, 1, D]
        v_new = qkv[k_end:].reshape(n_kv, 1, head_dim)  # [Hkv, 1, D]
        keys, values = kv.append(k_new, v_new)  # [Hkv, S, D] each, S = pos + 1
        qg = qk[:n_heads].reshape(n_kv, group, head_dim)  # query heads grouped by K/V head
        weights = qg @ keys.transpose(0, 2, 1)  # [Hkv, G, S] scores; no mask: all S visible
        weights *= scale
        # softmax over keys, in place (a fresh array per step costs more than the math)
        weights -= np.maximum.reduce(weights, axis=-1, keepdims=True)
        np.exp(weights, out=weights)
        weights /= np.add.reduce(weights, axis=-1, keepdims=True)
        heads = weights @ values  # [Hkv, G, D], i.e. [H, D] in head order
        x = x + _mv(layer.wo, wt[1], heads.reshape(q_end))  # [H*D] -> [d]
        gate_up = _mv(layer.w_gate_up, wt[2], norm(x, layer.ffn_norm))  # [d] -> [2f]
        gate, up = gate_up[:f], gate_up[f:]
        hidden = gate / (1.0 + np.exp(-gate)) * up  # silu(gate) * up: [f]
        x = x + _mv(layer.w_down, wt[3], hidden)  # [f] -> [d]
    head = cols.head if cols is not None else None
    return _mv(model.lm_head, head, norm(x, model.norm))  # [V]


def _mv(w: np.ndarray, w_cols: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """w @ x for w [out, in], read from the [in, out] copy when there is one."""
    return w @ x if w_cols is None else x @ w_cols


# -- the decode layout -------------------------------------------------------------------

DECODE_LAYOUT_MIN_BYTES = 32 * 2**20
"""Models with more weight bytes than this decode from an [in, out] copy of the matrices
that are at least as tall as they are wide (see :func:`decode_layout`)."""


@dataclass(frozen=True)
class DecodeLayout:
    """[in, out] (column-major) copies of a model's matrices, for one-token decoding.

    ``layers[i]`` holds (wqkv, wo, w_gate_up, w_down) transposed, or None for a matrix
    kept in its [out, in] layout; ``head`` likewise for the output head.
    """

    layers: list[tuple[np.ndarray | None, ...]]
    head: np.ndarray | None


_LAYOUT_LOCK = threading.Lock()


def decode_layout(model: Model) -> DecodeLayout | None:
    """The column-major copies a large model decodes from, built on first use; None for
    a model small enough to stay in the CPU cache.

    Why: decoding a token multiplies each weight matrix by one vector, so it is bound by
    how fast the matrix streams from memory. OpenBLAS's matrix-vector kernel streams an
    [in, out] matrix (an axpy per input) at ~25-27 GB/s on the project's machine, the
    memory's full read rate, but an [out, in] one (a dot product per output row) at only
    ~17-18 GB/s — except for wide matrices such as down_proj, where the row layout is a
    little faster. Weights cached in L3 run fast either way, so small models (and the
    trained anatomy-mini) keep the HF [out, in] layout only and pay no extra memory.

    The copies double a large model's memory, and the originals are frozen (read-only)
    when the copies are made, so an in-place weight update fails loudly instead of
    leaving decoding with stale weights; build a new model (:meth:`Model.with_tensors`)
    to change weights.
    """
    if model.config.parameter_count() * 4 <= DECODE_LAYOUT_MIN_BYTES:
        return None
    if model._decode_layout is None:
        with _LAYOUT_LOCK:
            if model._decode_layout is None:
                model._decode_layout = _build_decode_layout(model)
    return model._decode_layout


def _build_decode_layout(model: Model) -> DecodeLayout:
    def cols(w: np.ndarray) -> np.ndarray | None:
        if w.shape[0] < w.shape[1]:  # wider than tall: rows stream faster (measured)
            return None
        w.flags.writeable = False  # the copy below must not go stale
        t = np.ascontiguousarray(w.T)  # [out, in] -> [in, out]
        t.flags.writeable = False
        return t

    layers = [
        tuple(cols(w) for w in (layer.wqkv, layer.wo, layer.w_gate_up, layer.w_down))
        for layer in model.layers
    ]
    return DecodeLayout(layers, cols(model.lm_head))


@functools.cache
def _half_swap(head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Index exchanging the two halves of a head ([D/2..D) then [0..D/2)), and the signs
    that turn the swapped vector into rotate_half's [-x2, x1]."""
    half = head_dim // 2
    swap = np.concatenate([np.arange(half, head_dim), np.arange(half)])
    sign = np.concatenate([-np.ones(half, np.float32), np.ones(half, np.float32)])
    swap.flags.writeable = sign.flags.writeable = False
    return swap, sign


class _BlasThreads:
    """Limit OpenBLAS (numpy's BLAS) to one thread inside ``with one_thread():``.

    Uses OpenBLAS's own ``set_num_threads`` through ctypes, as ``threadpoolctl`` does; a
    no-op when numpy's BLAS is something else or cannot be found. The setting is process
    wide, so overlapping sections (several threads) are counted and the default thread
    count is restored when the last one ends — never left at one thread by accident.
    """

    _SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                "openblas_set_num_threads")  # fmt: skip
    _GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                "openblas_get_num_threads")  # fmt: skip

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._set = self._get = None
        self._default = 1
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        try:
            with open("/proc/self/maps") as fh:  # Linux: the libraries this process loaded
                paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower()}
        except OSError:
            return
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            setter = next((getattr(lib, n) for n in self._SETTERS if hasattr(lib, n)), None)
            getter = next((getattr(lib, n) for n in self._GETTERS if hasattr(lib, n)), None)
            if setter is not None and getter is not None:
                self._set, self._get, self._default = setter, getter, int(getter())
                return

    def threads(self) -> int | None:
        """OpenBLAS's current thread count, or None if it cannot be controlled here."""
        with self._lock:
            if not self._loaded:
                self._load()
        return None if self._set is None else int(self._get())

    @contextlib.contextmanager
    def one_thread(self) -> Iterator[None]:
        with self._lock:
            if not self._loaded:
                self._load()
            if self._set is None or self._default <= 1:
                active = False
            else:
                active = True
                if self._active == 0:
                    self._set(1)
                self._active += 1
        try:
            yield
        finally:
            if active:
                with self._lock:
                    self._active -= 1
                    if self._active == 0:
                        self._set(self._default)


_BLAS = _BlasThreads()


def logit_lens(model: Model, residual: np.ndarray) -> np.ndarray:
    """What the model would predict from an intermediate residual [..., d] -> logits [..., V].

    Applies the final RMSNorm and the output head to a residual taken after any block.
    """
    return rms_norm(residual, model.norm, model.config.rms_norm_eps) @ model.lm_head.T


# -- files -------------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a .safetensors file into float32 arrays (F32, F16 and BF16 supported).

    The ``safetensors`` package does the reading; numpy has no bfloat16, so BF16 tensors
    are read from the file's (documented, JSON) header as uint16 and widened to float32.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        header = _safetensors_header(path)
    except FileNotFoundError:
        raise ModelLoadError(f"no {path.name} in {path.parent}") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ModelLoadError(f"{path.name} is not a valid safetensors file (entry {key})")
        if info.get("dtype") not in _SAFETENSORS_DTYPES:
            raise ModelLoadError(
                f"tensor {key} in {path.name} has dtype {info.get('dtype')}; "
                "supported: F32, F16, BF16, F64"
            )
    if any(info["dtype"] == "BF16" for k, info in header.items() if k != "__metadata__"):
        return _read_with_bf16(path, header)
    try:
        raw = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path.name} is not a valid safetensors file: {exc}") from None
    return {k: v.astype(np.float32, copy=False) for k, v in raw.items()}


def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ModelLoadError(f"{path.name} is truncated (no safetensors header)")
        (size,) = struct.unpack("<Q", head)
        if size > 100_000_000:
            raise ModelLoadError(
                f"{path.name} is not a valid safetensors file (header size {size})"
            )
        try:
            header = json.loads(fh.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelLoadError(
                f"{path.name} is not a valid safetensors file (bad header)"
            ) from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name} is not a valid safetensors file (bad header)")
    return header


def _read_with_bf16(path: Path, header: dict) -> dict[str, np.ndarray]:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    base = 8 + struct.unpack("<Q", blob[:8])[0]
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            out[key] = _decode_tensor(blob, base, info)
        except (KeyError, TypeError, ValueError):
            raise ModelLoadError(
                f"tensor {key} in {path.name} is malformed or truncated "
                "(its data does not match its dtype, shape and offsets)"
            ) from None
    return out


def _decode_tensor(blob: bytes, base: int, info: dict) -> np.ndarray:
    """One tensor of a safetensors blob as float32 (BF16 widened by a 16-bit shift)."""
    start, end = (int(o) for o in info["data_offsets"])
    if not 0 <= start <= end or base + end > len(blob):
        raise ValueError("offsets out of range")
    buf = np.frombuffer(blob, dtype=np.uint8, count=end - start, offset=base + start)
    dtype = info["dtype"]
    if dtype == "BF16":
        # bfloat16 is the top half of a float32: shift the 16 bits up, reinterpret.
        arr = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        arr = buf.view(np.dtype(_SAFETENSORS_DTYPES[dtype]).newbyteorder("<")).astype(np.float32)
    return arr.reshape([int(n) for n in info["shape"]])


def load_model(path: str | Path) -> Model:
    """Load a model directory (``config.json`` + ``model.safetensors`` or a sharded index)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model directory not found: {path}")
    try:
        config = LlamaConfig.load(path / CONFIG_FILE)
    except ConfigError as exc:
        raise ModelLoadError(f"{path / CONFIG_FILE}: {exc}") from None
    index = path / WEIGHTS_INDEX_FILE
    if (path / WEIGHTS_FILE).exists() or not index.exists():
        tensors = read_safetensors(path / WEIGHTS_FILE)
    else:
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise ModelLoadError(f"cannot read {index}: {exc}") from None
        tensors = {}
        for shard in shards:
            tensors.update(read_safetensors(path / shard))
    return Model.from_tensors(config, tensors, name=path.name)


def save_model(model: Model, path: str | Path, dtype: str = "float32") -> None:
    """Write ``config.json`` + ``model.safetensors`` the way ``transformers`` does."""
    from safetensors.numpy import save_file

    np_dtype = {"float32": np.float32, "float16": np.float16}.get(dtype)
    if np_dtype is None:
        raise ValueError(f"cannot save as {dtype!r}; choose float32 or float16")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg_dict = model.config.to_dict() | {"torch_dtype": dtype}
    (path / CONFIG_FILE).write_text(json.dumps(cfg_dict, indent=2) + "\n", encoding="utf-8")
    arrays = {k: np.ascontiguousarray(v, dtype=np_dtype) for k, v in model.tensors().items()}
    tmp = path / (WEIGHTS_FILE + ".tmp")
    save_file(arrays, str(tmp), metadata={"format": "pt"})
    tmp.replace(path / WEIGHTS_FILE)


DEFAULT_MODEL_NAME = "anatomy-mini"


def default_model_dir() -> Path:
    """Where the shipped, trained default model lives inside the installed package."""
    from importlib import resources

    return Path(str(resources.files("llm_anatomy_tui") / "assets" / "models" / DEFAULT_MODEL_NAME))
