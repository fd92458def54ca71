"""Rotary position embedding, taken apart: per-pair frequencies, angles, wavelengths, the
shift-invariance of the rotated score, and the two ways checkpoints lay out the pairs.

Everything reads the loaded model's config: ``rope_theta``, the head width and any RoPE
scaling it declares. The base frequencies come from :func:`~.ops.rope_inv_freq` (the
function the forward pass uses); a scaling block (``rope_scaling`` in transformers 4.x,
``rope_parameters`` in 5.x) is applied on top exactly as ``transformers`` does it.

Shapes: D is the head width, P = D/2 the number of rotated pairs. In the project's
*rotate-half* layout pair i is dimensions (i, i + D/2); in the *interleaved* layout it is
(2i, 2i + 1).

>>> from .config import LlamaConfig
>>> cfg = LlamaConfig(vocab_size=10, hidden_size=8, intermediate_size=16,
...                   num_hidden_layers=1, num_attention_heads=1, num_key_value_heads=1,
...                   max_position_embeddings=16)
>>> f = rope_frequencies(cfg)
>>> f.inv_freq.round(4).tolist(), f.wavelength.round(1).tolist()
([1.0, 0.1, 0.01, 0.001], [6.3, 62.8, 628.3, 6283.2])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .ops import rope_inv_freq

# -- which checkpoints lay the pairs out how ------------------------------------------------

CONVENTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "rotate-half",
        "pair i = dims (i, i + D/2)",
        "this project; Hugging Face transformers for Llama, Mistral, Qwen2/2.5, Qwen3 "
        "(rotate_half in modeling_llama.py); llama.cpp's 'NeoX' type for Qwen2/Qwen3 GGUFs",
    ),
    (
        "interleaved",
        "pair i = dims (2i, 2i + 1)",
        "Meta's original Llama code (view_as_complex on neighbours); GGUF / llama.cpp "
        "Llama-family files ('normal' type), whose converter permutes the q/k rows so the "
        "same weights give the same scores; GPT-J",
    ),
)
"""(name, which dimensions form a pair, which checkpoints and code use it)."""


# -- frequencies -------------------------------------------------------------------------------


def rope_scaling_of(config: Any) -> dict[str, Any] | None:
    """The config's RoPE scaling block as a plain dict with a ``rope_type`` key, or None.

    Reads ``rope_scaling`` (transformers 4.x) or ``rope_parameters`` (5.x), as a dict or
    a dataclass; the old key ``type`` counts as ``rope_type``; ``"default"`` means none.

    >>> class C: rope_scaling = {"type": "linear", "factor": 2.0}
    >>> rope_scaling_of(C())["rope_type"]
    'linear'
    """
    for name in ("rope_scaling", "rope_parameters"):
        raw = getattr(config, name, None)
        if raw is None:
            continue
        if callable(getattr(raw, "to_dict", None)):  # the core's Llama3RopeScaling
            raw = raw.to_dict()
        elif dataclasses.is_dataclass(raw) and not isinstance(raw, type):
            raw = dataclasses.asdict(raw)
        elif not isinstance(raw, Mapping):
            raw = {k: v for k, v in vars(raw).items() if not k.startswith("_")}
        block = dict(raw)
        kind = block.get("rope_type", block.get("type"))
        if kind in (None, "default"):
            continue
        block["rope_type"] = kind
        return block
    return None


def llama3_inv_freq(
    inv_freq: np.ndarray,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: int,
) -> np.ndarray:
    """Llama 3.1's frequency rescaling (``rope_type: llama3``): the core's own
    :class:`~.config.Llama3RopeScaling`, the one the model's rotation tables use.

    Pairs whose wavelength is shorter than ``original / high_freq_factor`` tokens keep
    their speed; pairs longer than ``original / low_freq_factor`` turn ``factor`` times
    slower; the band between is blended linearly in ``original / wavelength``.

    >>> llama3_inv_freq(np.array([1.0, 1e-4]), 8.0, 1.0, 4.0, 8192).tolist()
    [1.0, 1.25e-05]
    """
    from .config import Llama3RopeScaling

    scaling = Llama3RopeScaling(
        factor, low_freq_factor, high_freq_factor, original_max_position_embeddings
    )
    return scaling.apply(np.asarray(inv_freq, dtype=np.float64))


@dataclass(frozen=True)
class RopeFrequencies:
    """The angular speed of every rotated pair of one head, before and after scaling."""

    head_dim: int
    theta: float
    base_inv_freq: np.ndarray  # [P] theta ** (-2i / D), radians per position
    inv_freq: np.ndarray  # [P] what the model uses (== base without scaling)
    scaling: dict[str, Any] | None
    """The config's scaling block (None: plain RoPE)."""
    supported: bool = True
    """False when the scaling type is one this module cannot reproduce (shown, not used)."""
    from_file: bool = False
    """The model's file set its own per-pair speeds (a GGUF's ``rope_freqs``), which
    differ from what rope_theta alone gives."""

    @property
    def n_pairs(self) -> int:
        return self.head_dim // 2

    @property
    def wavelength(self) -> np.ndarray:
        """Tokens for pair i to turn once round: 2π / inv_freq."""
        return 2 * math.pi / self.inv_freq

    @property
    def base_wavelength(self) -> np.ndarray:
        return 2 * math.pi / self.base_inv_freq

    def angles(self, position: int | float) -> np.ndarray:
        """[P] angle of every pair at ``position`` (radians, not wrapped): position × inv_freq."""
        return float(position) * self.inv_freq


def rope_frequencies(config: Any, inv_freq: np.ndarray | None = None) -> RopeFrequencies:
    """Per-pair frequencies for a loaded config (its ``dim_head``, ``rope_theta``, scaling).

    ``inv_freq``: the speeds the model really rotates by (``model.inv_freq``); given, they
    are what is reported as used, and the config's base speeds stay for comparison.
    """
    head_dim = int(config.dim_head)
    theta = float(config.rope_theta)
    base = rope_inv_freq(head_dim, theta).astype(np.float64)
    scaling = rope_scaling_of(config)
    inv, supported = base, True
    if scaling is not None:
        kind = scaling["rope_type"]
        if kind == "llama3":
            inv = llama3_inv_freq(
                base,
                float(scaling["factor"]),
                float(scaling.get("low_freq_factor", 1.0)),
                float(scaling.get("high_freq_factor", 4.0)),
                int(scaling["original_max_position_embeddings"]),
            )
        elif kind == "linear":
            inv = base / float(scaling["factor"])
        else:
            supported = False
    from_file = False
    if inv_freq is not None:
        used = np.asarray(inv_freq, dtype=np.float64)
        from_file = not np.allclose(used, inv, rtol=1e-5)
        inv = used
    return RopeFrequencies(head_dim, theta, base, inv, scaling, supported, from_file)


def cos_sin(freqs: RopeFrequencies, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables [T, D] in the rotate-half layout (each of the P angles twice),
    computed from the frequencies in float32 as the model computes its own tables."""
    angle = np.outer(np.asarray(positions, np.float32), freqs.inv_freq.astype(np.float32))
    emb = np.concatenate([angle, angle], axis=-1)  # [T, P] -> [T, D]
    return np.cos(emb), np.sin(emb)


# -- rotations in the two layouts ----------------------------------------------------------------


def rotate_half_rope(x: np.ndarray, position: float, inv_freq: np.ndarray) -> np.ndarray:
    """Rotate vector x [D] to ``position``, pairs (i, i + D/2) — the project's layout.

    Written as the explicit 2-D rotation of each pair (independent of :mod:`.ops`).
    """
    x = np.asarray(x, dtype=np.float64)
    half = x.shape[-1] // 2
    a = float(position) * np.asarray(inv_freq, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    x1, x2 = x[:half], x[half:]
    return np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c])


def interleaved_rope(x: np.ndarray, position: float, inv_freq: np.ndarray) -> np.ndarray:
    """Rotate vector x [D] to ``position`` with pairs (2i, 2i + 1) — Meta's / llama.cpp's layout."""
    x = np.asarray(x, dtype=np.float64)
    a = float(position) * np.asarray(inv_freq, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    even, odd = x[0::2], x[1::2]
    out = np.empty_like(x)
    out[0::2] = even * c - odd * s
    out[1::2] = even * s + odd * c
    return out


def half_to_interleaved(head_dim: int) -> np.ndarray:
    """Permutation p with ``x_interleaved = x_half[p]``: dims (i, i + D/2) move to (2i, 2i+1).

    This is the reordering llama.cpp's converter applies to the q/k rows of a Llama
    checkpoint, so both layouts produce identical attention scores.

    >>> half_to_interleaved(6).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    half = head_dim // 2
    return np.stack([np.arange(half), np.arange(half) + half], axis=1).reshape(-1)


# -- the proof on real vectors ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftProof:
    """Scores q·k/√D of one real query/key pair under shifted positions."""

    m: int
    n: int
    shift: int
    head_dim: int
    score_raw: float
    """Without rotation: the same at every position."""
    score_rope: float
    """Rotated to (m, n): what the model computes."""
    score_shifted: float
    """Rotated to (m + shift, n + shift)."""
    score_query_only: float
    """Only the query moved, to (m + shift, n): the offset changed."""
    score_interleaved: float
    """Interleaved layout on the permuted vectors at (m, n): equal to score_rope."""
    vector_moved: float
    """‖R(m+shift)q − R(m)q‖: the rotated query itself changed."""

    @property
    def shift_difference(self) -> float:
        return abs(self.score_shifted - self.score_rope)

    @property
    def query_only_difference(self) -> float:
        return abs(self.score_query_only - self.score_rope)

    @property
    def rotation_effect(self) -> float:
        return abs(self.score_rope - self.score_raw)


def shift_proof(
    q: np.ndarray, k: np.ndarray, m: int, n: int, shift: int, inv_freq: np.ndarray
) -> ShiftProof:
    """Rotate the pre-RoPE query q [D] and key k [D] to (m, n) and to (m+shift, n+shift).

    Computed in float64 so the shifted score differs from the unshifted one only by the
    rounding of cos/sin (≈1e-12 relative), far below what the screen prints.
    """
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    q64, k64 = np.asarray(q, np.float64), np.asarray(k, np.float64)
    qm = rotate_half_rope(q64, m, inv_freq)
    kn = rotate_half_rope(k64, n, inv_freq)
    qs = rotate_half_rope(q64, m + shift, inv_freq)
    ks = rotate_half_rope(k64, n + shift, inv_freq)
    perm = half_to_interleaved(d)
    qi = interleaved_rope(q64[perm], m, inv_freq)
    ki = interleaved_rope(k64[perm], n, inv_freq)
    return ShiftProof(
        m=m,
        n=n,
        shift=shift,
        head_dim=d,
        score_raw=float(q64 @ k64) * scale,
        score_rope=float(qm @ kn) * scale,
        score_shifted=float(qs @ ks) * scale,
        score_query_only=float(qs @ kn) * scale,
        score_interleaved=float(qi @ ki) * scale,
        vector_moved=float(np.linalg.norm(qs - qm)),
    )


def shift_range(m: int, n: int, context: int) -> tuple[int, int]:
    """Smallest and largest shift keeping both m+s and n+s inside positions 0..context-1.

    >>> shift_range(3, 1, 10)
    (-1, 6)
    """
    return -min(m, n), context - 1 - max(m, n)


def pair_arrow(x: np.ndarray, pair: int, angle: float) -> tuple[float, float]:
    """The 2-D point of pair ``pair`` of vector x [D] (rotate-half layout), turned by ``angle``."""
    half = x.shape[-1] // 2
    a, b = float(x[pair]), float(x[pair + half])
    c, s = math.cos(angle), math.sin(angle)
    return a * c - b * s, a * s + b * c


def pick_pairs(n_pairs: int, count: int = 4) -> list[int]:
    """``count`` pair indices spread from the fastest (0) to the slowest (P-1).

    >>> pick_pairs(16), pick_pairs(2), pick_pairs(1)
    ([0, 5, 10, 15], [0, 1], [0])
    """
    count = max(1, min(count, n_pairs))
    if count == 1:
        return [0]
    return sorted({round(i * (n_pairs - 1) / (count - 1)) for i in range(count)})


# -- the real vectors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerVectors:
    """q, k, v of one layer before RoPE, and the scores the model computed from them."""

    layer: int
    q: np.ndarray  # [H, T, D] before RoPE
    k: np.ndarray  # [Hkv, T, D] before RoPE
    v: np.ndarray  # [Hkv, T, D] never rotated
    q_rope: np.ndarray  # [H, T, D]
    k_rope: np.ndarray  # [Hkv, T, D]
    scores: np.ndarray | None  # [H, T, T] q·k/√D before the mask (None: not kept)


def layer_vectors(model: Any, tokens: Any, layer: int) -> LayerVectors:
    """Run ``tokens`` through blocks 0..layer with the core's :func:`~.model.decoder_block`
    and return that layer's recorded q, k, v (before and after RoPE) and scores."""
    from .model import check_tokens, decoder_block, one_blas_thread

    n_layers = model.config.num_hidden_layers
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} does not exist: this model has layers 0..{n_layers - 1}")
    ids = check_tokens(model, tokens)
    cos, sin = model.rope_tables(np.arange(ids.size))
    x = model.embed[ids]
    rec: dict[str, np.ndarray] = {}
    with one_blas_thread():
        for i in range(layer + 1):
            rec = {}
            x = decoder_block(x, model.layers[i], model.config, cos, sin, None, rec)
    return LayerVectors(
        layer, rec["q"], rec["k"], rec["v"], rec["q_rope"], rec["k_rope"], rec["scores"]
    )


def all_layer_vectors(model: Any, tokens: Any) -> list[LayerVectors]:
    """:class:`LayerVectors` of every layer from one pass (scores not kept: at a long
    context they are the largest arrays, and the chapter recomputes the one it shows)."""
    from .model import check_tokens, decoder_block, one_blas_thread

    ids = check_tokens(model, tokens)
    cos, sin = model.rope_tables(np.arange(ids.size))
    x = model.embed[ids]
    out = []
    with one_blas_thread():
        for i, layer in enumerate(model.layers):
            rec: dict[str, np.ndarray] = {}
            x = decoder_block(x, layer, model.config, cos, sin, None, rec)
            out.append(LayerVectors(i, rec["q"], rec["k"], rec["v"], rec["q_rope"],
                                    rec["k_rope"], None))  # fmt: skip
    return out
