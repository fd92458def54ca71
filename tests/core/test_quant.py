"""Quantization formats, granularities and storage, each checked against an independent
reference: a brute-force enumeration of FP8, a bit-level bfloat16 rounder written per
element in pure Python, numpy's own float16 cast, and per-block loops that follow
llama.cpp's reference C code line by line."""

from __future__ import annotations

import doctest
import math
import struct
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llm_anatomy_tui.core import quant
from llm_anatomy_tui.core.model import default_model_dir, forward, load_model
from llm_anatomy_tui.core.quant import (
    E4M3_MAX,
    EIGHT_BILLION,
    FORMAT_NAMES,
    GRANULARITIES,
    LLAMA_3_8B,
    QuantScheme,
    as_scheme,
    bf16_decode,
    bf16_encode,
    fp8_e4m3_decode,
    fp8_e4m3_encode,
    iter_quantize_model,
    model_nbytes,
    quantize,
    quantize_model,
    size_table,
    storage_cost,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT_FORMATS = ("int8", "int4", "int3", "int2")


def test_module_doctests():
    assert doctest.testmod(quant).failed == 0


# -- FP8 E4M3 against a brute-force enumeration of all 256 codes -------------------------


def e4m3_value_bruteforce(code: int) -> float:
    """Decode one E4M3 code from its bits (OCP FP8 E4M3: bias 7, S.1111.111 = NaN, no inf)."""
    sign = -1.0 if code & 0x80 else 1.0
    exp, man = (code >> 3) & 0xF, code & 0x7
    if exp == 0xF and man == 0x7:
        return math.nan
    if exp == 0:
        return sign * man * 2.0**-9
    return sign * (1 + man / 8) * 2.0 ** (exp - 7)


ALL_CODES = [e4m3_value_bruteforce(c) for c in range(256)]


def e4m3_encode_bruteforce(x: float) -> int:
    """Nearest finite code of x's sign; ties to the even code; saturate beyond 448."""
    if math.isnan(x):
        return 0xFF if math.copysign(1, x) < 0 else 0x7F
    negative = math.copysign(1, x) < 0
    candidates = range(0x80, 0xFF) if negative else range(0x00, 0x7F)  # NaN codes left out
    a = min(abs(x), 448.0)
    best = min(candidates, key=lambda c: (abs(abs(ALL_CODES[c]) - a), c & 1))
    return best


def test_e4m3_table_matches_bit_enumeration():
    got = fp8_e4m3_decode(np.arange(256, dtype=np.uint8))
    want = np.array(ALL_CODES, dtype=np.float32)
    assert np.array_equal(got, want, equal_nan=True)
    finite = want[~np.isnan(want)]
    assert finite.size == 254 and finite.max() == E4M3_MAX == 448.0
    assert np.min(finite[finite > 0]) == 2.0**-9  # smallest subnormal
    assert np.isnan(want[[0x7F, 0xFF]]).all()


def test_e4m3_encode_matches_bruteforce_on_every_value_and_midpoint():
    finite = sorted({abs(v) for v in ALL_CODES if not math.isnan(v)})
    mids = [(a + b) / 2 for a, b in zip(finite, finite[1:], strict=False)]
    nudged = [m * (1 + s * 2.0**-20) for m in mids for s in (-1, 1)]
    specials = [0.0, 447.9, 448.0, 460.0, 464.0, 480.0, 1e6, math.inf, 2.0**-10, 2.0**-11]
    xs = finite + mids + nudged + specials
    xs = np.array(xs + [-v for v in xs], dtype=np.float32)
    want = [e4m3_encode_bruteforce(float(v)) for v in xs]
    assert fp8_e4m3_encode(xs).tolist() == want


def test_e4m3_round_trips_every_finite_code_and_handles_nan():
    codes = np.array([c for c in range(256) if c not in (0x7F, 0xFF)], dtype=np.uint8)
    assert fp8_e4m3_encode(fp8_e4m3_decode(codes)).tolist() == codes.tolist()
    nan = fp8_e4m3_encode(np.array([np.nan, -np.nan, np.inf, -np.inf], dtype=np.float32))
    assert nan.tolist() == [0x7F, 0xFF, 0x7E, 0xFE]  # NaN stays NaN; inf saturates


@SETTINGS
@given(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(-600, 600, width=32)))
def test_e4m3_encode_matches_bruteforce_on_random_values(x):
    assert fp8_e4m3_encode(x).tolist() == [e4m3_encode_bruteforce(float(v)) for v in x]


def test_e4m3_agrees_with_ml_dtypes_if_installed():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(0).normal(0, 30, 20000).astype(np.float32)
    x = np.clip(x, -448, 448)  # ml_dtypes' cast does not saturate; compare in range
    assert np.array_equal(fp8_e4m3_encode(x), x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8))


# -- FP16 and BF16 round trips -----------------------------------------------------------

any_float32 = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=16),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
)


@SETTINGS
@given(any_float32)
def test_fp16_round_trip_equals_numpy_cast(x):
    got = quantize(x, "FP16").dequantized
    with np.errstate(over="ignore"):  # beyond 65,504 numpy's cast gives inf, as we do
        want = x.astype(np.float16).astype(np.float32)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def bf16_reference(value: float) -> int:
    """bfloat16 bits of one float32, round to nearest even, by explicit cases on the bits."""
    (u,) = struct.unpack("<I", struct.pack("<f", value))
    if (u & 0x7FFFFFFF) > 0x7F800000:  # NaN: keep sign and payload top, force quiet bit
        return (u >> 16) | 0x0040
    upper, lower = u >> 16, u & 0xFFFF
    if lower > 0x8000 or (lower == 0x8000 and upper & 1):
        upper += 1  # a carry into the exponent is right (up to the next power / to inf)
    return upper


def f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


BF16_CASES = {
    "one": (0x3F800000, 0x3F80),
    "tie, even stays": (0x3F808000, 0x3F80),
    "tie, odd rounds up": (0x3F818000, 0x3F82),
    "just above tie": (0x3F808001, 0x3F81),
    "just below tie": (0x3F807FFF, 0x3F80),
    "float32 max -> inf": (0x7F7FFFFF, 0x7F80),
    "largest bf16 stays": (0x7F7F0000, 0x7F7F),
    "below bf16 max tie rounds to even (inf)": (0x7F7F8000, 0x7F80),
    "smallest subnormal -> 0": (0x00000001, 0x0000),
    "subnormal tie even": (0x00008000, 0x0000),
    "subnormal tie odd": (0x00018000, 0x0002),
    "negative zero": (0x80000000, 0x8000),
    "+inf": (0x7F800000, 0x7F80),
    "-inf": (0xFF800000, 0xFF80),
    "quiet NaN": (0x7FC00000, 0x7FC0),
    "signalling NaN stays NaN": (0x7F800001, 0x7FC0),
    "negative NaN": (0xFFC00000, 0xFFC0),
    "carry into exponent": (0x3FFFFFFF, 0x4000),
}


@pytest.mark.parametrize("case", list(BF16_CASES))
def test_bf16_hand_picked_values(case):
    bits, want = BF16_CASES[case]
    x = np.array([bits], dtype=np.uint32).view(np.float32)
    assert bf16_reference(f32(bits)) == want or math.isnan(f32(bits))
    assert int(bf16_encode(x)[0]) == want


@SETTINGS
@given(hnp.arrays(np.uint32, st.integers(1, 200)))
def test_bf16_matches_bit_level_reference_on_random_bit_patterns(bits):
    x = bits.view(np.float32)
    want = [bf16_reference_bits(int(b)) for b in bits]
    assert bf16_encode(x).tolist() == want
    decoded = bf16_decode(bf16_encode(x))
    assert np.array_equal(quantize(x, "BF16").dequantized, decoded, equal_nan=True)


def bf16_reference_bits(u: int) -> int:
    """:func:`bf16_reference` on raw bits (struct would quieten signalling NaNs on the way)."""
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return (u >> 16) | 0x0040
    upper, lower = u >> 16, u & 0xFFFF
    if lower > 0x8000 or (lower == 0x8000 and upper & 1):
        upper += 1
    return upper


def test_bf16_agrees_with_ml_dtypes_if_installed():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(1).normal(0, 1e3, 20000).astype(np.float32)
    assert np.array_equal(bf16_encode(x), x.astype(ml_dtypes.bfloat16).view(np.uint16))


# -- integer rules: per-element bound, per-block scales against loops ---------------------

matrices = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=70),
    elements=st.one_of(
        st.just(0.0),
        st.floats(-1.0, 1.0, width=32),
        st.floats(-(2.0**100), 2.0**100, width=32),
        st.floats(-(2.0**-100), 2.0**-100, width=32),
    ),
)


@SETTINGS
@given(matrices)
def test_int8_per_channel_symmetric_error_at_most_half_a_step(x):
    r = quantize(x, QuantScheme("int8", "per-channel"))
    assert r.scales.shape == (x.shape[0], 1) and r.scheme.scale_dtype == "fp32"
    step = np.abs(r.scales)  # [R, 1]: one scale per output channel (row)
    # x / d is computed as x * (1/d) in float32 (as llama.cpp does): allow its rounding.
    slack = 4 * np.finfo(np.float32).eps * np.abs(x.astype(np.float64))
    tiny_rows = np.where(step == 0, np.abs(x.astype(np.float64)), 0.0)
    assert np.all(np.abs(r.error) <= step / 2 + slack + tiny_rows)
    assert np.all(np.abs(r.codes) <= 127)
    # A scale is 0 only for all-zero rows, or rows so tiny (< 127 × float32's smallest
    # normal, ~1.5e-36) that 1/d would overflow: those decode to 0 (documented).
    zero_rows = r.scales[:, 0] == 0
    assert np.all(np.abs(x[zero_rows]) < 127 * np.finfo(np.float32).tiny)


def roundf(v: np.float32) -> float:
    """C roundf on one value."""
    return math.copysign(math.floor(abs(float(v)) + 0.5), float(v))


def q8_0_loop(row: np.ndarray) -> tuple[list[float], list[int]]:
    """quantize_row_q8_0_ref, one block at a time (float32 arithmetic like the C code)."""
    scales, codes = [], []
    for start in range(0, row.size, 32):
        block = row[start : start + 32]
        amax = np.float32(0)
        for v in block:
            amax = max(amax, abs(v))
        d = np.float32(amax / np.float32(127))
        inv = np.float32(1) / d if d else np.float32(0)
        scales.append(float(np.float16(d)))
        codes += [int(roundf(np.float32(v * inv))) for v in block]
    return scales, codes


def q4_0_loop(row: np.ndarray, bits: int = 4) -> tuple[list[float], list[int]]:
    """quantize_row_q4_0_ref generalised to ``bits`` (n = 2**(bits-1) instead of 8)."""
    n = 2 ** (bits - 1)
    scales, codes = [], []
    for start in range(0, row.size, 32):
        block = row[start : start + 32]
        amax, vmax = np.float32(0), np.float32(0)
        for v in block:
            if amax < abs(v):
                amax, vmax = abs(v), v
        d = np.float32(vmax / np.float32(-n))
        inv = np.float32(1) / d if d else np.float32(0)
        scales.append(float(np.float16(d)))
        codes += [min(2 * n - 1, int(np.float32(v * inv) + np.float32(n + 0.5))) - n for v in block]
    return scales, codes


def q4_1_loop(row: np.ndarray) -> tuple[list[float], list[float], list[int]]:
    """quantize_row_q4_1_ref, one block at a time."""
    scales, mins, codes = [], [], []
    for start in range(0, row.size, 32):
        block = row[start : start + 32]
        lo, hi = block.min(), block.max()
        d = np.float32((hi - lo) / np.float32(15))
        inv = np.float32(1) / d if d else np.float32(0)
        scales.append(float(np.float16(d)))
        mins.append(float(np.float16(lo)))
        codes += [min(15, int(np.float32((v - lo) * inv) + np.float32(0.5))) for v in block]
    return scales, mins, codes


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    rng = np.random.default_rng(7)
    w = rng.normal(0, 0.05, size=(6, 96)).astype(np.float32)
    w[1] *= 40  # rows of different magnitude, so blocks need different scales
    w[2, 5] = 3.0  # one outlier in block 0 of row 2
    w[3, 40:] = 0.0  # an all-zero block
    w[4, :32] = 0.25  # a constant block
    return w


def test_q8_0_scales_and_codes_are_computed_per_block(weights):
    r = quantize(weights, "Q8_0")
    assert r.scales.shape == (6, 3)
    for i, row in enumerate(weights):
        scales, codes = q8_0_loop(row)
        assert r.scales[i].tolist() == scales
        assert r.codes[i].tolist() == codes
    assert np.array_equal(r.dequantized, r.codes * np.repeat(r.scales, 32, axis=1))


@pytest.mark.parametrize("bits", [4, 3, 2])
def test_q4_0_rule_scales_and_codes_are_computed_per_block(weights, bits):
    r = quantize(weights, QuantScheme(f"int{bits}", "per-block"))
    for i, row in enumerate(weights):
        scales, codes = q4_0_loop(row, bits)
        assert r.scales[i].tolist() == scales
        assert r.codes[i].tolist() == codes
    n = 2 ** (bits - 1)
    assert r.codes.min() >= -n and r.codes.max() <= n - 1


def test_q4_1_scales_offsets_and_codes_are_computed_per_block(weights):
    r = quantize(weights, "Q4_1")
    for i, row in enumerate(weights):
        scales, mins, codes = q4_1_loop(row)
        assert r.scales[i].tolist() == scales
        assert r.offsets[i].tolist() == mins
        assert r.codes[i].tolist() == codes
    dequant = r.codes * np.repeat(r.scales, 32, axis=1) + np.repeat(r.offsets, 32, axis=1)
    assert np.array_equal(r.dequantized, dequant.astype(np.float32))


def test_largest_weight_of_a_q4_0_block_is_stored_exactly_on_code_minus_8():
    block = np.linspace(-0.3, 0.5, 32, dtype=np.float32)  # largest magnitude: +0.5
    r = quantize(block[None, :], "Q4_0")
    assert r.codes[0, -1] == -8 and r.scales[0, 0] < 0  # d = 0.5 / -8: negative
    assert r.dequantized[0, -1] == np.float16(0.5 / -8) * -8


def test_a_ragged_last_block_gets_its_own_scale():
    x = np.random.default_rng(3).normal(size=(2, 40)).astype(np.float32)
    x[:, 32:] *= 100
    r = quantize(x, "Q8_0")
    assert r.scales.shape == (2, 2)
    for i in range(2):
        assert r.scales[i, 1] == np.float16(np.abs(x[i, 32:]).max() / np.float32(127))
    assert r.storage.n_scales == 4 and r.storage.code_bytes == 80


def test_matches_gguf_reference_quantizers_if_installed(weights):
    gguf = pytest.importorskip("gguf")
    from gguf.quants import dequantize as gguf_dequantize
    from gguf.quants import quantize as gguf_quantize

    for name in ("Q8_0", "Q4_0", "Q4_1"):
        qtype = getattr(gguf.GGMLQuantizationType, name)
        blob = gguf_quantize(weights, qtype)
        assert blob.nbytes == quantize(weights, name).nbytes  # same bytes on disk
        want = gguf_dequantize(blob, qtype)
        assert np.array_equal(quantize(weights, name).dequantized, want), name


# -- robustness and invariants over random tensors ---------------------------------------

schemes = st.builds(
    QuantScheme,
    format=st.sampled_from([f for f in FORMAT_NAMES if f != "fp16"]),
    granularity=st.sampled_from(GRANULARITIES),
    symmetric=st.booleans(),
    block_size=st.sampled_from([32, 8, 5]),
)

tensors = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40),
    elements=st.one_of(
        st.floats(-1.0, 1.0, width=32),
        st.floats(-(2.0**100), 2.0**100, width=32),
        st.floats(-(2.0**-100), 2.0**-100, width=32),
        st.just(0.0),
    ),
)


@SETTINGS
@given(tensors, schemes)
def test_no_nan_and_codes_within_range(x, scheme):
    r = quantize(x, scheme)
    assert r.dequantized.shape == x.shape and r.codes.shape == x.shape
    assert np.isfinite(r.dequantized).all()
    assert np.isfinite(r.rmse) and np.isfinite(r.max_abs_error)
    if r.scales is not None:
        assert np.isfinite(r.scales).all()
    assert r.unique_codes <= r.levels


@SETTINGS
@given(tensors, st.sampled_from(["fp8", *INT_FORMATS]), st.booleans())
def test_unique_values_never_exceed_two_to_the_bits(x, fmt, symmetric):
    per_tensor = quantize(x, QuantScheme(fmt, "per-tensor", symmetric))
    assert per_tensor.unique_values <= 2**per_tensor.scheme.bits
    for g in ("per-channel", "per-block"):
        r = quantize(x, QuantScheme(fmt, g, symmetric))
        assert r.unique_per_group().max() <= 2**r.scheme.bits


@SETTINGS
@given(tensors)
def test_constant_and_zero_tensors_are_exact_with_asymmetric_int(x):
    c = np.full_like(x, x.flat[0])
    r = quantize(c, QuantScheme("int4", "per-tensor", symmetric=False))  # fp32 offset
    assert np.array_equal(r.dequantized, c)
    z = quantize(np.zeros_like(x), "Q4_0")
    assert not z.dequantized.any() and z.rmse == 0.0


def test_asymmetric_beats_symmetric_on_all_positive_weights():
    x = np.random.default_rng(0).uniform(0.0, 1.0, size=(64, 256)).astype(np.float32)
    for fmt in INT_FORMATS:
        for g in GRANULARITIES:
            sym = quantize(x, QuantScheme(fmt, g, symmetric=True))
            asym = quantize(x, QuantScheme(fmt, g, symmetric=False))
            # the symmetric grid spends about half its levels on negatives nobody uses
            assert asym.rmse < 0.75 * sym.rmse, (fmt, g, asym.rmse, sym.rmse)
            assert asym.unique_codes > sym.unique_codes


def test_finer_granularity_and_more_bits_reduce_error():
    w = np.random.default_rng(0).standard_t(3, size=(64, 256)).astype(np.float32)
    w *= np.exp(np.random.default_rng(1).normal(0, 1, size=(64, 1))).astype(np.float32)
    for fmt in INT_FORMATS:
        errors = [quantize(w, QuantScheme(fmt, g)).rmse for g in GRANULARITIES]
        assert errors[0] > errors[1] > errors[2], fmt
    by_bits = [quantize(w, QuantScheme(f, "per-block")).rmse for f in INT_FORMATS]
    assert by_bits == sorted(by_bits)


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="empty"):
        quantize(np.zeros((0, 4)), "Q8_0")
    with pytest.raises(ValueError, match="finite"):
        quantize(np.array([1.0, np.nan]), "Q4_0")
    with pytest.raises(ValueError, match="unknown format"):
        QuantScheme("int5")
    with pytest.raises(ValueError, match="granularity"):
        QuantScheme("int8", "per-row")
    with pytest.raises(ValueError, match="needs a scale"):
        QuantScheme("int8", "none")
    with pytest.raises(ValueError, match="unknown scheme"):
        as_scheme("Q5_K")


def test_effective_scheme_drops_meaningless_options():
    assert QuantScheme("fp16", "per-channel", False).effective() == QuantScheme("fp16", "none")
    assert QuantScheme("fp8", "per-block", False).effective().symmetric
    assert QuantScheme("int4", "per-block").effective().scale_dtype == "fp16"
    assert QuantScheme("int4", "per-channel").effective().scale_dtype == "fp32"
    assert as_scheme("q4_1") == QuantScheme("int4", "per-block", symmetric=False)
    assert [as_scheme(n).llama_cpp_name for n in ("Q8_0", "Q4_0", "Q4_1")] == [
        "Q8_0",
        "Q4_0",
        "Q4_1",
    ]
    assert QuantScheme("int4", "per-block", scale_dtype="fp32").llama_cpp_name is None


def test_grid_holds_every_dequantized_value_of_its_group():
    x = np.random.default_rng(5).normal(size=(4, 64)).astype(np.float32)
    for scheme in ("Q4_0", "Q4_1", QuantScheme("int3", "per-channel"), "FP8"):
        r = quantize(x, scheme)
        grid = r.grid((2, 40))
        assert grid.size <= r.levels
        row_part = (
            r.dequantized[2, 32:64] if r.scheme.granularity == "per-block" else r.dequantized[2]
        )
        assert np.isin(row_part, grid).all()
    assert quantize(x, "FP16").grid() is None
    assert quantize(x, "Q4_0").group_index((3, 33)) == (3, 1)


# -- storage accounting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "bits_per_weight"),
    [
        ("Q8_0", 8.5),  # 32 × 8 + 16 bits per block
        ("Q4_0", 4.5),  # 32 × 4 + 16
        ("Q4_1", 5.0),  # 32 × 4 + 16 + 16
        (QuantScheme("int3", "per-block"), 3.5),
        (QuantScheme("int2", "per-block"), 2.5),
        (QuantScheme("int4", "per-channel"), 4 + 32 / 4096),  # one fp32 scale per row
        (QuantScheme("int8", "per-tensor"), 8 + 32 / (4096 * 4096)),
        ("FP16", 16.0),
        ("BF16", 16.0),
        ("FP32", 32.0),
        ("FP8", 8 + 32 / (4096 * 4096)),
    ],
)
def test_bits_per_weight_include_scale_overhead(scheme, bits_per_weight):
    assert storage_cost((4096, 4096), scheme).bits_per_weight == pytest.approx(bits_per_weight)


def test_storage_counts_packed_codes_and_scales_exactly():
    c = storage_cost((3, 40), QuantScheme("int3", "per-block"))
    assert c.n_values == 120 and c.code_bytes == 45  # 360 bits
    assert c.n_scales == 6 and c.scale_bytes == 12  # 2 blocks per row (32 + 8), fp16
    assert c.nbytes == 57 and "57 B" in c.explain()
    q41 = storage_cost((1, 64), "Q4_1")
    assert (q41.code_bytes, q41.scale_bytes, q41.offset_bytes, q41.nbytes) == (32, 4, 4, 40)
    assert "4.5 bits/weight" in storage_cost((8, 64), "Q4_0").explain()
    x = np.ones((3, 40), dtype=np.float32)
    assert quantize(x, QuantScheme("int3", "per-block")).nbytes == 57


# -- an 8B model -------------------------------------------------------------------------


def test_8b_sizes_before_scale_overhead():
    rows = {r.format: r for r in size_table()}
    assert rows["fp32"].nbytes == 32 * 10**9 and rows["fp32"].gb == 32.0
    assert rows["fp16"].nbytes == 16 * 10**9 and rows["bf16"].gb == 16.0
    assert rows["int8"].nbytes == 8 * 10**9 and rows["fp8"].gb == 8.0
    assert rows["int4"].nbytes == 4 * 10**9 and rows["int4"].gb == 4.0
    assert rows["int3"].gb == 3.0 and rows["int2"].gb == 2.0
    assert all(r.n_params == EIGHT_BILLION for r in rows.values())


def test_8b_sizes_with_block_scales():
    rows = {r.format: r for r in size_table()}
    assert rows["int8"].gb_with_scales == 8.5  # Q8_0
    assert rows["int4"].gb_with_scales == 4.5  # Q4_0
    assert rows["int4"].bits_per_weight_with_scales == 4.5
    assert rows["fp16"].gb_with_scales == 16.0  # no scales needed
    # Llama-3-8B's real tensors: 8.03e9 weights; norms (0.27 M) stay fp32.
    assert LLAMA_3_8B.parameter_count() == 8_030_261_248
    assert rows["fp32"].llama3_8b_nbytes == 4 * 8_030_261_248
    assert rows["int4"].llama3_8b_gb == pytest.approx(8.03e9 * 4.5 / 8 / 1e9, rel=1e-3)


# -- the whole model ---------------------------------------------------------------------


def test_quantize_model_reports_progress_per_tensor_and_keeps_norms(tiny_model):
    events = list(iter_quantize_model(tiny_model, "Q4_0"))
    names = list(tiny_model.tensors())
    assert [e.name for e in events[:-1]] == names
    assert [e.done for e in events] == [*range(1, len(names) + 1), len(names)]
    final = events[-1].result
    assert final is not None and events[-1].fraction == 1.0
    new = final.model.tensors()
    for name, old in tiny_model.tensors().items():
        report = next(t for t in final.tensors if t.name == name)
        if old.ndim == 1:
            assert not report.quantized and np.array_equal(new[name], old)
        else:
            assert report.quantized and report.bits_per_weight == 4.5
            assert np.array_equal(new[name], quantize(old, "Q4_0").dequantized)
    assert final.nbytes == model_nbytes(tiny_model.config, "Q4_0")
    assert final.fp32_nbytes == tiny_model.nbytes  # tied embedding counted once
    assert final.compression == pytest.approx(final.fp32_nbytes / final.nbytes)


def test_quantize_model_callback_and_fp32_identity(tiny_model):
    seen = []
    same = quantize_model(tiny_model, "FP32", progress=seen.append)
    assert len(seen) == len(tiny_model.tensors()) + 1
    tokens = [1, 2, 3, 4, 5]
    assert np.array_equal(forward(same.model, tokens), forward(tiny_model, tokens))
    assert same.nbytes == tiny_model.nbytes


def test_more_bits_move_the_logits_less(tiny_model):
    tokens = list(range(100, 140))
    ref = forward(tiny_model, tokens)
    drift = []
    for scheme in ("FP16", "Q8_0", "Q4_0", QuantScheme("int2", "per-block")):
        q = quantize_model(tiny_model, scheme)
        drift.append(float(np.abs(forward(q.model, tokens) - ref).max()))
    assert drift == sorted(drift) and drift[0] < 1e-2


def test_per_matrix_round_trip_of_a_realistic_embedding_is_well_under_50_ms():
    """Not a timing assertion (benchmarks/ measures that): the largest matrix of the default
    model (8,193 × 128) quantizes in every format without error."""
    w = np.random.default_rng(0).normal(0, 0.02, size=(8193, 128)).astype(np.float32)
    for fmt in FORMAT_NAMES:
        assert quantize(w, QuantScheme(fmt, "per-block")).dequantized.shape == w.shape


# -- the trained model (skipped until assets/models/anatomy-mini exists) -----------------

needs_trained_model = pytest.mark.skipif(
    not (default_model_dir() / "model.safetensors").exists(),
    reason="the trained model anatomy-mini is not in assets/models/ yet (issue 6)",
)


@pytest.fixture(scope="module")
def trained_eval():
    from llm_anatomy_tui.core.evaluate import eval_tokens

    return load_model(default_model_dir()), eval_tokens(max_tokens=2048)


@needs_trained_model
def test_q8_0_keeps_top1_agreement_of_at_least_95_percent(trained_eval):
    from llm_anatomy_tui.core.evaluate import compare_models

    model, tokens = trained_eval
    result = compare_models(model, quantize_model(model, "Q8_0").model, tokens)
    assert result.top1_agreement >= 0.95
    assert result.kl_mean < 0.01


@needs_trained_model
def test_int4_int3_int2_degrade_visibly(trained_eval):
    from llm_anatomy_tui.core.evaluate import compare_models

    model, tokens = trained_eval
    results = [
        compare_models(model, quantize_model(model, QuantScheme(f, "per-block")).model, tokens)
        for f in INT_FORMATS
    ]
    kls = [r.kl_mean for r in results]
    assert kls == sorted(kls) and kls[-1] > 10 * kls[0]
    assert results[-1].top1_agreement < results[0].top1_agreement
    assert results[-1].perplexity_candidate > results[0].perplexity_candidate


def test_replace_keeps_scheme_valid():
    s = replace(QuantScheme("int4"), granularity="per-channel")
    assert s.label == "INT4 · per-channel · sym"
