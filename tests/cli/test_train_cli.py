"""``llm-anatomy train`` end to end on a tiny corpus: bad input is one line and exit 2 before
any work; training lowers the loss; a session stopped part-way and resumed ends with the
same step count and loss history as one uninterrupted session."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llm_anatomy_tui.cli import main
from llm_anatomy_tui.core.model import load_model

THINGS = ["ball", "cat", "kite", "cake", "tree", "boat", "hat", "dog"]


def toy_corpus(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = rng.choice(THINGS, size=2)
        out.append(
            f"Once upon a time, a boy had a {a}. He loved the {a} very much.\n"
            f"One day he saw a {b}. The {b} was big. He was happy and played all day."
        )
    return "".join(s + "\n<|endoftext|>\n" for s in out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_cli")
    (d / "train.txt").write_text(toy_corpus(80, 0), encoding="utf-8")
    (d / "val.txt").write_text(toy_corpus(15, 1), encoding="utf-8")
    return d


def train_args(files, out, *extra: str) -> list[str]:
    return [
        "train", "--corpus", str(files / "train.txt"), "--val", str(files / "val.txt"),
        "--out", str(out), "--config", "tiny", "--context", "32", "--batch-size", "4",
        "--eval-every", "10", "--eval-windows", "8", "--seed", "3", *extra,
    ]  # fmt: skip


def one_line_error(capsys, argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("llm-anatomy: error:"), err
    assert match in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "not found"),
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (b"Caf\xe9 and cr\xe8me.\n", "not UTF-8"),
        (b"A short story.\n<|endoftext|>\n", "too small"),
        (b"\x1f\x8b\x08\x00\x00\x00", "cannot read"),
    ],
)
def test_bad_corpus_is_one_line_before_any_work(tmp_path, capsys, files, content, match):
    corpus = tmp_path / "corpus.txt"
    if content is not None:
        corpus.write_bytes(content)
    out = tmp_path / "run"
    argv = train_args(files, out, "--steps", "5")
    argv[argv.index("--corpus") + 1] = str(corpus)
    one_line_error(capsys, argv, match)
    assert not out.exists()


def test_bad_validation_file(tmp_path, capsys, files):
    argv = train_args(files, tmp_path / "run", "--steps", "5")
    argv[argv.index("--val") + 1] = str(tmp_path / "missing.txt")
    one_line_error(capsys, argv, "--val")


def test_other_bad_arguments(tmp_path, capsys, files):
    out = tmp_path / "run"
    one_line_error(capsys, train_args(files, out), "--steps N or --minutes M")
    one_line_error(capsys, train_args(files, out, "--steps", "0"), "--steps must be positive")
    one_line_error(
        capsys, train_args(files, out, "--steps", "3", "--config", "huge"), "unknown config"
    )
    one_line_error(capsys, train_args(files, out, "--steps", "3", "--dropout", "1.5"), "dropout")
    one_line_error(capsys, train_args(files, out, "--resume"), "nothing to resume")
    one_line_error(capsys, train_args(files, out, "--steps", "3", "--context", "999"), "exceeds")


def test_train_lowers_the_loss_and_writes_a_model(tmp_path, capsys, files):
    out = tmp_path / "run"
    assert main(train_args(files, out, "--steps", "40")) == 0
    stdout = capsys.readouterr().out
    assert "\x1b[" not in stdout  # not a terminal: plain lines, no live display
    assert len(stdout.splitlines()) < 15  # one line per evaluation, not per step
    assert "final loss, whole files: validation" in stdout

    history = json.loads((out / "training_history.json").read_text())
    evals = history["eval"]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 40
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 3.0
    assert history["final"]["val_loss"] < evals[0]["val_loss"] - 3.0
    model = load_model(out)
    assert model.config.hidden_size == 32

    # The same directory again without --resume is refused: it would overwrite the run.
    one_line_error(capsys, train_args(files, out, "--steps", "40"), "--resume")


def test_stop_and_resume_continue_the_same_run(tmp_path, capsys, files):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(train_args(files, whole, "--steps", "24", "--dropout", "0.1")) == 0
    assert (
        main(train_args(files, parts, "--steps", "24", "--dropout", "0.1", "--stop-after", "9"))
        == 0
    )
    assert "continue with --resume" in capsys.readouterr().out
    state = json.loads((parts / "checkpoint" / "state.json").read_text())
    assert state["step"] == 9 and not (parts / "model.safetensors").exists()

    # Changing a setting of a run on resume is refused; the same command plus --resume works.
    one_line_error(
        capsys, train_args(files, parts, "--resume", "--lr", "0.1"), "--lr cannot change"
    )
    assert main(train_args(files, parts, "--steps", "24", "--dropout", "0.1", "--resume")) == 0

    a = json.loads((whole / "checkpoint" / "state.json").read_text())
    b = json.loads((parts / "checkpoint" / "state.json").read_text())
    assert a["step"] == b["step"] == 24
    np.testing.assert_allclose(
        a["history"]["train"]["loss"], b["history"]["train"]["loss"], rtol=1e-6
    )
    assert [e["step"] for e in a["history"]["eval"]] == [e["step"] for e in b["history"]["eval"]]
    np.testing.assert_allclose(
        [e["val_loss"] for e in a["history"]["eval"]],
        [e["val_loss"] for e in b["history"]["eval"]],
        rtol=1e-6,
    )
    assert a["final"]["val_loss"] == pytest.approx(b["final"]["val_loss"], rel=1e-6)


def test_hold_out_when_no_validation_file(tmp_path, capsys, files):
    out = tmp_path / "run"
    argv = train_args(files, out, "--steps", "3")
    del argv[argv.index("--val") : argv.index("--val") + 2]
    assert main(argv) == 0
    history = json.loads((out / "training_history.json").read_text())
    assert history["run"]["val_corpus"]["path"].endswith("#heldout")


def test_resume_refuses_other_settings_and_damaged_checkpoints(tmp_path, capsys, files):
    out = tmp_path / "run"
    assert main(train_args(files, out, "--steps", "6", "--stop-after", "2")) == 0
    one_line_error(capsys, train_args(files, out, "--resume", "--optimizer", "sgd"), "--optimizer")
    one_line_error(capsys, train_args(files, out, "--resume", "--steps", "7"), "--steps cannot")
    (out / "checkpoint" / "state.json").write_text("{not json", encoding="utf-8")
    one_line_error(capsys, train_args(files, out, "--resume"), "cannot read checkpoint")
