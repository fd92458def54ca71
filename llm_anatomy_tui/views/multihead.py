"""Chapter 9's numbers about one attention layer: the pipeline of shapes, which query
heads share which K/V head, and what the KV cache costs with and without sharing.

Pure Python over the config (no Textual, no Rich).

>>> from ..core.config import LlamaConfig
>>> cfg = LlamaConfig(num_attention_heads=4, num_key_value_heads=2, hidden_size=128,
...                   intermediate_size=256, num_hidden_layers=4, vocab_size=100,
...                   max_position_embeddings=256)
>>> gqa_groups(cfg)
[(0, [0, 1]), (1, [2, 3])]
>>> cache_figures(cfg, 18).per_token, cache_figures(cfg, 18).per_token_full
(2048, 4096)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import LlamaConfig
from ..core.generation import kv_cache_bytes

SCORES, MASKED, WEIGHTS, MIXED = range(4)
"""The four stages of attention the chapter steps through."""


@dataclass(frozen=True)
class ShapeRow:
    """One step of the pipeline: what is computed, and the shapes involved."""

    stage: int | None
    formula: str
    shapes: str
    note: str = ""


def dims(*shape: int) -> str:
    return "[" + "×".join(str(n) for n in shape) + "]"


def pipeline(cfg: LlamaConfig, t: int) -> list[ShapeRow]:
    """The attention of one layer for ``t`` tokens, step by step, with its shapes."""
    d, h, hkv, dh = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.dim_head
    hidden = t * (t - 1) // 2
    return [
        ShapeRow(None, "X = RMSNorm(residual)", dims(t, d), "one row per token"),
        ShapeRow(None, "Q = X·Wq", f"{dims(t, d)}·{dims(d, h * dh)} → {dims(t, h * dh)}",
                 f"split into {h} heads: {dims(h, t, dh)}"),
        ShapeRow(None, "K = X·Wk, V = X·Wv", f"{dims(t, d)}·{dims(d, hkv * dh)} → {dims(t, hkv * dh)}",
                 f"{hkv} K/V heads: {dims(hkv, t, dh)} each"),
        ShapeRow(None, "RoPE(Q), RoPE(K)", "shapes unchanged", "position turns q and k; V is not turned"),
        ShapeRow(SCORES, f"scores = Q·Kᵀ/√{dh}", f"{dims(h, t, dh)}·{dims(h, dh, t)} → {dims(h, t, t)}",
                 f"each K/V head serves {cfg.group_size} query heads"),
        ShapeRow(MASKED, "mask the future", f"{dims(t, t)} mask",
                 f"{hidden} of {t * t} cells set to −∞ (keys after the query)"),
        ShapeRow(WEIGHTS, "weights = softmax(each row)", dims(h, t, t),
                 "every row adds up to 1; masked cells exactly 0"),
        ShapeRow(MIXED, "heads = weights·V", f"{dims(h, t, t)}·{dims(h, t, dh)} → {dims(h, t, dh)}",
                 "each query's mix of value vectors"),
        ShapeRow(None, "out = concat(heads)·Wo", f"{dims(t, h * dh)}·{dims(h * dh, d)} → {dims(t, d)}",
                 "added to the residual stream"),
    ]  # fmt: skip


def gqa_groups(cfg: LlamaConfig) -> list[tuple[int, list[int]]]:
    """(K/V head, the query heads that read it), from the config: query head h reads K/V
    head h // (heads per K/V head), as ``transformers`` repeats K/V heads."""
    g = cfg.group_size
    return [(kv, list(range(kv * g, (kv + 1) * g))) for kv in range(cfg.num_key_value_heads)]


@dataclass(frozen=True)
class CacheFigures:
    """KV-cache bytes with grouped-query attention and with full multi-head attention."""

    bytes_per_value: int
    per_token: int
    per_token_full: int
    now_tokens: int
    now: int
    now_full: int
    context: int
    at_context: int
    at_context_full: int

    @property
    def saved(self) -> float:
        return 1.0 - self.per_token / self.per_token_full


def cache_figures(cfg: LlamaConfig, tokens: int, bytes_per_value: int = 4) -> CacheFigures:
    """``2 (K and V) · layers · KV heads · head width · positions · bytes`` for this config
    and for the same model with one K/V head per query head (float32 as stored here)."""

    def size(kv_heads: int, positions: int) -> int:
        return kv_cache_bytes(layers=cfg.num_hidden_layers, kv_heads=kv_heads,
                              head_dim=cfg.dim_head, positions=positions,
                              bytes_per_value=bytes_per_value)  # fmt: skip

    hkv, h, ctx = cfg.num_key_value_heads, cfg.num_attention_heads, cfg.max_position_embeddings
    return CacheFigures(
        bytes_per_value,
        size(hkv, 1),
        size(h, 1),
        tokens,
        size(hkv, tokens),
        size(h, tokens),
        ctx,
        size(hkv, ctx),
        size(h, ctx),
    )
