"""The shared session (no UI): prompt revisions, resource loading and its messages."""

from __future__ import annotations

import pytest

import llm_anatomy_tui.core.session as session_module
from llm_anatomy_tui.core.model import save_model
from llm_anatomy_tui.core.session import NotReady, Session, Status
from llm_anatomy_tui.core.tokenizers import ENCODING_NAMES, TokenizerAssetError

# -- session -------------------------------------------------------------------------------


def test_prompt_revisions():
    s = Session("a", model_dir="/nonexistent")
    assert (s.prompt, s.prompt_revision) == ("a", 0)
    assert s.set_prompt("b") and s.prompt_revision == 1
    assert not s.set_prompt("b") and s.prompt_revision == 1


def test_resources_start_loading_and_say_so():
    s = Session(model_dir="/nonexistent")
    assert s.tokenizer_state.status is Status.LOADING
    with pytest.raises(NotReady, match="Loading tokenizers"):
        s.encoding("o200k_base")
    with pytest.raises(NotReady, match="Loading the model"):
        s.require_model()


def test_tokenizers_load_and_encode_the_prompt():
    s = Session("If the human brain", model_dir="/nonexistent")
    assert s.load_tokenizers().ready
    assert set(s.encodings) == set(ENCODING_NAMES)
    assert s.prompt_ids("o200k_base") == [3335, 290, 5396, 12891]


def test_one_broken_tokenizer_leaves_the_others(monkeypatch):
    real = session_module.load_encoding

    def broken(name: str):  # noqa: ANN202
        if name == "cl100k_base":
            raise TokenizerAssetError("tokenizer file missing: /x/cl100k_base.tiktoken.gz")
        return real(name)

    monkeypatch.setattr(session_module, "load_encoding", broken)
    s = Session(model_dir="/nonexistent")
    state = s.load_tokenizers()
    assert state.status is Status.FAILED and "cl100k_base.tiktoken.gz" in state.message
    assert s.encoding("o200k_base") is real("o200k_base")
    with pytest.raises(NotReady, match="cl100k_base.tiktoken.gz"):
        s.encoding("cl100k_base")


def test_missing_model_is_not_an_error(tmp_path):
    s = Session(model_dir=tmp_path / "nothing-here")
    state = s.load_model()
    assert state.status is Status.MISSING and "No model found in" in state.message
    assert s.model is None
    with pytest.raises(NotReady, match="No model found in"):
        s.require_model()


def test_broken_model_is_reported(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    s = Session(model_dir=tmp_path)
    state = s.load_model()
    assert state.status is Status.FAILED and "config.json" in state.message


def test_model_loads_from_a_directory_and_from_the_environment(tmp_path, tiny_model, monkeypatch):
    save_model(tiny_model, tmp_path / "m")
    s = Session(model_dir=tmp_path / "m")
    assert s.load_model().ready and s.require_model().config.hidden_size == 32
    monkeypatch.setenv(session_module.MODEL_DIR_ENV, str(tmp_path / "m"))
    assert Session().model_dir == tmp_path / "m"
