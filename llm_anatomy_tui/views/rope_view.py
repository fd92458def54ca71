"""What chapter 10 (RoPE) shows, as plain strings and numbers.

:func:`rope_view` turns the real q, k, v of one layer (:class:`~..core.rope_inspect.LayerVectors`)
and a selection (layer, head, query token m, key token n, the position the arrows are
drawn at, the shift s of the proof) into rows the screen draws. Nothing here imports
Textual or Rich. Noise-level differences print as "< 1e-6", so a screenshot never
depends on the last bits of a BLAS kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..core.rope_inspect import (
    CONVENTIONS,
    LayerVectors,
    RopeFrequencies,
    ShiftProof,
    half_to_interleaved,
    pair_arrow,
    pick_pairs,
    rope_frequencies,
    shift_proof,
    shift_range,
)

NOISE = 1e-6
"""Differences below this print as "< 1e-6" (float rounding, not a property of RoPE)."""


@dataclass(frozen=True)
class RopeSelection:
    """What the reader picked. Positions are token indices of the context."""

    layer: int = 0
    head: int = 0
    query: int = -1
    """-1: the last token."""
    key: int = 0
    position: int = -1
    """Where the arrows are drawn; -1: at the query's own position."""
    shift: int = 3


def clamp_selection(
    sel: RopeSelection, n_layers: int, n_heads: int, n_tokens: int, context: int
) -> RopeSelection:
    """``sel`` pulled inside the model's layers and heads, the context's tokens and window.

    >>> clamp_selection(RopeSelection(layer=9, head=-2, query=-1, key=40, position=999,
    ...                 shift=500), 4, 4, 10, 256)
    RopeSelection(layer=3, head=0, query=9, key=9, position=255, shift=246)
    """
    query = n_tokens - 1 if sel.query < 0 else min(sel.query, n_tokens - 1)
    key = max(0, min(sel.key, n_tokens - 1))
    position = query if sel.position < 0 else min(sel.position, context - 1)
    lo, hi = shift_range(query, key, context)
    return RopeSelection(
        layer=max(0, min(sel.layer, n_layers - 1)),
        head=max(0, min(sel.head, n_heads - 1)),
        query=max(0, query),
        key=key,
        position=max(0, position),
        shift=max(lo, min(sel.shift, hi)),
    )


def fmt_sig(x: float, digits: int = 4) -> str:
    """A positive number with ``digits`` significant figures, thousands separated.

    >>> fmt_sig(6.283185), fmt_sig(62831.85), fmt_sig(0.000123456)
    ('6.283', '62,832', '0.0001235')
    """
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exponent = math.floor(math.log10(abs(x)))
    if exponent >= digits - 1:
        return f"{x:,.0f}"
    return f"{x:,.{digits - 1 - exponent}f}"


def diff_text(d: float) -> str:
    """A difference of two scores, with float noise shown stably.

    >>> diff_text(3e-9), diff_text(0.01234)
    ('< 1e-6', '0.0123')
    """
    return f"< {NOISE:.0e}".replace("e-06", "e-6") if d < NOISE else f"{d:.4f}"


# -- arrows ---------------------------------------------------------------------------------------

DIAL_ROWS = 5
DIAL_COLS = 11
_RING = ("   · · ·", " ·       ·", "·    ○    ·", " ·       ·", "   · · ·")
# 12 directions, 30° apart from 0° (right), counter-clockwise: (tip row, col, glyph),
# then the cells of the hand between the centre and the tip.
_HANDS = (
    ((2, 10, "→"), ((2, 7, "─"), (2, 8, "─"))),
    ((1, 9, "↗"), ((1, 7, "╱"),)),
    ((0, 7, "↗"), ((1, 6, "╱"),)),
    ((0, 5, "↑"), ((1, 5, "│"),)),
    ((0, 3, "↖"), ((1, 4, "╲"),)),
    ((1, 1, "↖"), ((1, 3, "╲"),)),
    ((2, 0, "←"), ((2, 2, "─"), (2, 3, "─"))),
    ((3, 1, "↙"), ((3, 3, "╱"),)),
    ((4, 3, "↙"), ((3, 4, "╱"),)),
    ((4, 5, "↓"), ((3, 5, "│"),)),
    ((4, 7, "↘"), ((3, 6, "╲"),)),
    ((3, 9, "↘"), ((3, 7, "╲"),)),
)


def dial(angle: float) -> list[str]:
    """A small clock face (5 rows × 11 columns) with a hand pointing at ``angle`` radians
    (0 = right, counter-clockwise, to the nearest 30°), its tip an arrow glyph (so no
    colour is needed).

    >>> print("\\n".join(dial(math.pi / 2)))
       · ↑ ·
     ·   │   ·
    ·    ○    ·
     ·       ·
       · · ·
    """
    grid = [list(row.ljust(DIAL_COLS)) for row in _RING]
    tip, hand = _HANDS[round((angle % (2 * math.pi)) / (math.pi / 6)) % 12]
    for y, x, glyph in (tip, *hand):
        grid[y][x] = glyph
    return ["".join(row).rstrip() for row in grid]


@dataclass(frozen=True)
class PairDial:
    pair: int
    speed: str
    """"fast", "slow" or "middle"."""
    lines: list[str]
    caption: list[str]


# -- the whole view ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RopeView:
    """Everything chapter 10 prints for one selection."""

    selection: RopeSelection
    n_tokens: int
    context: int
    head_dim: int
    kv_head: int
    status: str
    dials: list[PairDial]
    freq_header: tuple[str, ...]
    freq_rows: list[tuple[str, ...]]
    proof: ShiftProof | None
    proof_rows: list[tuple[str, str, str]]
    proof_note: str
    v_lines: list[str]
    convention_rows: list[tuple[str, str, str]]
    convention_example: str
    scaling_title: str
    scaling_rows: list[tuple[str, str, str, str]]
    notes: list[str]
    at_window_end: bool
    """The arrows are drawn at the last position of the context window (they stop there)."""


def _pair_speed(i: int, n_pairs: int) -> str:
    if i < n_pairs / 3:
        return "fast"
    return "slow" if i >= 2 * n_pairs / 3 else "middle"


def _scaling_table(freqs: RopeFrequencies) -> list[tuple[str, str, str, str]]:
    """Wavelengths before and after scaling for the pairs that tell the story: the
    fastest, the last one left alone, the blended band's ends, the first fully scaled,
    the slowest."""
    ratio = freqs.wavelength / freqs.base_wavelength
    factor = float(ratio.max())
    kept = np.flatnonzero(np.isclose(ratio, 1.0))
    full = np.flatnonzero(np.isclose(ratio, factor))
    blended = np.flatnonzero(~np.isclose(ratio, 1.0) & ~np.isclose(ratio, factor))
    picks = {0, freqs.n_pairs - 1}
    for group in (kept, blended, full):
        if group.size:
            picks |= {int(group[0]), int(group[-1])}
    rows = []
    for i in sorted(picks):
        base, now = freqs.base_wavelength[i], freqs.wavelength[i]
        rows.append((str(i), fmt_sig(base), fmt_sig(now), f"×{now / base:.3g}"))
    return rows


LLAMA_31_8B_ROPE = {
    "dim_head": 128,
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
}  # fmt: skip
"""Llama-3.1-8B's RoPE fields, from its config.json (see core/architectures.py)."""


class _Cfg:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


def rope_view(
    config: object,
    vectors: LayerVectors,
    labels: Sequence[str],
    sel: RopeSelection,
    inv_freq: np.ndarray | None = None,
) -> RopeView:
    """The view of one selection (already clamped with :func:`clamp_selection`).

    ``inv_freq``: the speeds the model really rotates by (``model.inv_freq``); without
    it they are derived from the config."""
    cfg = config
    n_tokens = vectors.q.shape[1]
    n_heads = vectors.q.shape[0]
    group = n_heads // vectors.k.shape[0]
    kv_head = sel.head // group
    freqs = rope_frequencies(cfg, inv_freq)
    d = freqs.head_dim
    half = d // 2
    context = int(cfg.max_position_embeddings)  # type: ignore[attr-defined]
    m, n, s, p = sel.query, sel.key, sel.shift, sel.position
    q = vectors.q[sel.head, m].astype(np.float64)  # [D] before RoPE
    k = vectors.k[kv_head, n].astype(np.float64)
    v = vectors.v[kv_head, n].astype(np.float64)
    notes: list[str] = []

    status = (
        f"layer {sel.layer} · head {sel.head} (K/V head {kv_head}) · query "
        f"{labels[m]!r} at m={m} · key {labels[n]!r} at n={n} · m−n = {m - n}"
    )
    # arrows: the query's pairs, turned to position p
    dials = []
    for i in pick_pairs(half, 4):
        angle = p * freqs.inv_freq[i]
        x, y = pair_arrow(q, i, angle)
        deg = math.degrees(freqs.inv_freq[i])
        dials.append(
            PairDial(
                i,
                _pair_speed(i, half),
                dial(math.atan2(y, x)),
                [
                    f"pair {i} ({_pair_speed(i, half)})",
                    f"{fmt_sig(deg)}°/token",
                    f"turned {math.degrees(angle) % 360:5.1f}°",
                    f"λ {fmt_sig(freqs.wavelength[i])} tok",
                ],
            )
        )
    # the frequency table: every pair
    scaled = (freqs.scaling is not None and freqs.supported) or freqs.from_file
    header = ("pair", "dims", "rad/token", f"angle at {p} (rad)", "mod 360°", "λ (tokens)")
    if scaled:
        header = header + ("λ unscaled",)
    rows = []
    for i in range(half):
        a = p * float(freqs.inv_freq[i])
        row = (
            str(i), f"{i},{i + half}", f"{float(freqs.inv_freq[i]):.7g}", f"{a:,.4f}",
            f"{math.degrees(a) % 360:.1f}", fmt_sig(float(freqs.wavelength[i])),
        )  # fmt: skip
        if scaled:
            row = row + (fmt_sig(float(freqs.base_wavelength[i])),)
        rows.append(row)
    # the proof
    proof = None
    proof_rows: list[tuple[str, str, str]] = []
    if n_tokens < 2:
        proof_note = (
            "The context holds one token: there is no pair to compare. Type a longer "
            "prompt (/) to see the proof."
        )
    else:
        proof = shift_proof(q, k, m, n, s, freqs.inv_freq)
        sc = proof.score_rope
        proof_rows = [
            ("no rotation: q·k/√D", f"{proof.score_raw:+.4f}", "the same at every position"),
            (f"rotated to ({m}, {n})", f"{sc:+.4f}", "what the model computes"),
            (f"rotated to ({m + s}, {n + s})", f"{proof.score_shifted:+.4f}",
             f"differs by {diff_text(proof.shift_difference)}: same offset {m - n}"),
            (f"only q moved: ({m + s}, {n})", f"{proof.score_query_only:+.4f}",
             f"differs by {diff_text(proof.query_only_difference)}: offset now {m + s - n}"),
            ("interleaved (dims permuted)", f"{proof.score_interleaved:+.4f}",
             f"differs by {diff_text(abs(proof.score_interleaved - sc))} (llama.cpp)"),
        ]  # fmt: skip
        lo, hi = shift_range(m, n, context)
        proof_note = (
            f"Shift s = {s:+d} (allowed {lo:+d}..{hi:+d}, so both positions stay inside the "
            f"{context:,}-token window). The rotated query itself moved by "
            f"‖R({m + s})q − R({m})q‖ = {proof.vector_moved:.3f}, yet its score with the "
            "equally moved key did not change: only the offset m − n counts."
        )
        if s == 0:
            proof_note += " (s = 0 shifts nothing: press o to shift.)"
    # V
    q_moved = float(np.linalg.norm(vectors.q_rope[sel.head, m] - vectors.q[sel.head, m]))
    k_moved = float(np.linalg.norm(vectors.k_rope[kv_head, n] - vectors.k[kv_head, n]))
    shown = ", ".join(f"{x:+.3f}" for x in v[:4])
    v_lines = [
        f"q at {m}: RoPE moved it by {q_moved:.3f}; k at {n}: by {k_moved:.3f}.",
        f"v at {n} (K/V head {kv_head}): [{shown}{', …' if d > 4 else ''}] — no rotation: "
        "attention mixes values exactly as v_proj made them, whatever their position.",
    ]
    # conventions
    perm = half_to_interleaved(d)
    conv_example = (
        f"With D = {d}: rotate-half pairs (0,{half}), (1,{half + 1}) …; interleaved pairs "
        f"(0,1), (2,3) …. Reordering q and k with [{', '.join(map(str, perm[:6]))}, …] turns "
        "one into the other: the same scores (last row of the proof)."
    )
    # scaling
    if scaled:
        if freqs.from_file:
            scaling_title = (
                "This model's file sets its own speed for every pair (llama.cpp's "
                "rope_freqs); wavelengths before (from rope_theta alone) and after:"
            )
        else:
            kind, factor = freqs.scaling["rope_type"], freqs.scaling.get("factor")  # type: ignore[index, union-attr]
            scaling_title = f"This model scales its RoPE ({kind}, factor {factor:g}):"
        scaling_rows = _scaling_table(freqs)
    else:
        if freqs.scaling is not None:
            notes.append(
                f"rope_type {freqs.scaling['rope_type']!r} is not reproduced here: "
                "wavelengths are shown unscaled."
            )
        example = rope_frequencies(_Cfg(**LLAMA_31_8B_ROPE))
        scaling_title = (
            "This model uses plain RoPE. Llama 3.1 8B scales its own (llama3, factor 8, "
            "θ 500,000, D 128): fast pairs keep their speed, slow pairs turn 8× slower, "
            "the band between is blended:"
        )
        scaling_rows = _scaling_table(example)
    return RopeView(
        selection=sel, n_tokens=n_tokens, context=context, head_dim=d, kv_head=kv_head,
        status=status, dials=dials, freq_header=header, freq_rows=rows, proof=proof,
        proof_rows=proof_rows, proof_note=proof_note, v_lines=v_lines,
        convention_rows=list(CONVENTIONS), convention_example=conv_example,
        scaling_title=scaling_title, scaling_rows=scaling_rows, notes=notes,
        at_window_end=p >= context - 1,
    )  # fmt: skip


def with_position(sel: RopeSelection, position: int) -> RopeSelection:
    return replace(sel, position=position)
