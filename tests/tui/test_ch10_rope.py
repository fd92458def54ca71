"""Chapter 10 (RoPE) driven by keys: the selection moves, and every number shown is the
model's own (trace scores, rotation tables), on anatomy-mini and on another shape."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from attention_helpers import PROMPT, context_tokens, fresh_trace, model_app, requires_model
from rich.console import Console
from textual.widgets import Static
from tui_helpers import make_model_session, make_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.c10_rope import RopeScreen
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import init_random


async def settled(pilot) -> RopeScreen:  # noqa: ANN001
    await pilot.app.wait_until_settled()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RopeScreen)
    return screen


def text_of(screen, selector: str, width: int = 120) -> str:  # noqa: ANN001
    """What a Static shows, as plain text (its Rich content rendered without colour)."""
    content = screen.query_one(selector, Static).content
    if isinstance(content, str):
        return content
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(content)
    return console.export_text()


def check_view(app, screen: RopeScreen) -> None:  # noqa: ANN001
    """The proof's model row is the trace's score for the selected pair; the shift holds."""
    view = screen.view
    assert view is not None
    sel = view.selection
    tokens = context_tokens(app)
    assert screen.tokens == tokens
    rec = fresh_trace(app.session.model, tokens).layers[sel.layer]
    group = app.session.model.config.group_size
    assert view.kv_head == sel.head // group
    if len(tokens) < 2:
        assert view.proof is None
        return
    p = view.proof
    traced = float(rec["scores"][sel.head, sel.query, sel.key])
    assert math.isclose(p.score_rope, traced, rel_tol=1e-4, abs_tol=1e-5)
    assert p.shift_difference < 1e-9
    q = rec["q"][sel.head, sel.query].astype(np.float64)
    k = rec["k"][view.kv_head, sel.key].astype(np.float64)
    assert math.isclose(p.score_raw, float(q @ k) / math.sqrt(view.head_dim), rel_tol=1e-6)


@requires_model
async def test_every_control_by_keys():
    app = model_app("rope")
    cfg = None
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await settled(pilot)
        cfg = app.session.model.config
        n = len(screen.tokens)
        sel = screen.view.selection
        assert sel.query == n - 1 and sel.position == n - 1  # the newest token, arrows on it
        check_view(app, screen)
        proof = text_of(screen, "#rope-proof")
        assert "< 1e-6" in proof and "what the model computes" in proof
        half = app.session.model.config.dim_head // 2
        assert f"({half} rows; scroll to see them all)" in text_of(screen, "#rope-freq-title")

        async def press(key: str):  # noqa: ANN202
            await pilot.press(key)
            return (await settled(pilot)).view.selection

        s = await press("M")
        assert s.query == n - 2 and s.position == n - 2  # arrows follow the query
        s = await press("m")
        assert s.query == n - 1
        k0 = s.key
        assert (await press("k")).key == k0 + 1
        assert (await press("K")).key == k0
        sh = s.shift
        assert (await press("o")).shift == sh + 1
        assert (await press("O")).shift == sh
        assert (await press("full_stop")).position == n
        assert (await press("comma")).position == n - 1
        assert (await press("greater_than_sign")).position == n + 9
        assert (await press("less_than_sign")).position == n - 1
        await press("full_stop")
        assert (await press("r")).position == s.query
        for _ in range(cfg.num_hidden_layers + 2):
            s = await press("l")
            check_view(app, screen)
        assert s.layer == cfg.num_hidden_layers - 1  # stops at the last layer
        assert (await press("L")).layer == cfg.num_hidden_layers - 2
        for _ in range(cfg.num_attention_heads + 2):
            s = await press("h")
        assert s.head == cfg.num_attention_heads - 1
        check_view(app, screen)
        for _ in range(cfg.num_attention_heads + 2):
            s = await press("H")
        assert s.head == 0
        # the arrows' captions follow the position: turned = position × speed (mod 360°)
        dials = screen.view.dials
        speed = app.session.model.config.rope_theta**0  # pair 0 turns 1 rad per token
        assert dials[0].pair == 0
        turned = float(dials[0].caption[2].split()[1].rstrip("°"))
        assert math.isclose(turned, math.degrees(s.position * speed) % 360, abs_tol=0.06)


@requires_model
async def test_positions_past_the_context_are_held_at_its_end():
    long = "The cat sat on the mat. " * 60  # cut to the last 255 tokens of the window
    app = model_app("rope", prompt=long)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        ctx = app.session.model.config.max_position_embeddings
        assert len(screen.tokens) == ctx - 1
        await pilot.press("greater_than_sign", "greater_than_sign", "o", "o", "o", "o")
        screen = await settled(pilot)
        sel = screen.view.selection
        assert sel.position == ctx - 1  # the arrows stop at the last position
        assert max(sel.query, sel.key) + sel.shift == ctx - 1  # so does the shift
        assert screen.view.at_window_end
        assert f"position {ctx - 1} (the window's end)" in text_of(screen, "#rope-dials")
        check_view(app, screen)
    app = model_app("rope")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        await pilot.press(*["K"] * (len(screen.tokens) + 2), "O", "O", "O", "O", "O")
        sel = (await settled(pilot)).view.selection
        assert sel.key == 0 and sel.shift == 0  # key at 0: no shift below zero
        await pilot.press(*["comma"] * (sel.position + 3))
        assert (await settled(pilot)).view.selection.position == 0


@requires_model
@pytest.mark.parametrize("prompt", ["", "The"])
async def test_one_token_has_no_pair_to_compare(prompt):
    app = model_app("rope", prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert len(screen.tokens) == 1
        assert "no pair to compare" in text_of(screen, "#rope-proof")
        await pilot.press("k", "m", "o", "l", "h")
        screen = await settled(pilot)
        assert screen.view.proof is None and screen.view.freq_rows
        assert app.session.prompt == prompt


@requires_model
async def test_prompt_edits_and_long_prompts_follow():
    app = model_app("rope")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        await pilot.press("slash", *"  and then", "escape")
        screen = await settled(pilot)
        assert app.session.prompt == PROMPT + "  and then"
        check_view(app, screen)
        long = "The cat sat on the mat. " * 60  # > the 256-token window: the worker runs
        screen.set_prompt(long)
        screen = await settled(pilot)
        assert len(screen.tokens) == app.session.model.config.max_position_embeddings - 1
        assert screen.query_one("#rope-notice", Static).display
        check_view(app, screen)


async def test_another_shape_and_no_model():
    """3 layers, 6 query heads over 3 K/V heads of width 12, θ 500: nothing assumes
    anatomy-mini's sizes."""
    cfg = LlamaConfig(vocab_size=8193, hidden_size=48, intermediate_size=40,
                      num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=3,
                      head_dim=12, max_position_embeddings=40, rope_theta=500.0)  # fmt: skip
    session = make_model_session(PROMPT, model=init_random(cfg, seed=5))
    app = LLMAnatomyApp(chapter="rope", session=session, load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert len(screen.view.freq_rows) == 6
        await pilot.press("l", "l", "l", "h", "h", "h", "h", "h", "h", "k", "o")
        screen = await settled(pilot)
        assert (screen.view.selection.layer, screen.view.selection.head) == (2, 5)
        check_view(app, screen)
    app = LLMAnatomyApp(chapter="rope", session=make_session(PROMPT), load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        await pilot.press("m", "l", "o", "full_stop")
        screen = await settled(pilot)
        assert screen.view is None
        assert "Waiting" in text_of(screen, "#rope-status")


# -- snapshots (update with ``pytest --snapshot-update``) --------------------------------


async def _settle(pilot) -> None:  # noqa: ANN001
    await settled(pilot)


def _keys_then_settle(*keys: str):  # noqa: ANN202
    async def run(pilot) -> None:  # noqa: ANN001
        await settled(pilot)
        await pilot.press(*keys)
        await settled(pilot)

    return run


@requires_model
def test_snapshot_80x24(snap_compare):
    assert snap_compare(model_app("rope"), terminal_size=(80, 24), run_before=_settle)


@requires_model
def test_snapshot_proof_120x40(snap_compare):
    """Layer 1, head 2, key moved back, shifted by 5: the proof in view."""
    assert snap_compare(
        model_app("rope"),
        terminal_size=(120, 40),
        run_before=_keys_then_settle("l", "h", "h", "K", "K", "o", "o", *["down"] * 9),
    )


@requires_model
def test_snapshot_no_color_80x24(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(
        model_app("rope"), terminal_size=(80, 24), run_before=_keys_then_settle("pagedown")
    )


@requires_model
async def test_a_new_model_replaces_the_vectors():
    from llm_anatomy_tui.chapters.base import SessionChanged

    app = model_app("rope")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        cfg = LlamaConfig(vocab_size=8193, hidden_size=24, intermediate_size=40,
                          num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
                          max_position_embeddings=64, rope_theta=99.0)  # fmt: skip
        app.session.model = init_random(cfg, seed=3)
        screen = app.screen
        screen.post_message(SessionChanged(frozenset({"model"})))
        screen = await settled(pilot)
        assert screen.view.head_dim == 8 and len(screen.view.freq_rows) == 4
        check_view(app, screen)
