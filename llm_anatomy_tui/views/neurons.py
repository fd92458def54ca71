"""What chapter 3 (neuron activation) shows, as plain data: the toy neuron's editable
values, typed-number checking, the activation curve's plot range, and the real neuron's
activations over the prompt and its top held-out tokens with their context.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..core.lessons.neuron import ACTIVATIONS, NeuronResult, neuron
from ..core.neurons import LayerScan
from .embeddings import token_label

TOY_LIMIT = 100.0
"""Largest magnitude a toy value may take (keeps the curves and sums readable)."""

TOY_FIELDS = ("x1", "x2", "x3", "w1", "w2", "w3", "b")
"""The toy neuron's editable values: three inputs, three weights, the bias."""

STEP = 0.25


class ToyValueError(ValueError):
    """A typed toy value was refused; the message says why and what is allowed."""


def parse_toy_value(text: str, limit: float = TOY_LIMIT) -> float:
    """A number typed by the person, checked: finite and within ±``limit``.

    >>> parse_toy_value(" -1.5 ")
    -1.5
    >>> parse_toy_value("1e6")
    Traceback (most recent call last):
    ...
    llm_anatomy_tui.views.neurons.ToyValueError: 1e6 is too large for this toy: keep values within ±100.
    """
    raw = text.strip()
    if not raw:
        raise ToyValueError("Type a number, e.g. 0.5 or -2.")
    try:
        value = float(raw)
    except ValueError:
        raise ToyValueError(f"“{raw[:20]}” is not a number; type e.g. 0.5 or -2.") from None
    if math.isnan(value):
        raise ToyValueError("NaN is not a number a neuron can add up; type e.g. 0.5 or -2.")
    if math.isinf(value) or abs(value) > limit:
        raise ToyValueError(f"{raw[:20]} is too large for this toy: keep values within ±{limit:g}.")
    return value


@dataclass(frozen=True)
class ToyNeuron:
    """The toy neuron's state: values by field name, the selected field, the activation."""

    values: tuple[float, ...] = (1.0, 0.5, -1.0, 0.75, -0.5, 0.25, 0.1)
    selected: int = 0
    activation: str = "relu"

    def value(self, name: str) -> float:
        return self.values[TOY_FIELDS.index(name)]

    def with_value(self, index: int, value: float) -> ToyNeuron:
        value = min(TOY_LIMIT, max(-TOY_LIMIT, value))
        vals = list(self.values)
        vals[index] = round(value, 2)  # two decimals: every product shown adds up exactly
        return replace(self, values=tuple(vals))

    def nudge(self, steps: int) -> ToyNeuron:
        return self.with_value(self.selected, self.values[self.selected] + steps * STEP)

    def select(self, delta: int) -> ToyNeuron:
        return replace(self, selected=(self.selected + delta) % len(TOY_FIELDS))

    def next_activation(self, delta: int = 1) -> ToyNeuron:
        names = list(ACTIVATIONS)
        i = (names.index(self.activation) + delta) % len(names)
        return replace(self, activation=names[i])

    def result(self) -> NeuronResult:
        return neuron(self.values[:3], self.values[3:6], self.values[6], self.activation)


def sum_line(r: NeuronResult, decimals: int = 2) -> str:
    """``z = 0.75·1.00 + (-0.50)·0.50 + … + 0.10 = 0.35`` from the shown (rounded) values.

    Every value the toy holds is a multiple of 0.25 or typed with at most ``decimals``
    places for the products to add up on screen; ``z`` itself is computed exactly.
    """

    def n(v: float) -> str:
        s = f"{v:.{decimals}f}"
        return f"({s})" if v < 0 else s

    terms = " + ".join(f"{n(w)}·{n(x)}" for w, x in zip(r.w, r.x, strict=True))
    return f"z = w·x + b = {terms} + {n(r.b)} = {r.z:.{decimals + 2}f}"


def plot_range(z: float) -> tuple[float, float]:
    """The z range to draw the curves over: ±6, widened to keep the current z inside.

    >>> plot_range(0.5), plot_range(-9.0)
    ((-6.0, 6.0), (-10.0, 10.0))
    """
    half = float(max(6, math.ceil(abs(z) + 1.0)))
    return -half, half


def clip_for_plot(values: np.ndarray, limit: float = 1e6) -> np.ndarray:
    return np.clip(np.nan_to_num(values, nan=0.0), -limit, limit)


# -- the real neuron ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnitChoice:
    """Which hidden unit of which layer is shown (clamped to the loaded model's sizes)."""

    layer: int = 0
    unit: int = 0

    def clamp(self, n_layers: int, n_units: int) -> UnitChoice:
        return UnitChoice(
            min(max(self.layer, 0), n_layers - 1), min(max(self.unit, 0), n_units - 1)
        )

    def move(self, d_layer: int, d_unit: int, n_layers: int, n_units: int) -> UnitChoice:
        return UnitChoice((self.layer + d_layer) % n_layers, (self.unit + d_unit) % n_units)


@dataclass(frozen=True)
class TopRow:
    rank: int
    position: int
    activation: float
    token: str  # the activating token
    before: str  # a few tokens of context before it

    @property
    def shown(self) -> str:
        return f"{self.activation:+.3f}"


def top_rows(
    scan: LayerScan,
    unit: int,
    encoding,
    context: int = 5,
    lowest: bool = False,  # noqa: ANN001
) -> list[TopRow]:
    """The scan's strongest activations of ``unit`` with their token and what came before
    (within the same scan window, as the model saw it)."""
    pairs = scan.low(unit) if lowest else scan.top(unit)
    rows = []
    for i, (pos, val) in enumerate(pairs):
        if not math.isfinite(val):
            continue
        window_start = (pos // scan.window) * scan.window
        ids = scan.tokens[max(window_start, pos - context) : pos]
        before = "".join(token_label(encoding, int(t)) for t in ids)
        rows.append(TopRow(i + 1, pos, val, token_label(encoding, int(scan.tokens[pos])), before))
    return rows


def activation_summary(acts: Sequence[float], labels: Sequence[str]) -> str:
    """One line: where the unit fires most and least on the prompt."""
    if len(acts) == 0:
        return ""
    a = np.asarray(acts, dtype=np.float64)
    if a.size == 1:
        return f"one token: {a[0]:+.3f} on “{labels[0]}”"
    hi, lo = int(np.argmax(a)), int(np.argmin(a))
    return (
        f"highest {a[hi]:+.3f} on “{labels[hi]}” (#{hi}), "
        f"lowest {a[lo]:+.3f} on “{labels[lo]}” (#{lo})"
    )


SHADES = " ░▒▓█"


def shade(value: float, scale: float) -> str:
    """A block glyph for |value| relative to ``scale`` (the largest |value| shown).

    >>> shade(1.0, 1.0), shade(-0.3, 1.0), shade(0.0, 1.0), shade(5.0, 0.0)
    ('█', '░', ' ', ' ')
    """
    if not scale > 0 or not math.isfinite(value):
        return " "
    i = min(4, int(round(abs(value) / scale * 4)))
    return SHADES[i]


@dataclass(frozen=True)
class ActChip:
    label: str
    value: float
    glyph: str

    @property
    def text(self) -> str:
        # fixed-width value: the chips' line breaks do not move when the unit changes
        return f"{self.label} {self.value:+6.2f}{self.glyph}"


def cell_width(text: str) -> int:
    """Terminal cells a string takes: wide (East Asian) characters 2, combining marks 0.

    >>> cell_width("ab"), cell_width("世"), cell_width("e\u0301")
    (2, 2, 1)
    """
    import unicodedata

    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def wrap_chips(texts: Sequence[str], width: int, gap: int = 2) -> list[list[int]]:
    """Indices of ``texts`` laid out in lines of at most ``width`` cells (a chip longer
    than the width gets a line of its own).

    >>> wrap_chips(["aaa", "bb", "cccc", "d"], 8)
    [[0, 1], [2, 3]]
    """
    lines: list[list[int]] = [[]]
    used = 0
    for i, text in enumerate(texts):
        w = cell_width(text)
        need = w if not lines[-1] else used + gap + w
        if lines[-1] and need > width:
            lines.append([i])
            used = w
        else:
            lines[-1].append(i)
            used = need
    return lines if lines[0] else []


def activation_chips(labels: Sequence[str], acts: Sequence[float]) -> list[ActChip]:
    """One chip per prompt token: its label, activation (2 decimals) and a shade glyph."""
    a = np.asarray(acts, dtype=np.float64)
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return [
        ActChip(lab, float(v), shade(float(v), scale)) for lab, v in zip(labels, a, strict=True)
    ]


def scan_for(model, encoding, layer: int, k: int, task=None):  # noqa: ANN001, ANN201
    """Scan the shipped held-out stories for ``layer`` (pure; run by the compute path)."""
    from ..core.evaluate import eval_tokens
    from ..core.neurons import scan_layer

    tokens = eval_tokens(encoding)
    if task is None:
        return scan_layer(model, tokens, layer, k)
    return scan_layer(
        model, tokens, layer, k, progress=task.report, cancelled=lambda: task.cancelled
    )
