"""Optimizers as small step functions with explicit state, a learning-rate schedule, clipping.

Each rule is a pure function of one parameter array, its gradient and its state, returning
the new parameter and the new state — the same few lines a textbook writes, so chapter 12
(and the 2-D loss-surface lesson) can call them on anything::

    sgd        p <- p - lr * g
    momentum   u <- beta * u + g;             p <- p - lr * u
    adam       m <- b1 * m + (1 - b1) * g;    v <- b2 * v + (1 - b2) * g²
               p <- p - lr * m̂ / (sqrt(v̂) + eps),  m̂ = m / (1 - b1^t),  v̂ = v / (1 - b2^t)
    adamw      p <- p - lr * wd * p, then the Adam step (weight decay decoupled from g)

:func:`optimizer_step` applies a rule to every named parameter of a model, in place, so the
model sees the new weights. State is a dict of arrays plus a step counter, which is what a
checkpoint saves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "momentum", "sgd")


# -- update rules, one array at a time ------------------------------------------------------


def sgd(param: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """Plain gradient descent: ``p - lr * g``.

    >>> sgd(np.array([1.0, -2.0]), np.array([0.5, 0.1]), lr=0.1)
    array([ 0.95, -2.01])
    """
    return param - lr * grad


def momentum(
    param: np.ndarray, grad: np.ndarray, velocity: np.ndarray, lr: float, beta: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """SGD with (heavy-ball) momentum, as PyTorch writes it: ``u = beta*u + g; p -= lr*u``.

    Returns (new param, new velocity).
    """
    velocity = beta * velocity + grad
    return param - lr * velocity, velocity


def adam(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step; ``t`` counts steps from 1. Returns (new param, new m, new v).

    First step from m = v = 0 moves every coordinate by about ``lr`` against its gradient's
    sign, whatever the gradient's size:

    >>> p, m, v = adam(np.array([1.0]), np.array([0.5]), np.zeros(1), np.zeros(1), 1, lr=0.1)
    >>> p.round(6)
    array([0.9])
    """
    m = beta1 * m + (1.0 - beta1) * grad
    v = beta2 * v + (1.0 - beta2) * np.square(grad)
    m_hat = m / (1.0 - beta1**t)
    v_hat = v / (1.0 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def adamw(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam with decoupled weight decay (Loshchilov & Hutter): shrink ``p`` by
    ``lr * weight_decay * p`` first, then take the Adam step (the decay never enters m or v).
    """
    decayed = param * (1.0 - lr * weight_decay)
    return adam(decayed, grad, m, v, t, lr, beta1, beta2, eps)


# -- learning rate and clipping --------------------------------------------------------------


def lr_at(step: int, max_lr: float, warmup: int, total: int, min_lr: float = 0.0) -> float:
    """Learning rate for step ``step`` (0-based) of ``total``: linear warmup, cosine decay.

    Steps 0..warmup-1 climb linearly to ``max_lr`` (step 0 uses max_lr / warmup); the
    remaining steps follow half a cosine from ``max_lr`` down to ``min_lr``, reached at the
    last step (``total - 1``).

    >>> [round(lr_at(s, 1.0, warmup=2, total=6), 3) for s in range(6)]
    [0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup:
        return max_lr * (step + 1) / warmup
    progress = min(1.0, (step + 1 - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """The L2 norm of all gradients taken together as one long vector.

    >>> global_norm({"a": np.array([3.0]), "b": np.array([4.0])})
    5.0
    """
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


def clip_by_global_norm(
    grads: dict[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Scale all gradients by one factor so their global norm is at most ``max_norm``.

    Returns (clipped gradients, the norm before clipping). The direction never changes.

    >>> g, norm = clip_by_global_norm({"a": np.array([3.0]), "b": np.array([4.0])}, 1.0)
    >>> norm, g["a"].round(3), g["b"].round(3)
    (5.0, array([0.6]), array([0.8]))
    """
    norm = global_norm(grads)
    if max_norm <= 0 or norm <= max_norm:
        return grads, norm
    scale = max_norm / norm
    return {name: g * np.asarray(scale, dtype=g.dtype) for name, g in grads.items()}, norm


# -- optimizing a whole model ------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerSettings:
    """Which rule and its hyperparameters (the learning rate comes from the schedule)."""

    name: str = "adamw"
    beta1: float = 0.9
    """Momentum of the first moment (or the momentum coefficient for ``momentum``)."""
    beta2: float = 0.95
    """Momentum of the second moment (Adam / AdamW)."""
    eps: float = 1e-8
    weight_decay: float = 0.1
    """AdamW's decoupled decay, applied only to matrices (norm gains are never decayed)."""

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; choose one of {OPTIMIZERS}")
        for name in ("beta1", "beta2", "eps", "weight_decay"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")


@dataclass
class OptimizerState:
    """Everything an optimizer remembers between steps: a step count and per-name arrays.

    ``slots["m"]["embed"]`` is Adam's first moment of the embedding, ``slots["velocity"]``
    momentum's running velocity; SGD keeps nothing.
    """

    step: int = 0
    slots: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def init_state(settings: OptimizerSettings, params: dict[str, np.ndarray]) -> OptimizerState:
    """Zeroed state for ``params`` (same shapes and dtypes)."""
    names = {"adamw": ("m", "v"), "adam": ("m", "v"), "momentum": ("velocity",), "sgd": ()}
    slots = {
        slot: {name: np.zeros_like(p) for name, p in params.items()}
        for slot in names[settings.name]
    }
    return OptimizerState(step=0, slots=slots)


def decays(name: str, param: np.ndarray) -> bool:
    """Weight decay applies to matrices (embedding, projections), not to 1-D norm gains."""
    return param.ndim >= 2


def optimizer_step(
    settings: OptimizerSettings,
    state: OptimizerState,
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    lr: float,
) -> None:
    """Update every array of ``params`` in place with its gradient; advance ``state``."""
    state.step += 1
    t = state.step
    for name, param in params.items():
        grad = grads[name]
        if settings.name == "sgd":
            param[...] = sgd(param, grad, lr)
        elif settings.name == "momentum":
            vel = state.slots["velocity"]
            param[...], vel[name] = momentum(param, grad, vel[name], lr, settings.beta1)
        else:
            m, v = state.slots["m"], state.slots["v"]
            wd = settings.weight_decay if decays(name, param) else 0.0
            if settings.name == "adamw":
                new, m[name], v[name] = adamw(
                    param, grad, m[name], v[name], t, lr,
                    settings.beta1, settings.beta2, settings.eps, wd,
                )  # fmt: skip
            else:
                new, m[name], v[name] = adam(
                    param, grad, m[name], v[name], t, lr,
                    settings.beta1, settings.beta2, settings.eps,
                )  # fmt: skip
            param[...] = new
