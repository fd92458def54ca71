"""The operations of a Llama-architecture decoder, one small numpy function each.

Every function follows ``transformers``' LlamaForCausalLM to the letter (in float32), so a
checkpoint gives the same numbers here as there. Shapes use T for the tokens being run,
S for all key positions (cached + new), H / Hkv for query / key-value heads, D for the head
width, d for hidden_size, f for intermediate_size, V for the vocabulary.
"""

from __future__ import annotations

import numpy as np


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """RMSNorm: scale each row to unit root-mean-square, then by a learned gain.

    ``x / sqrt(mean(x**2) + eps) * weight`` — no mean subtraction, no bias.

    >>> rms_norm(np.array([[3.0, 4.0]]), np.ones(2), 0.0).round(4)
    array([[0.8485, 1.1314]])
    """
    # np.add.reduce rather than np.mean: same sum, without mean()'s Python-level wrapper,
    # which costs more than the arithmetic for one token's vector.
    ms = np.add.reduce(x * x, axis=-1, keepdims=True) / x.shape[-1]  # [..., 1]
    return x / np.sqrt(ms + eps) * weight


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU (a.k.a. swish): ``x * sigmoid(x)``."""
    return x / (1.0 + np.exp(-x))


def softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax — the project's one reference implementation.

    Every softmax in the package is this function: attention (here and in the lean decode
    step, in place through ``out``), training's masked attention, the sampler's float64
    distribution (called on a float64 array), the toy attention lesson. Rows that are
    entirely -inf are not allowed.

    Subtracting the row maximum first keeps ``exp`` from overflowing and changes nothing:
    softmax(x) == softmax(x - c) for any constant c. The result has ``x``'s float dtype;
    ``out=x`` computes in place (a fresh array per decode step costs more than the math).

    >>> softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> x = np.array([[0.0, np.log(3.0)]]); softmax(x, out=x) is x, x.round(6).tolist()
    (True, [[0.25, 0.75]])
    """
    peak = np.maximum.reduce(x, axis=axis, keepdims=True)
    e = np.subtract(x, peak, out=out)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log of :func:`softmax`, computed as ``z - log Σ exp z`` with ``z = x - max x`` (so a
    tiny probability keeps its digits instead of underflowing to log 0).

    >>> np.exp(log_softmax(np.array([0.0, np.log(3.0)]))).round(6).tolist()
    [0.25, 0.75]
    """
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


# -- rotary position embedding ----------------------------------------------------------


def rope_inv_freq(head_dim: int, theta: float) -> np.ndarray:
    """Angular speed of each rotated pair: ``theta ** (-2i / head_dim)`` for i < head_dim/2.

    Pair 0 turns fastest (one radian per position); the last pair barely turns.
    """
    return (1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)).astype(
        np.float32
    )


def rope_cos_sin(
    positions: np.ndarray, head_dim: int, theta: float, inv_freq: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables for the given positions, laid out as ``transformers`` does.

    The angle of pair i at position m is ``m * inv_freq[i]``; the table repeats the D/2 angles
    twice (``cat(freqs, freqs)``) because rotate-half pairs dimension i with i + D/2.
    ``inv_freq`` defaults to :func:`rope_inv_freq` (plain RoPE); a scaled RoPE (Llama 3's)
    passes its own.
    """
    if inv_freq is None:
        inv_freq = rope_inv_freq(head_dim, theta)
    inv = np.asarray(inv_freq, dtype=np.float32)
    freqs = np.outer(positions.astype(np.float32), inv)  # [T, D/2]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [T, D]
    return np.cos(emb), np.sin(emb)


def rotate_half(x: np.ndarray) -> np.ndarray:
    """``[x1, x2] -> [-x2, x1]`` on the last axis (halves, not interleaved pairs)."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate each (i, i + D/2) pair of ``x`` [..., T, D] by its position's angle.

    Equivalent to multiplying the complex number ``x[i] + j*x[i+D/2]`` by ``exp(j*angle)``,
    so norms are preserved and q·k depends only on the distance between positions.
    """
    return x * cos + rotate_half(x) * sin


# -- attention --------------------------------------------------------------------------


def causal_mask(n_query: int, n_key: int) -> np.ndarray:
    """Boolean [T, S] mask, True where query t may look at key s.

    Queries are the last ``n_query`` of ``n_key`` positions (earlier ones are cached), so
    query t sits at absolute position ``n_key - n_query + t`` and sees keys up to there.

    >>> causal_mask(2, 3).astype(int)
    array([[1, 1, 0],
           [1, 1, 1]])
    """
    offset = n_key - n_query
    return np.arange(n_key)[None, :] <= (np.arange(n_query)[:, None] + offset)


def attention_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Scaled dot products of every query head with its shared K/V head.

    q: [..., H, T, D], k: [..., Hkv, S, D] -> scores [..., H, T, S] = q·k / sqrt(D); the
    leading axes (a training batch) are optional. Query head h reads K/V head
    ``h // (H // Hkv)`` (``transformers``' repeat_kv order), so the G query heads of a
    group are stacked into one matrix product.
    """
    *lead, n_heads, n_query, head_dim = q.shape
    n_kv, n_key = k.shape[-3], k.shape[-2]
    group = n_heads // n_kv
    qg = q.reshape(*lead, n_kv, group * n_query, head_dim)  # [..., Hkv, G*T, D]
    scores = qg @ k.swapaxes(-1, -2)  # [..., Hkv, G*T, S]
    return scores.reshape(*lead, n_heads, n_query, n_key) * np.float32(1.0 / np.sqrt(head_dim))


def masked_softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row softmax over keys with masked cells set to exactly 0. scores [H, T, S], mask [T, S]."""
    return softmax(np.where(mask, scores, -np.inf), axis=-1)


def mix_values(weights: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Weighted sum of value vectors. weights [..., H, T, S], v [..., Hkv, S, D] ->
    [..., H, T, D] (leading batch axes optional, as in :func:`attention_scores`)."""
    *lead, n_heads, n_query, n_key = weights.shape
    n_kv, head_dim = v.shape[-3], v.shape[-1]
    wg = weights.reshape(*lead, n_kv, (n_heads // n_kv) * n_query, n_key)  # [..., Hkv, G*T, S]
    return (wg @ v).reshape(*lead, n_heads, n_query, head_dim)


def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """SwiGLU hidden activation: ``silu(x @ W_gate.T) * (x @ W_up.T)``."""
    return silu(gate) * up
