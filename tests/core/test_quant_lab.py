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
    GRANULARITIES,
    QuantScheme,
    quantize_model,
)
from llm_anatomy_tui.core.quant_lab import (
    QuantLab,
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
        ["quantized", "generated"] + ["compare"] * (windows - 1)
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


def test_a_small_model_recomputes_its_reference_and_holds_no_logits(tiny_model, held_out):
    lab = QuantLab(tiny_model, held_out)
    assert lab.keep_reference is False
    scheme = QuantScheme("int3", "per-block")
    for event in lab.run(scheme, None):
        if event.stage == "compare" and event.done == 2:
            break  # a cancelled worker stops here
    assert lab.comparison(scheme) is None
    last = list(lab.run(scheme, None))[-1]
    assert lab.reference_kept == 0
    qm = quantize_model(tiny_model, scheme)
    assert last.comparison == compare_models(tiny_model, qm.model, held_out)


def test_a_kept_reference_survives_an_abandoned_run_and_gives_the_same_answer(tiny_model, held_out):
    lab = QuantLab(tiny_model, held_out, keep_reference=True)
    scheme = QuantScheme("int3", "per-block")
    for event in lab.run(scheme, None):
        if event.stage == "compare" and event.done == 2:
            break
    assert lab.reference_kept == 2 and lab.comparison(scheme) is None
    kept = list(lab._reference)
    last = list(lab.run(scheme, None))[-1]
    assert lab.reference_kept == len(lab.windows)
    assert all(a is b for a, b in zip(kept, lab._reference[:2], strict=True))  # not redone
    qm = quantize_model(tiny_model, scheme)
    assert last.comparison == compare_models(tiny_model, qm.model, held_out)
    # a second scheme compares against the kept logits and agrees with a fresh comparison
    other = list(lab.run("Q8_0", None))[-1]
    q8 = quantize_model(tiny_model, "Q8_0")
    assert other.comparison == compare_models(tiny_model, q8.model, held_out)


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


def test_a_lab_that_keeps_one_copy_drops_it_before_quantizing_the_next(tiny_model, held_out):
    """A large model keeps one quantized copy (each is a whole FP32 model): the old one is
    let go before the next is built, so two never exist at once."""
    lab = QuantLab(tiny_model, held_out, keep_models=1)
    list(lab.run("Q8_0", None))
    assert lab.quantized("Q8_0") is not None
    for event in lab.run("Q4_0", None):
        if event.stage == "quantize":
            assert lab.quantized("Q8_0") is None  # gone while Q4_0 is being made
    assert lab.quantized("Q4_0") is not None and lab.quantized("Q8_0") is None
    assert lab.comparison("Q8_0") is not None  # its numbers stay
