"""What chapter 2 (embeddings) shows, as plain data: looked-up words, neighbour rows, the
two-context comparison, token sets for the projection, a text scatter plot, and the scale
table of real models. No Textual, no Rich.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.embeddings import Neighbours, Projection
from .token_pieces import piece_display

# -- token labels -------------------------------------------------------------------------


def token_label(encoding, token: int) -> str:  # noqa: ANN001  (a tiktoken.Encoding)
    """A token as one terminal-safe line (``·`` for a space, ``‹E4›`` for a byte piece);
    a token with no visible text says so."""
    try:
        raw = encoding.decode_single_token_bytes(token)
    except KeyError:
        return f"#{token}"
    shown = piece_display(raw)
    return shown if shown.strip() else f"#{token} (blank)"


# -- a typed word -------------------------------------------------------------------------


@dataclass(frozen=True)
class WordLookup:
    """A word the person typed, as the model's tokens."""

    text: str
    ids: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def token(self) -> int:
        """The token looked up: the only one, or the first of several."""
        return self.ids[0]

    @property
    def message(self) -> str:
        """One line saying what is looked up, and which tokens a longer word became."""
        first = f"“{self.labels[0]}” (ID {self.ids[0]})"
        if len(self.ids) == 1:
            return f"{first} is one token."
        parts = " + ".join(f"“{lab}”" for lab in self.labels)
        return f"“{self.text}” is {len(self.ids)} tokens here: {parts}. Showing the first, {first}."


def lookup_word(encoding, text: str) -> WordLookup:  # noqa: ANN001
    """Tokenize a typed word. ValueError (a readable message) when it is empty."""
    if not text:
        raise ValueError("Type a word to look up (a leading space matters: “ bank” ≠ “bank”).")
    ids = tuple(encoding.encode_ordinary(text))
    if not ids:
        raise ValueError("That text has no tokens.")
    return WordLookup(text, ids, tuple(token_label(encoding, t) for t in ids))


# -- neighbours ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NeighbourRow:
    rank: int
    token: int
    label: str
    similarity: float

    @property
    def shown(self) -> str:
        return f"{self.similarity:+.3f}"


def neighbour_rows(nb: Neighbours, encoding) -> list[NeighbourRow]:  # noqa: ANN001
    return [
        NeighbourRow(i + 1, int(t), token_label(encoding, int(t)), float(s))
        for i, (t, s) in enumerate(zip(nb.ids, nb.similarities, strict=True))
    ]


# -- the same token in two contexts -------------------------------------------------------


@dataclass(frozen=True)
class TwoContexts:
    """One token in two sentences: the same row at the start, different vectors after
    the blocks."""

    token: int
    label: str
    position_a: int
    position_b: int
    start_diff: float  # max |e_a - e_b| of the two looked-up rows (0: the same row)
    end_cosine: float  # cosine of the two final-layer residuals at those positions


def find_shared(ids_a: Sequence[int], ids_b: Sequence[int]) -> list[int]:
    """Tokens that occur in both sequences, in the order of their first use in ``ids_a``.

    >>> find_shared([5, 6, 7, 6], [7, 6, 1])
    [6, 7]
    """
    in_b = set(ids_b)
    out: list[int] = []
    for t in ids_a:
        if t in in_b and t not in out:
            out.append(t)
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / den if den > 0 else 0.0


# -- token sets for the projection --------------------------------------------------------

PRESETS: dict[str, tuple[str, ...]] = {
    "numbers": (" one", " two", " three", " four", " five", " six", " seven", " ten",
                " first", " second", " third"),
    "names": (" John", " Mark", " Dan", " Tom", " Lily", " Ben", " Mary", " Sam", " Anna"),
    "colours": (" red", " black", " white", " blue", " green", " yellow", " pink",
                " brown"),
    "verbs": (" run", " play", " see", " went", " said", " found", " made", " go",
              " come", " take", " give", " think"),
    "places": (" house", " home", " school", " city", " world", " room", " tree",
               " water", " park", " garden"),
}  # fmt: skip
"""Preset token sets (words with their leading space, as they appear inside sentences)."""

TOKEN_SETS = ("prompt", *PRESETS)


@dataclass(frozen=True)
class TokenSet:
    name: str
    ids: tuple[int, ...]
    labels: tuple[str, ...]
    skipped: tuple[str, ...]  # preset words that are not one token in this vocabulary


def token_set(name: str, encoding, prompt_ids: Sequence[int]) -> TokenSet:  # noqa: ANN001
    """The distinct tokens of the prompt, or a preset's words that are single tokens."""
    if name == "prompt":
        ids: list[int] = []
        for t in prompt_ids:
            if t not in ids:
                ids.append(int(t))
        return TokenSet(name, tuple(ids), tuple(token_label(encoding, t) for t in ids), ())
    if name not in PRESETS:
        raise ValueError(f"no token set {name!r}")
    ids, skipped = [], []
    for word in PRESETS[name]:
        enc = encoding.encode_ordinary(word)
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(enc[0])
        else:
            skipped.append(word)
    return TokenSet(name, tuple(ids), tuple(token_label(encoding, t) for t in ids), tuple(skipped))


# -- a scatter plot as text ---------------------------------------------------------------


def scatter_lines(coords: np.ndarray, labels: Sequence[str], width: int, height: int) -> list[str]:
    """The points as labelled ``•`` marks on a ``width`` × ``height`` character grid.

    The first axis runs left to right, the second bottom to top; each label is written
    after its mark, or before it at the right edge (never over another mark).

    >>> scatter_lines(np.array([[0.0, 0.0], [1.0, 1.0]]), ["a", "b"], 6, 3)
    ['    b•', '      ', '•a    ']
    """
    width, height = max(4, width), max(3, height)
    grid = [[" "] * width for _ in range(height)]
    if len(coords) == 0:
        return ["".join(r) for r in grid]
    x, y = coords[:, 0], coords[:, 1]

    def scale(v: np.ndarray, n: int) -> np.ndarray:
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-12:
            return np.full(v.shape, n // 2)
        return np.rint((v - lo) / (hi - lo) * (n - 1)).astype(int)

    cols = scale(x, width)
    rows = (height - 1) - scale(y, height)
    marks = set(zip(rows.tolist(), cols.tolist(), strict=False))
    for r, c in marks:
        grid[r][c] = "•"
    for (r, c), label in sorted(
        zip(zip(rows.tolist(), cols.tolist(), strict=False), labels, strict=False)
    ):
        start = c + 1 if c + 1 + len(label) <= width else max(0, c - len(label))
        for i, ch in enumerate(label):
            cc = start + i
            if cc >= width or (r, cc) in marks:
                break
            grid[r][cc] = ch
    return ["".join(row) for row in grid]


def variance_note(p: Projection) -> str:
    """How much of the spread the two axes keep.

    >>> import numpy as np
    >>> variance_note(Projection(np.zeros((3, 2)), np.array([0.75, 0.25]), np.zeros((2, 4)), np.zeros(4)))
    'axis 1 explains 75.0% of the variance, axis 2 25.0%: together 100.0% (3 points lie in one plane, so two axes hold all of it)'
    """
    a, b = (float(v) * 100 for v in p.explained)
    head = f"axis 1 explains {a:.1f}% of the variance, axis 2 {b:.1f}%: together {a + b:.1f}%"
    n = len(p.coords)
    if n <= 3:
        return f"{head} ({n} points lie in one plane, so two axes hold all of it)"
    return f"{head} (the rest lies in directions this flat picture cannot show)"


# -- the scale table ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleRow:
    model: str
    d_model: int
    vocab: int

    @property
    def embedding_params(self) -> int:
        return self.d_model * self.vocab


# Published configurations (hidden size / d_model, vocabulary size):
# - GPT-2 small: n_embd 768, vocab_size 50257 — huggingface.co/openai-community/gpt2 config.json
# - GPT-3 175B: d_model 12288, 50257 BPE tokens — Brown et al. 2020, "Language Models are
#   Few-Shot Learners", Table 2.1 (vocabulary: the GPT-2 tokenizer, section 2.1)
# - SmolLM2-135M: hidden_size 576, vocab_size 49152 — huggingface.co/HuggingFaceTB/SmolLM2-135M
# - Qwen2.5-0.5B: hidden_size 896, vocab_size 151936 — huggingface.co/Qwen/Qwen2.5-0.5B
# - Llama 2 7B: hidden_size 4096, vocab_size 32000 — huggingface.co/meta-llama/Llama-2-7b-hf
# - Mistral 7B: hidden_size 4096, vocab_size 32000 — huggingface.co/mistralai/Mistral-7B-v0.1
# - Llama 3 8B: hidden_size 4096, vocab_size 128256 — huggingface.co/meta-llama/Meta-Llama-3-8B
# - Llama 3 70B: hidden_size 8192, vocab_size 128256 — huggingface.co/meta-llama/Meta-Llama-3-70B
# - Llama 3.1 405B: hidden_size 16384, vocab_size 128256 — huggingface.co/meta-llama/Llama-3.1-405B
SCALE_TABLE: tuple[ScaleRow, ...] = (
    ScaleRow("GPT-2 small", 768, 50_257),
    ScaleRow("SmolLM2-135M", 576, 49_152),
    ScaleRow("Qwen2.5-0.5B", 896, 151_936),
    ScaleRow("Llama 2 7B", 4_096, 32_000),
    ScaleRow("Mistral 7B", 4_096, 32_000),
    ScaleRow("Llama 3 8B", 4_096, 128_256),
    ScaleRow("Llama 3 70B", 8_192, 128_256),
    ScaleRow("GPT-3 175B", 12_288, 50_257),
    ScaleRow("Llama 3.1 405B", 16_384, 128_256),
)


def human_count(n: int) -> str:
    """``1.05M``, ``525M``, ``2.1B`` — three significant figures.

    >>> human_count(1_048_704), human_count(525_336_576), human_count(8_193)
    ('1.05M', '525M', '8,193')
    """
    if n < 100_000:
        return f"{n:,}"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            v = n / div
            digits = 3 - (int(math.log10(v)) + 1)
            return f"{v:.{max(0, digits)}f}{unit}"
    return f"{n:,}"


def scale_lines(name: str, d_model: int, vocab: int) -> list[str]:
    """The scale table with the loaded model first, as aligned text lines."""
    rows = [ScaleRow(f"{name} (loaded)", d_model, vocab), *SCALE_TABLE]
    w = max(len(r.model) for r in rows)
    out = [f"{'model':<{w}}  {'d_model':>7}  {'vocab':>8}  {'embedding params':>16}"]
    for r in rows:
        out.append(
            f"{r.model:<{w}}  {r.d_model:>7,}  {r.vocab:>8,}  {human_count(r.embedding_params):>16}"
        )
    return out


# -- computations a screen asks for (pure; run by the compute path) -----------------------


DEFAULT_SENTENCES = (
    "The boat drifted to the bank of the river.",
    "She took her coins to the bank in town.",
)
DEFAULT_SHARED = " bank"


@dataclass(frozen=True)
class TwoContextView:
    ids_a: tuple[int, ...]
    ids_b: tuple[int, ...]
    shared: tuple[int, ...]  # tokens in both sentences
    result: TwoContexts | None  # None when the sentences share no token


def compare_contexts(
    model,
    encoding,
    sentence_a: str,
    sentence_b: str,
    pick: int,  # noqa: ANN001
) -> TwoContextView:
    """Run both sentences; for the ``pick``-th shared token (mod the count), compare its
    starting vectors (the same embedding row) and its vectors after the last block."""
    from ..core.model import Trace, forward

    window = model.config.max_position_embeddings
    ids_a = tuple(encoding.encode_ordinary(sentence_a))[:window]
    ids_b = tuple(encoding.encode_ordinary(sentence_b))[:window]
    if not ids_a or not ids_b:
        raise ValueError("Both sentences need some text (press a or b to type one).")
    shared = tuple(find_shared(ids_a, ids_b))
    if not shared:
        return TwoContextView(ids_a, ids_b, shared, None)
    token = shared[pick % len(shared)]
    pa, pb = ids_a.index(token), ids_b.index(token)
    ta, tb = Trace(), Trace()
    forward(model, ids_a, trace=ta)
    forward(model, ids_b, trace=tb)
    start = float(np.max(np.abs(ta.embeddings[pa] - tb.embeddings[pb])))
    end = cosine(ta.layers[-1]["resid_ffn"][pa], tb.layers[-1]["resid_ffn"][pb])
    res = TwoContexts(token, token_label(encoding, token), pa, pb, start, end)
    return TwoContextView(ids_a, ids_b, shared, res)


def default_pick(encoding, shared: Sequence[int]) -> int:  # noqa: ANN001
    """Index of " bank" among the shared tokens when it is one of them, else 0."""
    ids = encoding.encode_ordinary(DEFAULT_SHARED)
    if len(ids) == 1 and ids[0] in shared:
        return list(shared).index(ids[0])
    return 0


def neighbours_of(embed: np.ndarray, token: int, k: int, task=None) -> Neighbours:  # noqa: ANN001
    """:func:`cosine_neighbours` wired to a compute task's progress and cancel flag."""
    from ..core.embeddings import cosine_neighbours

    if task is None:
        return cosine_neighbours(embed, token, k)
    return cosine_neighbours(
        embed, token, k, progress=task.report, cancelled=lambda: task.cancelled
    )


def project_set(embed: np.ndarray, ts: TokenSet) -> Projection:
    """PCA of a token set's embedding rows (ValueError with a message when < 2 tokens)."""
    from ..core.embeddings import pca_2d

    if len(ts.ids) < 2:
        raise ValueError(
            f"The {ts.name} set has {len(ts.ids)} distinct token(s) here; a projection "
            "needs at least two."
        )
    return pca_2d(embed[list(ts.ids)])
