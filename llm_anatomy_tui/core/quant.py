"""Quantization: store weights in fewer bits, and measure exactly what that costs.

Everything here is *simulated* quantization: a tensor is turned into integer (or small
float) codes plus scales — the numbers a quantized file would hold — and then decoded
back to float32. The model then computes in float32 on those decoded values. That shows
the real rounding error of each format; it does not make anything faster or smaller in
RAM (a real runtime keeps the codes and multiplies with them directly). Byte counts are
those of the codes and scales, packed as a file would pack them.

Formats (``QuantScheme.format``)
--------------------------------
======  ====  ====================================================================
fp32    32    IEEE single precision: the reference, unchanged.
fp16    16    IEEE half precision: numpy's own float32 -> float16 cast (round to
              nearest even; beyond 65,504 becomes inf, as numpy does).
bf16    16    bfloat16: the top 16 bits of a float32, rounded to nearest even.
fp8     8     FP8 E4M3 ("E4M3FN", OCP FP8 spec): 1 sign, 4 exponent (bias 7), 3
              mantissa bits; no infinities, largest value 448, subnormals down to
              2**-9. Conversion saturates: anything beyond ±448 (±inf too) becomes
              ±448. By default each group is first divided by a scale
              ``amax / 448`` so its largest value lands on 448.
int8    8     integers with a scale per group (see "Integer rules").
int4    4     ditto
int3    3     ditto
int2    2     ditto
======  ====  ====================================================================

Granularity (``QuantScheme.granularity``): how many weights share one scale.

- ``per-tensor``:  one scale for the whole tensor.
- ``per-channel``: one scale per output channel, i.e. per row of the Hugging Face
  ``[out_features, in_features]`` matrix (per token row for the embedding).
- ``per-block``:   one scale per run of ``block_size`` (32) consecutive weights along a
  row — along the *input* dimension — as llama.cpp's Q8_0 / Q4_0 blocks. A row whose
  length is not a multiple of 32 ends in a shorter block with its own scale (llama.cpp
  refuses such rows; every matrix of our model is a multiple of 32 wide).
- ``none``: no scale at all (fp32, fp16, bf16 always; fp8 optionally: a plain cast).

Scales are stored as fp16 for ``per-block`` (as llama.cpp does) and as fp32 for
``per-tensor`` / ``per-channel`` (where they cost next to nothing); ``scale_dtype``
overrides this. An fp16 scale (or offset) that would overflow is saturated at 65,504
(llama.cpp would write inf); that only happens for weights far beyond any real model's.

Integer rules (llama.cpp's reference quantizers, ``ggml-quants.c``)
-------------------------------------------------------------------
We follow llama.cpp's reference code (``quantize_row_q8_0_ref``, ``quantize_row_q4_0_ref``,
``quantize_row_q4_1_ref``) to the letter, and apply the same rule at every granularity.
The tests replay each rule in a per-block loop, and — when the ``gguf`` package (llama.cpp's
own Python port) is installed — check Q8_0 / Q4_0 / Q4_1 bit for bit against it.

- **INT8 symmetric = Q8_0's rule.** ``d = amax / 127``; ``code = roundf(x / d)`` (round
  half away from zero, C's ``roundf``), codes in -127..127 (-128 is never used: 255
  levels); ``x̂ = code · d``. Per-block-32 with an fp16 ``d`` this *is* Q8_0: 34 bytes per
  32 weights = 8.5 bits/weight.
- **INT4/INT3/INT2 symmetric = Q4_0's rule.** Let ``n = 2**(bits-1)`` (8 for INT4) and
  ``max`` the block's value of largest magnitude *with its sign*. ``d = max / -n``;
  ``code = min(2n-1, trunc(x / d + n + 0.5)) - n`` — codes in -n..n-1, all ``2**bits``
  levels used. The trick: the largest-magnitude weight lands exactly on code ``-n`` (so it
  is stored without error), and ``d`` comes out *negative* when that weight is positive.
  This is not the textbook "symmetric ±7" grid (15 levels, ``d = amax / 7``); it uses the
  16th level instead. Per-block-32 with an fp16 ``d`` this *is* Q4_0: 18 bytes per 32
  weights = 4.5 bits/weight. INT3 and INT2 blocks (3.5 and 2.5 bits/weight) are the same
  rule with fewer bits; they are *not* llama.cpp formats (its Q3_K / Q2_K use 256-weight
  super-blocks with quantized sub-block scales).
- **Asymmetric (any width) = Q4_1's rule.** ``d = (max - min) / (2**bits - 1)``;
  ``code = min(2**bits - 1, trunc((x - min) / d + 0.5))`` in 0..2**bits-1;
  ``x̂ = code · d + min``. The zero point is stored as a float *offset* (the group's
  minimum, ``m`` in llama.cpp), not as an integer zero point; it is the same grid as
  ``(code - z) · d`` with ``z = -min / d``. Per-block-32 INT4 with fp16 ``d`` and ``m`` *is*
  Q4_1: 20 bytes per 32 weights = 5.0 bits/weight.

As in llama.cpp, codes are computed against the float32 scale, and decoding uses the
scale as stored (fp16 for blocks). So with fp32 scales every element's error is at most
``|d| / 2`` (except, under the Q4_0 rule, a weight near ``+n·|d|`` opposite the chosen
extreme, clipped to ``n-1``); with fp16 scales add the scale's own rounding,
``|code| · |d - fp16(d)|``. A group whose scale would be smaller than float32's smallest
normal number (about 1.2e-38) is treated as all zeros, so ``1/d`` never overflows.

A worked example (Q4_0 rule, one group of four). The largest magnitude is -0.8, so
``d = -0.8 / -8 = 0.1``; 0.31 / 0.1 + 8.5 = 11.6 truncates to 11, code 3; -0.07 gives
7.8 -> 7, code -1:

>>> r = quantize(np.array([0.31, -0.8, 0.52, -0.07]), QuantScheme("int4", "per-tensor"))
>>> r.codes.tolist(), round(float(r.scales[0, 0]), 3)
([3, -8, 5, -1], 0.1)
>>> [round(float(v), 3) for v in r.dequantized]
[0.3, -0.8, 0.5, -0.1]
>>> r.storage.nbytes, r.storage.code_bytes, r.storage.scale_bytes  # 4 × 4 bits + fp32 scale
(6, 2, 4)

What gets quantized in a whole model (:func:`quantize_model`): every 2-D matrix — the
token embedding (which is also the output head: embeddings are tied) and every attention
and FFN projection. The RMSNorm gains (1-D) stay float32, as llama.cpp keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .config import LlamaConfig
from .model import Model, expected_shapes

# -- formats -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FormatSpec:
    """One number format: its name, width and kind."""

    name: str  # "int4"
    label: str  # "INT4"
    bits: int  # bits per stored code
    kind: str  # "float" or "int"
    summary: str


FORMATS: dict[str, FormatSpec] = {
    "fp32": FormatSpec("fp32", "FP32", 32, "float", "IEEE single precision (the reference)"),
    "fp16": FormatSpec("fp16", "FP16", 16, "float", "IEEE half: 5-bit exponent, 10-bit mantissa"),
    "bf16": FormatSpec("bf16", "BF16", 16, "float", "bfloat16: fp32's 8-bit exponent, 7-bit mantissa"),
    "fp8": FormatSpec("fp8", "FP8", 8, "float", "FP8 E4M3: 4-bit exponent, 3-bit mantissa, max 448"),
    "int8": FormatSpec("int8", "INT8", 8, "int", "8-bit integers × scale"),
    "int4": FormatSpec("int4", "INT4", 4, "int", "4-bit integers × scale (16 levels)"),
    "int3": FormatSpec("int3", "INT3", 3, "int", "3-bit integers × scale (8 levels)"),
    "int2": FormatSpec("int2", "INT2", 2, "int", "2-bit integers × scale (4 levels)"),
}  # fmt: skip
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
GRANULARITIES: tuple[str, ...] = ("per-tensor", "per-channel", "per-block")
NO_SCALE = "none"
BLOCK_SIZE = 32
SCALE_DTYPES = {"fp16": 16, "fp32": 32}

_F32_TINY = np.float32(np.finfo(np.float32).tiny)  # smallest normal float32, ~1.18e-38
_FP16_MAX = np.float32(65504.0)


@dataclass(frozen=True)
class QuantScheme:
    """What to quantize to: format, granularity, symmetric or not, block size, scale dtype.

    Combinations that have no meaning are normalised by :meth:`effective` rather than
    refused, so a screen can offer every control at once: fp32/fp16/bf16 have no scale
    (granularity becomes ``none``), fp8 is always symmetric. Integer formats need a scale,
    so ``int* + none`` raises ``ValueError``.

    >>> QuantScheme("int4", "per-block").label
    'INT4 · per-block-32 · sym (Q4_0)'
    >>> QuantScheme("bf16", "per-channel", symmetric=False).effective().label
    'BF16'
    """

    format: str = "int8"
    granularity: str = "per-block"
    symmetric: bool = True
    block_size: int = BLOCK_SIZE
    scale_dtype: str | None = None  # "fp16" | "fp32"; None = fp16 for blocks, else fp32

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(
                f"unknown format {self.format!r}; choose one of: {', '.join(FORMAT_NAMES)}"
            )
        if self.granularity not in (*GRANULARITIES, NO_SCALE):
            raise ValueError(
                f"unknown granularity {self.granularity!r}; choose one of: "
                f"{', '.join(GRANULARITIES)} (or {NO_SCALE!r} for float formats)"
            )
        if self.spec.kind == "int" and self.granularity == NO_SCALE:
            raise ValueError(f"{self.spec.label} needs a scale: choose {', '.join(GRANULARITIES)}")
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {self.block_size!r}")
        if self.scale_dtype is not None and self.scale_dtype not in SCALE_DTYPES:
            raise ValueError(f"scale_dtype must be 'fp16' or 'fp32', got {self.scale_dtype!r}")

    @property
    def spec(self) -> FormatSpec:
        return FORMATS[self.format]

    @property
    def bits(self) -> int:
        """Bits per stored code (scales not included)."""
        return self.spec.bits

    def effective(self) -> QuantScheme:
        """The scheme actually applied: meaningless options dropped, scale dtype resolved."""
        if self.format in ("fp32", "fp16", "bf16"):
            return QuantScheme(self.format, NO_SCALE, True, self.block_size, None)
        symmetric = True if self.format == "fp8" else self.symmetric
        if self.granularity == NO_SCALE:
            return replace(self, symmetric=symmetric, scale_dtype=None)
        scale_dtype = self.scale_dtype or ("fp16" if self.granularity == "per-block" else "fp32")
        return replace(self, symmetric=symmetric, scale_dtype=scale_dtype)

    @property
    def has_scale(self) -> bool:
        return self.effective().granularity != NO_SCALE

    @property
    def granularity_label(self) -> str:
        g = self.effective().granularity
        return f"per-block-{self.block_size}" if g == "per-block" else g

    @property
    def llama_cpp_name(self) -> str | None:
        """The llama.cpp type this scheme reproduces bit for bit, if any."""
        e = self.effective()
        if e.granularity != "per-block" or e.block_size != 32 or e.scale_dtype != "fp16":
            return None
        return {("int8", True): "Q8_0", ("int4", True): "Q4_0", ("int4", False): "Q4_1"}.get(
            (e.format, e.symmetric)
        )

    @property
    def label(self) -> str:
        """Short human label, e.g. ``INT4 · per-block-32 · sym (Q4_0)``."""
        e = self.effective()
        if e.granularity == NO_SCALE:
            return e.spec.label if e.format != "fp8" else "FP8 (no scale)"
        parts = [e.spec.label, self.granularity_label]
        if e.spec.kind == "int":
            parts.append("sym" if e.symmetric else "asym")
        text = " · ".join(parts)
        name = self.llama_cpp_name
        return f"{text} ({name})" if name else text


PRESETS: dict[str, QuantScheme] = {
    "FP32": QuantScheme("fp32"),
    "FP16": QuantScheme("fp16"),
    "BF16": QuantScheme("bf16"),
    "FP8": QuantScheme("fp8", "per-tensor"),
    "Q8_0": QuantScheme("int8", "per-block"),
    "Q4_0": QuantScheme("int4", "per-block"),
    "Q4_1": QuantScheme("int4", "per-block", symmetric=False),
}
"""Named schemes; Q8_0 / Q4_0 / Q4_1 are llama.cpp's types, reproduced exactly."""


def as_scheme(scheme: QuantScheme | str) -> QuantScheme:
    """A :class:`QuantScheme`, or the preset of that name (``"Q8_0"``, ``"q4_0"``, ``"FP16"``…)."""
    if isinstance(scheme, QuantScheme):
        return scheme
    key = str(scheme).upper()
    if key in PRESETS:
        return PRESETS[key]
    if key.lower() in FORMATS:
        return QuantScheme(key.lower())
    raise ValueError(f"unknown scheme {scheme!r}; presets: {', '.join(PRESETS)}")


# -- float formats: fp16, bf16, fp8 (E4M3) -----------------------------------------------


def fp16_encode(x: np.ndarray) -> np.ndarray:
    """float32 -> IEEE half bit patterns (uint16), by numpy's own cast (round to nearest even).

    Beyond ±65,504 (after rounding) the result is ±inf, exactly as numpy's cast.
    """
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def fp16_decode(codes: np.ndarray) -> np.ndarray:
    """IEEE half bit patterns (uint16) -> float32 (exact)."""
    return np.asarray(codes, dtype=np.uint16).view(np.float16).astype(np.float32)


def bf16_encode(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest, ties to even.

    bfloat16 is the top half of a float32, so rounding means adding just under half of the
    dropped 16 bits (``0x7FFF``) plus the kept part's lowest bit (ties go to even), then
    dropping them. A carry may ripple into the exponent: that is correct rounding up to the
    next power of two, or to inf past bfloat16's largest value (~3.39e38), as PyTorch does.
    NaN stays NaN with its sign, made quiet (mantissa bit 6 set) so it cannot round to inf.

    >>> bf16_encode(np.array([1.0, 1.00390625, 1.01171875])).tolist()  # 1, tie->even, tie->even
    [16256, 16256, 16258]
    """
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    r = u >> np.uint32(16)
    r &= np.uint32(1)  # the lowest kept bit
    r += u
    with np.errstate(over="ignore"):  # only NaN patterns can wrap; they are replaced below
        r += np.uint32(0x7FFF)
    r >>= np.uint32(16)
    nan = np.isnan(x)
    if nan.any():
        r[nan] = (u[nan] >> np.uint32(16)) | np.uint32(0x0040)
    return r.astype(np.uint16)


def bf16_decode(codes: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32 (exact: append 16 zero bits)."""
    wide = np.asarray(codes, dtype=np.uint16).astype(np.uint32)
    wide <<= np.uint32(16)
    return wide.view(np.float32)


E4M3_MAX = 448.0
"""Largest finite FP8 E4M3 value: 1.75 × 2**8 (code 0x7E)."""
E4M3_MIN_NORMAL = 2.0**-6
E4M3_MIN_SUBNORMAL = 2.0**-9
E4M3_NAN_CODE = 0x7F


def _e4m3_table() -> np.ndarray:
    """The value of every one of the 256 E4M3 codes (float32; codes 0x7F, 0xFF are NaN)."""
    codes = np.arange(256)
    sign = np.where(codes >= 128, -1.0, 1.0)
    exp, man = (codes >> 3) & 0xF, codes & 0x7
    normal = (1.0 + man / 8.0) * np.exp2(exp - 7.0)
    subnormal = man * E4M3_MIN_SUBNORMAL
    values = sign * np.where(exp == 0, subnormal, normal)
    values[(exp == 15) & (man == 7)] = np.nan
    return values.astype(np.float32)


E4M3_VALUES = _e4m3_table()
"""``E4M3_VALUES[code]`` is the float32 value of an FP8 E4M3 code."""


def fp8_e4m3_encode(x: np.ndarray) -> np.ndarray:
    """float32 -> FP8 E4M3 codes (uint8): round to nearest even, saturating at ±448.

    Normal range (|x| ≥ 2**-6): E4M3 keeps the top 3 of float32's 23 mantissa bits, so we
    round the float32 bit pattern to nearest-even at bit 20 (the bf16 trick with 20
    dropped bits instead of 16), shift the sign-less pattern right by 20 — leaving
    ``exponent << 3 | mantissa`` — and move the exponent bias from 127 to 7. A carry out of
    the mantissa correctly bumps the exponent. Subnormal range (|x| < 2**-6): values are
    multiples of 2**-9 and the code *is* the multiple, so ``rint(|x| · 512)`` (ties to
    even); 8 comes out as code 8, the smallest normal, as it should. ±inf and anything
    beyond ±448 become ±448 (0x7E / 0xFE); NaN becomes 0x7F / 0xFF.

    >>> fp8_e4m3_encode(np.array([1.0, 1.0625, 448.0, 1000.0, 2.0**-9, -0.3])).tolist()
    [56, 56, 126, 126, 1, 170]
    """
    # In-place steps: fewer temporaries keeps this ~5 ms per million values.
    x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    x = x.reshape(-1)  # 1-D, so the in-place steps below also work for a 0-d input
    a = np.abs(x)
    np.minimum(a, np.float32(E4M3_MAX), out=a)  # saturate; NaN passes through
    nan = np.isnan(a)
    has_nan = bool(nan.any())
    if has_nan:
        a[nan] = 0  # encoded as 0 for now, replaced by the NaN code at the end
    u = a.view(np.uint32)
    code = u >> np.uint32(20)
    code &= np.uint32(1)  # the lowest kept bit: ties round to make it 0 (even)
    code += u
    code += np.uint32(0x7FFFF)  # no wrap-around: |a| ≤ 448 here
    code >>= np.uint32(20)
    code = code.view(np.int32)
    code -= (127 - 7) << 3  # rebias the exponent field
    # Blend in the subnormal codes arithmetically: a masked assignment branches on every
    # element, which is slow when the mask is random (unscaled small weights).
    small = a < np.float32(E4M3_MIN_NORMAL)
    subnormal = np.rint(a * np.float32(512)).astype(np.int32)
    subnormal -= code
    subnormal *= small
    code += subnormal
    if has_nan:
        code[nan] = E4M3_NAN_CODE
    sign = x.view(np.uint32) >> np.uint32(24)
    sign &= np.uint32(0x80)
    code |= sign.view(np.int32)
    return code.astype(np.uint8).reshape(shape)


def fp8_e4m3_decode(codes: np.ndarray) -> np.ndarray:
    """FP8 E4M3 codes (uint8) -> float32 by table lookup."""
    return E4M3_VALUES[np.asarray(codes, dtype=np.uint8)]


# -- integer rules (llama.cpp's) ---------------------------------------------------------


def round_half_away(y: np.ndarray) -> np.ndarray:
    """C's ``roundf``: round to nearest, halves away from zero (numpy's rint rounds to even).

    >>> round_half_away(np.array([0.5, 1.5, 2.5, -0.5, -2.4])).tolist()
    [1.0, 2.0, 3.0, -1.0, -2.0]
    """
    y = np.asarray(y)
    r = np.rint(y)  # right everywhere except exact ties that went to an even neighbour
    off = y - r  # exact: ±0.5 only at ties
    tie = np.abs(off) == 0.5
    if tie.any():
        r[tie] = y[tie] + np.copysign(0.5, y[tie])  # away from zero: exactly an integer
    return r


def _safe_inverse(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, 1/d) with groups whose scale is below float32's smallest normal set to 0 (and 1/0 := 0).

    llama.cpp sets ``id = d ? 1/d : 0``; flushing tiny scales as well keeps 1/d finite.
    """
    d = np.where(np.abs(d) < _F32_TINY, np.float32(0), d).astype(np.float32)
    inv = np.zeros_like(d)
    np.divide(np.float32(1), d, out=inv, where=d != 0)
    return d, inv


def store_scale(d: np.ndarray, scale_dtype: str) -> np.ndarray:
    """Scales as a file would hold them, widened back to float32 (fp16 saturates at 65,504)."""
    d = np.asarray(d, dtype=np.float32)
    if scale_dtype == "fp16":
        return np.clip(d, -_FP16_MAX, _FP16_MAX).astype(np.float16).astype(np.float32)
    return d


@dataclass(frozen=True, eq=False)
class GroupCodes:
    """The raw output of a group quantizer on groups laid along the last axis.

    codes: [..., L]; scales, offsets: [...] as stored (float32 values); dequantized: [..., L].
    """

    codes: np.ndarray
    scales: np.ndarray | None
    offsets: np.ndarray | None
    dequantized: np.ndarray


def quantize_int_groups(
    groups: np.ndarray, bits: int, symmetric: bool, scale_dtype: str = "fp16"
) -> GroupCodes:
    """Integer-quantize each group (last axis) with llama.cpp's rules (see module docstring).

    ``bits == 8`` symmetric: Q8_0's rule; fewer bits symmetric: Q4_0's rule; asymmetric:
    Q4_1's rule. Codes are int8 (symmetric) or uint8 (asymmetric). Work arrays are
    updated in place: each fresh array of a million floats costs page faults, which on a
    busy machine cost more than the arithmetic.
    """
    g = np.asarray(groups, dtype=np.float32)
    if symmetric:
        magnitude = np.abs(g)
        if bits == 8:  # Q8_0: d = amax / 127, code = roundf(x / d)
            n, d = 127, np.max(magnitude, axis=-1) / np.float32(127)
        else:  # Q4_0: d = (the signed value of largest magnitude) / -n
            n = 2 ** (bits - 1)
            where_max = np.argmax(magnitude, axis=-1)[..., None]
            d = np.take_along_axis(g, where_max, axis=-1)[..., 0] / np.float32(-n)
        del magnitude
        d, inv = _safe_inverse(d)
        work = g * inv[..., None]  # x / d, in float32 like the C code
        if bits == 8:
            work = round_half_away(work)
            np.clip(work, -n, n, out=work)
        else:
            work += np.float32(n + 0.5)
            np.trunc(work, out=work)
            np.clip(work, 0, 2 * n - 1, out=work)  # only +n (opposite the extreme) clips
            work -= np.float32(n)
        codes = work.astype(np.int8)
        scales = store_scale(d, scale_dtype)
        work *= scales[..., None]  # the codes, still as floats, times the stored scale
        return GroupCodes(codes, scales, None, work)
    top = 2**bits - 1  # Q4_1: d = (max - min) / top, code = trunc((x - min) / d + 0.5)
    lo, hi = np.min(g, axis=-1), np.max(g, axis=-1)
    with np.errstate(over="ignore"):
        d = (hi - lo) / np.float32(top)  # float32 like llama.cpp; may overflow for ±1e38
    d = np.where(np.isfinite(d), d, ((hi.astype(np.float64) - lo) / top).astype(np.float32))
    d, inv = _safe_inverse(d)
    with np.errstate(over="ignore"):
        work = g - lo[..., None]
        work *= inv[..., None]
    work += np.float32(0.5)
    np.trunc(work, out=work)
    np.clip(work, 0, top, out=work)
    codes = work.astype(np.uint8)
    scales, offsets = store_scale(d, scale_dtype), store_scale(lo, scale_dtype)
    work *= scales[..., None]
    work += offsets[..., None]
    return GroupCodes(codes, scales, offsets, work)


def quantize_fp8_groups(groups: np.ndarray, scale_dtype: str = "fp32") -> GroupCodes:
    """FP8 E4M3 with one scale per group: ``s = amax / 448``, ``code = e4m3(x / s)``."""
    g = np.asarray(groups, dtype=np.float32)
    s, inv = _safe_inverse(np.max(np.abs(g), axis=-1) / np.float32(E4M3_MAX))
    codes = fp8_e4m3_encode(g * inv[..., None])
    scales = store_scale(s, scale_dtype)
    dequantized = fp8_e4m3_decode(codes)
    dequantized *= scales[..., None]
    return GroupCodes(codes, scales, None, dequantized)


# -- storage accounting ------------------------------------------------------------------


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    """A tensor seen as a matrix: rows = all leading axes, columns = the last axis."""
    if len(shape) == 0:
        return 1, 1
    return math.prod(shape[:-1]), shape[-1]


def group_grid(shape: tuple[int, ...], scheme: QuantScheme) -> tuple[int, int]:
    """Shape of the scale array for a tensor of this shape: (scale rows, scales per row)."""
    e = scheme.effective()
    rows, cols = _rows_cols(tuple(shape))
    if e.granularity == "per-tensor":
        return 1, 1
    if e.granularity == "per-channel":
        return rows, 1
    if e.granularity == "per-block":
        return rows, -(-cols // e.block_size)
    return 0, 0


@dataclass(frozen=True)
class StorageCost:
    """Exact bytes of a quantized tensor as a file would store it.

    Codes are packed densely (a 4-bit tensor of n weights takes ceil(n/2) bytes); every
    scale (and offset, if asymmetric) costs 2 bytes (fp16) or 4 (fp32).

    >>> c = storage_cost((4096, 4096), QuantScheme("int4", "per-block"))
    >>> c.code_bytes, c.scale_bytes, c.nbytes, c.bits_per_weight
    (8388608, 1048576, 9437184, 4.5)
    """

    n_values: int
    code_bits: int  # bits per code
    n_scales: int  # number of scales (0 without a scale)
    scale_bits: int  # bits per scale: 16, 32, or 0
    n_offsets: int  # number of offsets (asymmetric only)

    @property
    def code_bytes(self) -> int:
        return -(-self.n_values * self.code_bits // 8)

    @property
    def scale_bytes(self) -> int:
        return self.n_scales * self.scale_bits // 8

    @property
    def offset_bytes(self) -> int:
        return self.n_offsets * self.scale_bits // 8

    @property
    def nbytes(self) -> int:
        return self.code_bytes + self.scale_bytes + self.offset_bytes

    @property
    def bits_per_weight(self) -> float:
        """All bits (codes + scales + offsets) divided by the number of weights."""
        return self.nbytes * 8 / self.n_values if self.n_values else 0.0

    @property
    def overhead_bits_per_weight(self) -> float:
        """The part of :attr:`bits_per_weight` spent on scales and offsets."""
        if not self.n_values:
            return 0.0
        return (self.scale_bytes + self.offset_bytes) * 8 / self.n_values

    def explain(self) -> str:
        """One line that adds the bytes up, e.g. for 4.5 bits/weight."""
        text = f"{self.n_values:,} weights × {self.code_bits} bits = {self.code_bytes:,} B"
        if self.n_scales:
            kind = f"fp{self.scale_bits}"
            text += f" + {self.n_scales:,} {kind} scales = {self.scale_bytes:,} B"
        if self.n_offsets:
            text += f" + {self.n_offsets:,} {kind} offsets = {self.offset_bytes:,} B"
        return f"{text} → {self.nbytes:,} B = {self.bits_per_weight:.4g} bits/weight"


def storage_cost(shape: tuple[int, ...], scheme: QuantScheme | str) -> StorageCost:
    """Bytes of a tensor of ``shape`` in ``scheme`` — computed from the shape alone."""
    e = as_scheme(scheme).effective()
    n = math.prod(shape)
    gr, gc = group_grid(tuple(shape), e)
    n_scales = gr * gc
    scale_bits = SCALE_DTYPES[e.scale_dtype] if e.scale_dtype else 0
    n_offsets = n_scales if (e.spec.kind == "int" and not e.symmetric) else 0
    return StorageCost(n, e.bits, n_scales, scale_bits, n_offsets)


# -- quantize one tensor -----------------------------------------------------------------


def _to_groups(x2: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    """[R, C] -> [Gr, Gc, L], one group per scale (a view unless a block row is ragged)."""
    rows, cols = x2.shape
    if scheme.granularity == "per-tensor":
        return x2.reshape(1, 1, rows * cols)
    if scheme.granularity == "per-channel":
        return x2.reshape(rows, 1, cols)
    block = scheme.block_size
    n_blocks = -(-cols // block)
    pad = n_blocks * block - cols
    if pad:
        # Repeat the row's last value: it cannot change a block's max, min or extreme.
        x2 = np.pad(x2, ((0, 0), (0, pad)), mode="edge")
    return x2.reshape(rows, n_blocks, block)


def _from_groups(g: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`_to_groups`: [Gr, Gc, L] -> [R, C] (drops block padding)."""
    return g.reshape(rows, -1)[:, :cols]


@dataclass(frozen=True, eq=False)
class QuantResult:
    """A tensor quantized and decoded again, with everything a screen needs to show.

    ``codes`` has the input's shape, one code per weight, *unpacked* (int8 / uint8 / uint16 /
    uint32) so it can be shown; :attr:`storage` counts them packed. ``scales`` / ``offsets``
    have shape ``(Gr, Gc)`` — see :func:`group_grid` — and hold the values as stored
    (fp16-rounded for blocks), as float32. The weight at matrix position ``(r, c)`` uses
    ``scales[r, c // block]`` (per-block), ``scales[r, 0]`` (per-channel) or
    ``scales[0, 0]`` (per-tensor). Error metrics are computed on first use and cached.
    """

    scheme: QuantScheme  # the effective scheme (see QuantScheme.effective)
    original: np.ndarray  # float32, input shape
    codes: np.ndarray  # input shape
    scales: np.ndarray | None  # (Gr, Gc) float32, or None without a scale
    offsets: np.ndarray | None  # (Gr, Gc) float32, asymmetric integer formats only
    dequantized: np.ndarray  # float32, input shape: the values the model computes with
    storage: StorageCost

    @property
    def nbytes(self) -> int:
        return self.storage.nbytes

    @property
    def bits_per_weight(self) -> float:
        return self.storage.bits_per_weight

    @property
    def n_values(self) -> int:
        return self.original.size

    @property
    def levels(self) -> int:
        """How many distinct codes the format has: 2**bits (the most one group can use)."""
        return 2**self.scheme.bits

    @cached_property
    def error(self) -> np.ndarray:
        """dequantized - original (float32, the input's shape)."""
        return self.dequantized - self.original

    @cached_property
    def rmse(self) -> float:
        return root_mean_square(self.error)

    @cached_property
    def max_abs_error(self) -> float:
        e = self.error
        return float(max(e.max(), -e.min()))

    @cached_property
    def relative_rmse(self) -> float:
        """RMSE divided by the RMS of the original weights (0 for an all-zero tensor)."""
        rms = root_mean_square(self.original)
        return self.rmse / rms if rms else 0.0

    @cached_property
    def original_range(self) -> tuple[float, float]:
        return float(self.original.min()), float(self.original.max())

    @cached_property
    def dequantized_range(self) -> tuple[float, float]:
        return float(self.dequantized.min()), float(self.dequantized.max())

    @cached_property
    def unique_values(self) -> int:
        """Distinct float values in the dequantized tensor (a sort: ~15 ms per million)."""
        return count_distinct(self.dequantized)

    @cached_property
    def unique_original_values(self) -> int:
        return count_distinct(self.original)

    @cached_property
    def unique_codes(self) -> int:
        """Distinct codes used anywhere in the tensor (≤ :attr:`levels`; fast)."""
        c = self.codes.reshape(-1)
        if c.dtype.itemsize > 2:
            return count_distinct(c)
        as_index = c.view(np.uint8 if c.dtype.itemsize == 1 else np.uint16)
        return int(np.count_nonzero(np.bincount(as_index, minlength=1)))

    def unique_per_group(self) -> np.ndarray:
        """Distinct codes in each scale group, shape (Gr, Gc); each ≤ :attr:`levels`."""
        if self.scales is None:
            return np.array([[self.unique_codes]])
        rows, cols = _rows_cols(self.original.shape)
        groups = _to_groups(self.codes.reshape(rows, cols), self.scheme)
        s = np.sort(groups, axis=-1)
        return 1 + np.count_nonzero(np.diff(s, axis=-1), axis=-1)

    def group_index(self, index: tuple[int, ...] | int) -> tuple[int, int]:
        """Which scale ``(gr, gc)`` the weight at ``index`` uses."""
        if isinstance(index, (int, np.integer)):
            flat = int(index)
        else:
            flat = int(np.ravel_multi_index(tuple(index), self.original.shape))
        rows, cols = _rows_cols(self.original.shape)
        r, c = divmod(flat, cols)
        g = self.scheme.granularity
        if g == "per-tensor" or g == NO_SCALE:
            return 0, 0
        if g == "per-channel":
            return r, 0
        return r, c // self.scheme.block_size

    def grid(self, index: tuple[int, ...] | int = 0) -> np.ndarray | None:
        """Every value the group holding ``index`` can represent, sorted (float32).

        ``None`` for fp32/fp16/bf16, whose grids have tens of thousands of points.
        """
        fmt, bits = self.scheme.format, self.scheme.bits
        if fmt in ("fp32", "fp16", "bf16"):
            return None
        if fmt == "fp8":
            base = np.unique(E4M3_VALUES[~np.isnan(E4M3_VALUES)])
            if self.scales is None:
                return base
            return np.unique(base * self.scales[self.group_index(index)])
        gi = self.group_index(index)
        d = self.scales[gi]
        if self.offsets is not None:
            return np.unique(np.arange(2**bits, dtype=np.float32) * d + self.offsets[gi])
        lo, hi = (-127, 127) if bits == 8 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return np.unique(np.arange(lo, hi + 1, dtype=np.float32) * d)


def root_mean_square(a: np.ndarray) -> float:
    """sqrt(mean(a²)) of a float32 array: one BLAS dot product, with a rescaled float64
    fallback when the squares overflow (|a| > 1e19) or underflow (|a| < 1e-19)."""
    v = np.asarray(a, dtype=np.float32).reshape(-1)
    with np.errstate(over="ignore", under="ignore"):
        ss = float(np.dot(v, v))
    if math.isfinite(ss) and ss > 1e-30:
        return math.sqrt(ss / v.size)
    m = float(np.max(np.abs(v))) if v.size else 0.0
    if m == 0.0 or not math.isfinite(m):
        return m
    return m * math.sqrt(float(np.mean(np.square(v.astype(np.float64) / m))))


def count_distinct(a: np.ndarray) -> int:
    """Number of distinct values (NaNs count as one; 0.0 and -0.0 as one), by sorting.

    numpy's ``np.unique`` is the obvious call, but on a million integers it takes over a
    second in numpy 2.4; a sort and a comparison of neighbours take ~15 ms.

    >>> count_distinct(np.array([3.0, -0.0, 0.0, np.nan, 3.0, np.nan]))
    3
    """
    s = np.sort(np.asarray(a).reshape(-1))
    if s.size == 0:
        return 0
    if s.dtype.kind == "f":
        nan = np.isnan(s)
        n_nan = int(nan.any())
        s = s[~nan] if n_nan else s
        if s.size == 0:
            return n_nan
        return 1 + int(np.count_nonzero(s[1:] != s[:-1])) + n_nan
    return 1 + int(np.count_nonzero(s[1:] != s[:-1]))


def quantize(x: np.ndarray, scheme: QuantScheme | str = "Q8_0") -> QuantResult:
    """Quantize ``x`` to ``scheme`` and decode it back; see the module docstring for the rules.

    ``x`` is any non-empty float array; it is seen as a matrix ``[prod(shape[:-1]),
    shape[-1]]`` (HF ``[out, in]`` for a weight), so channels are rows and blocks run along
    the last axis. Integer and fp8 formats need finite input (``ValueError`` otherwise);
    fp16 / bf16 pass inf and NaN through as the casts do.
    """
    e = as_scheme(scheme).effective()
    original = np.asarray(x, dtype=np.float32)
    if original.size == 0:
        raise ValueError("cannot quantize an empty array")
    shape = original.shape
    storage = storage_cost(shape, e)
    if e.format == "fp32":
        return QuantResult(e, original, original.view(np.uint32), None, None, original, storage)
    if e.format in ("fp16", "bf16"):
        encode, decode = (
            (fp16_encode, fp16_decode) if e.format == "fp16" else (bf16_encode, bf16_decode)
        )
        codes = encode(original)
        return QuantResult(e, original, codes, None, None, decode(codes), storage)
    if not np.isfinite(original).all():
        raise ValueError(f"{e.spec.label} quantization needs finite values (found NaN or inf)")
    if e.granularity == NO_SCALE:  # fp8 as a plain cast
        codes = fp8_e4m3_encode(original)
        return QuantResult(e, original, codes, None, None, fp8_e4m3_decode(codes), storage)
    rows, cols = _rows_cols(shape)
    groups = _to_groups(original.reshape(rows, cols), e)
    if e.format == "fp8":
        q = quantize_fp8_groups(groups, e.scale_dtype)
    else:
        q = quantize_int_groups(groups, e.bits, e.symmetric, e.scale_dtype)
    codes = _from_groups(q.codes, rows, cols).reshape(shape)
    dequantized = _from_groups(q.dequantized, rows, cols).reshape(shape)
    return QuantResult(e, original, codes, q.scales, q.offsets, dequantized, storage)


# -- the whole model ---------------------------------------------------------------------


def is_quantized_tensor(name: str, shape: tuple[int, ...]) -> bool:
    """Which tensors a whole-model quantization touches: every 2-D matrix (embedding /
    tied output head, q/k/v/o, gate/up/down). 1-D RMSNorm gains stay float32."""
    return len(shape) == 2


@dataclass(frozen=True)
class TensorReport:
    """One tensor of a quantized model: its cost and its error."""

    name: str
    shape: tuple[int, ...]
    quantized: bool  # False: kept in float32 (norm gains)
    nbytes: int  # as stored in this scheme
    fp32_nbytes: int
    bits_per_weight: float
    rmse: float
    max_abs_error: float


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """A model whose weights were quantized and decoded back to float32 ("simulated").

    ``model`` is an ordinary :class:`Model` to run with ``forward``; its arithmetic is
    float32. ``nbytes`` is what the weights would take on disk in this scheme (codes +
    scales + the float32 norms), the tied embedding counted once.
    """

    scheme: QuantScheme
    model: Model
    tensors: tuple[TensorReport, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def fp32_nbytes(self) -> int:
        return sum(t.fp32_nbytes for t in self.tensors)

    @property
    def n_params(self) -> int:
        return self.fp32_nbytes // 4

    @property
    def bits_per_weight(self) -> float:
        return self.nbytes * 8 / self.n_params

    @property
    def compression(self) -> float:
        """How many times smaller than float32."""
        return self.fp32_nbytes / self.nbytes


@dataclass(frozen=True, eq=False)
class QuantProgress:
    """One step of :func:`iter_quantize_model`. The last event carries ``result``."""

    done: int  # tensors finished
    total: int  # tensors in the model
    name: str | None  # the tensor just finished (None on the final event)
    report: TensorReport | None
    result: QuantizedModel | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def iter_quantize_model(model: Model, scheme: QuantScheme | str) -> Iterator[QuantProgress]:
    """Quantize every matrix of ``model``, yielding progress after each tensor.

    Loop over it in a worker; stopping the loop early abandons the work. The last event
    (``done == total``, ``name is None``) carries the :class:`QuantizedModel`.
    """
    e = as_scheme(scheme).effective()
    tensors = model.tensors()
    total = len(tensors)
    replacements: dict[str, np.ndarray] = {}
    reports: list[TensorReport] = []
    for i, (name, array) in enumerate(tensors.items()):
        if is_quantized_tensor(name, array.shape):
            r = quantize(array, e)
            replacements[name] = r.dequantized
            report = TensorReport(
                name, array.shape, True, r.nbytes, array.size * 4, r.bits_per_weight,
                r.rmse, r.max_abs_error,
            )  # fmt: skip
        else:
            report = TensorReport(
                name, array.shape, False, array.size * 4, array.size * 4, 32.0, 0.0, 0.0
            )
        reports.append(report)
        yield QuantProgress(i + 1, total, name, report)
    quantized = model.with_tensors(replacements, name=f"{model.name} [{e.label}]")
    yield QuantProgress(total, total, None, None, QuantizedModel(e, quantized, tuple(reports)))


def quantize_model(
    model: Model,
    scheme: QuantScheme | str,
    progress: Callable[[QuantProgress], None] | None = None,
) -> QuantizedModel:
    """:func:`iter_quantize_model` run to the end, calling ``progress`` on each event."""
    result = None
    for event in iter_quantize_model(model, scheme):
        if progress is not None:
            progress(event)
        result = event.result
    assert result is not None
    return result


def model_nbytes(config: LlamaConfig, scheme: QuantScheme | str) -> int:
    """Bytes of a model with this config in ``scheme``, from its tensor shapes alone
    (matrices in the scheme, norm gains in float32) — the same rule as :func:`quantize_model`."""
    total = 0
    for name, shape in expected_shapes(config).items():
        if is_quantized_tensor(name, shape):
            total += storage_cost(shape, scheme).nbytes
        else:
            total += math.prod(shape) * 4
    return total


# -- how big is an 8B model? -------------------------------------------------------------

EIGHT_BILLION = 8_000_000_000
GB = 1_000_000_000
"""Decimal gigabyte (10**9 bytes), as disk and model-card sizes are quoted (not GiB)."""

LLAMA_3_8B = LlamaConfig(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    rope_theta=500000.0,
    tie_word_embeddings=False,
)
"""Meta's Llama-3-8B architecture (config.json): 8,030,261,248 parameters."""


@dataclass(frozen=True)
class SizeRow:
    """One format's size for a model of ``n_params`` weights (decimal bytes)."""

    format: str
    label: str
    bits: int
    n_params: int
    nbytes: int  # n_params × bits / 8: the codes alone, before any scale
    block_scheme: QuantScheme | None  # the per-block-32 scheme (None: no scales needed)
    nbytes_with_scales: int  # with one fp16 scale per block of 32 (Q8_0 / Q4_0 style)
    llama3_8b_nbytes: int  # Llama-3-8B's real shapes in the block scheme, norms float32

    @property
    def bits_per_weight_with_scales(self) -> float:
        return self.nbytes_with_scales * 8 / self.n_params

    @property
    def gb(self) -> float:
        return self.nbytes / GB

    @property
    def gb_with_scales(self) -> float:
        return self.nbytes_with_scales / GB

    @property
    def llama3_8b_gb(self) -> float:
        return self.llama3_8b_nbytes / GB


def size_table(n_params: int = EIGHT_BILLION) -> list[SizeRow]:
    """The size of an ``n_params`` model in every format (GB = 10**9 bytes).

    Before scale overhead the size is simply ``n_params × bits / 8``: for 8e9 weights FP32
    32 GB, FP16 16 GB, INT8 8 GB, INT4 4 GB. With one fp16 scale per block of 32 weights
    each weight also carries 16/32 = 0.5 bits: INT8 becomes 8.5 bits (Q8_0, 8.5 GB), INT4
    4.5 bits (Q4_0, 4.5 GB). fp32/fp16/bf16 need no scale. The last column applies the
    same block scheme to Llama-3-8B's actual tensors (8.03e9 weights, norms kept float32).

    >>> [(r.label, r.gb, r.gb_with_scales) for r in size_table() if r.format in ("fp32", "int4")]
    [('FP32', 32.0, 32.0), ('INT4', 4.0, 4.5)]
    """
    rows = []
    for name, spec in FORMATS.items():
        plain = n_params * spec.bits // 8
        if spec.kind == "int" or name == "fp8":
            block = QuantScheme(name, "per-block")
            with_scales = storage_cost((n_params,), block).nbytes
        else:
            block = None
            with_scales = plain
        llama3 = model_nbytes(LLAMA_3_8B, block or QuantScheme(name))
        rows.append(
            SizeRow(name, spec.label, spec.bits, n_params, plain, block, with_scales, llama3)
        )
    return rows


def gigabytes(nbytes: int) -> float:
    """Bytes in decimal GB (10**9)."""
    return nbytes / GB
