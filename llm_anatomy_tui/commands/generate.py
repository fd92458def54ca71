"""``llm-anatomy generate``: continue a prompt with the model, streaming tokens as they come.

Policies (each a one-line error, exit status 2, unless noted):

- the prompt is the argument, or UTF-8 text on stdin with ``-`` (one trailing newline is
  dropped, so ``echo "Once upon a time" | llm-anatomy generate -`` works as expected);
  an empty prompt or invalid UTF-8 is an error;
- a prompt that does not leave room for one new token in the context window is an error
  (no silent truncation); generation that fills the window stops there, with a note on
  stderr (exit status 0);
- ``--max-tokens`` must be at least 1; sampling settings out of range are errors;
- the model is ``--model PATH`` (a Hugging Face directory or a ``.gguf`` file), else
  ``$LLM_ANATOMY_MODEL``, else the shipped default; a missing or broken model (corrupt
  weights, a missing tensor, NaN weights, an unsupported config or architecture, a model
  too large for memory) is an error naming the problem. The prompt is encoded with the
  model's own tokenizer, after its BOS token when the model adds one.

Text goes to stdout as soon as it is final: a half UTF-8 character, or text that could
still turn out to be a stop sequence, waits for the next token. ``--json`` prints one
JSON object per step and a closing ``"type": "end"`` object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..core.formats import open_model
from ..core.generation import STOP_CONTEXT_FULL, Generation, StepRecord
from ..core.model import ModelLoadError, default_model_dir
from ..core.model_tokenizer import encoding_for
from ..core.sampling import SamplingError, SamplingSettings
from ..core.session import MODEL_DIR_ENV
from ..core.tokenizers import TokenizerAssetError
from . import CommandError

NAME = "generate"
HELP = "continue a prompt with the model, streaming tokens (greedy or sampled, seeded)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "prompt", metavar="PROMPT|-", help="the prompt, or - to read UTF-8 from stdin"
    )
    parser.add_argument(
        "--max-tokens",
        "-n",
        type=int,
        default=100,
        metavar="N",
        help="generate at most N tokens (default 100)",
    )
    parser.add_argument(
        "--temperature",
        "-t",
        type=float,
        default=1.0,
        metavar="T",
        help="divide logits by T; 0 = greedy (default 1)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="keep the K most likely tokens; 0 = off (default)",
    )
    parser.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        metavar="P",
        help="keep the most likely tokens whose mass reaches P; 1 = off (default)",
    )
    parser.add_argument(
        "--min-p",
        type=float,
        default=0.0,
        metavar="P",
        help="keep tokens at least P x the top probability; 0 = off (default)",
    )
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        metavar="R",
        help="discourage tokens already in context; 1 = off (default)",
    )
    parser.add_argument(
        "--frequency-penalty",
        type=float,
        default=0.0,
        metavar="F",
        help="subtract F x count from a seen token's logit; 0 = off (default)",
    )
    parser.add_argument(
        "--presence-penalty",
        type=float,
        default=0.0,
        metavar="F",
        help="subtract F from a seen token's logit; 0 = off (default)",
    )
    parser.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="stop before this text (repeatable); the output is cut exactly",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed; the same seed gives the same text (default 0)",
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="a model directory (config.json + safetensors) or a .gguf file; default: "
        f"${MODEL_DIR_ENV}, else the shipped anatomy-mini",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute every position at every step (same text, slower)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per step (token, text, probability, alternatives)",
    )
    parser.add_argument("--alternatives", type=int, default=5, metavar="N",
                        help="with --json: the N most likely tokens at each step (default 5)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    _utf8_stdout()
    if args.max_tokens < 1:
        raise CommandError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.seed < 0:
        raise CommandError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.alternatives < 0:
        raise CommandError(f"--alternatives must be >= 0, got {args.alternatives}")
    settings = _settings(args)
    prompt = _read_prompt(args.prompt)
    model = _load(args.model)
    try:
        encoding = encoding_for(model)
    except (TokenizerAssetError, ModelLoadError) as exc:
        raise CommandError(str(exc)) from None
    cfg = model.config
    prefix = encoding.prefix() if hasattr(encoding, "prefix") else []
    ids = prefix + encoding.encode(prompt, disallowed_special=())
    window = cfg.max_position_embeddings
    if len(ids) >= window:
        raise CommandError(
            f"the prompt is {len(ids)} tokens; the model's context window is {window} tokens "
            f"and must keep room for at least one new token (shorten the prompt to "
            f"{window - 1} tokens or fewer)"
        )
    try:
        gen = Generation(
            model, ids, settings, args.seed, encoding=encoding, stop_sequences=args.stop,
            max_new_tokens=args.max_tokens, use_cache=not args.no_cache,
        )  # fmt: skip
    except (SamplingError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    start = time.perf_counter()
    try:
        for record in gen.iter_steps():
            if args.json:
                _print_json(_step_json(record, gen, args.alternatives))
            else:
                sys.stdout.write(record.new_text)
                sys.stdout.flush()
    except SamplingError as exc:
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - start
    if args.json:
        _print_json(_end_json(gen, model.name, args.seed, seconds))
    else:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if gen.stop is not None and gen.stop.reason == STOP_CONTEXT_FULL:
        print(
            f"llm-anatomy: note: stopped after {len(gen.steps)} tokens: {gen.stop.message}",
            file=sys.stderr,
        )
    return 0


# -- input ------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> SamplingSettings:
    try:
        return SamplingSettings(
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            min_p=args.min_p,
            repetition_penalty=args.repetition_penalty,
            frequency_penalty=args.frequency_penalty,
            presence_penalty=args.presence_penalty,
        )
    except SamplingError as exc:
        raise CommandError(str(exc)) from None


def _read_prompt(arg: str) -> str:
    if arg == "-":
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"stdin is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
            ) from None
        text = text.removesuffix("\n").removesuffix("\r")  # what `echo` added
    else:
        text = arg
    if not text:
        raise CommandError("the prompt is empty: give some text to continue")
    return text


def _load(model_dir: str | None):
    import os

    model_dir = model_dir or os.environ.get(MODEL_DIR_ENV) or None
    if model_dir is None:
        path = default_model_dir()
        if not (path / "config.json").is_file():
            raise CommandError(
                f"default model not found at {path} (it is trained separately); "
                "pass --model DIR to use another model"
            )
    else:
        path = Path(model_dir)
    try:
        return open_model(path)
    except ModelLoadError as exc:
        raise CommandError(str(exc)) from None


# -- output -----------------------------------------------------------------------------------


def _utf8_stdout() -> None:
    """Write UTF-8 even under a non-UTF-8 locale (the model's tokens are any Unicode)."""
    encoding = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "")
    if encoding != "utf8" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _step_json(rec: StepRecord, gen: Generation, n_alternatives: int) -> dict:
    final = rec.sampling.probs
    return {
        "type": "step",
        "step": rec.index,
        "position": rec.position,
        "token": rec.token,
        "text": rec.piece.decode("utf-8", errors="replace"),
        "bytes": rec.piece.hex(),
        "prob": round(rec.prob, 6),
        "model_prob": round(rec.raw_prob, 6),
        "logit": round(float(rec.logits[rec.token]), 4),
        "forced": rec.forced,
        "u": rec.sampling.draw.u,
        "candidates": rec.sampling.draw.n_candidates,
        "top": [
            {
                "token": tok,
                "text": gen.piece(tok).decode("utf-8", errors="replace"),
                "logit": round(logit, 4),
                "model_prob": round(p, 6),
                "prob": round(float(final[tok]), 6),
            }
            for tok, logit, p in rec.top(n_alternatives)
        ],
        "cache_positions": rec.cache_length,
        "cache_bytes": rec.cache_bytes,
        "macs": rec.macs,
        "seconds": round(rec.seconds, 6),
        "stop": rec.stop.reason if rec.stop else None,
    }


def _end_json(gen: Generation, model_name: str, seed: int, seconds: float) -> dict:
    n = len(gen.steps)
    return {
        "type": "end",
        "stop": gen.stop.reason if gen.stop else None,
        "message": gen.stop.message if gen.stop else "",
        "text": gen.text,
        "prompt_tokens": len(gen.prompt),
        "new_tokens": n,
        "seconds": round(seconds, 4),
        "tokens_per_second": round(n / seconds, 1) if seconds > 0 else None,
        "model": model_name,
        "sampling": gen.settings.describe(),
        "seed": seed,
    }
