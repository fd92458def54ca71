"""The toy neuron, the activation functions, the linear-collapse demo and the 2-3-2 net,
checked against plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_anatomy_tui.core.lessons.dense_net import MATRICES, run_net, worked_sum
from llm_anatomy_tui.core.lessons.neuron import (
    ACTIVATIONS,
    activate,
    collapse_demo,
    curve,
    neuron,
)

REFERENCE = {
    "relu": lambda z: max(0.0, z),
    "gelu": lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
    "silu": lambda z: z / (1 + math.exp(-z)),
    "tanh": math.tanh,
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)),
    "linear": lambda z: z,
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_match_math(name):
    for z in (-6.0, -1.5, -0.1, 0.0, 0.3, 2.0, 7.0):
        assert float(activate(name, z)) == pytest.approx(REFERENCE[name](z), rel=1e-12, abs=1e-15)


def test_activations_survive_extremes():
    for name in ACTIVATIONS:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = activate(name, np.array([-1e6, 1e6]))
        assert np.isfinite(out).all()


def test_neuron_weighted_sum():
    r = neuron([1.5, -2.0, 0.25], [0.5, 0.25, -4.0], -0.5, "sigmoid")
    z = 1.5 * 0.5 + -2.0 * 0.25 + 0.25 * -4.0 - 0.5
    assert r.z == pytest.approx(z)
    assert r.out == pytest.approx(1 / (1 + math.exp(-z)))
    assert r.products == (0.75, -0.5, -1.0)
    with pytest.raises(ValueError, match="finite"):
        neuron([float("nan")], [1.0], 0.0, "relu")
    with pytest.raises(ValueError, match="unknown activation"):
        neuron([1.0], [1.0], 0.0, "swish2")


def test_curve():
    z, y = curve("relu", -2, 2, n=5)
    assert z.tolist() == [-2, -1, 0, 1, 2] and y.tolist() == [0, 0, 0, 1, 2]
    with pytest.raises(ValueError):
        curve("relu", 1, 1)


def test_collapse_product_and_outputs():
    d = collapse_demo()
    # the product matrix, by a loop
    prod = [[sum(d.w1[i, k] * d.w2[k, j] for k in range(2)) for j in range(2)] for i in range(2)]
    assert d.product.tolist() == prod
    for x, st, si, rl in zip(d.inputs, d.stacked, d.single, d.with_relu, strict=False):
        h = [sum(x[i] * d.w1[i, k] for i in range(2)) for k in range(2)]
        out = [sum(h[k] * d.w2[k, j] for k in range(2)) for j in range(2)]
        assert st.tolist() == out and si.tolist() == out
        hr = [max(0.0, v) for v in h]
        assert rl.tolist() == [sum(hr[k] * d.w2[k, j] for k in range(2)) for j in range(2)]
    assert d.differs.any() and not d.differs.all()
    assert d.odd_gap > 0


def test_dense_net_by_hand():
    net = run_net()
    x, w1, w2 = net.x[0], net.w1, net.w2
    z1 = [x[0] * w1[0, j] + x[1] * w1[1, j] for j in range(3)]
    a1 = [max(0.0, v) for v in z1]
    z2 = [sum(a1[j] * w2[j, k] for j in range(3)) for k in range(2)]
    assert net.z1[0].tolist() == z1 and net.a1[0].tolist() == a1 and net.z2[0].tolist() == z2
    assert net.firing.tolist() == [v > 0 for v in a1]
    assert [net.matrix(n).shape for n in MATRICES] == [
        (1, 2),
        (2, 3),
        (1, 3),
        (1, 3),
        (3, 2),
        (1, 2),
    ]
    s = worked_sum(net, "Z1", 1)
    assert s == "z1_2 = x1·w1_12 + x2·w1_22 = 1·0 + 2·(-0.5) = -1"
    assert worked_sum(net, "Z2", 0).startswith("z2_1 = a1_1·w2_11 + a1_2·w2_21 + a1_3·w2_31")
    with pytest.raises(ValueError):
        run_net(x=np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError):
        worked_sum(net, "Z1", 3)


def test_dense_net_other_activation():
    net = run_net(activation="tanh")
    assert np.allclose(net.a1, np.tanh(net.z1))
