"""What chapter 7 prints: per-optimizer loss start/end/delta, Adam's bookkeeping, the toy's
settings as keys change them, and the real slice's description."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..core.lessons import optim_paths as op
from ..core.lessons.grad_step import memory_plan, training_model
from ..core.lessons.loss_slice import GRID, PATH_LRS, SPAN, LossSlice, SliceCache, Task
from ..core.model import Model

LR_CHOICES: tuple[float, ...] = (0.01, 0.03, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 1.0, 3.0)
"""Learning rates the toy's keys step through (0.5 is SGD's edge across the valley: 0.5·4 = 2)."""
STEP_CHOICES: tuple[int, ...] = (5, 10, 20, 30, 50, 100)
START_STEP = (1.0, 0.5)
"""How far one key press moves the start point (x, y)."""


@dataclass(frozen=True)
class ToySettings:
    """The toy's controls: where the three start, learning rate, steps, and the step shown."""

    start: tuple[float, float] = op.START
    lr_index: int = LR_CHOICES.index(op.LR)
    steps_index: int = STEP_CHOICES.index(op.STEPS)
    shown: int | None = None
    """Step drawn (animation position); None = the last."""

    @property
    def lr(self) -> float:
        return LR_CHOICES[self.lr_index]

    @property
    def steps(self) -> int:
        return STEP_CHOICES[self.steps_index]

    @property
    def step_shown(self) -> int:
        return self.steps if self.shown is None else min(self.shown, self.steps)

    def move_start(self, dx: int, dy: int) -> ToySettings:
        x = float(np.clip(self.start[0] + dx * START_STEP[0], *op.VALLEY_X))
        y = float(np.clip(self.start[1] + dy * START_STEP[1], *op.VALLEY_Y))
        return replace(self, start=(x, y), shown=None)

    def change_lr(self, delta: int) -> ToySettings:
        i = int(np.clip(self.lr_index + delta, 0, len(LR_CHOICES) - 1))
        return replace(self, lr_index=i)

    def change_steps(self, delta: int) -> ToySettings:
        i = int(np.clip(self.steps_index + delta, 0, len(STEP_CHOICES) - 1))
        return replace(self, steps_index=i, shown=None)

    def step_by(self, delta: int) -> ToySettings:
        """Move the animation position (0 = only the start)."""
        return replace(self, shown=int(np.clip(self.step_shown + delta, 0, self.steps)))


def run_toy(settings: ToySettings) -> dict[str, op.Path]:
    """The three toy trajectories for these settings (cheap: 3 × steps gradient evaluations)."""
    return op.run_all(op.valley, settings.start, settings.lr, settings.steps)


def shown_points(path: op.Path, step: int) -> np.ndarray:
    """Points of ``path`` up to ``step`` (fewer when it stopped early)."""
    return path.points[: min(step, path.steps) + 1]


def summary_lines(paths: dict[str, op.Path], step: int, decimals: int = 4) -> list[str]:
    """One line per optimizer: its mark, learning rate, loss at the start, at ``step``, Δ."""
    head = f"{'':<3}{'optimizer':<10}{'lr':>6}{'start':>11}{'step ' + str(step):>12}{'Δ':>11}"
    lines = [head]
    for name, path in paths.items():
        k = min(step, path.steps)
        end = float(path.losses[k])
        start = path.start_loss
        note = ""
        if path.diverged_at is not None and step >= path.diverged_at:
            note = f"  blew up at step {path.diverged_at}"
        lines.append(
            f"{op.MARKS[name]:<3}{op.LABELS[name]:<10}{path.lr:>6g}{start:>11.{decimals}f}"
            f"{end:>12.{decimals}f}{end - start:>+11.{decimals}f}{note}"
        )
    return lines


def adam_lines(path: op.Path, step: int) -> list[str]:
    """Adam's moments and bias correction for step ``step`` (1-based), per coordinate."""
    if step < 1 or not path.adam:
        return ["Adam has not stepped yet: press → to take step 1."]
    rec = path.adam[min(step, len(path.adam)) - 1]
    b1, b2 = op.BETA, op.BETA2

    def pair(v: np.ndarray, d: int = 4) -> str:
        return "(" + ", ".join(f"{x:.{d}f}" for x in v) + ")"

    def pair_g(v: np.ndarray) -> str:
        return "(" + ", ".join(f"{x:.3e}" for x in v) + ")"

    return [
        f"Adam, step t = {rec.t}   (β1 = {b1}, β2 = {b2}, lr = {path.lr:g}), coordinates (x, y):",
        f"  gradient g          {pair(rec.grad)}",
        f"  1st moment m = β1·m + (1−β1)·g      {pair(rec.m)}",
        f"  2nd moment v = β2·v + (1−β2)·g²     {pair_g(rec.v)}",
        f"  bias correction 1−β1^t = {rec.bias1:.6f}   1−β2^t = {rec.bias2:.6f}",
        f"  m̂ = m/(1−β1^t) {pair(rec.m_hat)}   v̂ = v/(1−β2^t) {pair_g(rec.v_hat)}",
        f"  step −lr·m̂/(√v̂ + ε) = {pair(rec.step)}",
    ]


def slice_lines(s: LossSlice) -> list[str]:
    """What the real slice is and its size."""
    n = s.axis.size
    return [
        f"{n} × {n} grid over α, β ∈ [{s.axis[0]:.2f}, {s.axis[-1]:.2f}], held-out loss on "
        f"{s.tokens} tokens of the shipped TinyStories validation text, direction seed {s.seed}",
        f"centre (the trained weights): {s.center_loss:.4f}   lowest grid point "
        f"{np.min(s.losses):.4f}   highest {np.max(s.losses):.4f}",
        "optimizers start at "
        f"({s.paths['sgd'].points[0][0]:.2f}, {s.paths['sgd'].points[0][1]:.2f}), "
        + ", ".join(f"{op.LABELS[k]} lr {v:g}" for k, v in PATH_LRS.items())
        + " (plane units)",
    ]


@dataclass(frozen=True)
class SliceView:
    """The real slice and which model it was cut from (and why)."""

    slice: LossSlice
    note: str


def slice_for(model: Model, seed: int, cache: SliceCache, task: Task | None = None) -> SliceView:
    """The slice around ``model`` (or anatomy-mini when five weight-sized float32 arrays —
    trained weights, working copy, gradients, two directions — are over budget)."""
    plan = memory_plan(model.config, "sgd", bytes_per_number=4, extra=3)
    used, note = training_model(model, plan)
    return SliceView(cache.compute(used, GRID, SPAN, seed, task), note)
