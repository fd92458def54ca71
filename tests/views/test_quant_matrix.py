"""Chapter 15's matrix view (views/quant_matrix.py): scale groups, grid counts and the cached
whole-model pipeline, each checked against the core computed directly — quantize(),
compare_models(), Generation — or against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from llm_anatomy_tui.core.quant import (
    E4M3_VALUES,
    GRANULARITIES,
    QuantScheme,
    bf16_decode,
    count_distinct,
    quantize,
)
from llm_anatomy_tui.views.quant_matrix import (
    MATRIX_KINDS,
    float_grid_count,
    group_bounds,
    group_view,
    outlier_cell,
    short_name,
    step_group,
    summarize,
    tensor_name,
)

SCHEMES = [
    QuantScheme("fp32"),
    QuantScheme("fp16"),
    QuantScheme("bf16"),
    *(QuantScheme("fp8", g) for g in GRANULARITIES),
    *(
        QuantScheme(f, g, sym)
        for f in ("int8", "int4", "int3", "int2")
        for g in GRANULARITIES
        for sym in (True, False)
    ),
]


def test_every_matrix_kind_names_a_real_tensor(tiny_model):
    tensors = tiny_model.tensors()
    for layer in range(tiny_model.config.num_hidden_layers):
        for kind in MATRIX_KINDS:
            name = tensor_name(kind, layer)
            assert name in tensors and tensors[name].ndim == 2
    assert short_name(tensor_name("up_proj", 1)) == "layers.1.mlp.up_proj"
    with pytest.raises(ValueError, match="unknown matrix"):
        tensor_name("w_proj", 0)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_stepping_visits_every_group_once_and_wraps(granularity):
    shape, scheme = (5, 70), QuantScheme("int4", granularity)  # a ragged last block
    cell = (0, 0)
    seen = []
    kind, _, count, _, _ = group_bounds(shape, scheme, *cell)
    for _ in range(count):
        seen.append(group_bounds(shape, scheme, *cell)[1])
        cell = step_group(shape, scheme, *cell, 1)
    assert sorted(seen) == list(range(count)) and cell == (0, 0)
    last_group = {"tensor": (0, 0), "channel": (4, 0), "block": (4, 64)}[kind]
    assert step_group(shape, scheme, 0, 0, -1) == last_group


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label)
def test_group_view_is_the_group_quantize_made(scheme, rng):
    w = rng.normal(0, 0.05, (12, 96)).astype(np.float32)
    w[7, 40] = 0.9  # an outlier
    r = quantize(w, scheme)
    g = group_view(r, 7, 45)
    (r0, r1), (c0, c1) = g.rows, g.cols
    assert np.array_equal(g.before, np.sort(w[r0:r1, c0:c1], axis=None))
    assert np.array_equal(g.after, np.sort(r.dequantized[r0:r1, c0:c1], axis=None))
    assert g.lo <= g.before[0] and g.hi >= g.before[-1]
    if scheme.effective().granularity == "per-block":
        assert (r0, r1, c0, c1) == (7, 8, 32, 64)
    if g.grid is not None:  # every value after sits on the group's grid
        assert np.isin(g.after, g.grid).all()
        assert g.grid_count == g.grid.size
    else:
        fmt = scheme.effective().format
        assert g.grid_count == float_grid_count(g.lo, g.hi, fmt)
    if r.scales is not None:
        assert g.scale == float(r.scales[r.group_index((r0, c0))])
    first = g.samples[0]  # the group's largest |w|: it sets the scale
    assert abs(first.before) == np.abs(w[r0:r1, c0:c1]).max()
    for s in g.samples:
        assert s.before == w[s.row, s.col] and s.after == r.dequantized[s.row, s.col]
        assert s.code == r.codes[s.row, s.col]
        fmt = scheme.effective().format
        if fmt.startswith("int"):
            expected = np.float32(s.code) * np.float32(g.scale)
            if g.offset is not None:
                expected += np.float32(g.offset)
            assert s.after == pytest.approx(float(expected), abs=1e-7)
        elif fmt == "fp8":
            assert s.after == pytest.approx(float(E4M3_VALUES[s.code]) * g.scale, rel=1e-6)


def test_outlier_cell_finds_the_largest_magnitude(rng):
    w = rng.normal(0, 0.1, (9, 33)).astype(np.float32)
    w[4, 17] = -3.0
    assert outlier_cell(w) == (4, 17)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_float_grid_count_matches_enumerating_every_code(fmt, rng):
    codes = np.arange(65536, dtype=np.uint32)
    if fmt == "fp16":
        values = codes.astype(np.uint16).view(np.float16).astype(np.float64)
    else:
        with np.errstate(invalid="ignore"):
            values = bf16_decode(codes.astype(np.uint16)).astype(np.float64)
    values = np.unique(values[np.isfinite(values)])  # -0 and +0 are one value
    for lo, hi in [(-0.4, 0.37), (0.0, 0.5), (0.001, 0.002), (-2.0, -0.5), (1.0, 1.0)]:
        expected = int(np.sum((values >= lo) & (values <= hi)))
        assert float_grid_count(lo, hi, fmt) == expected, (lo, hi)
    for lo, hi in np.sort(rng.normal(0, 0.3, (200, 2)).astype(np.float32), axis=1):
        expected = int(np.sum((values >= lo) & (values <= hi)))
        assert float_grid_count(float(lo), float(hi), fmt) == expected


def test_summary_repeats_the_core_metrics(rng):
    w = rng.normal(0, 0.05, (64, 128)).astype(np.float32)
    for scheme in SCHEMES:
        r = quantize(w, scheme)
        s = summarize(r, "m")
        assert (s.rmse, s.max_abs_error, s.relative_rmse) == (
            r.rmse, r.max_abs_error, r.relative_rmse,
        )  # fmt: skip
        assert s.unique_values == count_distinct(r.dequantized)
        assert s.unique_original == count_distinct(w)
        assert s.storage == r.storage and s.unique_codes == r.unique_codes
        if r.scales is not None:
            assert s.n_groups == r.scales.size
            assert s.max_unique_per_group == r.unique_per_group().max() <= r.levels
            assert s.scale_abs_range == (np.abs(r.scales).min(), np.abs(r.scales).max())


# -- the whole model ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label)
def test_fast_model_size_equals_the_core_rule(scheme, tiny_config):
    from llm_anatomy_tui.core.quant import LLAMA_3_8B, model_nbytes
    from llm_anatomy_tui.views.quant_matrix import model_nbytes_fast

    for config in (tiny_config, LLAMA_3_8B):
        assert model_nbytes_fast(config, scheme) == model_nbytes(config, scheme)
