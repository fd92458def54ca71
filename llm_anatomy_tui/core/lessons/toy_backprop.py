"""A toy next-word predictor small enough to backpropagate by hand (chapter 6).

Two input numbers ``x`` go through one weight matrix ``W`` [3, 2] and a bias ``b`` [3] to
three logits, one per candidate word; softmax turns them into probabilities and the loss
is the cross-entropy of the right word::

    z = W x + b          logits           [3]
    p = softmax(z)       probabilities    [3]
    L = -log p[t]        cross-entropy    (t = the target word)

Backpropagation walks the same graph in reverse, one *local* derivative per node, and the
chain rule multiplies them:

    ∂L/∂p_t  = -1 / p_t
    ∂p_t/∂z_k = p_t (δ_tk - p_k)                      (softmax's Jacobian, row t)
    ∂L/∂z_k  = ∂L/∂p_t · ∂p_t/∂z_k = p_k - δ_tk       (the famous "p minus one-hot")
    ∂z_k/∂W_kj = x_j,   ∂z_k/∂b_k = 1
    ∂L/∂W_kj = (p_k - δ_tk) · x_j,   ∂L/∂b_k = p_k - δ_tk

A gradient-descent step moves every weight against its gradient, ``W ← W - lr · ∂L/∂W``,
and the loss after the step is lower for a small enough learning rate. Every number is
hand-made (nothing was trained); the tests check the gradients against central finite
differences.

>>> r = run_toy()
>>> WORDS[r.target], round(r.loss, 4), round(r.new_loss, 4) < round(r.loss, 4)
('sat', 1.1546, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORDS: tuple[str, ...] = ("ran", "sat", "sang")
"""The three candidate next words (the toy's whole vocabulary)."""
CONTEXT = "The cat"
"""The toy's context: two made-up features of it are the input ``x``."""
X = np.array([1.0, 0.5])
"""Input features (made up: "is an animal", "is small")."""
W0 = np.array([[0.6, -0.2], [0.2, 0.4], [-0.1, 0.5]])
"""Starting weights, one row per word."""
B0 = np.array([0.1, 0.0, 0.2])
"""Starting biases."""
TARGET = 1
"""Index of the right next word ("sat")."""
LR = 0.5
"""The default learning rate of the update step."""

STAGES: tuple[str, ...] = (
    "forward",
    "loss",
    "local derivatives",
    "chain rule",
    "update",
    "new loss",
)
"""The order in which chapter 6 reveals the example."""


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities from logits (shifted by the maximum for stability).

    >>> softmax(np.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    e = np.exp(z - np.max(z))
    return e / e.sum()


def toy_loss(w: np.ndarray, b: np.ndarray, x: np.ndarray = X, target: int = TARGET) -> float:
    """Cross-entropy of ``target`` for weights ``w`` and biases ``b``."""
    return float(-np.log(softmax(w @ x + b)[target]))


@dataclass(frozen=True)
class ToyBackprop:
    """Every number of one forward pass, backward pass and update of the toy."""

    x: np.ndarray  # [2] input
    w: np.ndarray  # [3, 2] weights before
    b: np.ndarray  # [3] biases before
    target: int
    lr: float
    z: np.ndarray  # [3] logits
    p: np.ndarray  # [3] probabilities
    loss: float
    dl_dp: float  # ∂L/∂p_t = -1/p_t
    dp_dz: np.ndarray  # [3] ∂p_t/∂z_k = p_t (δ_tk - p_k)
    dz_dw: np.ndarray  # [3, 2] ∂z_k/∂W_kj = x_j
    dl_dz: np.ndarray  # [3] chain: dl_dp * dp_dz = p - onehot
    grad_w: np.ndarray  # [3, 2] dl_dz[k] * x[j]
    grad_b: np.ndarray  # [3]
    new_w: np.ndarray
    new_b: np.ndarray
    new_z: np.ndarray
    new_p: np.ndarray
    new_loss: float

    @property
    def diverged(self) -> bool:
        """True when the update produced a non-finite loss (an absurd learning rate)."""
        return not np.isfinite(self.new_loss)


def run_toy(
    lr: float = LR,
    x: np.ndarray = X,
    w: np.ndarray = W0,
    b: np.ndarray = B0,
    target: int = TARGET,
) -> ToyBackprop:
    """Forward, loss, local derivatives, chain rule, update and new loss of the toy."""
    z = w @ x + b
    p = softmax(z)
    loss = float(-np.log(p[target]))
    onehot = np.zeros_like(p)
    onehot[target] = 1.0
    dl_dp = -1.0 / float(p[target])
    dp_dz = p[target] * (onehot - p)
    dz_dw = np.broadcast_to(x, w.shape).copy()
    dl_dz = dl_dp * dp_dz  # equals p - onehot
    grad_w = dl_dz[:, None] * dz_dw
    grad_b = dl_dz.copy()
    with np.errstate(all="ignore"):
        new_w = w - lr * grad_w
        new_b = b - lr * grad_b
        new_z = new_w @ x + new_b
        new_p = softmax(new_z)
        new_loss = float(-np.log(new_p[target]))
    return ToyBackprop(
        x=x, w=w, b=b, target=target, lr=lr, z=z, p=p, loss=loss, dl_dp=dl_dp,
        dp_dz=dp_dz, dz_dw=dz_dw, dl_dz=dl_dz, grad_w=grad_w, grad_b=grad_b,
        new_w=new_w, new_b=new_b, new_z=new_z, new_p=new_p, new_loss=new_loss,
    )  # fmt: skip
