"""Chapter 15's workbench: the whole model against FP32 — every result cached, every long
step a generator a worker can abandon. (The view of one matrix is
:mod:`llm_anatomy_tui.views.quant_matrix`.)

:class:`QuantLab` owns an FP32 model and the held-out tokens. Its
:meth:`QuantLab.run` generator does, for one scheme: quantize every matrix (progress per
tensor), generate a continuation of the prompt with FP32 and with the quantized model
under the same seed and sampler, and compare the quantized model with FP32 on the
held-out text window by window (KL, top-1 agreement, perplexity). Results are cached:
quantized models (the last few), comparisons per scheme, generated texts per (scheme,
prompt, sampler, seed), so asking again for a scheme already seen finishes at once. The
FP32 logits of the held-out windows are kept only for a large model (see
:attr:`QuantLab.keep_reference`).

>>> from .config import LlamaConfig
>>> from .model import init_random
>>> cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
...                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
...                   max_position_embeddings=16)
>>> lab = QuantLab(init_random(cfg, seed=0), np.arange(40) % 300)
>>> last = list(lab.run(QuantScheme("int4", "per-block"), [1, 2, 3], n_new=4))[-1]
>>> last.stage, last.comparison.n_predictions, len(last.texts.candidate.tokens)
('done', 37, 4)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .evaluate import ComparisonAccumulator, ModelComparison, split_windows
from .generation import Generation
from .model import Model, forward
from .quant import (
    QuantizedModel,
    QuantScheme,
    as_scheme,
    iter_quantize_model,
)
from .sampling import SamplingSettings

EVAL_TOKENS = 2048
"""Held-out tokens the chapter compares on: 8 windows of 256, 2,040 predictions (the same
default as ``benchmarks/bench_quant.py``, so its table and the screen agree)."""

REFERENCE_BYTES = 128 * 2**20
"""Bound on the FP32 reference logits (held-out tokens × vocabulary, float32): a large
vocabulary compares on fewer tokens so they stay within this (SmolLM2's 49,152 tokens: 682
of the 2,048; anatomy-mini's 8,193: all of them). It bounds the work of a comparison, and
the memory of the reference when a large model keeps it."""

LARGE_MODEL_BYTES = 256 * 2**20
"""A model whose FP32 weights exceed this keeps one quantized copy, not two (each copy is
another full FP32 model in memory: 538 MB for SmolLM2-135M), and keeps its FP32 reference
logits between schemes (its forward pass over the held-out text takes seconds)."""


def reference_budget(vocab_size: int) -> int:
    """Held-out tokens whose FP32 logits fit :data:`REFERENCE_BYTES` (at least 256).

    >>> reference_budget(8193) >= EVAL_TOKENS, reference_budget(49152)
    (True, 682)
    """
    return max(256, REFERENCE_BYTES // (4 * vocab_size))


# -- the whole model -------------------------------------------------------------------------


@dataclass(frozen=True)
class GenText:
    """One continuation of the prompt."""

    tokens: tuple[int, ...]
    text: str
    stop: str | None  # why it ended early, or None


@dataclass(frozen=True)
class SideBySide:
    """FP32's continuation and the quantized model's, drawn with the same seed."""

    reference: GenText
    candidate: GenText
    seed: int
    settings: SamplingSettings
    n_new: int
    common_text: str = ""
    """The text of the tokens both generated before they part (a prefix of both texts)."""

    @property
    def first_difference(self) -> int | None:
        """Index of the first generated token that differs (None: all the same)."""
        a, b = self.reference.tokens, self.candidate.tokens
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return i
        return None if len(a) == len(b) else min(len(a), len(b))


@dataclass(frozen=True)
class LabEvent:
    """One step of :meth:`QuantLab.run`.

    ``stage``: "quantize" (``done``/``total`` tensors), "quantized" (``quantized`` set),
    "generated" (``texts`` set), "compare" (windows: FP32 and the quantized model on each),
    "done" (``comparison`` set). Later events repeat what earlier ones set.
    """

    stage: str
    done: int = 0
    total: int = 0
    quantized: QuantizedModel | None = None
    texts: SideBySide | None = None
    comparison: ModelComparison | None = None


@dataclass
class QuantLab:
    """An FP32 model, held-out tokens, and caches of everything computed for each scheme.

    ``eval_tokens``: the held-out token stream (see :func:`.evaluate.eval_tokens`), or
    None to skip the comparison (e.g. the held-out text is missing); ``encoding`` turns
    generated tokens into text (without it ``text`` is empty).
    Thread-safe for one runner at a time plus readers; a superseded runner that is still
    finishing its current step cannot corrupt the caches (the reference is built under a
    lock, everything else is stored by single assignments of finished values).
    """

    model: Model
    eval_tokens: np.ndarray | None
    encoding: object | None = None
    keep_models: int = 2
    keep_reference: bool | None = None
    """Keep the FP32 logits of the held-out windows between schemes. None: only for a
    large model. anatomy-mini's forward over all 2,048 tokens takes tens of milliseconds,
    cheaper than holding its 67 MB of logits; SmolLM2's takes seconds."""
    windows: list[np.ndarray] = field(init=False)
    _reference: list[np.ndarray] = field(init=False, default_factory=list)
    _ref_lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _quantized: OrderedDict = field(init=False, default_factory=OrderedDict)
    _comparisons: dict = field(init=False, default_factory=dict)
    _texts: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        large = self.model.config.parameter_count() * 4 > LARGE_MODEL_BYTES
        if large:
            self.keep_models = 1
        if self.keep_reference is None:
            self.keep_reference = large
        if self.eval_tokens is None:
            self.windows = []
            return
        budget = reference_budget(self.model.config.vocab_size)
        if len(self.eval_tokens) > budget:
            self.eval_tokens = self.eval_tokens[:budget]
        self.windows = split_windows(self.eval_tokens, self.model.config.max_position_embeddings)
        if not self.windows:
            raise ValueError("nothing to compare: fewer than 2 tokens of evaluation text")

    # -- what is cached -----------------------------------------------------------------------

    @property
    def n_eval_tokens(self) -> int:
        """Held-out tokens compared on (fewer than given for a large vocabulary)."""
        return 0 if self.eval_tokens is None else len(self.eval_tokens)

    @property
    def copy_bytes(self) -> int:
        """Memory one quantized copy takes: the whole model again, as FP32."""
        return self.model.config.parameter_count() * 4

    @property
    def n_predictions(self) -> int:
        return sum(len(w) - 1 for w in self.windows)

    @property
    def can_compare(self) -> bool:
        """False when there is no held-out text to compare on."""
        return bool(self.windows)

    @property
    def reference_kept(self) -> int:
        """Windows whose FP32 logits are held (0 unless :attr:`keep_reference`)."""
        return len(self._reference)

    def comparison(self, scheme: QuantScheme | str) -> ModelComparison | None:
        """The cached comparison of ``scheme`` with FP32, if computed."""
        return self._comparisons.get(as_scheme(scheme).effective())

    def quantized(self, scheme: QuantScheme | str) -> QuantizedModel | None:
        return self._quantized.get(as_scheme(scheme).effective())

    def texts(
        self,
        scheme: QuantScheme | str,
        prompt_ids: Sequence[int],
        settings: SamplingSettings,
        seed: int,
        n_new: int,
    ) -> SideBySide | None:
        """The cached side-by-side continuations, if generated."""
        e = as_scheme(scheme).effective()
        ref = self._texts.get(self._text_key(_FP32, prompt_ids, settings, seed, n_new))
        got = self._texts.get(self._text_key(e, prompt_ids, settings, seed, n_new))
        if ref is None or got is None:
            return None
        return SideBySide(ref, got, seed, settings, n_new, self._common_text(ref, got))

    def _common_text(self, a: GenText, b: GenText) -> str:
        """Decoded shared token prefix, if it is a prefix of both texts (else "")."""
        if self.encoding is None:
            return ""
        n = 0
        for x, y in zip(a.tokens, b.tokens, strict=False):
            if x != y:
                break
            n += 1
        text = self.encoding.decode(list(a.tokens[:n]), errors="replace")
        while text and not (a.text.startswith(text) and b.text.startswith(text)):
            text = text[:-1]  # a stop token or half a character: keep what both show
        return text

    # -- the pipeline ---------------------------------------------------------------------------

    def run(
        self,
        scheme: QuantScheme | str,
        prompt_ids: Sequence[int] | None,
        settings: SamplingSettings | None = None,
        seed: int = 0,
        n_new: int = 32,
    ) -> Iterator[LabEvent]:
        """Quantize, generate side by side (if ``prompt_ids``), compare on held-out text.

        Each stage is skipped when its result is cached. Stop iterating to abandon the run.
        """
        e = as_scheme(scheme).effective()
        settings = settings or SamplingSettings()
        qm = self._quantized.get(e)
        if qm is None:
            if self.keep_models <= 1:
                self._quantized.clear()  # drop the old copy first: never two at once
            for p in iter_quantize_model(self.model, e):
                if p.result is None:
                    yield LabEvent("quantize", p.done, p.total)
                else:
                    qm = p.result
            self._remember(e, qm)
        else:
            self._quantized.move_to_end(e)
        yield LabEvent("quantized", quantized=qm)
        texts = None
        if prompt_ids is not None:
            texts = self.texts(e, prompt_ids, settings, seed, n_new)
            if texts is None:
                ref = self._generate(self.model, _FP32, prompt_ids, settings, seed, n_new)
                got = (
                    ref
                    if e == _FP32
                    else self._generate(qm.model, e, prompt_ids, settings, seed, n_new)
                )
                texts = SideBySide(ref, got, seed, settings, n_new, self._common_text(ref, got))
            yield LabEvent("generated", quantized=qm, texts=texts)
        cmp = self._comparisons.get(e)
        if cmp is None and self.windows:
            total = len(self.windows)
            acc = ComparisonAccumulator()
            for i, w in enumerate(self.windows):
                acc.add(self._reference_logits(i), forward(qm.model, w[:-1]), w[1:])
                if i + 1 < total:
                    yield LabEvent("compare", i + 1, total, qm, texts)
            cmp = acc.result()
            self._comparisons[e] = cmp
        yield LabEvent("done", len(self.windows), len(self.windows), qm, texts, cmp)

    def _reference_logits(self, i: int) -> np.ndarray:
        """FP32 logits of window ``i`` [T-1, V]: computed now, or once and kept (windows
        are kept in order, so an abandoned run leaves a prefix for the next)."""
        if not self.keep_reference:
            return forward(self.model, self.windows[i][:-1])
        with self._ref_lock:
            while len(self._reference) <= i:
                w = self.windows[len(self._reference)]
                self._reference.append(forward(self.model, w[:-1]))  # [T-1, V]
            return self._reference[i]

    def _remember(self, scheme: QuantScheme, qm: QuantizedModel) -> None:
        self._quantized[scheme] = qm
        self._quantized.move_to_end(scheme)
        while len(self._quantized) > max(1, self.keep_models):
            self._quantized.popitem(last=False)

    @staticmethod
    def _text_key(
        scheme: QuantScheme,
        prompt_ids: Sequence[int],
        settings: SamplingSettings,
        seed: int,
        n_new: int,
    ) -> tuple:
        return (scheme, tuple(int(t) for t in prompt_ids), settings, int(seed), int(n_new))

    def _generate(
        self,
        model: Model,
        scheme: QuantScheme,
        prompt_ids: Sequence[int],
        settings: SamplingSettings,
        seed: int,
        n_new: int,
    ) -> GenText:
        key = self._text_key(scheme, prompt_ids, settings, seed, n_new)
        cached = self._texts.get(key)
        if cached is not None:
            return cached
        gen = Generation(model, list(prompt_ids), settings=settings, seed=seed,
                         encoding=self.encoding)  # fmt: skip
        if not gen.done:
            gen.generate(n_new)
        stop = gen.stop.message if gen.stop is not None else None
        text = gen.text if self.encoding is not None else ""
        result = GenText(gen.generated, text, stop)
        self._texts[key] = result
        return result


_FP32 = QuantScheme("fp32").effective()


__all__ = ["EVAL_TOKENS", "GenText", "LabEvent", "QuantLab", "SideBySide"]
