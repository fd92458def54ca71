"""Chapter 16's recap: one real figure per stage of the path, for the person's own prompt.

:func:`compute_recap` runs the loaded model once (with a trace) on the tokens the model
reads, quantizes a copy to Q4_0 and runs that too, and returns a :class:`Recap` whose
fields are the figures and whose :attr:`Recap.lines` are what the screen prints, each
tagged with the chapter that shows the stage. Pure: every input is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.evaluate import top1_agreement
from ..core.generation import kv_cache_bytes_for, step_rng
from ..core.model import Trace, forward, logit_lens
from ..core.quant import quantize_model
from ..core.sampling import SamplingSettings, rank_tokens, sample, softmax64
from ..core.weights import Model
from .attention_tracker import token_labels
from .kv_memory import format_bytes
from .readout import percent_text

RECAP_SCHEME = "Q4_0"


@dataclass(frozen=True)
class RecapLine:
    """One stage of the path as the screen shows it."""

    key: str
    """Stable name of the stage (``"tokens"``, ``"embedding"`` …); also the row's id."""
    stage: str
    """The stage's short name, e.g. "text → tokens"."""
    chapter: int
    """The chapter that shows this stage; Enter on the line opens it."""
    figure: str
    """The real figure for this prompt."""


@dataclass(frozen=True)
class Recap:
    """The figures of one prompt on one model (labels are chapter 1's token labels)."""

    ids: tuple[int, ...]
    labels: tuple[str, ...]
    d_model: int
    first_norm: float
    """L2 norm of the first token's embedding row."""
    n_layers: int
    attn_layer: int
    """0-based layer of the strongest attention weight of the last position (any head)."""
    attn_head: int
    attn_key: int
    """Position the last token attends to most there."""
    attn_weight: float
    lens_after: int
    """The logit lens reads the residual after this many blocks (about half of them)."""
    lens_token: int
    lens_prob: float
    top_token: int
    top_prob: float
    settings: SamplingSettings
    seed: int
    draw_u: float | None
    """The sampler's uniform number for step 0; None when greedy."""
    drawn_token: int
    drawn_prob: float
    """The drawn token's probability after the sampler's filters."""
    kv_bytes: int
    """Bytes of float32 K and V for the prompt's positions."""
    kv_bytes_per_token: int
    q_scheme: str
    q_nbytes: int
    fp32_nbytes: int
    q_top1: float
    """Share of the prompt's positions whose most likely next token Q4_0 keeps."""
    q_top_token: int
    q_top_prob: float
    lines: tuple[RecapLine, ...]


def strongest_link(weights: Sequence[np.ndarray]) -> tuple[int, int, int, float]:
    """(layer, head, key position, weight) of the largest attention weight of the last
    query position, over every layer's [H, T, S] weights. Ties go to the earliest layer,
    head and key.

    >>> w = [np.array([[[1, 0], [0.3, 0.7]]]), np.array([[[1, 0], [0.9, 0.1]]])]
    >>> strongest_link(w)
    (1, 0, 0, 0.9)
    """
    best = (0, 0, 0, -1.0)
    for layer, w in enumerate(weights):
        last = w[:, -1, :]  # [H, T, S] -> [H, S]
        head, key = np.unravel_index(int(np.argmax(last)), last.shape)
        value = float(last[head, key])
        if value > best[3]:
            best = (layer, int(head), int(key), value)
    return best


def top_token(logits: np.ndarray) -> tuple[int, float]:
    """The most likely token (ties: lower id) and its softmax probability."""
    token = int(rank_tokens(logits)[0])
    return token, float(softmax64(logits)[token])


def _quote(label: str) -> str:
    return f"“{label}”"


STAGES: tuple[tuple[str, str, int], ...] = (
    ("tokens", "text → tokens", 1),
    ("embedding", "embedding", 2),
    ("attention", "attention", 8),
    ("lens", "lens, halfway", 11),
    ("probabilities", "next token", 5),
    ("sampler", "sampler", 5),
    ("kv-cache", "KV cache", 14),
    ("quantized", RECAP_SCHEME + " copy", 15),
)
"""(key, stage, chapter) of every recap line, for drawing them before the figures exist."""


def compute_recap(
    model: Model,
    encoding,  # noqa: ANN001 - a tiktoken Encoding (or anything with decode_single_token_bytes)
    ids: Sequence[int],
    settings: SamplingSettings,
    seed: int,
) -> Recap:
    """The recap of ``ids`` (the tokens the model reads for the prompt) on ``model``.

    The sampler's draw is step 0 of a generation with ``settings`` and ``seed`` (the same
    random number chapter 5's first step uses).
    """
    cfg = model.config
    ids = tuple(int(t) for t in ids)
    if not ids:
        raise ValueError("no tokens to recap")
    trace = Trace()
    logits = forward(model, ids, trace=trace)  # [T, V]
    assert trace.embeddings is not None
    labels = tuple(token_labels(encoding, ids))
    first_norm = float(np.linalg.norm(trace.embeddings[0].astype(np.float64)))
    layer, head, key, weight = strongest_link([rec["weights"] for rec in trace.layers])
    lens_after = max(1, cfg.num_hidden_layers // 2)
    lens_logits = logit_lens(model, trace.layers[lens_after - 1]["resid_ffn"][-1])
    lens_token, lens_prob = top_token(lens_logits)
    final = logits[-1]
    top, top_p = top_token(final)
    rng = None if settings.greedy else step_rng(seed, 0)
    result = sample(final, settings, rng, history=ids)
    kv = kv_cache_bytes_for(cfg, len(ids))
    kv_one = kv_cache_bytes_for(cfg, 1)
    quantized = quantize_model(model, RECAP_SCHEME)
    q_logits = forward(quantized.model, ids)
    q_top, q_top_p = top_token(q_logits[-1])
    agree = top1_agreement(logits, q_logits)

    def lab(token: int) -> str:
        return _quote(token_labels(encoding, [token])[0])

    shown_ids = ", ".join(str(t) for t in ids[:6]) + (", …" if len(ids) > 6 else "")
    draw = "greedy: no draw" if result.draw.u is None else f"u = {result.draw.u:.4f}"
    same = "same" if q_top == top else "changed"  # the next-token top-1
    figures = {
        "tokens": f"{len(ids)} token{'s' * (len(ids) != 1)}: {shown_ids}",
        "embedding": f"d_model {cfg.hidden_size}; ‖{_quote(labels[0])}‖ = {first_norm:.3f}",
        "attention": f"{_quote(labels[-1])} → {_quote(labels[key])} {percent_text(weight, 1)}"
        f" (layer {layer}, head {head})",
        "lens": f"after block {lens_after} of {cfg.num_hidden_layers}: "
        f"{lab(lens_token)} {percent_text(lens_prob, 1)}",
        "probabilities": f"top {lab(top)} {percent_text(top_p, 2)}",
        "sampler": f"{settings.describe()}, seed {seed}: {draw} → {lab(result.token)}",
        "kv-cache": f"{format_bytes(kv)} for {len(ids)} positions, {kv_one:,} B each",
        "quantized": f"{format_bytes(quantized.nbytes)} vs {format_bytes(quantized.fp32_nbytes)};"
        f" top-1 kept {percent_text(agree, 0)}; {lab(q_top)} {same}",
    }
    lines = tuple(RecapLine(k, stage, chapter, figures[k]) for k, stage, chapter in STAGES)
    return Recap(
        ids=ids,
        labels=labels,
        d_model=cfg.hidden_size,
        first_norm=first_norm,
        n_layers=cfg.num_hidden_layers,
        attn_layer=layer,
        attn_head=head,
        attn_key=key,
        attn_weight=weight,
        lens_after=lens_after,
        lens_token=lens_token,
        lens_prob=lens_prob,
        top_token=top,
        top_prob=top_p,
        settings=settings,
        seed=seed,
        draw_u=result.draw.u,
        drawn_token=result.token,
        drawn_prob=result.prob,
        kv_bytes=kv,
        kv_bytes_per_token=kv_one,
        q_scheme=quantized.scheme.label,
        q_nbytes=quantized.nbytes,
        fp32_nbytes=quantized.fp32_nbytes,
        q_top1=agree,
        q_top_token=q_top,
        q_top_prob=q_top_p,
        lines=lines,
    )


def placeholder_lines(reason: str) -> tuple[RecapLine, ...]:
    """The recap's lines while there are no figures yet (``reason`` in place of each)."""
    return tuple(RecapLine(k, s, c, reason) for k, s, c in STAGES)
