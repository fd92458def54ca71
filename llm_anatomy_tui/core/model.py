"""The forward pass of a Llama-architecture decoder, in numpy, readable in one sitting.

It reads top to bottom like the diagram in chapter 0::

    tokens -> embed -> N x [RMSNorm -> GQA attention (RoPE on q, k) -> +residual
                            RMSNorm -> SwiGLU FFN -> +residual] -> RMSNorm -> logits

with two family variations, each one line where it happens: Qwen2 adds biases to the
q/k/v projections, Qwen3 RMS-normalises each query and key head before RoPE.

:func:`forward` runs any number of tokens (with an optional KV cache and trace); one
cached token without a trace takes the lean path :func:`decode_token`. Large models
decode from column-major storage of their matrices (:func:`decode_layout`).

Everything else has its own module: the weights container (:mod:`.weights`), reading
and writing model files (:mod:`.formats`), the KV cache (:mod:`.kv_cache`), BLAS thread
control (:mod:`.blas`), the single operations (:mod:`.ops`). The names other modules
import from here (``Model``, ``load_model``, ``KVCache`` …) are re-exported.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import blas, weights
from .blas import one_blas_thread
from .config import ConfigError, LlamaConfig

# Re-exported: the names other modules have always imported from here.
from .formats import (
    CONFIG_FILE,
    DEFAULT_MODEL_NAME,
    WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE,
    default_model_dir,
    load_model,
    read_safetensors,
    save_model,
)
from .kv_cache import ContextOverflowError, KVCache, LayerKV
from .ops import (
    apply_rope,
    attention_scores,
    causal_mask,
    mix_values,
    rms_norm,
    softmax,
    swiglu,
)
from .weights import Layer, Model, ModelLoadError, expected_shapes, init_random

__all__ = [
    "CONFIG_FILE", "DEFAULT_MODEL_NAME", "LAYER_TRACE_KEYS", "WEIGHTS_FILE",
    "WEIGHTS_INDEX_FILE", "ConfigError", "ContextOverflowError", "KVCache", "Layer",
    "LayerKV", "Model", "ModelLoadError", "Trace", "check_tokens", "decode_layout",
    "decode_token", "default_model_dir", "expected_shapes", "forward", "init_random",
    "load_model", "logit_lens", "one_blas_thread", "read_safetensors", "save_model",
]  # fmt: skip


# -- trace -------------------------------------------------------------------------------

LAYER_TRACE_KEYS: dict[str, str] = {
    "resid_in": "[T, d] residual stream entering the block",
    "attn_norm": "[T, d] RMSNorm(resid_in) — the attention's input",
    "q": "[H, T, D] queries before RoPE (+ bias for Qwen2, per-head RMSNorm for Qwen3)",
    "k": "[Hkv, T, D] keys before RoPE (likewise)",
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
    if layer.bqkv is not None:  # Qwen2: q/k/v projections have biases
        qkv = qkv + layer.bqkv
    q_end, k_end = n_heads * head_dim, (n_heads + n_kv) * head_dim
    q = qkv[:, :q_end].reshape(n_tokens, n_heads, head_dim).transpose(1, 0, 2)  # [H, T, D]
    k = qkv[:, q_end:k_end].reshape(n_tokens, n_kv, head_dim).transpose(1, 0, 2)  # [Hkv, T, D]
    v = qkv[:, k_end:].reshape(n_tokens, n_kv, head_dim).transpose(1, 0, 2)  # [Hkv, T, D]
    if layer.q_norm is not None:  # Qwen3: RMSNorm over each head's D values, before RoPE
        q = rms_norm(q, layer.q_norm, config.rms_norm_eps)
        k = rms_norm(k, layer.k_norm, config.rms_norm_eps)
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

    BLAS threads: one for a small model; for a large one, whichever of one or all its
    decode steps measured faster (:class:`.blas.ThreadChooser`).
    """
    if cache is not None and trace is None and np.size(tokens) == 1:  # one decode step
        ids = check_tokens(model, tokens, cache.length)
        return decode_token(model, int(ids[0]), cache)[None, :]  # [1, V]
    chooser = _chooser(model)
    with blas.limit(1 if chooser is None else chooser.best()):
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


def decode_token(model: Model, token: int, cache: KVCache) -> np.ndarray:
    """Logits [V] for one new token at position ``cache.length``, appending its K/V.

    The same arithmetic as :func:`forward` (which calls this for a single cached token
    without a trace), written the way llama2.c's ``forward`` is: one vector per step,
    matrix-vector products against the ``[out, in]`` weights — each a contiguous row
    stream, so large models run at memory bandwidth — and as few numpy calls as
    possible, because at this size Python's per-call overhead rivals the arithmetic.
    BLAS threads: as :func:`forward`; each step's time is fed back to the choice.
    """
    chooser = _chooser(model)
    if chooser is None:
        with blas.limit(1):
            return _decode_token(model, token, cache)
    decode_layout(model)  # built before the clock starts: not a thread count's fault
    threads = chooser.pick()
    start = time.perf_counter()
    with blas.limit(threads):
        logits = _decode_token(model, token, cache)
    chooser.record(threads, time.perf_counter() - start)
    return logits


def _chooser(model: Model) -> blas.ThreadChooser | None:
    """The model's thread chooser, or None for a small model (always one thread)."""
    if blas.threads_for(model.config.parameter_count() * 4) == 1:
        return None
    if model._blas_chooser is None:
        model._blas_chooser = blas.ThreadChooser()
    return model._blas_chooser


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
    cos, sin = model._rope[0][pos], model._rope[1][pos]  # [D] each
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
        if layer.bqkv is not None:  # Qwen2
            qkv += layer.bqkv
        qk = qkv[:k_end].reshape(n_heads + n_kv, head_dim)  # q heads, then k heads: [H+Hkv, D]
        if layer.q_norm is not None:  # Qwen3: per-head RMSNorm of q and k
            qk = np.concatenate([rms_norm(qk[:n_heads], layer.q_norm, eps),
                                 rms_norm(qk[n_heads:], layer.k_norm, eps)])  # fmt: skip
        # RoPE (rotate-half) on every q and k head at once: x*cos + [-x2, x1]*sin.
        qk = qk * cos + qk.take(swap, axis=1) * signed_sin
        k_new = qk[n_heads:, None, :]  # [Hkv, 1, D]
        v_new = qkv[k_end:].reshape(n_kv, 1, head_dim)  # [Hkv, 1, D]
        keys, values = kv.append(k_new, v_new)  # [Hkv, S, D] each, S = pos + 1
        qg = qk[:n_heads].reshape(n_kv, group, head_dim)  # query heads grouped by K/V head
        weights = qg @ keys.transpose(0, 2, 1)  # [Hkv, G, S] scores; no mask: all S visible
        weights *= scale
        softmax(weights, out=weights)  # over keys, in place
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

DECODE_LAYOUT_MIN_BYTES = weights.DECODE_LAYOUT_MIN_BYTES
"""Models with more weight bytes than this keep the matrices that are at least as tall as
they are wide in [in, out] (column-major) storage (see :func:`decode_layout`; a loaded
model is built that way, :meth:`Model.from_tensors`)."""


@dataclass(frozen=True)
class DecodeLayout:
    """[in, out] (column-major) storage of a model's matrices, for one-token decoding.

    ``layers[i]`` holds (wqkv, wo, w_gate_up, w_down) transposed, or None for a matrix
    kept in its [out, in] layout; ``head`` likewise for the output head.
    """

    layers: list[tuple[np.ndarray | None, ...]]
    head: np.ndarray | None


_LAYOUT_LOCK = threading.Lock()


def decode_layout(model: Model) -> DecodeLayout | None:
    """The column-major storage a large model decodes from, made on first use; None for
    a model small enough to stay in the CPU cache.

    Why: decoding a token multiplies each weight matrix by one vector, so it is bound by
    how fast the matrix streams from memory. OpenBLAS's matrix-vector kernel streams an
    [in, out] matrix (an axpy per input) at ~25-27 GB/s on the project's machine, the
    memory's full read rate, but an [out, in] one (a dot product per output row) at only
    ~17-18 GB/s — except for wide matrices such as down_proj, where the row layout is a
    little faster. Weights cached in L3 run fast either way, so small models (and the
    trained anatomy-mini) keep the HF [out, in] layout only and pay no extra memory.

    The model's matrices are *moved* to that storage, not copied: each one becomes a
    transposed view (``layer.wqkv = cols.T``), so the HF ``[out, in]`` view, every
    multi-token product (``x @ w.T`` reads the C-contiguous ``cols``) and the decode step
    share one buffer and memory does not double (SmolLM2-135M: 1.6 GB peak with copies,
    see ``benchmarks/bench_byom.py`` for the figure without). The storage is read-only, so
    an in-place weight update fails loudly; build a new model
    (:meth:`Model.with_tensors`) to change weights.
    """
    if model.config.parameter_count() * 4 <= DECODE_LAYOUT_MIN_BYTES:
        return None
    if model._decode_layout is None:
        with _LAYOUT_LOCK:
            if model._decode_layout is None:
                model._decode_layout = _build_decode_layout(model)
    return model._decode_layout


_MATRICES = ("wqkv", "wo", "w_gate_up", "w_down")


def _build_decode_layout(model: Model) -> DecodeLayout:
    def cols(w: np.ndarray) -> np.ndarray | None:
        if w.shape[0] < w.shape[1]:  # wider than tall: rows stream faster (measured)
            w.flags.writeable = False
            return None
        t = w.T if w.T.flags.c_contiguous else np.ascontiguousarray(w.T)  # [in, out]
        t.flags.writeable = False
        return t

    layers = []
    for layer in model.layers:
        moved = tuple(cols(getattr(layer, name)) for name in _MATRICES)
        for name, t in zip(_MATRICES, moved, strict=True):
            if t is not None:
                setattr(layer, name, t.T)  # the same numbers, now read through the view
        layers.append(moved)
    head = cols(model.lm_head)
    if head is not None:
        if model.lm_head is model.embed:  # tied: one matrix serves both
            model.embed = head.T
        model.lm_head = head.T
    return DecodeLayout(layers, head)


@functools.cache
def _half_swap(head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Index exchanging the two halves of a head ([D/2..D) then [0..D/2)), and the signs
    that turn the swapped vector into rotate_half's [-x2, x1]."""
    half = head_dim // 2
    swap = np.concatenate([np.arange(half, head_dim), np.arange(half)])
    sign = np.concatenate([-np.ones(half, np.float32), np.ones(half, np.float32)])
    swap.flags.writeable = sign.flags.writeable = False
    return swap, sign


def logit_lens(model: Model, residual: np.ndarray) -> np.ndarray:
    """What the model would predict from an intermediate residual [..., d] -> logits [..., V].

    Applies the final RMSNorm and the output head to a residual taken after any block.
    """
    return rms_norm(residual, model.norm, model.config.rms_norm_eps) @ model.lm_head.T
