"""``llm-anatomy tokenize TEXT|- [--encoding NAME] [--json]`` — tokenize without the TUI.

Plain output is a summary line and then one token per line (``ID<TAB>piece``), pieces drawn
as in the app (``·`` for space, ``⏎`` for newline, ``‹E4 B8›`` for bytes of a split
character). ``--json`` prints one object::

    {"encoding": "o200k_base", "characters": 102, "utf8_bytes": 102, "tokens": 22,
     "chars_per_token": 4.636363636363637, "ids": [3335, 290, ...],
     "pieces": [{"id": 3335, "bytes": "4966", "text": "If", "display": "If"}, ...]}

``text`` is ``null`` for a token whose bytes are not valid UTF-8 on their own.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..core.tokenizers import ENCODING_LABELS, ENCODING_NAMES, TokenizerAssetError, load_encoding
from ..views.token_pieces import format_ratio, token_pieces, tokenize
from . import CommandError

NAME = "tokenize"
HELP = "split text into tokens and print their IDs (offline; o200k_base, cl100k_base or the model's vocabulary)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT|-", help="the text, or - to read UTF-8 from stdin")
    parser.add_argument(
        "--encoding",
        "-e",
        default="o200k_base",
        choices=ENCODING_NAMES,
        help="which tokenizer (default: o200k_base; 'model' is the model's own 8k vocabulary)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="use this model's own tokenizer (a model directory or a .gguf file; only the "
        "tokenizer is read)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"stdin is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _utf8_stdout() -> None:
    """Write UTF-8 even under a non-UTF-8 locale (pieces contain · ⏎ ‹ ›)."""
    encoding = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "")
    if encoding != "utf8" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    _utf8_stdout()
    text = _read_stdin() if args.text == "-" else args.text
    label = ENCODING_LABELS[args.encoding]
    try:
        if args.model is not None:
            from pathlib import Path

            from ..core.formats import load_tokenizer
            from ..core.model import ModelLoadError

            try:
                encoding = load_tokenizer(args.model)
            except ModelLoadError as exc:
                raise CommandError(str(exc)) from None
            label = f"{Path(args.model).name} ({encoding.n_vocab:,} tokens)"
            args.encoding = "model"
        else:
            encoding = load_encoding(args.encoding)
    except TokenizerAssetError as exc:
        raise CommandError(str(exc)) from None
    result = tokenize(encoding, text)
    counts = result.counts
    if args.json:
        pieces = token_pieces(encoding, result.ids)
        out = {
            "encoding": args.encoding,
            "characters": counts.characters,
            "utf8_bytes": counts.utf8_bytes,
            "tokens": counts.tokens,
            "chars_per_token": counts.chars_per_token,
            "ids": result.ids,
            "pieces": [
                {"id": p.id, "bytes": p.raw.hex(), "text": p.text, "display": p.display}
                for p in pieces
            ],
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0
    per_token = (
        f", {format_ratio(counts.characters, counts.tokens)} characters per token"
        if counts.tokens
        else ""
    )
    sys.stdout.write(
        f"{label}: {counts.characters:,} characters, {counts.tokens:,} tokens{per_token}\n"
    )
    for piece in token_pieces(encoding, result.ids):
        sys.stdout.write(f"{piece.id}\t{piece.display}\n")
    return 0
