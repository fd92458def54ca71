"""Chapter 12's recorded run: the loss curves of a training history, the phases found in
them, and the learning-rate schedule the run followed.

A history is what :func:`core.train.trainer.compact_history` writes
(``training_history.json`` beside a model): the training loss averaged over groups of
steps, every validation estimate, the run's settings. Nothing here is illustrative: the
curves are the recorded numbers, the schedule is recomputed with the trainer's own
:meth:`~core.train.trainer.TrainSettings.lr_for`, and the phases come from the rule in
:func:`detect_phases`, which the screen prints.

The phase rule, in words. Let D be the whole run's drop in validation loss and S its
length in steps. At every evaluation, fit a straight line to the validation losses within
±5% of the run around it (least squares) and express its slope as a share of D lost per
tenth of the run::

    rate = -slope * (S / 10) / D

A run that fell at an even pace from start to end has rate 0.1 everywhere. Then

- **fast fitting**: rate ≥ 0.1 (faster than that even pace);
- **slow consolidation**: 0.005 ≤ rate < 0.1 (still falling, more slowly);
- **plateau**: |rate| < 0.005 (less than half a percent of D per tenth of the run);
- **rising**: rate ≤ -0.005 (validation loss going up: the model is overfitting).

Neighbouring evaluations of one kind form a phase; a phase shorter than 5% of the run is
merged into the one before it (so one noisy estimate does not start a phase).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.train.trainer import HISTORY_FILE, TrainSettings

FAST = "fast fitting"
CONSOLIDATION = "slow consolidation"
PLATEAU = "plateau"
RISING = "rising"
PHASE_KINDS: tuple[str, ...] = (FAST, CONSOLIDATION, PLATEAU, RISING)

FAST_RATE = 0.1
"""Share of the whole drop per tenth of the run at or above which a phase is fast."""
FLAT_RATE = 0.005
"""Below this share (in absolute value) the curve counts as flat."""
SLOPE_SPAN = 0.05
"""Half-width of the slope window, as a share of the run."""
MIN_PHASE = 0.05
"""Shortest phase kept, as a share of the run."""

EXPLAIN: dict[str, str] = {
    FAST: "The model picks up what is easy and common: which tokens are frequent, "
    "spaces and punctuation, the stock openings of stories. Every step removes a large "
    "share of the error.",
    CONSOLIDATION: "The easy patterns are learnt; what is left is rarer words, "
    "grammar across a sentence, names that must be repeated. Each step buys a little, "
    "and the training loss starts to fall faster than the validation loss.",
    PLATEAU: "Validation loss hardly moves any more: the model has about as much as it "
    "can take from this data at this size. The learning rate is near its floor.",
    RISING: "Validation loss goes up while training loss keeps falling: the model is "
    "memorising its training text instead of learning the language.",
}
"""One explanation per phase kind, shown beside the detected phase."""


class HistoryError(ValueError):
    """A history file is missing or not in the expected format (one-line message)."""


@dataclass(frozen=True)
class History:
    """A recorded run: curves, settings and totals."""

    train_steps: np.ndarray  # [n] last step of each averaged group
    train_loss: np.ndarray  # [n] mean training loss of the group (with dropout)
    train_lr: np.ndarray  # [n] learning rate at the group's last step (4 digits)
    eval_steps: np.ndarray  # [m] steps of the validation estimates
    val_loss: np.ndarray  # [m]
    eval_train_loss: np.ndarray  # [m] mean training loss since the previous estimate (NaN at 0)
    settings: TrainSettings
    total_steps: int
    tokens_per_step: int
    wall_seconds: float
    final: dict[str, Any]

    @property
    def tokens_seen(self) -> int:
        return self.total_steps * self.tokens_per_step


def parse_history(raw: dict[str, Any]) -> History:
    """A :class:`History` from the JSON of a ``training_history.json``."""
    try:
        run, train, evals = raw["run"], raw["train"], raw["eval"]
        settings = TrainSettings.from_dict(run["settings"])
        eval_train = [np.nan if e.get("train_loss") is None else e["train_loss"] for e in evals]
        history = History(
            train_steps=np.asarray(train["step"], dtype=np.int64),
            train_loss=np.asarray(train["loss"], dtype=np.float64),
            train_lr=np.asarray(train["lr"], dtype=np.float64),
            eval_steps=np.asarray([e["step"] for e in evals], dtype=np.int64),
            val_loss=np.asarray([e["val_loss"] for e in evals], dtype=np.float64),
            eval_train_loss=np.asarray(eval_train, dtype=np.float64),
            settings=settings,
            total_steps=int(run["steps"]),
            tokens_per_step=int(run["tokens_per_step"]),
            wall_seconds=float(run.get("wall_seconds") or 0.0),
            final=dict(raw.get("final") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HistoryError(f"not a training history: {type(exc).__name__} {exc}") from None
    if history.val_loss.size < 3:
        raise HistoryError("the history has fewer than 3 validation estimates")
    return history


def load_history(model_dir: str | Path) -> History:
    """Read ``training_history.json`` from a model directory; :class:`HistoryError` if absent."""
    path = Path(model_dir) / HISTORY_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError(f"no training history in {Path(model_dir)}") from None
    except (OSError, ValueError) as exc:
        raise HistoryError(f"cannot read {path}: {exc}") from None
    return parse_history(raw)


# -- the schedule ------------------------------------------------------------------------------


def lr_schedule(
    settings: TrainSettings, steps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(steps, learning rate) of the run, from the trainer's own schedule function.

    ``steps`` are 0-based step indices (default: every step of the run). The trainer caps
    warmup at a tenth of the run, so a 10-step run warms up in 1 step:

    >>> s = TrainSettings(steps=10, lr=1.0, min_lr=0.0, warmup=2)
    >>> lr_schedule(s, np.array([0, 1, 9]))[1].round(3).tolist()
    [1.0, 0.97, 0.0]
    """
    if steps is None:
        steps = np.arange(settings.steps)
    rates = np.array([settings.lr_for(int(s)) for s in steps], dtype=np.float64)
    return np.asarray(steps), rates


# -- phases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One stretch of the run with one kind of behaviour."""

    kind: str
    start: int  # step
    end: int  # step
    val_start: float
    val_end: float
    rate: float
    """Mean rate over the phase (share of the whole drop per tenth of the run)."""

    @property
    def drop(self) -> float:
        return self.val_start - self.val_end

    @property
    def explanation(self) -> str:
        return EXPLAIN[self.kind]


def local_slopes(x: np.ndarray, y: np.ndarray, half_width: float) -> np.ndarray:
    """Least-squares slope of y against x over the points with |x - x_i| <= half_width,
    for every i (at least the two nearest neighbours are always used).

    >>> local_slopes(np.arange(5.0), 3.0 * np.arange(5.0), 1.0).tolist()
    [3.0, 3.0, 3.0, 3.0, 3.0]
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = np.empty_like(x)
    for i in range(x.size):
        sel = np.abs(x - x[i]) <= half_width
        if np.count_nonzero(sel) < 2:  # widen to the neighbours
            lo, hi = max(0, i - 1), min(x.size, i + 2)
            sel = np.zeros_like(sel)
            sel[lo:hi] = True
        xs, ys = x[sel], y[sel]
        dx = xs - xs.mean()
        out[i] = float(np.sum(dx * (ys - ys.mean())) / np.sum(dx * dx))
    return out


def classify_rate(rate: float) -> str:
    """The phase kind of one rate (share of the whole drop per tenth of the run).

    >>> [classify_rate(r) for r in (0.5, 0.02, 0.001, -0.02)]
    ['fast fitting', 'slow consolidation', 'plateau', 'rising']
    """
    if rate >= FAST_RATE:
        return FAST
    if rate >= FLAT_RATE:
        return CONSOLIDATION
    if rate > -FLAT_RATE:
        return PLATEAU
    return RISING


def phase_rates(steps: np.ndarray, loss: np.ndarray, total_steps: int | None = None) -> np.ndarray:
    """The rate of :func:`detect_phases` at every point of the curve."""
    steps = np.asarray(steps, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    total = float(total_steps or (steps[-1] - steps[0]) or 1.0)
    drop = float(loss[0] - loss[-1])
    scale = abs(drop) if abs(drop) > 1e-12 else 1.0
    slopes = local_slopes(steps, loss, SLOPE_SPAN * total)
    return -slopes * (total / 10.0) / scale


def detect_phases(
    steps: np.ndarray, loss: np.ndarray, total_steps: int | None = None
) -> list[Phase]:
    """Split a (validation) loss curve into phases by the rule in this module's docstring.

    The phases are contiguous and cover ``steps[0]`` to ``steps[-1]``; each boundary is a
    point of the curve (so start/end losses are recorded values, not interpolated).
    """
    steps = np.asarray(steps, dtype=np.int64)
    loss = np.asarray(loss, dtype=np.float64)
    if steps.size < 3 or steps.size != loss.size:
        raise ValueError("a curve needs at least 3 points, with one loss per step")
    total = int(total_steps or steps[-1] - steps[0] or 1)
    rates = phase_rates(steps, loss, total)
    kinds = [classify_rate(float(r)) for r in rates]
    # runs of one kind: [first index, last index] — a phase spans from the point where
    # its run starts to the point where the next run starts
    runs: list[list[Any]] = []
    for i, kind in enumerate(kinds):
        if runs and runs[-1][0] == kind:
            runs[-1][2] = i
        else:
            runs.append([kind, i, i])
    bounds = [[kind, first] for kind, first, _ in runs]
    merged: list[list[Any]] = []
    for j, (kind, first) in enumerate(bounds):
        nxt = bounds[j + 1][1] if j + 1 < len(bounds) else steps.size - 1
        length = steps[nxt] - steps[first]
        if merged and (length < MIN_PHASE * total or merged[-1][0] == kind):
            continue  # absorbed into the previous phase
        merged.append([kind, first])
    # the first phase may itself be too short: then it takes the next one's kind
    if len(merged) > 1 and steps[merged[1][1]] - steps[merged[0][1]] < MIN_PHASE * total:
        merged[1][1] = merged[0][1]
        merged.pop(0)
    phases = []
    for j, (kind, first) in enumerate(merged):
        last = merged[j + 1][1] if j + 1 < len(merged) else steps.size - 1
        span = float(steps[last] - steps[first]) or 1.0
        drop = float(loss[0] - loss[-1])
        rate = (loss[first] - loss[last]) / span * (total / 10.0) / (abs(drop) or 1.0)
        phases.append(
            Phase(kind, int(steps[first]), int(steps[last]), float(loss[first]),
                  float(loss[last]), float(rate))
        )  # fmt: skip
    return phases


def gap_opens(history: History) -> int | None:
    """First evaluation step at which the training loss is below the validation loss and
    stays below (the model starts to do better on text it has seen), or None."""
    below = history.eval_train_loss < history.val_loss  # NaN compares False
    for i in range(below.size):
        if below[i:].all():
            return int(history.eval_steps[i])
    return None


@dataclass(frozen=True)
class PhasesView:
    """What chapter 12's upper half shows."""

    history: History
    phases: list[Phase]
    lr_steps: np.ndarray
    lr: np.ndarray
    gap_step: int | None

    def summary(self) -> str:
        h = self.history
        val = h.final.get("val_loss")
        train = h.final.get("train_loss")
        finals = (
            f" Final loss over the whole files: validation {val:.4f}, training {train:.4f} "
            "nats per token."
            if val is not None and train is not None
            else ""
        )
        return (
            f"{h.total_steps:,} steps of {h.tokens_per_step:,} tokens "
            f"({h.tokens_seen:,} tokens), {h.wall_seconds / 3600:.1f} h of numpy on a CPU." + finals
        )


def phases_view(history: History) -> PhasesView:
    """Everything the recorded-run panel draws, from one history."""
    phases = detect_phases(history.eval_steps, history.val_loss, history.total_steps)
    lr_steps, lr = lr_schedule(history.settings)
    return PhasesView(history, phases, lr_steps + 1, lr, gap_opens(history))
