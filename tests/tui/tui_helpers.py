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
    await app.wait_until_settled()
    await pilot.pause()
    for widget in app.screen.query("TextArea, Input"):
        if isinstance(widget, TextArea | Input):
            widget.cursor_blink = False
    await pilot.pause()


def make_model_session(prompt: str = SEED, model=None) -> Session:  # noqa: ANN001
    """A session with tokenizers loaded and ``model`` installed as if it had loaded.

    ``model`` defaults to the shipped anatomy-mini (the chapters' real subject), or the
    model directory named by ``$LLM_ANATOMY_MODEL`` if set."""
    import os

    from llm_anatomy_tui.core.model import default_model_dir
    from llm_anatomy_tui.core.session import MODEL_DIR_ENV, ResourceState, Status

    session = Session(prompt, model_dir=NO_MODEL_DIR)
    session.load_tokenizers()
    if model is None:
        model = _load_cached(os.environ.get(MODEL_DIR_ENV) or str(default_model_dir()))
    session.model = model
    session.model_state = ResourceState(Status.READY)
    return session


_MODELS: dict = {}


def _load_cached(path: str):  # noqa: ANN202
    """Load each model directory once per test process (models are never mutated)."""
    from llm_anatomy_tui.core.model import load_model

    if path not in _MODELS:
        _MODELS[path] = load_model(path)
    return _MODELS[path]


def generation_op(screen, op, n: int = 1) -> None:  # noqa: ANN001
    """Run ``op`` on the shared generation ``n`` times from ``screen`` through the one
    compute path, as a key press of a chapter would (each its own op)."""
    for _ in range(n):
        screen.compute_generation("test-op", op, then=lambda _value: None)


def take_steps(screen, n: int = 1) -> None:  # noqa: ANN001
    """Sample and append ``n`` tokens from ``screen`` (the chapters' step op)."""
    from llm_anatomy_tui.views.generation_ops import step_op

    generation_op(screen, step_op, n)
