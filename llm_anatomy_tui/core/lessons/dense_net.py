"""A toy dense network 2 → 3 → 2, small enough to check every number by hand.

``X (1×2) · W1 (2×3) = Z1``, ``A1 = f(Z1)``, ``A1 (1×3) · W2 (3×2) = Z2``. No biases, so
each hidden sum is exactly the weighted sum written out by :func:`worked_sum`. Toy
numbers only (chapter 4 labels them so)::

    >>> net = run_net()
    >>> net.z1.tolist(), net.a1.tolist(), net.z2.tolist()
    ([[0.5, -1.0, 2.0]], [[0.5, 0.0, 2.0]], [[1.5, -0.5]])
    >>> worked_sum(net, "Z1", 0)
    'z1_1 = x1·w1_11 + x2·w1_21 = 1·1 + 2·(-0.25) = 0.5'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neuron import activate

TOY_X = np.array([[1.0, 2.0]])
TOY_W1 = np.array([[1.0, 0.0, 1.0], [-0.25, -0.5, 0.5]])
TOY_W2 = np.array([[1.0, 0.0], [0.5, 1.0], [0.5, -0.25]])
"""Hand-picked values in quarters, so every product and sum is exact in binary."""

MATRICES = ("X", "W1", "Z1", "A1", "W2", "Z2")
"""What the matrix inspector can show, in the order the data flows."""


@dataclass(frozen=True)
class DenseNet:
    x: np.ndarray  # [1, 2]
    w1: np.ndarray  # [2, 3]
    z1: np.ndarray  # [1, 3] = x · w1
    a1: np.ndarray  # [1, 3] = f(z1)
    w2: np.ndarray  # [3, 2]
    z2: np.ndarray  # [1, 2] = a1 · w2
    activation: str

    def matrix(self, name: str) -> np.ndarray:
        """One of :data:`MATRICES` by name."""
        try:
            return {"X": self.x, "W1": self.w1, "Z1": self.z1, "A1": self.a1,
                    "W2": self.w2, "Z2": self.z2}[name]  # fmt: skip
        except KeyError:
            raise ValueError(f"no matrix {name!r}; choose one of {', '.join(MATRICES)}") from None

    @property
    def firing(self) -> np.ndarray:
        """[3] bool: hidden units whose activation is positive (they pass a signal on)."""
        return self.a1[0] > 0


def run_net(
    x: np.ndarray = TOY_X,
    w1: np.ndarray = TOY_W1,
    w2: np.ndarray = TOY_W2,
    activation: str = "relu",
) -> DenseNet:
    """The forward pass of the toy net. All values must be finite."""
    x, w1, w2 = (np.asarray(a, dtype=np.float64) for a in (x, w1, w2))
    if x.shape != (1, 2) or w1.shape != (2, 3) or w2.shape != (3, 2):
        raise ValueError("the toy net is X (1×2) · W1 (2×3) · W2 (3×2)")
    if not all(np.isfinite(a).all() for a in (x, w1, w2)):
        raise ValueError("the toy net's values must be finite numbers")
    z1 = x @ w1  # [1, 2] · [2, 3] -> [1, 3]
    a1 = activate(activation, z1)
    z2 = a1 @ w2  # [1, 3] · [3, 2] -> [1, 2]
    return DenseNet(x, w1, z1, a1, w2, z2, activation)


def short(v: float, decimals: int = 4) -> str:
    """A number to at most ``decimals`` places, trailing zeros dropped.

    >>> short(0.5), short(-0.25), short(2.0), short(1 / 3)
    ('0.5', '-0.25', '2', '0.3333')
    """
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _num(v: float, decimals: int) -> str:
    s = short(v, decimals)
    return f"({s})" if s.startswith("-") else s


def worked_sum(net: DenseNet, layer: str, unit: int, decimals: int = 4) -> str:
    """The weighted sum of one unit written out: ``z1_j = x1·w1_1j + x2·w1_2j = …``.

    ``layer`` is "Z1" (hidden sums) or "Z2" (outputs); ``unit`` counts from 0, the text
    from 1 as in the usual notation.
    """
    if layer == "Z1":
        inputs, weights, total, name, wname, iname = net.x[0], net.w1, net.z1, "z1", "w1", "x"
    elif layer == "Z2":
        inputs, weights, total, name, wname, iname = net.a1[0], net.w2, net.z2, "z2", "w2", "a1_"
    else:
        raise ValueError("worked sums exist for Z1 and Z2")
    if not 0 <= unit < weights.shape[1]:
        raise ValueError(f"{layer} has units 1..{weights.shape[1]}")
    j = unit + 1
    symbols = " + ".join(f"{iname}{i + 1}·{wname}_{i + 1}{j}" for i in range(len(inputs)))
    numbers = " + ".join(
        f"{_num(inputs[i], decimals)}·{_num(weights[i, unit], decimals)}"
        for i in range(len(inputs))
    )
    return f"{name}_{j} = {symbols} = {numbers} = {short(total[0, unit], decimals)}"
