"""Helpers shared by the TUI tests (imported by ``conftest.py`` and the test modules)."""

from __future__ import annotations

from textual.widgets import Input, TextArea

from llm_anatomy_tui.core.session import Session

SEED = (
    "If the human brain were so simple that we could understand it, "
    "we would be so simple that we couldn't."
)
NO_MODEL_DIR = "/nonexistent/llm-anatomy-test/anatomy-mini"


def make_session(prompt: str = SEED) -> Session:
    session = Session(prompt, model_dir=NO_MODEL_DIR)
    session.load_tokenizers()  # cached after the first call in this process
    session.load_model()  # -> MISSING, with its message
    return session


async def settle(pilot) -> None:  # noqa: ANN001
    """Wait until workers are done and the screen is idle; stop cursors blinking."""
    app = pilot.app
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    for widget in app.screen.query("TextArea, Input"):
        if isinstance(widget, TextArea | Input):
            widget.cursor_blink = False
    await pilot.pause()
