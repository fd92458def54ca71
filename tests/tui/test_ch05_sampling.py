"""Chapter 5 (Logits & sampling) driven by keys, with the numbers read back off the screen."""

from __future__ import annotations

import math

import numpy as np
from ch_helpers import (
    bar_rows,
    drain,
    edit_prompt,
    header_text,
    model_app,
    norm_values,
    plain,
    static_text,
)
from tui_helpers import SEED

from llm_anatomy_tui.chapters.c05_sampling import TOP_N, SamplingScreen
from llm_anatomy_tui.core.generation import Generation
from llm_anatomy_tui.core.model import forward
from llm_anatomy_tui.core.sampling import SamplingSettings, softmax64
from llm_anatomy_tui.views.readout import check_softmax_text
from llm_anatomy_tui.views.token_pieces import piece_spans
from llm_anatomy_tui.widgets.bar_chart import BarChart, CumulativeStrip

STORY = "Once upon a time, there was a little robot who wanted to read."


def flat(text: str) -> str:
    """Wrapped text as one line."""
    return " ".join(text.split())


async def open_sampling(pilot, prompt: str = STORY) -> SamplingScreen:  # noqa: ANN001
    await drain(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, SamplingScreen)
    return screen


async def type_field(pilot, screen: SamplingScreen, key: str, text: str) -> None:  # noqa: ANN001
    """Focus a settings field by keys (e, then Tab) and type ``text`` over its value."""
    await pilot.press("e")
    order = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty",
             "frequency_penalty", "presence_penalty", "stops", "seed", "count"]  # fmt: skip
    for _ in range(order.index(key)):
        await pilot.press("tab")
    field = screen._inputs[key]
    assert field.has_focus
    await pilot.press("ctrl+a", "ctrl+k")  # Emacs: start of line, delete to end
    if text:
        await pilot.press(*list(text))
    await pilot.press("escape")
    await drain(pilot)


def model_logits(app, prompt: str = STORY) -> np.ndarray:  # noqa: ANN001
    session = app.session
    ids = session.encoding("model").encode_ordinary(prompt)
    return forward(session.model, ids, all_logits=False)[-1]


# -- the numbers -------------------------------------------------------------------------


async def test_bars_are_the_real_models_next_token_distribution():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        logits = model_logits(app)
        probs = softmax64(logits)
        top = np.argsort(-logits, kind="stable")[:TOP_N]
        shown = screen.shown
        assert shown is not None and not shown.recorded and shown.index == 0
        assert [r.token for r in shown.table.rows[:TOP_N]] == list(top)
        rows = bar_rows(screen.query_one("#s-bars", BarChart))
        enc = app.session.encoding("model")
        for row, token in zip(rows, top, strict=False):
            piece = enc.decode_single_token_bytes(int(token))
            assert row.label == "".join(t for t, _ in piece_spans(piece))
            # the same logit to display precision (the screen's forward pass may sum in
            # another order than this test's: a last-digit flip is float noise, not an error)
            assert abs(float(row.cells["logit"]) - float(logits[token])) <= 0.5e-4 + 1e-5
            # the model's own probability, to display precision (within one last digit)
            assert abs(float(row.cells["p"].rstrip("%")) - probs[token] * 100) <= 0.011
        # defaults: nothing cut, p′ = p
        assert all(r.cells["p′"] == r.cells["p"] for r in rows)
        assert "nothing cut or changed" in static_text(screen, "#s-norm")


async def test_probabilities_are_the_softmax_of_the_logits_shown():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        for settings in (
            [],
            [("temperature", "0.7"), ("top_k", "8"), ("repetition_penalty", "1.3")],
        ):
            for key, text in settings:
                await type_field(pilot, screen, key, text)
            rows = bar_rows(screen.query_one("#s-bars", BarChart))
            lse, lse2 = norm_values(static_text(screen, "#s-norm"))
            logits = [r.cells["logit"] for r in rows]
            ps = [r.cells["p"] for r in rows]
            assert check_softmax_text(logits, ps, lse) == []
            # a reader's pairwise check: p_i / p_j = exp(l_i - l_j), to the precision printed
            # (percentages to ±0.005, logits to ±0.00005)
            for i in range(8):
                for j in range(8):
                    pi, pj = float(ps[i].rstrip("%")), float(ps[j].rstrip("%"))
                    lo = (pi - 0.005) / (pj + 0.005) * math.exp(-1e-4)
                    hi = (pi + 0.005) / (pj - 0.005) * math.exp(1e-4)
                    expect = math.exp(float(logits[i]) - float(logits[j]))
                    assert lo <= expect <= hi, (i, j, ps[i], ps[j], logits[i], logits[j])
            if settings:
                kept = [r for r in rows if not r.tag.startswith("✂")]
                assert len(kept) == 8 and lse2 is not None
                zs = [r.cells["z"] for r in kept]
                finals = [r.cells["p′"] for r in kept]
                assert check_softmax_text(zs, finals, lse2) == []
                assert all(r.cells["p′"] == "—" for r in rows if r.tag.startswith("✂"))
                # z = (penalised logit) / T, as printed
                for r in kept:
                    z = float(r.cells["z"])
                    logit = float(r.cells["logit"])
                    if "penalty" not in r.tag:
                        assert abs(z - logit / 0.7) <= 2e-4


async def test_filters_cut_rows_and_say_which():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        bars = screen.query_one("#s-bars", BarChart)
        await type_field(pilot, screen, "top_k", "3")
        rows = bar_rows(bars)
        assert [r.tag.startswith("✂") for r in rows[:5]] == [False, False, False, True, True]
        assert rows[3].tag == "✂ top-k"
        assert app.session.sampling.top_k == 3  # the op applied it to the shared session
        await type_field(pilot, screen, "top_k", "0")
        await type_field(pilot, screen, "top_p", "0.5")
        t = screen.shown.table
        cut = [r for r in bar_rows(bars) if r.tag == "✂ top-p"]
        assert cut and len(bar_rows(bars)) - len(cut) == t.n_kept
        assert t.kept_mass >= 0.5
        norm = static_text(screen, "#s-norm")
        assert f"kept {t.n_kept:,} of {t.vocab:,}" in norm
        await type_field(pilot, screen, "top_p", "1")
        await type_field(pilot, screen, "min_p", "0.2")
        assert any(r.tag == "✂ min-p" for r in bar_rows(bars))
        await type_field(pilot, screen, "min_p", "0")
        await pilot.press("d")  # defaults
        await drain(pilot)
        assert app.session.sampling == SamplingSettings()


async def test_penalties_mark_and_lower_the_tokens_already_in_context():
    prompt = "Tom and Sam went to the park. Tom and"
    app = model_app("sampling", prompt)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        bars = screen.query_one("#s-bars", BarChart)
        in_context = set(app.session.encoding("model").encode_ordinary(prompt))
        assert any(r.token in in_context for r in screen.shown.table.rows)
        await type_field(pilot, screen, "presence_penalty", "1")
        rows = bar_rows(bars)
        assert any(r.tag == "▼ penalty" for r in rows)
        for row, data in zip(rows, screen.shown.table.rows, strict=True):
            shift = 1.0 if data.token in in_context else 0.0
            assert abs(float(row.cells["z"]) - (float(row.cells["logit"]) - shift)) <= 1.5e-4
            if not row.tag.startswith("◀"):  # the drawn token's tag says so instead
                assert (row.tag == "▼ penalty") == (data.token in in_context)
        await type_field(pilot, screen, "presence_penalty", "0")
        await type_field(pilot, screen, "repetition_penalty", "2")
        for row, data in zip(bar_rows(bars), screen.shown.table.rows, strict=True):
            logit = float(row.cells["logit"])
            if data.token in in_context and logit > 0:
                assert abs(float(row.cells["z"]) - logit / 2) <= 1.5e-4
        assert "repetition x2" in flat(static_text(screen, "#s-stages"))
        await type_field(pilot, screen, "repetition_penalty", "")
        await type_field(pilot, screen, "frequency_penalty", "0.5")
        assert app.session.sampling.frequency_penalty == 0.5
        assert "frequency -0.5 per use" in flat(static_text(screen, "#s-stages"))


async def test_out_of_range_input_is_refused_with_a_message():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sampling(pilot)
        before = screen.shown.table
        for key, text, message in (
            ("top_p", "1.5", "top-p must be between 0 and 1"),
            ("temperature", "-1", "temperature must be 0 (greedy) or at least"),
            ("top_k", "abc", "top-k: 'abc' is not a whole number"),
            ("seed", "-3", "seed must be between 0 and"),
            ("count", "0", "N must be between 1 and 256"),
        ):
            await type_field(pilot, screen, key, text)
            assert message in static_text(screen, "#s-message")
            assert screen._inputs[key].has_class("-bad")
            assert app.session.sampling == SamplingSettings()  # the last valid settings
            await type_field(pilot, screen, key, "")  # empty: the 'off' value again
        assert "must be" not in static_text(screen, "#s-message")
        assert [r.token for r in screen.shown.table.rows] == [r.token for r in before.rows]


async def test_extreme_settings_explain_themselves():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        bars = screen.query_one("#s-bars", BarChart)
        await type_field(pilot, screen, "temperature", "100")
        msg = static_text(screen, "#s-message")
        assert "Temperature 100 flattens the distribution" in msg
        top = max(r.p_final for r in screen.shown.table.rows if r.p_final is not None)
        assert top < 0.001  # nearly uniform over 8,193 tokens
        await type_field(pilot, screen, "temperature", "1")
        await type_field(pilot, screen, "top_p", "0")
        assert "top-p 0 keeps only the most likely token" in static_text(screen, "#s-message")
        rows = bar_rows(bars)
        assert rows[0].cells["p′"] == "100.00%" and all(r.tag == "✂ top-p" for r in rows[1:TOP_N])
        await type_field(pilot, screen, "top_p", "1")
        await type_field(pilot, screen, "top_k", "0")  # 0 = off: nothing is cut
        assert not any(r.tag.startswith("✂") for r in bar_rows(bars))
        await pilot.press("s")
        await drain(pilot)
        assert len(app.session.current_generation.steps) == 1


# -- stepping ------------------------------------------------------------------------------


async def test_step_takes_the_drawn_token_and_generate_takes_n():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        drawn = screen.shown.token
        draw = screen.shown.result.draw
        strip_widget = screen.query_one("#s-strip", CumulativeStrip)
        strip = plain(strip_widget.renderable(100), 100)
        assert f"u = {draw.u:.4f} is in" in strip and "▲" in strip
        await pilot.press("s")
        await drain(pilot)
        gen = app.session.current_generation
        assert gen.steps[0].token == drawn
        # an independent generation with the same seed agrees
        ref = Generation(app.session.model, gen.prompt, seed=0, encoding=gen.encoding)
        assert ref.step().token == drawn
        await type_field(pilot, screen, "count", "5")
        await pilot.press("g")
        await drain(pilot)
        assert len(gen.steps) == 6
        ref.generate(5)
        assert gen.generated == ref.generated
        text = static_text(screen, "#s-text")
        assert gen.text.strip().split()[-1] in text.replace("\n", " ")
        status = static_text(screen, "#s-status")
        assert "step 6" in status


async def test_held_step_key_takes_one_step_per_press():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_sampling(pilot)
        for _ in range(30):
            await pilot.press("s")
        await drain(pilot, rounds=80)
        assert len(app.session.current_generation.steps) == 30


async def test_greedy_toggle_and_replay_with_the_same_seed():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        await pilot.press("m")
        await drain(pilot)
        assert app.session.sampling.temperature == 0
        assert screen.shown.result.draw.u is None
        assert screen.shown.token == int(np.argmax(model_logits(app)))
        assert "no random number" in static_text(screen, "#s-draw")
        await pilot.press("m")
        await drain(pilot)
        assert app.session.sampling.temperature == 1
        for _ in range(6):
            await pilot.press("s")
        await drain(pilot)
        gen = app.session.current_generation
        before = gen.generated
        await pilot.press("r")
        await drain(pilot)
        assert gen.generated == before
        assert "the same tokens again" in static_text(screen, "#s-message")
        await type_field(pilot, screen, "seed", "12345")
        await pilot.press("r")
        await drain(pilot)
        assert gen.seed == 12345
        assert gen.generated != before
        assert "differ from before" in static_text(screen, "#s-message")


async def test_branch_at_a_past_step_by_choosing_another_bar():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        for _ in range(5):
            await pilot.press("s")
        await drain(pilot)
        gen = app.session.current_generation
        old = gen.generated
        await pilot.press("left", "left", "left")  # view step 2
        await drain(pilot)
        assert screen.shown.recorded and screen.shown.index == 2
        assert "Step 2 of 5" in static_text(screen, "#s-status")
        rows = screen.shown.table.rows
        chosen_row = next(i for i, r in enumerate(rows) if r.token == old[2])
        target = 1 if chosen_row != 1 else 2
        bars = screen.query_one("#s-bars", BarChart)
        assert bars.has_focus
        await pilot.press("home", *(["down"] * target), "enter")
        await drain(pilot)
        assert len(gen.steps) == 3
        assert gen.generated[:2] == old[:2]
        assert gen.generated[2] == rows[target].token and gen.steps[2].forced
        assert "Branched at step 2" in static_text(screen, "#s-message")
        assert screen._view is None  # back to the next token
        # look at the branched step: the bars say the token was chosen by hand
        await pilot.press("left")
        await drain(pilot)
        assert (
            screen.shown.forced
            and "you chose" in screen.query_one("#s-bars", BarChart).highlight_tag
        )
        assert "You chose" in static_text(screen, "#s-draw")
        await pilot.press("right")
        await drain(pilot)
        assert screen._view is None
        # x drops the step shown and everything after it
        await pilot.press("left", "left", "x")
        await drain(pilot)
        assert len(gen.steps) == 1


async def test_stop_sequence_ends_the_generation_with_a_reason():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        await type_field(pilot, screen, "stops", ".")
        await type_field(pilot, screen, "count", "60")
        await pilot.press("g")
        await drain(pilot, rounds=120)
        gen = app.session.current_generation
        assert gen.done and gen.stop.reason in ("stop_sequence", "end_of_text")
        assert "." not in gen.text
        assert "Stopped" in static_text(screen, "#s-status")
        await pilot.press("s")
        await drain(pilot)
        assert "Generation has stopped" in static_text(screen, "#s-message")


async def test_empty_and_one_token_prompts():
    app = model_app("sampling", "")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sampling(pilot)
        assert "The prompt is empty" in static_text(screen, "#s-message")
        assert screen.shown is not None and len(screen.shown.table.rows) >= TOP_N
        await pilot.press("s")
        await drain(pilot)
        assert len(app.session.current_generation.steps) == 1
    app = model_app("sampling", "The")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sampling(pilot)
        assert len(app.session.current_generation.prompt) == 1
        await pilot.press("s", "s")
        await drain(pilot)
        assert len(app.session.current_generation.steps) == 2


async def test_context_full_stops_with_a_visible_reason():
    long_prompt = "The cat sat on the mat. " * 60  # ~420 tokens: cut to the last 255
    app = model_app("sampling", long_prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sampling(pilot)
        assert "fell out of the window" in static_text(screen, "#s-message")
        await pilot.press("s")
        await drain(pilot)
        gen = app.session.current_generation
        assert gen.done and gen.stop.reason == "context_full"
        status = static_text(screen, "#s-status")
        assert "context window is full" in status
        await pilot.press("s")
        await drain(pilot)
        assert "Generation has stopped" in static_text(screen, "#s-message")
        assert len(gen.steps) == 1


async def test_a_step_in_chapter_14_shows_here_and_back():
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        await pilot.press("s")
        await drain(pilot)
        app.goto_chapter("kv-cache")
        await drain(pilot)
        kv = app.screen
        cfg = app.session.model.config
        shape = f"[{cfg.num_key_value_heads}, {{}}, {cfg.dim_head}]"
        assert kv.shown.arrays[0][1] == shape.format(len(app.session.current_generation.tokens))
        await pilot.press("s", "s")
        await drain(pilot)
        gen = app.session.current_generation
        assert len(gen.steps) == 3
        app.goto_chapter("sampling")
        await drain(pilot)
        assert screen.shown.index == 3 and not screen.shown.recorded
        assert "step 3" in static_text(screen, "#s-status")
        # the bars are the distribution after all three tokens
        logits = forward(app.session.model, gen.tokens, all_logits=False)[-1]
        assert screen.shown.table.rows[0].token == int(np.argmax(logits))
        await pilot.press("s")
        await drain(pilot)
        app.goto_chapter("kv-cache")
        await drain(pilot)
        assert len(kv.shown.comparisons) == 4
        assert kv.shown.arrays[0][1] == shape.format(len(gen.tokens))


async def test_seed_sentence_and_small_terminal_do_not_crash():
    app = model_app("sampling", SEED)
    async with app.run_test(size=(40, 12)) as pilot:
        screen = await open_sampling(pilot)
        await pilot.press("s", "i", "i", "left", "right", "plus", "minus")
        await drain(pilot)
        assert screen.shown is not None


# -- one compute path: nothing stale, nothing stuck --------------------------------------------


async def test_a_prompt_edit_shows_the_new_prompts_numbers_and_nothing_computing():
    """Before: after /, typing and Esc, the status stayed on "Reading the prompt…" and the
    bars kept the old prompt's numbers until s was pressed."""
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        for typed in (" The cat", " sat down on the mat and"):
            await edit_prompt(pilot, typed)
            prompt = app.session.prompt
            assert prompt.endswith(typed)
            logits = model_logits(app, prompt)
            top = np.argsort(-logits, kind="stable")[:TOP_N]
            assert [r.token for r in screen.shown.table.rows[:TOP_N]] == list(top)
            rows = bar_rows(screen.query_one("#s-bars", BarChart))
            for row, token in zip(rows, top, strict=False):
                assert row.cells["logit"] == f"{logits[token]:.4f}"
            n = len(app.session.encoding("model").encode_ordinary(prompt))
            status = static_text(screen, "#s-status")
            assert f"{n} tokens in context" in status
            assert "Reading" not in status + static_text(screen, "#s-norm")
            assert "computing" not in header_text(app)


async def test_z_at_a_temperature_is_the_shown_logit_divided_by_t():
    """Before: z came from the unrounded logit and disagreed with logit/T in the last digit."""
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        await type_field(pilot, screen, "temperature", "0.7")
        rows = bar_rows(screen.query_one("#s-bars", BarChart))
        assert rows and all("z" in r.cells for r in rows)
        for r in rows:
            assert r.cells["z"] == f"{float(r.cells['logit']) / 0.7:.4f}", r.label
        assert "z = logit/0.7" in static_text(screen, "#s-norm")


async def test_penalty_header_states_the_rule_that_divides():
    """Before: the header read "logit − pen." although the repetition penalty divides."""
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        await type_field(pilot, screen, "repetition_penalty", "1.5")
        norm = static_text(screen, "#s-norm")
        assert "logit − pen." not in norm
        assert "z = pen(logit)" in norm and "l ÷ 1.5 if l > 0, l × 1.5 if not" in norm
        rows = bar_rows(screen.query_one("#s-bars", BarChart))
        ids = app.session.encoding("model").encode_ordinary(STORY)
        for r, row in zip(rows, screen.shown.table.rows, strict=False):  # the rule, by hand
            logit = float(r.cells["logit"])
            want = (logit / 1.5 if logit > 0 else logit * 1.5) if row.token in ids else logit
            assert r.cells["z"] == f"{want:.4f}", r.label


async def test_a_stop_sequence_fires_only_on_text_generated_after_it_was_set():
    """Before: with "." already in the text, setting the stop "." and pressing g added one
    token and said the stop sequence was generated; d did not clear the stopped state."""
    app = model_app("sampling", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_sampling(pilot)
        await type_field(pilot, screen, "count", "40")
        gen = None
        for _ in range(4):
            await pilot.press("g")
            await drain(pilot)
            gen = app.session.current_generation
            if "." in gen.text:
                break
        assert gen is not None and "." in gen.text, gen.text
        before = len(gen.steps)
        await type_field(pilot, screen, "stops", ".")
        await type_field(pilot, screen, "count", "1")
        await pilot.press("g")
        await drain(pilot)
        assert len(gen.steps) == before + 1
        last = gen.steps[-1]
        new_text = gen.encoding.decode(list(gen.generated[before:]))
        if "." not in new_text:  # the new token holds no ".": nothing may stop
            assert not gen.done and last.stop is None
            assert "Stopped" not in static_text(screen, "#s-status")
        # generate until a "." is generated after the stop was set
        await type_field(pilot, screen, "count", "60")
        await pilot.press("g")
        await drain(pilot)
        assert gen.done and gen.stop.reason in ("stop_sequence", "end_of_text")
        assert "Stopped" in static_text(screen, "#s-status")
        # d clears the stop sequences: a generation they stopped goes on
        if gen.stop.reason == "stop_sequence":
            n = len(gen.steps)
            await pilot.press("escape", "d")
            await drain(pilot)
            assert not gen.done
            assert "Stopped" not in static_text(screen, "#s-status")
            await pilot.press("s")
            await drain(pilot)
            assert len(gen.steps) == n + 1


# -- snapshots (fixed seed 0, the real model; regenerate with --snapshot-update) ---------


async def _three_steps_then_top_k(pilot) -> None:  # noqa: ANN001
    await drain(pilot)
    await pilot.press("s", "s", "s")
    await drain(pilot)
    await type_field(pilot, pilot.app.screen, "top_k", "5")
    await drain(pilot)


def test_snapshot_sampling_80x24(snap_compare):
    """Three steps taken, top-k 5: the kept rows, the cut ones, the draw."""
    assert snap_compare(model_app("sampling", STORY), terminal_size=(80, 24),
                        run_before=_three_steps_then_top_k)  # fmt: skip


def test_snapshot_sampling_120x40(snap_compare):
    """The same at 120×40: with the prompt bar and the stage notes beside the bars."""
    assert snap_compare(model_app("sampling", STORY), terminal_size=(120, 40),
                        run_before=_three_steps_then_top_k)  # fmt: skip


async def test_without_a_model_every_key_is_safe(make_app):
    """No model installed: both chapters say so, and their keys do nothing harmful."""
    for chapter in ("sampling", "kv-cache"):
        app = make_app(chapter=chapter, prompt="hello")
        async with app.run_test(size=(80, 24)) as pilot:
            await drain(pilot)
            await pilot.press("s", "g", "c", "k", "x", "m", "left", "right", "r", "b", "i")
            await drain(pilot)
            assert "No model found in" in str(app.screen.query_one("#resource-notice").content)
            assert app.session.current_generation is None
