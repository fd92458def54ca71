"""Chapter 12: Training phases — the recorded run of anatomy-mini, then a live run on the
person's own text.

Top: the train and validation curves from ``training_history.json`` with the phases
:func:`views.training_phases.detect_phases` finds (drawn as marker lines, listed with
their rule) and the learning-rate schedule recomputed by the trainer's own function.
Bottom: a copy of the model trained on the shared prompt for a few dozen AdamW steps in a
worker (:func:`views.live_training.run_live_training`), with progress, the loss on the
text and on held-out stories after every step, and the greedy completion before and after.

The loaded weights never change. ``k`` makes the trained copy the session's model (every
header then says "⚠ trained copy"); ``u`` goes back to the loaded weights.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, Static

from ..core.model import default_model_dir
from ..views.live_training import (
    DEFAULT_LR,
    DEFAULT_STEPS,
    VAL_WINDOW,
    VAL_WINDOWS,
    LiveRun,
    next_lr,
    parse_lr,
    run_live_training,
)
from ..views.training_phases import HistoryError, PhasesView, load_history, phases_view
from ..views.training_text import (
    PHASE_SHORT,
    RULE,
    completion_lines,
    fmt_lr,
    phase_explanations,
    phase_rows,
    plan_summary,
    run_lines,
)
from ..widgets.line_plot import LinePlot, Series, VLine
from ..widgets.prompt_bar import PromptBar
from .base import MODEL, ChapterScreen, ProgressReport, SessionChanged

STEP_CHOICES = (10, 20, 30, 50)
DRAW_EVERY = 0.2
"""Seconds between repaints of the live run while it trains."""
INLINE_CHARS = 4000
"""Up to this many characters the plan line is computed inline, on every keystroke."""

LEAD = (
    "anatomy-mini learnt from 2 MB of children's stories in 5,000 steps. Below: the losses "
    "recorded while it trained, the phases in them, and the learning rate it followed. "
    "Further down, train a copy on your own text and watch it learn, and overfit."
)
LIVE_LEAD = (
    "Train a copy of the model on the prompt: real AdamW steps through the hand-written "
    "backward pass. After each step it is scored on your text and on "
    f"{VAL_WINDOWS * VAL_WINDOW} tokens of held-out stories it never trained on. The "
    "loaded weights do not change."
)


class TrainingScreen(ChapterScreen):
    """Chapter 12: recorded curves and phases, then live training on the prompt."""

    NEEDS_MODEL = True
    AUTO_FOCUS = "#c12-body"
    CSS_PATH = "c12_training.tcss"
    BINDINGS = [
        Binding("g", "train", "Train", id="training.train",
                tooltip="Train a fresh copy on the prompt for the steps shown (restarts a run)"),
        Binding("x", "stop", "Stop", id="training.stop",
                tooltip="Stop the run after the step in progress; the partial copy is dropped"),
        Binding("r", "reset", "Reset", id="training.reset",
                tooltip="Forget the live run and its trained copy"),
        Binding("plus,equals_sign", "lr_up", "LR ↑", id="training.lr-up",
                tooltip="Next higher learning rate (the top ones are absurd on purpose)"),
        Binding("minus", "lr_down", "LR ↓", id="training.lr-down",
                tooltip="Next lower learning rate"),
        Binding("s", "steps", "Steps", id="training.steps",
                tooltip="Cycle the number of steps: 10, 20, 30, 50"),
        Binding("l", "edit_lr", "Type LR", show=False, id="training.type-lr",
                tooltip="Put the cursor in the learning-rate field (Enter applies, Esc leaves)"),
        Binding("k", "keep", "Keep copy", id="training.keep",
                tooltip="Use the trained copy in every chapter (the header then says so)"),
        Binding("u", "use_loaded", "Loaded weights", id="training.use-loaded",
                tooltip="Go back to the weights as loaded, in every chapter"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.lr = DEFAULT_LR
        self.steps = DEFAULT_STEPS
        self.phases: PhasesView | None = None
        """The recorded run as drawn (None when the history cannot be read)."""
        self.live: LiveRun | None = None
        """The live run as drawn: the last progress report, or the finished run."""
        self.live_state = "idle"
        """``idle``, ``running``, ``done``, ``stopped``, ``blew up`` or ``error``."""
        self.live_message = ""
        self._last_draw = 0.0
        self._draw_timer: Timer | None = None
        self._drawn_state = ""

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="c12-body"):
            yield Static(Text(LEAD), classes="prose")
            yield Static(id="c12-history-title", classes="heading")
            yield LinePlot(id="c12-curves", x_label="step", y_label="loss (nats/token)")
            yield LinePlot(id="c12-lr", x_label="step", y_label="learning rate ×10⁻³")
            yield Static(id="c12-phases")
            yield Static(Text(RULE), classes="prose dim")
            yield Static(Text("Live: train a copy on your text", style="bold"), classes="heading")
            yield Static(Text(LIVE_LEAD), classes="prose")
            yield PromptBar(self.session.prompt, title="Text to train on (the shared prompt)",
                            id="prompt")  # fmt: skip
            yield Static(id="c12-plan")
            yield Input(placeholder="learning rate, e.g. 3e-4 (Enter)", id="c12-lr-input",
                        compact=True, max_length=32)  # fmt: skip
            yield Static(id="c12-status")
            yield LinePlot(id="c12-live", x_label="step", y_label="loss")
            yield Static(id="c12-completions")

    def on_mount(self) -> None:
        self.compute("history", load_phases, str(default_model_dir()), then=self.draw_history,
                     on_error=self.history_error)  # fmt: skip

    # -- session -----------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        self.draw_plan()
        self.draw_live()

    # -- recorded run --------------------------------------------------------------------------

    def history_error(self, message: str) -> None:
        self.query_one("#c12-history-title", Static).update(Text(f"No recorded run: {message}"))

    def draw_history(self, view: PhasesView) -> None:
        self.phases = view
        h = view.history
        self.query_one("#c12-history-title", Static).update(
            Text.assemble(("The recorded run of anatomy-mini. ", "bold"), view.summary())
        )
        vlines = [VLine(p.start, PHASE_SHORT[p.kind]) for p in view.phases]
        curves = self.query_one("#c12-curves", LinePlot)
        curves.series = (
            Series("train (with dropout)", h.train_loss, h.train_steps),
            Series("validation", h.val_loss, h.eval_steps),
        )
        curves.vlines = vlines
        lr = self.query_one("#c12-lr", LinePlot)
        lr.series = (Series("learning rate", view.lr * 1e3, view.lr_steps),)
        lr.vlines = vlines
        text = Text()
        for i, (kind, steps, losses, rate) in enumerate(phase_rows(view)):
            text.append(f"{kind:<21}", style="bold")
            text.append(f"{steps:<13}{losses:<17}{rate:>7}\n", style="bold" if i == 0 else "")
        if view.gap_step is not None:
            text.append(f"From step {view.gap_step:,} on, training loss stays below validation "
                        "loss: the model starts to do better on text it has read.\n")  # fmt: skip
        for heading, body in phase_explanations(view.phases):
            text.append(f"\n{heading}: ", style="bold")
            text.append(body)
        self.query_one("#c12-phases", Static).update(text)

    # -- live run ---------------------------------------------------------------------------------

    def draw_plan(self) -> None:
        """Ask for the plan line (inline for a typed text, in a worker for a long paste)."""
        model = self.session.model
        if model is None:
            self.query_one("#c12-plan", Static).update("")
            return
        text = self.session.prompt
        self.compute("plan", plan_summary, model, self._encoding(), text, self.steps, self.lr,
                     then=self.show_plan, on_error=self.show_plan_error,
                     inline=len(text) <= INLINE_CHARS)  # fmt: skip

    def show_plan(self, lines: tuple[str, str, str]) -> None:
        budget, line, note = lines
        self.query_one("#c12-plan", Static).update(
            Text.assemble(budget + "\n" if budget else "", (line, "bold"), "\n", note)
        )

    def show_plan_error(self, message: str) -> None:
        self.query_one("#c12-plan", Static).update(Text(f"✗ {message}", style="bold"))

    def _encoding(self):  # noqa: ANN202
        """The loaded model's own tokenizer, else the built-in vocabulary (None while it
        loads: the worker then says so, or uses anatomy-mini's)."""
        own = getattr(self.session.model, "tokenizer", None)
        if own is not None:
            return own
        try:
            return self.session.encoding("model")
        except Exception:  # noqa: BLE001 - not loaded yet
            return None

    def action_train(self) -> None:
        model = self.session.model
        if model is None:
            self.notify("The model is not loaded yet.", severity="warning")
            return
        encoding = self._encoding()
        self.live_state, self.live_message, self.live = "running", "", None
        self.draw_live()
        self.compute("train", run_live_training, model, encoding, self.session.prompt,
                     self.steps, self.lr, then=self.finish_live, on_error=self.live_error,
                     on_progress=self.progress_live)  # fmt: skip

    def progress_live(self, report: ProgressReport) -> None:
        """Draw a step's figures, at most every :data:`DRAW_EVERY` seconds: a key pressed
        while training then never waits behind a queue of repaints."""
        if not isinstance(report.value, LiveRun):
            return
        self.live = report.value
        wait = self._last_draw + DRAW_EVERY - time.monotonic()
        if wait <= 0:
            self.draw_live()
        elif self._draw_timer is None:
            self._draw_timer = self.set_timer(wait, self._draw_pending)

    def _draw_pending(self) -> None:
        self._draw_timer = None
        if self.live_state == "running":
            self.draw_live()

    def finish_live(self, run: LiveRun) -> None:
        self.live = run
        self.live_state = run.status
        self.draw_live()

    def live_error(self, message: str) -> None:
        self.live_state, self.live_message = "error", message
        self.draw_live()

    def action_stop(self) -> None:
        if self.live_state != "running":
            return
        self.cancel_compute("train")
        self.live_state = "stopped"
        done = len(self.live.steps) if self.live else 0
        self.live_message = (f"Stopped after step {done}. The partial copy was dropped; "
                             "the loaded weights are untouched.")  # fmt: skip
        self.draw_live()

    def action_reset(self) -> None:
        self.cancel_compute("train")
        self.live, self.live_state, self.live_message = None, "idle", ""
        self.draw_live()

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        self.query_one("#c12-lr-input", Input).value = ""
        self.draw_plan()

    def action_lr_up(self) -> None:
        self.set_lr(next_lr(self.lr, +1))

    def action_lr_down(self) -> None:
        self.set_lr(next_lr(self.lr, -1))

    def action_steps(self) -> None:
        i = STEP_CHOICES.index(self.steps) if self.steps in STEP_CHOICES else -1
        self.steps = STEP_CHOICES[(i + 1) % len(STEP_CHOICES)]
        self.draw_plan()

    def action_edit_lr(self) -> None:
        self.query_one("#c12-lr-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            self.set_lr(parse_lr(event.value))
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.focus_body()

    def action_keep(self) -> None:
        run = self.live
        if self.live_state != "done" or run is None or run.model is None:
            self.notify("Nothing to keep: train a copy to the end first (g).", severity="warning")
            return
        note = f"trained {len(run.steps)} steps at lr {fmt_lr(run.plan.lr)} on your text"
        self.session.adopt_trained(run.model, note)
        self.live_message = "Kept: every chapter now runs this trained copy (u goes back)."
        self.post_message(SessionChanged(frozenset({MODEL})))

    def action_use_loaded(self) -> None:
        if self.session.restore_loaded():
            self.live_message = "Back to the loaded weights in every chapter."
            self.post_message(SessionChanged(frozenset({MODEL})))
        else:
            self.notify("The loaded weights are already in use.")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # keys that cannot do anything now are left out of the footer
        if action == "stop":
            return self.live_state == "running"
        if action == "keep":
            return self.live_state == "done"
        if action == "use_loaded":
            return bool(self.session.weights_note)
        return super().check_action(action, parameters)

    def draw_live(self) -> None:
        self._last_draw = time.monotonic()
        if self._drawn_state != self.live_state:  # the footer's keys depend on it
            self._drawn_state = self.live_state
            self.refresh_bindings()
        status = self.query_one("#c12-status", Static)
        plot = self.query_one("#c12-live", LinePlot)
        run = self.live
        text = Text()
        if self.session.weights_note:
            text.append(f"⚠ Every chapter runs a trained copy: {self.session.weights_note}.\n",
                        style="bold")  # fmt: skip
        if run is None:
            hint = {
                "running": "Starting: scoring the held-out stories…",
                "error": f"✗ {self.live_message}",
            }.get(
                self.live_state,  # fmt: skip
                "Press g to train a copy on the prompt.",
            )
            status.update(text.append(hint))
            plot.series = ()
            self.query_one("#c12-completions", Static).update("")
            return
        if run.model_note:
            text.append(run.model_note + "\n", style="italic")
        for line in run_lines(run):
            text.append(line + "\n", style="bold" if line.startswith("✗") else "")
        if self.live_state == "running":
            text.append("Training… (x stops after the step in progress)")
        elif self.live_message:
            text.append(self.live_message)
        elif self.live_state == "done":
            text.append("Done. k keeps this copy for every chapter; r forgets it.")
        status.update(text)
        # x = updates made so far; both losses measured on fixed windows after each update
        x = [0] + [s.step for s in run.steps]
        plot.series = (
            Series("your text", [run.text_before, *run.text_losses], x),
            Series("held-out stories", [run.val_before, *run.val_losses], x),
        )
        plot.xlim = (0, run.plan.steps)
        block = Text()
        for label, body in completion_lines(run):
            block.append(f"{label:>7} ", style="bold")
            block.append(body.replace("\n", "⏎") + "\n")
        self.query_one("#c12-completions", Static).update(block)


def load_phases(model_dir: str) -> PhasesView:
    """Read the shipped history and find its phases (pure: for the compute path)."""
    try:
        return phases_view(load_history(model_dir))
    except HistoryError as exc:
        raise ValueError(str(exc)) from None
