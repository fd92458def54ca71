"""Chapter 12's live run: fine-tune a copy of the model on the person's own text.

The core does the work — :class:`core.train.trainer.Trainer` (``start_from=`` a model, no
output directory, no validation corpus) copies the weights and takes real AdamW steps with
the hand-written backward pass. This module only plans the run (which model, which
window, which held-out text), drives the trainer step by step so a worker can report
progress and stop between steps, and watches for a blow-up (a NaN or infinite loss or
weight), in which case the copy is thrown away and the run says so.

The loaded model's arrays are never written: the trainer trains its own copy, and the
result carries that copy (:attr:`LiveRun.model`) for the person to keep or drop.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..core.generation import Generation
from ..core.model import Model
from ..core.sampling import SamplingSettings
from ..core.train.data import Corpus, batch_windows, eval_windows, spread_subset
from ..core.train.optim import OptimizerSettings
from ..core.train.trainer import NonFiniteLoss, Trainer, TrainError, TrainSettings

TRAINING_MEMORY_BUDGET = 1 << 30
"""Bytes a live run may hold for weights + gradients + optimizer state (1 GiB). A larger
loaded model is not trained; chapters 12 and 13 use anatomy-mini instead and say so."""

MAX_WINDOW = 128
"""Longest training window of a live run (tokens), to keep a step well under a second."""
BATCH = 4
"""Windows per live step (a text shorter than one window is the same window each time)."""
VAL_WINDOWS = 8
"""Held-out windows scored after each step (fixed ones, so the figures compare)."""
VAL_WINDOW = 64
"""Tokens per held-out window (8 x 64 = 512 tokens scored after every step)."""
COMPLETION_TOKENS = 16
"""Greedy tokens shown as the model's completion before and after."""
YIELD_SECONDS = 0.01
"""Pause after each live step: a step of a small model is mostly Python holding the GIL,
and a key pressed meanwhile repaints only when the UI thread gets it back."""
DEFAULT_STEPS = 30
DEFAULT_LR = 1e-3

LR_LADDER: tuple[float, ...] = (
    1e-5,
    3e-5,
    1e-4,
    3e-4,
    1e-3,
    3e-3,
    1e-2,
    3e-2,
    0.1,
    0.3,
    1.0,
    10.0,
    1e3,
    1e6,
    1e12,
)
"""Learning rates the keys step through: sensible ones, then absurd ones (to see a run
blow up)."""


class Task(Protocol):
    """What the compute path hands a long function: a cancel flag and a progress channel."""

    @property
    def cancelled(self) -> bool: ...

    def report(self, fraction: float, value: Any = None) -> None: ...


class NullTask:
    """A task that is never cancelled and drops reports (scripts and tests)."""

    cancelled = False

    def report(self, fraction: float, value: Any = None) -> None:
        pass


# -- memory budget ----------------------------------------------------------------------------


def training_bytes(model: Model, optimizer: str = "adamw", extra_copies: int = 0) -> int:
    """float32 bytes of weights + gradients + optimizer slots (+ frozen copies) for ``model``.

    AdamW keeps two slots (m, v), momentum one, SGD none. ``extra_copies``: further whole
    copies of the weights (DPO keeps a frozen reference).

    >>> from ..core.train.trainer import PRESETS
    >>> from ..core.model import init_random
    >>> m = init_random(PRESETS["tiny"])
    >>> training_bytes(m) == 4 * 4 * m.config.parameter_count()
    True
    """
    slots = {"adamw": 2, "adam": 2, "momentum": 1, "sgd": 0}[optimizer]
    return (2 + slots + extra_copies) * 4 * model.config.parameter_count()


def fits_budget(model: Model, budget: int | None = None, **kw: Any) -> bool:
    """Whether training ``model`` fits ``budget`` bytes (default :data:`TRAINING_MEMORY_BUDGET`)."""
    return training_bytes(model, **kw) <= (TRAINING_MEMORY_BUDGET if budget is None else budget)


def budget_note(model: Model, budget: int | None = None, **kw: Any) -> str:
    """Why a loaded model is too big to train here (one sentence)."""
    budget = TRAINING_MEMORY_BUDGET if budget is None else budget
    need = training_bytes(model, **kw)
    return (
        f"The loaded model ({model.config.parameter_count() / 1e6:,.3g}M parameters) would need "
        f"{need / 2**30:.1f} GiB for weights, gradients and optimizer state, over this "
        f"chapter's budget of {budget / 2**30:.1f} GiB, so this chapter uses anatomy-mini "
        "instead."
    )


# -- inputs -------------------------------------------------------------------------------------


def parse_lr(text: str) -> float:
    """A learning rate typed by a person; ValueError with a one-line message if unusable.

    >>> parse_lr(" 3e-4 ")
    0.0003
    >>> parse_lr("nan")
    Traceback (most recent call last):
    ...
    ValueError: the learning rate must be a finite number, got 'nan'
    """
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"the learning rate must be a finite number, got {text.strip()!r}")
    if value <= 0:
        raise ValueError(f"the learning rate must be above 0, got {value:g}")
    return value


def next_lr(lr: float, direction: int) -> float:
    """The next rung of :data:`LR_LADDER` up (+1) or down (-1) from ``lr``.

    >>> next_lr(1e-3, +1), next_lr(1e-3, -1), next_lr(1e12, +1)
    (0.003, 0.0003, 1000000000000.0)
    """
    ladder = LR_LADDER
    if direction > 0:
        higher = [r for r in ladder if r > lr * (1 + 1e-9)]
        return higher[0] if higher else ladder[-1]
    lower = [r for r in ladder if r < lr * (1 - 1e-9)]
    return lower[-1] if lower else ladder[0]


def text_tokens(text: str, encoding, separator: int | None) -> np.ndarray:
    """The person's text as a training stream: ``sep text sep`` when there is a separator
    token (as the training corpus had ``<|endoftext|>`` around every story)."""
    ids = encoding.encode_ordinary(text)
    body = [separator, *ids, separator] if separator is not None else ids
    return np.asarray(body, dtype=np.int32)


def separator_token(model: Model, encoding) -> int | None:
    """The story separator: the encoding's end-of-text token, else the config's eos."""
    sep = getattr(encoding, "eot_token", None)
    if sep is None:
        sep = model.config.eos_token_id
    return int(sep) if sep is not None and 0 <= int(sep) < model.config.vocab_size else None


@dataclass(frozen=True)
class LivePlan:
    """What a live run will do, decided before it starts (cheap; shown at once)."""

    tokens: np.ndarray  # [n] the text as a training stream
    window: int
    batch_size: int
    steps: int
    lr: float
    note: str
    """How the text is used (e.g. shorter than a window: one window, repeated)."""

    @property
    def text_tokens(self) -> int:
        return int(self.tokens.size)


def plan_live_run(
    model: Model, text: str, encoding, steps: int = DEFAULT_STEPS, lr: float = DEFAULT_LR
) -> LivePlan:
    """Check the text and settings and choose the window. ValueError for unusable input."""
    if not text.strip():
        raise ValueError("There is no text to train on: type a sentence or two first.")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate must be a finite number above 0, got {lr}")
    tokens = text_tokens(text, encoding, separator_token(model, encoding))
    if tokens.size < 2:
        raise ValueError("The text is too short: it needs at least two tokens.")
    longest = min(MAX_WINDOW, model.config.max_position_embeddings)
    if tokens.size - 1 <= longest:
        window = int(tokens.size - 1)
        note = (
            f"The text is {tokens.size} tokens (with the separators), shorter than a "
            f"{longest}-token window: every step trains on all of it, so the model can "
            "learn it by heart."
        )
    else:
        window = longest
        note = (
            f"The text is {tokens.size:,} tokens: every step trains on {BATCH} random "
            f"windows of {window} tokens from it."
        )
    batch = 1 if window == tokens.size - 1 else BATCH  # one window: copies add nothing
    return LivePlan(tokens, window, batch, int(steps), float(lr), note)


# -- held-out text and completions ----------------------------------------------------------------


def held_out_batches(
    val_tokens: np.ndarray, max_position: int, windows: int = VAL_WINDOWS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A fixed set of ``windows`` full windows spread over the held-out stream, batched."""
    length = min(VAL_WINDOW, max_position)
    every = eval_windows(np.asarray(val_tokens), length)
    return batch_windows(spread_subset(every, windows), windows)


def greedy_completion(
    model: Model, prompt_ids: Sequence[int], encoding, n: int = COMPLETION_TOKENS
) -> str:
    """The model's greedy continuation of ``prompt_ids`` (stops early at end-of-text)."""
    window = model.config.max_position_embeddings
    ids = list(prompt_ids)[-(window - 1) :] or [encoding.eot_token]
    gen = Generation(model, ids, settings=SamplingSettings(temperature=0.0), encoding=encoding)
    gen.generate(min(n, gen.room))
    return gen.text


# -- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveStep:
    """One step of a live run. ``train_loss`` is what the trainer reports: the loss of the
    step's batch, before its update. ``text_loss`` and ``val_loss`` are measured after the
    update, on fixed windows of the person's text and of the held-out stories."""

    step: int
    train_loss: float
    text_loss: float
    val_loss: float
    lr: float
    grad_norm: float


@dataclass
class LiveRun:
    """A live run so far (progress reports carry a snapshot; the result carries the end)."""

    plan: LivePlan
    val_before: float
    completion_before: str
    steps: list[LiveStep] = field(default_factory=list)
    completion_after: str | None = None
    status: str = "running"
    """``running``, ``done``, ``blew up``."""
    message: str = ""
    model: Model | None = None
    """The trained copy (None after a blow-up: the copy was thrown away)."""
    cue: str = ""
    """The start of the text whose greedy completion is shown before and after."""
    model_note: str = ""
    """Why anatomy-mini was trained instead of the loaded model ("" when it was the loaded one)."""
    text_before: float = math.nan
    """Loss on the text's windows before any step."""

    @property
    def train_losses(self) -> list[float]:
        return [s.train_loss for s in self.steps]

    @property
    def text_losses(self) -> list[float]:
        return [s.text_loss for s in self.steps]

    @property
    def val_losses(self) -> list[float]:
        return [s.val_loss for s in self.steps]

    def snapshot(self) -> LiveRun:
        """A copy safe to hand to another thread (the list is copied)."""
        return replace(self, steps=list(self.steps))


def text_windows(plan: LivePlan) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to :data:`VAL_WINDOWS` training windows spread over the text, for measuring the
    loss on it (all of it when it fits one window)."""
    every = eval_windows(plan.tokens, plan.window)
    return batch_windows(spread_subset(every, VAL_WINDOWS), VAL_WINDOWS)


def make_trainer(model: Model, plan: LivePlan) -> Trainer:
    """The core trainer on a copy of ``model``: AdamW at a constant learning rate, no
    dropout (so a run is repeatable), gradients clipped to norm 1, nothing on disk."""
    settings = TrainSettings(
        steps=plan.steps,
        batch_size=plan.batch_size,
        context=plan.window,
        lr=plan.lr,
        min_lr=plan.lr,  # cosine from lr to lr: constant
        warmup=0,
        grad_clip=1.0,
        dropout=0.0,
        optimizer=OptimizerSettings(name="adamw"),
        eval_every=0,
        seed=0,
    )
    corpus = Corpus(
        tokens=plan.tokens,
        path="<your text>",
        n_stories=1,
        n_bytes=int(plan.tokens.nbytes),
        sha256=hashlib.sha256(plan.tokens.tobytes()).hexdigest(),
    )
    try:
        return Trainer.create(model.config, settings, corpus, None, None, start_from=model)
    except TrainError as exc:
        raise ValueError(str(exc)) from None


def weights_finite(params: dict[str, np.ndarray]) -> bool:
    """True when no weight is NaN or infinite (one reduction per array)."""
    return all(np.isfinite(np.sum(p, dtype=np.float64)) for p in params.values())


def live_train(
    model: Model,
    plan: LivePlan,
    encoding,
    prompt_ids: Sequence[int],
    val_batches: list[tuple[np.ndarray, np.ndarray]],
    task: Task | None = None,
    on_step: Callable[[Trainer], None] | None = None,
    model_note: str = "",
) -> LiveRun:
    """Train a copy of ``model`` for ``plan.steps`` steps; return the run.

    Before the first step: the held-out loss and the greedy completion of ``prompt_ids``.
    After every step: ``task.report(fraction, snapshot)``; the loop stops between steps
    once ``task.cancelled`` (the caller then drops the result). A NaN or infinite loss,
    gradient or weight stops the run: the copy is discarded (status ``blew up``). After
    the last step: the completion again. ``on_step`` is a test hook.
    """
    task = task or NullTask()
    trainer = make_trainer(model, plan)
    text_batches = text_windows(plan)
    val_before, _ = trainer.evaluate(val_batches) if val_batches else (math.nan, 0)
    run = LiveRun(plan, val_before, greedy_completion(trainer.model, prompt_ids, encoding))
    run.text_before, _ = trainer.evaluate(text_batches)
    run.cue = encoding.decode(list(prompt_ids))
    run.model_note = model_note
    task.report(0.0, run.snapshot())
    for i in range(plan.steps):
        if task.cancelled:
            run.status = "cancelled"
            return run
        try:
            with np.errstate(all="ignore"):  # a blow-up is detected below, not warned about
                loss, lr, norm = trainer.train_step()
        except NonFiniteLoss:  # the trainer refused the update: the loss or gradient broke
            loss, lr, norm = math.nan, trainer.settings.lr_for(i), math.nan
        if on_step is not None:
            on_step(trainer)
        bad = [
            what
            for what, ok in (
                ("loss", math.isfinite(loss)),
                ("gradient", math.isfinite(norm)),
                ("weights", weights_finite(trainer.params)),
            )
            if not ok
        ]
        if bad:
            run.status = "blew up"
            run.message = (
                f"Step {i + 1} at learning rate {lr:g} made the {' and '.join(bad)} "
                "NaN or infinite. The broken "
                "copy was thrown away; the loaded weights are untouched. Lower the "
                "learning rate and train again."
            )
            run.model = None
            task.report(1.0, run.snapshot())
            return run
        if task.cancelled:
            run.status = "cancelled"
            return run
        with np.errstate(all="ignore"):
            val, _ = trainer.evaluate(val_batches) if val_batches else (math.nan, 0)
            text, _ = trainer.evaluate(text_batches)
        run.steps.append(
            LiveStep(i + 1, float(loss), float(text), float(val), float(lr), float(norm))
        )
        task.report((i + 1) / plan.steps, run.snapshot())
        time.sleep(YIELD_SECONDS)  # let the UI thread take the GIL between steps
    run.completion_after = greedy_completion(trainer.model, prompt_ids, encoding)
    run.status = "done"
    run.model = trainer.model
    return run


# -- what chapter 12's worker runs ----------------------------------------------------------------


@dataclass(frozen=True)
class ChosenModel:
    """The model a chapter trains, its encoding, and why (empty when it is the loaded one)."""

    model: Model
    encoding: Any
    note: str


def choose_model(
    loaded: Model | None, encoding, budget: int | None = None, **kw: Any
) -> ChosenModel:
    """The loaded model when its training memory fits ``budget``, else anatomy-mini (read
    from the package, with its own vocabulary) and a sentence saying why."""
    if loaded is not None and fits_budget(loaded, budget, **kw):
        if encoding is None:
            raise ValueError("The tokenizer is not loaded yet.")
        return ChosenModel(loaded, encoding, "")
    from ..core.model import default_model_dir, load_model
    from ..core.tokenizers import model_encoding

    note = budget_note(loaded, budget, **kw) if loaded is not None else "No model is loaded."
    return ChosenModel(load_model(default_model_dir()), model_encoding(), note)


def held_out_tokens(encoding) -> np.ndarray:
    """The shipped held-out stories in ``encoding``, stories separated by end-of-text when
    the encoding has that token (as in training), else simply joined."""
    from ..core.evaluate import eval_tokens, load_eval_stories

    try:
        return eval_tokens(encoding)
    except (KeyError, ValueError):
        return np.asarray(encoding.encode_ordinary("\n\n".join(load_eval_stories())))


def cue_tokens(ids: Sequence[int], pieces: Sequence[str] | None = None) -> list[int]:
    """The start of the training text that the completion continues: about half of it, at
    most 8 tokens, at least 1, cut before a token that starts a word when ``pieces`` (each
    token's text) are given and such a cut exists.

    >>> cue_tokens(list(range(12))), cue_tokens([5])
    ([0, 1, 2, 3, 4, 5], [5])
    >>> cue_tokens([1, 2, 3, 4, 5, 6], ["Max", " the", " c", "at", " s", "ang"])
    [1, 2]
    """
    n = max(1, min(8, len(ids) // 2))
    if pieces is not None:
        starts = [k for k in range(1, n + 1) if k < len(pieces) and pieces[k][:1] in " \n"]
        n = starts[-1] if starts else n
    return list(ids[:n])


def run_live_training(
    loaded: Model | None, encoding, text: str, steps: int, lr: float, task: Task | None = None
) -> LiveRun:
    """Chapter 12's whole live run, from the session's inputs (pure; for a worker)."""
    chosen = choose_model(loaded, encoding)
    plan = plan_live_run(chosen.model, text, chosen.encoding, steps, lr)
    val = held_out_batches(
        held_out_tokens(chosen.encoding), chosen.model.config.max_position_embeddings
    )
    ids = chosen.encoding.encode_ordinary(text)
    pieces = [chosen.encoding.decode([t]) for t in ids]
    cue = cue_tokens(ids, pieces)
    return live_train(chosen.model, plan, chosen.encoding, cue, val, task,
                      model_note=chosen.note)  # fmt: skip
