"""Step-by-step generation: prefill, cached decoding, and a record of every step.

A :class:`Generation` holds one prompt and the tokens generated after it. Each
:meth:`Generation.step` runs the model on whatever the KV cache does not hold yet (the
whole prompt the first time — the *prefill* — then one token), samples the next token
and returns a :class:`StepRecord`: the logits, every sampling stage, the draw, the chosen
token, the cache's shape and bytes, the multiply-adds and the time the step took.

It can be rewound to step t, branched at step t with another token, and replayed. Draws
are reproducible because step t always draws from its own generator,
:func:`step_rng` ``(seed, t)``: rewinding and stepping again gives the same token, and a
branch changes the tokens after it only through the model, never through the dice.

Context-window policy: a generation never holds more than ``max_position_embeddings``
tokens (prompt + generated). The step that fills the window is returned with
``stop.reason == "context_full"``; stepping further raises :class:`GenerationStopped`.

Sharing: one instance can back several screens. It has no global state and is driven by
one thread at a time (e.g. a single Textual worker); :class:`StepRecord` objects are
frozen and their arrays read-only, so any thread may read the records it was handed.

>>> from llm_anatomy_tui.core.config import LlamaConfig
>>> from llm_anatomy_tui.core.model import init_random
>>> cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
...                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
...                   max_position_embeddings=8)
>>> gen = Generation(init_random(cfg), [1, 2, 3], seed=7)
>>> first = gen.step()
>>> (first.index, first.position, first.n_fed, first.cache_shape)
(0, 3, 3, (2, 2, 2, 3, 4))
>>> gen.step().n_fed   # decoding feeds only the token chosen last
1
>>> records = gen.generate(10)   # stops early: the context window holds 8 tokens
>>> len(gen.tokens), gen.stop.reason
(8, 'context_full')
"""

from __future__ import annotations

import codecs
import copy
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .config import LlamaConfig
from .model import ContextOverflowError, KVCache, Model, Trace, check_tokens, forward
from .sampling import (
    SamplingResult,
    SamplingSettings,
    check_stops,
    find_stop,
    held_back,
    rank_tokens,
    sample,
    softmax64,
)

STOP_END_OF_TEXT = "end_of_text"
STOP_SEQUENCE = "stop_sequence"
STOP_MAX_TOKENS = "max_tokens"
STOP_CONTEXT_FULL = "context_full"


class GenerationStopped(RuntimeError):
    """step() was called on a generation that has stopped; the message says why."""


@dataclass(frozen=True)
class Stop:
    """Why a generation ended, as a code (one of the STOP_* constants) and a sentence."""

    reason: str
    message: str
    sequence: str | None = None
    """The stop sequence that ended it (``reason == STOP_SEQUENCE``), else None."""


# -- cost figures -------------------------------------------------------------------------


def token_macs(config: LlamaConfig, n_keys: int, head: bool = True) -> int:
    """Multiply-adds to run one token through the model when it attends to ``n_keys``
    positions (itself included), plus the output head if ``head``.

    Counts the matrix products — projections, q·k scores, weighted sums of values, the
    FFN and the head — which are all but a sliver of the work; norms, RoPE, softmax and
    SiLU are elementwise and left out. Per layer::

        d*(H + 2*Hkv)*D      q, k, v projections
        2 * H * D * n_keys   scores q·k and the weighted sum of values
        H*D*d                output projection
        3 * d * f            gate, up, down
    """
    d, f = config.hidden_size, config.intermediate_size
    q, kv = config.q_width, config.kv_width
    per_layer = d * (q + 2 * kv) + 2 * q * n_keys + q * d + 3 * d * f
    return config.num_hidden_layers * per_layer + (d * config.vocab_size if head else 0)


def forward_macs(
    config: LlamaConfig, n_new: int, n_cached: int = 0, all_logits: bool = False
) -> int:
    """Multiply-adds to run ``n_new`` tokens after ``n_cached`` cached positions.

    The token at position p attends to p + 1 keys (the causal triangle). The head runs on
    every new position if ``all_logits``, else on the last one only, as generation does.
    Note: for a multi-token call :func:`~llm_anatomy_tui.core.model.forward` also computes
    the scores of masked (future) cells before zeroing them; this figure counts the
    arithmetic causal attention needs, not that waste.
    """
    attended = sum(range(n_cached + 1, n_cached + n_new + 1))  # keys seen by each new token
    no_attn = token_macs(config, 0, head=False)
    heads = n_new if all_logits else 1
    return (
        n_new * no_attn
        + config.num_hidden_layers * 2 * config.q_width * attended
        + heads * config.hidden_size * config.vocab_size
    )


def decode_step_macs(config: LlamaConfig, position: int, cached: bool = True) -> int:
    """Multiply-adds of the decode step that feeds the token at ``position`` (0-based).

    With a KV cache only that token runs; without one all ``position + 1`` tokens are run
    again from scratch. Both compute the same logits (for the last position only).

    >>> from llm_anatomy_tui.core.config import LlamaConfig
    >>> cfg = LlamaConfig(vocab_size=100, hidden_size=8, intermediate_size=16,
    ...                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
    ...                   max_position_embeddings=32)
    >>> decode_step_macs(cfg, 9, cached=True), decode_step_macs(cfg, 9, cached=False)
    (1536, 7440)
    """
    if cached:
        return forward_macs(config, 1, position)
    return forward_macs(config, position + 1, 0)


def kv_cache_bytes(
    *, layers: int, kv_heads: int, head_dim: int, positions: int, bytes_per_value: float = 4
) -> int:
    """Bytes a KV cache needs: ``2 (K and V) x layers x kv_heads x head_dim x positions x
    bytes per value``.

    >>> kv_cache_bytes(layers=32, kv_heads=8, head_dim=128, positions=8192, bytes_per_value=2)
    1073741824
    """
    return int(2 * layers * kv_heads * head_dim * positions * bytes_per_value)


def kv_cache_bytes_for(config: LlamaConfig, positions: int, bytes_per_value: float = 4) -> int:
    """:func:`kv_cache_bytes` for a model config (float32 by default, as this cache is)."""
    return kv_cache_bytes(
        layers=config.num_hidden_layers,
        kv_heads=config.num_key_value_heads,
        head_dim=config.dim_head,
        positions=positions,
        bytes_per_value=bytes_per_value,
    )


def step_rng(seed: int, index: int) -> np.random.Generator:
    """The generator step ``index`` draws from: PCG64 seeded by ``SeedSequence([seed, index])``.

    One generator per step (rather than one stream for the whole run) is what makes
    rewinding and replaying exact.
    """
    return np.random.default_rng([seed, index])


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StepRecord:
    """One generation step. Frozen; arrays are read-only."""

    index: int
    """Step number t, from 0."""
    position: int
    """Absolute position of the chosen token = number of tokens before it."""
    n_fed: int
    """Tokens run through the model in this step: the prompt (prefill), 1 (cached
    decode), or every token so far (cache off)."""
    used_cache: bool
    logits: np.ndarray
    """[V] float32 logits at the last position: the model's prediction for ``position``."""
    sampling: SamplingResult
    """Every sampling stage and the draw (see :mod:`.sampling`)."""
    token: int
    """The token appended: the sampler's choice, or the caller's if ``forced``."""
    forced: bool
    """True when the token was chosen by the caller (a branch), not by the sampler."""
    piece: bytes
    """The token's bytes (may be part of a UTF-8 character); b'' without an encoding."""
    new_text: str
    """Output text that became final at this step (what a streaming printer shows now);
    text that could still turn out to be a stop sequence or half a character waits."""
    cache_length: int
    """Positions held by the KV cache after this step's forward pass."""
    cache_shape: tuple[int, ...]
    """(layers, 2 [K and V], kv_heads, positions, head_dim) of the cached arrays."""
    cache_bytes: int
    """Bytes of cached K and V: the sum of the arrays' ``nbytes``."""
    macs: int
    """Multiply-adds of this step's forward pass (see :func:`forward_macs`)."""
    seconds: float
    """Wall-clock time of this step's forward pass."""
    stop: Stop | None
    """Set when the generation ended with this step."""
    trace: Trace | None = None
    """The forward pass's trace, when the generation records traces."""

    @property
    def prob(self) -> float:
        """Probability of the chosen token in the final (filtered) distribution."""
        return float(self.sampling.probs[self.token])

    @property
    def raw_prob(self) -> float:
        """Probability of the chosen token under the model alone (softmax of the logits)."""
        return float(softmax64(self.logits)[self.token])

    def top(self, n: int = 10) -> list[tuple[int, float, float]]:
        """The n most likely tokens under the model, most likely first (ties: lower id):
        (id, logit, probability)."""
        probs = softmax64(self.logits)
        n = max(0, min(n, self.logits.size))
        ids = np.arange(self.logits.size)
        if 0 < n < self.logits.size:  # partition first: a full sort of V costs ~1 ms
            cut = np.partition(self.logits, self.logits.size - n)[self.logits.size - n]
            ids = np.flatnonzero(self.logits >= cut)
        ids = ids[rank_tokens(self.logits[ids])][:n]
        return [(int(i), float(self.logits[i]), float(probs[i])) for i in ids]


@dataclass(frozen=True, eq=False)
class Recompute:
    """The logits of a step computed again without any cache, for comparison."""

    logits: np.ndarray  # [V]
    seconds: float
    macs: int


@dataclass(frozen=True, eq=False)
class _Forward:
    """One forward pass that produced next-token logits (kept until the step uses it)."""

    length: int  # tokens in context when it ran
    used_cache: bool
    logits: np.ndarray  # [V]
    n_fed: int
    macs: int
    seconds: float
    trace: Trace | None


# -- the generation ------------------------------------------------------------------------


class Generation:
    """A prompt plus the tokens generated after it, stepped one token at a time.

    Parameters are also attributes; ``settings``, ``seed``, ``use_cache``,
    ``record_trace``, ``max_new_tokens``, ``stop_sequences`` and ``stop_tokens`` may be
    changed between steps and apply from the next step on.

    ``encoding`` (a tiktoken ``Encoding`` matching the model's vocabulary) is needed for
    text: token pieces, ``text``, stop sequences. ``stop_tokens`` defaults to the
    encoding's ``<|endoftext|>`` and the config's ``eos_token_id``.
    """

    def __init__(
        self,
        model: Model,
        prompt: Sequence[int],
        settings: SamplingSettings | None = None,
        seed: int = 0,
        *,
        encoding=None,
        stop_sequences: Sequence[str] = (),
        stop_tokens: Sequence[int] | None = None,
        max_new_tokens: int | None = None,
        use_cache: bool = True,
        record_trace: bool = False,
        cache: KVCache | None = None,
    ) -> None:
        cfg = model.config
        ids = check_tokens(model, prompt)  # raises on empty / out of vocab / too long
        self.model = model
        self.prompt: tuple[int, ...] = tuple(int(t) for t in ids)
        self.settings = settings or SamplingSettings()
        self.seed = _check_seed(seed)
        self.encoding = encoding
        self._stop_sequences = check_stops(stop_sequences)
        if self._stop_sequences and encoding is None:
            raise ValueError("stop sequences need an encoding to turn tokens into text")
        self._stops_from = 0  # output text before this offset cannot match a stop sequence
        if stop_tokens is None:
            defaults = {getattr(encoding, "eot_token", None), cfg.eos_token_id}
            stop_tokens = [t for t in defaults if t is not None and 0 <= t < cfg.vocab_size]
        self.stop_tokens = frozenset(int(t) for t in stop_tokens)
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        self.max_new_tokens = max_new_tokens
        self.use_cache = use_cache
        self.record_trace = record_trace
        if cache is not None and cache.length:
            raise ValueError("the cache given to a new Generation must be empty")
        self.cache = cache if cache is not None else KVCache(cfg)
        # the most tokens (prompt + generated) this generation can hold
        self.window = min(cfg.max_position_embeddings, self.cache.capacity)
        self._steps: list[StepRecord] = []
        self._next: _Forward | None = None  # logits for the next position, once computed
        self._shown = ""  # output text already handed out through StepRecord.new_text
        self._stop: Stop | None = None
        if len(self.prompt) > self.window:
            raise ContextOverflowError(
                f"the prompt has {len(self.prompt)} tokens; the cache holds {self.window}"
            )
        if len(self.prompt) == self.window:
            self._stop = Stop(
                STOP_CONTEXT_FULL,
                f"the prompt fills the context window ({self.window} tokens); "
                "there is no room for a new token",
            )

    @classmethod
    def from_text(cls, model: Model, prompt: str, encoding, **kwargs) -> Generation:
        """Encode ``prompt`` with ``encoding`` (special-token text is encoded as plain text)."""
        return cls(model, encoding.encode(prompt, disallowed_special=()), encoding=encoding,
                   **kwargs)  # fmt: skip

    # -- state ------------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[StepRecord, ...]:
        return tuple(self._steps)

    @property
    def last(self) -> StepRecord | None:
        """The latest step, or None before the first."""
        return self._steps[-1] if self._steps else None

    @property
    def generated(self) -> tuple[int, ...]:
        return tuple(s.token for s in self._steps)

    @property
    def tokens(self) -> tuple[int, ...]:
        """Prompt and generated tokens: the whole sequence."""
        return self.prompt + self.generated

    @property
    def stop(self) -> Stop | None:
        """Why the generation ended, or None while it can go on."""
        return self._stop

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        """Texts that end the generation when they appear in output generated after they
        were set (text generated before cannot trigger a stop sequence set later)."""
        return self._stop_sequences

    @stop_sequences.setter
    def stop_sequences(self, stops: Sequence[str]) -> None:
        """Set the stop sequences from the next step on. If the generation had ended on a
        stop sequence that is no longer among them, it may go on."""
        stops = check_stops(stops)
        if stops == self._stop_sequences:
            return
        if stops and self.encoding is None:
            raise ValueError("stop sequences need an encoding to turn tokens into text")
        self._stop_sequences = stops
        self._stops_from = len(self._output_text())
        stop = self._stop
        if stop is not None and stop.reason == STOP_SEQUENCE and stop.sequence not in stops:
            self._stop = self._limit_stop()

    @property
    def done(self) -> bool:
        return self._stop is not None

    @property
    def room(self) -> int:
        """How many more tokens fit in the context window."""
        return self.window - len(self.prompt) - len(self._steps)

    @property
    def text(self) -> str:
        """The generated text so far: stop tokens dropped, cut before any stop sequence,
        a trailing half character shown as U+FFFD."""
        return self._render(self.generated, final=True)[0]

    def piece(self, token: int) -> bytes:
        """The bytes of one token id; b'' if there is no encoding or the id has no text."""
        if self.encoding is None:
            return b""
        try:
            return self.encoding.decode_single_token_bytes(int(token))
        except KeyError:
            return b""

    # -- stepping ---------------------------------------------------------------------------
    def step(self, token: int | None = None) -> StepRecord:
        """Run the model, sample the next token (or append ``token``), return the record."""
        if self._stop is not None:
            raise GenerationStopped(f"generation has stopped: {self._stop.message}")
        cfg = self.model.config
        if token is not None and not 0 <= int(token) < cfg.vocab_size:
            raise ValueError(
                f"token id {token} is outside the vocabulary (0..{cfg.vocab_size - 1})"
            )
        index = len(self._steps)
        context = self.tokens
        fwd = self._next_forward()
        result = self._sample(fwd.logits, self.settings, index, context)
        chosen = result.token if token is None else int(token)
        generated = (*self.generated, chosen)
        text, cut = self._render(generated, final=False)
        stop = self._check_stop(chosen, index, cut)
        if stop is not None:
            text, _ = self._render(generated, final=True)  # the end: flush what was held back
        new_text = _after(self._shown, text)
        self._shown = text
        cached = self.cache.length
        record = StepRecord(
            index=index,
            position=len(context),
            n_fed=fwd.n_fed,
            used_cache=fwd.used_cache,
            logits=fwd.logits,
            sampling=result,
            token=chosen,
            forced=token is not None,
            piece=self.piece(chosen),
            new_text=new_text,
            cache_length=cached,
            cache_shape=(cfg.num_hidden_layers, 2, cfg.num_key_value_heads, cached, cfg.dim_head),
            cache_bytes=self.cache.nbytes,
            macs=fwd.macs,
            seconds=fwd.seconds,
            stop=stop,
            trace=fwd.trace,
        )
        self._steps.append(record)
        self._stop = stop
        return record

    def generate(self, n: int) -> list[StepRecord]:
        """Up to ``n`` steps; fewer if the generation stops first."""
        return list(self.iter_steps(n))

    def iter_steps(self, n: int | None = None) -> Iterator[StepRecord]:
        """Yield records until ``n`` steps are taken (None: until it stops)."""
        taken = 0
        while self._stop is None and (n is None or taken < n):
            yield self.step()
            taken += 1

    def preview(
        self, settings: SamplingSettings | None = None, index: int | None = None
    ) -> SamplingResult:
        """What the sampler does with ``settings`` (default: the current ones) at step
        ``index`` (default: the next step), without taking a step.

        Uses the same logits and the same per-step draw that :meth:`step` uses, so a
        preview of the next step shows exactly the choice ``step()`` will make with those
        settings. For the next step this runs the model once (then remembers the logits);
        for a past step it only re-runs the sampler (well under a millisecond).
        """
        settings = settings or self.settings
        if index is None or index == len(self._steps):
            index = len(self._steps)
            if self._stop is not None and self.room <= 0:
                raise GenerationStopped(f"generation has stopped: {self._stop.message}")
            logits = self._next_forward().logits
        elif 0 <= index < len(self._steps):
            logits = self._steps[index].logits
        else:
            raise IndexError(f"no step {index}: there are {len(self._steps)} steps")
        return self._sample(logits, settings, index, self.tokens[: len(self.prompt) + index])

    def rewind(self, index: int) -> None:
        """Go back to just before step ``index``: keep steps 0..index-1, forget the rest.

        The KV cache is truncated to match (it keeps every position it can), and any stop
        is cleared — so ``rewind(len(steps))`` continues past an end-of-text token.
        """
        if not 0 <= index <= len(self._steps):
            raise IndexError(f"cannot rewind to step {index}: there are {len(self._steps)} steps")
        del self._steps[index:]
        self._next = None
        n_tokens = len(self.prompt) + index
        # Keep all but the last token: its logits are what the next step needs, so the
        # next step feeds it again (one cheap decode) instead of storing logits here.
        self.cache.truncate(min(self.cache.length, n_tokens - 1))
        self._shown = "".join(rec.new_text for rec in self._steps)  # what was handed out
        # text generated again after the rewind is new: a stop sequence may match it
        self._stops_from = min(self._stops_from, len(self._output_text()))
        self._stop = None
        if self.room <= 0:
            self._stop = Stop(STOP_CONTEXT_FULL, self._full_message())

    def _limit_stop(self) -> Stop | None:
        """The stop a generation with its steps so far has without any stop token or
        stop sequence: the context window or the token limit, if reached."""
        if self.room <= 0:
            return Stop(STOP_CONTEXT_FULL, self._full_message())
        if self.max_new_tokens is not None and len(self._steps) >= self.max_new_tokens:
            return Stop(STOP_MAX_TOKENS, f"{self.max_new_tokens} new tokens generated")
        return None

    def _output_text(self) -> str:
        """The whole output text of the steps so far, no stop sequence applied."""
        pieces = [self.piece(t) for t in self.generated if t not in self.stop_tokens]
        return _decode(pieces, final=True)

    def branch(self, index: int, token: int) -> StepRecord:
        """Rewind to step ``index`` and take it with ``token`` instead of the sampler's choice."""
        self.rewind(index)
        return self.step(token=token)

    def replay(self) -> list[StepRecord]:
        """Take the same steps again from the start with each step's own settings and the
        current seed; forced tokens are forced again. Same seed → same tokens."""
        old = self._steps[:]
        settings = self.settings
        self.rewind(0)
        try:
            for rec in old:
                if self._stop is not None:
                    break
                self.settings = rec.sampling.settings
                self.step(token=rec.token if rec.forced else None)
        finally:
            self.settings = settings
        return self._steps[:]

    def recompute(self, index: int) -> Recompute:
        """Step ``index``'s logits computed from scratch without a cache (for comparison)."""
        if not 0 <= index < len(self._steps):
            raise IndexError(f"no step {index}: there are {len(self._steps)} steps")
        context = self.tokens[: len(self.prompt) + index]
        t0 = time.perf_counter()
        logits = forward(self.model, context, all_logits=False)[-1]
        seconds = time.perf_counter() - t0
        return Recompute(_frozen(logits), seconds, forward_macs(self.model.config, len(context)))

    def fork(self) -> Generation:
        """An independent copy (its own cache); records are shared, being immutable."""
        twin = copy.copy(self)
        twin.cache = copy.deepcopy(self.cache)
        twin._steps = self._steps[:]
        return twin

    def trace_context(self, upto: int | None = None) -> Trace:
        """A full traced forward pass (no cache) over the first ``upto`` tokens (default:
        all), e.g. for attention maps over prompt and generated text together."""
        tokens = self.tokens if upto is None else self.tokens[:upto]
        trace = Trace()
        forward(self.model, tokens, trace=trace)
        return trace

    # -- internals --------------------------------------------------------------------------
    def _sample(
        self, logits: np.ndarray, settings: SamplingSettings, index: int, context: Sequence[int]
    ) -> SamplingResult:
        rng = None if settings.greedy else step_rng(self.seed, index)
        return sample(logits, settings, rng, history=context)

    def _next_forward(self) -> _Forward:
        """The forward pass giving the logits for the next position, run at most once."""
        n = len(self.prompt) + len(self._steps)
        memo = self._next
        if memo is not None and memo.length == n and memo.used_cache == self.use_cache:
            if memo.trace is not None or not self.record_trace:
                return memo
            # a trace is wanted now: run the last token again, with one
            self.cache.truncate(min(self.cache.length, n - 1))
        self._next = self._run_forward(self.tokens)
        return self._next

    def _run_forward(self, context: tuple[int, ...]) -> _Forward:
        """Feed what the cache lacks (or, cache off, everything) and time it."""
        cfg = self.model.config
        trace = Trace() if self.record_trace else None
        if self.use_cache:
            if self.cache.length >= len(context):  # all cached already: the last token
                self.cache.truncate(len(context) - 1)  # runs again to give its logits
            cached = self.cache.length
            pending = context[cached:]
            t0 = time.perf_counter()
            out = forward(self.model, pending, self.cache, trace=trace, all_logits=False)
        else:
            cached, pending = 0, context
            t0 = time.perf_counter()
            out = forward(self.model, pending, trace=trace, all_logits=False)
        seconds = time.perf_counter() - t0
        macs = forward_macs(cfg, len(pending), cached)
        return _Forward(len(context), self.use_cache, _frozen(out[-1]), len(pending), macs,
                        seconds, trace)  # fmt: skip

    def _check_stop(self, token: int, index: int, cut: str | None) -> Stop | None:
        """Why the generation ends with step ``index`` choosing ``token``, if it does."""
        if token in self.stop_tokens:
            return Stop(STOP_END_OF_TEXT, f"the model produced the end-of-text token {token}")
        if cut is not None:
            return Stop(STOP_SEQUENCE, f"the stop sequence {cut!r} was generated", cut)
        if self.max_new_tokens is not None and index + 1 >= self.max_new_tokens:
            return Stop(STOP_MAX_TOKENS, f"{self.max_new_tokens} new tokens generated")
        if len(self.prompt) + index + 1 >= self.window:
            return Stop(STOP_CONTEXT_FULL, self._full_message())
        return None

    def _full_message(self) -> str:
        return f"the context window is full ({self.window} tokens)"

    def _render(self, generated: Sequence[int], final: bool) -> tuple[str, str | None]:
        """The output text of ``generated`` tokens, and the stop sequence that cut it.

        Stop tokens carry no text. Not final: an incomplete trailing UTF-8 character and
        any tail that might be the start of a stop sequence are held back. Final: all of
        it, a half character as U+FFFD.
        """
        pieces = [self.piece(t) for t in generated if t not in self.stop_tokens]
        text = _decode(pieces, final=final)
        start = min(self._stops_from, len(text))  # only newer text can hold a stop sequence
        hit = find_stop(text[start:], self._stop_sequences)
        if hit is not None:
            return text[: start + hit[0]], hit[1]
        if not final:
            text = text[: len(text) - held_back(text, self.stop_sequences)]
        return text, None


def _after(shown: str, text: str) -> str:
    """The part of ``text`` not yet shown (``shown`` is normally a prefix of it)."""
    if text.startswith(shown):
        return text[len(shown) :]
    n = len(os.path.commonprefix([shown, text]))
    return text[n:]


def _decode(pieces: list[bytes], final: bool) -> str:
    """UTF-8 decode; invalid bytes become U+FFFD; an incomplete tail waits unless final."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(b"".join(pieces), final=final)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)
