"""Sampling: from next-token logits to one chosen token, with every stage on the record.

The pipeline runs in the order ``transformers``' ``generate`` uses::

    logits -> penalties -> temperature -> top-k -> top-p -> min-p -> seeded draw

Each stage is a :class:`Stage` in the returned :class:`SamplingResult`: the logits and the
renormalised distribution after it, which tokens it removed and how much probability they
held, and one line saying what it did. Settings that are "off" still produce a stage (with
``active=False``) so a screen can always show six rows.

Definitions, including the edge cases a slider can reach:

- **temperature** ``T``: logits are divided by T before the softmax. ``T = 0`` means greedy:
  only the most likely token is kept (no division happens). Temperatures between 0 and
  :data:`MIN_TEMPERATURE` are refused; they are greedy in all but name. Large T (e.g. 100)
  flattens the distribution towards uniform.
- **top-k** ``k``: keep exactly the k most likely tokens. ``k = 0`` is off, as is
  ``k >= V``. Ties at the cut are broken by the lower token id, so exactly k survive.
- **top-p** ``p`` (nucleus): sort by probability, keep the smallest prefix whose mass
  reaches p. ``p = 1`` is off; ``p = 0`` keeps only the most likely token (a prefix must
  hold at least one token). Equal probabilities are ordered by lower token id.
- **min-p** ``m``: keep tokens whose probability is at least ``m`` times the top
  token's. ``m = 0`` is off; ``m = 1`` keeps the top token and any exact ties.
- **penalties**, over the ``history`` (all tokens in context: prompt and generated):
  repetition ``r`` (CTRL / ``transformers``): a seen token's positive logit is divided by r,
  a negative one multiplied by r; frequency ``f`` (OpenAI): logit -= f x count;
  presence ``q`` (OpenAI): logit -= q if seen. ``r = 1``, ``f = q = 0`` are off.
- **the draw**: the surviving tokens are ranked most-probable-first (ties: lower id first),
  their probabilities accumulated into a cumulative distribution, and one uniform number
  ``u`` in [0, 1) from the caller's ``numpy.random.Generator`` picks the first token whose
  cumulative probability exceeds u. Greedy decoding makes no draw (``u`` is None) and
  leaves the generator untouched.

All arithmetic after the raw logits is float64, so probabilities sum to 1 to ~1e-15.

>>> import numpy as np
>>> result = sample(np.array([2.0, 1.0, 0.0, -1.0]), SamplingSettings(top_k=2),
...                 np.random.default_rng(0))
>>> result.stage("top_k").note
'kept the 2 most likely of 4 tokens; removed 2 holding 0.1192 of the probability'
>>> result.probs.round(4).tolist(), result.draw.u is not None
([0.7311, 0.2689, 0.0, 0.0], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .ops import softmax

MIN_TEMPERATURE = 1e-6
"""Smallest non-zero temperature accepted; below it sampling is greedy in all but name."""

STAGE_NAMES: tuple[str, ...] = ("logits", "penalties", "temperature", "top_k", "top_p", "min_p")


class SamplingError(ValueError):
    """A sampling setting is out of range, or the logits cannot be sampled. One line."""


def _number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise SamplingError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SamplingError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SamplingSettings:
    """How to choose the next token. The defaults sample from the model's own distribution."""

    temperature: float = 1.0
    """Divide logits by this; 0 = greedy (argmax); 1 = unchanged."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 = off."""
    top_p: float = 1.0
    """Keep the smallest most-likely-first set whose mass reaches p; 1 = off, 0 = top token."""
    min_p: float = 0.0
    """Keep tokens with probability >= min_p x the top probability; 0 = off."""
    repetition_penalty: float = 1.0
    """> 1 discourages tokens already in context (divide positive / multiply negative logits)."""
    frequency_penalty: float = 0.0
    """Subtract this x (times the token occurs in context) from its logit."""
    presence_penalty: float = 0.0
    """Subtract this once from the logit of every token that occurs in context."""

    def __post_init__(self) -> None:
        t = _number("temperature", self.temperature)
        if t < 0 or 0 < t < MIN_TEMPERATURE:
            raise SamplingError(
                f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE:g}, got {t:g}"
            )
        if (
            isinstance(self.top_k, bool)
            or not isinstance(self.top_k, (int, np.integer))
            or self.top_k < 0
        ):
            raise SamplingError(f"top-k must be a whole number >= 0 (0 = off), got {self.top_k!r}")
        if not 0.0 <= _number("top-p", self.top_p) <= 1.0:
            raise SamplingError(f"top-p must be between 0 and 1 (1 = off), got {self.top_p:g}")
        if not 0.0 <= _number("min-p", self.min_p) <= 1.0:
            raise SamplingError(f"min-p must be between 0 and 1 (0 = off), got {self.min_p:g}")
        if not _number("repetition penalty", self.repetition_penalty) > 0:
            raise SamplingError(
                f"repetition penalty must be > 0 (1 = off), got {self.repetition_penalty:g}"
            )
        _number("frequency penalty", self.frequency_penalty)
        _number("presence penalty", self.presence_penalty)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def penalised(self) -> bool:
        return (
            self.repetition_penalty != 1.0
            or self.frequency_penalty != 0.0
            or self.presence_penalty != 0.0
        )

    def describe(self) -> str:
        """One line naming only the settings that are on, e.g. 'temperature 0.8, top-k 40'."""
        first = "greedy (temperature 0)" if self.greedy else f"temperature {self.temperature:g}"
        parts = [first]
        if self.top_k:
            parts.append(f"top-k {self.top_k}")
        if self.top_p < 1:
            parts.append(f"top-p {self.top_p:g}")
        if self.min_p > 0:
            parts.append(f"min-p {self.min_p:g}")
        if self.repetition_penalty != 1:
            parts.append(f"repetition penalty {self.repetition_penalty:g}")
        if self.frequency_penalty:
            parts.append(f"frequency penalty {self.frequency_penalty:g}")
        if self.presence_penalty:
            parts.append(f"presence penalty {self.presence_penalty:g}")
        return ", ".join(parts)


GREEDY = SamplingSettings(temperature=0.0)


# -- results -----------------------------------------------------------------------------

_NO_IDS = np.zeros(0, dtype=np.int64)
_NO_IDS.flags.writeable = False


@dataclass(frozen=True, eq=False)
class Stage:
    """The distribution after one stage of the pipeline, and what the stage did.

    Arrays are read-only and may be shared with neighbouring stages (a filter only changes
    ``keep``), which keeps a result small. ``logits``, ``probs`` and ``removed`` are
    computed on first use.
    """

    name: str
    """One of :data:`STAGE_NAMES`."""
    active: bool
    """False when the setting is off (or had nothing to act on); the stage then equals the
    one before it."""
    note: str
    """One line saying what the stage did, for a screen or a log."""
    base: np.ndarray
    """[V] the logits this stage's distribution is the softmax of, before masking
    (the model's float32 row until penalties or temperature change it, then float64)."""
    keep: np.ndarray
    """[V] bool: the tokens still in the running after this stage."""
    keep_before: np.ndarray
    """[V] bool: the tokens that were in the running before it."""
    removed_mass: float = 0.0
    """Probability the removed tokens held in the previous stage's distribution."""
    adjusted: np.ndarray = field(default_factory=lambda: _NO_IDS)
    """Token ids whose logit the stage changed without removing them (penalties)."""

    @cached_property
    def logits(self) -> np.ndarray:
        """[V] logits after the stage; removed tokens are -inf."""
        if self.keep.all():
            return self.base
        return _readonly(np.where(self.keep, self.base, -np.inf))

    @cached_property
    def probs(self) -> np.ndarray:
        """[V] float64 softmax over the kept tokens; removed tokens exactly 0; sums to 1."""
        return _readonly(_masked_softmax(self.base, self.keep))

    @property
    def n_kept(self) -> int:
        return int(np.count_nonzero(self.keep))

    @property
    def n_removed(self) -> int:
        return int(np.count_nonzero(self.keep_before)) - self.n_kept

    @cached_property
    def removed(self) -> np.ndarray:
        """Token ids this stage removed, most likely (before it) first."""
        ids = np.flatnonzero(self.keep_before & ~self.keep)
        return _readonly(ids[rank_tokens(self.base[ids])])


@dataclass(frozen=True)
class Draw:
    """The random draw against the cumulative distribution of the surviving tokens.

    Candidates are ranked most probable first (ties: lower id first); the chosen token is
    the first whose cumulative probability exceeds ``u``, i.e. ``cdf_low <= u < cdf_high``.
    """

    u: float | None
    """The uniform number in [0, 1); None for greedy decoding (no draw made)."""
    rank: int
    """Position of the chosen token among the candidates (0 = most likely)."""
    token: int
    cdf_low: float
    """Cumulative probability of the candidates ranked before the chosen one."""
    cdf_high: float
    """cdf_low + the chosen token's probability."""
    n_candidates: int


@dataclass(frozen=True, eq=False)
class SamplingResult:
    """Everything :func:`sample` did: six stages, the draw, the chosen token."""

    settings: SamplingSettings
    stages: tuple[Stage, ...]
    draw: Draw

    @property
    def token(self) -> int:
        return self.draw.token

    @property
    def raw(self) -> Stage:
        return self.stages[0]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    @property
    def probs(self) -> np.ndarray:
        """[V] the distribution the draw was made from."""
        return self.final.probs

    @property
    def prob(self) -> float:
        """Probability of the chosen token in the final distribution."""
        return float(self.final.probs[self.token])

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[STAGE_NAMES.index(name)]
        except ValueError:
            raise KeyError(
                f"no sampling stage {name!r}; stages: {', '.join(STAGE_NAMES)}"
            ) from None

    def ranked(self, n: int | None = None, stage: str = "min_p") -> tuple[np.ndarray, np.ndarray]:
        """(ids, probs) of a stage's kept tokens, most likely first — the draw's order."""
        st = self.stage(stage)
        ids = np.flatnonzero(st.keep)
        ids = ids[rank_tokens(st.base[ids])]
        if n is not None:
            ids = ids[:n]
        return ids, st.probs[ids]

    def cumulative(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cdf) of the final candidates in draw order: what ``u`` is compared with."""
        ids = np.flatnonzero(self.final.keep)
        ids = ids[rank_tokens(self.final.base[ids])]
        cdf = np.cumsum(self.final.probs[ids])
        return (ids, cdf) if n is None else (ids[:n], cdf[:n])


# -- the pipeline -------------------------------------------------------------------------


def sample(
    logits: np.ndarray,
    settings: SamplingSettings = SamplingSettings(),  # noqa: B008 (frozen, so safe to share)
    rng: np.random.Generator | None = None,
    history: Sequence[int] | np.ndarray = (),
) -> SamplingResult:
    """Run the whole pipeline on one row of logits [V] and choose a token.

    ``rng`` is required unless ``settings`` is greedy; one ``rng.random()`` is drawn.
    ``history`` holds the token ids already in context, for the penalties.
    """
    raw = np.asarray(logits)
    if raw.ndim != 1 or raw.size == 0:
        raise SamplingError(f"sample() takes one row of logits [V], got shape {raw.shape}")
    if not np.isfinite(raw).all():
        raise SamplingError("the logits contain NaN or infinite values; cannot sample")
    if not settings.greedy and rng is None:
        raise SamplingError("sampling needs a numpy.random.Generator (np.random.default_rng(seed))")
    n_vocab = raw.size
    everything = _readonly(np.ones(n_vocab, dtype=bool))
    # The stages keep a reference to the logits: copy unless the caller's array is frozen.
    base = _readonly(raw.copy() if raw.flags.writeable else raw)
    stages = [
        Stage("logits", True, f"raw logits from the model ({n_vocab:,} tokens)", base, everything,
              everything)
    ]  # fmt: skip
    stages.append(_penalties(stages[-1], settings, history))
    stages.append(_temperature(stages[-1], settings.temperature))
    stages.append(_top_k(stages[-1], settings.top_k))
    stages.append(_top_p(stages[-1], settings.top_p))
    stages.append(_min_p(stages[-1], settings.min_p))
    final = stages[-1]
    u = None if settings.greedy else float(rng.random())
    return SamplingResult(settings, tuple(stages), _draw(final, u))


def _penalties(prev: Stage, s: SamplingSettings, history: Sequence[int] | np.ndarray) -> Stage:
    hist = np.asarray(history, dtype=np.int64).reshape(-1)
    if not s.penalised or hist.size == 0:
        note = "off" if not s.penalised else "no tokens in context yet"
        return Stage("penalties", False, note, prev.base, prev.keep, prev.keep)
    n_vocab = prev.base.size
    if hist.min() < 0 or hist.max() >= n_vocab:
        raise SamplingError(f"history holds a token id outside 0..{n_vocab - 1}")
    counts = np.bincount(hist, minlength=n_vocab)  # [V]
    seen = np.flatnonzero(counts)
    logits = prev.base.astype(np.float64)  # a copy
    z = logits[seen]
    r = s.repetition_penalty
    z = np.where(z > 0, z / r, z * r)
    z = z - s.frequency_penalty * counts[seen] - s.presence_penalty
    logits[seen] = z
    note = f"{seen.size} token{'s' if seen.size != 1 else ''} already in context: " + ", ".join(
        part
        for part in (
            f"repetition x{r:g}" if r != 1 else "",
            f"frequency -{s.frequency_penalty:g} per use" if s.frequency_penalty else "",
            f"presence -{s.presence_penalty:g}" if s.presence_penalty else "",
        )
        if part
    )
    return Stage("penalties", True, note, _readonly(logits), prev.keep, prev.keep,
                 adjusted=_readonly(seen))  # fmt: skip


def _temperature(prev: Stage, t: float) -> Stage:
    if t == 0:
        top = int(np.argmax(np.where(prev.keep, prev.base, -np.inf)))  # ties: the lower id
        keep = np.zeros_like(prev.keep)
        keep[top] = True
        mass = 1.0 - float(prev.probs[top])
        note = f"temperature 0: greedy, only the most likely token (id {top}) is kept"
        return Stage("temperature", True, note, prev.base, _readonly(keep), prev.keep, mass)
    if t == 1:
        return Stage("temperature", False, "off (temperature 1)", prev.base, prev.keep, prev.keep)
    effect = "sharper: likely tokens gain" if t < 1 else "flatter: unlikely tokens gain"
    scaled = _readonly(np.asarray(prev.base, dtype=np.float64) / t)
    return Stage("temperature", True, f"logits divided by {t:g}: {effect}", scaled, prev.keep,
                 prev.keep)  # fmt: skip


def _top_k(prev: Stage, k: int) -> Stage:
    n = prev.n_kept
    if k == 0 or k >= n:
        note = "off (top-k 0)" if k == 0 else f"top-k {k} keeps all {n} remaining tokens"
        return Stage("top_k", False, note, prev.base, prev.keep, prev.keep)
    values = np.where(prev.keep, prev.base, -np.inf)
    cut = np.partition(values, values.size - k)[values.size - k]  # the k-th largest value
    above = np.flatnonzero(values > cut)
    tied = np.flatnonzero(values == cut)  # ascending ids: ties go to the lower id
    keep = np.zeros_like(prev.keep)
    keep[above] = True
    keep[tied[: k - above.size]] = True
    return _filtered("top_k", prev, keep, f"kept the {k} most likely of {n:,} tokens")


def _top_p(prev: Stage, p: float) -> Stage:
    n = prev.n_kept
    if p >= 1.0 or n == 1:
        return Stage("top_p", False, "off (top-p 1)" if p >= 1 else "only one token left",
                     prev.base, prev.keep, prev.keep)  # fmt: skip
    ids = np.flatnonzero(prev.keep)
    ids = ids[rank_tokens(prev.base[ids])]  # most likely first
    mass = np.cumsum(prev.probs[ids])  # [n]
    # the smallest prefix whose mass reaches p; at least one token, at most all of them
    n_keep = min(int(np.searchsorted(mass, p, side="left")) + 1, n)
    keep = np.zeros_like(prev.keep)
    keep[ids[:n_keep]] = True
    return _filtered(
        "top_p", prev, keep,
        f"kept the {n_keep} most likely, holding {mass[n_keep - 1]:.4f} >= {p:g}",
    )  # fmt: skip


def _min_p(prev: Stage, m: float) -> Stage:
    n = prev.n_kept
    if m <= 0.0 or n == 1:
        return Stage("min_p", False, "off (min-p 0)" if m <= 0 else "only one token left",
                     prev.base, prev.keep, prev.keep)  # fmt: skip
    probs = prev.probs
    top = float(probs.max())
    threshold = m * top
    keep = prev.keep & (probs >= threshold)
    return _filtered(
        "min_p", prev, keep,
        f"kept tokens with p >= {m:g} x {top:.4f} = {threshold:.4g}",
    )  # fmt: skip


def _filtered(name: str, prev: Stage, keep: np.ndarray, what: str) -> Stage:
    removed = prev.keep & ~keep
    n_removed = int(np.count_nonzero(removed))
    mass = float(prev.probs[removed].sum())
    if n_removed == 0:
        return Stage(name, False, what + "; removed none", prev.base, prev.keep, prev.keep)
    note = f"{what}; removed {n_removed:,} holding {mass:.4f} of the probability"
    return Stage(name, True, note, prev.base, _readonly(keep), prev.keep, mass)


def _draw(final: Stage, u: float | None) -> Draw:
    ids = np.flatnonzero(final.keep)
    ids = ids[rank_tokens(final.base[ids])]  # most likely first
    cdf = np.cumsum(final.probs[ids])
    # The first candidate whose cumulative probability exceeds u (greedy: the single
    # survivor). The min() guards against a last cdf entry a rounding error below 1.
    rank = 0 if u is None else min(int(np.searchsorted(cdf, u, side="right")), ids.size - 1)
    low = float(cdf[rank - 1]) if rank else 0.0
    return Draw(u, rank, int(ids[rank]), low, float(cdf[rank]), int(ids.size))


# -- helpers ------------------------------------------------------------------------------


def rank_tokens(values: np.ndarray) -> np.ndarray:
    """Indices sorting ``values`` largest first, equal values in ascending index order.

    >>> rank_tokens(np.array([0.1, 0.7, 0.1, 0.9])).tolist()
    [3, 1, 0, 2]
    """
    order = np.argsort(-values, kind="quicksort")  # ~3x faster than a stable sort
    ordered = values[order]
    if np.any(ordered[1:] == ordered[:-1]):  # ties (rare): redo with a stable sort
        order = np.argsort(-values, kind="stable")
    return order


def _masked_softmax(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """:func:`.ops.softmax` in float64 over the kept entries (dropped ones exactly 0)."""
    return softmax(np.where(keep, np.asarray(logits, dtype=np.float64), -np.inf))


def _readonly(a: np.ndarray) -> np.ndarray:
    """Freeze an array this module created, so results can be shared across threads."""
    a.flags.writeable = False
    return a


def softmax64(logits: np.ndarray) -> np.ndarray:
    """float64 softmax of one row of logits: the model's own next-token distribution."""
    return _masked_softmax(logits, np.ones(np.shape(logits), dtype=bool))


# -- stop sequences -----------------------------------------------------------------------


def find_stop(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """Where the earliest stop sequence starts in ``text``: (index, the stop), or None.

    The output is cut exactly there: ``text[:index]``.

    >>> find_stop("Once upon a time. The end. More", ["The end", "."])
    (16, '.')
    """
    best: tuple[int, str] | None = None
    for stop in stops:
        i = text.find(stop)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, stop)
    return best


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could be the start of a stop sequence.

    A streaming printer must not show them yet: the next token may complete the stop, and
    then they are not part of the output.

    >>> held_back("and they lived happily. The e", ["The end"])
    5
    """
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


def check_stops(stops: Sequence[str]) -> tuple[str, ...]:
    """Validate stop sequences: strings, none empty. Returns them as a tuple."""
    out = tuple(stops)
    for stop in out:
        if not isinstance(stop, str) or not stop:
            raise SamplingError(f"stop sequences must be non-empty strings, got {stop!r}")
    return out
