"""The KV cache: every layer's keys (after RoPE) and values for the positions seen so far.

Decoding one token appends its key and value to each layer and attends over all of them,
so nothing before it is recomputed. Storage is preallocated for the whole context window
(numpy's zeros are lazily mapped pages, so unused capacity costs no memory until written).
"""

from __future__ import annotations

import numpy as np

from .config import LlamaConfig


class ContextOverflowError(ValueError):
    """More positions were asked for than the model's context window holds."""


class LayerKV:
    """Keys (after RoPE) and values of one layer for every position seen so far.

    Storage is preallocated for the whole context window; :attr:`keys` / :attr:`values`
    are views of the filled part, so their ``nbytes`` is exactly what the cache holds.
    """

    def __init__(self, n_kv_heads: int, capacity: int, head_dim: int) -> None:
        self._k = np.zeros((n_kv_heads, capacity, head_dim), dtype=np.float32)
        self._v = np.zeros((n_kv_heads, capacity, head_dim), dtype=np.float32)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self._k.shape[1]

    @property
    def keys(self) -> np.ndarray:
        return self._k[:, : self.length]  # [Hkv, S, D]

    @property
    def values(self) -> np.ndarray:
        return self._v[:, : self.length]  # [Hkv, S, D]

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes

    def append(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store new k, v ([Hkv, T, D]) after the cached ones; return all keys and values."""
        start = self.length
        end = start + k.shape[1]
        if end > self._k.shape[1]:
            raise ContextOverflowError(
                f"KV cache full: {start} + {k.shape[1]} positions > capacity {self.capacity}"
            )
        self._k[:, start:end] = k
        self._v[:, start:end] = v
        self.length = end
        return self._k[:, :end], self._v[:, :end]

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (used to rewind generation)."""
        self.length = max(0, min(length, self.length))


class KVCache:
    """One :class:`LayerKV` per block. ``length`` is the number of positions cached."""

    def __init__(self, config: LlamaConfig, capacity: int | None = None) -> None:
        capacity = capacity or config.max_position_embeddings
        self.layers = [
            self.make_layer(config.num_key_value_heads, capacity, config.dim_head)
            for _ in range(config.num_hidden_layers)
        ]

    def make_layer(self, n_kv_heads: int, capacity: int, head_dim: int) -> LayerKV:
        """Storage for one layer; subclasses return a quantized variant."""
        return LayerKV(n_kv_heads, capacity, head_dim)

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def capacity(self) -> int:
        return self.layers[0].capacity

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)

    def truncate(self, length: int) -> None:
        for layer in self.layers:
            layer.truncate(length)
