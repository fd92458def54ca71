"""What chapters 8 and 9 read about attention: the model's Q, K, V, scores and weights for
the shared context (prompt + generated tokens), kept up to date cheaply as it changes.

No Textual here (pure numpy over :mod:`llm_anatomy_tui.core`), so it is testable alone.

:class:`AttentionTracker` holds the attention intermediates of one growing sequence. A
causal model never lets a token see later ones, so the maps of any prefix are the top-left
corner of the maps of the whole sequence. That makes every change the chapters meet cheap:

- a **step** (one token appended) runs only the new token through the model, reusing the
  KV cache, and writes one new row (and the new key's column of raw scores): ~1 ms,
  where a full traced forward of 256 tokens takes 30–50 ms;
- a **rewind** is a slice: nothing is computed;
- a **branch** or an edit at the end of the prompt keeps the common prefix and runs the rest.

The numbers are those of :func:`~llm_anatomy_tui.core.model.forward` with a trace, equal
to a fresh traced forward of the whole sequence up to float32 rounding (tested).

Buffers are preallocated for the whole context window and only ever written beyond the
part already handed out; when the sequence diverges, fresh buffers are made, so a
:class:`AttentionSnapshot` a screen holds never changes under it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.config import LlamaConfig
from ..core.model import KVCache, Model, Trace, forward
from ..core.ops import attention_scores
from .token_pieces import piece_display


@dataclass(frozen=True, eq=False)
class AttentionSnapshot:
    """Attention intermediates of every layer for ``tokens`` (read-only views).

    Shapes use L layers, H query heads, Hkv K/V heads, T tokens, D head width, d hidden.
    """

    tokens: tuple[int, ...]
    config: LlamaConfig
    q: np.ndarray
    """[L, H, T, D] queries after RoPE (what the scores use)."""
    k: np.ndarray
    """[L, Hkv, T, D] keys after RoPE."""
    v: np.ndarray
    """[L, Hkv, T, D] values."""
    scores: np.ndarray
    """[L, H, T, T] q·k/√D for every query/key pair, before the causal mask."""
    weights: np.ndarray
    """[L, H, T, T] softmax over the allowed keys; future cells exactly 0."""
    heads: np.ndarray
    """[L, H, T, D] each head's weighted sum of values."""
    attn_out: np.ndarray
    """[L, T, d] the heads concatenated and projected by o_proj."""

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def mask(self) -> np.ndarray:
        """[T, T] True where query t may look at key s (s <= t)."""
        t = self.n_tokens
        return np.tri(t, t, dtype=bool)

    def kv_head(self, head: int) -> int:
        """The K/V head that query head ``head`` reads (grouped-query attention)."""
        return head // self.config.group_size


class AttentionTracker:
    """The attention maps of one sequence, extended, cut back or rebuilt as asked.

    Thread-safe: :meth:`snapshot` may run in any worker; :meth:`peek` is cheap enough for
    the UI thread (it never runs the model).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._tokens: tuple[int, ...] = ()
        self._cache: KVCache | None = None
        self._buf: dict[str, np.ndarray] = {}

    # -- public ------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Positions the buffers hold now (they grow as the context does)."""
        return self._buf["q"].shape[2] if self._buf else 0

    def peek(self, model: Model, tokens: Sequence[int]) -> AttentionSnapshot | None:
        """The snapshot for ``tokens`` if it needs no computation (the same sequence or a
        prefix of it), else None."""
        tokens = tuple(int(t) for t in tokens)
        with self._lock:
            if model is not self._model or not tokens:
                return None
            if self._tokens[: len(tokens)] == tokens:
                return self._view(tokens)
            return None

    def snapshot_if_cheap(
        self, model: Model, tokens: Sequence[int], max_new: int = 4
    ) -> AttentionSnapshot | None:
        """The snapshot when it costs at most ``max_new`` tokens through the model and no
        copying (a step or two appended, or a prefix), else None. Never waits for the
        lock: made for the UI thread, where a generation step should appear at once."""
        tokens = tuple(int(t) for t in tokens)
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if model is not self._model or not tokens:
                return None
            known = self._tokens
            if known[: len(tokens)] == tokens:
                return self._view(tokens)
            if tokens[: len(known)] != known or len(tokens) - len(known) > max_new:
                return None
            if len(tokens) > model.config.max_position_embeddings:
                return None
            self._extend(tokens[len(known) :])
            return self._view(tokens)
        finally:
            self._lock.release()

    def snapshot(self, model: Model, tokens: Sequence[int]) -> AttentionSnapshot:
        """The snapshot for ``tokens``, running the model on what is not known yet.

        Raises ValueError for an empty sequence or one longer than the context window
        (callers pass :meth:`Session.context_ids` or a generation's tokens, which never are).
        """
        tokens = tuple(int(t) for t in tokens)
        cfg = model.config
        if not tokens:
            raise ValueError("no tokens: the model needs at least one")
        if len(tokens) > cfg.max_position_embeddings:
            raise ValueError(
                f"{len(tokens)} tokens do not fit the context window of "
                f"{cfg.max_position_embeddings}"
            )
        with self._lock:
            if model is not self._model:
                self._reset(model)
            common = _common_prefix(self._tokens, tokens)
            if common < len(self._tokens) and common < len(tokens):
                self._cut(common)  # diverged: keep the shared start only
            if len(tokens) > len(self._tokens):
                self._extend(tokens[len(self._tokens) :])
            return self._view(tokens)

    # -- internals ---------------------------------------------------------------------------

    def _reset(self, model: Model) -> None:
        cfg = model.config
        cap = cfg.max_position_embeddings
        L, H, Hkv, D, d = (  # noqa: N806 - the shape letters of the docstrings
            cfg.num_hidden_layers,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.dim_head,
            cfg.hidden_size,
        )
        self._model = model
        self._tokens = ()
        self._cache = KVCache(cfg, cap)
        self._buf = _buffers(L, H, Hkv, D, d, 0)

    def _grow(self, needed: int) -> None:
        """Make the buffers hold ``needed`` positions: allocated for what is used (doubling,
        up to the context window), never [L, H, context, context] up front — for a model
        with a 2,048-token context that would be gigabytes."""
        assert self._model is not None
        have = self._buf["q"].shape[2]
        if needed <= have:
            return
        cfg = self._model.config
        cap = min(cfg.max_position_embeddings, max(needed, 2 * have, MIN_CAPACITY))
        self._buf = self._moved(cap, len(self._tokens))

    def _moved(self, cap: int, keep: int) -> dict[str, np.ndarray]:
        """Fresh buffers of ``cap`` positions holding the first ``keep`` of the current ones
        (snapshots handed out keep viewing the old ones, unchanged)."""
        old = self._buf
        L, H, _, D = old["q"].shape  # noqa: N806
        Hkv, d = old["k"].shape[1], old["attn_out"].shape[2]  # noqa: N806
        fresh = _buffers(L, H, Hkv, D, d, cap)
        if keep:
            for name, arr in old.items():
                if name in ("scores", "weights"):
                    fresh[name][:, :, :keep, :keep] = arr[:, :, :keep, :keep]
                elif name == "attn_out":
                    fresh[name][:, :keep] = arr[:, :keep]
                else:
                    fresh[name][:, :, :keep] = arr[:, :, :keep]
        return fresh

    def _cut(self, keep: int) -> None:
        """Forget everything from position ``keep`` on, in fresh buffers (snapshots that
        were handed out keep viewing the old ones, unchanged)."""
        assert self._cache is not None
        self._buf = self._moved(self._buf["q"].shape[2], keep)
        self._cache.truncate(keep)  # the cache is ours alone: cut it in place
        self._tokens = self._tokens[:keep]

    def _extend(self, new: tuple[int, ...]) -> None:
        assert self._model is not None and self._cache is not None
        start = len(self._tokens)
        stop = start + len(new)
        self._grow(stop)
        trace = Trace()
        forward(self._model, new, cache=self._cache, trace=trace)
        b = self._buf
        for i, rec in enumerate(trace.layers):
            b["q"][i, :, start:stop] = rec["q_rope"]
            b["k"][i, :, start:stop] = rec["k_rope"]
            b["v"][i, :, start:stop] = rec["v"]
            b["scores"][i, :, start:stop, :stop] = rec["scores"]
            b["weights"][i, :, start:stop, :stop] = rec["weights"]
            b["heads"][i, :, start:stop] = rec["heads"]
            b["attn_out"][i, start:stop] = rec["attn_out"]
            if start:
                # raw scores of the earlier queries against the new keys (masked for them:
                # the mask hides these cells, it does not stop them from being computed)
                b["scores"][i, :, :start, start:stop] = attention_scores(
                    b["q"][i, :, :start], rec["k_rope"]
                )
        self._tokens = self._tokens + new

    def _view(self, tokens: tuple[int, ...]) -> AttentionSnapshot:
        t = len(tokens)
        b = self._buf
        views = {
            "q": b["q"][:, :, :t],
            "k": b["k"][:, :, :t],
            "v": b["v"][:, :, :t],
            "scores": b["scores"][:, :, :t, :t],
            "weights": b["weights"][:, :, :t, :t],
            "heads": b["heads"][:, :, :t],
            "attn_out": b["attn_out"][:, :t],
        }
        for arr in views.values():
            arr.flags.writeable = False
        assert self._model is not None
        return AttentionSnapshot(tokens=tokens, config=self._model.config, **views)


MIN_CAPACITY = 64
"""Positions the buffers hold at first; they double as the context grows."""


def _buffers(L: int, H: int, Hkv: int, D: int, d: int, cap: int) -> dict[str, np.ndarray]:  # noqa: N803
    f32 = np.float32
    return {
        "q": np.zeros((L, H, cap, D), f32),
        "k": np.zeros((L, Hkv, cap, D), f32),
        "v": np.zeros((L, Hkv, cap, D), f32),
        "scores": np.zeros((L, H, cap, cap), f32),
        "weights": np.zeros((L, H, cap, cap), f32),
        "heads": np.zeros((L, H, cap, D), f32),
        "attn_out": np.zeros((L, cap, d), f32),
    }


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def context_summary(n_prompt: int, n_tokens: int) -> str:
    """ "18 prompt tokens", "18 prompt + 3 generated tokens" — the context in one phrase.

    >>> context_summary(18, 18), context_summary(1, 4)
    ('18 prompt tokens', '1 prompt + 3 generated tokens')
    """
    generated = n_tokens - n_prompt
    if not generated:
        return f"{n_prompt} prompt token" + ("s" if n_prompt != 1 else "")
    return f"{n_prompt} prompt + {generated} generated token" + ("s" if n_tokens != 1 else "")


def token_labels(encoding, tokens: Sequence[int]) -> list[str]:  # noqa: ANN001
    """Display text of each token (``·`` for a space, ``⏎`` for a newline, byte pieces
    marked) — the same labels chapter 1 shows on its chips."""
    return [_label(encoding, int(t)) for t in tokens]


@functools.lru_cache(maxsize=1 << 15)
def _label(encoding, token: int) -> str:  # noqa: ANN001
    try:
        raw = encoding.decode_single_token_bytes(token)
    except KeyError:
        raw = b""
    return piece_display(raw) if raw else f"#{token}"
