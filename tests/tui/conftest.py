"""Fixtures for driving the app: one deterministic set-up shared by Pilot and snapshot tests.

Every app built here gets a session whose tokenizers are already loaded (so nothing depends
on the timing of the start-up worker) and whose model directory does not exist (so the
screens look the same whether or not a trained model is installed in the checkout).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tui_helpers import SEED, make_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.core.session import Session


@pytest.fixture
def make_app() -> Callable[..., LLMAnatomyApp]:
    """``make_app(chapter=None, prompt=SEED, session=None)`` -> a ready, deterministic app."""

    def factory(
        chapter: int | str | None = None,
        prompt: str = SEED,
        session: Session | None = None,
    ) -> LLMAnatomyApp:
        return LLMAnatomyApp(
            chapter=chapter,
            session=session if session is not None else make_session(prompt),
            load_resources=False,
        )

    return factory
