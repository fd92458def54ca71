"""SGD, momentum and Adam walking a 2-D loss surface, one recorded step at a time (chapter 7).

The update rules are the core's own (:mod:`llm_anatomy_tui.core.train.optim`): this module
only loops them over a function of two numbers and records where each step lands, so the
trajectories on screen are exactly what the trainer would do to a two-weight model.

The toy surface is an elongated valley, ``f(x, y) = (a·x² + b·y²) / 2`` with ``a = 0.1``
and ``b = 4``: forty times steeper across than along. A learning rate that is safe across
the valley crawls along it, which is the problem momentum and Adam answer.

>>> loss, grad = valley(np.array([2.0, 1.0]))
>>> round(loss, 3), grad.tolist()
(2.2, [0.2, 4.0])
>>> p = run_path("sgd", valley, (2.0, 1.0), lr=0.1, steps=1)
>>> p.points[1].round(3).tolist()   # (2 - 0.1·0.2, 1 - 0.1·4)
[1.98, 0.6]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..train.optim import adam, momentum, sgd

NAMES: tuple[str, ...] = ("sgd", "momentum", "adam")
LABELS: dict[str, str] = {"sgd": "SGD", "momentum": "Momentum", "adam": "Adam"}
MARKS: dict[str, str] = {"sgd": "S", "momentum": "M", "adam": "A"}
"""The letter each optimizer leaves on the drawn surface."""

VALLEY_A = 0.1
VALLEY_B = 4.0
VALLEY_X = (-10.0, 10.0)
VALLEY_Y = (-4.0, 4.0)
"""The part of the toy plane drawn on screen."""
START = (-8.0, 2.5)
LR = 0.3
STEPS = 30
BETA = 0.9
"""Momentum's coefficient (and Adam's beta1)."""
BETA2 = 0.999
EPS = 1e-8
DIVERGED = 1e12
"""A loss above this (or NaN/inf) stops a trajectory: the step size made it blow up."""

LossGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
"""A function of a point [2] returning (loss, gradient [2])."""


def valley(point: np.ndarray) -> tuple[float, np.ndarray]:
    """The toy surface's loss and gradient at ``point`` = (x, y)."""
    x, y = float(point[0]), float(point[1])
    loss = 0.5 * (VALLEY_A * x * x + VALLEY_B * y * y)
    return loss, np.array([VALLEY_A * x, VALLEY_B * y])


def valley_grid(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Loss at every (x, y) of two axes: [len(ys), len(xs)], row i is y = ys[i]."""
    gx, gy = np.meshgrid(xs, ys)
    return 0.5 * (VALLEY_A * gx**2 + VALLEY_B * gy**2)


@dataclass(frozen=True)
class AdamRecord:
    """Adam's bookkeeping for step ``t`` (counted from 1), per coordinate [2]."""

    t: int
    grad: np.ndarray
    m: np.ndarray
    """First moment: running mean of the gradient, ``b1·m + (1-b1)·g``."""
    v: np.ndarray
    """Second moment: running mean of the squared gradient, ``b2·v + (1-b2)·g²``."""
    bias1: float
    """``1 - b1^t``: m starts at 0, so early m is too small by this factor."""
    bias2: float
    """``1 - b2^t``, the same for v."""
    m_hat: np.ndarray
    v_hat: np.ndarray
    step: np.ndarray
    """The move actually made: new point − old point (``-lr·m̂/(√v̂+ε)``)."""


@dataclass(frozen=True)
class Path:
    """One optimizer's walk: points [n+1, 2] and losses [n+1] (index 0 = the start)."""

    name: str
    lr: float
    points: np.ndarray
    losses: np.ndarray
    adam: tuple[AdamRecord, ...] = ()
    diverged_at: int | None = None
    """The step at which the loss became NaN/inf or exceeded :data:`DIVERGED` (the walk
    stops there and ``points`` ends before it); None when it never did."""

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def start_loss(self) -> float:
        return float(self.losses[0])

    @property
    def end_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def delta(self) -> float:
        return self.end_loss - self.start_loss


def run_path(
    name: str,
    loss_grad: LossGrad,
    start: tuple[float, float] | np.ndarray,
    lr: float,
    steps: int,
    beta: float = BETA,
    beta2: float = BETA2,
    eps: float = EPS,
    cancelled: Callable[[], bool] | None = None,
) -> Path:
    """Walk ``steps`` steps of optimizer ``name`` from ``start`` with the core's update rule."""
    if name not in NAMES:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {NAMES}")
    point = np.asarray(start, dtype=np.float64).copy()
    loss, grad = loss_grad(point)
    points, losses, records = [point.copy()], [loss], []
    velocity, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    diverged = None
    for t in range(1, steps + 1):
        if cancelled is not None and cancelled():
            break
        with np.errstate(all="ignore"):
            if name == "sgd":
                new = sgd(point, grad, lr)
            elif name == "momentum":
                new, velocity = momentum(point, grad, velocity, lr, beta)
            else:
                new, m, v = adam(point, grad, m, v, t, lr, beta, beta2, eps)
                b1, b2 = 1.0 - beta**t, 1.0 - beta2**t
                records.append(AdamRecord(t, grad, m, v, b1, b2, m / b1, v / b2, new - point))
            if not np.all(np.isfinite(new)):
                diverged = t
                break
            new_loss, new_grad = loss_grad(new)
        if not np.isfinite(new_loss) or abs(new_loss) > DIVERGED:
            diverged = t
            break
        point, loss, grad = new, new_loss, new_grad
        points.append(point.copy())
        losses.append(loss)
    return Path(
        name, lr, np.array(points), np.array(losses), tuple(records[: len(points) - 1]), diverged
    )


def run_all(
    loss_grad: LossGrad,
    start: tuple[float, float] | np.ndarray,
    lrs: dict[str, float] | float,
    steps: int,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Path]:
    """The three optimizers from the same start; ``lrs`` one rate for all or one each."""
    rates = lrs if isinstance(lrs, dict) else dict.fromkeys(NAMES, float(lrs))
    return {
        name: run_path(name, loss_grad, start, rates[name], steps, cancelled=cancelled)
        for name in NAMES
    }
