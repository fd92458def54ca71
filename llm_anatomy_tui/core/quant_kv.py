"""A quantized KV cache (8-bit or 4-bit) and how far it moves the logits.

The cache is where long contexts spend their memory: ``2 · layers · kv_heads · head_dim``
numbers per token. Storing them in 8 or 4 bits instead of 32 cuts that by about 3.8× or
7.1×. This module stores them for real as integer codes plus fp16 scales, hands attention
the decoded float32 keys and values, and measures what that costs in accuracy.

The layout (the same as llama.cpp's ``--cache-type-k/-v q8_0`` and ``q4_0``):

- every **token**, every **KV head**, in **blocks of 32 along the head dimension** (one
  block per head when ``head_dim`` ≤ 32 or is not a multiple of 32) gets its own fp16
  scale;
- 8-bit uses Q8_0's rule (codes -127..127, ``d = amax / 127``), 4-bit Q4_0's rule
  (codes -8..7, ``d = max / -8``) — see :mod:`.quant`;
- 4-bit codes are packed two per byte (element ``2i`` in the low nibble).

Why per token: a token's keys and values are written once, when it is appended, and never
change; a per-token scale lets us quantize them right then and never touch them again.
Scales shared along the sequence (per channel, as KIVI does for keys) would need tokens to
be grouped or re-quantized as they arrive. Blocks of 32 keep one outlier dimension from
flattening a whole head.

Bytes are honest: :attr:`QuantizedLayerKV.nbytes` is the size of the code and scale
arrays for the positions filled — exactly what this cache holds (no float32 copy is kept;
keys and values are decoded on every read, as a quantized kernel would do on the fly).
The arithmetic after decoding is float32, so this simulates the memory saving and the
rounding error, not a speed-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import LlamaConfig
from .evaluate import kl_divergence
from .model import ContextOverflowError, KVCache, LayerKV, Model, forward
from .quant import quantize_int_groups

KV_BITS = (8, 4)
KV_BLOCK = 32


def kv_block_size(head_dim: int) -> int:
    """Values per scale along the head dimension: 32 when it divides head_dim, else head_dim."""
    return KV_BLOCK if head_dim % KV_BLOCK == 0 else head_dim


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Signed 4-bit codes (-8..7, even-length last axis) -> bytes, two codes per byte.

    >>> pack_nibbles(np.array([[-8, 7, 0, -1]], dtype=np.int8)).tolist()
    [[240, 120]]
    """
    u = (codes.astype(np.int16) + 8).astype(np.uint8)  # 0..15
    return u[..., 0::2] | (u[..., 1::2] << np.uint8(4))


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_nibbles`: bytes -> signed codes (int8), twice as long."""
    lo = (packed & np.uint8(0x0F)).astype(np.int8) - np.int8(8)
    hi = (packed >> np.uint8(4)).astype(np.int8) - np.int8(8)
    return np.stack([lo, hi], axis=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)


class _QuantizedTensorStore:
    """Codes + fp16 scales for one of K or V: [Hkv, capacity, D] worth of numbers."""

    def __init__(self, n_kv_heads: int, capacity: int, head_dim: int, bits: int) -> None:
        self.bits, self.head_dim = bits, head_dim
        self.block = kv_block_size(head_dim)
        code_width = head_dim if bits == 8 else head_dim // 2
        code_dtype = np.int8 if bits == 8 else np.uint8
        self.codes = np.zeros((n_kv_heads, capacity, code_width), dtype=code_dtype)
        self.scales = np.zeros((n_kv_heads, capacity, head_dim // self.block), dtype=np.float16)

    def write(self, start: int, x: np.ndarray) -> None:
        """Quantize x [Hkv, T, D] into positions start..start+T-1."""
        n_heads, n_tokens, head_dim = x.shape
        groups = x.reshape(n_heads, n_tokens, head_dim // self.block, self.block)
        q = quantize_int_groups(groups, self.bits, symmetric=True, scale_dtype="fp16")
        codes = q.codes.reshape(n_heads, n_tokens, head_dim)
        if self.bits == 4:
            codes = pack_nibbles(codes)
        self.codes[:, start : start + n_tokens] = codes
        self.scales[:, start : start + n_tokens] = q.scales  # exact: already fp16 values

    def codes_of(self, length: int) -> np.ndarray:
        """Signed codes [Hkv, S, D] of the first ``length`` positions (unpacked)."""
        codes = self.codes[:, :length]
        return unpack_nibbles(codes) if self.bits == 4 else codes

    def read(self, length: int) -> np.ndarray:
        """Decoded float32 values [Hkv, S, D] of the first ``length`` positions."""
        codes = self.codes_of(length).astype(np.float32)
        n_heads, _, head_dim = codes.shape
        blocks = codes.reshape(n_heads, length, head_dim // self.block, self.block)
        scales = self.scales[:, :length, :, None].astype(np.float32)
        return (blocks * scales).reshape(n_heads, length, head_dim)

    def nbytes(self, length: int) -> int:
        return self.codes[:, :length].nbytes + self.scales[:, :length].nbytes


class QuantizedLayerKV(LayerKV):
    """One layer's keys and values stored as 8- or 4-bit codes with fp16 block scales.

    Same interface as :class:`LayerKV`: :attr:`keys` / :attr:`values` are the decoded
    float32 arrays [Hkv, S, D] that attention reads; :attr:`nbytes` counts codes + scales.
    """

    def __init__(self, n_kv_heads: int, capacity: int, head_dim: int, bits: int = 8) -> None:
        # Deliberately not calling LayerKV.__init__: it would allocate float32 storage.
        if bits not in KV_BITS:
            raise ValueError(f"KV cache bits must be 8 or 4, got {bits!r}")
        self.bits = bits
        self.n_kv_heads, self.head_dim, self._capacity = n_kv_heads, head_dim, capacity
        self._kq = _QuantizedTensorStore(n_kv_heads, capacity, head_dim, bits)
        self._vq = _QuantizedTensorStore(n_kv_heads, capacity, head_dim, bits)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def keys(self) -> np.ndarray:
        return self._kq.read(self.length)  # [Hkv, S, D] float32, decoded

    @property
    def values(self) -> np.ndarray:
        return self._vq.read(self.length)  # [Hkv, S, D] float32, decoded

    @property
    def key_codes(self) -> np.ndarray:
        """Signed integer codes of the cached keys, [Hkv, S, D]."""
        return self._kq.codes_of(self.length)

    @property
    def value_codes(self) -> np.ndarray:
        return self._vq.codes_of(self.length)

    @property
    def key_scales(self) -> np.ndarray:
        """fp16 scales of the cached keys, [Hkv, S, D // block]."""
        return self._kq.scales[:, : self.length]

    @property
    def value_scales(self) -> np.ndarray:
        return self._vq.scales[:, : self.length]

    @property
    def nbytes(self) -> int:
        """Bytes held for the filled positions: codes + scales, of keys and values."""
        return self._kq.nbytes(self.length) + self._vq.nbytes(self.length)

    @property
    def fp32_nbytes(self) -> int:
        """What the same positions take in a float32 cache."""
        return 2 * self.n_kv_heads * self.length * self.head_dim * 4

    def append(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantize and store new k, v ([Hkv, T, D]); return all decoded keys and values."""
        n = k.shape[1]
        if self.length + n > self.capacity:
            raise ContextOverflowError(
                f"KV cache full: {self.length} + {n} positions > capacity {self.capacity}"
            )
        self._kq.write(self.length, k)
        self._vq.write(self.length, v)
        self.length += n
        return self.keys, self.values


class QuantizedKVCache(KVCache):
    """A :class:`KVCache` whose layers store 8- or 4-bit codes; pass it to ``forward``."""

    def __init__(self, config: LlamaConfig, capacity: int | None = None, bits: int = 8) -> None:
        if bits not in KV_BITS:
            raise ValueError(f"KV cache bits must be 8 or 4, got {bits!r}")
        self.bits = bits  # read by make_layer, which KVCache.__init__ calls
        super().__init__(config, capacity)

    def make_layer(self, n_kv_heads: int, capacity: int, head_dim: int) -> LayerKV:
        return QuantizedLayerKV(n_kv_heads, capacity, head_dim, bits=self.bits)

    @property
    def fp32_nbytes(self) -> int:
        return sum(layer.fp32_nbytes for layer in self.layers)


def kv_bytes_per_token(config: LlamaConfig, bits: int | None = None) -> int:
    """Cache bytes one token adds: ``2 · L · Hkv · D · 4`` for float32 (``bits=None``),
    codes + fp16 scales for 8/4 bits.

    >>> from llm_anatomy_tui.core.config import LlamaConfig
    >>> cfg = LlamaConfig(8193, 128, 384, 4, 4, 2, 256)  # head_dim 32: one block per head
    >>> kv_bytes_per_token(cfg), kv_bytes_per_token(cfg, 8), kv_bytes_per_token(cfg, 4)
    (2048, 544, 288)
    """
    n_layers, n_kv, head_dim = (
        config.num_hidden_layers,
        config.num_key_value_heads,
        config.dim_head,
    )
    per_head = head_dim * 4
    if bits is not None:
        per_head = head_dim * bits // 8 + (head_dim // kv_block_size(head_dim)) * 2
    return 2 * n_layers * n_kv * per_head


# -- drift versus the float32 cache -----------------------------------------------------


@dataclass(frozen=True)
class KVDriftStep:
    """One step run with both caches; metrics are for the newest position's logits."""

    position: int  # absolute position of the newest token
    length: int  # tokens now cached
    bits: int
    fp32_nbytes: int  # the float32 cache now
    quantized_nbytes: int  # the quantized cache now (codes + scales)
    max_abs_logit_diff: float  # max over the vocabulary of |logit_q - logit_fp32|
    kl: float  # KL(P_fp32 || P_quantized) of the next-token distributions, nats
    top1_match: bool  # both caches give the same most likely next token
    logits_fp32: np.ndarray  # [V] newest position, float32 cache
    logits_quantized: np.ndarray  # [V] newest position, quantized cache

    @property
    def bytes_saved(self) -> int:
        return self.fp32_nbytes - self.quantized_nbytes

    @property
    def saved_fraction(self) -> float:
        return self.bytes_saved / self.fp32_nbytes if self.fp32_nbytes else 0.0


class KVDriftTracker:
    """Run the same tokens through a float32 cache and a quantized one, side by side.

    >>> # tracker = KVDriftTracker(model, bits=4); tracker.feed(prompt); tracker.feed([tok])
    """

    def __init__(self, model: Model, bits: int = 8, capacity: int | None = None) -> None:
        self.model, self.bits = model, bits
        self.fp32_cache = KVCache(model.config, capacity)
        self.quantized_cache = QuantizedKVCache(model.config, capacity, bits=bits)

    @property
    def length(self) -> int:
        return self.fp32_cache.length

    @property
    def remaining(self) -> int:
        """Positions left before the context window is full."""
        return self.fp32_cache.capacity - self.fp32_cache.length

    def reset(self) -> None:
        self.fp32_cache.truncate(0)
        self.quantized_cache.truncate(0)

    def feed(self, tokens: Sequence[int] | np.ndarray) -> KVDriftStep:
        """Append ``tokens`` (a prompt, or one decoded token) to both caches and compare.

        Raises ``ValueError`` for an empty list and ``ContextOverflowError`` (a
        ``ValueError``) past the context window — before either cache changes.
        """
        ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("no tokens to feed: the prompt is empty")
        if ids.size > self.remaining:
            raise ContextOverflowError(
                f"{self.length + ids.size} positions exceed the cache's "
                f"{self.fp32_cache.capacity}; reset to start again"
            )
        ref = forward(self.model, ids, self.fp32_cache)[-1]
        got = forward(self.model, ids, self.quantized_cache)[-1]
        return KVDriftStep(
            position=self.length - 1,
            length=self.length,
            bits=self.bits,
            fp32_nbytes=self.fp32_cache.nbytes,
            quantized_nbytes=self.quantized_cache.nbytes,
            max_abs_logit_diff=float(np.max(np.abs(got - ref))),
            kl=float(kl_divergence(ref, got)),
            top1_match=bool(np.argmax(ref) == np.argmax(got)),
            logits_fp32=ref,
            logits_quantized=got,
        )


def kv_cache_drift(
    model: Model, tokens: Sequence[int] | np.ndarray, bits: int = 8, prefill: int = 1
) -> list[KVDriftStep]:
    """Prefill the first ``prefill`` tokens, then feed the rest one at a time; one
    :class:`KVDriftStep` per call (so ``len(tokens) - prefill + 1`` steps)."""
    ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
    prefill = max(1, min(prefill, ids.size))
    tracker = KVDriftTracker(model, bits, capacity=ids.size)
    steps = [tracker.feed(ids[:prefill])]
    steps += [tracker.feed(ids[i : i + 1]) for i in range(prefill, ids.size)]
    return steps
