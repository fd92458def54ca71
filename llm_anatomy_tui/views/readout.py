"""Numbers as a reader sees them: round once, then derive everything from the rounded values.

Chapter 5 prints a column of logits beside a column of probabilities. The promise is that
a reader with a calculator can check any row: ``p = exp(logit - lse)``, where ``lse`` is
the log-sum-exp (the softmax's normaliser) printed under the table, and any two rows:
``p_i / p_j = exp(logit_i - logit_j)``. If logits and probabilities were rounded
independently, that check would fail in the last digit now and then. So a
:class:`SoftmaxReadout` rounds the logits and the normaliser to the places shown, and
computes each probability from *those* rounded numbers.

How far that is from the model's own probability: rounding a logit and the normaliser to
``d`` places moves ``logit - lse`` by at most ``10**-d``, so the derived probability is
within a factor ``exp(±10**-d)`` of the true one — with ``d = 4``, a relative error of at
most 0.01 %, below the last digit of a percentage printed with two decimals for every
probability under 50 % (and at most one unit of it above).

>>> r = softmax_readout(np.array([2.0, 1.0, 0.0]), [0, 1, 2], decimals=4)
>>> r.logits, r.lse
((2.0, 1.0, 0.0), 2.4076)
>>> [f"{p:.2%}" for p in r.probs]
['66.52%', '24.47%', '9.00%']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LOGIT_DECIMALS = 4
"""Places shown for logits and normalisers in chapter 5."""
PERCENT_DECIMALS = 2
"""Places shown for probabilities as percentages in chapter 5."""


def rounded(value: float, decimals: int) -> float:
    """``value`` rounded exactly as ``f"{value:.{decimals}f}"`` prints it.

    >>> rounded(2.40760596, 4), rounded(-0.00004, 4)
    (2.4076, -0.0)
    """
    return float(f"{float(value):.{decimals}f}")


def logsumexp(values: np.ndarray, keep: np.ndarray | None = None) -> float:
    """``log(sum(exp(values)))`` over the kept entries, in float64, without overflow.

    >>> round(logsumexp(np.array([1000.0, 1000.0])), 6)
    1000.693147
    """
    x = np.asarray(values, dtype=np.float64)
    if keep is not None:
        x = x[np.asarray(keep, dtype=bool)]
    if x.size == 0:
        raise ValueError("logsumexp of no values")
    top = float(x.max())
    return top + math.log(float(np.exp(x - top).sum()))


@dataclass(frozen=True)
class SoftmaxReadout:
    """Rows of a softmax table, rounded for display, with probabilities derived from them.

    ``logits[i]`` and ``lse`` are the values printed (rounded to ``decimals`` places);
    ``probs[i] = exp(logits[i] - lse)`` exactly (0 for rows outside the kept set).
    ``true_probs`` are the unrounded softmax values, for comparison.
    """

    ids: tuple[int, ...]
    logits: tuple[float, ...]
    lse: float
    probs: tuple[float, ...]
    true_probs: tuple[float, ...]
    kept: tuple[bool, ...]
    decimals: int
    n_terms: int
    """How many logits the normaliser sums over (the vocabulary, or the kept tokens)."""


def softmax_readout(
    logits: np.ndarray,
    ids: Sequence[int],
    *,
    keep: np.ndarray | None = None,
    decimals: int = LOGIT_DECIMALS,
) -> SoftmaxReadout:
    """The softmax of ``logits`` (all [V]) over the ``keep`` mask (default: all), read out
    for the rows ``ids``: rounded logits, rounded normaliser, probabilities derived from
    the two. Rows outside ``keep`` get probability 0."""
    row = np.asarray(logits, dtype=np.float64).reshape(-1)
    mask = np.ones(row.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    lse_true = logsumexp(row, mask)
    lse = rounded(lse_true, decimals)
    shown, probs, true_probs, kept = [], [], [], []
    for i in ids:
        k = bool(mask[i])
        value = rounded(row[i], decimals)
        shown.append(value)
        kept.append(k)
        probs.append(math.exp(value - lse) if k else 0.0)
        true_probs.append(math.exp(row[i] - lse_true) if k else 0.0)
    return SoftmaxReadout(
        ids=tuple(int(i) for i in ids),
        logits=tuple(shown),
        lse=lse,
        probs=tuple(probs),
        true_probs=tuple(true_probs),
        kept=tuple(kept),
        decimals=decimals,
        n_terms=int(mask.sum()),
    )


def percent_text(p: float, decimals: int = PERCENT_DECIMALS) -> str:
    """A probability as a percentage with ``decimals`` places ("28.84%")."""
    return f"{p * 100:.{decimals}f}%"


def check_softmax_text(
    logit_texts: Sequence[str],
    prob_texts: Sequence[str],
    lse_text: str,
) -> list[str]:
    """What a reader with a calculator would object to in a printed softmax table.

    Each row's printed probability (``"28.84%"`` or ``"0.2884"``) must equal
    ``exp(logit - lse)`` computed from the *printed* logit and normaliser, rounded to the
    places printed. Returns one line per objection (empty: the table checks out).

    >>> check_softmax_text(["2.0000", "1.0000"], ["66.52%", "24.47%"], "2.4076")
    []
    >>> check_softmax_text(["2.0000"], ["66.50%"], "2.4076")
    ['row 0: exp(2.0000 - 2.4076) = 66.52%, printed 66.50%']
    """
    problems = []
    lse = float(lse_text)
    for i, (lt, pt) in enumerate(zip(logit_texts, prob_texts, strict=True)):
        pt = pt.strip()
        percent = pt.endswith("%")
        digits = pt.rstrip("%")
        places = len(digits.split(".")[1]) if "." in digits else 0
        value = math.exp(float(lt) - lse) * (100 if percent else 1)
        expect = f"{value:.{places}f}" + ("%" if percent else "")
        if expect != pt:
            problems.append(
                f"row {i}: exp({lt.strip()} - {lse_text.strip()}) = {expect}, printed {pt}"
            )
    return problems
