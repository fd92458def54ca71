"""Chapter 11 (transformer block) driven by keys: the lens shown is the core's lens of the
current context, its last stage is the model's real output, generated tokens become new
positions, and every part of the diagram opens the right chapter."""

from __future__ import annotations

import io

import numpy as np
from attention_helpers import PROMPT, context_tokens, fresh_trace, model_app, requires_model
from rich.console import Console
from textual.widgets import Static
from tui_helpers import make_model_session, make_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.c11_block import BlockScreen
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.logit_lens import block_lens
from llm_anatomy_tui.core.model import init_random
from llm_anatomy_tui.views.block_view import BLOCK_PARTS


async def settled(pilot) -> BlockScreen:  # noqa: ANN001
    await pilot.app.wait_until_settled()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, BlockScreen)
    return screen


def text_of(screen, selector: str, width: int = 120) -> str:  # noqa: ANN001
    content = screen.query_one(selector, Static).content
    if isinstance(content, str):
        return content
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(content)
    return console.export_text()


def check_lens(app, screen: BlockScreen) -> None:  # noqa: ANN001
    """The lens is that of the current context; the last stage is the real output; the
    norms are the trace's; the rows shown are the lens at the selected position."""
    model = app.session.model
    tokens = context_tokens(app)
    lens = screen.lens
    assert lens is not None and lens.tokens == tokens == screen.tokens
    trace = fresh_trace(model, tokens)
    assert np.array_equal(lens.final_ids, trace.logits.argmax(axis=-1))
    z = trace.logits.astype(np.float64)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)  # the model's real next-token distribution
    np.testing.assert_allclose(lens.top_probs[-1, :, 0], p.max(axis=-1), rtol=1e-4)
    np.testing.assert_allclose(lens.p_final[-1], p.max(axis=-1), rtol=1e-4)
    assert np.all(lens.kl[-1] == 0) and np.all(lens.rank_final[-1] == 0)
    for i, rec in enumerate(trace.layers):
        ref_attn = np.linalg.norm(rec["resid_attn"].astype(np.float64), axis=-1)
        ref_ffn = np.linalg.norm(rec["resid_ffn"].astype(np.float64), axis=-1)
        np.testing.assert_allclose(lens.norms[2 * i + 1], ref_attn, rtol=1e-4)
        np.testing.assert_allclose(lens.norms[2 * i + 2], ref_ffn, rtol=1e-4)
    t = screen.position
    assert 0 <= t < len(tokens)
    assert [r.norm for r in screen.rows] == [float(x) for x in lens.norms[:, t]]
    assert [r.kl for r in screen.rows] == [float(x) for x in lens.kl[:, t]]
    shown = text_of(screen, "#block-lens")
    assert shown.count("\n") >= len(lens.stages)
    for row in screen.rows:
        assert row.stage in shown and f"{row.norm:.2f}" in shown


@requires_model
async def test_lens_position_keys_and_parts():
    app = model_app("block")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await settled(pilot)
        n = len(screen.tokens)
        assert screen.position == n - 1  # the newest position first
        check_lens(app, screen)
        cfg = app.session.model.config
        assert len(screen.rows) == 1 + 2 * cfg.num_hidden_layers
        await pilot.press("comma")
        screen = await settled(pilot)
        assert screen.position == n - 2
        check_lens(app, screen)
        await pilot.press("less_than_sign", "less_than_sign")
        assert (await settled(pilot)).position == max(0, n - 22)
        await pilot.press("greater_than_sign")
        assert (await settled(pilot)).position == min(n - 1, max(0, n - 22) + 10)
        await pilot.press("full_stop")
        assert (await settled(pilot)).position == min(n - 1, max(0, n - 22) + 11)
        await pilot.press("e")
        assert (await settled(pilot)).position == n - 1
        await pilot.press("full_stop")  # held at the last position
        assert (await settled(pilot)).position == n - 1
        # the diagram: every part in turn, its shapes for this model and context
        start = screen.part
        for k in range(len(BLOCK_PARTS)):
            await pilot.press("b")
            part = BLOCK_PARTS[(start + k + 1) % len(BLOCK_PARTS)]
            detail = text_of(await settled(pilot), "#block-part")
            assert part.role.split()[0] in detail
            assert f"[{n}, {cfg.hidden_size}]" in detail
        await pilot.press("B")
        assert (await settled(pilot)).part == (start - 1) % len(BLOCK_PARTS)


@requires_model
async def test_go_opens_the_explaining_chapter():
    app = model_app("block")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert BLOCK_PARTS[screen.part].chapter == 8
        await pilot.press("g")
        await pilot.pause()
        assert app.screen.chapter.number == 8
        await pilot.press("1", "1")
        await pilot.pause(0.8)
        screen = await settled(pilot)
        while BLOCK_PARTS[screen.part].chapter is not None:
            await pilot.press("b")
        await pilot.press("g")  # explained here: a note, and we stay
        assert (await settled(pilot)).chapter.number == 11


@requires_model
async def test_generated_tokens_become_positions():
    app = model_app("block")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        n = len(screen.tokens)
        await pilot.press("s")
        screen = await settled(pilot)
        assert len(screen.tokens) == n + 1 and screen.position == n
        check_lens(app, screen)
        # the grown lens equals one computed from scratch on the same tokens
        fresh = block_lens(app.session.model, screen.tokens)
        np.testing.assert_allclose(screen.lens.p_final, fresh.p_final, rtol=1e-4, atol=1e-6)
        await pilot.press("comma", "s")  # moved away: the cursor stays where it was put
        screen = await settled(pilot)
        assert len(screen.tokens) == n + 2 and screen.position == n - 1
        check_lens(app, screen)
        text = text_of(screen, "#block-position")
        assert f"Position {n - 1} of 0..{n + 1}" in text


@requires_model
async def test_long_prompt_runs_in_a_worker_and_says_it_scrolls():
    long = "The cat sat on the mat and looked at the dog. " * 40
    app = model_app("block", prompt=long)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        ctx = app.session.model.config.max_position_embeddings
        assert len(screen.tokens) == ctx - 1
        assert screen.query_one("#block-notice", Static).display
        check_lens(app, screen)
        await pilot.press("s")  # fills the window
        screen = await settled(pilot)
        assert len(screen.tokens) == ctx
        check_lens(app, screen)
        await pilot.press("s")  # the window is full: a message, no traceback
        screen = await settled(pilot)
        assert len(screen.tokens) == ctx
        assert "stopped" in text_of(screen, "#block-status") + text_of(screen, "#block-notice")


@requires_model
async def test_one_token_and_empty_prompts():
    for prompt in ("The", ""):
        app = model_app("block", prompt=prompt)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await settled(pilot)
            assert len(screen.tokens) == 1 and screen.position == 0
            check_lens(app, screen)
            await pilot.press("comma", "full_stop", "b", "B")
            screen = await settled(pilot)
            assert screen.position == 0
            assert app.session.prompt == prompt


async def test_another_shape_and_no_model():
    cfg = LlamaConfig(vocab_size=8193, hidden_size=36, intermediate_size=50,
                      num_hidden_layers=5, num_attention_heads=6, num_key_value_heads=2,
                      max_position_embeddings=30, rope_theta=300.0)  # fmt: skip
    session = make_model_session(PROMPT, model=init_random(cfg, seed=9))
    app = LLMAnatomyApp(chapter="block", session=session, load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert len(screen.rows) == 11
        check_lens(app, screen)
        assert "(11 rows; scroll to see them all)" in text_of(screen, "#block-lens-title")
        table = text_of(screen, "#block-scale")
        first = table.splitlines()[1]
        assert "▶" in first and " 5 " in first and "36" in first and "50" in first
    app = LLMAnatomyApp(chapter="block", session=make_session(PROMPT), load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        await pilot.press("full_stop", "s", "b", "g")
        screen = await settled(pilot)
        assert screen.lens is None
        assert "Llama-3-8B" in text_of(screen, "#block-scale")


# -- snapshots ----------------------------------------------------------------------------


def _keys_then_settle(*keys: str):  # noqa: ANN202
    async def run(pilot) -> None:  # noqa: ANN001
        await settled(pilot)
        await pilot.press(*keys)
        await settled(pilot)

    return run


@requires_model
def test_snapshot_80x24(snap_compare):
    assert snap_compare(model_app("block"), terminal_size=(80, 24),
                        run_before=_keys_then_settle(*["down"] * 14))  # fmt: skip


@requires_model
def test_snapshot_lens_120x40(snap_compare):
    assert snap_compare(model_app("block"), terminal_size=(120, 40),
                        run_before=_keys_then_settle("comma", "b", *["down"] * 10))  # fmt: skip


@requires_model
def test_snapshot_no_color_80x24(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(model_app("block"), terminal_size=(80, 24),
                        run_before=_keys_then_settle("b", "b"))  # fmt: skip


@requires_model
async def test_a_new_model_replaces_the_lens():
    from llm_anatomy_tui.chapters.base import SessionChanged

    app = model_app("block")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        old = screen.lens
        cfg = LlamaConfig(vocab_size=8193, hidden_size=24, intermediate_size=40,
                          num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
                          max_position_embeddings=64)  # fmt: skip
        app.session.model = init_random(cfg, seed=3)
        screen.post_message(SessionChanged(frozenset({"model"})))
        screen = await settled(pilot)
        assert screen.lens is not old and len(screen.rows) == 5
        check_lens(app, screen)
