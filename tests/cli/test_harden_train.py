"""Runaway training (issue 15): NaN/inf hyperparameters refused, a NaN loss stops the run
keeping the last good checkpoint (exit 1), an unwritable --out and an impossible batch
refused before any work, each in one line."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
import test_train_cli
from test_train_cli import one_line_error, train_args

from llm_anatomy_tui.cli import main
from llm_anatomy_tui.core import limits
from llm_anatomy_tui.core.model import default_model_dir, load_model
from llm_anatomy_tui.core.train import trainer as trainer_mod
from llm_anatomy_tui.core.train.backward import loss_and_grads, parameters
from llm_anatomy_tui.core.train.optim import (
    OptimizerSettings,
    clip_by_global_norm,
    init_state,
    optimizer_step,
)

files = test_train_cli.files  # the small corpus fixture, shared


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--lr", "nan"), ("--lr", "inf"), ("--weight-decay", "nan"),
     ("--dropout", "nan"), ("--grad-clip", "inf"), ("--min-lr", "nan"), ("--minutes", "inf")],
)  # fmt: skip
def test_non_finite_hyperparameters_are_refused(capsys, files, tmp_path, flag, value) -> None:
    argv = train_args(files, tmp_path / "run", "--steps", "3", flag, value)
    if flag == "--minutes":
        argv.remove("--steps"), argv.remove("3")
    one_line_error(capsys, argv, "finite")
    assert not (tmp_path / "run").exists()


def test_absurd_learning_rate_is_refused(capsys, files, tmp_path) -> None:
    one_line_error(capsys, train_args(files, tmp_path / "run", "--steps", "3", "--lr", "1e9"),
                   "learning rate 1e+09")  # fmt: skip


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    capsys,
    files,
    tmp_path,
    monkeypatch,
) -> None:
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        loss, grads = loss_and_grads(*args, **kwargs)
        if calls["n"] == 4:  # step 4 diverges
            grads = {k: g * np.float32("nan") for k, g in grads.items()}
            return float("nan"), grads
        return loss, grads

    monkeypatch.setattr(trainer_mod, "loss_and_grads", poisoned)
    out = tmp_path / "run"
    code = main(train_args(files, out, "--steps", "8", "--checkpoint-every", "2"))
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "training stopped" in err and "step 4" in err, err
    assert "last good checkpoint (step 2)" in err and "Traceback" not in err
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2
    model = load_model(out / "checkpoint")
    assert all(np.isfinite(a).all() for a in model.tensors().values())
    assert not (out / "model.safetensors").exists()  # no NaN model exported


def test_unwritable_out_is_refused_before_any_work(capsys, files, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(capsys, train_args(files, blocker / "run", "--steps", "3"), "not a directory")
    one_line_error(
        capsys, train_args(files, "/proc/llm-anatomy-run", "--steps", "3"), "cannot be written"
    )


def test_impossible_batch_is_refused_with_the_numbers(capsys, files, tmp_path) -> None:
    argv = train_args(files, tmp_path / "run", "--steps", "3")
    argv[argv.index("--batch-size") + 1] = "1000000000"
    one_line_error(capsys, argv, "--batch-size 1,000,000,000 x --context 32 needs about")


@pytest.mark.parametrize(("batch", "window"), [(4, 128), (8, 256)])
def test_memory_estimate_is_close_to_the_measured_peak(batch: int, window: int) -> None:
    """The estimate behind the refusal, against tracemalloc's peak of a real step (the
    weights themselves are counted by hand: they were allocated before tracing)."""
    model = load_model(default_model_dir())
    cfg = model.config
    rng = np.random.default_rng(0)
    x = rng.integers(0, cfg.vocab_size, (batch, window))
    y = rng.integers(0, cfg.vocab_size, (batch, window))
    tracemalloc.start()
    try:
        params = parameters(model)
        state = init_state(OptimizerSettings(), params)
        loss, grads = loss_and_grads(model, x, y, 0.1, rng)
        grads, _ = clip_by_global_norm(grads, 1.0)
        optimizer_step(OptimizerSettings(), state, params, grads, 1e-3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    measured = peak + 4 * cfg.parameter_count()
    estimate = limits.train_step_bytes(cfg, batch, window)
    assert math.isfinite(loss)
    assert 0.7 < estimate / measured < 1.5, (estimate, measured)
