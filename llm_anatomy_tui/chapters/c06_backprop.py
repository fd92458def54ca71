"""Chapter 6: Backpropagation — a toy graph by hand, then one real step of the model.

Three panels, top to bottom:

- the toy (hand-made numbers): forward → loss → local derivatives → chain rule → update →
  new loss, revealed one stage per key press (:mod:`..core.lessons.toy_backprop`);
- one SGD step of a copy of the model on the prompt: loss before/after, gradient norm of
  every block and tensor, each target token's probability before/after;
- a gradient check the person aims: backward pass vs central finite difference, float64.

The loaded weights are never written: every step works on a fresh copy
(:mod:`..core.lessons.grad_step`). The toy is cheap and computed inline; the step and the
check run through the compute path in workers.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Static

from ..core.lessons.toy_backprop import STAGES, ToyBackprop, run_toy
from ..core.train.backward import parameters
from ..views.backprop import (
    LR_CHOICES,
    CheckView,
    StepView,
    check_lines,
    clamp_index,
    layer_lines,
    parse_lr,
    prepare_check,
    prepare_step,
    step_summary,
    tensor_lines,
    token_lines,
    toy_stages,
)
from ..views.token_pieces import token_pieces
from ..widgets.prompt_bar import PromptBar
from .base import ChapterScreen, ProgressReport

LEAD = (
    "Training nudges every weight in the direction that lowers the loss. Backpropagation "
    "finds that direction: it walks the computation backwards, multiplying each step's "
    "local slope (the chain rule). First on a toy you can check by hand, then on the model."
)
REAL_NOTE = (
    "Loss = mean of −ln p(next token) over every position of your prompt. One step of plain "
    "gradient descent (w ← w − lr·g) on a copy of the weights; the loaded model that the "
    "other chapters show is never changed. On a short prompt one step can move the prompt's "
    "own probabilities a lot: that is memorising this text, not learning (chapter 12)."
)
CHECK_NOTE = (
    "Is the backward pass right? Nudge one weight by ±h, measure the loss both times, and "
    "compare the slope with the gradient the backward pass computed."
)


PAUSE = 0.1
"""Seconds a step or check waits before starting: typing a word costs one job, not one per key."""


def after_pause(fn, *args):  # noqa: ANN001, ANN002, ANN201
    """Run ``fn(*args)`` after :data:`PAUSE`, unless a newer request replaced it meanwhile
    (the last argument is the compute path's task)."""
    *args, task = args
    time.sleep(PAUSE)
    return None if task.cancelled else fn(*args)


def ignore(_report: ProgressReport) -> None:
    """The step and check report no progress; asking for a task only lets them be skipped."""


class BackpropScreen(ChapterScreen):
    """Chapter 6: see module docstring."""

    CSS_PATH = "c06_backprop.tcss"
    NEEDS_MODEL = True
    AUTO_FOCUS = "#b-body"
    BINDINGS = [
        Binding("r", "reveal", "Reveal", id="backprop.reveal",
                tooltip="Show the toy example's next stage (after the last, start again)"),
        Binding("plus,equals_sign", "lr(1)", "lr+", id="backprop.lr-up",
                tooltip="Raise the learning rate (toy and real step)"),
        Binding("minus", "lr(-1)", "lr−", id="backprop.lr-down",
                tooltip="Lower the learning rate (toy and real step)"),
        Binding("e", "edit_lr", "Type lr", id="backprop.edit-lr",
                tooltip="Type any learning rate (Enter applies, Esc leaves)"),
        Binding("w", "tensor(1)", "Weight", id="backprop.next-tensor",
                tooltip="Gradient check: the next weight tensor"),
        Binding("W", "tensor(-1)", "Prev weight", show=False, id="backprop.prev-tensor",
                tooltip="Gradient check: the previous weight tensor"),
        Binding("j", "move(0, 1)", "Row+", show=False, id="backprop.row-down",
                tooltip="Gradient check: next row of the tensor"),
        Binding("k", "move(0, -1)", "Row−", show=False, id="backprop.row-up",
                tooltip="Gradient check: previous row"),
        Binding("l", "move(1, 1)", "Col+", show=False, id="backprop.col-right",
                tooltip="Gradient check: next column"),
        Binding("h", "move(1, -1)", "Col−", show=False, id="backprop.col-left",
                tooltip="Gradient check: previous column"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.stages_shown = 1
        """How many toy stages are revealed (1..6)."""
        self.lr = 0.1
        """The learning rate of the toy update and of the real step."""
        self.toy: ToyBackprop = run_toy(self.lr)
        self.step: StepView | None = None
        """The last real step drawn (None before the first, or when it failed)."""
        self.check: CheckView | None = None
        """The last gradient check drawn."""
        self.pick: tuple[int, tuple[int, ...]] = (2, (0, 0))
        """Gradient check aim: (tensor number in parameter order, index); starts at block
        0's fused q|k|v matrix."""
        self.shapes: list[tuple[int, ...]] = []
        """Shapes of the loaded model's tensors in parameter order (for moving the aim)."""
        self.message = ""
        """The last complaint shown under the real step (empty prompt, bad lr …)."""

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="b-body", can_focus=True):
            yield PromptBar(self.session.prompt, id="prompt")
            yield Static(LEAD, id="b-lead")
            yield Static("Toy example: hand-made numbers, nothing trained", classes="b-title")
            yield Static(id="b-toy")
            yield Static("One real gradient step on your prompt", classes="b-title")
            yield Static(REAL_NOTE, classes="b-note")
            with Horizontal(id="b-lr-row"):
                yield Static(Text("learning rate  e: type  +/−: step "), id="b-lr-label")
                yield Input(f"{self.lr:g}", placeholder="e.g. 0.1", id="b-lr")
            yield Static(id="b-step")
            yield Static("Gradient check", classes="b-title")
            yield Static(CHECK_NOTE, classes="b-note")
            yield Static(id="b-check")

    def on_mount(self) -> None:
        self.draw_toy()

    # -- computing -------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if self.session.model is not None:
            self.shapes = [p.shape for p in parameters(self.session.model).values()]
        self.draw_toy()
        self.request_step()
        self.request_check()

    def _ids(self) -> list[int] | None:
        if self.session.model is None:
            return None
        try:
            return self.session.prompt_ids("model")
        except Exception:  # tokenizers not ready: the notice says so
            return None

    def request_step(self) -> None:
        ids = self._ids()
        if ids is None:
            return
        pieces = [p.display for p in token_pieces(self.session.encoding("model"), ids)]
        args = (self.session.model, ids, pieces, self.session.prompt, self.lr)
        self.compute("step", after_pause, prepare_step, *args,
                     then=self.draw_step, on_error=self.step_failed, on_progress=ignore)  # fmt: skip

    def request_check(self) -> None:
        ids = self._ids()
        if ids is None:
            return
        tensor, index = self.pick
        args = (self.session.model, ids, self.session.prompt, tensor, index)
        self.compute("check", after_pause, prepare_check, *args,
                     then=self.draw_check, on_error=self.check_failed, on_progress=ignore)  # fmt: skip

    # -- drawing ---------------------------------------------------------------------------

    def draw_toy(self) -> None:
        self.toy = run_toy(self.lr)
        text = Text()
        for i, stage in enumerate(toy_stages(self.toy, self.stages_shown)):
            if i:
                text.append("\n")
            text.append(stage.title + "\n", "bold")
            text.append("\n".join(stage.lines))
        left = len(STAGES) - self.stages_shown
        text.append(
            f"\n[r] reveal the next stage ({left} left)" if left else "\n[r] start again",
            "italic",
        )
        self.query_one("#b-toy", Static).update(text)

    def draw_step(self, view: StepView) -> None:
        self.step, self.message = view, ""
        s = view.step
        text = Text(view.note + "\n", "italic")
        text.append("\n".join(step_summary(s)) + "\n\n")
        text.append("Probability of each next token, before → after the step\n", "bold")
        text.append("\n".join(token_lines(view.rows)) + "\n\n")
        text.append("Gradient norm per block (‖g‖ of all its tensors)\n", "bold")
        text.append("\n".join(layer_lines(s)) + "\n\n")
        text.append("Gradient norm per tensor\n", "bold")
        text.append("\n".join(tensor_lines(s)))
        self.query_one("#b-step", Static).update(text)

    def step_failed(self, message: str) -> None:
        self.step, self.message = None, message
        self.query_one("#b-step", Static).update(Text(f"No step: {message}", "bold"))

    def draw_check(self, view: CheckView) -> None:
        self.check = view
        self.pick = (view.tensor, view.check.index)
        text = Text("\n".join(check_lines(view.check)))
        text.append(
            f"\n[w] next tensor ({view.tensor + 1} of {view.tensors})  [j/k] row  [h/l] column"
            f"  shape {'×'.join(map(str, view.shape))}",
            "italic",
        )
        self.query_one("#b-check", Static).update(text)

    def check_failed(self, message: str) -> None:
        self.check = None
        self.query_one("#b-check", Static).update(Text(f"No check: {message}", "bold"))

    # -- keys ------------------------------------------------------------------------------

    def action_reveal(self) -> None:
        self.stages_shown = self.stages_shown % len(STAGES) + 1
        self.draw_toy()

    def action_lr(self, delta: int) -> None:
        nearest = min(range(len(LR_CHOICES)), key=lambda i: abs(math.log(LR_CHOICES[i] / self.lr)))
        self.set_lr(LR_CHOICES[max(0, min(len(LR_CHOICES) - 1, nearest + delta))])

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        self.query_one("#b-lr", Input).value = f"{lr:g}"
        self.draw_toy()
        self.request_step()

    def action_edit_lr(self) -> None:
        self.query_one("#b-lr", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "b-lr":
            return
        event.stop()
        lr, problem = parse_lr(event.value)
        if problem:
            self.notify(problem, severity="warning")
            self.step_failed(problem)
            return
        self.set_lr(lr)
        self.focus_body()

    def action_tensor(self, delta: int) -> None:
        tensor, index = self.pick
        if self.shapes:
            tensor = (tensor + delta) % len(self.shapes)
            index = clamp_index(index, self.shapes[tensor])
        self.pick = (tensor, index)
        self.request_check()

    def action_move(self, axis: int, delta: int) -> None:
        tensor, index = self.pick
        if not self.shapes:
            return
        shape = self.shapes[tensor % len(self.shapes)]
        moved = list(clamp_index(index, shape))
        if axis < len(moved):
            moved[axis] += delta
        self.pick = (tensor, clamp_index(tuple(moved), shape))
        self.request_check()
