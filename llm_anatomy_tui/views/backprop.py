"""What chapter 6 prints: the toy's stages as text, the real step's tables, the gradient check.

Decimals are chosen so a neighbour can be recomputed from what is printed: probabilities
have one more decimal than the losses and logits computed from them, and each derivative
is printed next to the formula that produces it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.lessons.grad_step import (
    CHECK_ATOL,
    CHECK_RTOL,
    GradCheck,
    GradStep,
    gradient_check,
    gradient_step,
    memory_plan,
    training_model,
)
from ..core.lessons.toy_backprop import CONTEXT, STAGES, WORDS, ToyBackprop
from ..core.model import Model
from ..core.tokenizers import load_encoding
from ..core.train.backward import parameters
from .token_pieces import token_pieces


def fit(text: str, width: int) -> str:
    """``text`` padded or cut to ``width`` characters (cut ones end in …)."""
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


P_DEC = 6
"""Decimals of the toy's probabilities."""
DEC = 4
"""Decimals of its logits, losses and weights."""
G_DEC = 6
"""Decimals of its derivatives."""

NOISE = 1e-9
"""Differences in the gradient check below this are shown as "< 1e-9"."""
LR_CHOICES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0)
"""Learning rates the keys step through (the toy and the real step share them)."""


def f(value: float, decimals: int = DEC) -> str:
    """A signed number with a true minus sign ("−0.1200", " 0.3000" keeps columns aligned)."""
    if not math.isfinite(value):
        return "  nan" if math.isnan(value) else (" inf" if value > 0 else "−inf")
    text = f"{value:.{decimals}f}"
    if text.startswith("-"):
        return "−" + text[1:] if float(text) != 0 else " " + text[1:]
    return " " + text


@dataclass(frozen=True)
class Stage:
    """One revealed part of the toy: a title and its lines."""

    title: str
    lines: tuple[str, ...]


def toy_stages(r: ToyBackprop, shown: int) -> list[Stage]:
    """The first ``shown`` stages of :data:`STAGES` for result ``r``."""
    t = r.target
    word = WORDS[t]
    x = ", ".join(f"{v:.1f}" for v in r.x)
    out: list[Stage] = []
    rows = []
    for k, w in enumerate(WORDS):
        terms = [f"{r.w[k, j]:.1f}·{r.x[j]:.1f}" for j in range(len(r.x))] + [f"{r.b[k]:.1f}"]
        expr = terms[0] + "".join(
            (" − " + t[1:]) if t.startswith("-") else (" + " + t) for t in terms[1:]
        )
        rows.append(
            f"  {w:<5} z = {expr.replace('-', '−')} = {f(r.z[k]).strip()}   p = {r.p[k]:.{P_DEC}f}"
        )
    out.append(
        Stage(
            "1. Forward: predict",
            (
                f"After “{CONTEXT}” the toy picks one of {', '.join(WORDS)}; the right word is “{word}”.",
                f"Inputs x = [{x}] (two made-up features). Logits z = W·x + b, then p = softmax(z):",
                *rows,
            ),
        )
    )
    out.append(
        Stage(
            "2. Loss: cross-entropy",
            (
                f"L = −ln p({word}) = −ln {r.p[t]:.{P_DEC}f} = {r.loss:.{DEC}f}",
                "Zero only if the model gave the right word probability 1.",
            ),
        )
    )
    dp = "  ".join(f"{w} {f(r.dp_dz[k], DEC)}" for k, w in enumerate(WORDS))
    out.append(
        Stage(
            "3. Local derivatives: each node alone",
            (
                f"loss node     ∂L/∂p({word}) = −1 / p({word}) = {f(r.dl_dp, DEC)}",
                f"softmax node  ∂p({word})/∂z_k = p({word})·(δ − p_k):",
                f"  {dp}",
                f"linear node   ∂z_k/∂W_kj = x_j = [{x}]      ∂z_k/∂b_k = 1",
            ),
        )
    )
    dz = "  ".join(f"{w} {f(r.dl_dz[k], G_DEC)}" for k, w in enumerate(WORDS))
    grad_rows = [
        f"  {w:<5} ∂L/∂W = [{', '.join(f(g, G_DEC) for g in r.grad_w[k])}]   ∂L/∂b = {f(r.grad_b[k], G_DEC)}"
        for k, w in enumerate(WORDS)
    ]
    out.append(
        Stage(
            "4. Chain rule: multiply along the path",
            (
                f"∂L/∂z_k = ∂L/∂p · ∂p/∂z_k = p_k − δ   (δ = 1 for “{word}”, else 0):",
                f"  {dz}",
                "∂L/∂W_kj = ∂L/∂z_k · x_j:",
                *grad_rows,
            ),
        )
    )
    new_rows = [
        f"  {w:<5} W = [{', '.join(f(v, G_DEC) for v in r.new_w[k])}]   b = {f(r.new_b[k], G_DEC)}"
        for k, w in enumerate(WORDS)
    ]
    out.append(
        Stage(
            f"5. Update: step against the gradient (lr = {r.lr:g})",
            ("W ← W − lr·∂L/∂W,  b ← b − lr·∂L/∂b:", *new_rows),
        )
    )
    if r.diverged:
        after: tuple[str, ...] = (
            f"The loss is not a number any more: lr = {r.lr:g} is far too large.",
        )
    else:
        probs = "  ".join(f"{w} {r.new_p[k]:.{P_DEC}f}" for k, w in enumerate(WORDS))
        delta = r.new_loss - r.loss
        verdict = "lower" if delta < 0 else "HIGHER: the step overshot"
        after = (
            f"p = softmax(W·x + b):  {probs}",
            f"L = −ln {r.new_p[t]:.{P_DEC}f} = {r.new_loss:.{DEC}f}   (was {r.loss:.{DEC}f}; "
            f"Δ {f(delta).strip()}, {verdict})",
        )
    out.append(Stage("6. The loss after one step", after))
    assert len(out) == len(STAGES)
    return out[:shown]


# -- the real step --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    position: int
    piece: str
    before: float
    after: float

    @property
    def arrow(self) -> str:
        if not math.isfinite(self.after):
            return "?"
        return "▲" if self.after > self.before else ("▼" if self.after < self.before else "=")


def token_rows(step: GradStep, pieces: Sequence[str]) -> list[TokenRow]:
    """One row per prediction: the target token (piece i+1) and its probability before/after."""
    return [
        TokenRow(i + 1, pieces[i + 1] if i + 1 < len(pieces) else "?", float(b), float(a))
        for i, (b, a) in enumerate(zip(step.prob_before, step.prob_after, strict=True))
    ]


def bar(value: float, top: float, width: int) -> str:
    """A horizontal bar of eighth-blocks, ``value/top`` of ``width`` cells.

    >>> bar(1.0, 2.0, 4)
    '██  '
    """
    if width <= 0 or top <= 0 or not math.isfinite(value):
        return " " * max(0, width)
    eighths = int(round(max(0.0, min(1.0, value / top)) * width * 8))
    full, part = divmod(eighths, 8)
    text = "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
    return text.ljust(width)


def step_summary(step: GradStep) -> list[str]:
    """The step's headline: loss before/after, the learning rate, the gradient norm."""
    lines = [
        f"next-token loss over {step.targets.size} predictions"
        + (" (prompt cut to the context window)" if step.cut else ""),
        f"  before {step.loss_before:.4f}   gradient norm ‖g‖ = {step.grad_norm:.4f}",
    ]
    if step.diverged:
        lines.append(
            f"  after: {step.diverged}; the copy was thrown away (loaded weights untouched)"
        )
    else:
        delta = step.loss_after - step.loss_before
        word = "lower" if delta < 0 else "HIGHER: lr too large, the step overshot"
        lines.append(
            f"  after  {step.loss_after:.4f}   Δ {f(delta).strip()} ({word}), one SGD step, lr {step.lr:g}"
        )
    return lines


def layer_lines(step: GradStep, width: int = 20) -> list[str]:
    """Gradient norm per block (the root of the sum of its tensors' squared norms)."""
    top = max((n for _, n in step.layer_norms), default=1.0)
    return [f"{label:<17}{n:>9.4f} {bar(n, top, width)}" for label, n in step.layer_norms]


def tensor_lines(step: GradStep) -> list[str]:
    """Gradient norm of every tensor, with its shape."""
    out = []
    for name, shape, n in step.tensor_norms:
        dims = "×".join(str(s) for s in shape)
        out.append(f"{name:<20}{dims:>11} {n:>10.4f}")
    return out


def check_lines(c: GradCheck) -> list[str]:
    """The gradient check, spelled out."""
    idx = ", ".join(str(i) for i in c.index)
    verdict = "agree" if c.agrees else "DISAGREE"
    # below NOISE the figure is float64 rounding, different on every BLAS: say so, stably
    diff = f"< {NOISE:g}" if c.abs_error < NOISE else f"= {c.abs_error:.2e}"
    return [
        f"weight {c.name}[{idx}] = {c.value:.6f}   (float64 copy, h = {c.h:g})",
        f"backward pass      ∂L/∂w = {c.analytic: .7e}",
        "finite difference  (L(w+h) − L(w−h)) / 2h",
        f"  = ({c.loss_plus:.13f} − {c.loss_minus:.13f}) / {2 * c.h:g}",
        f"  = {c.numeric: .7e}",
        f"|difference| {diff}, tolerance {CHECK_RTOL:g}·max|·| + {CHECK_ATOL:g} "
        f"= {c.tolerance:.2e}: they {verdict}",
    ]


def check_pick_choices(
    names: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) pairs the picker cycles through."""
    return list(zip(names, shapes, strict=True))


def clamp_index(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``index`` moved inside ``shape`` (missing trailing axes become 0).

    >>> clamp_index((9, 9), (4,)), clamp_index((2,), (3, 5))
    ((3,), (2, 0))
    """
    padded = tuple(index) + (0,) * len(shape)
    return tuple(int(np.clip(padded[k], 0, n - 1)) for k, n in enumerate(shape))


# -- what the chapter asks the compute path for ------------------------------------------------

MAX_TOKEN_ROWS = 40
"""Target tokens listed under the real step (the loss always uses every position)."""


@dataclass(frozen=True)
class StepView:
    """A real step and what the screen lists beside it."""

    step: GradStep
    rows: tuple[TokenRow, ...]
    note: str
    """Which model was stepped and why (the memory budget)."""


@dataclass(frozen=True)
class CheckView:
    check: GradCheck
    tensor: int
    """Position of the checked tensor in parameter order."""
    tensors: int
    shape: tuple[int, ...]
    note: str


def shipped_ids(text: str) -> tuple[list[int], list[str]]:
    """The prompt in anatomy-mini's own vocabulary (when a lesson falls back to it)."""
    enc = load_encoding("model")
    ids = enc.encode_ordinary(text)
    return ids, [p.display for p in token_pieces(enc, ids)]


def prepare_step(
    model: Model, ids: Sequence[int], pieces: Sequence[str], text: str, lr: float
) -> StepView:
    """One SGD step on a copy of ``model`` (or of anatomy-mini when it is over budget)."""
    plan = memory_plan(model.config, "sgd", bytes_per_number=4)
    used, note = training_model(model, plan)
    if used is not model:
        ids, pieces = shipped_ids(text)
    step = gradient_step(used, ids, lr)
    return StepView(step, tuple(token_rows(step, pieces)), note)


def prepare_check(
    model: Model, ids: Sequence[int], text: str, tensor: int, index: tuple[int, ...]
) -> CheckView:
    """The gradient check for tensor number ``tensor`` (wrapping around) at ``index`` (clamped)."""
    plan = memory_plan(model.config, "sgd", bytes_per_number=8)
    used, note = training_model(model, plan)
    if used is not model:
        ids, _ = shipped_ids(text)
    names = list(parameters(used))
    tensor %= len(names)
    shape = tuple(parameters(used)[names[tensor]].shape)
    check = gradient_check(used, ids, names[tensor], clamp_index(index, shape))
    return CheckView(check, tensor, len(names), shape, note)


def token_lines(rows: Sequence[TokenRow], limit: int = MAX_TOKEN_ROWS) -> list[str]:
    """``pos  token  p before → p after  ▲/▼`` for the first ``limit`` targets."""
    out = [f"{'pos':>4}  {'next token':<16}{'before':>8}    {'after':>8}"]
    for r in rows[:limit]:
        out.append(
            f"{r.position:>4}  {fit(r.piece, 16)}{r.before:>8.4f} →  {r.after:>8.4f} {r.arrow}"
        )
    if len(rows) > limit:
        out.append(f"      … {len(rows) - limit} more targets (the loss uses all {len(rows)})")
    return out


def parse_lr(text: str) -> tuple[float, str | None]:
    """A typed learning rate, or why it is refused.

    >>> parse_lr("0.3"), parse_lr("nan")[1], parse_lr("-1")[1]
    ((0.3, None), 'the learning rate must be a finite number, not nan', 'the learning rate must be positive, not -1')
    """
    try:
        lr = float(text.strip())
    except ValueError:
        return 0.0, f"not a number: {text.strip()!r}"
    if not math.isfinite(lr):
        return 0.0, f"the learning rate must be a finite number, not {text.strip()}"
    if lr <= 0:
        return 0.0, f"the learning rate must be positive, not {text.strip()}"
    return lr, None
