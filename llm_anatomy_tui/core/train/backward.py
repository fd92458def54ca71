"""The backward pass: the gradient of every operation of the forward pass, written by hand.

Each operation of :mod:`llm_anatomy_tui.core.ops` gets a ``*_backward`` function here. It
takes what the forward saw (its inputs) and ``dout``, the gradient of the loss with respect
to the forward's output, and returns the gradients with respect to the inputs and weights.
The tests check every one of them against central finite differences in float64.

The second half puts them together for a whole model and a batch of B token windows of
length T (N = B*T tokens): :func:`forward_train` runs the forward pass and keeps what the
backward pass needs (a "tape"), :func:`backward` walks the tape in reverse, and
:func:`loss_and_grads` does both. The training forward computes exactly what
:func:`llm_anatomy_tui.core.model.forward` computes (the tests compare the logits), so the
trained weights mean the same thing at inference. Dropout, when asked for, is applied only
here, never at inference.

Gradients come back in a dict keyed like :func:`parameters` (``"embed"``,
``"layers.0.wqkv"`` …), the model's own fused layout: one matrix for q|k|v and one for
gate|up, so each projection is one matrix product over the whole batch, forward and back.

Shapes: B windows, T tokens each, N = B*T, H / Hkv query / key-value heads, G = H // Hkv,
D head width, d hidden size, f FFN width, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..model import Layer, Model
from ..ops import (
    apply_rope,
    attention_scores,
    causal_mask,
    log_softmax,
    mix_values,
    rms_norm,
    rotate_half,
    silu,
    softmax,
)

# -- parameters ------------------------------------------------------------------------------


def parameters(model: Model) -> dict[str, np.ndarray]:
    """Every trainable array of ``model`` by name — the arrays themselves, not copies.

    An optimizer that updates these in place updates the model. The names are ``embed``,
    ``layers.{i}.attn_norm``, ``.wqkv``, ``.wo``, ``.ffn_norm``, ``.w_gate_up``,
    ``.w_down`` for each block, and ``norm``; a tied output head is the embedding, so it
    appears once (``lm_head`` exists only when untied).
    """
    out: dict[str, np.ndarray] = {"embed": model.embed}
    for i, layer in enumerate(model.layers):
        for name in LAYER_PARAMS:
            out[f"layers.{i}.{name}"] = getattr(layer, name)
    out["norm"] = model.norm
    if not model.config.tie_word_embeddings:
        out["lm_head"] = model.lm_head
    return out


LAYER_PARAMS: tuple[str, ...] = ("attn_norm", "wqkv", "wo", "ffn_norm", "w_gate_up", "w_down")


def model_astype(model: Model, dtype: type) -> Model:
    """A copy of ``model`` with every weight cast to ``dtype`` (float64 for gradient checks)."""
    layers = [
        Layer(**{name: getattr(layer, name).astype(dtype) for name in LAYER_PARAMS})
        for layer in model.layers
    ]
    embed = model.embed.astype(dtype)
    head = embed if model.config.tie_word_embeddings else model.lm_head.astype(dtype)
    return Model(
        config=model.config,
        embed=embed,
        layers=layers,
        norm=model.norm.astype(dtype),
        lm_head=head,
        name=model.name,
    )


# -- per-op backward functions ---------------------------------------------------------------


def embedding_backward(ids: np.ndarray, dout: np.ndarray, vocab_size: int) -> np.ndarray:
    """Gradient of the embedding table for ``x = table[ids]``.

    Each looked-up row receives the gradient of every position that used it; rows never
    looked up get zero. ids [...], dout [..., d] -> [V, d].

    >>> embedding_backward(np.array([2, 0, 2]), np.ones((3, 1)), 4).ravel()
    array([1., 0., 2., 0.])
    """
    d = dout.shape[-1]
    grad = np.zeros((vocab_size, d), dtype=dout.dtype)
    np.add.at(grad, ids.reshape(-1), dout.reshape(-1, d))
    return grad


def rms_norm_backward(
    x: np.ndarray, weight: np.ndarray, eps: float, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``y = x * r * w`` with ``r = 1 / sqrt(mean(x**2) + eps)``, per row.

    With ``x̂ = x * r`` and ``g = dout * w``: ``dx = r * (g - x̂ * mean(g * x̂))`` and
    ``dw = sum over rows of dout * x̂``. x, dout [..., d] -> dx [..., d], dw [d].
    """
    r = 1.0 / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + eps)  # [..., 1]
    xhat = x * r
    dweight = np.sum((dout * xhat).reshape(-1, x.shape[-1]), axis=0)
    g = dout * weight
    dx = r * (g - xhat * np.mean(g * xhat, axis=-1, keepdims=True))
    return dx, dweight


def linear_backward(
    x: np.ndarray, weight: np.ndarray, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``y = x @ weight.T`` (HF ``[out, in]`` layout).

    x [..., in], dout [..., out] -> dx = dout @ weight [..., in], dweight = dout.T @ x
    [out, in] (summed over every leading position).
    """
    n_in, n_out = weight.shape[1], weight.shape[0]
    dx = dout @ weight
    dweight = dout.reshape(-1, n_out).T @ x.reshape(-1, n_in)  # [out, N] @ [N, in]
    return dx, dweight


def rope_backward(dout: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Gradient of ``apply_rope``: rotate the gradient back by the same angle.

    The forward is ``x * cos + rotate_half(x) * sin``; rotate_half is the matrix
    ``[[0, -I], [I, 0]]``, whose transpose is its negative, so
    ``dx = dout * cos - rotate_half(dout * sin)``.
    """
    return dout * cos - rotate_half(dout * sin)


def grouped_scores_backward(
    q: np.ndarray, k: np.ndarray, dscores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`core.ops.attention_scores` (batched). A K head's gradient sums over its G query heads.

    dscores [..., H, T, S] -> dq [..., H, T, D], dk [..., Hkv, S, D].
    """
    *lead, n_heads, n_query, head_dim = q.shape
    n_kv, n_key = k.shape[-3], k.shape[-2]
    rows = (n_heads // n_kv) * n_query
    scale = np.float32(1.0 / np.sqrt(head_dim))
    dsg = dscores.reshape(*lead, n_kv, rows, n_key) * scale  # [..., Hkv, G*T, S]
    qg = q.reshape(*lead, n_kv, rows, head_dim)  # [..., Hkv, G*T, D]
    dq = (dsg @ k).reshape(q.shape)
    dk = dsg.swapaxes(-1, -2) @ qg  # [..., Hkv, S, D]
    return dq, dk


def masked_softmax_forward(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over keys with masked cells exactly 0, computed in place in ``scores``.

    scores [..., T, S] (overwritten and returned), mask [T, S] (True = may attend).
    """
    np.copyto(scores, -np.inf, where=~mask)
    return softmax(scores, out=scores)


def softmax_backward(weights: np.ndarray, dweights: np.ndarray) -> np.ndarray:
    """Gradient of a row softmax through its output: ``w * (dw - sum(dw * w))``.

    Masked cells have weight 0, so they get gradient 0 without needing the mask again.
    """
    return weights * (dweights - np.sum(dweights * weights, axis=-1, keepdims=True))


def grouped_mix_backward(
    weights: np.ndarray, v: np.ndarray, dheads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`core.ops.mix_values` (batched): dweights [..., H, T, S], dv [..., Hkv, S, D]."""
    *lead, n_heads, n_query, n_key = weights.shape
    n_kv, head_dim = v.shape[-3], v.shape[-1]
    rows = (n_heads // n_kv) * n_query
    wg = weights.reshape(*lead, n_kv, rows, n_key)  # [..., Hkv, G*T, S]
    dg = dheads.reshape(*lead, n_kv, rows, head_dim)  # [..., Hkv, G*T, D]
    dweights = (dg @ v.swapaxes(-1, -2)).reshape(weights.shape)
    dv = wg.swapaxes(-1, -2) @ dg  # [..., Hkv, S, D]
    return dweights, dv


def silu_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """Gradient of ``silu(x) = x * s`` with ``s = sigmoid(x)``: ``s * (1 + x * (1 - s))``."""
    s = 1.0 / (1.0 + np.exp(-x))
    return dout * s * (1.0 + x * (1.0 - s))


def swiglu_backward(
    gate: np.ndarray, up: np.ndarray, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``silu(gate) * up``: dgate = silu'(gate) * up * dout, dup = silu(gate) * dout."""
    return silu_backward(gate, dout * up), dout * silu(gate)


def residual_backward(dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y = x + f(x)``: the gradient reaches both the skip path and the branch unchanged."""
    return dout, dout


def dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Inverted-dropout multiplier: 0 with probability p, else 1/(1-p), so E[mask] = 1.

    The backward pass multiplies the gradient by the same mask.
    """
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(np.float32) * np.float32(1.0 / (1.0 - p))


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of ``targets`` [N] under ``softmax(logits)`` [N, V].

    >>> round(cross_entropy(np.zeros((1, 4)), np.array([3])), 4)  # uniform over 4: ln 4
    1.3863
    """
    log_probs = log_softmax(logits, axis=-1)
    return float(-np.mean(log_probs[np.arange(len(targets)), targets], dtype=np.float64))


def cross_entropy_backward(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Gradient of :func:`cross_entropy`: ``(softmax(logits) - onehot(targets)) / N``."""
    grad = softmax(logits, axis=-1)  # a new array, changed in place below
    grad[np.arange(len(targets)), targets] -= 1.0
    return grad / len(targets)


def head_loss_and_backward(
    h: np.ndarray, weight: np.ndarray, targets: np.ndarray, chunk: int = 512
) -> tuple[float, np.ndarray, np.ndarray]:
    """Output head + softmax cross-entropy, forward and backward fused, a chunk at a time.

    ``logits = h @ weight.T`` would be N x V floats (134 MB for 4,096 tokens and 8,193
    tokens of vocabulary); done ``chunk`` rows at a time they stay in cache and never
    exist in full. Returns the mean loss, dh [N, d] and dweight [V, d].
    """
    n = len(targets)
    dh = np.empty_like(h)
    dweight = np.zeros_like(weight)
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = np.arange(stop - start)
        z = h[start:stop] @ weight.T  # [c, d] -> [c, V]
        z -= np.max(z, axis=-1, keepdims=True)
        z_target = z[rows, targets[start:stop]]
        np.exp(z, out=z)
        sum_exp = np.sum(z, axis=-1, keepdims=True)  # [c, 1]
        total += float(np.sum(np.log(sum_exp[:, 0]) - z_target, dtype=np.float64))
        z *= 1.0 / (sum_exp * n)  # probabilities / N
        z[rows, targets[start:stop]] -= 1.0 / n  # (p - onehot) / N
        dh[start:stop] = z @ weight
        dweight += z.T @ h[start:stop]
    return total / n, dh, dweight


def head_nll(
    h: np.ndarray, weight: np.ndarray, targets: np.ndarray, chunk: int = 512
) -> np.ndarray:
    """Per-token negative log-likelihood [N] (float64) of the output head, no gradients."""
    out = np.empty(len(targets), dtype=np.float64)
    for start in range(0, len(targets), chunk):
        stop = min(start + chunk, len(targets))
        z = h[start:stop] @ weight.T  # [c, V]
        z -= np.max(z, axis=-1, keepdims=True)
        z_target = z[np.arange(stop - start), targets[start:stop]]
        log_sum = np.log(np.sum(np.exp(z), axis=-1))
        out[start:stop] = log_sum - z_target
    return out


# -- the whole model -------------------------------------------------------------------------


@dataclass
class LayerTape:
    """What one block's backward pass needs from its forward pass."""

    x: np.ndarray  # [N, d] block input
    n1: np.ndarray  # [N, d] RMSNorm(x)
    q: np.ndarray  # [B, H, T, D] after RoPE
    k: np.ndarray  # [B, Hkv, T, D] after RoPE
    v: np.ndarray  # [B, Hkv, T, D]
    weights: np.ndarray  # [B, H, T, T] attention weights
    merged: np.ndarray  # [N, H*D] heads side by side
    h: np.ndarray  # [N, d] residual after attention
    n2: np.ndarray  # [N, d] RMSNorm(h)
    gate_up: np.ndarray  # [N, 2f]
    hidden: np.ndarray  # [N, f]
    drop_attn: np.ndarray | None  # [N, d] dropout multipliers, None without dropout
    drop_ffn: np.ndarray | None


@dataclass
class Tape:
    """The forward pass of a batch, kept for :func:`backward`."""

    tokens: np.ndarray  # [B, T]
    cos: np.ndarray  # [T, D]
    sin: np.ndarray  # [T, D]
    drop_embed: np.ndarray | None  # [N, d]
    layers: list[LayerTape] = field(default_factory=list)
    x_final: np.ndarray | None = None  # [N, d] residual stream before the final norm
    d_final: np.ndarray | None = None  # [N, d] gradient w.r.t. RMSNorm(x_final)
    d_head: np.ndarray | None = None  # [V, d] gradient of the output head's weight


def _maybe_dropout(
    rng: np.random.Generator | None, shape: tuple[int, ...], p: float
) -> np.ndarray | None:
    if p <= 0.0:
        return None
    if rng is None:
        raise ValueError("dropout needs a random generator")
    return dropout_mask(rng, shape, p)


def block_forward(
    x: np.ndarray,
    layer: Layer,
    model: Model,
    shape: tuple[int, int],
    cos: np.ndarray,
    sin: np.ndarray,
    mask: np.ndarray,
    dropout: float,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, LayerTape]:
    """One decoder block on the flattened batch x [N, d] -> ([N, d], tape).

    The same computation as :func:`core.model.decoder_block`, batched over B windows.
    """
    cfg = model.config
    batch, n_tok = shape
    n_heads, n_kv, head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.dim_head
    eps = cfg.rms_norm_eps

    n1 = rms_norm(x, layer.attn_norm, eps)
    qkv = n1 @ layer.wqkv.T  # [N, d] -> [N, (H + 2Hkv) * D]
    heads_all = qkv.reshape(batch, n_tok, n_heads + 2 * n_kv, head_dim).transpose(0, 2, 1, 3)
    q = apply_rope(heads_all[:, :n_heads], cos, sin)  # [B, H, T, D]
    k = apply_rope(heads_all[:, n_heads : n_heads + n_kv], cos, sin)  # [B, Hkv, T, D]
    v = heads_all[:, n_heads + n_kv :]  # [B, Hkv, T, D]
    weights = masked_softmax_forward(attention_scores(q, k), mask)  # [B, H, T, T]
    heads = mix_values(weights, v)  # [B, H, T, D]
    merged = heads.transpose(0, 2, 1, 3).reshape(batch * n_tok, n_heads * head_dim)  # [N, H*D]
    attn_out = merged @ layer.wo.T  # [N, d]
    drop_attn = _maybe_dropout(rng, attn_out.shape, dropout)
    if drop_attn is not None:
        attn_out *= drop_attn
    h = x + attn_out

    n2 = rms_norm(h, layer.ffn_norm, eps)
    gate_up = n2 @ layer.w_gate_up.T  # [N, d] -> [N, 2f]
    f = gate_up.shape[1] // 2
    hidden = silu(gate_up[:, :f]) * gate_up[:, f:]  # [N, f]
    ffn_out = hidden @ layer.w_down.T  # [N, d]
    drop_ffn = _maybe_dropout(rng, ffn_out.shape, dropout)
    if drop_ffn is not None:
        ffn_out *= drop_ffn
    out = h + ffn_out
    tape = LayerTape(
        x=x, n1=n1, q=q, k=k, v=v, weights=weights, merged=merged, h=h, n2=n2,
        gate_up=gate_up, hidden=hidden, drop_attn=drop_attn, drop_ffn=drop_ffn,
    )  # fmt: skip
    return out, tape


def block_backward(
    dout: np.ndarray,
    tape: LayerTape,
    layer: Layer,
    model: Model,
    cos: np.ndarray,
    sin: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backward through one block: dout [N, d] -> (dx [N, d], weight gradients)."""
    cfg = model.config
    eps = cfg.rms_norm_eps
    n_heads, head_dim = cfg.num_attention_heads, cfg.dim_head
    batch, _, n_tok, _ = tape.q.shape
    grads: dict[str, np.ndarray] = {}

    # out = h + drop(down(swiglu(gate_up(norm(h)))))
    d_ffn_out = dout * tape.drop_ffn if tape.drop_ffn is not None else dout
    d_hidden, grads["w_down"] = linear_backward(tape.hidden, layer.w_down, d_ffn_out)
    f = tape.hidden.shape[1]
    d_gate, d_up = swiglu_backward(tape.gate_up[:, :f], tape.gate_up[:, f:], d_hidden)
    d_gate_up = np.concatenate([d_gate, d_up], axis=1)  # [N, 2f]
    d_n2, grads["w_gate_up"] = linear_backward(tape.n2, layer.w_gate_up, d_gate_up)
    d_h_norm, grads["ffn_norm"] = rms_norm_backward(tape.h, layer.ffn_norm, eps, d_n2)
    d_h = dout + d_h_norm  # the residual passes dout straight through

    # h = x + drop(o_proj(attention(norm(x))))
    d_attn_out = d_h * tape.drop_attn if tape.drop_attn is not None else d_h
    d_merged, grads["wo"] = linear_backward(tape.merged, layer.wo, d_attn_out)
    d_heads = d_merged.reshape(batch, n_tok, n_heads, head_dim).transpose(0, 2, 1, 3)
    d_weights, d_v = grouped_mix_backward(tape.weights, tape.v, d_heads)
    d_scores = softmax_backward(tape.weights, d_weights)
    d_q, d_k = grouped_scores_backward(tape.q, tape.k, d_scores)
    d_heads_all = np.concatenate(
        [rope_backward(d_q, cos, sin), rope_backward(d_k, cos, sin), d_v], axis=1
    )  # [B, H + 2Hkv, T, D]
    d_qkv = d_heads_all.transpose(0, 2, 1, 3).reshape(batch * n_tok, -1)  # [N, (H+2Hkv)*D]
    d_n1, grads["wqkv"] = linear_backward(tape.n1, layer.wqkv, d_qkv)
    d_x_norm, grads["attn_norm"] = rms_norm_backward(tape.x, layer.attn_norm, eps, d_n1)
    return d_h + d_x_norm, grads


def _check_batch(model: Model, tokens: np.ndarray) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [batch, length], got shape {tokens.shape}")
    if tokens.shape[1] > model.config.max_position_embeddings:
        raise ValueError(
            f"windows of {tokens.shape[1]} tokens exceed the context window of "
            f"{model.config.max_position_embeddings}"
        )
    return tokens


def run_blocks(
    model: Model,
    tokens: np.ndarray,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, Tape]:
    """Embedding and every block for tokens [B, T]; returns the final residual [N, d]."""
    tokens = _check_batch(model, tokens)
    batch, n_tok = tokens.shape
    cos, sin = model.rope_tables(np.arange(n_tok))  # 2 x [T, D]
    mask = causal_mask(n_tok, n_tok)  # [T, T]
    x = model.embed[tokens.reshape(-1)]  # [B, T] -> [N, d]
    drop_embed = _maybe_dropout(rng, x.shape, dropout)
    if drop_embed is not None:
        x = x * drop_embed
    tape = Tape(tokens=tokens, cos=cos, sin=sin, drop_embed=drop_embed)
    for layer in model.layers:
        x, layer_tape = block_forward(x, layer, model, (batch, n_tok), cos, sin, mask, dropout, rng)
        tape.layers.append(layer_tape)
    tape.x_final = x
    return x, tape


def forward_logits(model: Model, tokens: np.ndarray) -> np.ndarray:
    """Logits [B, T, V] of the training forward (no dropout), for comparing with inference."""
    x, _ = run_blocks(model, tokens)
    h = rms_norm(x, model.norm, model.config.rms_norm_eps)
    return (h @ model.lm_head.T).reshape(*tokens.shape, -1)


def forward_train(
    model: Model,
    tokens: np.ndarray,
    targets: np.ndarray,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[float, Tape]:
    """Mean cross-entropy of ``targets`` [B, T] given ``tokens`` [B, T], and the tape.

    The output head's backward is fused into the loss (see
    :func:`head_loss_and_backward`), so the tape already holds its gradients.
    """
    x, tape = run_blocks(model, tokens, dropout, rng)
    h = rms_norm(x, model.norm, model.config.rms_norm_eps)
    loss, tape.d_final, tape.d_head = head_loss_and_backward(
        h, model.lm_head, np.asarray(targets).reshape(-1)
    )
    return loss, tape


def backward(model: Model, tape: Tape) -> dict[str, np.ndarray]:
    """Gradients of the loss of :func:`forward_train` for every array of :func:`parameters`."""
    cfg = model.config
    grads: dict[str, np.ndarray] = {}
    dx, grads["norm"] = rms_norm_backward(tape.x_final, model.norm, cfg.rms_norm_eps, tape.d_final)
    for i in reversed(range(len(model.layers))):
        dx, layer_grads = block_backward(
            dx, tape.layers[i], model.layers[i], model, tape.cos, tape.sin
        )
        for name, grad in layer_grads.items():
            grads[f"layers.{i}.{name}"] = grad
    if tape.drop_embed is not None:
        dx = dx * tape.drop_embed
    d_embed = embedding_backward(tape.tokens, dx, cfg.vocab_size)
    if cfg.tie_word_embeddings:
        d_embed += tape.d_head  # the tied head's gradient lands on the same matrix
    else:
        grads["lm_head"] = tape.d_head
    grads["embed"] = d_embed
    return {name: grads[name] for name in parameters(model)}


def loss_and_grads(
    model: Model,
    tokens: np.ndarray,
    targets: np.ndarray,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """One forward and backward pass: (mean loss, gradient per parameter name)."""
    loss, tape = forward_train(model, tokens, targets, dropout, rng)
    return loss, backward(model, tape)


def token_nll(model: Model, tokens: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each target [B*T] (float64), no dropout, no gradients."""
    x, _ = run_blocks(model, tokens)
    h = rms_norm(x, model.norm, model.config.rms_norm_eps)
    return head_nll(h, model.lm_head, np.asarray(targets).reshape(-1))
