"""Chapter 7: Optimizers — SGD, momentum and Adam on a toy valley, then on the real loss.

- The toy (:mod:`..core.lessons.optim_paths`): an elongated valley drawn in the terminal,
  the three optimizers from the same start, stepped or animated; per optimizer the loss at
  the start, at the shown step and the change; Adam's moments and bias correction for the
  shown step. Keys move the start, change the learning rate and the number of steps. All
  of it is a few hundred float operations: computed inline on every key.
- The real surface (:mod:`..core.lessons.loss_slice`), cut when the person presses r: the held-out loss on a plane through
  the trained weights along two filter-normalised random directions, with the same three
  optimizers walking inside the plane on the model's real (projected) gradient. About a
  hundred forward passes: computed in a worker with progress, cancellable, cached per
  direction seed.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Static

from ..core.lessons import optim_paths as op
from ..core.lessons.loss_slice import SliceCache
from ..views.optimizers import (
    SliceView,
    ToySettings,
    adam_lines,
    run_toy,
    shown_points,
    slice_for,
    slice_lines,
    summary_lines,
)
from ..views.surface_art import draw_surface, legend
from ..widgets.surface_text import marks_legend, surface_text
from .base import ChapterScreen, ProgressReport

LEAD = (
    "An optimizer decides how far to move along the gradient. Plain SGD takes a fixed "
    "fraction of it; momentum keeps a running velocity; Adam divides each coordinate's "
    "step by the size of its recent gradients."
)
TOY_NOTE = (
    "Toy surface f(x, y) = (0.1·x² + 4·y²) / 2: a valley forty times steeper across than "
    "along. Too large a step bounces across it; too small a step crawls along it."
)
REAL_NOTE = (
    "The real model: its loss on held-out stories over a plane through the trained "
    "weights, θ + α·d₁ + β·d₂. d₁, d₂ are random directions scaled per filter to the size "
    "of each weight row (Li et al., 2018). The optimizers walk this plane using the "
    "model's real gradient projected onto d₁ and d₂."
)
ASK = (
    "Press r to cut the real surface: 81 forward passes over held-out text, then 30 "
    "gradient steps, in the background (a few seconds; x cancels)."
)
ANIMATE_SECONDS = 0.12
TOY_HEIGHT = 13
SLICES = SliceCache()
"""Finished real slices, shared by every screen of the process (keyed by model and seed)."""
REAL_CELL = (6, 1)
"""Cells per grid point of the real slice (columns, rows): each block is one computed loss."""


class OptimizersScreen(ChapterScreen):
    """Chapter 7: see module docstring."""

    CSS_PATH = "c07_optimizers.tcss"
    NEEDS_MODEL = True
    AUTO_FOCUS = "#o-body"
    BINDINGS = [
        Binding("space", "play", "Play", id="optimizers.play",
                tooltip="Animate the three trajectories from the start (again to pause)"),
        Binding("full_stop", "step(1)", "Step", id="optimizers.step",
                tooltip="Show one more step of the trajectories"),
        Binding("comma", "step(-1)", "Back", id="optimizers.back",
                tooltip="Show one step less"),
        Binding("plus,equals_sign", "lr(1)", "lr+", id="optimizers.lr-up",
                tooltip="Raise the toy's learning rate"),
        Binding("minus", "lr(-1)", "lr−", id="optimizers.lr-down",
                tooltip="Lower the toy's learning rate"),
        Binding("greater_than_sign", "steps(1)", "Steps+", id="optimizers.steps-up",
                tooltip="More steps"),
        Binding("less_than_sign", "steps(-1)", "Steps−", id="optimizers.steps-down",
                tooltip="Fewer steps"),
        Binding("a", "start(-1, 0)", "Start ←", show=False, id="optimizers.left",
                tooltip="Move the toy's start point left"),
        Binding("d", "start(1, 0)", "Start →", show=False, id="optimizers.right",
                tooltip="Move the toy's start point right"),
        Binding("w", "start(0, 1)", "Start ↑", show=False, id="optimizers.up",
                tooltip="Move the toy's start point up"),
        Binding("s", "start(0, -1)", "Start ↓", show=False, id="optimizers.down",
                tooltip="Move the toy's start point down"),
        Binding("r", "new_slice", "Real slice", id="optimizers.new-slice",
                tooltip="Cut the real loss surface (again: along two new random directions)"),
        Binding("x", "cancel_slice", "Cancel", show=False, id="optimizers.cancel",
                tooltip="Stop computing the real loss surface"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.settings = ToySettings()
        """The toy's controls (start, learning rate, steps, step shown)."""
        self.paths: dict[str, op.Path] = {}
        """The toy trajectories drawn now."""
        self.seed = 0
        """Direction seed of the real slice."""
        self.real: SliceView | None = None
        """The real slice drawn (None until it is computed)."""
        self.real_status = ""
        """One line about the real slice: progress, cancelled, or an error."""
        self._timer: Timer | None = None
        self._paths_key: tuple | None = None
        self._valley: np.ndarray | None = None

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="o-body", can_focus=True):
            yield Static(LEAD, id="o-lead")
            yield Static("Toy example: an elongated valley", classes="o-title")
            yield Static(TOY_NOTE, classes="o-note")
            yield Static(id="o-toy")
            yield Static(id="o-summary")
            yield Static(id="o-adam")
            yield Static("The real loss surface", classes="o-title")
            yield Static(REAL_NOTE, classes="o-note")
            yield Static(id="o-real-status")
            yield Static(id="o-real")

    def on_mount(self) -> None:
        self.draw_toy()

    def on_resize(self) -> None:
        if self._valley is not None and self._valley.shape[1] != self._width():
            self.draw_toy()  # the drawing follows the terminal's width

    def session_changed(self, changes: frozenset[str]) -> None:
        if "model" not in changes:
            return
        if self.real is not None:  # another model: the old slice no longer applies
            self.real = None
            self.query_one("#o-real", Static).update("")
        self.real_status = ASK if self.session.model is not None else ""
        self._status()

    # -- the toy ---------------------------------------------------------------------------

    def _width(self) -> int:
        return max(20, min(90, self.size.width - 6))

    def draw_toy(self) -> None:
        s = self.settings
        key = (s.start, s.lr, s.steps)
        if key != self._paths_key:  # stepping through a run reuses it
            self.paths, self._paths_key = run_toy(s), key
        step = s.step_shown
        width, height = self._width(), TOY_HEIGHT
        if self._valley is None or self._valley.shape != (height, width):
            xs = np.linspace(*op.VALLEY_X, width)
            ys = np.linspace(*op.VALLEY_Y, height)[::-1]
            self._valley = op.valley_grid(xs, ys)
        tracks = {name: shown_points(p, step) for name, p in self.paths.items()}
        art = draw_surface(self._valley, op.VALLEY_X, op.VALLEY_Y, tracks, width, height,
                           minimum=(0.0, 0.0))  # fmt: skip
        text = surface_text(art)
        text.append("\n")
        text.append_text(marks_legend())
        text.append(f"\nshading, low → high loss: {legend(art)}")
        text.append(
            f"\nx ∈ [{op.VALLEY_X[0]:g}, {op.VALLEY_X[1]:g}] →, y ∈ [{op.VALLEY_Y[0]:g}, "
            f"{op.VALLEY_Y[1]:g}] ↑   start ({s.start[0]:g}, {s.start[1]:g})   lr {s.lr:g}   "
            f"step {step} of {s.steps}",
            "italic",
        )
        if art.outside:
            text.append(f"\nleft the drawing: {', '.join(op.LABELS[n] for n in art.outside)}")
        self.query_one("#o-toy", Static).update(text)
        self.query_one("#o-summary", Static).update("\n".join(summary_lines(self.paths, step)))
        self.query_one("#o-adam", Static).update("\n".join(adam_lines(self.paths["adam"], step)))

    def action_play(self) -> None:
        if self._timer is not None:
            self._stop_timer()
            return
        if self.settings.step_shown >= self.settings.steps:
            self.settings = self.settings.step_by(-self.settings.steps)
        if self.app.animation_level == "none":
            # Over SSH or in a browser the app turns animation off: one frame per step
            # would send ~6 KB each, so show the end of the run at once instead.
            self.settings = self.settings.step_by(self.settings.steps)
            self.draw_toy()
            return
        self._timer = self.set_interval(ANIMATE_SECONDS, self._tick)
        self.draw_toy()

    def _tick(self) -> None:
        self.settings = self.settings.step_by(1)
        self.draw_toy()
        if self.settings.step_shown >= self.settings.steps:
            self._stop_timer()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def action_step(self, delta: int) -> None:
        self._stop_timer()
        self.settings = self.settings.step_by(delta)
        self.draw_toy()

    def action_lr(self, delta: int) -> None:
        self.settings = self.settings.change_lr(delta)
        self.draw_toy()

    def action_steps(self, delta: int) -> None:
        self._stop_timer()
        self.settings = self.settings.change_steps(delta)
        self.draw_toy()

    def action_start(self, dx: int, dy: int) -> None:
        self._stop_timer()
        self.settings = self.settings.move_start(dx, dy)
        self.draw_toy()

    # -- the real slice --------------------------------------------------------------------

    def request_slice(self) -> None:
        if self.session.model is None:
            return
        self.real_status = "computing the real loss surface… (x cancels)"
        self._status()
        self.compute("slice", slice_for, self.session.model, self.seed, SLICES,
                     then=self.draw_real, on_error=self.slice_failed,
                     on_progress=self.slice_progress)  # fmt: skip

    def slice_progress(self, report: ProgressReport) -> None:
        self.real_status = f"computing the real loss surface… {report.fraction:.0%} (x cancels)"
        self._status()

    def slice_failed(self, message: str) -> None:
        self.real_status = f"The real loss surface failed: {message}"
        self._status()

    def _status(self) -> None:
        self.query_one("#o-real-status", Static).update(Text(self.real_status, "italic"))

    def draw_real(self, view: SliceView) -> None:
        self.real, self.real_status = view, view.note
        self._status()
        s = view.slice
        cw, ch = REAL_CELL
        n = s.axis.size
        lim = (float(s.axis[0]), float(s.axis[-1]))
        tracks = {name: p.points for name, p in s.paths.items()}
        art = draw_surface(s.losses[::-1], lim, lim, tracks, n * cw, n * ch, minimum=(0.0, 0.0))
        text = surface_text(art)
        text.append("\n")
        text.append_text(marks_legend("trained weights"))
        text.append(f"\nshading, low → high loss: {legend(art)}")
        text.append(
            f"\nα → from {lim[0]:g} to {lim[1]:g}, β ↑ the same; one block = one grid point\n"
        )
        text.append("\n".join(slice_lines(s)) + "\n")
        steps = min(p.steps for p in s.paths.values())
        text.append("\n".join(summary_lines(s.paths, steps)))
        self.query_one("#o-real", Static).update(text)

    def action_new_slice(self) -> None:
        if self.real is not None or self.is_computing("slice"):
            self.seed += 1  # the first press cuts seed 0, later ones new directions
        self.request_slice()

    def action_cancel_slice(self) -> None:
        if self.is_computing("slice"):
            self.cancel_compute("slice")
            self.real_status = "Cancelled. Press r to cut the surface again."
            self._status()
