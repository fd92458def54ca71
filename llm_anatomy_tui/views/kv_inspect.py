"""What chapter 14 reads off a generation: the cache's real arrays, and each step's work
with the cache and without it.

- :func:`cache_snapshot` records, for every layer, the shape and ``nbytes`` of the cached
  key and value arrays (the arrays themselves, not a formula), plus the length of each
  cached key/value vector per position — the picture of the cache growing.
- :func:`compare_step` measures one generation step both ways, back to back: the cached
  decode (one token fed, attending to the cached keys) and a full recompute (every token
  in context fed again, no cache), and compares the logits the generation used with the
  other way's. Same logits up to float32 rounding; very different work.

Both only read the generation; run them where the generation is driven (its worker).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.generation import Generation, forward_macs, kv_cache_bytes_for
from ..core.model import KVCache, Model, forward


@dataclass(frozen=True)
class LayerArrays:
    """Shapes and bytes of one layer's cached keys and values."""

    layer: int
    k_shape: tuple[int, ...]  # [H_kv, T, d_head]
    v_shape: tuple[int, ...]
    k_nbytes: int
    v_nbytes: int
    dtype: str

    @property
    def nbytes(self) -> int:
        return self.k_nbytes + self.v_nbytes


@dataclass(frozen=True, eq=False)
class CacheSnapshot:
    """The KV cache at one moment, read from its arrays."""

    length: int
    """Positions cached (T)."""
    capacity: int
    layers: tuple[LayerArrays, ...]
    nbytes: int
    """Sum of the arrays' ``nbytes``."""
    formula_bytes: int
    """``2 · L · H_kv · d_head · T · 4`` for the same T."""
    norms: np.ndarray
    """[L, 2, T] float32: the length of each cached key (0) / value (1) vector, averaged over
    the KV heads — one column per position."""

    @property
    def shape(self) -> tuple[int, ...]:
        """(L, 2, H_kv, T, d_head), as :attr:`StepRecord.cache_shape` reports it."""
        first = self.layers[0].k_shape if self.layers else (0, 0, 0)
        return (len(self.layers), 2, first[0], self.length, first[2])


def cache_snapshot(cache: KVCache, config) -> CacheSnapshot:  # noqa: ANN001 - LlamaConfig
    """Shapes, bytes and vector lengths of ``cache``'s arrays, copied out."""
    layers = []
    norms = []
    for i, layer in enumerate(cache.layers):
        k, v = layer.keys, layer.values  # [H_kv, T, D] (decoded float32 if quantized)
        layers.append(
            LayerArrays(
                i, tuple(k.shape), tuple(v.shape), int(k.nbytes), int(v.nbytes), str(k.dtype)
            )  # fmt: skip
        )
        norms.append(
            np.stack([np.linalg.norm(k, axis=-1).mean(0), np.linalg.norm(v, axis=-1).mean(0)])
        )  # [2, T]
    length = cache.length
    stacked = (
        np.stack(norms).astype(np.float32) if norms else np.zeros((0, 2, length), dtype=np.float32)
    )
    return CacheSnapshot(
        length=length,
        capacity=cache.capacity,
        layers=tuple(layers),
        nbytes=int(cache.nbytes),
        formula_bytes=kv_cache_bytes_for(config, length),
        norms=stacked,
    )


@dataclass(frozen=True)
class CacheComparison:
    """One step computed with the KV cache and without it."""

    index: int
    position: int
    """Tokens in context when the step ran (the chosen token's position)."""
    ran_cached: bool
    """How the generation itself ran this step (the other way was measured afterwards)."""
    cached_fed: int
    cached_macs: int
    cached_seconds: float
    uncached_fed: int
    uncached_macs: int
    uncached_seconds: float
    max_abs_diff: float
    """max over the vocabulary of |logit with cache - logit without|."""
    top1_same: bool

    @property
    def prefill(self) -> bool:
        """Step 0 feeds the whole prompt either way: prefill has nothing cached to reuse."""
        return self.cached_fed == self.uncached_fed


def cached_rerun(model: Model, context: Sequence[int]) -> tuple[np.ndarray, float, int]:
    """The last position's logits computed the cached way: the context but its last token
    put in a fresh cache (not timed), then the last token decoded against it (timed).
    Returns (logits [V], seconds, multiply-adds of the timed part)."""
    cache = KVCache(model.config)
    if len(context) > 1:
        forward(model, context[:-1], cache, all_logits=False)
    t0 = time.perf_counter()
    logits = forward(model, context[-1:], cache, all_logits=False)[-1]
    seconds = time.perf_counter() - t0
    return logits, seconds, forward_macs(model.config, 1, len(context) - 1)


def compare_step(gen: Generation, index: int) -> CacheComparison:
    """Measure step ``index`` both ways, one right after the other (so both timings see the
    same machine), and compare the logits the generation used with the other way's.

    With the cache: the context but its last token is put in a fresh cache (not timed),
    then the last token is decoded against it (timed) — except for step 0, the prefill,
    which feeds the whole prompt either way. Without: every token in context, no cache.
    """
    rec = gen.steps[index]
    model = gen.model
    context = gen.tokens[: len(gen.prompt) + index]
    if index == 0:
        t0 = time.perf_counter()
        c_logits = forward(model, context, KVCache(model.config), all_logits=False)[-1]
        c_seconds = time.perf_counter() - t0
        c_macs, c_fed = forward_macs(model.config, len(context)), len(context)
    else:
        c_logits, c_seconds, c_macs = cached_rerun(model, context)
        c_fed = 1
    other = gen.recompute(index)  # no cache: every token again
    mine = np.asarray(rec.logits, np.float64)
    theirs = np.asarray(other.logits if rec.used_cache else c_logits, np.float64)
    return CacheComparison(
        index=index,
        position=rec.position,
        ran_cached=rec.used_cache,
        cached_fed=c_fed,
        cached_macs=int(c_macs),
        cached_seconds=float(c_seconds),
        uncached_fed=len(context),
        uncached_macs=int(other.macs),
        uncached_seconds=float(other.seconds),
        max_abs_diff=float(np.abs(mine - theirs).max()),
        top1_same=bool(np.argmax(mine) == np.argmax(theirs)),
    )


class DriftLog:
    """A float32 cache and a quantized one fed the same tokens as a generation, one token at
    a time after the prompt, with the drift of every step's logits kept.

    :meth:`sync` follows the generation through rewinds and branches: both caches are cut
    back to the tokens still shared and only the new ones are fed. ``rows[i]`` is the drift
    of the logits that choose generated token ``i`` (``i = 0`` after the prefill).
    """

    def __init__(self, model: Model, bits: int) -> None:
        from ..core.quant_kv import KVDriftTracker

        self.bits = bits
        self.tracker = KVDriftTracker(model, bits)
        self.fed: list[int] = []
        self.n_prompt = 0
        self.rows: dict[int, object] = {}  # step index -> KVDriftStep

    def sync(self, tokens: Sequence[int], n_prompt: int, limit: int | None = None) -> int:
        """Feed what is new in ``tokens`` (prompt first, in one pass); forget what changed.
        Feeds at most ``limit`` calls (None: all). Returns how many tokens remain unfed."""
        tokens = [int(t) for t in tokens]
        if n_prompt != self.n_prompt or tokens[:n_prompt] != self.fed[:n_prompt]:
            self.tracker.reset()
            self.fed, self.rows, self.n_prompt = [], {}, n_prompt
        shared = 0
        for a, b in zip(self.fed, tokens, strict=False):
            if a != b:
                break
            shared += 1
        if shared < len(self.fed):
            self.tracker.fp32_cache.truncate(shared)
            self.tracker.quantized_cache.truncate(shared)
            self.fed = self.fed[:shared]
            self.rows = {i: r for i, r in self.rows.items() if n_prompt + i <= shared}
        calls = 0
        while len(self.fed) < len(tokens) and (limit is None or calls < limit):
            start = len(self.fed)
            end = max(n_prompt, start + 1)
            step = self.tracker.feed(tokens[start:end])
            self.fed.extend(tokens[start:end])
            self.rows[end - n_prompt] = step
            calls += 1
        return len(tokens) - len(self.fed)

    @property
    def quantized_cache(self):  # noqa: ANN201 - QuantizedKVCache
        return self.tracker.quantized_cache

    @property
    def fp32_cache(self) -> KVCache:
        return self.tracker.fp32_cache
