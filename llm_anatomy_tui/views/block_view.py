"""What chapter 11 (the transformer block) shows, as plain strings and numbers.

- :data:`BLOCK_PARTS` and :func:`part_detail`: the decoder block as a chain of parts, each
  with its role, its input/output shapes for the loaded config, and the chapter that
  explains it.
- :func:`lens_rows`: one row per stage of the residual stream at one position, from a
  :class:`~..core.logit_lens.BlockLens`.
- :func:`scale_rows`: the scale table of real architectures.

No Textual, no Rich.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.architectures import Architecture
from ..core.logit_lens import BlockLens


@dataclass(frozen=True)
class BlockPart:
    key: str
    label: str
    role: str
    chapter: int | None
    """The chapter that explains it (None: this chapter)."""


BLOCK_PARTS: tuple[BlockPart, ...] = (
    BlockPart("x", "x", "The residual stream entering the block: one vector per token. The "
              "first block receives the token embeddings; every later block receives the "
              "previous block's output.", 2),
    BlockPart("norm1", "RMSNorm", "Rescales each token's vector to unit root-mean-square, "
              "then multiplies by a learned gain per dimension. Attention reads this "
              "normalised copy; the stream itself is left untouched.", None),
    BlockPart("attn", "Attention", "Each token builds a query, a key and a value; queries "
              "and keys are rotated by position (RoPE); every token mixes the values of the "
              "tokens before it, weighted by softmax(q·k/√D). Output projection back to "
              "d_model.", 8),
    BlockPart("add1", "+", "Residual add: attention's output is added to x. Nothing is "
              "replaced: the block can only add to what the stream already carries. The lens "
              "reads the stream here ('after attention').", None),
    BlockPart("norm2", "RMSNorm", "A second RMSNorm with its own gain, feeding the FFN.", None),
    BlockPart("ffn", "SwiGLU FFN", "Per token, no mixing across positions: "
              "down(silu(gate(x)) * up(x)). The widest matrices of the model live here.", 4),
    BlockPart("add2", "+", "Residual add: the FFN's output joins the stream. This sum is the "
              "block's output (the lens reads it 'after the FFN') and the next block's x.",
              None),
)  # fmt: skip
"""The parts of one decoder block, in order."""


def part_detail(part: BlockPart, config: object, n_tokens: int) -> list[str]:
    """Role, shapes and weights of ``part`` for the loaded ``config`` and T = n_tokens."""
    c = config
    t, d = n_tokens, c.hidden_size  # type: ignore[attr-defined]
    h, hkv, hd = c.num_attention_heads, c.num_key_value_heads, c.dim_head  # type: ignore[attr-defined]
    f = c.intermediate_size  # type: ignore[attr-defined]
    shapes = {
        "x": (f"[T, d] = [{t}, {d}]", f"[{t}, {d}]", "none"),
        "norm1": (f"[{t}, {d}]", f"[{t}, {d}]", f"gain [{d}]"),
        "attn": (
            f"[{t}, {d}]",
            f"[{t}, {d}]  (q [{h}, {t}, {hd}], k and v [{hkv}, {t}, {hd}])",
            f"q_proj [{h * hd}, {d}], k_proj and v_proj [{hkv * hd}, {d}], o_proj [{d}, {h * hd}]",
        ),
        "add1": (f"[{t}, {d}] + [{t}, {d}]", f"[{t}, {d}]", "none"),
        "norm2": (f"[{t}, {d}]", f"[{t}, {d}]", f"gain [{d}]"),
        "ffn": (
            f"[{t}, {d}]",
            f"[{t}, {d}]  (hidden [{t}, {f}])",
            f"gate_proj and up_proj [{f}, {d}], down_proj [{d}, {f}]",
        ),
        "add2": (f"[{t}, {d}] + [{t}, {d}]", f"[{t}, {d}]", "none"),
    }
    inp, out, weights = shapes[part.key]
    where = (
        f"Explained in chapter {part.chapter} (g jumps there)."
        if part.chapter is not None
        else "Explained on this screen."
    )
    return [part.role, f"in:  {inp}", f"out: {out}", f"weights: {weights}", where]


@dataclass(frozen=True)
class LensRow:
    """One stage of the residual stream at one position, as printed."""

    stage: str
    norm: float
    added: float
    top: list[tuple[str, float]]
    """The lens's top tokens and their probabilities."""
    p_final: float
    rank_final: int
    kl: float
    promoted: list[tuple[str, float]]
    """Tokens whose log-probability this stage raised most, with the gain (nats)."""


def lens_rows(
    lens: BlockLens, position: int, label: Callable[[int], str], top: int = 3
) -> list[LensRow]:
    """The rows of the lens table at ``position`` (every stage, embedding first)."""
    rows = []
    for s, stage in enumerate(lens.stages):
        promoted = []
        if s:
            promoted = [
                (label(int(i)), float(g))
                for i, g in zip(lens.promoted_ids[s, position, :2],
                                lens.promoted_gain[s, position, :2], strict=True)
            ]  # fmt: skip
        rows.append(
            LensRow(
                stage=stage.label,
                norm=float(lens.norms[s, position]),
                added=float(lens.update_norms[s, position]),
                top=[
                    (label(int(i)), float(p))
                    for i, p in zip(
                        lens.top_ids[s, position, :top],
                        lens.top_probs[s, position, :top],
                        strict=True,
                    )
                ],  # fmt: skip
                p_final=float(lens.p_final[s, position]),
                rank_final=int(lens.rank_final[s, position]),
                kl=float(lens.kl[s, position]),
                promoted=promoted,
            )
        )
    return rows


def kl_text(kl: float) -> str:
    """KL in nats, three decimals; exactly zero prints as "0".

    >>> kl_text(0.0), kl_text(1.23456), kl_text(2e-5)
    ('0', '1.235', '< 0.001')
    """
    if kl == 0.0:
        return "0"
    return "< 0.001" if kl < 0.0005 else f"{kl:.3f}"


def percent(p: float) -> str:
    """A probability as a percentage with one decimal ("< 0.1%" below that).

    >>> percent(0.4567), percent(0.0004)
    ('45.7%', '< 0.1%')
    """
    return "< 0.1%" if p < 0.0005 else f"{p * 100:.1f}%"


def position_line(
    lens: BlockLens,
    position: int,
    labels: Sequence[str],
    n_prompt: int,
    label: Callable[[int], str],
) -> str:
    """Which position the table is at, what stands there and what the model predicts."""
    n = lens.n_positions
    kind = "prompt" if position < n_prompt else "generated"
    nxt = f"; the text continues with {labels[position + 1]!r}" if position + 1 < n else ""
    return (
        f"Position {position} of 0..{n - 1}: {kind} token {labels[position]!r}. "
        f"The model's own next-token pick: {label(int(lens.final_ids[position]))!r}{nxt}."
    )


def scale_rows(table: Sequence[Architecture]) -> list[tuple[str, ...]]:
    """The scale table: name, layers, d_model, heads, KV heads, FFN, context, rope_theta.

    >>> from ..core.architectures import LLAMA_3_8B
    >>> scale_rows([LLAMA_3_8B])[0]
    ('Llama-3-8B', '32', '4,096', '32', '8', '14,336', '8,192', '500,000')
    """
    rows = []
    for a in table:
        theta = f"{a.rope_theta:,.0f}" + (f" ({a.rope_scaling})" if a.rope_scaling else "")
        rows.append(
            (a.name, f"{a.layers:,}", f"{a.d_model:,}", f"{a.heads:,}", f"{a.kv_heads:,}",
             f"{a.ffn:,}", f"{a.context:,}", theta)
        )  # fmt: skip
    return rows


SCALE_HEADER = ("model", "layers", "d_model", "heads", "KV heads", "FFN", "context", "rope_theta")
