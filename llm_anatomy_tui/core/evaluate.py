"""How far is a model from a reference? KL divergence, top-1 agreement, perplexity.

All metrics work on logits, through a log-softmax computed in float64 (subtract the row
maximum first, so nothing overflows), so two nearly identical models give a KL near zero
rather than rounding noise.

- **KL divergence** ``KL(P_ref ‖ P) = Σ_v P_ref(v) · (log P_ref(v) − log P(v))`` per
  position, in nats: how much probability mass the candidate moved, weighted by where the
  reference puts it. 0 means identical next-token distributions.
- **Top-1 agreement**: the share of positions where both pick the same most likely token.
- **Perplexity** ``exp(mean NLL)`` of the actual next tokens of a held-out text: the
  effective number of choices the model hesitates between; lower is better.

The held-out text is the first 50 stories of the TinyStories validation split, shipped in
``assets/eval/`` (see its README). :func:`eval_tokens` turns it into one token stream,
each story followed by ``<|endoftext|>`` as in training, and :func:`split_windows` cuts
that into non-overlapping windows of the model's context length; within a window every
token but the first is predicted from the ones before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .model import Model, forward
from .ops import log_softmax as ops_log_softmax

EVAL_DIR = "eval"
EVAL_STORIES_FILE = "tinystories_valid_first50.txt"
STORY_SEPARATOR = "<|endoftext|>"


class EvalDataError(RuntimeError):
    """The shipped held-out text is missing or unreadable."""


# -- metrics from logits -----------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log P over the last axis, in float64: ``z - log Σ exp z`` with ``z = x - max x``.

    >>> np.exp(log_softmax(np.array([0.0, np.log(3.0)]))).round(6).tolist()
    [0.25, 0.75]
    """
    return ops_log_softmax(np.asarray(logits, dtype=np.float64))


def kl_divergence(ref_logits: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``KL(P_ref ‖ P)`` in nats for each position ([..., V] -> [...]); never negative.

    >>> round(float(kl_divergence(np.log([0.5, 0.5]), np.log([0.75, 0.25]))), 6)
    0.143841
    """
    return kl_from_log_probs(log_softmax(ref_logits), log_softmax(logits))


def kl_from_log_probs(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """:func:`kl_divergence` from log-probabilities already computed ([..., V] -> [...])."""
    kl = np.sum(np.exp(ref) * (ref - got), axis=-1)
    return np.maximum(kl, 0.0)  # rounding can leave -1e-17 for identical rows


def top1_agreement(ref_logits: np.ndarray, logits: np.ndarray) -> float:
    """Share of positions whose argmax token is the same in both ([..., V] each).

    >>> top1_agreement(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[2.0, 0.0], [3.0, 1.0]]))
    0.5
    """
    ref = np.argmax(ref_logits, axis=-1)
    got = np.argmax(logits, axis=-1)
    return float(np.mean(ref == got))


def token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood (nats) of each target: logits [T, V], targets [T] -> [T].

    >>> token_nll(np.log([[0.5, 0.25, 0.25]]), np.array([1])).round(6).tolist()
    [1.386294]
    """
    return nll_from_log_probs(log_softmax(logits), targets)


def nll_from_log_probs(logp: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:func:`token_nll` from log-probabilities already computed ([T, V], [T] -> [T])."""
    return -np.take_along_axis(logp, np.asarray(targets)[:, None], axis=-1)[:, 0]


def perplexity_from_nll(nll: np.ndarray | float) -> float:
    """``exp(mean NLL)``. A uniform guess over V tokens has perplexity V.

    >>> round(perplexity_from_nll(np.full(4, np.log(8193))))
    8193
    """
    return float(np.exp(np.mean(nll)))


# -- windows over a token stream ---------------------------------------------------------


def split_windows(tokens: Sequence[int] | np.ndarray, context: int) -> list[np.ndarray]:
    """Non-overlapping windows of at most ``context`` tokens; a final 1-token window (which
    predicts nothing) is dropped.

    >>> [w.tolist() for w in split_windows(range(7), 3)]
    [[0, 1, 2], [3, 4, 5]]
    >>> [w.tolist() for w in split_windows(range(8), 3)]
    [[0, 1, 2], [3, 4, 5], [6, 7]]
    """
    if context < 2:
        raise ValueError(f"context must be at least 2 tokens, got {context}")
    ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
    windows = [ids[i : i + context] for i in range(0, ids.size, context)]
    return [w for w in windows if w.size >= 2]


def n_predictions(windows: Sequence[np.ndarray]) -> int:
    """Tokens predicted over these windows: every token except each window's first."""
    return sum(len(w) - 1 for w in windows)


# -- comparing a model with a reference --------------------------------------------------


@dataclass(frozen=True)
class ModelComparison:
    """A candidate model against a reference on the same held-out tokens."""

    n_predictions: int  # positions compared
    kl_mean: float  # mean KL(P_ref ‖ P_candidate), nats
    kl_max: float  # worst position
    top1_agreement: float  # 0..1
    nll_reference: float  # mean NLL of the true next tokens, nats
    nll_candidate: float

    @property
    def perplexity_reference(self) -> float:
        return float(np.exp(self.nll_reference))

    @property
    def perplexity_candidate(self) -> float:
        return float(np.exp(self.nll_candidate))


CHUNK_NUMBERS = 2**19
"""Numbers per float64 temporary while comparing (4 MB)."""


def rows_per_chunk(vocab_size: int) -> int:
    """Rows of logits compared at a time so one float64 temporary stays near 4 MB.

    >>> rows_per_chunk(8193), rows_per_chunk(49152), rows_per_chunk(10**7)
    (63, 10, 1)
    """
    return max(1, CHUNK_NUMBERS // max(1, vocab_size))


class ComparisonAccumulator:
    """Adds up comparisons window by window, so a caller may cache the reference logits."""

    def __init__(self) -> None:
        self.count = 0
        self._kl_sum = self._kl_max = 0.0
        self._agree = 0
        self._nll_ref = self._nll_cand = 0.0

    def add(self, ref_logits: np.ndarray, logits: np.ndarray, targets: np.ndarray) -> None:
        """Logits [T, V] predicting ``targets`` [T] (the tokens that actually came next).

        Rows are compared a few at a time (:func:`rows_per_chunk`), so the float64
        log-probabilities never exist for a whole window at once (a 255-token window of an
        8,193-token vocabulary would be 17 MB per temporary, six of them).
        """
        targets = np.asarray(targets)
        step = rows_per_chunk(ref_logits.shape[-1])
        for start in range(0, len(targets), step):
            rows = slice(start, start + step)
            ref_rows, rows_got = ref_logits[rows], logits[rows]  # [t, V]
            # each log-softmax once, shared by the KL and the NLL
            ref, got = log_softmax(ref_rows), log_softmax(rows_got)  # [t, V] float64
            kl = kl_from_log_probs(ref, got)  # [t]
            self.count += kl.size
            self._kl_sum += float(kl.sum())
            self._kl_max = max(self._kl_max, float(kl.max(initial=0.0)))
            self._agree += int(np.sum(np.argmax(ref_rows, -1) == np.argmax(rows_got, -1)))
            self._nll_ref += float(nll_from_log_probs(ref, targets[rows]).sum())
            self._nll_cand += float(nll_from_log_probs(got, targets[rows]).sum())

    def result(self) -> ModelComparison:
        if not self.count:
            raise ValueError("nothing was compared: the evaluation text has no predictions")
        n = self.count
        return ModelComparison(
            n,
            self._kl_sum / n,
            self._kl_max,
            self._agree / n,
            self._nll_ref / n,
            self._nll_cand / n,
        )


@dataclass(frozen=True, eq=False)
class EvalProgress:
    """One window done. The last event (``done == total``) carries ``result``."""

    done: int
    total: int
    result: ModelComparison | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def iter_compare_models(
    reference: Model,
    candidate: Model,
    tokens: Sequence[int] | np.ndarray,
    context: int | None = None,
) -> Iterator[EvalProgress]:
    """Run both models over the same windows, yielding progress after each window.

    The models must share a vocabulary; ``context`` defaults to the reference's context
    length. Stopping the loop early abandons the work (for a cancelled worker).
    """
    windows = split_windows(tokens, context or reference.config.max_position_embeddings)
    if not windows:
        raise ValueError("nothing to compare: fewer than 2 tokens of evaluation text")
    acc = ComparisonAccumulator()
    for i, w in enumerate(windows):
        ref = forward(reference, w[:-1])  # [T-1, V]: predictions for w[1:]
        got = forward(candidate, w[:-1])
        acc.add(ref, got, w[1:])
        last = i + 1 == len(windows)
        yield EvalProgress(i + 1, len(windows), acc.result() if last else None)


def compare_models(
    reference: Model,
    candidate: Model,
    tokens: Sequence[int] | np.ndarray,
    context: int | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
) -> ModelComparison:
    """:func:`iter_compare_models` run to the end."""
    result = None
    for event in iter_compare_models(reference, candidate, tokens, context):
        if progress is not None:
            progress(event)
        result = event.result
    assert result is not None
    return result


def perplexity(
    model: Model, tokens: Sequence[int] | np.ndarray, context: int | None = None
) -> float:
    """Perplexity of ``model`` on ``tokens``, windowed to its context length."""
    windows = split_windows(tokens, context or model.config.max_position_embeddings)
    if not windows:
        raise ValueError("nothing to score: fewer than 2 tokens of evaluation text")
    nll = np.concatenate([token_nll(forward(model, w[:-1]), w[1:]) for w in windows])
    return perplexity_from_nll(nll)


# -- the shipped held-out text -----------------------------------------------------------


def eval_stories_path() -> Path:
    """Where the held-out stories live inside the installed package."""
    return Path(str(resources.files("llm_anatomy_tui") / "assets" / EVAL_DIR / EVAL_STORIES_FILE))


def load_eval_stories(path: str | Path | None = None) -> list[str]:
    """The held-out stories (first 50 of the TinyStories validation split), in order."""
    if path is None:
        from .integrity import file_problem

        problem = file_problem(f"{EVAL_DIR}/{EVAL_STORIES_FILE}")
        if problem:
            raise EvalDataError(problem)
    path = Path(path) if path is not None else eval_stories_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalDataError(
            f"held-out evaluation text not found: {path} (it ships with the package in "
            f"llm_anatomy_tui/assets/{EVAL_DIR}/; reinstall, or pass another file)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"cannot read held-out evaluation text {path}: {exc}") from None
    stories = [s.strip() for s in text.split(STORY_SEPARATOR) if s.strip()]
    if not stories:
        raise EvalDataError(f"held-out evaluation text {path} holds no stories")
    return stories


def eval_tokens(
    encoding=None, stories: Sequence[str] | None = None, max_tokens: int | None = None
) -> np.ndarray:
    """One token stream: each story's tokens followed by ``<|endoftext|>`` (as in training).

    ``encoding`` defaults to the model vocabulary; ``max_tokens`` cuts the stream short
    (for a quicker evaluation). A model's own tokenizer without an ``<|endoftext|>`` token
    (Llama 3, Llama 2 …) ends each story with its end-of-sequence token instead, and one
    that starts every text with BOS gets it before each story, as the model was trained.
    """
    if encoding is None:
        from .tokenizers import load_encoding

        encoding = load_encoding("model")
    stories = load_eval_stories() if stories is None else stories
    eot = story_separator(encoding)
    prefix = list(encoding.prefix()) if hasattr(encoding, "prefix") else []
    ids: list[int] = []
    for story in stories:
        ids.extend(prefix)
        ids.extend(encoding.encode_ordinary(story))
        if eot is not None:
            ids.append(eot)
        if max_tokens is not None and len(ids) >= max_tokens:
            break
    out = np.asarray(ids, dtype=np.int64)
    return out[:max_tokens] if max_tokens is not None else out


def story_separator(encoding) -> int | None:  # noqa: ANN001
    """The token that ends a story: ``<|endoftext|>`` when the vocabulary has it as one
    token (GPT-style vocabularies, SmolLM), else the tokenizer's end-of-sequence token
    (``eot_token``), else None.

    >>> from .tokenizers import load_encoding
    >>> story_separator(load_encoding("model"))
    8192
    """
    try:
        return int(encoding.encode_single_token(STORY_SEPARATOR))
    except KeyError:
        eot = getattr(encoding, "eot_token", None)
        return int(eot) if eot is not None else None
