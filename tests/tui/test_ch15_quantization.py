"""Chapter 15 (Quantization) driven by keys, with every number checked against the core
computed directly: quantize() for one matrix, quantize_model() + compare_models() for the
whole model, Generation for the side-by-side texts, size_table() for the 8B sizes.

The chapters' subject is the real model: ``$LLM_ANATOMY_MODEL`` or the shipped
anatomy-mini (the tests are skipped when neither is there).
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import cache

import numpy as np
import pytest
from ch_helpers import edit_prompt, header_text
from textual import events
from tui_helpers import SEED, make_model_session, settle

import llm_anatomy_tui.chapters.c15_quantization as c15
from llm_anatomy_tui.chapters.base import ResourceNotice
from llm_anatomy_tui.chapters.c15_quantization import (
    N_NEW,
    QuantizationScreen,
    ratio,
    sig,
    wt,
)
from llm_anatomy_tui.core.evaluate import compare_models, eval_tokens
from llm_anatomy_tui.core.generation import Generation
from llm_anatomy_tui.core.model import default_model_dir
from llm_anatomy_tui.core.quant import (
    FORMAT_NAMES,
    LLAMA_3_8B,
    QuantScheme,
    model_nbytes,
    quantize,
    quantize_model,
    size_table,
)
from llm_anatomy_tui.core.quant_lab import EVAL_TOKENS
from llm_anatomy_tui.core.session import MODEL_DIR_ENV
from llm_anatomy_tui.core.tokenizers import load_encoding
from llm_anatomy_tui.views.quant_matrix import MATRIX_KINDS, group_view, tensor_name
from llm_anatomy_tui.widgets._format import fmt, fmt_percent
from llm_anatomy_tui.widgets.quant_views import Facts, OptionRow, QuantTable

_MODEL_DIR = os.environ.get(MODEL_DIR_ENV) or str(default_model_dir())
pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(_MODEL_DIR, "model.safetensors")),
    reason=f"no trained model at {_MODEL_DIR} (set {MODEL_DIR_ENV})",
)

Q4_0 = QuantScheme("int4", "per-block").effective()
Q8_0 = QuantScheme("int8", "per-block").effective()


@cache
def model():  # noqa: ANN201
    return make_model_session().model


@cache
def expected_comparison(scheme: QuantScheme):  # noqa: ANN201
    tokens = eval_tokens(load_encoding("model"), max_tokens=EVAL_TOKENS)
    return compare_models(model(), quantize_model(model(), scheme).model, tokens)


def expected_text(scheme: QuantScheme, prompt: str, seed: int = 0, settings=None) -> str:  # noqa: ANN001
    session = make_model_session(prompt)
    enc = session.encoding("model")
    ids, _ = session.context_ids(enc, model().config.max_position_embeddings)
    m = model() if scheme.format == "fp32" else quantize_model(model(), scheme).model
    gen = Generation(m, ids, settings=settings or session.sampling, seed=seed, encoding=enc)
    if not gen.done:
        gen.generate(N_NEW)
    return gen.text


async def wait_final(pilot, timeout: float = 120.0) -> QuantizationScreen:  # noqa: ANN001
    """Wait until every number on the screen is final (workers done, nothing pending)."""
    screen = pilot.app.screen
    deadline = time.monotonic() + timeout
    while True:
        await settle(pilot)
        if not screen.busy:
            return screen
        assert time.monotonic() < deadline, f"still computing: {screen.shown.get('status')}"
        await asyncio.sleep(0.05)


def send_keys(app, keys: str) -> None:  # noqa: ANN001
    """Queue key presses the way a terminal delivers a burst: no waiting in between.

    (``pilot.press`` waits until the process is idle after every key, up to a second
    while a worker computes, which is not how a person types.)"""
    for key in keys:
        app.post_message(events.Key(key, key))


def app_for(make_app, prompt: str = SEED):  # noqa: ANN001, ANN201
    return make_app(chapter="quantization", session=make_model_session(prompt))


def check_matrix(screen: QuantizationScreen, name: str, scheme: QuantScheme) -> None:
    """The matrix panel's numbers are those of quantize() on the same weights."""
    w = model().tensors()[name]
    r = quantize(w, scheme)
    s = screen.shown
    assert screen.tensor == name and screen.scheme == scheme.effective()
    assert s["rmse"] == sig(r.rmse) and s["max_error"] == sig(r.max_abs_error)
    assert s["unique_before"] == f"{r.unique_original_values:,}"
    assert s["unique_after"] == f"{r.unique_values:,}"
    (lo0, hi0), (lo1, hi1) = r.original_range, r.dequantized_range
    assert s["range"] == f"{wt(lo0)} … {wt(hi0)}  →  {wt(lo1)} … {wt(hi1)}"
    assert s["storage"] == r.storage.explain()
    assert s["compression"] == ratio(w.size * 4, r.nbytes)
    assert s["relative"] == fmt_percent(r.relative_rmse, 1)
    if r.scales is not None:
        assert f"{r.scales.size:,} " in s["scales"] or r.scales.size == 1
        assert f"codes used: {r.unique_codes:,} of {r.levels:,}" in s["distinct"]
    # the sample rows: after = code × d (+ m), to the decimals shown
    g = group_view(r, *screen.cell)
    for smp, line in zip(g.samples, s["samples"].splitlines(), strict=True):
        assert line.startswith(f"[{smp.row}, {smp.col}] {wt(smp.before, 6)} ")
        assert f" {wt(smp.after, 6)} {fmt(smp.error, 5)}" in line


def check_model(screen: QuantizationScreen, scheme: QuantScheme, prompt: str = SEED) -> None:
    """The whole-model panel's numbers are those of quantize_model() + compare_models()."""
    s = screen.shown
    qm = quantize_model(model(), scheme)
    assert model_nbytes(model().config, scheme) == qm.nbytes
    assert s["model_size"].startswith(f"{qm.nbytes:,} B = {qm.bits_per_weight:.2f} bits/weight")
    assert s["model_fp32"] == f"{qm.fp32_nbytes:,} B: {ratio(qm.fp32_nbytes, qm.nbytes)} as large"
    c = expected_comparison(scheme.effective())
    assert s["kl"].startswith(f"{sig(c.kl_mean)} nats per token")
    assert f"worst {sig(c.kl_max)}" in s["kl"]
    assert s["top1"].startswith(f"{fmt_percent(c.top1_agreement, 2)} of {c.n_predictions:,}")
    assert s["perplexity"].startswith(
        f"{c.perplexity_candidate:.3f} vs FP32 {c.perplexity_reference:.3f}"
    )
    assert s["status"].startswith("✓ final")
    assert s["text_fp32"] == expected_text(QuantScheme("fp32"), prompt, screen.seed)
    assert s["text_quant"] == expected_text(scheme, prompt, screen.seed)


# -- the default view ------------------------------------------------------------------------


async def test_opens_on_q4_0_with_the_numbers_of_the_core(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        assert isinstance(screen, QuantizationScreen)
        name = tensor_name("q_proj", 0)
        check_matrix(screen, name, Q4_0)
        check_model(screen, Q4_0)
        assert "= Q4_0" in "".join(
            t
            for t, _ in screen.query_one("#q-row-scale", OptionRow)
            .renderable(200)
            .layout_lines(200)[0]
        )
        r = quantize(model().tensors()[name], Q4_0)
        assert screen.shown["group"].startswith(
            f"Block 1 of {r.scales.size:,} (row 0, columns 0–31) · d = {sig(float(r.scales[0, 0]), 7)}"
        )


async def test_the_8b_table_and_your_scheme(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        table = screen.query_one("#q-8b", QuantTable)
        rows = {r[0]: r for r in table.rows}
        for r in size_table():
            assert rows[r.label][1:] == (
                f"{r.gb:.1f} GB", f"{r.gb_with_scales:.2f} GB",
                f"{r.bits_per_weight_with_scales:.1f}", f"{r.llama3_8b_gb:.2f} GB",
            )  # fmt: skip
        # the Must-show numbers: 8B before scale overhead
        assert [rows[k][1] for k in ("FP32", "FP16", "INT8", "INT4")] == [
            "32.0 GB", "16.0 GB", "8.0 GB", "4.0 GB",
        ]  # fmt: skip
        assert rows["INT4"][2] == "4.50 GB" and rows["INT8"][2] == "8.50 GB"
        assert table.highlight == FORMAT_NAMES.index("int4")
        nbytes = model_nbytes(LLAMA_3_8B, Q4_0)
        assert f"{nbytes / 1e9:.2f} GB" in screen.shown["llama3_yours"]
        await pilot.press("f")  # INT3
        assert table.highlight == FORMAT_NAMES.index("int3")
        nbytes = model_nbytes(LLAMA_3_8B, QuantScheme("int3", "per-block"))
        assert f"{nbytes / 1e9:.2f} GB" in screen.shown["llama3_yours"]


# -- every control by keys -------------------------------------------------------------------


async def test_every_format_forward_and_back(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        name = tensor_name("q_proj", 0)
        start = FORMAT_NAMES.index("int4")
        for step in range(1, len(FORMAT_NAMES) + 1):
            await pilot.press("f")
            fmt_name = FORMAT_NAMES[(start + step) % len(FORMAT_NAMES)]
            check_matrix(screen, name, QuantScheme(fmt_name, "per-block"))
        assert screen.scheme == Q4_0
        await pilot.press("F")
        check_matrix(screen, name, QuantScheme("int8", "per-block"))
        await wait_final(pilot)
        check_model(screen, Q8_0)
        c = expected_comparison(Q8_0)
        assert c.top1_agreement >= 0.95  # Q8_0 keeps FP32's first choice (issue 5)


@pytest.mark.parametrize("fmt_name", ["fp32", "fp16", "bf16", "fp8"])
async def test_float_formats_show_their_own_numbers(make_app, fmt_name):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        while screen.scheme.format != fmt_name:
            await pilot.press("f")
        scheme = QuantScheme(fmt_name, "per-block")
        check_matrix(screen, tensor_name("q_proj", 0), scheme)
        if fmt_name != "fp8":
            assert "rounds each weight on its own" in screen.shown["scales"]
            assert screen.shown["group"].startswith("The whole matrix")
        if fmt_name == "fp32":
            assert screen.shown["rmse"] == "0" and screen.shown["compression"] == "1.00×"
        # the weights' RMS is theirs, not RMSE / relative RMSE (before: "RMS (0)" at FP32)
        w = model().tensors()[tensor_name("q_proj", 0)].astype(np.float64)
        rms = sig(float(np.sqrt(np.mean(w * w))))
        assert (
            screen.shown["rms"] == rms and f"of the weights' RMS ({rms})" in screen.shown["error"]
        )


async def test_granularity_and_symmetry(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        name = tensor_name("q_proj", 0)
        rows, cols = model().tensors()[name].shape
        expected = [("per-tensor", "1 fp32 scale"), ("per-channel", f"{rows:,} fp32 scales"),
                    ("per-block", f"{rows * cols // 32:,} fp16 scales")]  # fmt: skip
        for granularity, scales in expected:
            await pilot.press("g")
            assert screen.scheme.granularity == granularity
            assert screen.shown["scales"].startswith(scales)
            check_matrix(screen, name, QuantScheme("int4", granularity))
        await pilot.press("a")
        assert not screen.scheme.symmetric
        check_matrix(screen, name, QuantScheme("int4", "per-block", symmetric=False))
        assert "offsets m" in screen.shown["scales"] and ", m = " in screen.shown["group"]
        assert "5 bits/weight" in screen.shown["storage"]  # Q4_1: 20 bytes per 32 weights
        await wait_final(pilot)
        check_model(screen, QuantScheme("int4", "per-block", symmetric=False))


async def test_every_matrix_and_layer(make_app, monkeypatch):
    monkeypatch.setattr(c15, "MATRIX_DELAY", 1.0)  # time to see the embedding pending
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        await pilot.press("g")  # per tensor: one group, the whole matrix
        for kind in MATRIX_KINDS[1:]:
            await pilot.press("m")
            if kind == "embedding":  # 1M weights: computed in a worker
                assert screen.matrix_pending and screen.shown["rmse"] == "computing…"
                await wait_final(pilot)
            name = tensor_name(kind, 0)
            check_matrix(screen, name, QuantScheme("int4", "per-tensor"))
            rows, cols = model().tensors()[name].shape
            title = str(screen.query_one("#q-mat-title").render())
            assert f"{rows:,} × {cols:,} = {rows * cols:,} weights" in title
        await pilot.press("m", "l", "l")
        assert screen.tensor == tensor_name("q_proj", 2)
        check_matrix(screen, screen.tensor, QuantScheme("int4", "per-tensor"))
        await pilot.press("L", "M")
        assert screen.tensor == tensor_name("embedding", 0)
        await wait_final(pilot)
        check_matrix(screen, screen.tensor, QuantScheme("int4", "per-tensor"))


async def test_group_keys_walk_the_blocks_and_find_the_outlier(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        name = tensor_name("q_proj", 0)
        w = model().tensors()[name]
        await pilot.press("w", "w", "w", "w", "w")
        assert screen.cell == (1, 32)  # 128 columns = 4 blocks per row
        assert screen.shown["group"].startswith("Block 6 of 512 (row 1, columns 32–63)")
        await pilot.press("W", "W")
        assert screen.cell == (0, 96)
        check_matrix(screen, name, Q4_0)
        await pilot.press("x")
        r, c = np.unravel_index(int(np.argmax(np.abs(w))), w.shape)
        assert screen.cell == (r, c)
        first = screen.shown["samples"].splitlines()[0]
        assert first.startswith(f"[{r}, {c}] {wt(float(w[r, c]), 6)} -8 ")
        assert screen.query_one("#q-samples", QuantTable).highlight == 0
        check_matrix(screen, name, Q4_0)
        await pilot.press("g")  # per tensor: the outlier now sets everyone's step
        g = group_view(quantize(w, QuantScheme("int4", "per-tensor")), r, c)
        assert screen.shown["group"] == (
            f"The whole matrix · d = {sig(g.scale, 7)} · uses "
            f"{len(np.unique(g.after))} of its 16 values"
        )


async def test_seed_key_redraws_both_texts_with_the_new_seed(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        before = screen.shown["text_fp32"]
        await pilot.press("s")
        assert screen.seed == 1
        await wait_final(pilot)
        assert screen.shown["text_fp32"] == expected_text(QuantScheme("fp32"), SEED, 1)
        assert screen.shown["text_quant"] == expected_text(Q4_0, SEED, 1)
        assert screen.shown["text_fp32"] != before


async def test_typing_a_prompt_regenerates_the_texts(make_app):
    app = app_for(make_app, "Once upon a time")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        await pilot.press("slash", *" there was a cat", "escape")
        prompt = "Once upon a time there was a cat"
        assert app.session.prompt == prompt
        await pilot.press("f")  # keys work again after Esc: INT3
        await wait_final(pilot)
        scheme = QuantScheme("int3", "per-block")
        assert screen.shown["text_fp32"] == expected_text(QuantScheme("fp32"), prompt)
        assert screen.shown["text_quant"] == expected_text(scheme, prompt)


async def test_a_prompt_edit_shows_the_new_texts_and_nothing_computing(make_app):
    """Edited by keys, then settled: both continuations are the new prompt's, as the core
    generates them, and nothing says it is computing."""
    app = app_for(make_app, "Once upon a time")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        await edit_prompt(pilot, " a small dog")
        prompt = app.session.prompt
        assert prompt == "Once upon a time a small dog"
        screen = await wait_final(pilot)
        assert screen.shown["text_fp32"] == expected_text(QuantScheme("fp32"), prompt)
        assert screen.shown["text_quant"] == expected_text(Q4_0, prompt)
        assert screen.shown["status"].startswith("✓ final")
        assert "computing" not in header_text(app)


async def test_asymmetric_groups_say_min_and_max_set_the_scale(make_app):
    """Before: the asymmetric mode still said the group's largest |w| alone sets d."""
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        assert screen.scheme.symmetric and "it sets d" in screen.shown["samples_note"]
        await pilot.press("a")  # asymmetric
        screen = await wait_final(pilot)
        assert not screen.scheme.symmetric
        assert "it sets d" not in screen.shown["samples_note"]
        assert "min and max set d and m" in screen.shown["samples_note"]


async def test_the_token_counts_of_the_model_figures_agree(make_app):
    """Before: perplexity said "2,048 held-out tokens" beside top-1 "of 2,040 tokens"."""
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        c = expected_comparison(Q4_0)
        n = f"{c.n_predictions:,}"
        assert f"of {n} held-out tokens" in screen.shown["top1"]
        assert f"(the same {n} tokens)" in screen.shown["perplexity"]
        assert f"{EVAL_TOKENS:,} held-out" not in screen.shown["perplexity"]


# -- responsiveness and caching ----------------------------------------------------------------


async def test_coming_back_to_a_scheme_is_instant(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        await pilot.press("f")  # INT3
        await wait_final(pilot)
        await pilot.press("F")  # back to Q4_0: everything from the caches, no worker
        await pilot.pause()
        assert not screen.busy and screen.shown["status"].startswith("✓ final")
        assert not [w for w in app.workers if w.group == "q-model" and w.is_running]
        check_model(screen, Q4_0)


async def test_rapid_switching_never_shows_stale_numbers(make_app):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        for burst in ("fgafmfgF", "gaMfwfFg", "xfafffff", "gggMMMmm", "aaafFfFf"):
            send_keys(app, burst)  # a burst of keys, all queued at once
            await pilot.pause()
            assert screen.shown["rmse"] in ("computing…", sig(screen_result(screen).rmse))
            status = screen.shown["status"]
            assert status.startswith("⧗ still computing") or status.startswith("✓ final")
        await wait_final(pilot)
        check_matrix(screen, screen.tensor, screen.scheme)
        check_model(screen, screen.scheme)


def screen_result(screen: QuantizationScreen):  # noqa: ANN201
    return quantize(model().tensors()[screen.tensor], screen.scheme)


async def test_the_screen_says_what_is_still_being_computed(make_app, monkeypatch):
    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        monkeypatch.setattr(c15, "START_DELAY", 2.0)  # hold the new job at its start
        await pilot.press("f", "f")  # INT2: nothing cached yet
        assert screen.busy
        assert screen.shown["kl"] == screen.shown["top1"] == "computing…"
        assert screen.shown["status"].startswith("⧗ still computing: text, KL, top-1, perplexity")
        assert screen.shown["model_size"].startswith(
            f"{model_nbytes(model().config, QuantScheme('int2', 'per-block')):,} B"
        )  # the size needs no worker
        await wait_final(pilot)
        check_model(screen, QuantScheme("int2", "per-block"))
        assert expected_comparison(QuantScheme("int2", "per-block")).top1_agreement < (
            expected_comparison(Q4_0).top1_agreement
        )  # fewer bits, visibly worse


# -- robustness ----------------------------------------------------------------------------------


async def test_empty_prompt_starts_a_fresh_story(make_app):
    app = app_for(make_app, "")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_final(pilot)
        assert "The prompt is empty" in str(screen.query_one("#q-context").render())
        assert screen.shown["text_fp32"] == expected_text(QuantScheme("fp32"), "")
        assert screen.shown["text_quant"] == expected_text(Q4_0, "")


async def test_a_prompt_past_the_context_window(make_app):
    long_prompt = "The cat sat on the mat and looked at the sun. " * 40  # > 256 tokens
    app = app_for(make_app, long_prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_final(pilot)
        notice = str(screen.query_one("#q-context").render())
        assert "fell out of the window" in notice
        assert "FP32 stopped early: the context window is full" in screen.shown["text_note"]
        assert screen.shown["text_fp32"] == expected_text(QuantScheme("fp32"), long_prompt)
        await pilot.press("f", "s")
        await wait_final(pilot)


async def test_without_a_model_the_notice_shows_and_keys_are_harmless(make_app):
    app = make_app(chapter="quantization")  # the shared set-up: no model installed
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.query_one(ResourceNotice).display
        await pilot.press(*"fFgamMlLwWxs")
        await settle(pilot)
        assert "needs the model" in str(screen.query_one("#q-mat-title").render())
        assert "needs the model" in screen.query_one("#q-model", Facts).plain()
        assert len(screen.query_one("#q-8b", QuantTable).rows) == 8
        assert not screen.busy


@pytest.mark.parametrize("size", [(40, 12), (80, 24), (160, 45)])
async def test_any_size_and_resizing(make_app, size):
    app = app_for(make_app)
    async with app.run_test(size=size) as pilot:
        await wait_final(pilot)
        await pilot.press(*"fgmw")
        await pilot.resize_terminal(40, 12)
        await pilot.press(*"Fax")
        await pilot.resize_terminal(*size)
        await wait_final(pilot)
        check_matrix(app.screen, app.screen.tensor, app.screen.scheme)


async def test_no_color_marks_the_choices_with_brackets(make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(make_app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_final(pilot)
        row = screen.query_one("#q-row-format", OptionRow).renderable(80)
        assert row.color_mode == "none"
        assert "[INT4]" in "".join(t for line in row.layout_lines(80, False) for t, _ in line)


# -- snapshots (update with ``pytest --snapshot-update``; fixed seed, numbers final) --------------


async def _final(pilot) -> None:  # noqa: ANN001
    await wait_final(pilot)


def test_snapshot_80x24(snap_compare, make_app):
    """Q4_0 on layer 0's q_proj: the choices, block 1's values snapping to its 16 values."""
    assert snap_compare(app_for(make_app), terminal_size=(80, 24), run_before=_final)


def test_snapshot_120x40(snap_compare, make_app):
    """The wide layout: the matrix on the left, the whole model and both texts on the right."""
    assert snap_compare(app_for(make_app), terminal_size=(120, 40), run_before=_final)


def test_snapshot_outlier_per_tensor_80x24(snap_compare, make_app):
    """INT4 with one scale for the whole matrix: the largest weight stretches every step."""

    async def run_before(pilot) -> None:  # noqa: ANN001
        await wait_final(pilot)
        await pilot.press("x", "g")
        await wait_final(pilot)

    assert snap_compare(app_for(make_app), terminal_size=(80, 24), run_before=run_before)


async def test_a_sampler_changed_in_another_chapter_is_used_on_return(make_app):
    from llm_anatomy_tui.core.sampling import SamplingSettings

    app = app_for(make_app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_final(pilot)
        await pilot.press("t")  # the contents, over this chapter
        await pilot.pause()
        settings = SamplingSettings(temperature=0.7, top_k=20)
        app.session.set_sampling(settings)  # as chapter 5 would
        await pilot.press("escape")
        await wait_final(pilot)
        assert screen.shown["text_fp32"] == expected_text(
            QuantScheme("fp32"), SEED, settings=settings
        )
        assert screen.shown["text_quant"] == expected_text(Q4_0, SEED, settings=settings)
        assert "temperature 0.7, top-k 20" in screen.shown["text_note"]
