"""``llm-anatomy train``: train a model on a text corpus with the project's numpy code.

Every problem with the inputs (a missing, empty, non-UTF-8 or too-small corpus, a bad
config, an output directory that already holds a run) is reported as one line before any
training starts. Ctrl-C finishes the current step, saves a checkpoint and exits; run the
same command with ``--resume`` to continue exactly where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.limits import available_memory, format_bytes, train_step_bytes
from ..core.train.data import Corpus, CorpusError, hold_out, load_corpus
from ..core.train.optim import OPTIMIZERS, OptimizerSettings
from ..core.train.trainer import (
    MAX_LR,
    PRESETS,
    STATE_FILE,
    NonFiniteLoss,
    Trainer,
    TrainError,
    TrainEvent,
    TrainSettings,
    checkpoint_dir,
    estimate_step_seconds,
    resolve_config,
    steps_for_minutes,
)
from . import CommandError

PROG = "llm-anatomy"

NAME = "train"
HELP = "train a model on a text corpus (numpy, CPU), with checkpoints and exact resume"

# Flags that map one-to-one onto TrainSettings / OptimizerSettings fields.
_SETTING_FLAGS = {
    "batch_size": "batch_size",
    "context": "context",
    "lr": "lr",
    "min_lr": "min_lr",
    "warmup": "warmup",
    "grad_clip": "grad_clip",
    "dropout": "dropout",
    "eval_every": "eval_every",
    "seed": "seed",
}
_OPTIMIZER_FLAGS = {"optimizer": "name", "weight_decay": "weight_decay"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", required=True, metavar="FILE", help="training text, UTF-8, plain or .gz; "
        "stories separated by lines holding only <|endoftext|>",
    )  # fmt: skip
    parser.add_argument(
        "--val", metavar="FILE", help="validation text in the same format "
        "(default: hold out the last 5%% of the corpus)",
    )  # fmt: skip
    parser.add_argument(
        "--out", required=True, metavar="DIR",
        help="run directory: checkpoints while training, the finished model at the end",
    )  # fmt: skip
    parser.add_argument(
        "--config", default="anatomy-mini", metavar="NAME|PATH",
        help=f"model size: a preset ({', '.join(PRESETS)}) or a config.json "
        "(default: anatomy-mini)",
    )  # fmt: skip
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, metavar="N", help="optimizer steps in the run")
    length.add_argument(
        "--minutes", type=float, metavar="M",
        help="choose the number of steps that fits in M minutes on this machine",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its last checkpoint (same data, same settings)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, metavar="S", help="random seed (default 0)")
    parser.add_argument("--batch-size", type=int, metavar="B", help="windows per step (16)")
    parser.add_argument(
        "--context", type=int, metavar="T", help="tokens per window (default: the model's window)"
    )
    parser.add_argument("--lr", type=float, metavar="LR", help="peak learning rate (3e-3)")
    parser.add_argument("--min-lr", type=float, metavar="LR", help="final learning rate (3e-4)")
    parser.add_argument("--warmup", type=int, metavar="N", help="warmup steps (100)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule (adamw)")
    parser.add_argument("--weight-decay", type=float, metavar="W", help="AdamW decay (0.1)")
    parser.add_argument("--dropout", type=float, metavar="P", help="dropout probability (0.1)")
    parser.add_argument(
        "--grad-clip", type=float, metavar="C", help="clip gradients to this global norm (1.0)"
    )
    parser.add_argument(
        "--eval-every", type=int, metavar="N", help="steps between validation estimates (100)"
    )
    parser.add_argument(
        "--eval-windows", type=int, metavar="N",
        help="windows per validation estimate (128; 0 = the whole file every time)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint-minutes", type=float, default=5.0, metavar="M",
        help="minutes between checkpoints (5)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint-every", type=int, default=0, metavar="N",
        help="also checkpoint every N steps",
    )  # fmt: skip
    parser.add_argument(
        "--stop-after", type=int, metavar="N",
        help="end this session after step N (checkpointed); --resume continues",
    )  # fmt: skip


# -- argument checks ---------------------------------------------------------------------------


def _load(path: str, what: str, min_tokens: int) -> Corpus:
    try:
        return load_corpus(path, min_tokens=min_tokens)
    except CorpusError as exc:
        raise CommandError(f"{what}: {exc}") from None


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Settings the user typed (None = not given), keyed by TrainSettings field."""
    given = {field: getattr(args, flag) for flag, field in _SETTING_FLAGS.items()}
    given = {k: v for k, v in given.items() if v is not None}
    if args.eval_windows is not None:
        given["eval_windows"] = args.eval_windows or None  # 0: the whole file
    return given


def _given_optimizer(args: argparse.Namespace) -> dict[str, Any]:
    given = {field: getattr(args, flag) for flag, field in _OPTIMIZER_FLAGS.items()}
    return {k: v for k, v in given.items() if v is not None}


_FLOAT_FLAGS = (
    "lr", "min_lr", "weight_decay", "dropout", "grad_clip", "minutes", "checkpoint_minutes",
)  # fmt: skip


def _check_numbers(args: argparse.Namespace) -> None:
    for flag in _FLOAT_FLAGS:  # argparse's float() accepts "nan" and "inf"
        value = getattr(args, flag)
        if value is not None and not math.isfinite(value):
            raise CommandError(f"--{flag.replace('_', '-')} must be a finite number, got {value}")
    for flag in ("steps", "batch_size", "stop_after", "eval_every", "warmup", "context"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag in ("warmup", "context") else 1):
            raise CommandError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.minutes is not None and args.minutes <= 0:
        raise CommandError(f"--minutes must be positive, got {args.minutes}")
    # A policy of this command, not of the trainer: the app's chapter 12 lets a person
    # try an absurd rate and watch the run blow up (NaN caught, copy dropped).
    if args.lr is not None and args.lr > MAX_LR:
        raise CommandError(
            f"learning rate {args.lr:g} (--lr) is far above any that trains (at most {MAX_LR:g}; "
            "typical: 1e-4 to 1e-2)"
        )


def _check_out_writable(out: Path) -> None:
    """Refuse an --out that cannot be written, before any work (a probe file, not a guess
    from permission bits: root ignores those, read-only mounts do not)."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CommandError(f"--out {out}: {existing} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise CommandError(
            f"--out {out} cannot be written ({exc.strerror or exc}); choose a directory you "
            "can write to"
        ) from None


def _check_memory(config: Any, batch: int, window: int) -> None:
    """Refuse a batch/context whose training step cannot fit in memory, with the numbers."""
    need = train_step_bytes(config, batch, window)
    have = available_memory()
    if have is not None and need > have:
        raise CommandError(
            f"--batch-size {batch:,} x --context {window:,} needs about {format_bytes(need)} "
            f"of memory per training step; {format_bytes(have)} is available. "
            "Lower --batch-size or --context"
        )


def _new_trainer(args: argparse.Namespace, out: Path) -> Trainer:
    if checkpoint_dir(out) is not None:
        raise CommandError(
            f"{out} already holds a training run; add --resume to continue it, "
            "or choose another --out"
        )
    if args.steps is None and args.minutes is None:
        raise CommandError("say how long to train: --steps N or --minutes M")
    try:
        config = resolve_config(args.config)
        optimizer = OptimizerSettings(**_given_optimizer(args))
        settings = TrainSettings(
            steps=args.steps or 1,
            optimizer=optimizer,
            checkpoint_seconds=args.checkpoint_minutes * 60.0,
            checkpoint_every=args.checkpoint_every,
            **_given_settings(args),
        )
        window = settings.window(config)
    except (TrainError, ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    _check_memory(config, settings.batch_size, window)
    train = _load(args.corpus, "--corpus", window + 1)
    if args.val:
        val = _load(args.val, "--val", window + 1)
    else:
        train, val = hold_out(train)
        if min(train.tokens.size, val.tokens.size) < window + 1:
            raise CommandError(
                f"--corpus {args.corpus} is too small to hold out 5% for validation "
                f"(windows of {window + 1} tokens); pass --val FILE"
            )
    if args.minutes is not None:
        print(f"measuring the step time of {args.config} ...", flush=True)
        step_s = estimate_step_seconds(config, settings)
        steps = steps_for_minutes(
            args.minutes, step_s, settings, train.tokens.size, val.tokens.size, window
        )
        print(f"{step_s:.2f} s per step -> {steps:,} steps in {args.minutes:g} min", flush=True)
        settings = TrainSettings.from_dict(settings.to_dict() | {"steps": steps})
    command = "llm-anatomy " + " ".join(sys.argv[1:]) if sys.argv else ""
    try:
        return Trainer.create(
            config, settings, train, val, out,
            extra_meta={"config_name": args.config, "command": command},
        )  # fmt: skip
    except TrainError as exc:
        raise CommandError(str(exc)) from None


def _resumed_trainer(args: argparse.Namespace, out: Path) -> Trainer:
    path = checkpoint_dir(out)
    if path is None:
        raise CommandError(f"nothing to resume: {out} holds no checkpoint")
    try:
        saved = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        settings = TrainSettings.from_dict(saved["settings"])
        window = int(saved["window"])
    except (OSError, ValueError, KeyError, TypeError, TrainError) as exc:
        raise CommandError(f"cannot read checkpoint {path}: {exc}") from None
    changed = [k for k, v in _given_settings(args).items() if getattr(settings, k) != v]
    flags = {field: flag for flag, field in _OPTIMIZER_FLAGS.items()}
    changed += [
        flags[k] for k, v in _given_optimizer(args).items() if getattr(settings.optimizer, k) != v
    ]
    if args.steps is not None and args.steps != settings.steps:
        changed.append("steps")
    if args.minutes is not None:
        changed.append("minutes")
    if changed:
        raise CommandError(
            f"--resume continues the run with its saved settings; "
            f"--{changed[0].replace('_', '-')} cannot change (start a new run in another --out)"
        )
    train = _load(args.corpus, "--corpus", window + 1)
    val = _load(args.val, "--val", window + 1) if args.val else None
    if val is None:
        train, val = hold_out(train)
    try:
        trainer = Trainer.resume(out, train, val)
    except TrainError as exc:
        raise CommandError(str(exc)) from None
    trainer.settings = _with_checkpointing(trainer.settings, args)
    return trainer


def _with_checkpointing(settings: TrainSettings, args: argparse.Namespace) -> TrainSettings:
    """Checkpoint frequency may change between sessions: it does not affect the numbers."""
    return TrainSettings.from_dict(
        settings.to_dict()
        | {
            "checkpoint_seconds": args.checkpoint_minutes * 60.0,
            "checkpoint_every": args.checkpoint_every,
        }
    )


# -- display -----------------------------------------------------------------------------------


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def status_line(ev: TrainEvent) -> str:
    """One plain line describing the run's progress (used when stdout is not a terminal)."""
    return (
        f"step {ev.step}/{ev.total_steps}  train {_fmt(ev.train_loss)}  "
        f"val {_fmt(ev.val_loss)}  lr {ev.lr:.2e}  {ev.tokens_per_s:,.0f} tok/s  "
        f"elapsed {_clock(ev.elapsed_s)}  eta {_clock(ev.eta_s)}"
    )


def _plain(events: Iterator[TrainEvent]) -> Iterator[TrainEvent]:
    """Print a line per evaluation and for every notable event; never per step."""
    for ev in events:
        if ev.kind in ("eval", "stopped") or (ev.kind == "start" and ev.step > 0):
            print(status_line(ev), flush=True)
        if ev.kind == "checkpoint":
            print(f"checkpoint at step {ev.step}: {ev.message}", flush=True)
        elif ev.kind in ("evaluating", "final"):
            print(ev.message, flush=True)
        yield ev


def _rich(events: Iterator[TrainEvent]) -> Iterator[TrainEvent]:
    """A live progress bar with the latest numbers, for a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("[bold]step"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[tps]} tok/s"),
        TextColumn("train [cyan]{task.fields[train]}"),
        TextColumn("val [green]{task.fields[val]}"),
        TextColumn("eta {task.fields[eta]}"),
    )
    with Progress(*columns, refresh_per_second=4) as progress:
        task = None
        for ev in events:
            fields = {
                "tps": f"{ev.tokens_per_s:,.0f}",
                "train": _fmt(ev.train_loss),
                "val": _fmt(ev.val_loss),
                "eta": _clock(ev.eta_s),
            }
            if task is None:
                task = progress.add_task("train", total=ev.total_steps, completed=ev.step, **fields)
            progress.update(task, completed=ev.step, **fields)
            if ev.kind == "checkpoint":
                progress.console.print(f"[dim]checkpoint at step {ev.step}")
            elif ev.kind in ("evaluating", "final"):
                progress.console.print(ev.message)
            yield ev


# -- run ---------------------------------------------------------------------------------------


class _Diverged(Exception):
    """The loss became NaN/inf: the run stopped (one line, exit 1)."""


def _stop_on_nan(events: Iterator[TrainEvent], trainer: Trainer, out: Path) -> Iterator[TrainEvent]:
    try:
        yield from events
    except NonFiniteLoss as exc:
        kept = checkpoint_dir(out)
        where = (
            f"the last good checkpoint (step {_checkpoint_step(kept)}) is kept in {kept}"
            if kept is not None
            else "no checkpoint had been written yet, so nothing was saved"
        )
        raise _Diverged(
            f"training stopped: {exc}; {where}. Lower --lr (it was "
            f"{trainer.settings.lr:g}) or raise --warmup, in a new --out"
        ) from None


def _checkpoint_step(path: Path) -> str:
    try:
        return str(json.loads((path / STATE_FILE).read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def run(args: argparse.Namespace) -> int:
    _check_numbers(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} exists and is not a directory")
    _check_out_writable(out)
    trainer = _resumed_trainer(args, out) if args.resume else _new_trainer(args, out)
    out.mkdir(parents=True, exist_ok=True)

    s = trainer.settings
    print(
        f"training {trainer.meta.get('config_name', 'model')} "
        f"({trainer.meta['parameters']:,} parameters) on {trainer.train.tokens.size:,} tokens, "
        f"validating on {trainer.val.tokens.size:,}; {s.steps:,} steps of "
        f"{s.batch_size}x{trainer.window} tokens"
        + (f", resuming at step {trainer.state.step}" if args.resume else ""),
        flush=True,
    )
    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is immediate

    previous = signal.signal(signal.SIGINT, on_sigint)
    display = _rich if sys.stdout.isatty() else _plain
    last: TrainEvent | None = None
    started = time.perf_counter()
    try:
        for ev in _stop_on_nan(display(trainer.run(stop_after=args.stop_after)), trainer, out):
            last = ev
            if interrupted and ev.kind in ("step", "eval", "checkpoint"):
                path = trainer.save_checkpoint()
                print(
                    f"interrupted after step {ev.step}; checkpoint saved in {path}. "
                    f"Continue with the same command plus --resume.",
                    file=sys.stderr,
                )
                return 130
    except _Diverged as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    if last is None:  # pragma: no cover - run() always yields
        return 1
    session = time.perf_counter() - started
    if last.kind == "stopped":
        print(f"stopped after step {last.step} as asked; continue with --resume")
        return 0
    final = trainer.state.final or {}
    print(
        f"done: {last.step:,} steps, {last.tokens_seen:,} tokens, "
        f"{_clock(last.elapsed_s)} of training ({_clock(session)} this session)"
    )
    print(
        f"final loss, whole files: validation {final.get('val_loss', float('nan')):.4f}, "
        f"training {final.get('train_loss', float('nan')):.4f} nats/token"
    )
    print(f"model written to {last.message}")
    return 0
