"""``llm-anatomy generate`` on a tiny seeded random model saved to a temporary directory."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from llm_anatomy_tui.cli import main
from llm_anatomy_tui.commands import generate as generate_cmd
from llm_anatomy_tui.core.generation import Generation
from llm_anatomy_tui.core.model import save_model
from llm_anatomy_tui.core.sampling import SamplingSettings
from llm_anatomy_tui.core.tokenizers import load_encoding


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("models") / "tiny"
    save_model(tiny_model, path)
    return str(path)


def run_cli(capsys, *args, stdin: bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = main(["generate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_streams_the_same_text_as_the_core(capsys, model_dir, tiny_model):
    code, out, err = run_cli(capsys, "Once upon a time", "--model", model_dir, "-n", "15",
                             "--temperature", "0.8", "--top-k", "50", "--seed", "3")  # fmt: skip
    assert code == 0 and err == ""
    enc = load_encoding("model")
    gen = Generation.from_text(tiny_model, "Once upon a time", enc, seed=3, max_new_tokens=15,
                               settings=SamplingSettings(temperature=0.8, top_k=50))  # fmt: skip
    gen.generate(15)
    assert out == gen.text + "\n"


def test_same_seed_same_text_and_cache_off_agrees(capsys, model_dir):
    args = ("Hello there", "--model", model_dir, "-n", "12", "--seed", "9")
    a = run_cli(capsys, *args)[1]
    b = run_cli(capsys, *args)[1]
    c = run_cli(capsys, *args, "--no-cache")[1]
    d = run_cli(capsys, "Hello there", "--model", model_dir, "-n", "12", "--seed", "10")[1]
    assert a == b == c
    assert a != d


def test_json_one_record_per_step_then_an_end_record(capsys, model_dir):
    code, out, _ = run_cli(capsys, "The cat", "--model", model_dir, "-n", "6", "--json",
                           "--alternatives", "3", "--temperature", "0")  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    steps, end = lines[:-1], lines[-1]
    assert len(steps) == 6 and end["type"] == "end" and end["new_tokens"] == 6
    for i, rec in enumerate(steps):
        assert rec["type"] == "step" and rec["step"] == i
        assert len(rec["top"]) == 3
        assert rec["token"] == rec["top"][0]["token"]  # greedy takes the most likely token
        assert rec["prob"] == 1.0 and rec["u"] is None
        assert 0 < rec["model_prob"] <= 1
        assert bytes.fromhex(rec["bytes"]).decode("utf-8", "replace") == rec["text"]
    assert steps[-1]["stop"] == "max_tokens" and end["stop"] == "max_tokens"
    text = run_cli(capsys, "The cat", "--model", model_dir, "-n", "6", "--temperature", "0")[1]
    assert text == end["text"] + "\n"


def test_stop_sequence_cuts_the_output_exactly(capsys, model_dir):
    base = run_cli(capsys, "A story", "--model", model_dir, "-n", "30", "--seed", "1")[1][:-1]
    stop = base[len(base) // 2 : len(base) // 2 + 3]
    assert stop and stop in base
    code, out, _ = run_cli(capsys, "A story", "--model", model_dir, "-n", "30", "--seed", "1",
                           "--stop", stop)  # fmt: skip
    assert code == 0
    assert out == base[: base.find(stop)] + "\n"


def test_prompt_from_stdin(capsys, model_dir, monkeypatch):
    want = run_cli(capsys, "Once upon a time", "--model", model_dir, "-n", "5")[1]
    got = run_cli(capsys, "-", "--model", model_dir, "-n", "5", stdin=b"Once upon a time\n",
                  monkeypatch=monkeypatch)  # fmt: skip
    assert got[0] == 0 and got[1] == want


def test_context_full_stops_with_a_note(capsys, model_dir, tiny_model):
    prompt = " word" * 60  # 60 tokens of a 64-token window
    code, out, err = run_cli(capsys, prompt, "--model", model_dir, "-n", "50")
    assert code == 0
    assert err.strip() == (
        "llm-anatomy: note: stopped after 4 tokens: the context window is full (64 tokens)"
    )


# -- bad input: one line on stderr, exit status 2 ---------------------------------------------


def _damage(model_dir, tmp_path, how):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    weights = bad / "model.safetensors"
    if how == "corrupt":
        weights.write_bytes(weights.read_bytes()[:200])
    elif how == "garbage":
        weights.write_bytes(b"this is not a safetensors file")
    elif how == "nan":
        from safetensors.numpy import load_file, save_file

        tensors = dict(load_file(str(weights)))
        tensors["model.layers.0.mlp.down_proj.weight"][0, 0] = np.nan
        save_file(tensors, str(weights))
    elif how == "vocab":  # a valid model, but not for this tokenizer
        from llm_anatomy_tui.core.config import LlamaConfig
        from llm_anatomy_tui.core.model import init_random

        save_model(init_random(LlamaConfig(100, 16, 32, 1, 2, 1, 32)), bad)
    return str(bad)


@pytest.mark.parametrize(
    "args, message",
    [
        (["", "--model", "{m}"], "the prompt is empty"),
        (["hi", "--model", "{m}", "--max-tokens", "0"], "--max-tokens must be at least 1"),
        (["hi", "--model", "{m}", "--max-tokens", "-3"], "--max-tokens must be at least 1"),
        (["word " * 100, "--model", "{m}"], "context window is 64 tokens"),
        (["hi", "--model", "/nonexistent/model"], "model directory not found: /nonexistent/model"),
        (["hi", "--model", "{m}", "--temperature", "-1"], "temperature must be 0"),
        (["hi", "--model", "{m}", "--top-p", "2"], "top-p must be between 0 and 1"),
        (["hi", "--model", "{m}", "--top-k", "-1"], "top-k must be"),
        (["hi", "--model", "{m}", "--min-p", "nan"], "min-p must be finite"),
        (["hi", "--model", "{m}", "--seed", "-1"], "--seed must be"),
        (["hi", "--model", "{m}", "--stop", ""], "stop sequences must be non-empty"),
        (["hi", "--model", "{m}", "--top-k", "abc"], "invalid int value"),
        (["hi", "--model", "{corrupt}"], "model.safetensors"),
        (["hi", "--model", "{garbage}"], "not a valid safetensors file"),
        (["hi", "--model", "{nan}"], "model.layers.0.mlp.down_proj.weight contains NaN"),
        (
            ["hi", "--model", "{vocab}"],
            "its vocabulary (100 tokens) is not the built-in one (8,193)",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, model_dir, tmp_path, args, message):
    fill = {"m": model_dir}
    for how in ("corrupt", "garbage", "nan", "vocab"):
        if any("{" + how + "}" in a for a in args):
            fill[how] = _damage(model_dir, tmp_path, how)
    args = [a.format(**fill) for a in args]
    try:
        code = main(["generate", *args])
    except SystemExit as exc:  # argparse's own errors (e.g. a non-number) exit directly
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_invalid_utf8_on_stdin(capsys, model_dir, monkeypatch):
    code, out, err = run_cli(capsys, "-", "--model", model_dir, stdin=b"ok \xff\xfe",
                             monkeypatch=monkeypatch)  # fmt: skip
    assert (
        code == 2
        and err == "llm-anatomy: error: stdin is not valid UTF-8 (byte 0xff at offset 3)\n"
    )


def test_missing_default_model_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(generate_cmd, "default_model_dir", lambda: tmp_path / "anatomy-mini")
    code, out, err = run_cli(capsys, "hi")
    assert code == 2
    assert err == (
        f"llm-anatomy: error: the shipped model is missing from {tmp_path / 'anatomy-mini'}: "
        "reinstall llm-anatomy (pip install --force-reinstall llm-anatomy), "
        "or pass --model DIR to use another model\n"
    )
