"""Chapter 13 (Post-training) driven by keys. The DPO loss on screen is checked against
the formula applied by this test to the log-probabilities the screen displays; the
reference is the model as loaded (frozen), whose scores are the displayed log π_ref."""

from __future__ import annotations

import hashlib
import math

import pytest
from ch_helpers import model_app, static_text
from textual.widgets import Input

from llm_anatomy_tui.chapters.c13_post_training import PostTrainingScreen
from llm_anatomy_tui.core.model import default_model_dir, forward
from llm_anatomy_tui.views.preference import DPO_STEPS_PER_PRESS
from llm_anatomy_tui.views.preference_text import NO_TEMPLATE

STORY = "Once upon a time, there was a little robot who wanted to read."
SHIPPED = default_model_dir() / "model.safetensors"


async def opened(pilot) -> PostTrainingScreen:  # noqa: ANN001
    await pilot.app.wait_until_settled(timeout=180)
    screen = pilot.app.screen
    assert isinstance(screen, PostTrainingScreen)
    for widget in screen.query(Input):
        widget.cursor_blink = False
    return screen


def formula_loss(readout) -> float:  # noqa: ANN001
    """−log σ(β·z) from the displayed strings only."""
    beta = float(readout.beta)
    z = (float(readout.policy_a) - float(readout.ref_a)) - (
        float(readout.policy_b) - float(readout.ref_b)
    )
    return math.log1p(math.exp(-beta * z)) if beta * z > -30 else -beta * z


def check_displayed_loss(screen: PostTrainingScreen) -> None:
    r = screen.readout
    beta = float(r.beta)
    # four log-probs rounded to 4 decimals move z by at most 2e-4; the loss's slope in z
    # is at most β; the loss itself is shown to 4 decimals
    tol = beta * 2e-4 + 5e-5 + 1e-9
    assert abs(float(r.loss) - formula_loss(r)) <= tol
    panel = static_text(screen, "#c13-dpo")
    assert f"DPO loss −log σ(β·z) = {r.loss}" in panel
    assert f"log π(A) = {r.policy_a}   log π_ref(A) = {r.ref_a}" in panel


async def set_field(pilot, screen, key: str, text: str) -> None:  # noqa: ANN001
    """Type into field A or B by keys (``e``, then Tab for B) and press Enter (long texts
    are pasted into the field instead of typed)."""
    await pilot.press("escape", "e", *(["tab"] if key == "b" else []))
    field = screen.query_one(f"#c13-{key}", Input)
    assert field.has_focus
    if len(text) > 40:
        field.value = text
        await pilot.press("end", "enter")
    else:
        await pilot.press("ctrl+a", "ctrl+k", *list(text), "enter")
    await pilot.app.wait_until_settled(timeout=180)
    assert not field.has_focus  # Enter scores and gives the keys back to the chapter


async def test_scores_are_the_models_log_probabilities():
    app = model_app("post-training", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        await set_field(pilot, screen, "a", " He read a book.")
        await set_field(pilot, screen, "b", " He ate a shoe.")
        enc = app.session.encoding("model")
        prompt = enc.encode_ordinary(STORY)
        for key, scored in (("a", screen.result.scores.ref_a), ("b", screen.result.scores.ref_b)):
            ids = enc.encode_ordinary(screen.query_one(f"#c13-{key}", Input).value)
            logits = forward(app.session.model, prompt + ids).astype("float64")
            ref = []
            for i, t in enumerate(ids):
                row = logits[len(prompt) - 1 + i]
                row = row - row.max()
                ref.append(row[t] - math.log(math.exp(1) ** 0 * sum(math.exp(v) for v in row)))
            assert scored.logprobs == pytest.approx(ref, abs=2e-4)
        scores = static_text(screen, "#c13-scores")
        assert f"sum {screen.result.scores.ref_a.total:.4f}" in scores
        winner = "A" if screen.result.scores.ref_a.total > screen.result.scores.ref_b.total else "B"
        assert f"The model prefers {winner}" in scores
        check_displayed_loss(screen)  # step 0: z = 0, loss = log 2
        assert screen.readout.loss == f"{math.log(2):.4f}"


async def test_dpo_steps_move_margin_loss_and_kl_and_the_screen_agrees_with_the_formula():
    app = model_app("post-training", STORY)
    loaded = app.session.model
    shipped = hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    tensors = {k: v.copy() for k, v in loaded.tensors().items()}
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        await pilot.press("plus", "plus")  # β 0.1 -> 0.3 -> 1
        assert screen.beta == 1.0
        await pilot.press("d")
        await app.wait_until_settled(timeout=180)
        points = screen.dpo.points
        assert [p.step for p in points] == list(range(DPO_STEPS_PER_PRESS + 1))
        assert points[-1].loss < points[0].loss and points[-1].margin > 0
        assert points[-1].kl > 0
        assert screen.readout.step == str(DPO_STEPS_PER_PRESS)
        check_displayed_loss(screen)
        await pilot.press("minus")  # β changes: the same log-probs, the loss recomputed
        check_displayed_loss(screen)
        await pilot.press("d")
        await app.wait_until_settled(timeout=180)
        assert len(screen.dpo.points) == 2 * DPO_STEPS_PER_PRESS + 1
        check_displayed_loss(screen)
        await pilot.press("r")
        assert len(screen.dpo.points) == 1 and screen.readout.loss == f"{math.log(2):.4f}"
    assert app.session.model is loaded
    for name, arr in loaded.tensors().items():
        assert (arr == tensors[name]).all(), name
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == shipped


async def test_beta_zero_and_identical_completions_explain_themselves():
    app = model_app("post-training", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press(*["minus"] * 4)
        assert screen.beta == 0.0
        await pilot.press("d")
        await app.wait_until_settled(timeout=180)
        assert all(p.loss == pytest.approx(math.log(2)) for p in screen.dpo.points)
        assert "β = 0" in static_text(screen, "#c13-dpo")
        check_displayed_loss(screen)
        await pilot.press("plus", "plus")
        text = screen.query_one("#c13-a", Input).value
        await set_field(pilot, screen, "b", text)
        assert screen.result.pair.identical
        await pilot.press("escape", "d")
        await app.wait_until_settled(timeout=180)
        assert "the same text" in static_text(screen, "#c13-dpo")
        assert screen.dpo.points[-1].loss == pytest.approx(math.log(2))


async def test_bad_completions_get_a_message_not_a_traceback():
    app = model_app("post-training", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await set_field(pilot, screen, "a", "")
        assert "completion A: the completion is empty" in static_text(screen, "#c13-scores")
        await pilot.press("escape", "d")  # nothing scored: a notice, no crash
        await app.wait_until_settled(timeout=180)
        await set_field(pilot, screen, "a", " ok" * 300)
        assert "window holds" in static_text(screen, "#c13-scores")
        assert app.session.prompt == STORY


async def test_sampling_new_completions_and_stopping():
    app = model_app("post-training", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        first_a = screen.query_one("#c13-a", Input).value
        first_b = screen.query_one("#c13-b", Input).value
        await pilot.press("a")
        await app.wait_until_settled(timeout=180)
        assert screen.seeds["a"] == 3
        assert screen.query_one("#c13-a", Input).value != first_a
        assert screen.query_one("#c13-b", Input).value == first_b
        await pilot.press("b")
        await app.wait_until_settled(timeout=180)
        assert screen.seeds["b"] == 4
        assert screen.query_one("#c13-b", Input).value != first_b
        scored = "".join(screen.result.pieces_b)
        assert scored == screen.query_one("#c13-b", Input).value  # the shown B was scored
        await pilot.press("d", "x")
        await app.wait_until_settled(timeout=180)
        assert not screen.is_computing()
        assert len(screen.dpo.points) in (1, DPO_STEPS_PER_PRESS + 1)
        # with nothing running, x says so (it is always bound, never added to the footer)
        await pilot.press("x")
        await pilot.pause()
        assert any("No DPO steps are running" in n.message for n in app._notifications)


async def test_chat_template_panel():
    app = model_app("post-training", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        assert NO_TEMPLATE.split(" has")[1][:20] in static_text(screen, "#c13-chat")
        # a loaded instruct model carries its template (read defensively via getattr)
        app.session.model.chat_template = (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
            "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
            "{% endif %}"
        )
        try:
            screen.draw_chat()
            chat = static_text(screen, "#c13-chat")
            assert f"<|im_start|>user⏎\n{STORY}<|im_end|>⏎" in chat
            assert "Special tokens: <|im_start|>, <|im_end|>" in chat
        finally:
            del app.session.model.chat_template


async def test_without_a_model_every_key_is_safe(make_app):
    app = make_app(chapter="post-training", prompt="hello")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.wait_until_settled(timeout=180)
        await pilot.press("a", "b", "d", "x", "r", "plus", "minus")
        await pilot.app.wait_until_settled(timeout=180)
        assert "No model found in" in str(app.screen.query_one("#resource-notice").content)


# -- snapshots: the top of the chapter (prose and the pipeline; no float figures) -------------


async def _settle(pilot) -> None:  # noqa: ANN001
    await opened(pilot)


def test_snapshot_post_training_80x24(snap_compare):
    assert snap_compare(model_app("post-training", STORY), terminal_size=(80, 24),
                        run_before=_settle)  # fmt: skip


def test_snapshot_post_training_120x40(snap_compare):
    assert snap_compare(model_app("post-training", STORY), terminal_size=(120, 40),
                        run_before=_settle)  # fmt: skip


def test_snapshot_post_training_no_color(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(model_app("post-training", STORY), terminal_size=(80, 24),
                        run_before=_settle)  # fmt: skip
