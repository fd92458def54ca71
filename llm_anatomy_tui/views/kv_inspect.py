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
from time import sleep as _pause  # real sleep, even where a test replaces ``time``

import numpy as np

from ..core.generation import Generation, StepRecord, forward_macs, kv_cache_bytes_for
from ..core.model import KVCache, Model, forward
from .generation_ops import step_op


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
    """Measure step ``index`` of ``gen`` both ways (see :func:`compare_record`)."""
    return compare_record(gen.model, gen.tokens, len(gen.prompt), gen.steps[index])


def compare_record(model: Model, tokens: Sequence[int], n_prompt: int,
                   rec: StepRecord) -> CacheComparison:  # fmt: skip
    """Measure the step ``rec`` both ways, one right after the other (so both timings see
    the same machine), and compare the logits the generation used with the other way's.

    ``tokens`` holds the generation's tokens (at least up to the step's context), its
    first ``n_prompt`` the prompt. Reads only the model and the immutable record: it can
    run in any thread, beside the generation worker.

    With the cache: the context but its last token is put in a fresh cache (not timed),
    then the last token is decoded against it (timed) — except for step 0, the prefill,
    which feeds the whole prompt either way. Without: every token in context, no cache.
    """
    index = rec.index
    context = list(tokens[: n_prompt + index])
    if index == 0:
        t0 = time.perf_counter()
        c_logits = forward(model, context, KVCache(model.config), all_logits=False)[-1]
        c_seconds = time.perf_counter() - t0
        c_macs, c_fed = forward_macs(model.config, len(context)), len(context)
    else:
        c_logits, c_seconds, c_macs = cached_rerun(model, context)
        c_fed = 1
    t0 = time.perf_counter()  # no cache: every token again
    u_logits = forward(model, context, all_logits=False)[-1]
    u_seconds = time.perf_counter() - t0
    u_macs = forward_macs(model.config, len(context))
    mine = np.asarray(rec.logits, np.float64)
    theirs = np.asarray(u_logits if rec.used_cache else c_logits, np.float64)
    return CacheComparison(
        index=index,
        position=rec.position,
        ran_cached=rec.used_cache,
        cached_fed=c_fed,
        cached_macs=int(c_macs),
        cached_seconds=float(c_seconds),
        uncached_fed=len(context),
        uncached_macs=int(u_macs),
        uncached_seconds=float(u_seconds),
        max_abs_diff=float(np.abs(mine - theirs).max()),
        top1_same=bool(np.argmax(mine) == np.argmax(theirs)),
    )


def measure_records(model: Model, tokens: Sequence[int], n_prompt: int,
                    records: Sequence[StepRecord], task=None) -> dict:  # noqa: ANN001  # fmt: skip
    """:func:`compare_record` for each of ``records`` in turn: {record: comparison}. With
    a ``task`` (the compute path's), stops early once it is cancelled."""
    out = {}
    for i, rec in enumerate(records):
        if task is not None and task.cancelled:
            break
        out[rec] = compare_record(model, tokens, n_prompt, rec)
        if task is not None:
            task.report((i + 1) / len(records))
    return out


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


# -- what chapter 14 draws ----------------------------------------------------------------

NOISE_FLOOR = 1e-4
"""Logit differences below this are float32 rounding noise (their digits depend on the
BLAS kernel): shown as "< 1e-4", never as digits."""


def diff_text(value: float, floor: float = NOISE_FLOOR) -> str:
    """A max |Δlogit| as printed: noise-level values in a stable form.

    >>> diff_text(6.7e-06), diff_text(3.8e-06), diff_text(0.0123)
    ('< 1e-4', '< 1e-4', '1.2e-02')
    >>> diff_text(0.0)
    '0'
    """
    if value == 0:
        return "0"
    if value < floor:
        return f"< {floor:.0e}".replace("e-0", "e-")
    return f"{value:.1e}"


@dataclass(frozen=True, eq=False)
class KVState:
    """What chapter 14 shows of the shared generation, read by a generation op (a snapshot:
    the live generation and its cache may change under the screen; this never does)."""

    key: tuple
    """Identifies the generation state it was read from (object, steps, last step)."""
    config: object
    """The model's :class:`~llm_anatomy_tui.core.config.LlamaConfig`."""
    n_prompt: int
    n_tokens: int
    tokens: tuple
    """The generation's tokens: the prompt's, then one per step."""
    steps: tuple
    """The generation's step records (immutable)."""
    stop: object
    """Why the generation cannot go on (a :class:`~..core.generation.Stop`), or None."""
    snapshot: CacheSnapshot
    bits: int | None = None
    drift: tuple = ()
    """(step index, KVDriftStep) for every step the quantized cache has seen."""
    quant_codes_bytes: int = 0
    quant_scales_bytes: int = 0
    quant_pending: int = 0
    """Tokens the quantized cache has not been fed yet (the next op feeds them)."""
    message: str = ""
    """What went wrong measuring, or ""."""
    info: str = ""
    """What the op that made this state did ("" for nothing to say)."""
    notice: str = ""
    """Why the model reads something other than the typed prompt, or ""."""

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def behind(self) -> bool:
        """True while another op would feed the quantized cache more tokens."""
        return not self.message and self.quant_pending > 0


def state_key(gen: Generation) -> tuple:
    """What identifies a generation's state for chapter 14: the object and its steps."""
    last = gen.steps[-1] if gen.steps else None
    return (id(gen), len(gen.steps), id(last), gen.stop)


def kv_state(gen: Generation, log: DriftLog | None, *, feeds: int = 64, info: str = "",
             notice: str = "") -> KVState:  # fmt: skip
    """Read chapter 14's numbers off ``gen`` (inside a generation op).

    Runs the next forward pass first (so the cache holds every token in context), and
    feeds the quantized cache ``log`` (if any) up to ``feeds`` times. A failure there is
    reported in ``message``, not raised. (Each step measured both ways is
    :func:`measure_records`' job, run beside the generation worker.)"""
    import contextlib

    from ..core.generation import GenerationStopped

    if gen.room > 0 and not gen.done:
        with contextlib.suppress(GenerationStopped):
            gen.preview()
    message = ""
    drift: tuple = ()
    codes = scales = pending = 0
    try:
        if log is not None:
            pending = log.sync(gen.tokens, len(gen.prompt), limit=feeds)
            drift = tuple(sorted(log.rows.items()))
            cache = log.quantized_cache
            scales = sum(layer.key_scales.nbytes + layer.value_scales.nbytes
                         for layer in cache.layers)  # fmt: skip
            codes = cache.nbytes - scales
    except Exception as exc:  # keep the screen alive and say what failed
        message = f"Could not measure this step: {type(exc).__name__}: {exc}"
    return KVState(
        key=state_key(gen), config=gen.model.config, n_prompt=len(gen.prompt),
        n_tokens=len(gen.tokens), tokens=tuple(gen.tokens), steps=tuple(gen.steps), stop=gen.stop,
        snapshot=cache_snapshot(gen.cache, gen.model.config),
        bits=log.bits if log is not None else None, drift=drift, quant_codes_bytes=codes,
        quant_scales_bytes=scales, quant_pending=pending, message=message, info=info,
        notice=notice,
    )  # fmt: skip


# -- the chapter's generation ops (run in the app's generation worker) ------------------------

CATCH_UP_DELAY = 0.12
"""Seconds without a newer step before the missing measurements are taken."""


def ignore_progress(_report: object) -> None:
    """Measuring reports no progress on screen (the task is there to cancel it)."""


def measure_after_a_pause(model, tokens, n_prompt, records, task):  # noqa: ANN001, ANN201
    """:func:`measure_records` once no newer request came for :data:`CATCH_UP_DELAY`
    seconds: while a step key is held each step cancels the last request, so the forward
    passes a measurement costs never compete with the steps."""
    _pause(CATCH_UP_DELAY)
    if task.cancelled:
        return None
    return measure_records(model, tokens, n_prompt, records, task)


def ten_steps_op(gen: Generation) -> str:
    """Ten steps in one op (fewer if generation stops), or why there were none."""
    for _ in range(10):
        said = step_op(gen)
        if said:
            return said
    return ""


def restart_op(gen: Generation) -> str:
    """Forget every step and the cache: the next step prefills the prompt again."""
    gen.rewind(0)
    gen.cache.truncate(0)
    return ""


def array_rows(snap: CacheSnapshot) -> list[tuple[str, str, str, int, str]]:
    """One row per layer: name, K shape, V shape, bytes K + V, dtype."""
    rows = []
    for layer in snap.layers:
        k = f"[{', '.join(str(d) for d in layer.k_shape)}]"
        v = f"[{', '.join(str(d) for d in layer.v_shape)}]"
        rows.append((f"layer {layer.layer}", k, v, layer.nbytes, layer.dtype))
    return rows
