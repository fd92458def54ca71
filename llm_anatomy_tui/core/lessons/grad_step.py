"""One real gradient step of the model on the prompt, and a gradient check (chapter 6).

Everything runs on a *copy* of the weights: the loaded model other chapters show is never
written to. The loss is the mean next-token cross-entropy over every position of the
prompt (token i predicts token i+1), the same loss the trainer minimises.

- :func:`memory_plan` — bytes a step needs (copy + gradients + optimizer state), and
  whether that fits :data:`MEMORY_BUDGET`; :func:`training_model` then picks the loaded
  model or falls back to the shipped anatomy-mini, saying why.
- :func:`gradient_step` — loss, gradient norms (per tensor and per block) and every target
  token's probability, before and after one SGD step.
- :func:`gradient_check` — the backward pass's gradient for one weight next to a central
  finite difference, both in float64.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import LlamaConfig
from ..model import Model, default_model_dir, expected_shapes, load_model
from ..train.backward import loss_and_grads, model_astype, parameters, token_nll
from ..train.optim import OptimizerSettings, global_norm, init_state, optimizer_step

MEMORY_BUDGET = 1 << 30
"""Bytes a lesson may spend on one training copy: weights + gradients + optimizer state."""
STATE_ARRAYS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
"""Arrays of optimizer state kept per weight."""
CHECK_STEP = 1e-5
"""Finite-difference step h of the gradient check (float64)."""
CHECK_RTOL = 1e-4
CHECK_ATOL = 1e-8
"""The check passes when |analytic − numeric| ≤ CHECK_RTOL·max(|analytic|, |numeric|) + CHECK_ATOL."""


# -- the memory budget -------------------------------------------------------------------------


def parameter_count(config: LlamaConfig) -> int:
    """Trainable numbers of a model with this config (a tied head counted once).

    >>> from ..train.trainer import PRESETS
    >>> parameter_count(PRESETS["tiny"])
    280768
    """
    return sum(math.prod(shape) for shape in expected_shapes(config).values())


@dataclass(frozen=True)
class MemoryPlan:
    """What one training copy costs: ``copies`` arrays the size of the weights."""

    parameters: int
    bytes_per_number: int
    copies: int
    """Weights + gradients + optimizer state arrays (SGD 2, momentum 3, Adam 4)."""
    budget: int

    @property
    def total(self) -> int:
        return self.parameters * self.bytes_per_number * self.copies

    @property
    def fits(self) -> bool:
        return self.total <= self.budget


def memory_plan(
    config: LlamaConfig,
    optimizer: str = "sgd",
    bytes_per_number: int = 8,
    budget: int | None = None,
    extra: int = 0,
) -> MemoryPlan:
    """The plan for ``optimizer``; 8 bytes per number by default (the float64 gradient check).
    ``budget`` defaults to :data:`MEMORY_BUDGET`. ``extra``: more weight-sized arrays (the loss slice keeps the trained weights and two
    directions beside its working copy).

    >>> from ..train.trainer import PRESETS
    >>> plan = memory_plan(PRESETS["anatomy-mini"])
    >>> plan.copies, plan.total, plan.fits
    (2, 29380608, True)
    """
    if optimizer not in STATE_ARRAYS:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    copies = 2 + STATE_ARRAYS[optimizer] + extra
    budget = MEMORY_BUDGET if budget is None else budget
    return MemoryPlan(parameter_count(config), bytes_per_number, copies, budget)


def mib(n: int) -> str:
    """Bytes as MiB with one decimal.

    >>> mib(3 * 2**20)
    '3.0 MiB'
    """
    return f"{n / 2**20:,.1f} MiB"


@functools.cache
def shipped_model() -> Model:
    """The shipped anatomy-mini, loaded once (the fallback when a model is too big)."""
    return load_model(default_model_dir())


def unsupported(model: Model) -> str | None:
    """Why the hand-written backward pass cannot train ``model``, or None when it can.

    It covers the Llama block; Qwen2's q/k/v biases and Qwen3's per-head q/k norms are
    not in it (a copy would silently drop them).
    """
    for layer in model.layers:
        if getattr(layer, "bqkv", None) is not None:
            return "its attention has q/k/v biases (Qwen2)"
        if getattr(layer, "q_norm", None) is not None:
            return "it normalises each query and key head (Qwen3)"
    return None


def training_model(loaded: Model, plan: MemoryPlan) -> tuple[Model, str]:
    """(the model a lesson trains, one line saying which and why).

    The loaded model when the backward pass supports it and ``plan`` fits the budget;
    otherwise the shipped anatomy-mini.
    """
    why_not = unsupported(loaded)
    if why_not is not None:
        return shipped_model(), (
            f"uses anatomy-mini, not the loaded {loaded.name}: the hand-written backward pass "
            f"covers the Llama block, and {why_not}"
        )
    if plan.fits:
        return loaded, (
            f"runs on the loaded model ({loaded.name}): {plan.copies} weight-sized arrays need "
            f"{mib(plan.total)} of the {mib(plan.budget)} budget"
        )
    small = shipped_model()
    return small, (
        f"uses anatomy-mini, not the loaded {loaded.name}: {plan.copies} weight-sized arrays "
        f"of it (copy, gradients, state) would need {mib(plan.total)}, over the "
        f"{mib(plan.budget)} budget"
    )


# -- the prompt as training data ---------------------------------------------------------------


def prompt_batch(ids: Sequence[int], context: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(inputs [1, T], targets [1, T], cut) for next-token loss on the prompt's tokens.

    At most ``context`` predictions are made (``cut`` says the prompt was longer). Raises
    ValueError when there is no pair of tokens to learn from.

    >>> x, y, cut = prompt_batch([5, 6, 7], context=8)
    >>> x.tolist(), y.tolist(), cut
    ([[5, 6]], [[6, 7]], False)
    """
    ids = np.asarray(list(ids), dtype=np.int64)
    if ids.size < 2:
        got = "is empty" if ids.size == 0 else "has one token"
        raise ValueError(f"the prompt {got}: a gradient step needs at least two tokens")
    cut = ids.size - 1 > context
    ids = ids[: context + 1]
    return ids[None, :-1], ids[None, 1:], cut


# -- one gradient step ---------------------------------------------------------------------------


def layer_label(name: str, tied: bool = True) -> str:
    """Which part of the model a parameter name belongs to.

    >>> layer_label("layers.2.wqkv"), layer_label("embed"), layer_label("norm")
    ('block 2', 'embedding + head', 'final norm')
    """
    if name.startswith("layers."):
        return f"block {name.split('.')[1]}"
    return {"embed": "embedding + head" if tied else "embedding", "norm": "final norm"}.get(
        name, "output head"
    )


@dataclass(frozen=True)
class GradStep:
    """One SGD step on a copy of the model, on the prompt."""

    lr: float
    inputs: np.ndarray  # [T]
    targets: np.ndarray  # [T]
    cut: bool
    loss_before: float
    loss_after: float
    prob_before: np.ndarray  # [T] p(target) before
    prob_after: np.ndarray  # [T] after (NaN when the step diverged)
    tensor_norms: tuple[tuple[str, tuple[int, ...], float], ...]
    layer_norms: tuple[tuple[str, float], ...]
    grad_norm: float
    diverged: str | None = None
    """Why the step was thrown away (non-finite weights or loss), else None."""


def gradient_step(model: Model, ids: Sequence[int], lr: float) -> GradStep:
    """Loss and target probabilities before and after one SGD step of a copy of ``model``."""
    if not math.isfinite(lr):
        raise ValueError(f"the learning rate must be a finite number, not {lr}")
    x, y, cut = prompt_batch(ids, model.config.max_position_embeddings)
    copy = model_astype(model, np.float32)  # new arrays: the loaded model is never written
    nll_before = token_nll(copy, x, y)
    loss_before, grads = loss_and_grads(copy, x, y)
    tied = model.config.tie_word_embeddings
    tensor_norms = tuple(
        (name, g.shape, float(np.linalg.norm(g.astype(np.float64)))) for name, g in grads.items()
    )
    layers: dict[str, float] = {}
    for name, _, norm in tensor_norms:
        label = layer_label(name, tied)
        layers[label] = layers.get(label, 0.0) + norm * norm
    params = parameters(copy)
    settings = OptimizerSettings("sgd")
    with np.errstate(all="ignore"):
        optimizer_step(settings, init_state(settings, params), params, grads, lr)
        finite = all(np.isfinite(p).all() for p in params.values())
        nll_after = token_nll(copy, x, y) if finite else np.full(y.size, np.nan)
    loss_after = float(np.mean(nll_after))
    diverged = None
    if not finite:
        diverged = f"learning rate {lr:g} pushed weights to NaN/inf"
    elif not math.isfinite(loss_after):
        diverged = f"learning rate {lr:g} made the loss {loss_after}"
    return GradStep(
        lr=lr,
        inputs=x[0],
        targets=y[0],
        cut=cut,
        loss_before=float(np.mean(nll_before)),
        loss_after=loss_after,
        prob_before=np.exp(-nll_before),
        prob_after=np.exp(-nll_after),
        tensor_norms=tensor_norms,
        layer_norms=tuple((k, math.sqrt(v)) for k, v in layers.items()),
        grad_norm=global_norm(grads),
        diverged=diverged,
    )


# -- the gradient check --------------------------------------------------------------------------


@dataclass(frozen=True)
class GradCheck:
    """The backward pass against a central finite difference for one weight (float64)."""

    name: str
    index: tuple[int, ...]
    value: float
    analytic: float
    numeric: float
    loss_plus: float
    loss_minus: float
    h: float

    @property
    def abs_error(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def tolerance(self) -> float:
        return CHECK_RTOL * max(abs(self.analytic), abs(self.numeric)) + CHECK_ATOL

    @property
    def agrees(self) -> bool:
        return self.abs_error <= self.tolerance


def gradient_check(
    model: Model, ids: Sequence[int], name: str, index: tuple[int, ...], h: float = CHECK_STEP
) -> GradCheck:
    """∂L/∂w for ``parameters(model)[name][index]``: backward pass vs (L(w+h) − L(w−h)) / 2h."""
    x, y, _ = prompt_batch(ids, model.config.max_position_embeddings)
    m64 = model_astype(model, np.float64)
    params = parameters(m64)
    if name not in params:
        raise ValueError(f"no parameter named {name!r}")
    param = params[name]
    index = tuple(int(i) for i in index)
    if len(index) != param.ndim or any(
        not 0 <= i < n for i, n in zip(index, param.shape, strict=True)
    ):
        raise ValueError(f"index {index} is outside {name} of shape {param.shape}")
    _, grads = loss_and_grads(m64, x, y)
    value = float(param[index])
    param[index] = value + h
    plus = float(np.mean(token_nll(m64, x, y)))
    param[index] = value - h
    minus = float(np.mean(token_nll(m64, x, y)))
    param[index] = value
    return GradCheck(
        name=name, index=index, value=value, analytic=float(grads[name][index]),
        numeric=(plus - minus) / (2 * h), loss_plus=plus, loss_minus=minus, h=h,
    )  # fmt: skip
