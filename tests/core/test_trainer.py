"""The trainer and its data: corpus reading, windows, loss going down, checkpoints, exact
resume after an interruption, and the compact history written with a finished model."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from llm_anatomy_tui.core.model import forward, load_model
from llm_anatomy_tui.core.tokenizers import MODEL_EOT_ID, model_encoding
from llm_anatomy_tui.core.train.data import (
    CorpusError,
    batch_windows,
    corpus_from_text,
    eval_windows,
    hold_out,
    load_corpus,
    read_text,
    sample_batch,
    split_stories,
    spread_subset,
    tokenize_stories,
)
from llm_anatomy_tui.core.train.trainer import (
    HISTORY_FILE,
    PRESETS,
    Trainer,
    TrainError,
    TrainSettings,
    checkpoint_dir,
    compact_history,
    resolve_config,
    steps_for_minutes,
)

NAMES = ["Lily", "Tom", "Sam", "Mia", "Ben", "Anna"]
THINGS = ["ball", "cat", "kite", "cake", "tree", "boat"]
FEELINGS = ["happy", "sad", "tired", "excited"]


def toy_stories(n: int, seed: int) -> str:
    """A small TinyStories-like corpus in the same file format, generated from templates."""
    rng = np.random.default_rng(seed)
    stories = []
    for _ in range(n):
        name, thing, feel = rng.choice(NAMES), rng.choice(THINGS), rng.choice(FEELINGS)
        stories.append(
            f"Once upon a time, there was a little girl named {name}. {name} had a red {thing}.\n"
            f"One day, {name} lost the {thing}. {name} was {feel}. Then {name} found the "
            f"{thing} under the bed. {name} smiled and played with the {thing} all day."
        )
    return "".join(s + "\n<|endoftext|>\n" for s in stories)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    train, val = d / "train.txt.gz", d / "val.txt"
    train.write_bytes(gzip.compress(toy_stories(120, 0).encode()))
    val.write_text(toy_stories(20, 1), encoding="utf-8")
    return load_corpus(train), load_corpus(val)


SMALL = dict(batch_size=4, context=32, lr=3e-3, warmup=5, eval_every=10, eval_windows=8)


def run_all(trainer: Trainer) -> list:
    return list(trainer.run())


# -- data -------------------------------------------------------------------------------------


def test_read_text_plain_and_gzip(tmp_path):
    (tmp_path / "a.txt").write_text("Hi.\n<|endoftext|>\n", encoding="utf-8")
    (tmp_path / "a.gz").write_bytes(gzip.compress(b"Hi.\n<|endoftext|>\n"))
    assert read_text(tmp_path / "a.txt") == read_text(tmp_path / "a.gz")


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "not found"),
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"caf\xe9 au lait", "not UTF-8"),
        (b"\x1f\x8b\x08\x00broken", "cannot read"),
    ],
)
def test_read_text_errors(tmp_path, content, match):
    path = tmp_path / "c.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=match):
        read_text(path)


def test_corpus_too_small_for_a_window(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("One tiny story.", encoding="utf-8")
    with pytest.raises(CorpusError, match="too small"):
        load_corpus(path, min_tokens=257)


def test_stories_and_tokens():
    text = "A cat sat.\n<|endoftext|>\n  A dog ran. \n<|endoftext|>\n\n"
    assert split_stories(text) == ["A cat sat.", "A dog ran."]
    tokens = tokenize_stories(split_stories(text))
    enc = model_encoding()
    expected = [MODEL_EOT_ID, *enc.encode("A cat sat."), MODEL_EOT_ID]
    expected += [*enc.encode("A dog ran."), MODEL_EOT_ID]
    assert tokens.tolist() == expected
    assert tokens.dtype == np.int32 and tokens.max() < 8193


def test_sample_batch_targets_are_inputs_shifted():
    tokens = np.arange(100, dtype=np.int32)
    x, y = sample_batch(tokens, np.random.default_rng(0), 5, 8)
    assert x.shape == y.shape == (5, 8)
    assert np.array_equal(x[:, 1:], y[:, :-1]) and np.array_equal(y, x + 1)
    assert y.max() <= 99


def test_eval_windows_score_every_token_once():
    tokens = np.arange(23)
    windows = eval_windows(tokens, 5)
    targets = np.concatenate([y for _, y in windows])
    assert targets.tolist() == list(range(1, 23))
    batches = batch_windows(windows, 3)
    assert [b[0].shape for b in batches] == [(3, 5), (1, 5), (1, 2)]
    subset = spread_subset(windows, 2)
    assert len(subset) == 2 and subset[0][0][0] == 0 and all(w[0].size == 5 for w in subset)


def test_hold_out_cuts_at_a_story_boundary(corpora):
    train, _ = corpora
    a, b = hold_out(train, 0.1)
    assert a.tokens[-1] == MODEL_EOT_ID and b.tokens[0] == MODEL_EOT_ID
    assert a.tokens.size + b.tokens.size == train.tokens.size + 1  # they share one <eot>


# -- configs and settings --------------------------------------------------------------------


def test_presets_and_config_files(tmp_path):
    mini = resolve_config("anatomy-mini")
    assert (mini.hidden_size, mini.num_hidden_layers, mini.intermediate_size) == (128, 4, 384)
    assert (mini.num_attention_heads, mini.num_key_value_heads) == (4, 2)
    assert mini.vocab_size == 8193 and mini.tie_word_embeddings
    PRESETS["tiny"].save(tmp_path / "config.json")
    assert resolve_config(str(tmp_path)).to_dict() == PRESETS["tiny"].to_dict()
    with pytest.raises(TrainError, match="unknown config"):
        resolve_config("no-such-model")


def test_minutes_budget_leaves_room_for_evaluation():
    s = TrainSettings(steps=1, batch_size=16, eval_every=100, eval_windows=128)
    steps = steps_for_minutes(10, 0.5, s, 600_000, 240_000, 256)
    assert 900 < steps < 1200  # 1,200 steps would use the whole 10 minutes on steps alone


# -- training ------------------------------------------------------------------------------------


def test_loss_goes_down(corpora, tmp_path):
    train, val = corpora
    settings = TrainSettings(steps=60, seed=1, **SMALL)
    trainer = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path)
    events = run_all(trainer)
    evals = trainer.state.history["eval"]
    assert evals[0]["step"] == 0 and evals[0]["val_loss"] == pytest.approx(np.log(8193), abs=0.05)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 4.0
    losses = trainer.state.history["train"]["loss"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 3.0
    assert [e.kind for e in events].count("step") == 60
    assert events[-1].kind == "done" and events[-2].kind == "final"
    assert trainer.state.final["val_loss"] < 5.0


def test_interrupted_run_resumes_exactly(corpora, tmp_path):
    """Kill a run between checkpoints; resuming replays from the last checkpoint and ends
    with the same step count, loss history and final loss as a run never interrupted."""
    train, val = corpora
    settings = TrainSettings(steps=14, seed=5, dropout=0.1, checkpoint_every=4, **SMALL)

    whole = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path / "whole")
    run_all(whole)

    broken = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path / "broken")
    for event in broken.run():
        if event.kind == "step" and event.step == 10:
            break  # "killed": steps 9 and 10 are lost, the checkpoint holds step 8
    resumed = Trainer.resume(tmp_path / "broken", train, val)
    assert resumed.state.step == 8
    assert len(resumed.state.history["train"]["loss"]) == 8
    run_all(resumed)

    a, b = whole.state, resumed.state
    assert a.step == b.step == 14 and a.tokens_seen == b.tokens_seen
    np.testing.assert_allclose(a.history["train"]["loss"], b.history["train"]["loss"], rtol=1e-6)
    assert [e["step"] for e in a.history["eval"]] == [e["step"] for e in b.history["eval"]]
    np.testing.assert_allclose(
        [e["val_loss"] for e in a.history["eval"]], [e["val_loss"] for e in b.history["eval"]]
    )
    assert a.final["val_loss"] == pytest.approx(b.final["val_loss"], rel=1e-6)
    for name, arr in whole.params.items():
        np.testing.assert_allclose(arr, resumed.params[name], rtol=1e-5, atol=1e-7)


def test_stop_after_then_resume(corpora, tmp_path):
    train, val = corpora
    settings = TrainSettings(steps=12, seed=2, **SMALL)
    first = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path)
    events = list(first.run(stop_after=5))
    assert events[-1].kind == "stopped" and events[-1].step == 5
    assert not (tmp_path / HISTORY_FILE).exists()  # not finished, nothing exported yet
    second = Trainer.resume(tmp_path, train, val)
    assert second.state.step == 5
    run_all(second)
    assert second.state.step == 12


def test_checkpoint_is_a_loadable_model_and_resume_checks_the_data(corpora, tmp_path):
    train, val = corpora
    settings = TrainSettings(steps=3, seed=0, **SMALL)
    trainer = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path)
    run_all(trainer)
    model = load_model(checkpoint_dir(tmp_path))
    exported = load_model(tmp_path)
    tokens = train.tokens[:10]
    np.testing.assert_array_equal(forward(model, tokens), forward(exported, tokens))
    np.testing.assert_allclose(forward(exported, tokens), forward(trainer.model, tokens), rtol=1e-6)
    with pytest.raises(TrainError, match="not the text this run was trained on"):
        Trainer.resume(tmp_path, val, val)
    with pytest.raises(TrainError, match="no checkpoint"):
        Trainer.resume(tmp_path / "empty", train, val)


def test_exported_history_is_compact_and_complete(corpora, tmp_path):
    train, val = corpora
    settings = TrainSettings(steps=25, seed=0, **SMALL)
    trainer = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path)
    run_all(trainer)
    history = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert history["format"] == "llm-anatomy training history v1"
    run = history["run"]
    assert run["steps"] == 25 and run["tokens_seen"] == 25 * 4 * 32
    assert run["machine"]["cores"] and run["wall_seconds"] > 0
    assert [e["step"] for e in history["eval"]] == [0, 10, 20, 25]
    assert history["final"]["val_loss"] > 0 and history["final"]["train_loss"] > 0

    small = compact_history(trainer.state, trainer.meta, max_points=10)
    assert small["train"]["every"] == 3
    assert small["train"]["step"][-1] == 25 and len(small["train"]["step"]) == 9
    losses = trainer.state.history["train"]["loss"]
    assert small["train"]["loss"][0] == pytest.approx(np.mean(losses[:3]), abs=1e-4)


def test_run_without_an_output_directory_writes_nothing(corpora, tmp_path, monkeypatch):
    """What a live demonstration (chapter 12) uses: events only, no files."""
    monkeypatch.chdir(tmp_path)
    train, val = corpora
    settings = TrainSettings(steps=4, seed=0, checkpoint_every=2, **SMALL)
    trainer = Trainer.create(PRESETS["tiny"], settings, train, val, None)
    events = list(trainer.run())
    assert events[-1].kind == "done" and trainer.state.final is not None
    assert "checkpoint" not in [e.kind for e in events]
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_checkpoint_is_reported_not_a_traceback(corpora, tmp_path):
    train, val = corpora
    settings = TrainSettings(steps=4, seed=0, **SMALL)
    trainer = Trainer.create(PRESETS["tiny"], settings, train, val, tmp_path)
    list(trainer.run(stop_after=2))
    (tmp_path / "checkpoint" / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(TrainError, match="cannot read checkpoint"):
        Trainer.resume(tmp_path, train, val)


def test_fine_tune_a_model_on_a_few_sentences_in_memory(tmp_path, monkeypatch):
    """Chapter 12's live training: start from a trained model, train on the user's text,
    no validation file, nothing written; the original model is left untouched."""
    monkeypatch.chdir(tmp_path)
    base = Trainer.create(
        PRESETS["tiny"], TrainSettings(steps=1, **SMALL), corpus_from_text(toy_stories(30, 4)),
        None, None,
    )  # fmt: skip
    original = {k: v.copy() for k, v in base.model.tensors().items()}
    text = corpus_from_text("The purple robot sang a song about the moon. " * 12, "user text")
    settings = TrainSettings(steps=25, batch_size=2, context=16, lr=3e-3, warmup=2, dropout=0.0)
    live = Trainer.create(PRESETS["tiny"], settings, text, None, None, start_from=base.model)
    events = list(live.run())
    assert [e.kind for e in events].count("eval") == 0
    losses = live.state.history["train"]["loss"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0
    assert "val_loss" not in live.state.final and live.state.final["train_loss"] < losses[0]
    for name, arr in base.model.tensors().items():
        np.testing.assert_array_equal(arr, original[name])
    assert list(tmp_path.iterdir()) == []
