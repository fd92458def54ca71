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
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial

from textual import events, work
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
from .chapters.open_model import ModelCommands, OpenModelScreen
from .core.allocator import return_freed_memory_to_the_system
from .core.recent_models import RecentModels
from .core.session import DEFAULT_PROMPT, ResourceState, Session, Status
from .terminal import install as install_paste_parser
from .widgets.safe_lists import SafeCommandPalette

Deliver = Callable[[object, "BaseException | None"], None]
"""How a generation op's result reaches the screen that asked for it (from the worker)."""


def remote_session(env: Mapping[str, str]) -> bool:
    """Whether the screen travels over a network (SSH, or a browser via ``serve``) and no
    animation level was chosen explicitly (``TEXTUAL_ANIMATIONS``).

    >>> remote_session({"SSH_CONNECTION": "10.0.0.2 5 10.0.0.1 22"}), remote_session({})
    (True, False)
    >>> remote_session({"SSH_TTY": "/dev/pts/1", "TEXTUAL_ANIMATIONS": "full"})
    False
    """
    if "TEXTUAL_ANIMATIONS" in env:
        return False
    return any(k in env for k in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "TEXTUAL_DRIVER"))


DIGIT_WAIT = 0.6
"""Seconds to wait for a second digit when a jump is ambiguous (``1`` vs ``14``)."""


class LLMAnatomyApp(App[None]):
    """llm-anatomy: one screen per chapter around a shared prompt."""

    TITLE = "llm-anatomy"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {ChapterCommands, GlossaryCommands, ModelCommands}

    def __init__(
        self,
        *,
        chapter: int | str | None = None,
        prompt: str | None = None,
        session: Session | None = None,
        load_resources: bool = True,
        recent: RecentModels | None = None,
    ) -> None:
        """
        Args:
            chapter: start here (number or slug); default the welcome screen.
            prompt: start with this prompt (overrides the session's).
            session: use this session (tests pass one with resources already loaded).
            load_resources: start the background loading of tokenizers and model.
            recent: where the recently opened models are remembered (default: the
                user's state directory; tests pass their own).
        """
        install_paste_parser()  # pastes arrive whole, ESC and all (see terminal.py)
        super().__init__()
        self.steady_cursors = remote_session(os.environ)
        """Over a network: text cursors do not blink (each blink resends the field's line,
        ~0.9 KB twice a second for as long as the field has focus) and nothing animates."""
        if self.steady_cursors:
            # Smooth scrolling repaints the whole body every frame of the animation:
            # PageDown cost 120-650 KB over SSH instead of one diff of ~25 KB.
            self.animation_level = "none"
        self.input_settled = threading.Event()
        """Clear from a key press until its repaint is out; long jobs wait on it."""
        self.input_settled.set()
        self.session = session if session is not None else Session(DEFAULT_PROMPT)
        if prompt is not None:
            self.session.set_prompt(prompt)
        self.start_chapter: Chapter = find_chapter(chapter) if chapter is not None else CHAPTERS[0]
        self._load_resources = load_resources
        self._digits = ""
        self._digit_timer: Timer | None = None
        self._generation_ops: deque[tuple[GenerationOp, str | None, Deliver]] = deque()
        self._generation_ops_lock = threading.Lock()
        self._generation_worker_busy = False
        self.recent_models = recent if recent is not None else RecentModels()
        """The recently opened models (the "Open model…" dialog lists them)."""
        self.model_opening = ""
        """While a model opens from the dialog: "opening NAME… 42%" (chapter headers show
        it); "" otherwise."""
        self.last_open_error = ""
        """The one-line reason the last "Open model…" failed ("" after a success)."""

    # -- start-up ------------------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            # Long jobs pause at their next progress report until this key's repaint is
            # out (see ComputeTask.report): the UI then has the interpreter to itself.
            self.input_settled.clear()
            self.call_after_refresh(self.input_settled.set)
        await super().on_event(event)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if self.steady_cursors and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False  # type: ignore[attr-defined]

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
                state = load()
            except Exception as exc:  # an unexpected failure must not kill the app
                state = ResourceState(Status.FAILED, f"Could not load the {name}: {exc}")
                if name == TOKENIZERS:
                    session.tokenizer_state = state
                else:
                    session.model_state = state
            if name == MODEL and state.ready and session.model_dir != _default_model_dir():
                self.recent_models.add(str(session.model_dir))  # --model / $LLM_ANATOMY_MODEL
            try:
                self.call_from_thread(self.announce, frozenset({name}))
            except RuntimeError:
                return  # the app is shutting down

    # -- opening another model -----------------------------------------------------------------

    def action_open_model(self) -> None:
        """Show the "Open model…" dialog; the chosen path opens in :meth:`open_model`."""
        if isinstance(self.screen, OpenModelScreen):
            return
        s = self.session
        current = ""
        if s.model is not None:
            current = f"{s.model.name} ({s.model_dir})"
        elif s.model_state.message:
            current = s.model_state.message

        def chosen(path: str | None) -> None:
            if path:
                self.open_model(path)

        self.push_screen(OpenModelScreen(self.recent_models.load(), current), chosen)

    def open_model(self, path: str) -> None:
        """Open the model at ``path`` in a worker; refuse while another load runs."""
        if self.model_opening or self.session.model_state.status is Status.LOADING:
            self.notify("A model is still loading; try again when it is ready.", timeout=4)
            return
        self.model_opening = f"opening {_short(path)}…"
        self._status_changed()
        self._open_model_worker(path)

    @work(thread=True, exclusive=True, group="open-model", exit_on_error=False)
    def _open_model_worker(self, path: str) -> None:
        last = [-1.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.01 or fraction >= 1.0:  # at most ~100 repaints
                last[0] = fraction
                self.call_from_thread(self.show_model_progress, path, fraction)

        try:
            state = self.session.open_model(path, progress)
        except Exception as exc:  # an unexpected failure must not kill the app
            state = ResourceState(
                Status.FAILED, f"Could not open {path}: {type(exc).__name__}: {exc}"
            )
        try:
            self.call_from_thread(self._model_opened, path, state)
        except RuntimeError:
            return  # the app is shutting down

    def show_model_progress(self, path: str, fraction: float) -> None:
        """Show how far the model at ``path`` has loaded (0..1) in the chapter header."""
        if self.model_opening:
            self.model_opening = f"opening {_short(path)}… {fraction:.0%}"
            self._status_changed()

    def _model_opened(self, path: str, state: ResourceState) -> None:
        self.model_opening = ""
        self._status_changed()
        if not state.ready:
            # one line; the current model and the prompt stay as they were
            self.last_open_error = _one_line(state.message, path)
            self.notify(self.last_open_error, severity="error", timeout=8)
            return
        self.last_open_error = ""
        self.recent_models.add(str(path))
        model = self.session.model
        self.notify(f"Opened {model.name if model is not None else path}.", timeout=4)
        self.announce(frozenset({MODEL, TOKENIZERS}))

    def _status_changed(self) -> None:
        if isinstance(self.screen, ChapterScreen):
            self.screen.refresh_status()

    # -- the shared generation -----------------------------------------------------------------

    def submit_generation(self, op: GenerationOp, key: str | None, deliver: Deliver) -> None:
        """Queue ``op`` for the generation worker (``ChapterScreen.compute_generation``).

        ``deliver(value, error)`` is called from the worker thread with what ``op``
        returned, or the exception it raised."""
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
                session.generation_revision += 1
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

    def action_command_palette(self) -> None:
        """Open the command palette (Textual's, with PageUp/PageDown safe before layout)."""
        if self.use_command_palette and not SafeCommandPalette.is_open(self):
            self.push_screen(SafeCommandPalette(id="--command-palette"))

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
        """Open the glossary over the current screen (Esc returns to it unchanged). Only
        one is ever open: on top, it searches for ``query`` instead; under another screen
        (the palette, say), that screen returns to it. (A second one crashed the app:
        found by the fuzz test, F2 or a glossary term chosen in the palette over it.)"""
        open_ = [s for s in self.screen_stack if isinstance(s, GlossaryScreen)]
        if not open_:
            self.push_screen(GlossaryScreen(query))
        elif self.screen is open_[-1] and query:
            open_[-1].search_for(query)

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


def _default_model_dir() -> object:
    from .core.formats import default_model_dir

    return default_model_dir()


def _one_line(message: str, path: str) -> str:
    """The loader's message as one line, naming ``path`` once.

    >>> _one_line("Could not open /m.gguf: model file not found: /m.gguf", "/m.gguf")
    'Could not open the model: model file not found: /m.gguf'
    """
    line = " ".join(message.split()) or f"Could not open {path}"
    prefix = f"Could not open {path}: "
    if line.startswith(prefix) and path in line[len(prefix) :]:
        line = "Could not open the model: " + line[len(prefix) :]
    return line


def _short(path: str, width: int = 32) -> str:
    """The file or directory name of ``path``, cut to ``width`` characters."""
    name = path.rstrip("/").rsplit("/", 1)[-1] or path
    return name if len(name) <= width else name[: width - 1] + "…"


def run_app(
    chapter: int | str | None = None, prompt: str | None = None, model: str | None = None
) -> int:
    """Run the app until the person quits; returns the exit status. ``model``: a model
    directory or .gguf file to open instead of ``$LLM_ANATOMY_MODEL`` / the default."""
    return_freed_memory_to_the_system()  # before any array: see core/allocator.py
    session = Session(DEFAULT_PROMPT, model_dir=model) if model is not None else None
    app = LLMAnatomyApp(chapter=chapter, prompt=prompt, session=session)
    app.run()
    return app.return_code or 0
