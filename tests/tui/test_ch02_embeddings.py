"""Chapter 2 (embeddings) driven by keys; every number checked against the weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ch234_helpers import PROMPT, app_for, odd_model, settled, text_of, type_text

from llm_anatomy_tui.chapters.c02_embeddings import EmbeddingsScreen
from llm_anatomy_tui.core.model import Trace, forward
from llm_anatomy_tui.views.embeddings import TOKEN_SETS


def brute_neighbours(embed: np.ndarray, q: int, k: int) -> list[tuple[int, float]]:
    """A plain loop over every row of the vocabulary."""
    a = embed[q].astype(np.float64)
    na = math.sqrt(float(a @ a))
    sims = []
    for i in range(embed.shape[0]):
        if i == q:
            continue
        b = embed[i].astype(np.float64)
        nb = math.sqrt(float(b @ b))
        sims.append((i, float(a @ b) / (na * nb) if na and nb else 0.0))
    sims.sort(key=lambda p: (-p[1], p[0]))
    return sims[:k]


async def test_lookup_row_norm_and_token_keys():
    app = app_for("embeddings")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, EmbeddingsScreen)
        model = app.session.model
        ids = app.session.encoding("model").encode_ordinary(PROMPT)
        weight = model.tensors()["model.embed_tokens.weight"]
        for presses in (0, 2, 1, -4):
            key = "full_stop" if presses > 0 else "comma"
            await pilot.press(*[key] * abs(presses))
            await settled(pilot)
            sel = screen.shown.selected
            assert screen.shown.ids == tuple(ids)
            assert np.array_equal(screen.shown.row, weight[ids[sel]])
            norm = float(np.linalg.norm(weight[ids[sel]].astype(np.float64)))
            assert f"norm |e| = {norm:.4f}" in text_of(screen, "#e-norm")
            lookup = text_of(screen, "#e-lookup")
            assert f"[{model.config.vocab_size:,} × {model.config.hidden_size}]" in lookup
            assert f"ID {ids[sel]:>6} → row {ids[sel]:>6}" in lookup
        assert screen.shown.selected == (0 + 2 + 1 - 4) % len(ids)
        await pilot.press("v")
        assert screen.query_one("#e-strip").show_values


async def test_neighbours_of_typed_word_match_a_loop():
    app = app_for("embeddings")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        embed = app.session.model.embed
        await pilot.press("l")
        await type_text(pilot, " bank")
        await pilot.press("enter")
        await settled(pilot)
        bank = app.session.encoding("model").encode_ordinary(" bank")
        assert len(bank) == 1
        nb = screen.shown.neighbours
        ref = brute_neighbours(embed, bank[0], 10)
        assert nb.query == bank[0] and nb.vocab == embed.shape[0]
        assert nb.ids.tolist() == [i for i, _ in ref]
        np.testing.assert_allclose(nb.similarities, [s for _, s in ref], atol=1e-9)
        shown = text_of(screen, "#e-neighbours")
        for i, s in ref:
            assert f"ID {i:>6}  {s:+.3f}" in shown
        # a word of several tokens: say which, look up the first
        await pilot.press("l", "ctrl+a", "ctrl+k")
        await type_text(pilot, " unbelievable")
        await pilot.press("enter")
        await settled(pilot)
        assert "is 6 tokens here" in text_of(screen, "#e-neighbours")
        assert screen.shown.neighbours.query == screen.shown.lookup.ids[0]
        # an empty word: back to the selected prompt token
        await pilot.press("l", "ctrl+a", "ctrl+k", "enter")
        await settled(pilot)
        assert screen.shown.neighbours.query == screen.shown.ids[screen.shown.selected]


async def test_two_contexts_same_row_then_different():
    app = app_for("embeddings")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        model, enc = app.session.model, app.session.encoding("model")
        view = screen.shown.contexts
        r = view.result
        assert r.label == "·bank"
        assert r.start_diff == 0.0
        traces = []
        for ids, pos in ((view.ids_a, r.position_a), (view.ids_b, r.position_b)):
            t = Trace()
            forward(model, list(ids), trace=t)
            traces.append(t.layers[-1]["resid_ffn"][pos].astype(np.float64))
        a, b = traces
        assert r.end_cosine == pytest.approx(
            a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-6
        )
        assert f"cosine {r.end_cosine:.3f}" in text_of(screen, "#e-contexts")
        first = r.token
        await pilot.press("w")
        await settled(pilot)
        assert screen.shown.contexts.result.token != first
        # sentence A rewritten to share nothing with B
        await pilot.press("a", "ctrl+a", "ctrl+k")
        await type_text(pilot, "Zzz!")
        await pilot.press("enter")
        await settled(pilot)
        assert enc.encode_ordinary("Zzz!")
        assert "share no token" in text_of(screen, "#e-contexts")
        await pilot.press("a", "ctrl+a", "ctrl+k", "enter")
        await settled(pilot)
        assert "need some text" in text_of(screen, "#e-contexts")


async def test_projection_sets_and_variance_match_svd():
    app = app_for("embeddings")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        embed = app.session.model.embed
        for i in range(len(TOKEN_SETS)):
            ts = screen.shown.token_set
            assert ts.name == TOKEN_SETS[i]
            p = screen.shown.projection
            x = embed[list(ts.ids)].astype(np.float64)
            s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
            share = s**2 / np.sum(s**2)
            np.testing.assert_allclose(p.explained, share[:2], rtol=1e-8)
            assert f"axis 1 explains {share[0] * 100:.1f}%" in text_of(screen, "#e-pca")
            await pilot.press("s")
            await settled(pilot)
        assert screen.shown.token_set.name == TOKEN_SETS[0]


async def test_tied_head_note_and_scale_table():
    app = app_for("embeddings")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        assert "Tied head" in text_of(app.screen, "#e-head")
        table = text_of(app.screen, "#e-scale")
        assert "anatomy-mini (loaded)" in table and "Llama 3 8B" in table and "128,256" in table


@pytest.mark.parametrize("prompt", ["", "a", "\x07", "\u200b\u200b"])
async def test_awkward_prompts_never_break(prompt):
    app = app_for("embeddings", prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert len(screen.shown.ids) >= 1
        assert np.array_equal(screen.shown.row, app.session.model.embed[screen.shown.ids[0]])
        await pilot.press("full_stop", "comma", "s", "w")
        await settled(pilot)
        if prompt == "":
            assert "prompt is empty" in text_of(screen, "#e-lookup")
        assert app.session.prompt == prompt


async def test_other_model_sizes():
    app = app_for("embeddings", model=odd_model())
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert "[8,193 × 24]" in text_of(screen, "#e-lookup")
        assert screen.shown.row.shape == (24,)
        assert screen.shown.neighbours.vocab == 8193
        assert "odd-random (loaded)" in text_of(screen, "#e-scale")


async def test_prompt_edit_by_keys_follows():
    app = app_for("embeddings", prompt="A")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        await pilot.press("slash", "end")
        await type_text(pilot, " cat")
        await pilot.press("escape")
        await settled(pilot)
        ids = app.session.encoding("model").encode_ordinary("A cat")
        assert app.screen.shown.ids == tuple(ids)
