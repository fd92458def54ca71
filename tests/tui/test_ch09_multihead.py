"""Chapter 9 (Multi-head attention) driven by keys: every head's map at every stage is the
model's own trace, the shapes shown are the arrays' shapes, and the grouped-query mapping
and the cache figures follow from the config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from attention_helpers import (
    PROMPT,
    assert_rows_are_distributions,
    context_tokens,
    edits_are_followed,
    fresh_trace,
    model_app,
    press_then_settle,
    render_plain,
    requires_model,
    text_of,
)
from text_snapshot import assert_text_snapshot
from tui_helpers import make_session, settle, take_steps

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.c09_multihead import (
    MASKED,
    MIXED,
    SCORES,
    WEIGHTS,
    MultiHeadScreen,
    Table,
    cache_figures,
    gqa_groups,
    pipeline,
)
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import KVCache, forward
from llm_anatomy_tui.views.readout import check_softmax_text
from llm_anatomy_tui.widgets.matrix_view import MatrixView


async def opened(pilot) -> MultiHeadScreen:  # noqa: ANN001
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, MultiHeadScreen)
    return screen


def check_maps(app, screen: MultiHeadScreen) -> None:  # noqa: ANN001
    """Every head's map is the trace's array for the stage, masked as the stage says."""
    model = app.session.model
    tokens = context_tokens(app)
    t = len(tokens)
    rec = fresh_trace(model, tokens).layers[screen.layer_i]
    for h, m in enumerate(screen._maps):
        assert m.title.strip().lstrip("▶").startswith(f"head {h} · K/V {h // 2}")
        if screen.stage == SCORES:
            np.testing.assert_allclose(m.values, rec["scores"][h], atol=3e-5)
            assert m.mask is None
        elif screen.stage == MASKED:
            np.testing.assert_allclose(m.values, rec["scores"][h], atol=3e-5)
            np.testing.assert_array_equal(m.mask, ~rec["mask"])
        elif screen.stage == WEIGHTS:
            np.testing.assert_allclose(m.values, rec["weights"][h], atol=1e-6)
            np.testing.assert_array_equal(m.mask, ~rec["mask"])
            assert_rows_are_distributions(m.values)
        else:
            np.testing.assert_allclose(m.values, rec["heads"][h], atol=1e-5)
            assert m.values.shape == (t, model.config.dim_head)
        assert m.cursor[0] == screen.query_pos
    # the selected head's row, in numbers
    h, q = screen.head_i, screen.query_pos
    table = screen.query_one("#mh-row", Table)
    values = screen.row_values
    np.testing.assert_array_equal(table.values, values)
    if screen.stage != MIXED:
        dots, scores, masked, weights = values
        np.testing.assert_allclose(dots, rec["scores"][h, q] * math.sqrt(32), atol=3e-4)
        np.testing.assert_allclose(scores, rec["scores"][h, q], atol=1e-4)
        # a reader's calculator: printed q·k ÷ √32, rounded, is the printed score
        assert [f"{d / math.sqrt(32):.4f}" for d in dots] == [f"{x:.4f}" for x in scores]
        assert np.all(np.isneginf(masked[q + 1 :])) and np.all(masked[: q + 1] == scores[: q + 1])
        np.testing.assert_allclose(weights, rec["weights"][h, q], atol=1e-4)
        assert np.all(weights[q + 1 :] == 0.0)
        lse = text_of(screen, "#mh-row-title").split("exp(masked − ")[1].rstrip(")")
        shown = [f"{w:.4f}" for w in weights[: q + 1]]
        assert check_softmax_text([f"{s:.4f}" for s in scores[: q + 1]], shown, lse) == []
    else:
        parts, total = values[:-1], values[-1]
        np.testing.assert_allclose(parts.sum(axis=0), total, atol=1e-5)  # Σ weight × v
        np.testing.assert_allclose(total, rec["heads"][h, q], atol=1e-5)
        w = rec["weights"][h, q, : q + 1]
        v = rec["v"][h // 2, : q + 1]
        top = np.argsort(-w, kind="stable")[:3]
        for row, i in zip(parts, top, strict=False):
            np.testing.assert_allclose(row, w[i] * v[i], atol=1e-5)  # float32 noise
        assert parts.shape[0] == min(q + 1, 4)


@requires_model
async def test_every_stage_of_every_head_is_the_trace():
    app = model_app("multi-head")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        assert screen.stage == WEIGHTS
        check_maps(app, screen)
        for key, stage in (("x", MIXED), ("x", SCORES), ("x", MASKED), ("X", SCORES)):
            await pilot.press(key)
            await pilot.pause()
            assert screen.stage == stage
            check_maps(app, screen)
            assert text_of(screen, "#mh-stage").startswith(f"stage {stage + 1}/4")


@requires_model
async def test_every_control_by_keys():
    app = model_app("multi-head")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        t = len(context_tokens(app))
        assert screen.query_pos == t - 1
        for key, check in (
            ("up", lambda: screen.query_pos == t - 2),
            ("down", lambda: screen.query_pos == t - 1),
            ("up", lambda: screen.query_pos == t - 2),
            ("left", lambda: True),
            ("right", lambda: True),
            ("l", lambda: screen.layer_i == 1),
            ("L", lambda: screen.layer_i == 0),
            ("L", lambda: screen.layer_i == 3),
            ("h", lambda: screen.head_i == 1),
            ("H", lambda: screen.head_i == 0),
            ("H", lambda: screen.head_i == 3),
            ("e", lambda: screen.query_pos == t - 1),
            ("x", lambda: screen.stage == MIXED),
            ("right", lambda: screen.dim_pos == 1),
            ("a", lambda: screen._maps[0].overflow == "aggregate"),
            ("a", lambda: screen._maps[0].overflow == "scroll"),
            ("pagedown", lambda: screen.query_one("#mh-body").scroll_y > 0),
            ("pageup", lambda: screen.query_one("#mh-body").scroll_y == 0),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert check(), key
            check_maps(app, screen)
        chosen = [m for m in screen._maps if m.title.startswith("▶")]
        assert len(chosen) == 1 and chosen[0].title.startswith("▶head 3")


@requires_model
async def test_shapes_shown_match_the_arrays():
    app = model_app("multi-head")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        model = app.session.model
        cfg = model.config
        tokens = context_tokens(app)
        t = len(tokens)
        rec = fresh_trace(model, tokens).layers[0]
        weights = model.tensors()
        wq = weights["model.layers.0.self_attn.q_proj.weight"].T  # used as X·Wq: [in, out]
        wk = weights["model.layers.0.self_attn.k_proj.weight"].T
        wo = weights["model.layers.0.self_attn.o_proj.weight"].T

        def shape(a) -> str:  # noqa: ANN001
            return "[" + "×".join(str(n) for n in a.shape) + "]"

        q_flat = rec["q"].transpose(1, 0, 2).reshape(t, -1)
        k_flat = rec["k"].transpose(1, 0, 2).reshape(t, -1)
        heads_flat = rec["heads"].transpose(1, 0, 2).reshape(t, -1)
        expected = [
            shape(rec["attn_norm"]),
            f"{shape(rec['attn_norm'])}·{shape(wq)} → {shape(q_flat)}",
            f"{shape(rec['attn_norm'])}·{shape(wk)} → {shape(k_flat)}",
            "shapes unchanged",
            f"{shape(rec['q_rope'])}·{shape(rec['q_rope'].transpose(0, 2, 1))} → "
            f"{shape(rec['scores'])}",
            f"{shape(rec['mask'])} mask",
            shape(rec["weights"]),
            f"{shape(rec['weights'])}·{shape(rec['heads'])} → {shape(rec['heads'])}",
            f"{shape(heads_flat)}·{shape(wo)} → {shape(rec['attn_out'])}",
        ]
        assert [r.shapes for r in screen.shape_rows] == expected
        assert rec["q"].shape == (cfg.num_attention_heads, t, cfg.dim_head)
        assert rec["v"].shape == (cfg.num_key_value_heads, t, cfg.dim_head)
        assert f"split into 4 heads: [4×{t}×32]" in screen.shape_rows[1].note
        assert f"2 K/V heads: [2×{t}×32] each" in screen.shape_rows[2].note
        hidden = int((~rec["mask"]).sum())
        assert f"{hidden} of {t * t} cells" in screen.shape_rows[5].note
        text = text_of(screen, "#mh-shapes")
        for row in screen.shape_rows:
            assert row.formula in text and row.shapes in text
        assert f"scores = Q·Kᵀ/√{cfg.dim_head}" in text


@requires_model
async def test_grouped_query_mapping_and_cache_memory_follow_the_config():
    app = model_app("multi-head")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        model = app.session.model
        cfg = model.config
        tokens = context_tokens(app)
        t = len(tokens)
        groups = gqa_groups(cfg)
        assert groups == [(0, [0, 1]), (1, [2, 3])]
        text = text_of(screen, "#mh-gqa")
        assert "K/V head 0 ← query heads 0, 1" in text
        assert "K/V head 1 ← query heads 2, 3" in text
        # the mapping is what the model computes: head h scores against K/V head h // 2
        rec = fresh_trace(model, tokens).layers[0]
        for kv, heads in groups:
            for h in heads:
                expect = rec["q_rope"][h] @ rec["k_rope"][kv].T / math.sqrt(cfg.dim_head)
                np.testing.assert_allclose(rec["scores"][h], expect, atol=1e-4)
        # memory: the formula, and the model's own cache arrays
        fig = cache_figures(cfg, t)
        per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.dim_head * 4
        assert fig.per_token == per_token == 2048
        assert fig.per_token_full == 2 * cfg.num_hidden_layers * cfg.num_attention_heads * 32 * 4
        assert fig.saved == pytest.approx(0.5)
        cache = KVCache(cfg)
        forward(model, list(tokens), cache=cache)
        assert fig.now == cache.nbytes == t * per_token
        full = sum(layer._k.nbytes + layer._v.nbytes for layer in cache.layers)
        assert fig.at_context == full == cfg.max_position_embeddings * per_token
        for number in (f"= {fig.per_token:,} bytes", f"would need {fig.per_token_full:,} bytes",
                       "GQA saves 50%", f"{t} tokens: {fig.now:,} bytes (vs {fig.now_full:,})",
                       f"{fig.context} tokens: {fig.at_context:,} bytes "
                       f"(vs {fig.at_context_full:,})"):  # fmt: skip
            assert number in text, number


def test_pipeline_and_groups_for_another_config():
    cfg = LlamaConfig(vocab_size=100, hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                      max_position_embeddings=8192)  # fmt: skip
    groups = gqa_groups(cfg)
    assert groups[0] == (0, [0, 1, 2, 3]) and groups[-1] == (7, [28, 29, 30, 31])
    fig = cache_figures(cfg, 8192, bytes_per_value=2)
    assert fig.at_context == 2 * 32 * 8 * 128 * 8192 * 2 == 1_073_741_824  # Llama-3-8B, fp16
    assert fig.saved == pytest.approx(0.75)
    rows = pipeline(cfg, 10)
    assert rows[4].shapes == "[32×10×128]·[32×128×10] → [32×10×10]"


@requires_model
async def test_steps_reach_every_head():
    app = model_app("multi-head")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        t = len(context_tokens(app))
        await pilot.press("s")
        await settle(pilot)
        assert screen.snapshot.n_tokens == t + 1 and screen.query_pos == t
        check_maps(app, screen)
        app.goto_chapter("attention")  # step from chapter 8
        await settle(pilot)
        take_steps(app.screen)
        await settle(pilot)
        app.goto_chapter("multi-head")
        await settle(pilot)
        assert screen.snapshot.n_tokens == t + 2 and screen.query_pos == t + 1
        check_maps(app, screen)
        assert f"{t + 2} tokens:" in text_of(screen, "#mh-gqa")


@requires_model
@pytest.mark.parametrize(("prompt", "n_tokens"), [("", 1), ("the", 1), ("word " * 400, 255)])
async def test_short_and_long_contexts(prompt, n_tokens):
    app = model_app("multi-head", prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        assert screen.snapshot.n_tokens == n_tokens
        for _ in range(4):
            check_maps(app, screen)
            await pilot.press("x")
            await pilot.pause()
        if n_tokens == 1:
            assert "empty" in text_of(screen, "#mh-notice") or prompt
        else:
            assert "fell out of the window" in text_of(screen, "#mh-notice")
            text = render_plain(screen._maps[0])
            assert "r" in text and "/255" in text  # the compact note says which rows show
            await pilot.press("a")
            await pilot.pause()
            assert "as" in render_plain(screen._maps[0])  # "255×255 as …" blocks


async def test_without_a_model():
    app = LLMAnatomyApp(chapter="multi-head", session=make_session(PROMPT), load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("x", "l", "h", "up", "left", "e", "s", "a", "pagedown")
        await settle(pilot)
        assert screen.snapshot is None
        assert "once the model has loaded" in text_of(screen, "#mh-status")


@requires_model
async def test_tiny_terminal_and_resizing():
    app = model_app("multi-head")
    async with app.run_test(size=(40, 12)) as pilot:
        screen = await opened(pilot)
        for size in ((40, 12), (80, 24), (30, 8), (160, 45)):
            await pilot.resize_terminal(*size)
            await settle(pilot)
            await pilot.press("x", "up", "h", "pagedown")
            await settle(pilot)
        check_maps(app, screen)
        assert isinstance(screen.query_one("#mh-row"), MatrixView)


# -- snapshots (regenerate with --snapshot-update when the shipped model changes) -----------


@requires_model
async def test_a_prompt_edit_shows_the_new_prompts_attention_and_nothing_computing():
    """Edit the prompt by keys, wait for the app to settle: the maps are the new context's
    (a fresh traced forward pass of it), and nothing says it is computing."""
    app = model_app("multi-head")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        await edits_are_followed(pilot, screen, check_maps, "#mh-status")


@requires_model
def test_snapshot_80x24(snap_compare):
    """Four heads of layer 0 at the weights stage, at 80×24."""
    assert snap_compare(model_app("multi-head"), terminal_size=(80, 24), run_before=settle)


@requires_model
async def test_snapshot_masked_scores_120x40(request):
    """Masked scores of layer 1 at 120×40, head 2 selected, after one seeded step.

    A text snapshot with the numbers masked (see ``text_snapshot``): this screen prints
    rows of 4-decimal float32 scores, which no BLAS kernel reproduces to the last digit
    of another's. The scores are checked against the core in the tests above."""
    app = model_app("multi-head", seed=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await press_then_settle("s", "l", "h", "h", "X")(pilot)
        update = bool(request.config.getoption("--snapshot-update", default=False))
        assert_text_snapshot(app.export_screenshot(), "ch09_masked_scores_120x40", update)


@requires_model
def test_snapshot_shapes_and_gqa_80x24(snap_compare):
    """Scrolled down at 80×24: the pipeline with shapes and grouped-query attention."""
    assert snap_compare(
        model_app("multi-head"),
        terminal_size=(80, 24),
        run_before=press_then_settle("pagedown", "pagedown"),
    )
