"""A loaded model's own tokenizer, behind the small interface the app uses.

The chapters and the generation code talk to "the model's encoding" through the handful
of methods ``tiktoken.Encoding`` has — ``encode_ordinary``, ``encode``, ``decode``,
``decode_single_token_bytes``, ``encode_single_token``, ``n_vocab``, ``eot_token`` —
so the built-in anatomy-mini vocabulary (a tiktoken encoding) and a model's own
tokenizer are interchangeable. :class:`ModelTokenizer` gives that interface to a
Hugging Face ``tokenizers.Tokenizer``:

- a model directory's ``tokenizer.json``, read by the ``tokenizers`` library itself;
- a GGUF's embedded vocabulary and merges (``tokenizer.ggml.*``), rebuilt as a
  ``tokenizers`` byte-level BPE with the pre-tokenizer llama.cpp uses for the file's
  ``tokenizer.ggml.pre`` (see :func:`from_gguf_vocab`).

It also keeps what the model's config says about special tokens: the BOS token and
whether a prompt starts with it, the end-of-sequence token, and the chat template text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .config import LlamaConfig
from .weights import ModelLoadError

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet reversed: printable stand-in character -> byte."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


class ModelTokenizer:
    """A ``tokenizers.Tokenizer`` with tiktoken's method names and the model's specials.

    ``byte_level``: tokens are GPT-2 byte-level strings (else SentencePiece-style, with
    ``▁`` for spaces and ``<0xAB>`` byte tokens).
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        name: str,
        description: str,
        byte_level: bool,
        bos_token: int | None = None,
        eos_token: int | None = None,
        add_bos: bool = False,
        chat_template: str | None = None,
    ) -> None:
        self._tok = tokenizer
        self.name = name
        self.description = description
        self.byte_level = byte_level
        self.bos_token = bos_token
        self.add_bos = add_bos and bos_token is not None
        self.chat_template = chat_template
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self.n_vocab = max(vocab.values()) + 1 if vocab else 0
        self._pieces: list[str | None] = [None] * self.n_vocab
        for piece, i in vocab.items():
            self._pieces[i] = piece
        added = tokenizer.get_added_tokens_decoder()
        self.special_tokens: dict[str, int] = {t.content: i for i, t in added.items() if t.special}
        self._added = {i for i in added}
        self.eot_token = eos_token if eos_token is not None else bos_token

    def __repr__(self) -> str:
        return f"ModelTokenizer({self.name!r}, n_vocab={self.n_vocab})"

    # -- text -> ids --------------------------------------------------------------------
    def encode_ordinary(self, text: str) -> list[int]:
        """The ids of ``text`` with no BOS/EOS added (special-token text in ``text`` is
        still matched, as ``tokenizers`` always does)."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode(
        self, text: str, *, allowed_special: Any = (), disallowed_special: Any = ()
    ) -> list[int]:
        """:meth:`encode_ordinary` (tiktoken's keyword arguments accepted and ignored)."""
        return self.encode_ordinary(text)

    def encode_ordinary_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode_single_token(self, text: str) -> int:
        """The id of one whole token's text, or KeyError (as tiktoken does)."""
        i = self._tok.token_to_id(text)
        if i is None:
            raise KeyError(text)
        return i

    def pre_tokenize(self, text: str) -> list[str]:
        """The pieces the pre-tokenizer cuts ``text`` into before any BPE merge, in the
        vocabulary's own spelling (byte-level ``Ġ`` or ``▁`` for a space)."""
        normalized = self._tok.normalizer.normalize_str(text) if self._tok.normalizer else text
        if self._tok.pre_tokenizer is None:
            return [normalized] if normalized else []
        return [piece for piece, _ in self._tok.pre_tokenizer.pre_tokenize_str(normalized)]

    def prefix(self) -> list[int]:
        """The tokens a prompt starts with: ``[bos]`` if the model adds BOS, else []."""
        return [self.bos_token] if self.add_bos and self.bos_token is not None else []

    # -- ids -> text --------------------------------------------------------------------
    def decode_single_token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (a special token: its text)."""
        if not 0 <= token < self.n_vocab or self._pieces[token] is None:
            raise KeyError(token)
        return self._token_bytes(token)

    @functools.lru_cache(maxsize=1 << 17)  # noqa: B019  (one tokenizer per loaded model)
    def _token_bytes(self, token: int) -> bytes:
        piece = self._pieces[token]
        assert piece is not None
        if token in self._added:
            return piece.encode("utf-8")
        if self.byte_level:
            table = _byte_decoder()
            try:
                return bytes(table[c] for c in piece)
            except KeyError:
                return piece.encode("utf-8")
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            return bytes([int(piece[3:5], 16)])
        return piece.replace("▁", " ").encode("utf-8")

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return b"".join(self.decode_single_token_bytes(int(t)) for t in tokens)

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        return self.decode_bytes(tokens).decode("utf-8", errors=errors)

    def token_text(self, token: int) -> str:
        """The token's vocabulary entry as stored (byte-level or ``▁`` form)."""
        return self._pieces[token] or ""


# -- a directory's tokenizer.json --------------------------------------------------------------


def load_directory_tokenizer(path: Path, config: LlamaConfig) -> ModelTokenizer | None:
    """``tokenizer.json`` (+ ``tokenizer_config.json``) of a model directory, or None when
    the directory has none. A tokenizer whose vocabulary does not fit the model's is an
    error naming both sizes."""
    file = path / TOKENIZER_FILE
    if not file.exists():
        return None
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises its own Exception subclass
        raise ModelLoadError(f"cannot read {file}: {exc}") from None
    extra: dict[str, Any] = {}
    cfg_file = path / TOKENIZER_CONFIG_FILE
    if cfg_file.exists():
        try:
            extra = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {cfg_file}: {exc}") from None
        if not isinstance(extra, dict):
            extra = {}
    raw = json.loads(file.read_text(encoding="utf-8"))
    byte_level = _is_byte_level(raw)
    # BOS: what the tokenizer's own post-processor puts before a text
    prefix = tok.encode("", add_special_tokens=True).ids
    bos = config.bos_token_id
    if bos is None:
        bos = _token_id(tok, extra.get("bos_token"))
    add_bos = bool(prefix) and prefix[0] == bos
    if extra.get("add_bos_token") is not None and bos is not None:
        add_bos = bool(extra["add_bos_token"])
    eos = config.eos_token_id
    if eos is None:
        eos = _token_id(tok, extra.get("eos_token"))
    template = extra.get("chat_template")
    if isinstance(template, list):  # several named templates: keep the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    mt = ModelTokenizer(
        tok,
        name=path.name,
        description=f"tokenizer.json ({raw.get('model', {}).get('type', '?')}, "
        f"{tok.get_vocab_size(with_added_tokens=True):,} tokens)",
        byte_level=byte_level,
        bos_token=bos,
        eos_token=eos,
        add_bos=add_bos,
        chat_template=template if isinstance(template, str) else None,
    )
    check_vocab(mt, config, str(file))
    return mt


def check_vocab(tok: ModelTokenizer, config: LlamaConfig, where: str) -> None:
    """A tokenizer fits a model when every id it makes is a row of the embedding table,
    and it covers nearly all of them (checkpoints pad the table by a few rows at most)."""
    n = tok.n_vocab
    if n > config.vocab_size or n < 0.9 * config.vocab_size:
        raise ModelLoadError(
            f"{where} does not match the model: it has {n:,} tokens, the model's "
            f"vocabulary has {config.vocab_size:,}"
        )


def _is_byte_level(raw: dict) -> bool:
    def kinds(node: Any) -> Iterable[str]:
        if isinstance(node, dict):
            if "type" in node:
                yield node["type"]
            for v in node.values():
                yield from kinds(v)
        elif isinstance(node, list):
            for v in node:
                yield from kinds(v)

    return "ByteLevel" in set(kinds(raw.get("decoder"))) | set(kinds(raw.get("pre_tokenizer")))


def _token_id(tok: Any, spec: Any) -> int | None:
    if isinstance(spec, dict):
        spec = spec.get("content")
    if isinstance(spec, str):
        return tok.token_to_id(spec)
    return None


# -- a GGUF's embedded vocabulary -----------------------------------------------------------

# llama.cpp's pre-tokenizer regexes for tokenizer.ggml.pre (llama-vocab.cpp), in the
# spelling of the models' own tokenizer.json where llama.cpp had to adapt them.
_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"""
GGUF_PRE_TOKENIZERS: dict[str, tuple[str, ...]] = {
    "gpt2": (_GPT2,),
    "smollm": (r"\p{N}", _GPT2),
    "starcoder": (r"\p{N}", _GPT2),
    "llama-bpe": (
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    ),
    "qwen2": (
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    ),
}
GGUF_PRE_TOKENIZERS["llama3"] = GGUF_PRE_TOKENIZERS["llama-bpe"]
# a file without tokenizer.ggml.pre gets llama.cpp's default sequence
GGUF_PRE_TOKENIZERS["default"] = (
    r"[\p{P}\$\+<=>\^~\|]+",
    _GPT2,
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
)

_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED = 1, 2, 3, 4  # llama.cpp token types


def from_gguf_vocab(
    *,
    name: str,
    model: str,
    pre: str,
    tokens: Sequence[str],
    merges: Sequence[str],
    token_types: Sequence[int] | None,
    bos: int | None,
    eos: int | None,
    add_bos: bool,
    chat_template: str | None,
) -> ModelTokenizer:
    """Rebuild a GGUF's byte-level BPE tokenizer (``tokenizer.ggml.model == "gpt2"``).

    Vocabulary and merges are the file's; the pre-tokenizer is the regex sequence
    llama.cpp applies for ``pre``, each pattern splitting off its matches in turn, then
    the byte-level mapping. Control and user-defined tokens become added tokens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if model != "gpt2":
        raise ModelLoadError(
            f"unsupported tokenizer.ggml.model {model!r}: only byte-level BPE ('gpt2') "
            "vocabularies are rebuilt from a GGUF"
        )
    patterns = GGUF_PRE_TOKENIZERS.get(pre or "default")
    if patterns is None:
        raise ModelLoadError(
            f"unsupported tokenizer.ggml.pre {pre!r} (known: "
            f"{', '.join(sorted(GGUF_PRE_TOKENIZERS))})"
        )
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ModelLoadError("tokenizer.ggml.tokens repeats a token")
    pairs = []
    for m in merges:
        a, sep, b = m.partition(" ")
        if not sep:
            raise ModelLoadError(f"tokenizer.ggml.merges has a malformed entry {m!r}")
        pairs.append((a, b))
    bpe = models.BPE(vocab=vocab, merges=pairs, ignore_merges=pre in ("llama-bpe", "llama3"))
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in patterns]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    if token_types is not None:
        special = [
            AddedToken(tokens[i], special=True, normalized=False)
            for i, kind in enumerate(token_types)
            if kind in (_CONTROL, _USER_DEFINED)
        ]
        tok.add_special_tokens(special)
    return ModelTokenizer(
        tok,
        name=name,
        description=f"GGUF vocabulary (byte-level BPE, pre-tokenizer {pre!r}, "
        f"{len(tokens):,} tokens)",
        byte_level=True,
        bos_token=bos,
        eos_token=eos,
        add_bos=add_bos,
        chat_template=chat_template,
    )


def from_gguf_sentencepiece(
    *,
    name: str,
    tokens: Sequence[str],
    scores: Sequence[float] | None,
    token_types: Sequence[int] | None,
    bos: int | None,
    eos: int | None,
    add_bos: bool,
    add_space_prefix: bool,
    chat_template: str | None,
) -> ModelTokenizer:
    """Rebuild a GGUF SentencePiece vocabulary (``tokenizer.ggml.model == "llama"``,
    Llama 2's) the way transformers' converter builds ``LlamaTokenizerFast``.

    SentencePiece's BPE merges the adjacent pair whose joined piece has the highest
    score. As a ``tokenizers`` BPE that is a merge list: every split of every normal
    piece into two vocabulary pieces, ordered by the joined piece's score (highest
    first, then by the two ids). Spaces become ``▁`` (and one is put in front of the
    text when ``add_space_prefix``); characters without a piece fall back to their UTF-8
    bytes (the ``<0xAB>`` tokens). Control and user-defined tokens are added tokens.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    if scores is None or len(scores) != len(tokens):
        raise ModelLoadError("the GGUF's SentencePiece vocabulary has no tokenizer.ggml.scores")
    types = list(token_types) if token_types is not None else [_NORMAL] * len(tokens)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ModelLoadError("tokenizer.ggml.tokens repeats a token")
    normal = sorted((i for i, k in enumerate(types) if k == _NORMAL), key=lambda i: (-scores[i], i))
    merges: list[tuple[str, str]] = []
    for i in normal:
        piece = tokens[i]
        splits = [
            (vocab[piece[:j]], vocab[piece[j:]], piece[:j], piece[j:])
            for j in range(1, len(piece))
            if piece[:j] in vocab and piece[j:] in vocab
        ]
        merges.extend((left, right) for _, _, left, right in sorted(splits))
    unk = next((tokens[i] for i, k in enumerate(types) if k == _UNKNOWN), None)
    bpe = models.BPE(vocab=vocab, merges=merges, unk_token=unk, byte_fallback=True, fuse_unk=True)
    tok = Tokenizer(bpe)
    steps = [normalizers.Prepend("▁")] if add_space_prefix else []
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    special = [
        AddedToken(tokens[i], special=True, normalized=False)
        for i, kind in enumerate(types)
        if kind in (_CONTROL, _USER_DEFINED)
    ]
    tok.add_special_tokens(special)
    return ModelTokenizer(
        tok,
        name=name,
        description=f"GGUF vocabulary (SentencePiece BPE, {len(tokens):,} tokens)",
        byte_level=False,
        bos_token=bos,
        eos_token=eos,
        add_bos=add_bos,
        chat_template=chat_template,
    )


def encoding_for(model: Any) -> Any:
    """The encoding a model reads: its own tokenizer, or the built-in anatomy-mini
    vocabulary for a model without one (which must then have exactly its size)."""
    if getattr(model, "tokenizer", None) is not None:
        return model.tokenizer
    from .formats import require_tokenizer
    from .tokenizers import load_encoding

    require_tokenizer(model)
    return load_encoding("model")
