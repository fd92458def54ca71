"""``llm-anatomy tokenize`` and the CLI's one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from llm_anatomy_tui import __version__
from llm_anatomy_tui.cli import main, needs_commands
from llm_anatomy_tui.core.tokenizers import load_encoding

SEED = (
    "If the human brain were so simple that we could understand it, "
    "we would be so simple that we couldn't."
)


def run(argv, capsys, stdin: bytes | None = None, monkeypatch=None):  # noqa: ANN001
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_must_show_seed_sentence_json():
    """The issue's must-show, through the installed entry point in a real process."""
    result = subprocess.run(
        [sys.executable, "-m", "llm_anatomy_tui.cli", "tokenize", SEED, "--json"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["encoding"] == "o200k_base"
    assert data["characters"] == 102
    assert data["tokens"] == 22 and len(data["ids"]) == 22
    assert data["ids"][:5] == [3335, 290, 5396, 12891, 1504]
    assert [p["id"] for p in data["pieces"]] == data["ids"]
    assert data["pieces"][1] == {"id": 290, "bytes": "20746865", "text": " the", "display": "·the"}
    assert data["chars_per_token"] == pytest.approx(102 / 22)


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base", "model"])
def test_each_encoding(encoding, capsys):
    code, out, _ = run(["tokenize", SEED, "--encoding", encoding, "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["ids"] == load_encoding(encoding).encode_ordinary(SEED)


def test_plain_output_lists_one_token_per_line(capsys):
    code, out, _ = run(["tokenize", "Hi 世\n"], capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("o200k_base (GPT-4o): 5 characters, ")
    ids = load_encoding("o200k_base").encode_ordinary("Hi 世\n")
    assert [int(line.split("\t")[0]) for line in lines[1:]] == ids
    assert lines[-1].endswith("⏎")


def test_byte_pieces_in_json(capsys):
    code, out, _ = run(["tokenize", "世界", "-e", "model", "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert data["pieces"][0]["text"] is None and data["pieces"][0]["display"] == "‹E4 B8›"
    assert bytes.fromhex("".join(p["bytes"] for p in data["pieces"])).decode() == "世界"


def test_stdin(capsys, monkeypatch):
    code, out, _ = run(["tokenize", "-", "--json"], capsys, SEED.encode(), monkeypatch)
    assert code == 0 and json.loads(out)["tokens"] == 22


def test_empty_text(capsys):
    code, out, _ = run(["tokenize", "", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["tokens"] == 0 and data["chars_per_token"] is None


def test_control_characters_are_shown_visibly(capsys):
    code, out, _ = run(["tokenize", "a\x00b\x1b[31m"], capsys)
    assert code == 0 and "\x1b" not in out and "\x00" not in out and "␛" in out


def test_invalid_utf8_on_stdin_is_one_line_exit_2(capsys, monkeypatch):
    code, out, err = run(["tokenize", "-"], capsys, b"ok \xff\xfe", monkeypatch)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "not valid UTF-8" in err and "offset 3" in err


def test_unknown_encoding_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["tokenize", "x", "--encoding", "p50k_base"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "p50k_base" in err


def test_unknown_chapter_is_one_line_exit_2(capsys):
    code, out, err = run(["--chapter", "99"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no chapter '99'" in err
    code, out, err = run(["--chapter", "nonsense"], capsys)
    assert code == 2 and "available: 0 (welcome), 1 (tokenization)" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and __version__ in capsys.readouterr().out


def test_plain_app_start_does_not_import_commands():
    assert not needs_commands([])
    assert not needs_commands(["--chapter", "1", "--prompt", "tokenize"])
    assert not needs_commands(["-c", "tokenization", "-p", "-"])
    assert needs_commands(["--help"]) and needs_commands(["tokenize", "x"])
    code = (
        "import sys; from llm_anatomy_tui.cli import build_parser, needs_commands; "
        "build_parser(needs_commands(['--chapter', '1'])); "
        "print('numpy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", "starting the app imports numpy before the first paint"
