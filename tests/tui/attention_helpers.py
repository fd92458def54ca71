"""Helpers for the chapter 8 and 9 tests: the real model (or a skip), a fresh traced
forward pass to compare with, and widgets rendered to plain text."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ch_helpers import edit_prompt, header_text
from rich.console import Console
from textual.widgets import Static
from tui_helpers import make_model_session, settle

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.core.model import Trace, default_model_dir, forward
from llm_anatomy_tui.core.session import MODEL_DIR_ENV

PROMPT = "Once upon a time, there was a little robot who wanted to read."


def model_dir() -> Path:
    return Path(os.environ.get(MODEL_DIR_ENV) or default_model_dir())


requires_model = pytest.mark.skipif(
    not (model_dir() / "config.json").exists(),
    reason=f"no trained model at {model_dir()} (set {MODEL_DIR_ENV})",
)


def model_app(chapter: str, prompt: str = PROMPT, seed: int = 0) -> LLMAnatomyApp:
    session = make_model_session(prompt)
    session.set_seed(seed)
    return LLMAnatomyApp(chapter=chapter, session=session, load_resources=False)


def fresh_trace(model, tokens) -> Trace:  # noqa: ANN001
    trace = Trace()
    forward(model, list(tokens), trace=trace)
    return trace


def render_plain(widget, width: int | None = None, height: int | None = None) -> str:  # noqa: ANN001
    """A data widget's renderable at its current size, as plain text (glyphs, no colour)."""
    return render_with_layout(widget, width, height)[0]


def render_with_layout(widget, width: int | None = None, height: int | None = None):  # noqa: ANN001, ANN201
    """(plain text, the renderable after drawing — its ``last_layout`` says what is shown)."""
    width = width or widget.content_region.width
    height = height or widget.content_region.height
    renderable = widget.renderable(width, height)
    renderable.color_mode = "none"
    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, color_system=None, file=sink)
        console.print(renderable)
    return console.export_text(), renderable


def context_tokens(app: LLMAnatomyApp) -> tuple[int, ...]:
    """The tokens the model reads now: the shared generation's, or the prompt's."""
    s = app.session
    gen = s.current_generation
    if gen is not None:
        return tuple(gen.tokens)
    ids, _ = s.context_ids(s.encoding("model"), s.model.config.max_position_embeddings)
    return tuple(ids)


def assert_rows_are_distributions(weights: np.ndarray) -> None:
    t = weights.shape[-1]
    future = ~np.tri(t, dtype=bool)
    assert np.all(weights[..., future] == 0.0), "masked cells are exactly 0"
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)


def text_of(screen, selector: str) -> str:  # noqa: ANN001
    """What the Static ``selector`` was last given, as text."""
    return str(screen.query_one(selector, Static).content)


def press_then_settle(*keys: str):  # noqa: ANN201
    """A snapshot's ``run_before``: settle, then each key followed by settling."""

    async def run(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


async def edits_are_followed(pilot, screen, check, status: str) -> None:  # noqa: ANN001
    """Type two edits to the prompt; after each the app settles and ``check(app, screen)``
    compares the screen with a fresh trace of the new context, and nothing says it is
    computing (neither the header nor the chapter's ``status`` panel)."""
    app = pilot.app
    for typed in (" The cat", " sat on the mat and looked at the dog"):
        await edit_prompt(pilot, typed)
        prompt = app.session.prompt
        assert prompt.endswith(typed)
        ids = app.session.encoding("model").encode_ordinary(prompt)
        assert context_tokens(app) == tuple(ids) == screen.snapshot.tokens
        check(app, screen)
        assert "computing" not in header_text(app)
        assert "Running the model" not in text_of(screen, status)
