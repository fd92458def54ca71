"""Chapter 8 (Attention: Q, K, V) driven by keys: the toy's numbers, and the real model's
weights checked against a fresh traced forward pass."""

from __future__ import annotations

import re

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
    render_with_layout,
    requires_model,
    text_of,
)
from textual.widgets import Static
from tui_helpers import generation_op, make_session, settle, take_steps

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.c08_attention import AttentionScreen, Map, Strip
from llm_anatomy_tui.core.lessons import toy_attention as toy
from llm_anatomy_tui.views.readout import check_softmax_text
from llm_anatomy_tui.widgets.colors import MASK_GLYPH
from llm_anatomy_tui.widgets.heatmap import ROW_MARK


def table_rows(text: str) -> dict[str, list[str]]:
    """The toy table's word rows: word -> [q·k, ÷√4, weight] as printed (vectors dropped)."""
    rows = {}
    for line in text.splitlines():
        parts = re.sub(r"\[[^\]]*\]", " ", line).split()
        if parts and parts[0] in toy.WORDS and "[" in line:
            rows[parts[0]] = parts[1:]
    return rows


# -- the toy ------------------------------------------------------------------------------------


async def test_toy_numbers_shown_are_the_lessons():
    app = LLMAnatomyApp(chapter="attention", session=make_session(PROMPT), load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        assert "toy example" in text_of(screen, "#toy-title")
        for presses, causal in ((0, False), (3, False), (1, True), (5, True)):
            for _ in range(presses):
                await pilot.press("right")
            if causal != screen.toy_causal:
                await pilot.press("c")
            await pilot.pause()
            r = toy.attend(screen.toy_query, screen.toy_causal)
            text = text_of(screen, "#toy-table")
            assert f"q({r.word}) = x·Wq = [" in text
            rows = table_rows(text)
            for j, word in enumerate(toy.WORDS):
                cells = rows[word]
                if r.visible[j]:
                    assert cells[0] == f"{r.dots[j]:.2f}"
                    assert cells[1] == f"{r.scaled[j]:.3f}"
                    assert cells[2] == f"{r.weights[j] * 100:.1f}%"
                    # the weight is the softmax of the printed scaled scores
                    shown = np.array(
                        [
                            float(x)
                            for x in np.asarray(
                                [
                                    rows[w][1]
                                    for w, ok in zip(toy.WORDS, r.visible, strict=True)
                                    if ok
                                ]
                            )
                        ]
                    )
                    expect = np.exp(shown - shown.max()) / np.exp(shown - shown.max()).sum()
                    k = int(np.flatnonzero(r.visible).tolist().index(j))
                    assert f"{expect[k] * 100:.1f}%" == cells[2]
                else:
                    assert "masked" in cells
            assert f"= [{' '.join(f'{v:5.2f}' for v in r.output)}]" in text
            assert f"“{r.word}” looks most at “{toy.WORDS[r.top]}”" in text
            shown_sum = sum(
                float(w.rstrip("%"))
                for w in (rows[w][2] for w, ok in zip(toy.WORDS, r.visible, strict=True) if ok)
            )
            if f"{shown_sum:.1f}" != "100.0":
                assert f"the rounded figures above: {shown_sum:.1f}%" in text
            else:
                assert "add up to 100%" in text


async def test_toy_story_and_sentence_marks_the_query():
    app = LLMAnatomyApp(chapter="attention", session=make_session(PROMPT), load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert toy.WORDS[screen.toy_query] == "it"
        assert "[it]" in text_of(screen, "#toy-sentence")
        assert "“it” looks most at “car”" in text_of(screen, "#toy-table")
        for _ in range(len(toy.WORDS) - toy.WORDS.index("it") + 1):  # wraps round to "blue"
            await pilot.press("right")
        assert toy.WORDS[screen.toy_query] == "blue"
        assert "“blue” looks most at “car”" in text_of(screen, "#toy-table")
        await pilot.press("c")  # causal: car is in blue's future
        assert "“blue” looks most at “blue”: 86.7% (itself)" in text_of(screen, "#toy-table")
        await pilot.press("left")
        assert toy.WORDS[screen.toy_query] == "A"


# -- the real model -----------------------------------------------------------------------------


async def open_model_part(pilot) -> AttentionScreen:  # noqa: ANN001
    await settle(pilot)
    await pilot.press("m")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AttentionScreen) and screen.part == "model"
    return screen


checked: list[int] = []
"""How many masked cells each check found drawn as masked (so a test can see it ran)."""


def check_against_trace(app, screen: AttentionScreen) -> None:  # noqa: ANN001
    """What the screen shows is the model's own trace for its layer, head and query."""
    model = app.session.model
    tokens = context_tokens(app)
    trace = fresh_trace(model, tokens)
    rec = trace.layers[screen.layer_i]
    h, q = screen.head_i, screen.query_pos
    heatmap = screen.query_one("#attn-map", Map)
    t = len(tokens)
    assert heatmap.values.shape == (t, t)
    np.testing.assert_allclose(heatmap.values, rec["weights"][h], atol=1e-6)
    assert_rows_are_distributions(heatmap.values)
    np.testing.assert_array_equal(heatmap.mask, ~rec["mask"])  # True = masked for the widget
    assert heatmap.cursor == (q, screen.key_pos)
    np.testing.assert_allclose(screen.query_one("#attn-q", Strip).values,
                               rec["q_rope"][h, q], atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(screen.query_one("#attn-out", Strip).values,
                               rec["heads"][h, q], atol=1e-5)  # fmt: skip
    # the key table: scores are the trace's, weights exp(score − normaliser) as printed
    table = screen.key_rows
    assert table is not None and table.n_keys == q + 1
    for row in table.rows:
        assert float(row.score) == pytest.approx(float(rec["scores"][h, q, row.position]),
                                                 abs=6e-5)  # fmt: skip
        assert float(row.weight.rstrip("%")) / 100 == pytest.approx(
            float(rec["weights"][h, q, row.position]), abs=1e-4
        )
    assert check_softmax_text([r.score for r in table.rows], [r.weight for r in table.rows],
                              table.lse) == []  # fmt: skip
    shown = sum(float(r.weight.rstrip("%")) for r in table.rows)
    if table.rest_count:
        others = [i for i in range(q + 1) if i not in {r.position for r in table.rows}]
        true_rest = float(rec["weights"][h, q, others].sum())
        assert float(table.rest_weight.rstrip("%")) / 100 == pytest.approx(true_rest, abs=1e-4)
        shown += float(table.rest_weight.rstrip("%"))
    detail = text_of(screen, "#attn-query")
    if screen.key_pos <= q:  # the selected key's line reads out like the table
        score, weight = detail.split(": score ")[1].split(" → ")
        assert check_softmax_text([score], [weight], table.lse) == []
        assert float(score) == pytest.approx(float(rec["scores"][h, q, screen.key_pos]), abs=6e-5)
    keys_text = text_of(screen, "#attn-keys")
    if f"{shown:.2f}" != "100.00":
        assert f"rounded, these add to {shown:.2f}%" in keys_text
    else:
        assert "rounded" not in keys_text
    # future keys are drawn as masked in the query's row (when the grid is drawn cell by cell)
    text, drawn = render_with_layout(heatmap)
    lay = drawn.last_layout
    if lay.block_rows == 1 and lay.block_cols == 1 and lay.row_start <= q < lay.row_stop:
        row_line = next(line for line in text.splitlines() if line.startswith(ROW_MARK))
        cells = row_line[1 + lay.label_width + 1 :]
        future = max(0, lay.col_stop - max(q + 1, lay.col_start))
        key = screen.key_pos
        on_cursor = 1 if (key > q and lay.col_start <= key < lay.col_stop) else 0  # drawn ◆
        assert cells.count(MASK_GLYPH) == future - on_cursor
        checked.append(future)


@requires_model
async def test_every_model_control_by_keys_shows_the_trace():
    app = model_app("attention")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_model_part(pilot)
        t = len(context_tokens(app))
        assert screen.query_pos == t - 1  # the newest token is the default query
        check_against_trace(app, screen)
        for key, check in (
            ("up", lambda: screen.query_pos == t - 2),
            ("up", lambda: screen.query_pos == t - 3),
            ("left", lambda: True),
            ("home", lambda: screen.key_pos == 0),
            ("end", lambda: screen.key_pos == screen.query_pos),
            ("right", lambda: screen.key_pos == screen.query_pos + 1),  # a future key
            ("l", lambda: screen.layer_i == 1),
            ("l", lambda: screen.layer_i == 2),
            ("L", lambda: screen.layer_i == 1),
            ("h", lambda: screen.head_i == 1),
            ("h", lambda: screen.head_i == 2),
            ("H", lambda: screen.head_i == 1),
            ("down", lambda: screen.query_pos == t - 2),
            ("e", lambda: screen.query_pos == t - 1),
            ("a", lambda: screen.query_one("#attn-map", Map).overflow == "aggregate"),
            ("a", lambda: screen.query_one("#attn-map", Map).overflow == "scroll"),
            ("v", lambda: True),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert check(), key
            check_against_trace(app, screen)
        assert any(checked), "masked cells were seen drawn as masked"
        detail = text_of(screen, "#attn-query")
        assert f"query {screen.query_pos}" in detail
        status = text_of(screen, "#model-status")
        assert "head 1 → K/V head 0" in status


@requires_model
async def test_future_key_is_reported_as_masked_and_heads_wrap():
    app = model_app("attention")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_model_part(pilot)
        await pilot.press("up", "end", "right")
        assert "masked (weight 0)" in text_of(screen, "#attn-query")
        for _ in range(4):
            await pilot.press("h")
        assert screen.head_i == 0
        for _ in range(4):
            await pilot.press("l")
        assert screen.layer_i == 0
        check_against_trace(app, screen)


@requires_model
async def test_a_step_here_and_elsewhere_adds_the_newest_row():
    app = model_app("attention")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_model_part(pilot)
        t = len(context_tokens(app))
        await pilot.press("s")  # step from this chapter
        await settle(pilot)
        assert screen.snapshot.n_tokens == t + 1
        assert screen.query_pos == t  # follows the newest token
        check_against_trace(app, screen)

        app.goto_chapter("tokenization")  # a step taken in another chapter …
        await settle(pilot)
        take_steps(app.screen, 2)
        await settle(pilot)
        other = app.session.current_generation
        app.goto_chapter("attention")  # … shows here when it is opened again
        await settle(pilot)
        assert screen.snapshot.tokens == tuple(other.tokens)
        assert screen.query_pos == t + 2
        check_against_trace(app, screen)

        # an op submitted while this chapter is shown (like chapter 5's branch): rewind
        def rewind(gen):  # noqa: ANN001, ANN202
            gen.rewind(1)

        generation_op(screen, rewind)
        await settle(pilot)
        assert screen.snapshot.n_tokens == t + 1
        check_against_trace(app, screen)


@requires_model
async def test_a_query_picked_by_hand_stays_when_a_step_arrives():
    app = model_app("attention")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_model_part(pilot)
        await pilot.press("up", "up")
        picked = screen.query_pos
        take_steps(screen)
        await settle(pilot)
        assert screen.query_pos == picked
        check_against_trace(app, screen)


@requires_model
@pytest.mark.parametrize(
    ("prompt", "notice", "n_tokens"),
    [
        ("", "The prompt is empty", 1),
        ("the", "", 1),
        ("word " * 400, "fell out of the window", 255),
    ],
)
async def test_empty_one_token_and_overlong_prompts(prompt, notice, n_tokens):
    app = model_app("attention", prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_model_part(pilot)
        assert screen.snapshot.n_tokens == n_tokens
        text = text_of(screen, "#model-notice")
        if notice:
            assert notice in text and screen.query_one("#model-notice").display
        else:
            assert not screen.query_one("#model-notice").display
        check_against_trace(app, screen)
        if n_tokens == 1:
            assert screen.query_one("#attn-map", Map).values.tolist() == [[1.0]]
        if n_tokens == 255:  # step to the full window, then one more: a clear message
            await pilot.press("s")
            await settle(pilot)
            assert screen.snapshot.n_tokens == 256
            check_against_trace(app, screen)
            await pilot.press("s")
            await settle(pilot)
            assert "stopped" in text_of(screen, "#model-notice")
            heatmap = screen.query_one("#attn-map", Map)
            assert "rows" in render_plain(heatmap)  # a window of 256 rows, and says so
            await pilot.press("a")
            await pilot.pause()
            assert "blocks" in render_plain(heatmap)


async def test_without_a_model_the_toy_works_and_the_base_explains():
    app = LLMAnatomyApp(chapter="attention", session=make_session(PROMPT), load_resources=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        notice = screen.query_one("#resource-notice", Static)
        assert notice.display and "No model found in" in str(notice.content)
        await pilot.press("right", "c", "m", "up", "l", "h", "s", "e", "home", "end")
        await settle(pilot)
        assert screen.snapshot is None
        assert "once it has loaded" in text_of(screen, "#model-status")


@requires_model
@pytest.mark.parametrize("size", [(40, 12), (60, 20), (160, 45)])
async def test_small_and_large_terminals(size):
    app = model_app("attention", prompt="word " * 300)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("right", "c", "pagedown", "pageup", "m", "up", "l", "h", "left")
        await settle(pilot)
        await pilot.press("pagedown", "pagedown", "pageup", "m", "m")
        await settle(pilot)
        screen = app.screen
        check_against_trace(app, screen)
        await app.screen.run_action("app.quit")


@requires_model
async def test_resizing_down_keeps_working():
    app = model_app("attention")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_model_part(pilot)
        for size in ((80, 24), (40, 12), (30, 8), (160, 45)):
            await pilot.resize_terminal(*size)
            await settle(pilot)
            await pilot.press("up", "h")
            await settle(pilot)
        check_against_trace(app, screen)


# -- snapshots (regenerate with --snapshot-update when the shipped model changes) -----------


@requires_model
async def test_a_prompt_edit_shows_the_new_prompts_attention_and_nothing_computing():
    """Edit the prompt by keys, wait for the app to settle: the maps are the new context's
    (a fresh traced forward pass of it), and nothing says it is computing."""
    app = model_app("attention")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_model_part(pilot)
        await edits_are_followed(pilot, screen, check_against_trace, "#model-status")


@requires_model
def test_snapshot_toy_80x24(snap_compare):
    """The toy at 80×24: "it" as the query, no mask, the whole table on one screen."""
    assert snap_compare(model_app("attention"), terminal_size=(80, 24), run_before=settle)


@requires_model
def test_snapshot_model_80x24(snap_compare):
    """The real model at 80×24: heatmap beside the key table, newest token as query."""
    assert snap_compare(
        model_app("attention"), terminal_size=(80, 24), run_before=press_then_settle("m")
    )


@requires_model
def test_snapshot_toy_causal_120x40(snap_compare):
    """The toy at 120×40 with the causal mask: "wall" as query, and every word's row."""
    assert snap_compare(
        model_app("attention"),
        terminal_size=(120, 40),
        run_before=press_then_settle("left", "c"),
    )


@requires_model
def test_snapshot_model_after_a_step_120x40(snap_compare):
    """The real model at 120×40 after one seeded step: layer 1, head 2, a generated row."""
    assert snap_compare(
        model_app("attention", seed=0),
        terminal_size=(120, 40),
        run_before=press_then_settle("m", "s", "l", "h", "h"),
    )
