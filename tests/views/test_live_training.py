"""Chapter 12's live run: it trains a copy (the loaded weights never change), the
held-out loss it shows is the inference model's loss on those windows, a blow-up is
caught, cancelling stops between steps, and training on one sentence overfits."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.evaluate import eval_tokens
from llm_anatomy_tui.core.model import default_model_dir, forward, init_random, load_model
from llm_anatomy_tui.core.tokenizers import model_encoding
from llm_anatomy_tui.core.train.data import corpus_from_text
from llm_anatomy_tui.views.live_training import (
    MAX_WINDOW,
    TRAINING_MEMORY_BUDGET,
    budget_note,
    fits_budget,
    held_out_batches,
    live_train,
    next_lr,
    parse_lr,
    plan_live_run,
    text_windows,
    training_bytes,
)
from llm_anatomy_tui.views.preference import dpo_steps, make_pair, score_pair, start_dpo

CONFIG = LlamaConfig(
    vocab_size=8193,
    hidden_size=24,
    intermediate_size=40,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=48,
    bos_token_id=8192,
    eos_token_id=8192,
)
SENTENCE = "The purple dragon Zorp ate the moon for breakfast."


@pytest.fixture(scope="module")
def enc():
    return model_encoding()


@pytest.fixture(scope="module")
def small():
    return init_random(CONFIG, seed=11, std=0.05)


@pytest.fixture(scope="module")
def val(enc):
    return held_out_batches(eval_tokens(enc, max_tokens=2000), CONFIG.max_position_embeddings)


def snapshot(model) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in model.tensors().items()}


def test_text_tokens_are_the_trainers_own_corpus_format(enc, small):
    plan = plan_live_run(small, SENTENCE, enc)
    assert plan.tokens.tolist() == corpus_from_text(SENTENCE).tokens.tolist()
    assert plan.window == plan.tokens.size - 1 and plan.batch_size == 1
    assert "shorter than" in plan.note


def test_long_text_uses_random_windows(enc, small):
    plan = plan_live_run(small, "Tom ran. " * 40, enc)
    assert plan.window == min(MAX_WINDOW, CONFIG.max_position_embeddings)
    assert plan.batch_size > 1 and "random windows" in plan.note


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_refused(enc, small, text):
    with pytest.raises(ValueError, match="no text"):
        plan_live_run(small, text, enc)


def test_parse_lr_and_ladder():
    assert parse_lr("1e-3") == 1e-3
    for bad in ("nan", "inf", "-1", "0", "fast"):
        with pytest.raises(ValueError):
            parse_lr(bad)
    assert next_lr(next_lr(1e-3, +1), -1) == 1e-3
    assert next_lr(2e-3, -1) == 1e-3 and next_lr(2e-3, +1) == 3e-3


def test_memory_budget_counts_weights_grads_and_adam(small):
    n = CONFIG.parameter_count()
    assert training_bytes(small) == 16 * n
    assert training_bytes(small, "sgd") == 8 * n
    assert training_bytes(small, extra_copies=1) == 20 * n
    assert fits_budget(small)
    assert not fits_budget(small, budget=16 * n - 1)
    assert "anatomy-mini" in budget_note(small, budget=1)
    assert TRAINING_MEMORY_BUDGET >= 16 * 1_836_288  # anatomy-mini itself always fits


def reference_val_loss(model, batches) -> float:
    """Mean next-token loss from the inference forward, window by window."""
    total, count = 0.0, 0
    for inputs, targets in batches:
        for x, y in zip(inputs, targets, strict=True):
            logits = forward(model, x.tolist()).astype(np.float64)
            z = logits - logits.max(axis=-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            total -= float(logp[np.arange(y.size), y].sum())
            count += y.size
    return total / count


def test_live_run_trains_a_copy_and_reports_true_held_out_loss(enc, small, val):
    before = snapshot(small)
    seen = []

    def check(trainer):
        seen.append(trainer.model)

    prompt = enc.encode_ordinary("The purple dragon")
    run = live_train(small, plan_live_run(small, SENTENCE, enc, steps=12, lr=3e-3), enc,
                     prompt, val, on_step=check)  # fmt: skip
    assert run.status == "done" and len(run.steps) == 12
    assert run.val_before == pytest.approx(reference_val_loss(small, val), rel=1e-4)
    assert run.steps[-1].val_loss == pytest.approx(reference_val_loss(run.model, val), rel=1e-4)
    assert run.train_losses[-1] < run.train_losses[0]
    # the loss on the text: before any step, the inference model's; after each update, the
    # next step's batch loss (one window, no dropout: the same computation)
    plan = run.plan
    assert run.text_before == pytest.approx(reference_val_loss(small, text_windows(plan)), rel=1e-4)
    assert run.train_losses[0] == pytest.approx(run.text_before, rel=1e-5)
    np.testing.assert_allclose(run.text_losses[:-1], run.train_losses[1:], rtol=1e-4, atol=1e-6)
    assert run.model is seen[0] and run.model is not small
    assert snapshot(small) == before  # the loaded weights never changed
    assert run.completion_after is not None


def test_absurd_learning_rate_is_caught_and_the_copy_dropped(enc, small, val):
    before = snapshot(small)
    run = live_train(small, plan_live_run(small, SENTENCE, enc, steps=20, lr=1e30), enc,
                     [1, 2], val)  # fmt: skip
    assert run.status == "blew up" and run.model is None
    assert "NaN or infinite" in run.message and "untouched" in run.message
    assert all(math.isfinite(s.train_loss) for s in run.steps)
    assert snapshot(small) == before


def test_cancel_takes_effect_within_one_step(enc, small, val):
    class Task:
        def __init__(self):
            self.reports = []
            self.cancelled = False

        def report(self, fraction, value=None):
            self.reports.append(value)
            if len(self.reports) == 4:  # start + 3 steps
                self.cancelled = True

    task = Task()
    run = live_train(small, plan_live_run(small, SENTENCE, enc, steps=30), enc, [1], val, task)
    assert run.status == "cancelled" and len(run.steps) == 3
    assert [len(r.steps) for r in task.reports] == [0, 1, 2, 3]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_sentence_overfits_anatomy_mini_and_shipped_weights_stay_byte_identical(enc):
    """The chapters' real subject: training on one sentence drives its loss towards 0
    while the held-out loss rises; DPO steps too. The shipped file and the loaded arrays
    are byte-identical afterwards."""
    path = default_model_dir() / "model.safetensors"
    digest = sha256(path)
    mini = load_model(default_model_dir())
    before = snapshot(mini)
    val = held_out_batches(eval_tokens(enc), mini.config.max_position_embeddings)
    prompt = enc.encode_ordinary("Once upon a time")
    run = live_train(mini, plan_live_run(mini, "Once upon a time, " + SENTENCE, enc, steps=20),
                     enc, prompt, val)  # fmt: skip
    assert run.train_losses[-1] < 0.5 * run.train_losses[0]
    assert run.steps[-1].val_loss > run.val_before  # overfitting, visible
    assert run.completion_after != run.completion_before
    pair = make_pair(mini, prompt, enc.encode_ordinary(" there was"),
                     enc.encode_ordinary(" a dog"), enc.eot_token)  # fmt: skip
    scores = score_pair(mini, pair, 0.1)
    dpo_steps(start_dpo(mini, scores), pair, scores, 0.1, n_steps=2)
    assert snapshot(mini) == before
    assert sha256(path) == digest


def test_a_model_over_the_budget_is_replaced_by_anatomy_mini(enc, small, monkeypatch):
    import llm_anatomy_tui.views.live_training as lt

    chosen = lt.choose_model(small, enc)
    assert chosen.model is small and chosen.note == ""
    monkeypatch.setattr(lt, "TRAINING_MEMORY_BUDGET", 1000)
    chosen = lt.choose_model(small, enc)
    assert chosen.model is not small and chosen.model.config.hidden_size == 128
    assert "uses anatomy-mini" in chosen.note and "budget of" in chosen.note
    run = lt.run_live_training(small, enc, SENTENCE, 2, 1e-3)
    assert run.model_note == chosen.note and run.model.config == chosen.model.config


def test_trained_copies_keep_what_is_not_a_weight(enc, val):
    """A loaded model's tokenizer, source and RoPE frequencies travel with its copies."""
    model = init_random(CONFIG, seed=12, std=0.05)
    sentinel = object()
    model.tokenizer = sentinel
    run = live_train(model, plan_live_run(model, SENTENCE, enc, steps=2), enc, [1, 2], val)
    assert run.model.tokenizer is sentinel
    assert np.array_equal(run.model.inv_freq, model.inv_freq)
    pair = make_pair(model, [5, 6], [7], [8], None)
    assert start_dpo(model, score_pair(model, pair, 0.1)).policy.tokenizer is sentinel
    model.tokenizer = None
