"""``--model PATH`` for the app, ``generate`` and ``tokenize``, and ``$LLM_ANATOMY_MODEL``,
with a tiny GGUF written by ``gguf``'s own writer (see tests/core/byom_helpers.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from byom_helpers import family_model, train_tokenizer, write_gguf  # noqa: E402

from llm_anatomy_tui.cli import main, needs_commands  # noqa: E402
from llm_anatomy_tui.core.model import KVCache, decode_token, forward  # noqa: E402


@pytest.fixture(scope="module")
def gguf_path(tmp_path_factory):
    tok = train_tokenizer(320)
    model = family_model("qwen2", tok.get_vocab_size(), seed=2)
    return write_gguf(model, tmp_path_factory.mktemp("m") / "tiny-qwen.gguf", tok, qtype="Q8_0")


def greedy(model, ids, n):
    cache = KVCache(model.config)
    logits = forward(model, ids, cache)[-1]
    out = []
    for _ in range(n):
        out.append(int(np.argmax(logits)))
        logits = decode_token(model, out[-1], cache)
    return out


def test_generate_with_a_gguf_streams_its_greedy_continuation(capsys, gguf_path):
    from llm_anatomy_tui.core.formats import load_model

    code = main(["generate", "Once upon a time", "--model", str(gguf_path), "-t", "0",
                 "-n", "8", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    steps = [json.loads(line) for line in out.splitlines()]
    model = load_model(gguf_path)
    ids = model.tokenizer.encode_ordinary("Once upon a time")
    want = greedy(model, ids, 8)
    got = [s["token"] for s in steps if s["type"] == "step"]
    assert got[: len(want)] == want[: len(got)] and got
    assert steps[-1]["prompt_tokens"] == len(ids)


def test_the_environment_variable_names_the_model(capsys, gguf_path, monkeypatch):
    monkeypatch.setenv("LLM_ANATOMY_MODEL", str(gguf_path))
    assert main(["generate", "hello", "-t", "0", "-n", "3", "--json"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["type"] == "end"


def test_tokenize_with_the_models_own_tokenizer(capsys, gguf_path):
    from llm_anatomy_tui.core.formats import load_tokenizer

    text = "Über 12 robots, 東京!"
    assert main(["tokenize", text, "--model", str(gguf_path), "--json"]) == 0
    out, _ = capsys.readouterr()
    got = json.loads(out)
    assert got["ids"] == load_tokenizer(gguf_path).encode_ordinary(text)
    assert (
        "".join(bytes.fromhex(p["bytes"]).decode("latin-1") for p in got["pieces"]).encode(
            "latin-1"
        )
        == text.encode()
    )
    assert main(["tokenize", text, "--model", str(gguf_path)]) == 0
    assert capsys.readouterr().out.startswith("tiny-qwen.gguf (")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "/nonexistent/m.gguf"], "model not found: /nonexistent/m.gguf"),
        (["generate", "hi", "--model", "/nonexistent/m.gguf"], "model file not found"),
        (["tokenize", "hi", "--model", "/nonexistent"], "model directory not found"),
    ],
)
def test_a_missing_model_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_model_files_are_one_line_errors(capsys, tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a gguf at all")
    assert main(["generate", "hi", "--model", str(bad)]) == 2
    assert "not a readable GGUF" in capsys.readouterr().err


def test_the_app_option_does_not_load_the_subcommands():
    assert needs_commands(["--model", "some.gguf", "--chapter", "1"]) is False
