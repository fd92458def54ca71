"""The base class of every chapter screen, and what a chapter can rely on.

Writing a chapter
-----------------
A chapter is composition plus drawing. Everything it shows comes from pure functions in
``core/`` and ``views/``, asked for through **one compute path**,
:meth:`ChapterScreen.compute`::

    class LogitsScreen(ChapterScreen):
        NEEDS_MODEL = True                        # show a notice while the model is absent
        AUTO_FOCUS = "#logits-body"               # what has focus when the chapter opens
        BINDINGS = [Binding("g", "greedy", "Greedy", id="logits.greedy", tooltip="…")]

        def compose_chapter(self) -> ComposeResult:   # the header/footer come from the base
            with VerticalScroll(id="logits-body"):
                yield PromptBar(self.session.prompt, id="prompt")
                yield BarChart(id="bars")

        def session_changed(self, changes: frozenset[str]) -> None:
            if self.session.model is None:        # missing/loading: the base shows why
                return
            model, ids = self.session.model, self.session.prompt_ids("model")
            self.compute("logits", next_token_rows, model, ids, then=self.draw_logits)

        def draw_logits(self, rows: LogitRows) -> None:   # UI thread, newest inputs only
            self.query_one("#bars", BarChart).data = rows

Then add a :class:`~llm_anatomy_tui.chapters.Chapter` entry to ``chapters/__init__.py``.

The one compute path
--------------------
``self.compute(slot, fn, *args, then=draw, inline=False, on_error=None, on_progress=None)``

- ``fn(*args)`` is pure: every input is passed explicitly, nothing reads the screen.
- ``inline=True`` runs it at once on the UI thread and calls ``then(value)`` before
  returning: for cheap work (a few milliseconds), so a keystroke repaints in its own frame.
  Otherwise it runs in a thread worker (one per slot; a newer request cancels the older).
- The value comes back as a :class:`Computed` message carrying the slot's revision. The
  base drops it when a newer request for the same slot was made since (the inputs moved
  on); otherwise it calls ``then(value)`` on the UI thread. So no chapter keeps its own
  staleness logic, and no worker ever writes a screen attribute.
- While a slot is pending, :meth:`is_computing` is true and the header says "computing…"
  (with the fraction reported so far). When the newest result lands it clears by itself:
  the screen catches up without a key press.
- ``on_progress=cb`` hands ``fn`` a last argument, a :class:`ComputeTask`: long loops
  check ``task.cancelled`` and call ``task.report(fraction, value)``; each report reaches
  ``cb(ProgressReport)`` on the UI thread. :meth:`cancel_compute` cancels a slot.
- An exception in ``fn`` never reaches the person as a traceback: its one-line message
  goes to ``on_error(message)`` (default: a notification), and the slot stops pending.
- Work on the shared generation goes through :meth:`compute_generation` instead (see
  below); it is the same path with the app's one generation worker as the runner.
- Tests call ``await app.wait_until_settled()`` (no pending slot, no generation op, no
  worker) before asserting on what a screen shows.

The contract
------------
- **Construction.** The app creates the screen with its registry entry:
  ``Screen(chapter)``; it is available as :attr:`ChapterScreen.chapter`. Each chapter is
  a Textual *mode*: its screen is created the first time it is opened and kept, so its
  state (selected layer, sliders …) survives navigation.
- **Layout.** Implement :meth:`compose_chapter`; the base yields the header (chapter
  number and title), a resource notice and the footer (generated from bindings).
  **Styles** live in a ``.tcss`` file beside the chapter module, named like it
  (``c05_sampling.py`` → ``c05_sampling.tcss``), listed in the screen's ``CSS_PATH``;
  widgets keep their own ``DEFAULT_CSS``. ``HORIZONTAL_BREAKPOINTS`` gives the screen
  ``-narrow``/``-wide`` classes. The chapter must work from 60×20 up (scroll rather than
  clip; below that the base covers it with a "terminal too small" notice, see
  ``widgets/too_small.py``), look right at 80×24, and every panel must be reachable by
  keyboard (put the body in a focusable ``VerticalScroll``).
- **Keys.** :data:`NAV_BINDINGS` (next/previous, contents, help, prompt, glossary F2/G,
  explain F3/E, digits, quit) are inherited; add your own in ``BINDINGS`` with
  ``id="<slug>.<name>"``, a short description and a tooltip: the footer and the help
  screen are generated from them. Letter keys are swallowed while the prompt has focus;
  Esc leaves the prompt.
- **Explain this panel.** Every focusable widget needs a text in ``assets/explain.toml``
  (``[<slug>.<widget id>]``; an ancestor's id covers what is inside it); a test checks.
- **The session.** :attr:`session` is the app's :class:`~llm_anatomy_tui.core.session.Session`:
  ``session.prompt`` (str), ``session.prompt_ids(name)``, ``session.encoding(name)``
  (``"o200k_base"``, ``"cl100k_base"``, ``"model"``), ``session.model`` (a
  :class:`~llm_anatomy_tui.core.model.Model` or ``None``), ``session.require_model()``,
  ``session.model_state`` / ``session.tokenizer_state`` (status + one-line message).
  Resources load in a background thread after the first paint; never load them yourself.
- **Changes.** :meth:`session_changed` is called with a set of :data:`PROMPT`,
  :data:`TOKENIZERS`, :data:`MODEL`, :data:`GENERATION`: once when the screen mounts (all),
  whenever the prompt is edited on this screen, when a resource finishes loading while the
  screen is shown, and — when the screen is shown again after something changed elsewhere —
  with what changed meanwhile. It is where a chapter asks for its results again (with
  :meth:`compute`). Change the prompt from code with :meth:`set_prompt`. A
  :class:`PromptBar` anywhere in the screen is wired up by the base.
- **The shared generation.** Chapters that step the model (sampling, attention, KV
  cache …) share one :class:`~llm_anatomy_tui.core.generation.Generation`: the prompt's
  tokens (see ``Session.context_ids`` for the empty / too-long policy) plus every token
  generated after it, with its step records. Change it, and read what to draw from it,
  through ``self.compute_generation(slot, op, then=draw)``: ``op(gen)`` runs in the app's
  single generation worker, under the session's generation lock, in submission order, and
  *returns* what the screen will draw (a snapshot, never the live generation, which the
  next op may change); ``then(value)`` gets it as for :meth:`compute`, and afterwards
  every screen receives a ``"generation"`` change. An op may raise
  :class:`~llm_anatomy_tui.core.session.NotReady` or ``ValueError`` with a one-line
  message (e.g. "Generation has stopped: …"): it reaches ``on_error``.
  ``self.generation_notice`` (inside an op) and :meth:`context_ids` say why the model
  reads something other than the typed prompt. Sampler settings and seed live in the
  session (``session.sampling`` / ``set_sampling``, ``session.seed`` / ``set_seed``,
  ``session.stop_sequences`` / ``set_stop_sequences``); setting them never blocks, they
  apply from the next step on, and other screens get a ``"generation"`` change.
- **No model.** With ``NEEDS_MODEL = True`` the base shows the session's message about the
  model (loading / not installed / failed to load) above your content; your
  :meth:`session_changed` must then simply not draw model results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TextArea

from ..core.session import NotReady, ResourceState, Session, Status
from ..views.context import context_notice
from ..widgets.prompt_bar import PromptBar
from ..widgets.too_small import TooSmallNotice

if TYPE_CHECKING:
    from ..core.generation import Generation
    from . import Chapter

PROMPT = "prompt"
TOKENIZERS = "tokenizers"
MODEL = "model"
GENERATION = "generation"
ALL_CHANGES: frozenset[str] = frozenset({PROMPT, TOKENIZERS, MODEL, GENERATION})

GenerationOp = Callable[["Generation"], object]
"""A function run by the app's generation worker on the shared generation (holding the
session's generation lock). It may step, rewind, branch, preview …; it returns what the
screen that asked will draw (see :meth:`ChapterScreen.compute_generation`)."""


class SessionChanged(Message):
    """Posted to the shown chapter screen when a shared resource finished loading.

    ``changes`` is a subset of :data:`ALL_CHANGES`. Chapters normally do not handle this
    message themselves; the base turns it into a :meth:`ChapterScreen.session_changed` call.
    """

    def __init__(self, changes: frozenset[str]) -> None:
        super().__init__()
        self.changes = changes


@dataclass(frozen=True)
class ProgressReport:
    """What a long computation reported so far: a fraction in [0, 1] and, optionally, a
    partial value (e.g. the losses of the steps taken so far)."""

    fraction: float
    value: object = None


INPUT_YIELD_SECONDS = 0.1
"""Longest a job waits in :meth:`ComputeTask.report` for a key press to be painted."""


class ComputeTask:
    """Handed to a long computation (see :meth:`ChapterScreen.compute`'s ``on_progress``):
    it checks :attr:`cancelled` between steps and calls :meth:`report`.

    :meth:`report` is also where a job gives way to the person: while a key press is being
    handled (``input_settled`` clear), it waits until the key's repaint is out (at most
    :data:`INPUT_YIELD_SECONDS`). A job in a thread shares the GIL with the UI, so without
    this a key pressed during DPO steps waited for ~50% of the interpreter and took 65 ms
    p95 to repaint.
    """

    def __init__(
        self,
        report: Callable[[ProgressReport], None],
        input_settled: threading.Event | None = None,
    ) -> None:
        self._report = report
        self._cancelled = threading.Event()
        self._input_settled = input_settled

    @property
    def cancelled(self) -> bool:
        """True once a newer request for the same slot, or a cancel, replaced this one."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def report(self, fraction: float, value: object = None) -> None:
        """Say how far the work is (0..1), with an optional partial value to draw."""
        if not self.cancelled:
            self._report(ProgressReport(min(1.0, max(0.0, float(fraction))), value))
        if self._input_settled is not None:
            self._input_settled.wait(INPUT_YIELD_SECONDS)


class Computed(Message):
    """The result of :meth:`ChapterScreen.compute` (or a progress report of it), posted
    back to the screen that asked. ``revision`` is the slot's revision when it was asked
    for: the base drops the message if the slot has moved on since."""

    def __init__(
        self,
        slot: str,
        revision: int,
        value: object = None,
        *,
        error: str | None = None,
        progress: ProgressReport | None = None,
    ) -> None:
        super().__init__()
        self.slot = slot
        self.revision = revision
        self.value = value
        self.error = error
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        # A queued progress report of the same request is superseded by a newer one.
        return (
            isinstance(message, Computed)
            and message.progress is not None
            and self.progress is not None
            and message.slot == self.slot
            and message.revision == self.revision
        )


def error_message(exc: BaseException) -> str:
    """One line for the person: a user-facing error's own words, otherwise its type too.

    >>> error_message(ValueError("the prompt is empty"))
    'the prompt is empty'
    >>> error_message(ZeroDivisionError("division by zero"))
    'ZeroDivisionError: division by zero'
    """
    if isinstance(exc, ValueError | NotReady):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Slot:
    revision: int = 0
    pending: bool = False
    fraction: float | None = None
    task: ComputeTask | None = None
    then: Callable[[Any], None] | None = None
    on_error: Callable[[str], None] | None = None
    on_progress: Callable[[ProgressReport], None] | None = None


class SessionHost(Protocol):
    """What a chapter may use of the app (the app class lives above this layer)."""

    session: Session

    def goto_chapter(self, key: int | str) -> None: ...

    def submit_generation(
        self,
        op: GenerationOp,
        key: str | None,
        deliver: Callable[[object, BaseException | None], None],
    ) -> None: ...


def _digit_bindings() -> list[Binding]:
    return [
        Binding(
            str(d),
            f"app.jump_digit({d})",
            f"Chapter {d}",
            show=False,
            id=f"nav.jump-{d}",
            tooltip="Type two digits quickly for chapters 10 and up",
        )
        for d in range(10)
    ]


NAV_BINDINGS: list[BindingType] = [
    Binding(
        "n,right_square_bracket",
        "app.next_chapter",
        "Next",
        id="nav.next",
        tooltip="Go to the next chapter",
    ),
    Binding(
        "p,left_square_bracket",
        "app.previous_chapter",
        "Prev",
        id="nav.previous",
        tooltip="Go to the previous chapter",
    ),
    Binding(
        "t",
        "app.contents",
        "Contents",
        id="nav.contents",
        tooltip="List every chapter and open one",
    ),
    Binding(
        "slash",
        "focus_prompt",
        "Type",
        id="nav.prompt",
        tooltip="Move the cursor into the prompt bar (Esc leaves it)",
    ),
    Binding(
        "escape",
        "leave_prompt",
        "Done typing",
        id="nav.leave-prompt",
        tooltip="Leave the prompt bar (or any text field) so letter keys work as commands",
    ),
    Binding(
        "question_mark,f1",
        "app.help",
        "Help",
        id="nav.help",
        tooltip="All keys of this screen, and how to move around",
    ),
    Binding(
        "f2,G",
        "app.glossary",
        "Glossary",
        show=False,
        id="nav.glossary",
        tooltip="Look up a term (F2 works while typing too); Esc comes back here",
    ),
    Binding(
        "f3,E",
        "explain",
        "Explain panel",
        show=False,
        id="nav.explain",
        tooltip="What the focused panel shows, how to read it, how to check its numbers",
    ),
    Binding("q", "app.quit", "Quit", id="nav.quit", tooltip="Leave llm-anatomy"),
    *_digit_bindings(),
]
"""The keys every chapter shares (ids start with ``nav.``)."""


def _chapter_bindings(own: list[BindingType]) -> list[BindingType]:
    """``own`` placed after the Help key and before the other shared keys (whose keys
    ``own`` does not reuse), followed by Textual's own screen keys (focus movement)."""
    own_keys = set(BindingsMap(own).key_to_bindings)
    help_first, rest = [], []
    for key, bindings in BindingsMap(NAV_BINDINGS).key_to_bindings.items():
        if key in own_keys:
            continue
        target = help_first if bindings[0].id == "nav.help" else rest
        target.extend(bindings)
    return [*help_first, *own, *rest, *Screen.BINDINGS]


class ChapterHeader(Widget):
    """One line: the chapter's number, its place among the built chapters and its title on
    the left ("Chapter 5 · 2 of 6 · Logits & sampling": the numbers follow the book and have
    gaps, so the place is counted separately), the status on the right."""

    DEFAULT_CSS = """
    ChapterHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    status: reactive[str] = reactive("")
    weights_note: reactive[str] = reactive("")
    """Non-empty while the session's model is a copy trained in the app (see
    ``Session.weights_note``): the header then says "⚠ trained copy" on every screen."""

    def __init__(self, chapter: Chapter, position: int, built: int) -> None:
        super().__init__(id="chapter-header")
        self.chapter = chapter
        self.position = position
        """1-based place of this chapter among the built chapters (the welcome excluded)."""
        self.built = built
        """How many chapters are built (registered), the welcome screen excluded."""

    def render(self) -> Text:
        width = self.size.width
        if self.chapter.number == 0:
            left = Text.assemble(" ", ("llm-anatomy", "bold"), " · ", self.chapter.title)
        else:
            left = Text.assemble(
                " ",
                *(
                    [(f"Chapter {self.chapter.number}/{self.built}", "bold")]
                    if self.position == self.chapter.number  # no gaps before it
                    else [
                        (f"Chapter {self.chapter.number}", "bold"),
                        (f" · {self.position} of {self.built}", "dim"),
                    ]  # fmt: skip
                ),
                " · ",
                (self.chapter.title, "bold"),
            )
        right = Text(f"{self.status} " if self.status else "", style="italic")
        if self.weights_note:
            right = Text.assemble(("⚠ trained copy ", "bold reverse"), right)
        gap = width - left.cell_len - right.cell_len
        if gap < 1:
            left.truncate(max(0, width - 1), overflow="ellipsis")
            return left
        return Text.assemble(left, " " * gap, right, no_wrap=True)


class ResourceNotice(Static):
    """A one-paragraph notice shown while something the chapter needs is not available."""

    DEFAULT_CSS = """
    ResourceNotice {
        height: auto;
        padding: 0 1;
        margin: 0 0 1 0;
        border-left: thick $warning;
        background: $warning 10%;
        display: none;
    }
    ResourceNotice.-error { border-left: thick $error; background: $error 10%; }
    """


class ChapterScreen(Screen):
    """Base class of every chapter: shared keys, header, footer, session plumbing.

    See the module docstring for the full contract.
    """

    BINDINGS: ClassVar[list[BindingType]] = NAV_BINDINGS
    DEFAULT_CSS = "ChapterScreen { layers: default too-small; }"

    def __init_subclass__(cls, **kwargs: object) -> None:
        # Textual lists a base class's bindings before a subclass's, so at 80 columns the
        # footer showed the shared navigation keys and cut off the chapter's own. Compose
        # each chapter's bindings explicitly instead: Help first (the way to every other
        # key), then the chapter's keys, then the rest of the navigation. A chapter key
        # that reuses a navigation key wins, as with ordinary inheritance.
        # (Before super(): Textual merges and caches the bindings there.)
        cls.BINDINGS = _chapter_bindings(list(cls.__dict__.get("BINDINGS", [])))
        kwargs.setdefault("inherit_bindings", False)
        super().__init_subclass__(**kwargs)  # type: ignore[arg-type]

    NEEDS_TOKENIZERS: ClassVar[bool] = True
    """Show a notice while the tokenizers are loading or broken."""
    NEEDS_MODEL: ClassVar[bool] = False
    """Show a notice while the model is loading, not installed, or broken."""
    AUTO_FOCUS: ClassVar[str | None] = ""
    """Selector of the widget focused when the chapter opens; never the prompt bar (so
    letter keys work at once). ``""`` (the default): nothing is focused and keys go to the
    screen. (Not ``None``: for Textual that means "use the app's", which focuses the first
    focusable widget — the prompt bar.)"""

    def __init__(self, chapter: Chapter) -> None:
        super().__init__(name=chapter.slug, id=f"chapter-{chapter.slug}")
        self.chapter = chapter
        self._seen: tuple[int, ResourceState, tuple[ResourceState, int], tuple[int, int]] | None = (
            None
        )
        self._bars_cache: list[PromptBar] | None = None
        self._notice_state: tuple[ResourceState, ResourceState] | None = None
        self._slots: dict[str, _Slot] = {}
        self._loading_status = ""

    # -- for chapter authors -------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The shared session (prompt, tokenizers, model)."""
        return cast(SessionHost, self.app).session

    def compose_chapter(self) -> ComposeResult:
        """Yield the chapter's own widgets (between the header and the footer)."""
        yield from ()

    def session_changed(self, changes: frozenset[str]) -> None:
        """Recompute what the chapter shows.

        ``changes`` ⊆ {"prompt", "tokenizers", "model", "generation"}; "generation" comes
        with every prompt or model change too (the shared generation restarts then)."""

    def compute(
        self,
        slot: str,
        fn: Callable[..., Any],
        *args: Any,
        then: Callable[[Any], None],
        inline: bool = False,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[ProgressReport], None] | None = None,
    ) -> None:
        """Ask for ``fn(*args)`` and have ``then(value)`` draw it — the one compute path.

        ``slot`` names what is being computed ("logits", "neighbours" …): a newer request
        for a slot supersedes an older one, whose result is dropped unseen. ``inline=True``
        computes now, on the UI thread (cheap work only); otherwise a thread worker does.
        With ``on_progress``, ``fn`` gets a :class:`ComputeTask` as its last argument.
        See the module docstring for the whole contract.
        """
        state = self._slots.setdefault(slot, _Slot())
        if state.task is not None:
            state.task.cancel()  # the older request's loop may stop early
        state.revision += 1
        state.then, state.on_error, state.on_progress = then, on_error, on_progress
        state.task = None
        state.fraction = None
        revision = state.revision
        if inline and on_progress is None:
            state.pending = False
            try:
                value = fn(*args)
            except Exception as exc:
                self._computing_changed()
                self._report_error(state, error_message(exc))
                return
            self._computing_changed()
            then(value)
            return
        state.pending = True
        task: ComputeTask | None = None
        if on_progress is not None:
            task = state.task = ComputeTask(
                lambda report: self.post_message(Computed(slot, revision, progress=report)),
                getattr(self.app, "input_settled", None),
            )

        def job() -> None:
            try:
                value = fn(*args, task) if task is not None else fn(*args)
            except Exception as exc:  # reaches the person as one line, never a traceback
                self.post_message(Computed(slot, revision, error=error_message(exc)))
            else:
                self.post_message(Computed(slot, revision, value))

        self.run_worker(
            job,
            name=f"compute:{slot}",
            group=f"compute:{slot}",
            description=f"compute {slot}",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )
        self._computing_changed()

    def compute_generation(
        self,
        slot: str,
        op: Callable[[Generation], Any],
        *,
        then: Callable[[Any], None],
        on_error: Callable[[str], None] | None = None,
        key: str | None = None,
    ) -> None:
        """Run ``op`` on the shared generation in the app's generation worker and have
        ``then(value)`` draw what it returned (the same path as :meth:`compute`).

        Ops run one at a time, in order, off the UI thread; every screen gets a
        "generation" change after each. A queued op with the same ``key`` is replaced by
        this one (previews, where only the newest matters); ops without a key are never
        dropped, so holding the step key takes one step per key press.
        """
        state = self._slots.setdefault(slot, _Slot())
        state.revision += 1
        state.then, state.on_error, state.on_progress = then, on_error, None
        state.pending = True
        revision = state.revision

        def deliver(value: object, exc: BaseException | None) -> None:
            # Called from the generation worker thread; post_message is thread-safe.
            error = error_message(exc) if exc is not None else None
            self.post_message(Computed(slot, revision, value, error=error))

        cast(SessionHost, self.app).submit_generation(op, key, deliver)
        self._computing_changed()

    def cancel_compute(self, slot: str) -> None:
        """Stop waiting for ``slot``: its pending result is dropped, its task cancelled."""
        state = self._slots.get(slot)
        if state is None:
            return
        if state.task is not None:
            state.task.cancel()
        state.revision += 1
        state.pending = False
        state.task = None
        self._computing_changed()

    def is_computing(self, slot: str | None = None) -> bool:
        """True while ``slot`` (or, without one, any slot) waits for its newest result."""
        if slot is not None:
            state = self._slots.get(slot)
            return bool(state and state.pending)
        return any(state.pending for state in self._slots.values())

    @property
    def computing(self) -> frozenset[str]:
        """The slots whose newest result has not been drawn yet."""
        return frozenset(name for name, state in self._slots.items() if state.pending)

    def on_computed(self, message: Computed) -> None:
        message.stop()
        state = self._slots.get(message.slot)
        if state is None or message.revision != state.revision:
            return  # computed from inputs that have moved on: a newer result is coming
        if message.progress is not None:
            state.fraction = message.progress.fraction
            self._computing_changed()
            if state.on_progress is not None:
                state.on_progress(message.progress)
            return
        state.pending = False
        state.task = None
        state.fraction = None
        self._computing_changed()
        if message.error is not None:
            self._report_error(state, message.error)
        elif state.then is not None:
            state.then(message.value)

    def _report_error(self, state: _Slot, message: str) -> None:
        if state.on_error is not None:
            state.on_error(message)
        else:
            self.notify(message, severity="error", timeout=6)

    def _computing_changed(self) -> None:
        """Say in the header whether what is drawn is behind its inputs."""
        header = self.query(ChapterHeader)
        if not header:
            return
        pending = [state for state in self._slots.values() if state.pending]
        parts = [self._loading_status] if self._loading_status else []
        opening = getattr(self.app, "model_opening", "")  # a model opening in the background
        if opening:
            parts.append(opening)
        if pending:
            fractions = [s.fraction for s in pending if s.fraction is not None]
            parts.append(f"computing… {min(fractions):.0%}" if fractions else "computing…")
        header.first().status = " · ".join(parts)

    def refresh_status(self) -> None:
        """Redraw the header's status (the app calls it while a model opens)."""
        self._computing_changed()

    def model_ready(self) -> bool:
        """True when the model and the tokenizers are loaded, so model work can run (the
        resource notice says why while they are not)."""
        return self.session.model is not None and self.session.tokenizer_state.ready

    def context_ids(self, encoding, window: int) -> tuple[list[int], str]:  # noqa: ANN001
        """The token IDs the model reads for the prompt, and what to say when they are not
        the typed prompt's ("" otherwise). Safe to call from a worker."""
        ids, fit = self.session.context_ids(encoding, window)
        return ids, context_notice(fit)

    @property
    def generation_notice(self) -> str:
        """What to say when the shared generation's prompt is not the typed one ("" when
        it is). Read it inside a generation op, after ``gen`` exists."""
        return context_notice(self.session.context_fit)

    def goto_chapter(self, key: int | str) -> None:
        """Open another chapter by number or slug (e.g. "see chapter 8" links)."""
        cast(SessionHost, self.app).goto_chapter(key)

    def set_prompt(self, text: str) -> None:
        """Change the shared prompt from code (a preset, a generated continuation …)."""
        if self.session.set_prompt(text):
            self._deliver(frozenset({PROMPT}))

    # -- composition -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        from . import CHAPTERS

        built = [c for c in CHAPTERS if c.number > 0]
        position = next((i + 1 for i, c in enumerate(built) if c is self.chapter), 0)
        yield ChapterHeader(self.chapter, position, len(built))
        yield ResourceNotice(id="resource-notice")
        yield from self.compose_chapter()
        yield Footer(compact=True)
        yield TooSmallNotice(id="too-small")

    def on_resize(self, event: events.Resize) -> None:
        # The terminal's size, not the screen's region: a notice covers a too-small window.
        for notice in self.query(TooSmallNotice):
            notice.show_for(self.app.size.width, self.app.size.height)

    def on_mount(self) -> None:
        self._deliver(ALL_CHANGES)

    # -- session plumbing -----------------------------------------------------------------

    def _state(self) -> tuple[int, ResourceState, tuple[ResourceState, int], tuple[int, int]]:
        s = self.session
        # the sampler settings count as the generation: they decide its next steps
        generation = (s.generation_revision, s.settings_revision)
        # a model opened later has the same (READY) state: its identity tells them apart
        return (s.prompt_revision, s.tokenizer_state, (s.model_state, id(s.model)), generation)

    def _prompt_bars(self) -> list[PromptBar]:
        # Cached: queried on every keystroke. Re-queried if a bar was added or removed.
        bars = self._bars_cache
        if bars is None or any(not bar.is_attached for bar in bars):
            bars = self._bars_cache = list(self.query(PromptBar))
        return bars

    def _deliver(self, changes: frozenset[str], source: PromptBar | None = None) -> None:
        if changes & {PROMPT, MODEL}:
            changes = changes | {GENERATION}  # the shared generation restarts with them
        self._seen = self._state()
        if PROMPT in changes:
            for bar in self._prompt_bars():
                if bar is not source:
                    bar.set_value(self.session.prompt)
        self._update_notice()
        self.session_changed(changes)

    def _update_notice(self) -> None:
        s = self.session
        messages: list[str] = []
        error = False
        if self.NEEDS_TOKENIZERS and not s.tokenizer_state.ready:
            messages.append(s.tokenizer_state.message)
            error |= s.tokenizer_state.status is Status.FAILED
        if self.NEEDS_MODEL and not s.model_state.ready:
            messages.append(s.model_state.message)
            error |= s.model_state.status is Status.FAILED
        state = (s.tokenizer_state, s.model_state)
        if state == self._notice_state:
            return  # nothing to redraw (the common case: a keystroke)
        self._notice_state = state
        header = self.query(ChapterHeader)
        loading = [
            what
            for what, state in (("tokenizers", s.tokenizer_state), ("model", s.model_state))
            if state.status is Status.LOADING
        ]
        self._loading_status = f"loading {' and '.join(loading)}…" if loading else ""
        if header:
            header.first().weights_note = getattr(s, "weights_note", "")
            self._computing_changed()
        notices = self.query(ResourceNotice)
        if not notices:
            return
        notice = notices.first()
        notice.display = bool(messages)
        notice.set_class(error, "-error")
        if messages:
            notice.update(Text("\n".join(messages)))

    def on_session_changed(self, message: SessionChanged) -> None:
        message.stop()
        self._deliver(message.changes)

    def on_screen_resume(self) -> None:
        if self._seen is None:
            return  # not mounted yet: on_mount delivers everything
        self._computing_changed()  # a model may be opening (or have finished) meanwhile
        now = self._state()
        changes = {
            name
            for name, before, after in zip(
                (PROMPT, TOKENIZERS, MODEL, GENERATION), self._seen, now, strict=True
            )
            if before != after
        }
        if changes:
            self._deliver(frozenset(changes))

    def prompt_bar_edited(self, bar: PromptBar, value: str) -> None:
        """Called by a :class:`PromptBar` in this screen when the person edits it (directly,
        so the recomputed chapter is painted in the same frame as the keystroke)."""
        if self.session.set_prompt(value):
            self._deliver(frozenset({PROMPT}), source=bar)

    def on_prompt_bar_changed(self, event: PromptBar.Changed) -> None:
        event.stop()
        self.prompt_bar_edited(event.prompt_bar, event.value)

    # -- actions ---------------------------------------------------------------------------

    def _prompt_focused(self) -> bool:
        return any(bar.has_focus_within for bar in self._prompt_bars())

    def _typing(self) -> bool:
        """True while a text field (the prompt bar or any other input) has the cursor."""
        return self._prompt_focused() or isinstance(self.focused, Input | TextArea)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_prompt":
            return self._typing()
        if action == "focus_prompt":
            return bool(self._prompt_bars()) and not self._prompt_focused()
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def on_descendant_blur(self) -> None:
        self.refresh_bindings()

    def action_focus_prompt(self) -> None:
        bars = self._prompt_bars()
        if bars:
            bars[0].focus_editor()

    def action_explain(self) -> None:
        """Explain the focused panel: what it shows, how to read it, how to check it."""
        from .explain import ExplainScreen, explanation_for

        widget = self.focused  # None: nothing has focus, so explain the chapter's main panel
        panel = explanation_for(self, self.chapter.slug, widget)
        if panel is None:
            where = f"this panel (#{widget.id})" if widget is not None else "this chapter"
            self.notify(f"No explanation for {where} yet.", timeout=3)
            return
        self.app.push_screen(ExplainScreen(panel))

    def action_leave_prompt(self) -> None:
        self.focus_body()

    def focus_body(self) -> None:
        """Give focus to the chapter's main widget (``AUTO_FOCUS``), or to nothing."""
        if self.AUTO_FOCUS:
            for widget in self.query(self.AUTO_FOCUS):
                if widget.focusable:
                    widget.focus()
                    return
        self.set_focus(None)
