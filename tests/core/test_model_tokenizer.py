"""The model's own tokenizer: a directory's tokenizer.json, a GGUF's embedded vocabulary,
checked token for token against Hugging Face's ``tokenizers`` on generated Unicode."""

from __future__ import annotations

import json

import pytest
from byom_helpers import SPECIALS, family_model, train_tokenizer, write_gguf, write_hf_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core.formats import load_model, load_tokenizer, open_model
from llm_anatomy_tui.core.model import ModelLoadError, save_model
from llm_anatomy_tui.core.session import Session

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
TEXT = st.text(max_size=80) | st.lists(
    st.sampled_from(list("ab 12 é東🙂\n\t,.!") + ["'s", "'ll", "'RE", "  ", "99", "ion"]),
    max_size=30,
).map("".join)


@pytest.fixture(scope="module")
def trained():
    return {style: train_tokenizer(320, style) for style in ("smollm", "gpt2")}


@pytest.fixture(scope="module")
def gguf_tokenizers(trained, tmp_path_factory):
    out = {}
    for style, tok in trained.items():
        model = family_model("smollm", tok.get_vocab_size())
        path = tmp_path_factory.mktemp(style) / f"{style}.gguf"
        out[style] = load_tokenizer(write_gguf(model, path, tok, pre=style))
    return out


@pytest.mark.parametrize("style", ["smollm", "gpt2"])
@SETTINGS
@given(text=TEXT)
def test_gguf_vocabulary_tokenizes_as_tokenizers_does(style, text, trained, gguf_tokenizers):
    """Rebuilt from the GGUF's tokens + merges with llama.cpp's pre-tokenizer regexes for
    ``tokenizer.ggml.pre``, against the original (Digits + ByteLevel) tokenizer."""
    want = trained[style].encode(text, add_special_tokens=False).ids
    got = gguf_tokenizers[style]
    assert got.encode_ordinary(text) == want
    assert got.decode_bytes(want) == text.encode("utf-8")
    assert got.decode(want) == text


@SETTINGS
@given(text=TEXT)
def test_directory_tokenizer_json_is_tokenizers_own(text, trained, tmp_path_factory):
    tok = trained["smollm"]
    model_tok = _dir_tokenizer(trained, tmp_path_factory)
    ids = model_tok.encode_ordinary(text)
    assert ids == tok.encode(text, add_special_tokens=False).ids
    assert b"".join(model_tok.decode_single_token_bytes(i) for i in ids) == text.encode()


_DIRS: dict = {}


def _dir_tokenizer(trained, factory):
    if "m" not in _DIRS:
        tok = trained["smollm"]
        model = family_model("qwen2", tok.get_vocab_size())
        _DIRS["m"] = load_model(write_hf_dir(model, factory.mktemp("d") / "m", tokenizer=tok))
    return _DIRS["m"].tokenizer


def test_special_tokens_bos_eos_and_chat_template(trained, gguf_tokenizers):
    tok = gguf_tokenizers["smollm"]
    start = tok.encode_single_token("<|im_start|>")
    assert tok.encode_ordinary("<|im_start|>hi") == [start, *tok.encode_ordinary("hi")]
    assert tok.decode_single_token_bytes(start) == b"<|im_start|>"
    assert set(SPECIALS) <= set(tok.special_tokens)
    assert tok.bos_token == start and tok.eot_token == tok.encode_single_token("<|im_end|>")
    assert tok.prefix() == []  # tokenizer.ggml.add_bos_token false (as SmolLM2's)
    assert tok.chat_template is not None
    with pytest.raises(KeyError):
        tok.encode_single_token("not one token")


def test_session_uses_the_models_own_tokenizer_and_its_bos(trained, tmp_path):
    tok = trained["smollm"]
    model = family_model("llama3", tok.get_vocab_size())
    path = write_hf_dir(model, tmp_path / "m", tokenizer=tok)
    extra = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(
        json.dumps(extra | {"add_bos_token": True, "bos_token": "<|endoftext|>"})
    )
    s = Session("Once upon a time", model_dir=path)
    s.load_tokenizers()
    assert s.load_model().ready
    enc = s.encoding("model")
    assert enc is s.model.tokenizer
    assert s.encoding_label("model") == f"m ({tok.get_vocab_size():,})"
    bos = enc.encode_single_token("<|endoftext|>")
    ids, fit = s.context_ids(enc, s.model.config.max_position_embeddings)
    assert ids == [bos, *tok.encode("Once upon a time").ids]
    assert fit.start_token and fit.dropped == 0 and not fit.empty
    s.set_prompt("")
    assert s.context_ids(enc, 64)[0] == [bos]
    s.set_prompt("word " * 200)
    ids, fit = s.context_ids(enc, 64)
    assert len(ids) == 63 and ids[0] == bos and fit.kept == 62
    assert fit.n_tokens == len(enc.encode_ordinary("word " * 200)) == fit.kept + fit.dropped
    gen = s.generation()
    assert gen.encoding is enc and list(gen.prompt) == ids


def test_a_directory_without_tokenizer_uses_the_builtin_vocabulary_only_at_its_size(
    tmp_path, tiny_model
):
    save_model(tiny_model, tmp_path / "mini")  # vocab 8,193, no tokenizer.json
    model = open_model(tmp_path / "mini")
    assert model.tokenizer is None
    s = Session("hi", model_dir=tmp_path / "mini")
    s.load_tokenizers()
    s.load_model()
    assert s.encoding("model").name == "anatomy-mini"
    other = family_model("smollm", 300)
    save_model(other, tmp_path / "other")
    with pytest.raises(ModelLoadError, match=r"no tokenizer\.json.*300 tokens.*8,193"):
        open_model(tmp_path / "other")


def test_a_tokenizer_json_that_does_not_fit_the_vocabulary_is_refused(trained, tmp_path):
    tok = trained["smollm"]
    model = family_model("smollm", 8193)
    path = write_hf_dir(model, tmp_path / "m", tokenizer=tok)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    assert "tokenizer.json does not match the model" in str(info.value)
    assert f"{tok.get_vocab_size():,} tokens" in str(info.value) and "8,193" in str(info.value)


@pytest.fixture(scope="module")
def spm(tmp_path_factory):
    from byom_helpers import llama2_style_tokenizer, write_spm_gguf

    ref, tokens, scores, types = llama2_style_tokenizer()
    model = family_model("llama2", len(tokens))
    path = write_spm_gguf(model, tmp_path_factory.mktemp("spm") / "llama2.gguf", tokens,
                          scores, types)  # fmt: skip
    return ref, load_model(path)


@SETTINGS
@given(text=TEXT)
def test_gguf_sentencepiece_vocabulary_tokenizes_as_tokenizers_does(text, spm):
    """Llama 2's kind of vocabulary: pieces + scores + byte tokens, rebuilt into a BPE,
    against a Llama-2-style tokenizer.json made with ``tokenizers`` from the same
    training (spaces as ▁, one in front, byte fallback for unseen characters)."""
    ref, model = spm
    tok = model.tokenizer
    want = ref.encode(text, add_special_tokens=False).ids
    assert tok.encode_ordinary(text) == want
    assert tok.decode_bytes(want) == ((" " + text).encode() if text else b"")


def test_sentencepiece_gguf_bos_and_byte_tokens(spm):
    _, model = spm
    tok = model.tokenizer
    assert tok.prefix() == [1] and tok.eot_token == 2  # tokenizer.ggml.add_bos_token true
    ids = tok.encode_ordinary("☃")  # never seen in training: three byte tokens
    assert [tok.decode_single_token_bytes(i) for i in ids][-3:] == [
        bytes([b]) for b in "☃".encode()
    ]
    assert tok.description.startswith("GGUF vocabulary (SentencePiece")


def test_a_gguf_without_pre_tokenizer_name_splits_as_llama_cpp_default(trained, tmp_path):
    """llama.cpp's default sequence — punctuation runs, GPT-2's regex, digit runs, then
    groups of three digits — each applied to the pieces the previous one left
    (pieces worked out by hand from those four patterns)."""
    tok = trained["gpt2"]
    model = family_model("smollm", tok.get_vocab_size())
    loaded = load_tokenizer(write_gguf(model, tmp_path / "d.gguf", tok, pre="default"))
    assert loaded.pre_tokenize("a+b 1234") == ["a", "+", "b", "Ġ", "123", "4"]  # Ġ: space
