"""Chapter 15's workbench (core/quant_lab.py): scale groups, grid counts and the cached
whole-model pipeline, each checked against the core computed directly — quantize(),
compare_models(), Generation — or against brute force."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from llm_anatomy_tui.core import quant_lab
from llm_anatomy_tui.core.evaluate import compare_models
from llm_anatomy_tui.core.generation import Generation
from llm_anatomy_tui.core.quant import (
    E4M3_VALUES,
    GRANULARITIES,
    QuantScheme,
    bf16_decode,
    count_distinct,
    quantize,
    quantize_model,
)
from llm_anatomy_tui.core.quant_lab import (
    MATRIX_KINDS,
    QuantLab,
    float_grid_count,
    group_bounds,
    group_view,
    outlier_cell,
    short_name,
    step_group,
    summarize,
    tensor_name,
)
from llm_anatomy_tui.core.sampling import SamplingSettings
from llm_anatomy_tui.core.tokenizers import load_encoding

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


def test_module_doctests():
    assert doctest.testmod(quant_lab).failed == 0


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


@pytest.fixture(scope="module")
def encoding():
    return load_encoding("model")


@pytest.fixture(scope="module")
def held_out(tiny_config):
    rng = np.random.default_rng(5)
    return rng.integers(0, tiny_config.vocab_size, 200)


def test_run_reports_each_stage_and_matches_the_core(tiny_model, held_out, encoding):
    lab = QuantLab(tiny_model, held_out, encoding)
    scheme = QuantScheme("int4", "per-block")
    settings = SamplingSettings(temperature=0.8, top_k=50)
    prompt = encoding.encode_ordinary("Once upon a time")
    events = list(lab.run(scheme, prompt, settings, seed=3, n_new=12))
    stages = [e.stage for e in events]
    n_tensors = len(tiny_model.tensors())
    assert stages[:n_tensors] == ["quantize"] * n_tensors
    assert [e.done for e in events[:n_tensors]] == list(range(1, n_tensors + 1))
    windows = len(lab.windows)
    assert stages[n_tensors:] == (
        ["quantized", "generated"] + ["reference"] * windows + ["compare"] * (windows - 1)
        + ["done"]
    )  # fmt: skip
    last = events[-1]
    qm = quantize_model(tiny_model, scheme)
    assert last.quantized.nbytes == qm.nbytes
    expected = compare_models(tiny_model, qm.model, held_out)
    assert last.comparison == expected
    ref = Generation(tiny_model, prompt, settings=settings, seed=3, encoding=encoding)
    ref.generate(12)
    got = Generation(qm.model, prompt, settings=settings, seed=3, encoding=encoding)
    got.generate(12)
    t = last.texts
    assert t.reference.tokens == ref.generated and t.reference.text == ref.text
    assert t.candidate.tokens == got.generated and t.candidate.text == got.text
    k = t.first_difference
    if k is None:
        assert ref.generated == got.generated
    else:
        assert ref.generated[:k] == got.generated[:k]
        assert k == len(ref.generated) or ref.generated[k] != got.generated[k]
    assert t.reference.text.startswith(t.common_text)
    assert t.candidate.text.startswith(t.common_text)


def test_second_run_is_served_from_the_caches(tiny_model, held_out, encoding):
    lab = QuantLab(tiny_model, held_out, encoding)
    scheme = QuantScheme("int8", "per-channel")
    first = list(lab.run(scheme, [1, 2, 3], seed=0, n_new=5))
    again = list(lab.run(scheme, [1, 2, 3], seed=0, n_new=5))
    assert [e.stage for e in again] == ["quantized", "generated", "done"]
    assert again[-1].comparison is first[-1].comparison
    assert again[-1].texts == first[-1].texts
    assert lab.comparison(scheme) is first[-1].comparison
    # a new prompt needs new texts, but not a new comparison
    third = list(lab.run(scheme, [4, 5], seed=0, n_new=5))
    assert [e.stage for e in third] == ["quantized", "generated", "done"]
    assert third[-1].texts.reference.tokens != first[-1].texts.reference.tokens


def test_abandoned_run_keeps_its_reference_and_gives_the_same_answer(tiny_model, held_out):
    lab = QuantLab(tiny_model, held_out)
    scheme = QuantScheme("int3", "per-block")
    for event in lab.run(scheme, None):
        if event.stage == "reference" and event.done == 2:
            break  # a cancelled worker stops here
    assert not lab.reference_ready and lab.comparison(scheme) is None
    events = list(lab.run(scheme, None))
    assert [e.done for e in events if e.stage == "reference"] == list(
        range(3, len(lab.windows) + 1)
    )
    qm = quantize_model(tiny_model, scheme)
    assert events[-1].comparison == compare_models(tiny_model, qm.model, held_out)


def test_fp32_against_itself_is_exact(tiny_model, held_out, encoding):
    lab = QuantLab(tiny_model, held_out, encoding)
    last = list(lab.run("FP32", [5, 6, 7], seed=1, n_new=6))[-1]
    c = last.comparison
    assert c.kl_mean == 0 and c.kl_max == 0 and c.top1_agreement == 1.0
    assert c.nll_candidate == c.nll_reference
    assert last.texts.first_difference is None
    assert last.quantized.nbytes == last.quantized.fp32_nbytes


def test_without_held_out_text_only_the_comparison_is_skipped(tiny_model, encoding):
    lab = QuantLab(tiny_model, None, encoding)
    events = list(lab.run("Q8_0", [1, 2], n_new=3))
    assert [e.stage for e in events if e.stage != "quantize"] == ["quantized", "generated", "done"]
    assert events[-1].comparison is None and not lab.can_compare
    with pytest.raises(ValueError, match="fewer than 2 tokens"):
        QuantLab(tiny_model, np.array([1]))


def test_a_prompt_that_fills_the_window_stops_at_once(tiny_model, encoding):
    lab = QuantLab(tiny_model, None, encoding)
    window = tiny_model.config.max_position_embeddings
    last = list(lab.run("Q4_0", list(range(window - 1)), n_new=10))[-1]
    assert len(last.texts.reference.tokens) == 1
    assert "context" in last.texts.reference.stop


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label)
def test_fast_model_size_equals_the_core_rule(scheme, tiny_config):
    from llm_anatomy_tui.core.quant import LLAMA_3_8B, model_nbytes
    from llm_anatomy_tui.core.quant_lab import model_nbytes_fast

    for config in (tiny_config, LLAMA_3_8B):
        assert model_nbytes_fast(config, scheme) == model_nbytes(config, scheme)
