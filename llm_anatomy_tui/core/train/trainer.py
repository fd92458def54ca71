"""The training loop: batches, steps, periodic evaluation, loss history, checkpoints, resume.

:meth:`Trainer.run` is a generator of :class:`TrainEvent` records (one per step, one per
evaluation, one per checkpoint, one at the end), so a command-line progress bar or a
Textual worker can drive it and draw what it likes; nothing here prints or imports a UI.

A run lives in one output directory::

    DIR/checkpoint/          the latest checkpoint (replaced atomically)
        config.json          \\ the weights in the model format: a checkpoint is
        model.safetensors    / also a loadable model
        optimizer.npz        optimizer slots (Adam's m and v ...)
        state.json           step, RNG state, settings, full loss history, corpus hashes
    DIR/config.json          \\ the finished model, written when the last step is done
    DIR/model.safetensors    /
    DIR/training_history.json  compact history for plotting (chapter 12)

Everything that influences the next step — weights, optimizer state, the random
generator that draws batches and dropout masks, the step counter — is in the checkpoint,
so a run killed at any moment and resumed from its last checkpoint continues exactly as
if it had never stopped.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, LlamaConfig
from ..model import CONFIG_FILE, Model, ModelLoadError, init_random, load_model, save_model
from ..tokenizers import MODEL_EOT_ID, MODEL_VOCAB_SIZE
from .backward import loss_and_grads, parameters, token_nll
from .data import Corpus, batch_windows, eval_windows, sample_batch, spread_subset
from .optim import (
    OptimizerSettings,
    OptimizerState,
    clip_by_global_norm,
    init_state,
    lr_at,
    optimizer_step,
)

CHECKPOINT_DIR = "checkpoint"
HISTORY_FILE = "training_history.json"
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.npz"
HISTORY_FORMAT = "llm-anatomy training history v1"


class TrainError(ValueError):
    """A run cannot start or resume; the message is one line saying why."""


# -- model sizes -------------------------------------------------------------------------------

PRESETS: dict[str, LlamaConfig] = {
    # The shipped default model: about 1.8M parameters, half of them the embedding table.
    "anatomy-mini": LlamaConfig(
        vocab_size=MODEL_VOCAB_SIZE,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=MODEL_EOT_ID,
        eos_token_id=MODEL_EOT_ID,
    ),
    # For tests and quick demonstrations: trains at hundreds of steps a second.
    "tiny": LlamaConfig(
        vocab_size=MODEL_VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=MODEL_EOT_ID,
        eos_token_id=MODEL_EOT_ID,
    ),
}


def resolve_config(spec: str) -> LlamaConfig:
    """A preset name, a ``config.json`` file, or a directory holding one -> config.

    Raises :class:`TrainError` when it is none of those or the file is not usable.
    """
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.is_file():
        raise TrainError(
            f"unknown config {spec!r}: not a preset ({', '.join(PRESETS)}) and no such file"
        )
    try:
        config = LlamaConfig.load(path)
    except ConfigError as exc:
        raise TrainError(str(exc)) from None
    if config.vocab_size != MODEL_VOCAB_SIZE:
        raise TrainError(
            f"{path}: vocab_size is {config.vocab_size}, but training uses the model "
            f"vocabulary of {MODEL_VOCAB_SIZE} tokens"
        )
    return config


# -- settings ----------------------------------------------------------------------------------


MAX_LR = 1.0
"""Largest learning rate ``llm-anatomy train`` accepts: beyond it every update overshoots
and the loss explodes (the trainer itself takes any finite rate and stops on a NaN loss)."""


class NonFiniteLoss(TrainError):
    """The loss or the gradients became NaN or infinite; the update was not applied."""


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a run besides the model size and the data."""

    steps: int
    """Optimizer steps in the whole run; the learning-rate schedule spans exactly these."""
    batch_size: int = 16
    """Windows per step."""
    context: int = 0
    """Tokens per window; 0 means the model's whole context window."""
    lr: float = 3e-3
    """Peak learning rate, reached at the end of warmup."""
    min_lr: float = 3e-4
    """Learning rate at the last step (the floor of the cosine decay)."""
    warmup: int = 100
    """Steps of linear warmup (capped at a tenth of the run)."""
    grad_clip: float = 1.0
    """Clip gradients to this global norm; 0 turns clipping off."""
    dropout: float = 0.1
    """Dropout on the embeddings and on each attention/FFN output (training only)."""
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    eval_every: int = 100
    """Steps between evaluations on the validation text."""
    eval_windows: int | None = 128
    """Windows used by the periodic evaluation (None: the whole file every time)."""
    checkpoint_seconds: float = 300.0
    """Wall-clock seconds between checkpoints."""
    checkpoint_every: int = 0
    """Also checkpoint every this many steps (0: only by time and at the end)."""
    seed: int = 0
    """Seeds the initial weights, the batch order and the dropout masks."""
    init_std: float = 0.02
    """Standard deviation of the initial weights (see :func:`core.model.init_random`)."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise TrainError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise TrainError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise TrainError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("lr", "min_lr", "dropout", "grad_clip", "init_std", "checkpoint_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise TrainError(f"{name} must be a finite number, got {value!r}")
        if self.lr <= 0 or self.min_lr < 0:
            raise TrainError("learning rates must be positive")

    def window(self, config: LlamaConfig) -> int:
        """Tokens per training window for this model."""
        if self.context > config.max_position_embeddings:
            raise TrainError(
                f"context {self.context} exceeds the model's window of "
                f"{config.max_position_embeddings} tokens"
            )
        return self.context or config.max_position_embeddings

    @property
    def warmup_steps(self) -> int:
        return min(self.warmup, max(1, self.steps // 10))

    def lr_for(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based)."""
        return lr_at(step, self.lr, self.warmup_steps, self.steps, self.min_lr)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainSettings:
        raw = dict(raw)
        raw["optimizer"] = OptimizerSettings(**raw.get("optimizer", {}))
        return cls(**raw)


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainEvent:
    """One thing that happened in a run, for a progress display.

    kind is ``"start"``, ``"step"``, ``"eval"``, ``"checkpoint"``, ``"evaluating"`` (the
    final evaluation begins), ``"final"`` (its result: the whole validation and training
    files), ``"stopped"`` (paused by ``stop_after``, checkpointed) or ``"done"``.
    """

    kind: str
    step: int
    total_steps: int
    tokens_seen: int
    train_loss: float | None = None
    """Loss of the latest step (with dropout), None before the first step."""
    val_loss: float | None = None
    """Latest validation loss (the periodic estimate, or the full figure after "final")."""
    lr: float = 0.0
    tokens_per_s: float = 0.0
    """Training throughput over the recent steps of this session."""
    elapsed_s: float = 0.0
    """Wall time the run has spent so far, over all its sessions."""
    eta_s: float | None = None
    message: str = ""


# -- state and checkpoints -----------------------------------------------------------------------


@dataclass
class RunState:
    """The mutable part of a run: what a checkpoint stores besides weights and settings."""

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    rng_state: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(
        default_factory=lambda: {"train": {"loss": [], "lr": [], "grad_norm": []}, "eval": []}
    )
    final: dict[str, Any] | None = None


def machine_info() -> dict[str, Any]:
    """What the run ran on, for the history and the model card."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        info = np.__config__.CONFIG["Build Dependencies"]["blas"]  # numpy >= 2
        blas = f"{info.get('name')} {info.get('version')}"
    except (AttributeError, KeyError, TypeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
    }


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[\d.e+-]+|null)(?:,\s*(?:-?[\d.e+-]+|null))*)\s*\]")


def dumps_compact(data: Any) -> str:
    """JSON with one key per line but lists of numbers kept on one line.

    >>> print(dumps_compact({"loss": [3.5, 2.25], "n": 2}))
    {
     "loss": [3.5, 2.25],
     "n": 2
    }
    """
    text = json.dumps(data, indent=1)
    return _NUMBER_LIST.sub(
        lambda m: "[" + ", ".join(item.strip() for item in m.group(1).split(",")) + "]", text
    )


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps_compact(data) + "\n", encoding="utf-8")
    tmp.replace(path)


def save_checkpoint(
    out_dir: Path,
    model: Model,
    opt_state: OptimizerState,
    run: RunState,
    meta: dict[str, Any],
) -> Path:
    """Write a complete checkpoint beside the old one, then swap it in.

    A kill during the write leaves the previous checkpoint untouched; a kill between the
    two renames leaves ``checkpoint.old``, which :func:`checkpoint_dir` falls back to.
    """
    final = out_dir / CHECKPOINT_DIR
    tmp = out_dir / (CHECKPOINT_DIR + ".tmp")
    old = out_dir / (CHECKPOINT_DIR + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    arrays = {
        f"{slot}/{name}": arr
        for slot, named in opt_state.slots.items()
        for name, arr in named.items()
    }
    with open(tmp / OPTIMIZER_FILE, "wb") as fh:
        np.savez(fh, **arrays)
    state = asdict(run) | {"optimizer_step": opt_state.step} | meta
    _write_json(tmp / STATE_FILE, state)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.replace(old)
    tmp.replace(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_dir(out_dir: Path) -> Path | None:
    """The usable checkpoint of a run directory, or None when it has none."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):
        path = out_dir / name
        if (path / STATE_FILE).is_file():
            return path
    return None


def load_checkpoint(path: Path) -> tuple[Model, OptimizerState, RunState, dict[str, Any]]:
    """Read what :func:`save_checkpoint` wrote: (model, optimizer state, run state, meta)."""
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        model = load_model(path)
        with np.load(path / OPTIMIZER_FILE) as npz:
            slots: dict[str, dict[str, np.ndarray]] = {}
            for key in npz.files:
                slot, name = key.split("/", 1)
                slots.setdefault(slot, {})[name] = npz[key]
    except (OSError, ValueError, KeyError, ModelLoadError) as exc:
        raise TrainError(f"cannot read checkpoint {path}: {exc}") from None
    run_fields = {k: state[k] for k in ("step", "tokens_seen", "elapsed_s", "rng_state", "history")}
    run = RunState(**run_fields, final=state.get("final"))
    opt = OptimizerState(step=state["optimizer_step"], slots=slots)
    meta = {k: v for k, v in state.items() if k not in asdict(run) and k != "optimizer_step"}
    return model, opt, run, meta


# -- history ---------------------------------------------------------------------------------------


def compact_history(run: RunState, meta: dict[str, Any], max_points: int = 500) -> dict[str, Any]:
    """The history as committed with a model: train loss averaged over groups of steps so
    at most ``max_points`` remain, every evaluation in full, and the run's metadata."""
    losses = np.asarray(run.history["train"]["loss"], dtype=np.float64)
    lrs = np.asarray(run.history["train"]["lr"], dtype=np.float64)
    every = max(1, math.ceil(losses.size / max_points))
    ends = list(range(every, losses.size + 1, every))
    if losses.size and (not ends or ends[-1] != losses.size):
        ends.append(losses.size)
    starts = [0, *ends[:-1]]
    settings = meta["settings"]
    tokens_per_step = settings["batch_size"] * meta["window"]
    return {
        "format": HISTORY_FORMAT,
        "run": {
            "steps": run.step,
            "tokens_seen": run.tokens_seen,
            "tokens_per_step": tokens_per_step,
            "wall_seconds": round(run.elapsed_s, 1),
            "command": meta.get("command"),
            "machine": meta.get("machine"),
            "parameters": meta.get("parameters"),
            "settings": settings,
            "train_corpus": meta.get("train_corpus"),
            "val_corpus": meta.get("val_corpus"),
        },
        "train": {
            "note": "mean training loss (with dropout) over each group of steps; "
            "step = the group's last step",
            "every": every,
            "step": ends,
            "loss": [
                round(float(losses[a:b].mean()), 4) for a, b in zip(starts, ends, strict=True)
            ],
            "lr": [float(f"{lrs[b - 1]:.4g}") for b in ends],
        },
        "eval": run.history["eval"],
        "final": run.final,
    }


# -- the trainer ------------------------------------------------------------------------------------


class Trainer:
    """A training run: model, optimizer, data, and the loop that connects them.

    Build one with :meth:`create` (a fresh run) or :meth:`resume` (continue a run directory),
    then iterate :meth:`run`.
    """

    def __init__(
        self,
        model: Model,
        settings: TrainSettings,
        train: Corpus,
        val: Corpus | None,
        out_dir: str | Path | None,
        opt_state: OptimizerState,
        run_state: RunState,
        rng: np.random.Generator,
        meta: dict[str, Any],
    ) -> None:
        self.model = model
        self.settings = settings
        self.train = train
        self.val = val
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.opt_state = opt_state
        self.state = run_state
        self.rng = rng
        self.meta = meta
        self.window = settings.window(model.config)
        self.params = parameters(model)
        val_windows = eval_windows(val.tokens, self.window) if val is not None else []
        self._periodic = batch_windows(
            spread_subset(val_windows, settings.eval_windows), settings.batch_size
        )
        self._step_times: list[float] = []
        self._last_ckpt = time.monotonic()

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        config: LlamaConfig,
        settings: TrainSettings,
        train: Corpus,
        val: Corpus | None,
        out_dir: str | Path | None,
        extra_meta: dict[str, Any] | None = None,
        start_from: Model | None = None,
    ) -> Trainer:
        """A fresh run: seeded random weights, zeroed optimizer state.

        ``start_from``: train a copy of this model instead (fine-tuning; ``config`` is then
        taken from it). With ``val=None`` there are no validation evaluations; with
        ``out_dir=None`` nothing is written to disk (no checkpoints, no export). Both suit a
        live demonstration on a user's own few sentences.
        """
        if start_from is not None:
            config = start_from.config
        window = settings.window(config)
        for corpus in (train, val):
            if corpus is not None and corpus.tokens.size < window + 1:
                raise TrainError(
                    f"corpus {corpus.path} is too small: {corpus.tokens.size} tokens, "
                    f"one window needs {window + 1}"
                )
        # One generator for everything random, in a fixed order: the weights first, then
        # (step after step) the batch and the dropout masks.
        rng = np.random.default_rng(settings.seed)
        init_seed = int(rng.integers(2**31))
        if start_from is None:
            model = init_random(config, seed=init_seed, std=settings.init_std, name="training")
        else:
            copies = {name: arr.copy() for name, arr in start_from.tensors().items()}
            # with_tensors keeps what is not a weight: RoPE frequencies, tokenizer, source
            model = start_from.with_tensors(copies)
        opt_state = init_state(settings.optimizer, parameters(model))
        meta = {
            "settings": settings.to_dict(),
            "config": config.to_dict(),
            "window": window,
            "parameters": config.parameter_count(),
            "train_corpus": train.describe(),
            "val_corpus": val.describe() if val is not None else None,
            "machine": machine_info(),
        } | (extra_meta or {})
        return cls(model, settings, train, val, out_dir, opt_state, RunState(), rng, meta)

    @classmethod
    def resume(cls, out_dir: str | Path, train: Corpus, val: Corpus | None) -> Trainer:
        """Continue the run in ``out_dir`` from its last checkpoint, on the same data."""
        out_dir = Path(out_dir)
        path = checkpoint_dir(out_dir)
        if path is None:
            raise TrainError(f"nothing to resume: no checkpoint in {out_dir}")
        model, opt_state, run_state, meta = load_checkpoint(path)
        for corpus, key in ((train, "train_corpus"), (val, "val_corpus")):
            saved = meta.get(key) or {}
            if corpus is None and not saved:
                continue
            if (
                corpus is None
                or saved.get("sha256") != corpus.sha256
                or saved.get("tokens") != corpus.tokens.size
            ):
                path = corpus.path if corpus is not None else "no validation text"
                raise TrainError(
                    f"{path} is not the text this run was trained on "
                    f"(the checkpoint has {saved.get('path')}); exact resume needs the same data"
                )
        settings = TrainSettings.from_dict(meta["settings"])
        rng = np.random.default_rng()
        rng.bit_generator.state = run_state.rng_state
        meta["machine"] = machine_info()
        return cls(model, settings, train, val, out_dir, opt_state, run_state, rng, meta)

    # -- one step, one evaluation -------------------------------------------------------------
    def train_step(self) -> tuple[float, float, float]:
        """Draw a batch, run forward and backward, clip, update. Returns (loss, lr, grad norm)."""
        s = self.settings
        step = self.state.step
        inputs, targets = sample_batch(self.train.tokens, self.rng, s.batch_size, self.window)
        loss, grads = loss_and_grads(self.model, inputs, targets, s.dropout, self.rng)
        grads, norm = clip_by_global_norm(grads, s.grad_clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            # Stop before the update: the weights stay as they were after the last good step.
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            raise NonFiniteLoss(
                f"the {what} became {float(loss if what == 'loss' else norm)} at step {step + 1}"
            )
        lr = s.lr_for(step)
        optimizer_step(s.optimizer, self.opt_state, self.params, grads, lr)
        self.state.step += 1
        self.state.tokens_seen += inputs.size
        history = self.state.history["train"]
        history["loss"].append(loss)
        history["lr"].append(lr)
        history["grad_norm"].append(norm)
        return loss, lr, norm

    def evaluate(self, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, int]:
        """Mean loss (nats/token) over batches of windows, and how many tokens were scored."""
        total, count = 0.0, 0
        for inputs, targets in batches:
            nll = token_nll(self.model, inputs, targets)
            total += float(nll.sum())
            count += nll.size
        return total / count, count

    def evaluate_file(self, corpus: Corpus) -> tuple[float, int]:
        """Loss over a whole token stream, every token after the first scored once."""
        windows = eval_windows(corpus.tokens, self.window)
        return self.evaluate(batch_windows(windows, self.settings.batch_size))

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint (nothing when the run has no output directory)."""
        self.state.rng_state = self.rng.bit_generator.state
        self._last_ckpt = time.monotonic()
        if self.out_dir is None:
            return None
        return save_checkpoint(self.out_dir, self.model, self.opt_state, self.state, self.meta)

    def export(self, out_dir: str | Path | None = None) -> Path:
        """Write the model files and the compact history (the shippable model directory)."""
        out = Path(out_dir) if out_dir is not None else self.out_dir
        if out is None:
            raise TrainError("this run has no output directory to export to")
        save_model(self.model, out)
        _write_json(out / HISTORY_FILE, compact_history(self.state, self.meta))
        return out

    # -- the loop ----------------------------------------------------------------------------------
    def _event(self, kind: str, **kw: Any) -> TrainEvent:
        s, st = self.settings, self.state
        recent = self._step_times[-20:]
        per_step = sum(recent) / len(recent) if recent else 0.0
        tokens_per_step = s.batch_size * self.window
        evals = st.history["eval"]
        defaults: dict[str, Any] = {
            "step": st.step,
            "total_steps": s.steps,
            "tokens_seen": st.tokens_seen,
            "train_loss": st.history["train"]["loss"][-1] if st.step else None,
            "val_loss": (st.final or {}).get("val_loss")
            or (evals[-1]["val_loss"] if evals else None),
            "lr": st.history["train"]["lr"][-1] if st.step else s.lr_for(0),
            "tokens_per_s": tokens_per_step / per_step if per_step else 0.0,
            "elapsed_s": st.elapsed_s,
            "eta_s": per_step * (s.steps - st.step) if per_step else None,
        }
        return TrainEvent(kind=kind, **(defaults | kw))

    def _periodic_eval(self) -> TrainEvent:
        t0 = time.perf_counter()
        val_loss, _ = self.evaluate(self._periodic)
        self.state.elapsed_s += time.perf_counter() - t0
        recent = self.state.history["train"]["loss"][-self.settings.eval_every :]
        self.state.history["eval"].append(
            {
                "step": self.state.step,
                "tokens": self.state.tokens_seen,
                "val_loss": round(val_loss, 5),
                "train_loss": round(float(np.mean(recent)), 5) if recent else None,
            }
        )
        return self._event("eval", val_loss=val_loss)

    def _final_eval(self) -> TrainEvent:
        t0 = time.perf_counter()
        final: dict[str, Any] = {"step": self.state.step}
        message = ""
        if self.val is not None:
            val_loss, val_count = self.evaluate_file(self.val)
            final |= {"val_loss": round(val_loss, 5), "val_tokens_scored": val_count}
            message = (
                f"whole validation file: {val_loss:.4f} nats/token over {val_count:,} tokens; "
            )
        train_loss, train_count = self.evaluate_file(self.train)
        final |= {"train_loss": round(train_loss, 5), "train_tokens_scored": train_count}
        final["note"] = "whole files, consecutive windows, no dropout; nats per token"
        self.state.elapsed_s += time.perf_counter() - t0
        self.state.final = final
        return self._event(
            "final",
            val_loss=final.get("val_loss"),
            message=message + f"whole training file: {train_loss:.4f}",
        )

    def run(self, stop_after: int | None = None) -> Iterator[TrainEvent]:
        """Train to the last step, yielding events; then evaluate fully and export.

        ``stop_after``: pause once this step is done (checkpointed; resume continues). The
        generator may also simply be abandoned between events; the run then continues from
        its last checkpoint.
        """
        s, st = self.settings, self.state
        yield self._event("start")
        evaluate = bool(s.eval_every and self._periodic)
        if st.step == 0 and not st.history["eval"] and evaluate:
            yield self._periodic_eval()
        while st.step < s.steps:
            t0 = time.perf_counter()
            self.train_step()
            dt = time.perf_counter() - t0
            st.elapsed_s += dt
            self._step_times.append(dt)
            yield self._event("step")
            if evaluate and (st.step % s.eval_every == 0 or st.step == s.steps):
                yield self._periodic_eval()
            due_by_steps = s.checkpoint_every and st.step % s.checkpoint_every == 0
            due_by_time = time.monotonic() - self._last_ckpt >= s.checkpoint_seconds
            if (due_by_steps or due_by_time) and st.step < s.steps and self.out_dir:
                path = self.save_checkpoint()
                yield self._event("checkpoint", message=str(path))
            if stop_after is not None and st.step >= stop_after and st.step < s.steps:
                path = self.save_checkpoint()
                yield self._event("stopped", message=str(path))
                return
        if st.final is None:
            yield self._event("evaluating", message="evaluating on the whole files ...")
            yield self._final_eval()
        self.save_checkpoint()
        out = self.export() if self.out_dir is not None else None
        yield self._event("done", message=str(out) if out else "")


def estimate_step_seconds(config: LlamaConfig, settings: TrainSettings, repeats: int = 3) -> float:
    """Median seconds of one forward+backward step at this size, on random weights and data."""
    window = settings.window(config)
    rng = np.random.default_rng(0)
    model = init_random(config, seed=0)
    tokens = rng.integers(0, config.vocab_size, size=(settings.batch_size, window + 1))
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        loss_and_grads(model, tokens[:, :-1], tokens[:, 1:], settings.dropout, rng)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def steps_for_minutes(
    minutes: float,
    step_seconds: float,
    settings: TrainSettings,
    train_tokens: int,
    val_tokens: int,
    window: int,
) -> int:
    """How many steps fit in ``minutes``, leaving time for evaluations and the final one.

    A forward pass costs about a third of a training step; evaluation is forward only.
    """
    tokens_per_step = settings.batch_size * window
    forward_per_token = step_seconds / tokens_per_step / 3.0
    final = (train_tokens + val_tokens) * forward_per_token
    periodic_tokens = (settings.eval_windows or val_tokens // window) * window
    per_step = step_seconds + (
        periodic_tokens * forward_per_token / settings.eval_every if settings.eval_every else 0
    )
    return max(1, int((minutes * 60.0 - final) / per_step))
