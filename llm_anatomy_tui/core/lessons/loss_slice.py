"""A 2-D slice of the real model's loss on held-out text, around its trained weights (chapter 7).

The model has millions of weights θ*; its loss is a surface in as many dimensions. Pick two
random directions d₁, d₂ in weight space and evaluate the held-out loss on the plane

    L(α, β) = loss(θ* + α·d₁ + β·d₂)

on a small grid. Raw random directions are meaningless across layers of different scale, so
each is *normalised per filter* as in Li et al. (2018), "Visualizing the Loss Landscape of
Neural Nets": every row of every weight matrix (one output unit, or one token's embedding)
of d gets the same norm as that row of θ*; the 1-D norm gains get no direction (zero). Then
α = 1 moves every filter by its own size.

The three optimizers of :mod:`.optim_paths` then walk inside this plane: the gradient of L
with respect to (α, β) is the model's real gradient projected on the two directions,
``(∇L·d₁, ∇L·d₂)``, computed by the core's backward pass at each point they visit.

Nothing here writes the model passed in: the plane is evaluated on one working copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..evaluate import eval_tokens
from ..model import Model
from ..train.backward import loss_and_grads, model_astype, parameters, token_nll
from .optim_paths import NAMES, Path, run_path

GRID = 9
"""Grid points per axis (9 × 9 = 81 forward passes over the held-out batch)."""
SPAN = 0.5
"""The grid covers α, β in [-SPAN, SPAN]."""
WINDOWS = 1
WINDOW = 128
"""Held-out batch: WINDOWS windows of WINDOW tokens (fewer when the model's context is shorter)."""
SEED = 0
PATH_START = (-0.4, 0.35)
PATH_STEPS = 10
PATH_LRS: dict[str, float] = {"sgd": 0.02, "momentum": 0.01, "adam": 0.05}
"""Learning rates in plane units (gradient steps along α, β; Adam's is a step size)."""


class Task(Protocol):
    """What the compute path hands a long function: a cancel flag and a progress report."""

    cancelled: bool

    def report(self, fraction: float, value: object = None) -> None: ...


class Cancelled(Exception):
    """The task was cancelled between two evaluations."""


def heldout_batch(
    context: int, windows: int = WINDOWS, window: int = WINDOW, tokens: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) [b, T] from the shipped held-out stories, T = min(window, context)."""
    length = min(window, context)
    stream = eval_tokens(max_tokens=windows * length + 1) if tokens is None else tokens
    n = min(windows, (stream.size - 1) // length)
    if n < 1:
        raise ValueError("the held-out text is too short for one window")
    idx = np.arange(n)[:, None] * length + np.arange(length + 1)
    win = stream[idx]
    return win[:, :-1], win[:, 1:]


def filter_normalized_direction(
    params: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A random direction with every row scaled to the norm of the same row of ``params``.

    1-D arrays (norm gains) get zeros, as Li et al. do for biases and normalisation layers.
    """
    out = {}
    for name, p in params.items():
        if p.ndim < 2:
            out[name] = np.zeros_like(p)
            continue
        d = rng.standard_normal(p.shape).astype(p.dtype)
        rows = p.reshape(p.shape[0], -1)
        drows = d.reshape(p.shape[0], -1)
        scale = np.linalg.norm(rows, axis=1) / (np.linalg.norm(drows, axis=1) + 1e-10)
        out[name] = (drows * scale[:, None]).reshape(p.shape)
    return out


class Plane:
    """The loss on θ* + α·d₁ + β·d₂: a working copy of the model moved to any (α, β)."""

    def __init__(
        self, model: Model, seed: int = SEED, batch: tuple[np.ndarray, np.ndarray] | None = None
    ):
        self.base = {k: v.copy() for k, v in parameters(model).items()}
        self.work = model_astype(model, np.float32)
        self.params = parameters(self.work)
        rng = np.random.default_rng(seed)
        self.d1 = filter_normalized_direction(self.base, rng)
        self.d2 = filter_normalized_direction(self.base, rng)
        self.inputs, self.targets = batch or heldout_batch(model.config.max_position_embeddings)

    def move(self, a: float, b: float) -> None:
        for name, p in self.params.items():
            np.add(self.base[name], a * self.d1[name] + b * self.d2[name], out=p)

    def loss(self, a: float, b: float) -> float:
        """Mean held-out next-token loss at (α, β)."""
        self.move(a, b)
        with np.errstate(all="ignore"):
            return float(np.mean(token_nll(self.work, self.inputs, self.targets)))

    def loss_grad(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and its gradient with respect to (α, β): the real gradient projected."""
        self.move(float(point[0]), float(point[1]))
        with np.errstate(all="ignore"):
            loss, grads = loss_and_grads(self.work, self.inputs, self.targets)
            g = np.array(
                [sum(float(np.vdot(grads[n], d[n])) for n in grads) for d in (self.d1, self.d2)]
            )
        return float(loss), g


@dataclass(frozen=True)
class LossSlice:
    """The grid of held-out losses and the optimizers' walks inside the plane."""

    axis: np.ndarray  # [n] values of α (columns) and β (rows)
    losses: np.ndarray  # [n, n] losses[i, j] at α = axis[j], β = axis[i]
    seed: int
    tokens: int
    """Held-out tokens scored at each grid point."""
    paths: dict[str, Path]
    center_loss: float
    """The trained weights' own loss (α = β = 0)."""


def compute_slice(
    model: Model,
    grid: int = GRID,
    span: float = SPAN,
    seed: int = SEED,
    task: Task | None = None,
    steps: int = PATH_STEPS,
    batch: tuple[np.ndarray, np.ndarray] | None = None,
) -> LossSlice:
    """Evaluate the grid, then run the three optimizers in the plane. Reports progress.

    Raises :class:`Cancelled` if ``task.cancelled`` becomes true (checked between passes).
    """
    if grid < 2:
        raise ValueError("the grid needs at least 2 points per axis")
    plane = Plane(model, seed, batch)
    axis = np.linspace(-span, span, grid)
    losses = np.empty((grid, grid))
    total = grid * grid + len(NAMES) * steps

    def cancelled() -> bool:
        return task is not None and task.cancelled

    done = 0
    for i, b in enumerate(axis):
        for j, a in enumerate(axis):
            if cancelled():
                raise Cancelled
            losses[i, j] = plane.loss(float(a), float(b))
            done += 1
        if task is not None:
            task.report(done / total)
    paths: dict[str, Path] = {}
    for name in NAMES:
        paths[name] = run_path(
            name, plane.loss_grad, PATH_START, PATH_LRS[name], steps, cancelled=cancelled
        )
        if cancelled():
            raise Cancelled
        done += steps
        if task is not None:
            task.report(done / total)
    return LossSlice(
        axis=axis, losses=losses, seed=seed, tokens=int(plane.targets.size), paths=paths,
        center_loss=plane.loss(0.0, 0.0),
    )  # fmt: skip


class SliceCache:
    """Finished slices by (model identity, grid, span, seed); computing one takes seconds."""

    def __init__(self) -> None:
        self._items: dict[tuple, LossSlice] = {}

    @staticmethod
    def key(model: Model, grid: int, span: float, seed: int) -> tuple:
        return (id(model), model.name, grid, span, seed)

    def get(self, key: tuple) -> LossSlice | None:
        return self._items.get(key)

    def put(self, key: tuple, value: LossSlice) -> None:
        if len(self._items) > 8:
            self._items.pop(next(iter(self._items)))
        self._items[key] = value

    def compute(
        self, model: Model, grid: int, span: float, seed: int, task: Task | None = None
    ) -> LossSlice:
        """The cached slice, or compute and remember it."""
        key = self.key(model, grid, span, seed)
        hit = self.get(key)
        if hit is None:
            hit = compute_slice(model, grid, span, seed, task)
            self.put(key, hit)
        return hit
