"""The real model's FFN neurons: one hidden unit's activations, the held-out tokens that
fire it most, and one token's whole SwiGLU update with its logit lens.

A Llama FFN hidden unit ``j`` of layer ``L`` computes, for each token's normed residual
``x`` [d]::

    gate_j = W_gate[j] · x      up_j = W_up[j] · x      h_j = silu(gate_j) · up_j

and the FFN's output is ``W_down · h`` [d], added to the residual stream. Nothing here
assumes a model's sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .embeddings import Cancelled
from .model import Model, Trace, decoder_block, forward, logit_lens, one_blas_thread
from .ops import swiglu

SCAN_WINDOW = 256
"""Longest window of held-out text run at once when scanning for top activations (a
model with a long context would otherwise build a T×T attention map of the whole text)."""


def prompt_trace(model: Model, ids: Sequence[int]) -> Trace:
    """One traced forward pass over ``ids`` (every layer's intermediates recorded)."""
    trace = Trace()
    forward(model, ids, trace=trace)
    return trace


def check_unit(model: Model, layer: int, unit: int | None = None) -> None:
    """ValueError with a readable message when ``layer`` / ``unit`` do not exist."""
    cfg = model.config
    if not 0 <= layer < cfg.num_hidden_layers:
        raise ValueError(f"layer {layer} does not exist (0..{cfg.num_hidden_layers - 1})")
    if unit is not None and not 0 <= unit < cfg.intermediate_size:
        raise ValueError(f"hidden unit {unit} does not exist (0..{cfg.intermediate_size - 1})")


def unit_activations(trace: Trace, layer: int, unit: int) -> np.ndarray:
    """``silu(gate)·up`` of hidden unit ``unit`` in ``layer`` at every traced token: [T]."""
    return np.asarray(trace.layers[layer]["hidden"][:, unit], dtype=np.float32).copy()


# -- scanning held-out text ---------------------------------------------------------------


@dataclass(frozen=True)
class LayerScan:
    """The strongest activations of every hidden unit of one layer over a token stream.

    ``top_pos[r, j]`` is the stream position of unit ``j``'s r-th highest activation and
    ``top_val[r, j]`` that activation (descending in r); ``low_*`` likewise for the most
    negative ones (ascending). Positions index ``tokens``.
    """

    layer: int
    tokens: np.ndarray  # [N] the stream scanned
    top_pos: np.ndarray  # [k, f]
    top_val: np.ndarray  # [k, f]
    low_pos: np.ndarray  # [k, f]
    low_val: np.ndarray  # [k, f]
    window: int  # tokens per forward window

    def top(self, unit: int) -> list[tuple[int, float]]:
        """(position, activation) pairs of one unit, highest first."""
        return [
            (int(p), float(v))
            for p, v in zip(self.top_pos[:, unit], self.top_val[:, unit], strict=False)
        ]

    def low(self, unit: int) -> list[tuple[int, float]]:
        """(position, activation) pairs of one unit, most negative first."""
        return [
            (int(p), float(v))
            for p, v in zip(self.low_pos[:, unit], self.low_val[:, unit], strict=False)
        ]


def layer_hidden(model: Model, ids: np.ndarray, layer: int) -> np.ndarray:
    """The FFN hidden activations ``silu(gate)·up`` of ``layer`` for a window: [T, f].

    Runs blocks 0..layer-1 in full, then only the first half of block ``layer`` and its
    FFN's gate/up (what a full traced forward would record as ``hidden``).
    """
    cfg = model.config
    positions = np.arange(ids.size)
    cos, sin = model.rope_tables(positions)
    x = model.embed[ids]  # [T, d]
    for blk in model.layers[:layer]:
        x = decoder_block(x, blk, cfg, cos, sin)
    blk = model.layers[layer]
    rec: dict[str, np.ndarray] = {}
    # attention half of the block (and the FFN, which we then read back from the record)
    decoder_block(x, blk, cfg, cos, sin, rec=rec)
    return rec["hidden"]


def scan_layer(
    model: Model,
    tokens: Sequence[int] | np.ndarray,
    layer: int,
    k: int = 10,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    window: int | None = None,
) -> LayerScan:
    """Run ``tokens`` through the model in windows and keep, for every hidden unit of
    ``layer``, the ``k`` highest and ``k`` lowest activations and where they were.

    Each window starts at position 0 (as the model was trained); ``window`` defaults to
    the smaller of the context length and :data:`SCAN_WINDOW`. ``progress(fraction)`` is
    called after each window; :class:`Cancelled` is raised when ``cancelled()`` is true.
    """
    check_unit(model, layer)
    ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if ids.size == 0:
        raise ValueError("no tokens to scan")
    window = window or min(model.config.max_position_embeddings, SCAN_WINDOW)
    f = model.config.intermediate_size
    k = max(1, min(k, ids.size))
    top_val = np.full((k, f), -np.inf, dtype=np.float32)
    top_pos = np.zeros((k, f), dtype=np.int64)
    low_val = np.full((k, f), np.inf, dtype=np.float32)
    low_pos = np.zeros((k, f), dtype=np.int64)
    cols = np.arange(f)
    starts = range(0, ids.size, window)
    with one_blas_thread():
        for n, start in enumerate(starts):
            if cancelled is not None and cancelled():
                raise Cancelled
            w = ids[start : start + window]
            hidden = layer_hidden(model, w, layer)  # [T, f]
            pos = np.arange(start, start + w.size)[:, None].repeat(f, axis=1)  # [T, f]
            for vals, where, sign in ((top_val, top_pos, -1.0), (low_val, low_pos, 1.0)):
                all_v = np.concatenate([vals, hidden], axis=0)  # [k + T, f]
                all_p = np.concatenate([where, pos], axis=0)
                # stable sort on (sign · value): earlier positions win ties
                order = np.argsort(sign * all_v, axis=0, kind="stable")[:k]  # [k, f]
                vals[:] = all_v[order, cols]
                where[:] = all_p[order, cols]
            if progress is not None:
                progress((n + 1) / len(starts))
    return LayerScan(layer, ids, top_pos, top_val, low_pos, low_val, window)


# -- one token's FFN update ---------------------------------------------------------------


@dataclass(frozen=True)
class FFNUpdate:
    """What the FFN of ``layer`` does to the token at ``position`` (all float32 [.] rows)."""

    layer: int
    position: int
    resid_in: np.ndarray  # [d] residual entering the FFN (after attention)
    normed: np.ndarray  # [d] RMSNorm of it: the FFN's input
    gate: np.ndarray  # [f]
    up: np.ndarray  # [f]
    hidden: np.ndarray  # [f] silu(gate) · up
    out: np.ndarray  # [d] W_down · hidden: the update
    resid_out: np.ndarray  # [d] resid_in + out
    top_units: np.ndarray  # [k] hidden units by |activation|, largest first
    lens: np.ndarray  # [V] final norm + output head applied to ``out`` alone


def ffn_update(model: Model, trace: Trace, layer: int, position: int, k: int = 8) -> FFNUpdate:
    """Read one token's FFN step out of a trace, with its top units and its lens."""
    check_unit(model, layer)
    rec = trace.layers[layer]
    n = rec["hidden"].shape[0]
    if not 0 <= position < n:
        raise ValueError(f"position {position} is outside the prompt (0..{n - 1})")
    hidden = rec["hidden"][position]
    order = np.argsort(-np.abs(hidden), kind="stable")[:k]
    out = rec["ffn_out"][position]
    with one_blas_thread():  # a [V, d] matrix-vector product on the UI thread: no BLAS spin
        lens = logit_lens(model, out)
    return FFNUpdate(
        layer, position, rec["resid_attn"][position], rec["ffn_norm"][position],
        rec["gate"][position], rec["up"][position], hidden, out, rec["resid_ffn"][position],
        order, lens,
    )  # fmt: skip


def recompute_hidden(model: Model, layer: int, normed: np.ndarray) -> np.ndarray:
    """``silu(W_gate x) · (W_up x)`` straight from the weights for a normed input [d]."""
    blk = model.layers[layer]
    f = blk.w_down.shape[1]
    return swiglu(blk.w_gate_up[:f] @ normed, blk.w_gate_up[f:] @ normed)


def ranked(values: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Indices of the ``k`` largest (or smallest) values, in order; ties by lower index.

    >>> ranked(np.array([1.0, 3.0, 3.0, -2.0]), 2).tolist()
    [1, 2]
    >>> ranked(np.array([1.0, -2.0]), 1, largest=False).tolist()
    [1]
    """
    v = np.asarray(values, dtype=np.float64)
    return np.argsort(-v if largest else v, kind="stable")[:k]
