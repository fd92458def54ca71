"""A toy attention head on one sentence, with 4-number vectors small enough to read.

The scenario (from the seed explainer): "A blue car crashed into a concrete wall, it was
speeding." One token per word, punctuation left out. Every number here is hand-made so
that the story is true and checkable by hand; nothing was trained:

- each word's embedding has four named features (:data:`FEATURES`): *vehicle*, *solid*,
  *describes* (an adjective) and *points back* (a word that refers to something earlier);
- ``W_Q`` turns features into what a word looks for: a describing word looks for nouns,
  a noun looks for the words describing it, a pointing word looks for a vehicle and for
  other pointing words;
- ``W_K`` turns features into what a word offers to be found by; ``W_V`` into what it
  hands over when it is found.

With every word visible ("bidirectional", as in an encoder) *blue* attends most to *car*,
*concrete* to *wall*, *it* to *car*, and *speeding* to *car* and then *it*. Under the
causal mask of a decoder a word sees only itself and earlier words, so *blue* cannot see
*car* yet; the link runs the other way (*car* attends most to *blue*).

Embeddings have one decimal and the weight matrices are small integers, so q and k have
one decimal, q·k has two and q·k/√4 three: the scores printed on screen are exact, and
the weights are the softmax of exactly those numbers.

>>> r = attend(WORDS.index("blue"), causal=True)
>>> [WORDS[i] for i in np.flatnonzero(r.visible)]
['A', 'blue']
>>> float(r.dots[1]), float(r.scaled[1]), [round(float(w), 3) for w in r.weights[:3]]
(3.75, 1.875, [0.133, 0.867, 0.0])
>>> WORDS[attend(WORDS.index("it")).top], WORDS[attend(WORDS.index("blue")).top]
('car', 'car')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ops import softmax

SENTENCE = "A blue car crashed into a concrete wall, it was speeding."
"""The scenario as a person reads it."""

WORDS: tuple[str, ...] = (
    "A",
    "blue",
    "car",
    "crashed",
    "into",
    "a",
    "concrete",
    "wall",
    "it",
    "was",
    "speeding",
)
"""The toy's tokens: one per word of :data:`SENTENCE`, punctuation left out."""

FEATURES: tuple[str, ...] = ("vehicle", "solid", "describes", "points back")
"""What each of the four embedding numbers stands for (true only in this toy)."""

EMBEDDINGS = np.array(
    [
        # vehicle, solid, describes, points back
        [0.0, 0.0, 0.2, 0.0],  # A
        [0.5, 0.0, 1.0, 0.0],  # blue      (a colour: leans to vehicles)
        [1.0, 0.1, 0.0, 0.0],  # car
        [0.4, 0.3, 0.0, 0.2],  # crashed
        [0.0, 0.2, 0.0, 0.0],  # into
        [0.0, 0.1, 0.2, 0.0],  # a
        [0.0, 0.6, 1.0, 0.0],  # concrete  (a material: leans to solid things)
        [0.1, 1.0, 0.0, 0.0],  # wall
        [0.2, 0.0, 0.0, 1.0],  # it
        [0.1, 0.0, 0.0, 0.3],  # was
        [0.3, 0.0, 0.0, 0.8],  # speeding  (says something about an earlier subject)
    ]
)
"""[11, 4] one row per word: the toy's starting vectors."""

W_Q = np.array(
    [
        [1, 0, 2, 0],  # vehicle     -> looks a little for vehicles, more for describers
        [0, 1, 2, 0],  # solid       -> looks a little for solid things, more for describers
        [2, 2, -1, 0],  # describes  -> looks for nouns, away from other describers
        [3, 0, 0, 1],  # points back -> looks hard for a vehicle, a little for pointers
    ]
)
"""[4, 4] features -> query: q = x · W_Q."""

W_K = np.array(
    [
        [3, 0, 0, 0],  # vehicle     -> offers "vehicle"
        [0, 3, 0, 0],  # solid       -> offers "solid"
        [0, 0, 2, 0],  # describes   -> offers "describer"
        [1, 0, 0, 2],  # points back -> offers "pointer" (and a little "vehicle")
    ]
)
"""[4, 4] features -> key: k = x · W_K."""

W_V = np.array(
    [
        [2, 0, 0, 0],
        [0, 2, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
    ]
)
"""[4, 4] features -> value: v = x · W_V (the value keeps the four features, nouns louder)."""

D_K = 4
"""Width of q and k; scores are divided by √D_K = 2."""


@dataclass(frozen=True, eq=False)
class ToyAttention:
    """One query word attending over the sentence. Arrays have one entry per word."""

    query: int
    """Index of the query word in :data:`WORDS`."""
    causal: bool
    """True: only the query and earlier words are visible (a decoder's mask)."""
    q: np.ndarray
    """[4] the query word's query vector."""
    keys: np.ndarray
    """[n, 4] every word's key vector."""
    values: np.ndarray
    """[n, 4] every word's value vector."""
    visible: np.ndarray
    """[n] bool: True where the query may look."""
    dots: np.ndarray
    """[n] q·k for every word (also for masked ones: the mask only hides them)."""
    scaled: np.ndarray
    """[n] q·k / √D_K."""
    weights: np.ndarray
    """[n] softmax of ``scaled`` over the visible words; exactly 0 where masked."""
    output: np.ndarray
    """[4] Σ weights[i] · values[i]: what the query word takes in."""

    @property
    def word(self) -> str:
        return WORDS[self.query]

    @property
    def top(self) -> int:
        """The word with the highest weight (the lowest index on a tie)."""
        return int(np.argmax(self.weights))


def project(x: np.ndarray = EMBEDDINGS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q, K, V = x·W_Q, x·W_K, x·W_V, each [n, 4].

    Rounded to one decimal, which they have exactly (one-decimal inputs times integer
    weights): the rounding only removes binary floating-point noise.
    """
    return (np.round(x @ W_Q, 1), np.round(x @ W_K, 1), np.round(x @ W_V, 1))


def visible_keys(query: int, n: int, causal: bool) -> np.ndarray:
    """[n] bool: every word (bidirectional) or words up to the query (causal)."""
    positions = np.arange(n)
    return positions <= query if causal else np.ones(n, dtype=bool)


def masked_softmax(scores: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Softmax over the visible entries; hidden ones get exactly 0."""
    return softmax(np.where(visible, scores, -np.inf))


def attend(query: int, causal: bool = False) -> ToyAttention:
    """The whole computation for one query word.

    ``scores = q·k`` (two exact decimals), ``scaled = scores / √4``, ``weights =
    softmax(scaled)`` over the visible words, ``output = Σ weights · v``.
    """
    n = len(WORDS)
    if not 0 <= query < n:
        raise IndexError(f"query {query} is not a word of the toy sentence (0..{n - 1})")
    q_all, k_all, v_all = project()
    q = q_all[query]
    dots = np.round(k_all @ q, 2)  # [n]
    scaled = np.round(dots / math.sqrt(D_K), 3)  # exact: dots have two decimals, √4 = 2
    visible = visible_keys(query, n, causal)
    weights = masked_softmax(scaled, visible)
    output = weights @ v_all  # [n] · [n, 4] -> [4]
    return ToyAttention(query, causal, q, k_all, v_all, visible, dots, scaled, weights, output)


def attention_weights(causal: bool = False) -> np.ndarray:
    """[n, n] the weights of every query word (rows) over every key word (columns)."""
    return np.stack([attend(i, causal).weights for i in range(len(WORDS))])
