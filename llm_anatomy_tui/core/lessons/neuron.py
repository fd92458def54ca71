"""A single toy neuron, the usual activation functions, and why stacking needs them.

Toy numbers only (chapter 3 labels them so). A neuron takes inputs ``x``, weights ``w``
and a bias ``b``; it adds up ``z = w·x + b`` and passes ``z`` through an activation
function ``f``::

    >>> r = neuron([1.0, 2.0], [0.5, -0.25], 0.1, "relu")
    >>> round(r.z, 6), round(r.out, 6)
    (0.1, 0.1)
    >>> round(neuron([1.0, 2.0], [0.5, -1.0], 0.0, "relu").out, 6)
    0.0

:func:`collapse_demo` shows numerically that two linear layers in a row are one linear
layer (their product matrix), and that a ReLU between them breaks that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def relu(z: np.ndarray) -> np.ndarray:
    """``max(0, z)``: negative sums are cut to zero."""
    return np.maximum(z, 0.0)


def gelu(z: np.ndarray) -> np.ndarray:
    """GELU, exact form: ``z · Φ(z)`` with Φ the standard normal CDF (via erf).

    >>> float(gelu(np.array(1.0)).round(4))
    0.8413
    """
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * z * (1.0 + _ERF(z / math.sqrt(2.0)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-z)``, computed without overflow for large |z|.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(z: np.ndarray) -> np.ndarray:
    """SiLU (swish): ``z · sigmoid(z)`` — the gate of Llama's SwiGLU."""
    z = np.asarray(z, dtype=np.float64)
    return z * sigmoid(z)


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(np.asarray(z, dtype=np.float64))


def linear(z: np.ndarray) -> np.ndarray:
    """No activation at all: ``f(z) = z``."""
    return np.asarray(z, dtype=np.float64)


@dataclass(frozen=True)
class Activation:
    name: str
    formula: str
    fn: Callable[[np.ndarray], np.ndarray]


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", "max(0, z)", relu),
        Activation("gelu", "z·Φ(z)", gelu),
        Activation("silu", "z·σ(z)", silu),
        Activation("tanh", "tanh(z)", tanh),
        Activation("sigmoid", "1/(1+e^−z)", sigmoid),
        Activation("linear", "z", linear),
    )
}
"""The activation functions chapter 3 offers, in display order."""


def activate(name: str, z: float | np.ndarray) -> np.ndarray:
    """``ACTIVATIONS[name].fn(z)``; raises ValueError for an unknown name."""
    try:
        act = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
    return act.fn(np.asarray(z, dtype=np.float64))


@dataclass(frozen=True)
class NeuronResult:
    x: tuple[float, ...]
    w: tuple[float, ...]
    b: float
    products: tuple[float, ...]  # w_i · x_i
    z: float  # Σ products + b
    activation: str
    out: float  # f(z)


def neuron(x: Sequence[float], w: Sequence[float], b: float, activation: str) -> NeuronResult:
    """One neuron: ``z = Σ w_i x_i + b``, ``out = f(z)``. Inputs must be finite."""
    xs = np.asarray(x, dtype=np.float64)
    ws = np.asarray(w, dtype=np.float64)
    if xs.shape != ws.shape or xs.ndim != 1:
        raise ValueError(f"x and w must be vectors of one length, got {xs.shape} and {ws.shape}")
    if not (np.isfinite(xs).all() and np.isfinite(ws).all() and math.isfinite(b)):
        raise ValueError("the neuron's inputs, weights and bias must be finite numbers")
    products = xs * ws
    z = float(products.sum() + b)
    out = float(activate(activation, z))
    return NeuronResult(
        tuple(xs.tolist()), tuple(ws.tolist()), float(b), tuple(products.tolist()), z,
        activation, out,
    )  # fmt: skip


def curve(activation: str, lo: float, hi: float, n: int = 161) -> tuple[np.ndarray, np.ndarray]:
    """Points (z, f(z)) of an activation over [lo, hi], for plotting."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError("the plot range must be finite and increasing")
    z = np.linspace(lo, hi, n)
    return z, activate(activation, z)


# -- two linear layers collapse into one ------------------------------------------------------

COLLAPSE_W1 = np.array([[1.0, -2.0], [0.5, 1.0]])  # [2 in, 2 hidden]
COLLAPSE_W2 = np.array([[2.0, 1.0], [1.0, -1.0]])  # [2 hidden, 2 out]
COLLAPSE_INPUTS = np.array([[1.0, 1.0], [2.0, -1.0], [0.5, 2.0]])  # three toy inputs, rows
"""Hand-picked small numbers (a toy): products stay exact in binary floating point."""


@dataclass(frozen=True)
class CollapseDemo:
    w1: np.ndarray  # [2, 2]
    w2: np.ndarray  # [2, 2]
    product: np.ndarray  # W1 · W2, the single equivalent matrix
    inputs: np.ndarray  # [n, 2]
    stacked: np.ndarray  # (x W1) W2 for each input row
    single: np.ndarray  # x (W1 W2): identical to ``stacked``
    with_relu: np.ndarray  # relu(x W1) W2: no longer equal to x·(W1 W2) for every x
    differs: np.ndarray  # [n] bool: rows where the ReLU version departs from the product
    odd_gap: float  # max |g(x) + g(−x)| for the ReLU net g and the first input (0 if linear)


def collapse_demo(
    w1: np.ndarray = COLLAPSE_W1, w2: np.ndarray = COLLAPSE_W2, inputs: np.ndarray = COLLAPSE_INPUTS
) -> CollapseDemo:
    """Two stacked linear maps equal one (their product); a ReLU between them does not.

    Any matrix M gives x·M + (−x)·M = 0. The ReLU net g does not: g(x) + g(−x) is not 0
    for the first input, so no single matrix can reproduce it. Where every hidden sum is
    positive (the third input) the ReLU passes everything and the two agree.

    >>> d = collapse_demo()
    >>> d.product.tolist()
    [[0.0, 3.0], [2.0, -0.5]]
    >>> bool(np.array_equal(d.stacked, d.single)), d.differs.tolist()
    (True, [True, True, False])
    >>> d.odd_gap
    4.0
    """
    stacked = (inputs @ w1) @ w2
    single = inputs @ (w1 @ w2)

    def net(x: np.ndarray) -> np.ndarray:
        return relu(x @ w1) @ w2

    with_relu = net(inputs)
    differs = np.abs(with_relu - single).max(axis=1) > 1e-12
    gap = float(np.abs(net(inputs[0]) + net(-inputs[0])).max())
    return CollapseDemo(w1, w2, w1 @ w2, inputs, stacked, single, with_relu, differs, gap)
