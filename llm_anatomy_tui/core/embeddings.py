"""The embedding matrix read directly: rows, cosine neighbours, a 2-D PCA of a token set.

``model.embed`` is ``[V, d]``: row ``i`` is token ``i``'s starting vector, whatever
its context. Nothing here assumes the sizes of a particular model.

>>> m = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
>>> nb = cosine_neighbours(m, 0, k=2)
>>> nb.ids.tolist(), nb.similarities.round(4).tolist()
([2, 1], [0.7071, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

NEIGHBOUR_CHUNK = 16384
"""Rows per block when scoring the whole vocabulary (so progress can be reported and a
cancelled search stops soon; a 150k-token vocabulary is ten blocks)."""


def embedding_rows(embed: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """The rows of ``embed`` [V, d] for ``ids`` -> [T, d] (a copy). Raises ValueError for
    an ID outside the vocabulary."""
    idx = np.asarray(ids, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= embed.shape[0]):
        bad = int(idx[(idx < 0) | (idx >= embed.shape[0])][0])
        raise ValueError(f"token id {bad} is outside the vocabulary (0..{embed.shape[0] - 1})")
    return embed[idx].copy()


def row_norms(embed: np.ndarray) -> np.ndarray:
    """Euclidean norm of every row, in float64: [V, d] -> [V]."""
    e = np.asarray(embed, dtype=np.float64)
    return np.sqrt(np.einsum("vd,vd->v", e, e))


@dataclass(frozen=True)
class Neighbours:
    query: int  # the token looked up (excluded from the list)
    ids: np.ndarray  # [k] token IDs, most similar first
    similarities: np.ndarray  # [k] cosine similarities (float64)
    vocab: int  # how many rows were compared


class Cancelled(Exception):
    """A long computation stopped because its caller asked it to."""


def cosine_neighbours(
    embed: np.ndarray,
    query: int,
    k: int = 10,
    norms: np.ndarray | None = None,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Neighbours:
    """The ``k`` rows most similar to row ``query`` by cosine, over the whole matrix.

    ``cos(a, b) = a·b / (|a| |b|)``; a zero row has similarity 0 with everything. Ties
    keep the lower ID first. ``norms`` (from :func:`row_norms`) may be passed in to reuse
    across queries. The vocabulary is scored in blocks of :data:`NEIGHBOUR_CHUNK` rows,
    calling ``progress(fraction)`` after each and stopping with :class:`Cancelled` when
    ``cancelled()`` turns true.
    """
    n_vocab = embed.shape[0]
    if not 0 <= query < n_vocab:
        raise ValueError(f"token id {query} is outside the vocabulary (0..{n_vocab - 1})")
    norms = row_norms(embed) if norms is None else norms
    q = np.asarray(embed[query], dtype=np.float64)
    qn = norms[query]
    sims = np.empty(n_vocab, dtype=np.float64)
    for start in range(0, n_vocab, NEIGHBOUR_CHUNK):
        if cancelled is not None and cancelled():
            raise Cancelled
        stop = min(n_vocab, start + NEIGHBOUR_CHUNK)
        dots = np.asarray(embed[start:stop], dtype=np.float64) @ q  # [B, d] · [d] -> [B]
        denom = norms[start:stop] * qn
        with np.errstate(invalid="ignore", divide="ignore"):
            sims[start:stop] = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
        if progress is not None:
            progress(stop / n_vocab)
    sims_other = sims.copy()
    sims_other[query] = -np.inf
    k = max(0, min(k, n_vocab - 1))
    # stable sort on -similarity: equal similarities keep ascending IDs
    order = np.argsort(-sims_other, kind="stable")[:k]
    return Neighbours(query, order, sims[order], n_vocab)


@dataclass(frozen=True)
class Projection:
    """A 2-D PCA of some vectors."""

    coords: np.ndarray  # [n, 2] each vector on the first two principal axes
    explained: np.ndarray  # [2] share of the total variance along each axis (0..1)
    components: np.ndarray  # [2, d] the axes (unit vectors)
    mean: np.ndarray  # [d] subtracted before projecting


def pca_2d(vectors: np.ndarray) -> Projection:
    """Principal component analysis of ``vectors`` [n, d] onto its first two axes.

    Centre the rows, take the eigenvectors of the covariance with the largest
    eigenvalues (via ``numpy.linalg.eigh`` of the d×d or n×n Gram matrix, whichever is
    smaller), project. ``explained[i]`` is eigenvalue i over the sum of all eigenvalues.
    Signs are fixed so each axis's largest-magnitude coordinate is positive. Needs at
    least 2 distinct vectors.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("a projection needs at least two vectors")
    mean = x.mean(axis=0)
    c = x - mean  # [n, d]
    n, d = c.shape
    if n <= d:
        # Gram matrix: c cᵀ = U S² Uᵀ; axes are cᵀ u / s
        vals, vecs = np.linalg.eigh(c @ c.T)  # ascending
        vals, vecs = vals[::-1], vecs[:, ::-1]
        vals = np.clip(vals, 0.0, None)
        total = vals.sum()
        if total <= 0:
            raise ValueError("the vectors are all identical: there is no spread to project")
        sing = np.sqrt(vals[:2])
        comps = np.zeros((2, d))
        for i in range(2):
            if sing[i] > 1e-12 * math.sqrt(total):
                comps[i] = c.T @ vecs[:, i] / sing[i]
    else:
        vals, vecs = np.linalg.eigh(c.T @ c)
        vals, vecs = np.clip(vals[::-1], 0.0, None), vecs[:, ::-1]
        total = vals.sum()
        if total <= 0:
            raise ValueError("the vectors are all identical: there is no spread to project")
        comps = vecs[:, :2].T.copy()
    coords = c @ comps.T  # [n, 2]
    for i in range(2):
        j = int(np.argmax(np.abs(coords[:, i])))
        if coords[j, i] < 0:
            coords[:, i] *= -1
            comps[i] *= -1
    explained = np.array([vals[0], vals[1] if len(vals) > 1 else 0.0]) / total
    return Projection(coords, explained, comps, mean)
