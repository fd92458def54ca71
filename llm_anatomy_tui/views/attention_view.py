"""Chapter 8's numbers as a reader sees them: the toy's vectors and sums, and the key table
of the real model's query row (scores, weights derived from the printed scores).

Pure Python over numpy (no Textual, no Rich).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.lessons import toy_attention as toy
from .attention_tracker import AttentionSnapshot
from .readout import softmax_readout

SCORE_DECIMALS = 4
"""Places for the real model's scores (and the softmax normaliser) in the key table."""
WEIGHT_DECIMALS = 2
"""Places for the real model's weights, as percentages, in the key table."""


def vec_text(values: np.ndarray, decimals: int = 1, width: int = 4) -> str:
    """``[ 3.2  0.0 -0.4]``: a short vector with every number to ``decimals`` places."""
    return "[" + " ".join(f"{v:{width}.{decimals}f}" for v in values) + "]"


def percent(value: float, decimals: int = 1) -> str:
    return f"{value * 100:.{decimals}f}%"


@dataclass(frozen=True)
class ToyLines:
    """What the toy table shows, as the strings shown (for tests and readers)."""

    words: tuple[str, ...]
    dots: tuple[str, ...]
    scaled: tuple[str, ...]
    weights: tuple[str, ...]
    output: str
    sum_line: str
    top_line: str


def toy_lines(r: toy.ToyAttention) -> ToyLines:
    dots, scaled, weights = [], [], []
    for j in range(len(toy.WORDS)):
        if r.visible[j]:
            dots.append(f"{r.dots[j]:.2f}")
            scaled.append(f"{r.scaled[j]:.3f}")
            weights.append(percent(r.weights[j]))
        else:
            dots.append("·")
            scaled.append("·")
            weights.append("masked")
    shown = sum(float(w.rstrip("%")) for w in weights if w.endswith("%"))
    sum_line = "the weights add up to 100%"
    if f"{shown:.1f}" != "100.0":
        sum_line += f" (the rounded figures above: {shown:.1f}%)"
    top = r.top
    top_line = f"“{r.word}” looks most at “{toy.WORDS[top]}”: {percent(r.weights[top])}"
    if top == r.query:
        top_line += " (itself)"
    output = vec_text(r.output, 2, 5)
    return ToyLines(
        tuple(toy.WORDS), tuple(dots), tuple(scaled), tuple(weights), output, sum_line, top_line
    )


@dataclass(frozen=True)
class KeyRow:
    """One row of the "where the query looks" table, as shown."""

    position: int
    label: str
    score: str
    weight: str


@dataclass(frozen=True)
class KeyTable:
    rows: tuple[KeyRow, ...]
    rest_count: int
    rest_weight: str
    lse: str
    n_keys: int
    printed_total: str
    """The printed weights (and the rest) added up; 100.00% unless rounding says otherwise."""


def key_table(
    snap: AttentionSnapshot, layer: int, head: int, query: int, labels: list[str], n_rows: int
) -> KeyTable:
    """The ``n_rows`` keys the query weights most, with scores and weights read out so a
    reader can check each: weight = exp(score − normaliser), from the printed numbers."""
    scores = snap.scores[layer, head, query].astype(np.float64)
    allowed = np.arange(snap.n_tokens) <= query
    weights = snap.weights[layer, head, query]
    n_keys = query + 1
    order = np.argsort(-weights[:n_keys], kind="stable")
    readout = softmax_readout(scores, [int(i) for i in order], keep=allowed,
                              decimals=SCORE_DECIMALS)  # fmt: skip
    shown = max(1, min(n_rows, n_keys))
    if n_keys - shown == 1:
        shown = n_keys  # a "1 more key" line would take the row it saves
    rows = tuple(
        KeyRow(i, labels[i], f"{score:.{SCORE_DECIMALS}f}", f"{p * 100:.{WEIGHT_DECIMALS}f}%")
        for i, score, p in list(zip(readout.ids, readout.logits, readout.probs, strict=True))[
            :shown
        ]
    )
    rest = sum(readout.true_probs[shown:]) * 100  # the model's own weights
    printed = sum(float(r.weight.rstrip("%")) for r in rows)
    # the rest as what the printed rows leave of 100%, when that is the rest to within
    # one unit of the last place: then the column adds up exactly, as a reader checks it
    unit = 10.0**-WEIGHT_DECIMALS
    complement = round(100.0 - printed, WEIGHT_DECIMALS)
    rest_value = complement if abs(complement - rest) <= unit + 1e-9 else rest
    rest_text = f"{max(0.0, rest_value):.{WEIGHT_DECIMALS}f}%"
    if n_keys > shown:
        printed += float(rest_text.rstrip("%"))
    return KeyTable(
        rows, n_keys - shown, rest_text, f"{readout.lse:.{SCORE_DECIMALS}f}", n_keys,
        f"{printed:.{WEIGHT_DECIMALS}f}%",
    )  # fmt: skip


def colour_top(weights: np.ndarray) -> float:
    """The top of a weight map's colour scale: its largest weight outside row 0 (the first
    token can only look at itself, so that row is always 1 and would wash out the rest)."""
    if weights.shape[0] < 2:
        return 1.0
    return max(float(weights[1:].max()), 1e-6)
