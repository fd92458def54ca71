"""The Textual app: chapters as modes, navigation, and the shared session.

``app.session`` (a :class:`~llm_anatomy_tui.core.session.Session`) holds the prompt, the
tokenizers and the model. The tokenizers and the model load in one background thread
worker that starts after the first paint; when each finishes, the shown chapter gets a
:class:`~llm_anatomy_tui.chapters.base.SessionChanged` message (screens shown later catch
up when they are resumed). See ``chapters/base.py`` for the chapter contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial

from textual import work
from textual.app import App
from textual.timer import Timer
from textual.worker import WorkerCancelled, WorkerFailed

from .chapters import CHAPTERS, Chapter, chapter_index, find_chapter
from .chapters.base import (
    GENERATION,
    MODEL,
    TOKENIZERS,
    ChapterScreen,
    GenerationOp,
    SessionChanged,
)
from .chapters.glossary import GlossaryCommands, GlossaryScreen
from .chapters.navigation import ChapterCommands, ContentsScreen, HelpScreen, help_rows
from .core.session import DEFAULT_PROMPT, NotReady, ResourceState, Session, Status

Deliver = Callable[[object, "BaseException | None"], None]
"""How a generation op's result reaches the screen that asked for it (from the worker)."""

DIGIT_WAIT = 0.6
"""Seconds to wait for a second digit when a jump is ambiguous (``1`` vs ``14``)."""


class LLMAnatomyApp(App[None]):
    """llm-anatomy: one screen per chapter around a shared prompt."""

    TITLE = "llm-anatomy"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ChapterCommands, GlossaryCommands}

    def __init__(
        self,
        *,
        chapter: int | str | None = None,
        prompt: str | None = None,
        session: Session | None = None,
        load_resources: bool = True,
    ) -> None:
        """
        Args:
            chapter: start here (number or slug); default the welcome screen.
            prompt: start with this prompt (overrides the session's).
            session: use this session (tests pass one with resources already loaded).
            load_resources: start the background loading of tokenizers and model.
        """
        super().__init__()
        self.session = session if session is not None else Session(DEFAULT_PROMPT)
        if prompt is not None:
            self.session.set_prompt(prompt)
        self.start_chapter: Chapter = find_chapter(chapter) if chapter is not None else CHAPTERS[0]
        self._load_resources = load_resources
        self._digits = ""
        self._digit_timer: Timer | None = None
        self._generation_ops: deque[tuple[GenerationOp, str | None, Deliver | None]] = deque()
        self._generation_ops_lock = threading.Lock()
        self._generation_worker_busy = False

    # -- start-up ------------------------------------------------------------------------------

    def on_mount(self) -> None:
        for chapter in CHAPTERS:
            self.add_mode(chapter.slug, partial(chapter.create_screen))
        self.switch_mode(self.start_chapter.slug)
        if self._load_resources:
            # After the first paint, so loading ~0.5 s of rank files never delays it.
            self.call_after_refresh(self.load_resources)

    @work(thread=True, exclusive=True, group="resources", exit_on_error=False)
    def load_resources(self) -> None:
        """Load tokenizers, then the model, announcing each as it becomes available."""
        session = self.session
        for name, load in ((TOKENIZERS, session.load_tokenizers), (MODEL, session.load_model)):
            try:
                load()
            except Exception as exc:  # an unexpected failure must not kill the app
                state = ResourceState(Status.FAILED, f"Could not load the {name}: {exc}")
                if name == TOKENIZERS:
                    session.tokenizer_state = state
                else:
                    session.model_state = state
            try:
                self.call_from_thread(self.announce, frozenset({name}))
            except RuntimeError:
                return  # the app is shutting down

    # -- the shared generation -----------------------------------------------------------------

    def submit_generation(
        self, op: GenerationOp, key: str | None = None, deliver: Deliver | None = None
    ) -> None:
        """Queue ``op`` for the generation worker (see ``ChapterScreen.compute_generation``).

        ``deliver(value, error)`` is called from the worker thread with what ``op``
        returned, or the exception it raised. Without it (the older form) ``op`` returns a
        one-line complaint or None, kept in ``session.generation_message``."""
        with self._generation_ops_lock:
            if key is not None:
                self._generation_ops = deque(
                    item for item in self._generation_ops if item[1] != key
                )
            self._generation_ops.append((op, key, deliver))
            if self._generation_worker_busy:
                return  # the running worker drains the queue
            self._generation_worker_busy = True
        self.run_generation_ops()

    @work(thread=True, group="generation", exit_on_error=False)
    def run_generation_ops(self) -> None:
        """Run queued generation ops one at a time until the queue is empty."""
        session = self.session
        while True:
            with self._generation_ops_lock:
                if not self._generation_ops:
                    self._generation_worker_busy = False
                    return
                op, _key, deliver = self._generation_ops.popleft()
            value: object = None
            error: BaseException | None = None
            with session.generation_lock:
                try:
                    value = op(session.generation())
                except Exception as exc:  # a failed op must not kill the worker or the app
                    error = exc
                if deliver is None:  # the older form: the op returns its complaint
                    if error is None:
                        message = str(value) if value else ""
                    elif isinstance(error, NotReady):
                        message = str(error)
                    else:
                        message = f"{type(error).__name__}: {error}"
                    session.generation_message = message
                session.generation_revision += 1
            if deliver is not None:
                deliver(value, error)
            try:
                self.call_from_thread(self.announce, frozenset({GENERATION}))
            except RuntimeError:
                return  # the app is shutting down

    # -- settling --------------------------------------------------------------------------------

    @property
    def is_settled(self) -> bool:
        """True when nothing is pending: no chapter waits for a result, no generation op
        is queued or running, no worker runs (resources loaded or failed)."""
        with self._generation_ops_lock:
            if self._generation_ops or self._generation_worker_busy:
                return False
        if any(not worker.is_finished for worker in self.workers):
            return False
        return not any(
            isinstance(screen, ChapterScreen) and screen.is_computing()
            for screen in self._all_screens()
        )

    def _all_screens(self) -> list[object]:
        stacks = getattr(self, "_screen_stacks", None) or {"": self.screen_stack}
        return [screen for stack in stacks.values() for screen in stack]

    async def wait_until_settled(self, timeout: float = 30.0) -> None:
        """Wait until :attr:`is_settled` holds and the messages it caused are handled.

        Tests call this instead of sleeping or reading private fields. Raises
        ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 3:  # settled on three looks in a row: no result was still in flight
            await asyncio.sleep(0.005)
            if self.is_settled:
                calm += 1
            else:
                calm = 0
                # a superseded compute's worker ends cancelled: that is settling too
                with contextlib.suppress(WorkerCancelled, WorkerFailed):
                    await self.workers.wait_for_complete()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not settle within {timeout:g} s")

    def announce(self, changes: frozenset[str]) -> None:
        """Tell the shown chapter that shared state changed (others catch up on resume)."""
        if isinstance(self.screen, ChapterScreen):
            self.screen.post_message(SessionChanged(changes))

    # -- navigation ------------------------------------------------------------------------------

    @property
    def current_chapter(self) -> Chapter:
        try:
            return CHAPTERS[chapter_index(self.current_mode)]
        except LookupError:
            return self.start_chapter

    def goto_chapter(self, key: int | str) -> None:
        """Show a chapter (by number or slug), closing any dialog over the current one."""
        chapter = find_chapter(key)
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ChapterScreen):
            self.pop_screen()
        if chapter.slug != self.current_mode:
            self.switch_mode(chapter.slug)
        self.refresh_bindings()

    def action_goto_chapter(self, key: int | str) -> None:
        """``app.goto_chapter('tokenization')`` — for links and bindings."""
        self.goto_chapter(key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_chapter", "previous_chapter"):
            i = chapter_index(self.current_mode) if self.current_mode in _SLUGS else 0
            step = 1 if action == "next_chapter" else -1
            return True if 0 <= i + step < len(CHAPTERS) else None
        return True

    def action_next_chapter(self) -> None:
        i = chapter_index(self.current_mode)
        if i + 1 < len(CHAPTERS):
            self.goto_chapter(CHAPTERS[i + 1].slug)
        else:
            self.notify("This is the last chapter.", timeout=2)

    def action_previous_chapter(self) -> None:
        i = chapter_index(self.current_mode)
        if i > 0:
            self.goto_chapter(CHAPTERS[i - 1].slug)
        else:
            self.notify("This is the first chapter.", timeout=2)

    def action_contents(self) -> None:
        def chosen(slug: str | None) -> None:
            if slug:
                self.goto_chapter(slug)

        self.push_screen(ContentsScreen(self.current_mode), chosen)

    def action_glossary(self, query: str = "") -> None:
        """Open the glossary over the current screen (Esc returns to it unchanged)."""
        if not isinstance(self.screen, GlossaryScreen):
            self.push_screen(GlossaryScreen(query))

    def action_help(self) -> None:
        screen = self.screen
        title = self.current_chapter.label
        self.push_screen(HelpScreen(title, help_rows(self, screen)))

    def action_jump_digit(self, digit: int) -> None:
        """Jump by number; two quick digits reach chapters 10 and up."""
        if self._digit_timer is not None:
            self._digit_timer.stop()
            self._digit_timer = None
        typed = self._digits + str(digit)
        if not any(str(c.number).startswith(typed) for c in CHAPTERS):
            typed = str(digit)  # a fresh number, not the continuation of the last
        self._digits = typed
        exact = [c for c in CHAPTERS if str(c.number) == typed]
        longer = [c for c in CHAPTERS if str(c.number).startswith(typed) and str(c.number) != typed]
        if exact and not longer:
            self._digits = ""
            self.goto_chapter(exact[0].slug)
        elif longer:
            self._digit_timer = self.set_timer(DIGIT_WAIT, self._digits_done)
        else:
            self._digits = ""
            self._no_chapter(typed)

    def _digits_done(self) -> None:
        typed, self._digits = self._digits, ""
        self._digit_timer = None
        exact = [c for c in CHAPTERS if str(c.number) == typed]
        if exact:
            self.goto_chapter(exact[0].slug)
        elif typed:
            self._no_chapter(typed)

    def _no_chapter(self, typed: str) -> None:
        built = ", ".join(str(c.number) for c in CHAPTERS)
        self.notify(
            f"There is no chapter {typed} in this version (built: {built}). Press t for the contents.",
            severity="warning",
            timeout=4,
        )


_SLUGS = frozenset(c.slug for c in CHAPTERS)


def run_app(
    chapter: int | str | None = None, prompt: str | None = None, model: str | None = None
) -> int:
    """Run the app until the person quits; returns the exit status. ``model``: a model
    directory or .gguf file to open instead of ``$LLM_ANATOMY_MODEL`` / the default."""
    session = Session(DEFAULT_PROMPT, model_dir=model) if model is not None else None
    app = LLMAnatomyApp(chapter=chapter, prompt=prompt, session=session)
    app.run()
    return app.return_code or 0
