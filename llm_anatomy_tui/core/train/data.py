"""Training data: read a corpus, tokenize it with the model's vocabulary, cut it into windows.

A corpus is UTF-8 text, plain or gzipped, whose stories are separated by lines holding
only ``<|endoftext|>`` (the TinyStories format; a file without separators is one story).
It becomes one stream of token IDs with ``<|endoftext|>`` between stories and at both
ends, so the model learns where stories start and stop::

    <eot> once upon a time ... the end . <eot> one day ... <eot>

Training draws random windows of T + 1 tokens from the stream: the first T are the input,
the last T the targets (each position predicts the next token). Evaluation cuts the stream
into consecutive windows instead, so every token after the first is scored exactly once.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tokenizers import ENDOFTEXT, MODEL_EOT_ID, model_encoding


class CorpusError(ValueError):
    """A corpus file cannot be used; the message is one line naming the file and the reason."""


@dataclass(frozen=True)
class Corpus:
    """A tokenized corpus: the token stream and where it came from."""

    tokens: np.ndarray  # [n] int32 token IDs
    path: str
    n_stories: int
    n_bytes: int
    sha256: str
    """sha256 of the decoded text (the same for the .gz and the plain file)."""

    def describe(self) -> dict:
        """JSON-ready summary for histories and checkpoints."""
        return {
            "path": self.path,
            "stories": self.n_stories,
            "bytes": self.n_bytes,
            "tokens": int(self.tokens.size),
            "sha256": self.sha256,
        }


def read_text(path: str | Path) -> str:
    """The text of a plain or gzipped UTF-8 file; :class:`CorpusError` for anything else.

    Gzip is recognised by its magic bytes, not by the file name.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    if not path.is_file():
        raise CorpusError(f"corpus path is not a file: {path}")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"corpus {path} is not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    if not text.strip():
        raise CorpusError(f"corpus {path} is empty")
    return text.removeprefix("\ufeff")


def split_stories(text: str) -> list[str]:
    """Stories of a corpus: the pieces between ``<|endoftext|>`` markers, trimmed, non-empty.

    >>> split_stories("A cat.\\n<|endoftext|>\\nA dog.\\n<|endoftext|>\\n")
    ['A cat.', 'A dog.']
    """
    return [s.strip() for s in text.split(ENDOFTEXT) if s.strip()]


def tokenize_stories(stories: list[str]) -> np.ndarray:
    """One int32 stream: ``<eot> story1 <eot> story2 ... <eot>`` in the model vocabulary.

    >>> tokenize_stories(["Once upon a time.", "The end."]).tolist()
    [8192, 2219, 400, 7557, 261, 1058, 13, 8192, 976, 1268, 13, 8192]
    """
    enc = model_encoding()
    pieces: list[list[int]] = []
    for ids in enc.encode_ordinary_batch(stories):
        pieces.append([MODEL_EOT_ID])
        pieces.append(ids)
    pieces.append([MODEL_EOT_ID])
    return np.fromiter((t for piece in pieces for t in piece), dtype=np.int32)


def load_corpus(path: str | Path, min_tokens: int = 2) -> Corpus:
    """Read and tokenize a corpus file; refuse one with fewer than ``min_tokens`` tokens.

    Pass ``min_tokens = window + 1`` to be sure at least one training window fits.
    """
    text = read_text(path)
    stories = split_stories(text)
    if not stories:
        raise CorpusError(f"corpus {path} holds no text between its {ENDOFTEXT} markers")
    tokens = tokenize_stories(stories)
    if tokens.size < min_tokens:
        raise CorpusError(
            f"corpus {path} is too small: {tokens.size} tokens, but one training window "
            f"needs {min_tokens}"
        )
    return Corpus(
        tokens=tokens,
        path=str(path),
        n_stories=len(stories),
        n_bytes=len(text.encode("utf-8")),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def corpus_from_text(text: str, name: str = "<text>") -> Corpus:
    """A corpus from a string already in memory (e.g. text a user typed into the app).

    >>> corpus_from_text("Tom had a red ball.").tokens[[0, -1]].tolist()
    [8192, 8192]
    """
    stories = split_stories(text) or [text]
    data = text.encode("utf-8")
    return Corpus(
        tokens=tokenize_stories(stories),
        path=name,
        n_stories=len(stories),
        n_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def hold_out(corpus: Corpus, fraction: float = 0.05) -> tuple[Corpus, Corpus]:
    """Split off the last ``fraction`` of a corpus (at a story boundary) for validation.

    Used when no validation file is given. Both parts keep the source's description, with
    ``#train`` / ``#heldout`` appended to the path.
    """
    tokens = corpus.tokens
    cut = int(tokens.size * (1.0 - fraction))
    eots = np.flatnonzero(tokens[cut:] == MODEL_EOT_ID)
    cut = cut + int(eots[0]) if eots.size else cut
    parts = []
    for suffix, piece in (("#train", tokens[: cut + 1]), ("#heldout", tokens[cut:])):
        n_stories = max(1, int(np.count_nonzero(piece == MODEL_EOT_ID)) - 1)
        parts.append(Corpus(piece, corpus.path + suffix, n_stories, corpus.n_bytes, corpus.sha256))
    return parts[0], parts[1]


def sample_batch(
    tokens: np.ndarray, rng: np.random.Generator, batch: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random windows of ``length + 1`` tokens -> (inputs, targets), each [B, T].

    Window starts are uniform over every position where a whole window fits.
    """
    starts = rng.integers(0, tokens.size - length, size=batch)  # [B]
    windows = tokens[starts[:, None] + np.arange(length + 1)]  # [B, T + 1]
    return windows[:, :-1], windows[:, 1:]


def eval_windows(tokens: np.ndarray, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive windows covering the whole stream; every token but the first is a target.

    Window i holds tokens ``[i*T, i*T + T]`` (T + 1 of them, sharing one token with the
    next window). The last window may be shorter. Returns (inputs [T_i], targets [T_i]).

    >>> [(x.tolist(), y.tolist()) for x, y in eval_windows(np.arange(6), 2)]
    [([0, 1], [1, 2]), ([2, 3], [3, 4]), ([4], [5])]
    """
    out = []
    for start in range(0, tokens.size - 1, length):
        window = tokens[start : start + length + 1]
        out.append((window[:-1], window[1:]))
    return out


def batch_windows(
    windows: list[tuple[np.ndarray, np.ndarray]], batch: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group windows of equal length into batches [b, T] (b <= batch), keeping their order."""
    out = []
    i = 0
    while i < len(windows):
        n = windows[i][0].size
        j = i
        while j < len(windows) and j - i < batch and windows[j][0].size == n:
            j += 1
        out.append((np.stack([w[0] for w in windows[i:j]]), np.stack([w[1] for w in windows[i:j]])))
        i = j
    return out


def spread_subset(
    windows: list[tuple[np.ndarray, np.ndarray]], count: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` full-length windows spread evenly over the stream (all when count is None).

    A fixed subset, so periodic evaluations are comparable with each other and cheap.
    """
    if count is None or count >= len(windows):
        return windows
    full = [w for w in windows if w[0].size == windows[0][0].size]
    picks = np.linspace(0, len(full) - 1, count).round().astype(int)
    return [full[i] for i in sorted(set(picks.tolist()))]
