"""Offline tokenizers: real tiktoken encodings built from rank files shipped in ``assets/``.

tiktoken normally downloads its rank files on first use. This module never lets it: the
files live in ``llm_anatomy_tui/assets/tokenizers/`` (gzipped), we check each against the
sha256 that tiktoken itself checks, and hand the parsed ranks to ``tiktoken.Encoding``.

Three encodings are available by name:

- ``o200k_base``  — GPT-4o's tokenizer, 199,998 ordinary tokens.
- ``cl100k_base`` — GPT-4's tokenizer, 100,256 ordinary tokens.
- ``model``       — the vocabulary of our own model, anatomy-mini: the first 8,192 ranks of
  o200k_base plus ``<|endoftext|>``. Ordinary token IDs *are* o200k IDs (ranks 0–255 are
  the 256 single bytes, and every later rank is a merge of two lower ranks, so a truncated
  rank table still encodes any text). ``<|endoftext|>`` gets ID 8192 — the next free row of
  the embedding table — where o200k_base itself puts it at 199999.

>>> enc = load_encoding("o200k_base")
>>> enc.encode("If the human brain")[:3]
[3335, 290, 5396]
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import tiktoken

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"

MODEL_VOCAB_RANKS = 8192
"""How many o200k_base ranks the model vocabulary keeps (IDs 0..8191)."""
MODEL_EOT_ID = MODEL_VOCAB_RANKS
"""ID of ``<|endoftext|>`` in the model vocabulary: the row after the last ordinary token."""
MODEL_VOCAB_SIZE = MODEL_VOCAB_RANKS + 1

# The split patterns are tiktoken's own (tiktoken_ext/openai_public.py, MIT). They are data,
# copied so that building an encoding never calls tiktoken's downloading constructors; the
# tests compare our encodings with tiktoken.get_encoding() token for token.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""


@dataclass(frozen=True)
class RankFile:
    """A shipped rank file and the sha256 of its uncompressed bytes (tiktoken's own hash)."""

    filename: str
    sha256: str


RANK_FILES: dict[str, RankFile] = {
    "o200k_base": RankFile(
        "o200k_base.tiktoken.gz",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": RankFile(
        "cl100k_base.tiktoken.gz",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}

ENCODING_NAMES: tuple[str, ...] = ("o200k_base", "cl100k_base", "model")
ENCODING_LABELS: dict[str, str] = {
    "o200k_base": "o200k_base (GPT-4o)",
    "cl100k_base": "cl100k_base (GPT-4)",
    "model": "anatomy-mini (8k)",
}


class TokenizerAssetError(RuntimeError):
    """A rank file is missing or corrupt. The message names the file and what to do."""


def assets_dir() -> Path:
    """The directory of shipped tokenizer rank files inside the installed package."""
    return Path(str(resources.files("llm_anatomy_tui") / "assets" / "tokenizers"))


def read_rank_file(path: Path, expected_sha256: str) -> dict[bytes, int]:
    """Read a gzipped ``<base64 token> <rank>`` file, verify its hash, return ``{bytes: rank}``.

    Raises :class:`TokenizerAssetError` with a one-line explanation on any problem.
    """
    reinstall = "reinstall llm-anatomy (pip install --force-reinstall .) to restore it"
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise TokenizerAssetError(f"tokenizer file missing: {path} — {reinstall}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TokenizerAssetError(
            f"tokenizer file unreadable: {path} ({exc}) — {reinstall}"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise TokenizerAssetError(
            f"tokenizer file corrupt: {path} (sha256 {digest[:12]}…, expected "
            f"{expected_sha256[:12]}…) — {reinstall}"
        )
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def _ranks(name: str) -> dict[bytes, int]:
    spec = RANK_FILES[name]
    return read_rank_file(assets_dir() / spec.filename, spec.sha256)


def _build(name: str) -> tiktoken.Encoding:
    if name == "o200k_base":
        return tiktoken.Encoding(
            name="o200k_base",
            pat_str=_O200K_PATTERN,
            mergeable_ranks=_ranks("o200k_base"),
            special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
        )
    if name == "cl100k_base":
        return tiktoken.Encoding(
            name="cl100k_base",
            pat_str=_CL100K_PATTERN,
            mergeable_ranks=_ranks("cl100k_base"),
            special_tokens={
                ENDOFTEXT: 100257,
                FIM_PREFIX: 100258,
                FIM_MIDDLE: 100259,
                FIM_SUFFIX: 100260,
                ENDOFPROMPT: 100276,
            },
        )
    if name == "model":
        truncated = {
            tok: rank for tok, rank in _ranks("o200k_base").items() if rank < MODEL_VOCAB_RANKS
        }
        return tiktoken.Encoding(
            name="anatomy-mini",
            pat_str=_O200K_PATTERN,
            mergeable_ranks=truncated,
            special_tokens={ENDOFTEXT: MODEL_EOT_ID},
            explicit_n_vocab=MODEL_VOCAB_SIZE,
        )
    raise ValueError(f"unknown encoding {name!r}; choose one of: {', '.join(ENCODING_NAMES)}")


@functools.cache
def load_encoding(name: str) -> tiktoken.Encoding:
    """Return the named offline encoding (cached). ``name`` is one of :data:`ENCODING_NAMES`."""
    enc = _build(name)
    _BUILT.add(name)
    return enc


_BUILT: set[str] = set()


def release_rank_tables() -> None:
    """Free the Python copies of the big rank tables once the encodings are built.

    tiktoken keeps its own (Rust) copy for encoding and decoding; the ``{bytes: rank}``
    dicts read from the files (~40 MB of small Python objects for o200k_base and
    cl100k_base) were only needed to build it. Afterwards an encoding can no longer be
    pickled, which nothing here does. Building an encoding later reads the file again.
    """
    import gc

    _ranks.cache_clear()
    for name in ("o200k_base", "cl100k_base"):
        if name in _BUILT:
            load_encoding(name)._mergeable_ranks = {}  # type: ignore[attr-defined]
    gc.collect()
    try:  # hand the freed pages back to the system (glibc only)
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def model_encoding() -> tiktoken.Encoding:
    """The model's own vocabulary (8,192 o200k ranks + ``<|endoftext|>`` as 8192)."""
    return load_encoding("model")
