"""Chapter 16 (Closing) driven by keys: the recap's figures against the core computed
directly, every line opening its chapter, the model arriving late, the empty prompt.
The chapter's subject is the real model (``$LLM_ANATOMY_MODEL`` or the shipped anatomy-mini).
"""

from __future__ import annotations

import os

import pytest
from textual.widgets import OptionList
from tui_helpers import SEED, make_model_session, make_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.chapters.c16_closing import ClosingScreen
from llm_anatomy_tui.core.generation import Generation
from llm_anatomy_tui.core.model import default_model_dir, forward
from llm_anatomy_tui.core.quant import model_nbytes, quantize_model
from llm_anatomy_tui.core.sampling import SamplingSettings
from llm_anatomy_tui.core.session import MODEL_DIR_ENV, ResourceState, Status
from llm_anatomy_tui.views.attention_tracker import AttentionTracker
from llm_anatomy_tui.views.recap import STAGES

_MODEL_DIR = os.environ.get(MODEL_DIR_ENV) or str(default_model_dir())
pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(_MODEL_DIR, "model.safetensors")),
    reason=f"no trained model at {_MODEL_DIR} (set {MODEL_DIR_ENV})",
)
BUILT = {c.number: c.slug for c in CHAPTERS}


def closing_app(prompt: str = SEED, session=None) -> LLMAnatomyApp:  # noqa: ANN001
    return LLMAnatomyApp(
        chapter="closing",
        session=session if session is not None else make_model_session(prompt),
        load_resources=False,
    )


async def settled(pilot) -> ClosingScreen:  # noqa: ANN001
    await pilot.app.wait_until_settled()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ClosingScreen)
    return screen


async def test_recap_figures_equal_the_core() -> None:
    settings = SamplingSettings(temperature=0.8, top_k=40)
    app = closing_app()
    app.session.set_sampling(settings)
    app.session.set_seed(11)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await settled(pilot)
        r = screen.recap
        assert r is not None
        model = app.session.model
        enc = app.session.encoding("model")
        ids = enc.encode_ordinary(SEED)
        assert r.ids == tuple(ids)
        snap = AttentionTracker().snapshot(model, ids)
        assert r.attn_weight == pytest.approx(float(snap.weights[:, :, -1, :].max()), abs=1e-6)
        step = Generation(model, ids, settings=settings, seed=11, encoding=enc).step()
        assert r.top_token == step.top(1)[0][0]
        assert r.top_prob == pytest.approx(step.top(1)[0][2], rel=1e-5)
        assert (r.drawn_token, r.draw_u) == (step.token, step.sampling.draw.u)
        assert r.kv_bytes == step.cache_bytes
        assert r.q_nbytes == model_nbytes(model.config, "Q4_0")
        q = forward(quantize_model(model, "Q4_0").model, ids)
        assert r.q_top_token == int(q[-1].argmax())
        # what is printed is what was computed
        options = screen.query_one("#c16-recap", OptionList)
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert len(shown) == len(STAGES)
        assert f"{len(ids)} tokens: {ids[0]}, {ids[1]}" in shown[0]
        assert f"{r.top_prob * 100:.2f}%" in shown[4]
        assert "temperature 0.8, top-k 40, seed 11" in shown[5]


async def test_every_recap_line_opens_its_chapter(monkeypatch) -> None:
    app = closing_app()
    said: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **kw: said.append(message))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await settled(pilot)
        for i, (key, _, number) in enumerate(STAGES):
            app.goto_chapter("closing")
            await pilot.pause()
            options = screen.query_one("#c16-recap", OptionList)
            options.focus()
            options.highlighted = i
            await pilot.press("enter")
            await pilot.pause()
            if number in BUILT:
                assert app.current_mode == BUILT[number], key
            else:  # a chapter of the book not in this version: a message, and we stay
                assert app.current_mode == "closing", key
                assert f"Chapter {number} is not in this version" in said[-1]


async def test_the_recap_fills_in_when_the_model_arrives() -> None:
    session = make_session(SEED)
    session.model_state = ResourceState(Status.LOADING, "Loading the model…")
    app = closing_app(session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert screen.recap is None
        assert all("waiting for the model" in line.figure for line in screen.lines)
        session.model = make_model_session().model
        session.model_state = ResourceState(Status.READY)
        app.announce(frozenset({"model"}))
        screen = await settled(pilot)
        assert screen.recap is not None
        assert screen.lines[0].figure.startswith(f"{len(screen.recap.ids)} tokens")


async def test_missing_model_says_so() -> None:
    app = closing_app(session=make_session(SEED))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert screen.recap is None
        assert all("no model installed" in line.figure for line in screen.lines)


async def test_empty_prompt_recaps_the_start_token_and_says_why() -> None:
    app = closing_app("")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert screen.recap is not None
        assert screen.recap.ids == (app.session.encoding("model").eot_token,)
        status = str(screen.query_one("#c16-status").render())
        assert "The prompt is empty" in status


async def test_editing_the_prompt_updates_the_recap_and_keeps_it() -> None:
    app = closing_app("Once upon a time")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        before = screen.recap.ids
        await pilot.press("slash", *" there was", "escape")
        screen = await settled(pilot)
        assert app.session.prompt == "Once upon a time there was"
        assert screen.recap.ids == tuple(
            app.session.encoding("model").encode_ordinary("Once upon a time there was")
        )
        assert screen.recap.ids != before


# -- snapshots (update with ``pytest --snapshot-update``) -----------------------------------


async def _settle(pilot) -> None:  # noqa: ANN001
    await settled(pilot)


def test_snapshot_80x24(snap_compare) -> None:
    assert snap_compare(closing_app(), terminal_size=(80, 24), run_before=_settle)


def test_snapshot_120x40(snap_compare) -> None:
    assert snap_compare(closing_app(), terminal_size=(120, 40), run_before=_settle)


def test_snapshot_no_color_80x24(snap_compare, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(closing_app(), terminal_size=(80, 24), run_before=_settle)
