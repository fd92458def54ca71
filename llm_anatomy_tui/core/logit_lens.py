"""The residual stream sub-block by sub-block, and a logit lens at every one of them.

A Llama block adds two updates to the residual stream x: ``h = x + attn(norm(x))`` and
``out = h + ffn(norm(h))``. The *logit lens* asks what the model would predict if the
stream stopped at some point: it applies the final RMSNorm and the output head to the
stream there. We read it after the embedding, after the attention of every layer and
after the FFN of every layer, for every position. The lens after the last FFN *is* the
model's output (same operations on the same array), so its KL to the final distribution
is exactly 0.

Stages are numbered s = 0 (embedding), then 2i + 1 (layer i after attention) and
2i + 2 (layer i after the FFN): S = 1 + 2·L stages. Shapes: T positions, V vocabulary,
K top tokens kept per cell.

>>> from .config import LlamaConfig
>>> from .model import init_random
>>> cfg = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32,
...                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
...                   max_position_embeddings=8)
>>> lens = block_lens(init_random(cfg, seed=3), [5, 7, 9])
>>> [s.label for s in lens.stages]
['embedding', 'L0 attention', 'L0 FFN', 'L1 attention', 'L1 FFN']
>>> float(abs(lens.kl[-1]).max())   # the last stage is the model's own output
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .model import Model, check_tokens, decoder_block, logit_lens, one_blas_thread

TOP_K = 5
"""Top tokens kept per (stage, position) for the lens and for the promoted tokens."""


class Task(Protocol):
    """What a worker passes in: a cancel flag and a progress callback."""

    cancelled: bool

    def report(self, fraction: float, value: Any = None) -> None: ...


class Cancelled(Exception):
    """The task was cancelled while the lens was being computed."""


@dataclass(frozen=True)
class Stage:
    """One point of the residual stream where the lens looks."""

    index: int
    layer: int
    """-1 for the embedding."""
    kind: str
    """"embed", "attn" or "ffn"."""

    @property
    def label(self) -> str:
        if self.kind == "embed":
            return "embedding"
        return f"L{self.layer} {'attention' if self.kind == 'attn' else 'FFN'}"


def stages_for(n_layers: int) -> tuple[Stage, ...]:
    """The 1 + 2·L stages of a model with ``n_layers`` blocks."""
    out = [Stage(0, -1, "embed")]
    for i in range(n_layers):
        out += [Stage(2 * i + 1, i, "attn"), Stage(2 * i + 2, i, "ffn")]
    return tuple(out)


@dataclass(frozen=True)
class BlockLens:
    """Residual norms and the logit lens at every stage and position."""

    tokens: tuple[int, ...]
    stages: tuple[Stage, ...]
    norms: np.ndarray  # [S, T] ‖residual‖ after each stage
    update_norms: np.ndarray  # [S, T] ‖what the stage added‖ (stage 0: the embedding)
    top_ids: np.ndarray  # [S, T, K] the lens's most likely next tokens
    top_probs: np.ndarray  # [S, T, K]
    final_ids: np.ndarray  # [T] the model's own top next token at each position
    p_final: np.ndarray  # [S, T] lens probability of final_ids
    rank_final: np.ndarray  # [S, T] 0 = the lens's top token
    kl: np.ndarray  # [S, T] KL(final ‖ lens) in nats
    promoted_ids: np.ndarray  # [S, T, K] largest log-prob gains over the previous stage
    promoted_gain: np.ndarray  # [S, T, K] those gains (nats); stage 0 rows are -1 / nan

    @property
    def n_positions(self) -> int:
        return len(self.tokens)


def residual_stream(model: Model, tokens: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The residual stream after every stage: [S, T, d], and what each stage added: [S, T, d].

    Runs the core's own :func:`~.model.decoder_block` layer by layer with a per-layer
    record that is dropped at once, so a long context never holds every layer's
    attention maps.
    """
    ids = check_tokens(model, tokens)
    cfg = model.config
    cos, sin = model.rope_tables(np.arange(ids.size))
    x = model.embed[ids]  # [T] -> [T, d]
    resids, updates = [x], [x]
    with one_blas_thread():
        for layer in model.layers:
            rec: dict[str, np.ndarray] = {}
            out = decoder_block(x, layer, cfg, cos, sin, None, rec)
            resids += [rec["resid_attn"], out]
            updates += [rec["attn_out"], rec["ffn_out"]]
            x = out
    return np.stack(resids), np.stack(updates)


def _log_softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of each row, largest first. [t, V] -> [t, k]."""
    part = np.argpartition(-values, k - 1, axis=-1)[:, :k]
    order = np.argsort(-np.take_along_axis(values, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


def block_lens(
    model: Model,
    tokens: Sequence[int],
    *,
    top_k: int = TOP_K,
    previous: BlockLens | None = None,
    task: Task | None = None,
) -> BlockLens:
    """The lens over every stage and position of ``tokens``.

    ``previous``: a lens of a prefix of ``tokens`` (e.g. before a generation step); its
    rows are reused (causal attention: earlier positions do not change) and only the
    new positions are read through the head. ``task``: checked for cancellation and
    given progress between chunks of positions.
    """
    ids = [int(t) for t in tokens]
    resids, updates = residual_stream(model, ids)  # [S, T, d] each
    n_stages, n_tok, _ = resids.shape
    vocab = model.config.vocab_size
    k = max(1, min(top_k, vocab))
    stages = stages_for(model.config.num_hidden_layers)

    start = 0
    if (
        previous is not None
        and previous.tokens == tuple(ids[: previous.n_positions])
        and previous.top_ids.shape[2] == k
        and len(previous.stages) == n_stages
    ):
        start = previous.n_positions
    top_ids = np.zeros((n_stages, n_tok, k), np.int64)
    top_probs = np.zeros((n_stages, n_tok, k))
    p_final = np.zeros((n_stages, n_tok))
    rank_final = np.zeros((n_stages, n_tok), np.int64)
    kl = np.zeros((n_stages, n_tok))
    promoted_ids = np.full((n_stages, n_tok, k), -1, np.int64)
    promoted_gain = np.full((n_stages, n_tok, k), np.nan)
    final_ids = np.zeros(n_tok, np.int64)
    if start:
        p = previous
        assert p is not None
        for new, old in (
            (top_ids, p.top_ids), (top_probs, p.top_probs), (p_final, p.p_final),
            (rank_final, p.rank_final), (kl, p.kl), (promoted_ids, p.promoted_ids),
            (promoted_gain, p.promoted_gain),
        ):  # fmt: skip
            new[:, :start] = old
        final_ids[:start] = p.final_ids

    # positions per pass: at most ~16 MB of float64 log-probs, and 32 so that progress and
    # cancellation are checked often
    chunk = max(1, min(32, (1 << 21) // vocab))
    with one_blas_thread():
        for c0 in range(start, n_tok, chunk):
            if task is not None and task.cancelled:
                raise Cancelled
            sl = slice(c0, min(n_tok, c0 + chunk))
            rows = np.arange(sl.stop - sl.start)
            final_logits = logit_lens(model, resids[-1, sl])  # [t, V]
            logp_final = _log_softmax64(final_logits)
            p_fin = np.exp(logp_final)
            fin = logp_final.argmax(axis=-1)
            final_ids[sl] = fin
            prev_logp = None
            for s in range(n_stages):
                logp = (
                    logp_final
                    if s == n_stages - 1
                    else _log_softmax64(logit_lens(model, resids[s, sl]))
                )
                best = _top(logp, k)
                top_ids[s, sl] = best
                top_probs[s, sl] = np.exp(np.take_along_axis(logp, best, axis=-1))
                own = logp[rows, fin]
                p_final[s, sl] = np.exp(own)
                rank_final[s, sl] = (logp > own[:, None]).sum(axis=-1)
                kl[s, sl] = np.maximum(0.0, (p_fin * (logp_final - logp)).sum(axis=-1))
                if prev_logp is not None:
                    gain = logp - prev_logp
                    up = _top(gain, k)
                    promoted_ids[s, sl] = up
                    promoted_gain[s, sl] = np.take_along_axis(gain, up, axis=-1)
                prev_logp = logp
            if task is not None:
                task.report((sl.stop - start) / max(1, n_tok - start))
    return BlockLens(
        tokens=tuple(ids),
        stages=stages,
        norms=np.linalg.norm(resids.astype(np.float64), axis=-1),
        update_norms=np.linalg.norm(updates.astype(np.float64), axis=-1),
        top_ids=top_ids,
        top_probs=top_probs,
        final_ids=final_ids,
        p_final=p_final,
        rank_final=rank_final,
        kl=kl,
        promoted_ids=promoted_ids,
        promoted_gain=promoted_gain,
    )
